#!/usr/bin/python3
"""grpo-train end to end: sft and grpo folders, run-folder contents read back independently
(a plain safetensors reader in numpy), sparsity-scan on the run, determinism, --resume after
SIGKILL, and exit codes.

Usage: test_train.py GRPO_TRAIN SPARSITY_SCAN CKPT_DELTA CASE
CASE: sft | grpo | determinism | resume | errors | valgrind [sanitized]
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

TRAIN, SCAN, DELTA, CASE = sys.argv[1:5]
# A tiny model and short runs: the point is the plumbing, not the accuracy.
SMALL = ["--layers", "2", "--hidden", "32", "--intermediate", "64", "--heads", "2",
         "--kv-heads", "1", "--head-dim", "16", "--max-positions", "32"]
COMMON = ["--threads", "1", "--quiet"]


def run(args, expect=0):
    p = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if p.returncode != expect:
        sys.exit(f"FAIL: {' '.join(args)} exited {p.returncode}, expected {expect}\n"
                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def read_safetensors(path):
    """name -> (dtype, shape, raw bytes), by the format's definition."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, d in header.items():
        if name == "__metadata__":
            continue
        a, b = d["data_offsets"]
        out[name] = (d["dtype"], d["shape"], data[8 + n + a:8 + n + b])
    return out


def bf16_to_f32(raw):
    bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
    return bits.view(np.float32)


def metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def sft(dirpath, steps=30, extra=()):
    out = os.path.join(dirpath, "base")
    run([TRAIN, "sft", "-o", out, "--task", "add:2", "--steps", str(steps), "--batch", "16",
         "--eval-every", "10", "--eval-size", "20", *SMALL, *COMMON, *extra])
    return out


def grpo(base, out, *extra, expect=0):
    return run([TRAIN, "grpo", "--init", base, "-o", out, "--steps", "4", "--prompts", "4",
                "--group", "4", "--snapshot-every", "2", "--eval-every", "2", "--eval-size", "16",
                *COMMON, *extra], expect=expect)


