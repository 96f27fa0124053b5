"""Loading real Hugging Face models: tiny random Qwen2 and Llama models written by `transformers`
(save_pretrained, safetensors; single file and sharded; tied and untied) must give, through
train/model.h (model_dump), the logits `transformers` gives, and every parameter's gradient of
loss = -mean log p(target) that torch autograd gives, within float32 tolerance. Qwen3 (whose
transformers needs torch >= 2) is checked against tests/train_model/qwen3_ref.py by the
model_torch test; here a sharded Qwen3 HF folder loads too and matches qwen3_ref's logits.
Usage: test_hf_model.py MODEL_DUMP. Exit 0 pass, 1 fail, 77 skip (no transformers)."""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import transformers  # noqa: F401
    from safetensors.torch import load_file, save_file
except ImportError as e:
    print(f"skip: `transformers` / `safetensors` (PyPI) are not installed: {e}")
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train_model"))
import hf_common  # noqa: E402
import qwen3_ref  # noqa: E402

DUMP = sys.argv[1]
failures = []


def dump(folder, tokens, targets, tmp):
    inp, out = os.path.join(tmp, "inputs.safetensors"), os.path.join(tmp, "out.safetensors")
    save_file({"tokens": tokens.int().contiguous(), "targets": targets.int().contiguous()}, inp)
    r = subprocess.run([DUMP, "grads", os.path.join(folder, "config.json"), folder, inp, out],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"model_dump failed on {folder}: {r.stderr}")
    return load_file(out)


def close(what, got, want, tol):
    scale = want.abs().max().item()
    err = (got.double() - want.double()).abs().max().item()
    if not err <= tol * scale + 1e-6:
        failures.append(f"{what}: max |C - torch| {err:.3g}, max |torch| {scale:.3g}")
    return err / max(scale, 1e-30)


def batch(V, B, T, seed):
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.full((B, T), -1, dtype=torch.long)
    targets[:, :-1] = tokens[:, 1:]
    targets[1, T - 4:] = -1  # a padded tail
    return tokens, targets


def check_hf(arch, tied, shard, tmp):
    label = f"{arch}{'-tied' if tied else ''}{'-sharded' if shard else ''}"
    V = 97
    model = hf_common.tiny_model(arch, V, seed=len(label), tied=tied)
    folder = os.path.join(tmp, label)
    model.save_pretrained(folder, safe_serialization=True,
                          **({"max_shard_size": "40KB"} if shard else {}))
    files = sorted(os.listdir(folder))
    if shard and "model.safetensors.index.json" not in files:
        failures.append(f"{label}: transformers wrote no sharded folder ({files})")
    cfg = json.load(open(os.path.join(folder, "config.json")))
    assert cfg["model_type"] == arch
    tokens, targets = batch(V, 2, 11, seed=5)
    got = dump(folder, tokens, targets, tmp)
    # transformers' logits, and autograd's gradients of -mean logp over the scored positions
    model.zero_grad()
    logits = model(input_ids=tokens, use_cache=False).logits
    mask = targets >= 0
    logp = torch.log_softmax(logits, -1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    loss = -(logp * mask).sum() / mask.sum()
    loss.backward()
    worst = close(f"{label} logits", got["logits"], logits.detach(), 1e-4)
    close(f"{label} logp", got["logp"], (logp * mask).detach(), 1e-4)
    names = dict(model.named_parameters())
    if tied:
        names.pop("lm_head.weight", None)
    nbias = 0
    for name, p in names.items():
        g = got.get("grad." + name)
        if g is None:
            failures.append(f"{label}: no gradient for {name}")
            continue
        nbias += name.endswith(".bias")
        worst = max(worst, close(f"{label} grad {name}", g, p.grad, 1e-3))
    if arch == "qwen2" and nbias != 3 * 2:
        failures.append(f"{label}: {nbias} bias gradients, want 6")
    extra = [k for k in got if k.startswith("grad.") and k[5:] not in names]
    if extra:
        failures.append(f"{label}: tensors transformers does not have: {extra}")
    print(f"{label}: {len(names)} tensors, logits and gradients match transformers "
          f"(worst relative error {worst:.2e})")


def check_qwen3_folder(tmp):
    cfg = dict(vocab_size=61, hidden_size=32, intermediate_size=40, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, head_dim=16,
               max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=1e6,
               tie_word_embeddings=False)
    gen = torch.Generator().manual_seed(9)
    w = {}
    for name, shape in qwen3_ref.param_shapes(cfg).items():
        w[name] = ((1.0 + 0.3 * torch.randn(shape, generator=gen)) if name.endswith("norm.weight")
                   else 0.25 * torch.randn(shape, generator=gen)).float().contiguous()
    folder = os.path.join(tmp, "qwen3-sharded")
    os.makedirs(folder)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(dict(cfg, model_type="qwen3", architectures=["Qwen3ForCausalLM"],
                       torch_dtype="float32", attention_bias=False, hidden_act="silu",
                       rope_scaling=None), f)
    names = sorted(w)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half],
              "model-00002-of-00002.safetensors": names[half:]}
    weight_map = {}
    for fname, ns in shards.items():
        save_file({n: w[n] for n in ns}, os.path.join(folder, fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in ns})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    tokens, targets = batch(61, 2, 9, seed=4)
    got = dump(folder, tokens, targets, tmp)
    want = qwen3_ref.forward(cfg, {k: v.double() for k, v in w.items()}, tokens)
    err = close("qwen3 sharded logits", got["logits"], want, 1e-4)
    print(f"qwen3 (sharded folder): logits match qwen3_ref (relative error {err:.2e})")


def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="test-hf-model-") as tmp:
        for arch, tied, shard in (("qwen2", False, False), ("qwen2", True, True),
                                  ("llama", False, True), ("llama", True, False)):
            check_hf(arch, tied, shard, tmp)
        check_qwen3_folder(tmp)
    for f in failures:
        print("FAIL", f)
    if failures:
        return 1
    print("hf models: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
