"""grpo-train on real (tiny) Hugging Face models end to end: a Qwen2 model written by
`transformers` with a BPE tokenizer trained by `tokenizers` (tokenizer.json and
tokenizer_config.json) is warmed up with `sft --init` on the text form of a task (its loss must
fall), the sft folder must load back into transformers and keep the tokenizer, `grpo --init` runs
2 steps (sampling, \\boxed{} rewards, updates, snapshots), and `sparsity-scan RUN@base RUN@latest`
reads the run. A Llama model runs grpo straight from its HF folder.
Usage: test_hf_train.py GRPO_TRAIN SPARSITY_SCAN. Exit 0 pass, 1 fail, 77 skip."""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import transformers
    import tokenizers  # noqa: F401
except ImportError as e:
    print(f"skip: `transformers` / `tokenizers` (PyPI) are not installed: {e}")
    sys.exit(77)

import hf_common  # noqa: E402

GRPO, SCAN = sys.argv[1], sys.argv[2]
failures = []


def run(*args):
    r = subprocess.run([*args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(args)} exited {r.returncode}\n{r.stderr}")
    return r


def lines(path):
    return [json.loads(l) for l in open(path)]


def expect(cond, what):
    if not cond:
        failures.append(what)


def main():
    torch.set_num_threads(1)
    tok = hf_common.train_tokenizer()
    V = tok.get_vocab_size(with_added_tokens=True) + 3  # a padded vocabulary, as real models have
    with tempfile.TemporaryDirectory(prefix="test-hf-train-") as tmp:
        hf = os.path.join(tmp, "qwen2")
        hf_common.tiny_model("qwen2", V, seed=1, randomize=False).save_pretrained(
            hf, safe_serialization=True)
        hf_common.save_tokenizer(tok, hf)
        sft = os.path.join(tmp, "sft")
        common = ["--threads", "1", "--quiet", "--eval-size", "4"]
        run(GRPO, "sft", "--init", hf, "-o", sft, "--task", "add:2", "--steps", "40",
            "--batch", "8", "--lr", "3e-3", "--warmup-steps", "0", "--eval-every", "0", *common)
        losses = [l["loss"] for l in lines(os.path.join(sft, "metrics.jsonl")) if "loss" in l]
        expect(len(losses) == 40 and sum(losses[-5:]) < 0.7 * sum(losses[:5]),
               f"sft loss does not fall: {losses[:5]} ... {losses[-5:]}")
        cfg = json.load(open(os.path.join(sft, "config.json")))
        expect(cfg["model_type"] == "qwen2" and cfg["architectures"] == ["Qwen2ForCausalLM"],
               f"sft config: {cfg.get('model_type')} {cfg.get('architectures')}")
        for f in ("tokenizer.json", "tokenizer_config.json", "model.safetensors", "sft.json"):
            expect(os.path.exists(os.path.join(sft, f)), f"sft folder lacks {f}")
        back = transformers.AutoModelForCausalLM.from_pretrained(sft, torch_dtype=torch.float32)
        expect(type(back).__name__ == "Qwen2ForCausalLM", f"sft loads as {type(back).__name__}")
        expect(json.load(open(os.path.join(sft, "sft.json")))["options"]["init"] == hf,
               "sft.json does not record --init")
        print(f"sft --init qwen2: loss {sum(losses[:5]) / 5:.3f} -> {sum(losses[-5:]) / 5:.3f}")

        rdir = os.path.join(tmp, "run")
        run(GRPO, "grpo", "--init", sft, "-o", rdir, "--steps", "2", "--prompts", "2", "--group",
            "4", "--max-new", "16", "--snapshot-every", "1", "--eval-every", "0", *common)
        steps = [l for l in lines(os.path.join(rdir, "metrics.jsonl")) if "reward_mean" in l]
        expect(len(steps) == 2 and all(0 <= s["reward_mean"] <= 1 and s["updates"] == 1
                                       for s in steps), f"grpo metrics: {steps}")
        for f in ("snapshots/step-000001.sdelta", "snapshots/step-000002.sdelta",
                  "base.safetensors", "config.json", "tokenizer.json", "run.json"):
            expect(os.path.exists(os.path.join(rdir, f)), f"run folder lacks {f}")
        expect(json.load(open(os.path.join(rdir, "run.json")))["options"]["task"] == "add:2",
               "grpo did not take the task from sft.json")
        r = run(SCAN, rdir + "@base", rdir + "@latest")
        expect("q_proj.bias" in r.stdout, "sparsity-scan's report does not list the biases")
        print(f"grpo --init (qwen2 sft): rewards {[s['reward_mean'] for s in steps]}, "
              "sparsity-scan RUN@base RUN@latest ok")

        ll = os.path.join(tmp, "llama")
        hf_common.tiny_model("llama", V, seed=2, randomize=False, tied=True).save_pretrained(
            ll, safe_serialization=True)
        hf_common.save_tokenizer(tok, ll)
        lrun = os.path.join(tmp, "lrun")
        run(GRPO, "grpo", "--init", ll, "-o", lrun, "--task", "mul:1", "--steps", "1",
            "--prompts", "2", "--group", "2", "--max-new", "8", "--optimizer", "adamw",
            "--eval-every", "0", *common)
        expect(json.load(open(os.path.join(lrun, "config.json")))["model_type"] == "llama",
               "llama run config")
        run(SCAN, lrun + "@base", lrun + "@latest")
        print("grpo --init (llama HF folder): ok")
    for f in failures:
        print("FAIL", f)
    if failures:
        return 1
    print("hf train: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