def case_sft(tmp):
    base = sft(tmp)
    cfg = json.load(open(os.path.join(base, "config.json")))
    assert cfg["model_type"] == "qwen3" and cfg["hidden_size"] == 32, cfg
    assert cfg["num_key_value_heads"] == 1 and cfg["head_dim"] == 16, cfg
    tensors = read_safetensors(os.path.join(base, "model.safetensors"))
    names = set(tensors)
    assert "model.embed_tokens.weight" in names and "lm_head.weight" not in names, names
    for l in range(2):
        for t in ["input_layernorm", "post_attention_layernorm", "self_attn.q_proj",
                  "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "self_attn.q_norm",
                  "self_attn.k_norm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]:
            assert f"model.layers.{l}.{t}.weight" in names, (l, t)
    assert all(d == "BF16" for d, _, _ in tensors.values())
    assert tensors["model.layers.0.self_attn.q_proj.weight"][1] == [32, 32]
    assert tensors["model.layers.0.self_attn.k_proj.weight"][1] == [16, 32]
    # Training moved the weights away from the init: norm gains are no longer all exactly 1.
    gains = bf16_to_f32(tensors["model.layers.0.input_layernorm.weight"][2])
    assert np.any(gains != 1.0), gains
    summary = json.load(open(os.path.join(base, "sft.json")))
    assert summary["steps_done"] == 30 and summary["options"]["task"] == "add:2", summary
    m = metrics(os.path.join(base, "metrics.jsonl"))
    steps = [x for x in m if "loss" in x]
    assert len(steps) == 30 and all(np.isfinite(x["loss"]) for x in steps)
    assert steps[-1]["loss"] < steps[0]["loss"], (steps[0], steps[-1])
    evals = [x for x in m if "eval_acc" in x]
    assert [x["step"] for x in evals] == [0, 10, 20, 30], evals


def case_grpo(tmp):
    base = sft(tmp)
    for opt, state_per_param in [("sgd", 0), ("adamw", 8)]:
        out = os.path.join(tmp, "run-" + opt)
        grpo(base, out, "--optimizer", opt, "--save-master")
        snaps = sorted(os.listdir(os.path.join(out, "snapshots")))
        assert snaps == ["step-000002.sdelta", "step-000004.sdelta"], snaps
        assert os.path.exists(os.path.join(out, "master", "snapshots", "step-000004.sdelta"))
        run_json = json.load(open(os.path.join(out, "run.json")))
        nparams = run_json["parameters"]
        assert run_json["options"]["optimizer"]["name"] == opt
        # The base is the sft folder's bf16 weights, bit for bit.
        a = read_safetensors(os.path.join(base, "model.safetensors"))
        b = read_safetensors(os.path.join(out, "base.safetensors"))
        assert {k: v[2] for k, v in a.items()} == {k: v[2] for k, v in b.items()}
        m = metrics(os.path.join(out, "metrics.jsonl"))
        steps = [x for x in m if "reward_mean" in x]
        assert [x["step"] for x in steps] == [1, 2, 3, 4], m
        for x in steps:
            for key in ["reward_std", "zero_spread_frac", "kl", "entropy", "resp_len_mean",
                        "resp_len_max", "clip_frac", "grad_norm", "lr", "tokens_per_s",
                        "step_time_s", "peak_rss_bytes"]:
                assert key in x, key
            assert x["opt_state_bytes"] == state_per_param * nparams, (opt, x, nparams)
            assert 0.0 <= x["reward_mean"] <= 1.0 and x["entropy"] > 0.0
            # On-policy with one update per step: every ratio is exactly 1, nothing is clipped.
            assert x["clip_frac"] == 0.0, x
        assert [x["step"] for x in m if "eval_acc" in x] == [0, 2, 4]
        # sparsity-scan reads the run; the materialized latest equals the bf16 of the master.
        p = run([SCAN, out + "@base", out + "@latest", "--json"])
        rep = json.loads(p.stdout)
        assert rep["totals"]["numel"] == nparams, rep["totals"]
        latest = os.path.join(tmp, opt + "-latest.safetensors")
        master = os.path.join(tmp, opt + "-master.safetensors")
        run([DELTA, "materialize", out + "@latest", "-o", latest])
        run([DELTA, "materialize", out + "/master@latest", "-o", master])
        lt, mt = read_safetensors(latest), read_safetensors(master)
        import torch  # independent RNE rounding of the master weights to bf16
        for name, (dt, shape, raw) in lt.items():
            f32 = np.frombuffer(mt[name][2], dtype=np.float32)
            ref = torch.from_numpy(f32.copy()).to(torch.bfloat16).view(torch.int16).numpy()
            assert np.array_equal(np.frombuffer(raw, dtype=np.int16), ref), name
        # The state for --resume holds the float32 master weights of the last snapshot.
        st = read_safetensors(os.path.join(out, "state", "params-000004.safetensors"))
        assert {k: v[2] for k, v in st.items()} == {k: v[2] for k, v in mt.items()}


def case_determinism(tmp):
    base = sft(tmp, steps=10)
    outs = []
    for i in range(2):
        out = os.path.join(tmp, f"run{i}")
        grpo(base, out, "--optimizer", "adamw")
        outs.append(out)
    for rel in ["snapshots/step-000002.sdelta", "snapshots/step-000004.sdelta",
                "state/params-000004.safetensors", "state/optimizer-000004.bin"]:
        a = open(os.path.join(outs[0], rel), "rb").read()
        b = open(os.path.join(outs[1], rel), "rb").read()
        assert a == b, rel
    # Another seed samples other responses and gives other weights.
    other = os.path.join(tmp, "run-seed")
    grpo(base, other, "--optimizer", "adamw", "--seed", "7")
    a = open(os.path.join(outs[0], "state/params-000004.safetensors"), "rb").read()
    b = open(os.path.join(other, "state/params-000004.safetensors"), "rb").read()
    assert a != b


def case_resume(tmp):
    """SIGKILL at random moments (seeded), one of them inside a snapshot write; every surviving
    snapshot decodes, and --resume reaches the uninterrupted run's bits (weights, optimizer state,
    snapshots; the sampling RNG is keyed by step, so it resumes too)."""
    import random
    rng = random.Random(20261128)
    base = sft(tmp, steps=10)
    args = ["--optimizer", "adamw", "--steps", "40", "--snapshot-every", "2"]
    ref = os.path.join(tmp, "ref")
    t0 = time.time()
    run([TRAIN, "grpo", "--init", base, "-o", ref, "--prompts", "4", "--group", "4",
         "--eval-every", "0", "--eval-size", "8", *COMMON, *args])
    duration = time.time() - t0
    killed = 0
    for attempt in range(5):
        out = os.path.join(tmp, f"killed{attempt}")
        cmd = [TRAIN, "grpo", "--init", base, "-o", out, "--prompts", "4", "--group", "4",
               "--eval-every", "0", "--eval-size", "8", *COMMON, *args]
        proc = subprocess.Popen(cmd)
        state = os.path.join(out, "state", "state.json")
        snaps = os.path.join(out, "snapshots")
        deadline = time.time() + 300
        if attempt < 4:
            # A random moment of the run: anywhere from start-up to near the end (the first
            # attempt early, possibly before any state was committed).
            time.sleep(rng.uniform(0.002, 0.03) if attempt == 0 else rng.uniform(0.1, 0.6) * duration)
        else:
            # Inside a snapshot write: as soon as a temporary snapshot file appears after the
            # first committed state.
            while time.time() < deadline and proc.poll() is None:
                if os.path.exists(state) and os.path.isdir(snaps) and any(
                        ".tmp." in n for n in os.listdir(snaps)):
                    break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode != -signal.SIGKILL:
            print(f"attempt {attempt}: the run ended before the kill; nothing to resume")
            continue
        done = json.load(open(state))["step"] if os.path.exists(state) else 0
        if done == 40:
            # Killed after the last state was committed, while the process was exiting: the run
            # is complete, so there is nothing to resume.
            print(f"attempt {attempt}: killed after the run was complete")
            continue
        killed += 1
        if attempt == 4:
            left = [n for n in os.listdir(snaps) if ".tmp." in n]
            print(f"killed inside a snapshot write: {bool(left)} {left}")
        print(f"attempt {attempt}: killed after committed step {done}")
        assert 0 <= done < 40, done
        # Every surviving snapshot decodes.
        for s in sorted(os.listdir(snaps)) if os.path.isdir(snaps) else []:
            if s.startswith("step-") and s.endswith(".sdelta"):
                run([DELTA, "verify", os.path.join(snaps, s),
                     os.path.join(out, "base.safetensors")])
        if not os.path.exists(os.path.join(out, "run.json")):
            run(cmd)  # killed before the run existed: start it again
        else:
            run(cmd + ["--resume"])
        # --resume cleared what the killed writer left behind.
        assert not [n for n in os.listdir(snaps) if ".tmp." in n], os.listdir(snaps)
        rels = ["state/params-000040.safetensors", "state/optimizer-000040.bin",
                "snapshots/step-000040.sdelta"]
        if done:
            rels.append(f"snapshots/step-{done:06d}.sdelta")
        for rel in rels:
            a = open(os.path.join(ref, rel), "rb").read()
            b = open(os.path.join(out, rel), "rb").read()
            assert a == b, (attempt, rel)
        steps = [x["step"] for x in metrics(os.path.join(out, "metrics.jsonl"))
                 if "reward_mean" in x]
        assert steps == list(range(1, 41)), steps
    assert killed >= 3, f"only {killed} of 5 runs were killed before they ended"


def case_errors(tmp):
    base = sft(tmp, steps=2)
    run([TRAIN], expect=1)
    run([TRAIN, "frobnicate"], expect=1)
    run([TRAIN, "grpo", "-o", os.path.join(tmp, "x")], expect=1)             # no --init
    run([TRAIN, "sft", "-o", os.path.join(tmp, "y"), "--task", "sub:3"], expect=1)
    run([TRAIN, "sft", "-o", os.path.join(tmp, "y"), "--steps", "-3"], expect=1)
    run([TRAIN, "grpo", "--init", os.path.join(tmp, "missing"), "-o", os.path.join(tmp, "z")],
        expect=1)  # no sft.json to take the task from, and no --task
    run([TRAIN, "grpo", "--init", os.path.join(tmp, "missing"), "-o", os.path.join(tmp, "z"),
         "--task", "add:2", "--quiet"], expect=2)
    out = os.path.join(tmp, "run")
    grpo(base, out)
    p = grpo(base, out, expect=1)                                 # the run exists
    assert "--resume" in p.stderr, p.stderr
    p = grpo(base, out, "--resume", "--lr", "0.5", expect=1)     # other options
    assert "options" in p.stderr, p.stderr
    grpo(base, out, "--resume")                                   # nothing left to do
    # A corrupted base is an input error naming the file.
    bad = os.path.join(tmp, "bad")
    shutil.copytree(base, bad)
    with open(os.path.join(bad, "model.safetensors"), "r+b") as f:
        f.truncate(100)
    p = grpo(bad, os.path.join(tmp, "run-bad"), expect=2)
    assert "model.safetensors" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(tmp, "run-bad", "run.json"))


def case_valgrind(tmp):
    """One sft step and two grpo steps (sampling, reference and policy forwards, backward, AdamW,
    snapshots, resume state) under memcheck: no errors, no definite or indirect leaks."""
    if len(sys.argv) > 5 and sys.argv[5] == "sanitized":
        print("sanitizer build: Valgrind cannot run ASan binaries: skipped")
        sys.exit(77)
    valgrind = shutil.which("valgrind")
    if not valgrind:
        print("valgrind not installed: skipped")
        sys.exit(77)
    tiny = ["--layers", "1", "--hidden", "32", "--intermediate", "64", "--heads", "2",
            "--kv-heads", "1", "--head-dim", "16", "--max-positions", "32"]
    vg = [valgrind, "--error-exitcode=99", "--leak-check=full",
          "--errors-for-leak-kinds=definite,indirect", "-q", "--suppressions="
          + os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "valgrind.supp")]
    # Valgrind does not decode AVX-512: have OpenBLAS use its AVX2 kernels.
    os.environ["OPENBLAS_CORETYPE"] = "Haswell"
    base = os.path.join(tmp, "base")
    run(vg + [TRAIN, "sft", "-o", base, "--task", "add:2", "--steps", "1", "--batch", "4",
              "--eval-size", "4", *tiny, *COMMON])
    run(vg + [TRAIN, "grpo", "--init", base, "-o", os.path.join(tmp, "run"), "--steps", "2",
              "--prompts", "2", "--group", "2", "--snapshot-every", "1", "--eval-size", "4",
              "--optimizer", "adamw", "--kl-coef", "0.01", "--save-master", *COMMON])


def main():
    tmp = tempfile.mkdtemp(prefix="grpo-train-test-")
    try:
        {"sft": case_sft, "grpo": case_grpo, "determinism": case_determinism,
         "resume": case_resume, "errors": case_errors, "valgrind": case_valgrind}[CASE](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
