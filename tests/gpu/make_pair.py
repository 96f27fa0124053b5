"""tests/gpu/make_pair.py: writes a fresh random checkpoint pair for the end-to-end check of
tests/gpu/run.sh (sparsity-scan --device cpu against --device cuda on the same files).

usage: python3 make_pair.py OUTDIR [--layers L] [--seed S]

OUTDIR/A/model.safetensors and OUTDIR/B/model.safetensors: a small Qwen-style model (hidden 1024,
head_dim 64, intermediate 2816, L layers) in BF16 with one F16 and one F32 tensor, where B is A
with a random ~9% of the elements nudged, some rows and columns far more often than the rest (the
stripes --maps measures), a few exact ±0 swaps and a NaN in the norms and lm_head;
OUTDIR/A/config.json and OUTDIR/B/config.json give head_dim. Needs torch and safetensors (the GPU
machine's image has both); the seed is taken from the clock unless --seed is given, so every run
draws new data."""
import argparse
import json
import os
import time

import torch
from safetensors.torch import save_file


def nudge(a, gen, frac, nan):
    """B from A: ~frac of the elements get a relative step, rows 0..7 and columns 8..15 ten times
    as often; a sign-of-zero swap where the tensor is large enough, and a NaN when nan is set
    (a NaN makes --rank skip the matrix, so only a few tensors get one)."""
    p = torch.full(a.shape, frac, dtype=torch.float32)
    if a.dim() == 2:
        p[:8, :] = min(1.0, frac * 10)
        p[:, 8:16] = min(1.0, frac * 10)
    changed = torch.rand(a.shape, generator=gen) < p
    step = torch.randn(a.shape, generator=gen) * 0.02 * a.float().abs().clamp_min(1e-3)
    b = torch.where(changed, a.float() + step, a.float()).to(a.dtype)
    flat_a, flat_b = a.view(-1), b.view(-1)
    if flat_a.numel() > 100:
        flat_a[10] = 0.0
        flat_b[10] = -0.0
        if nan:
            flat_b[20] = float("nan")
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else time.time_ns() % (2**31)
    gen = torch.Generator().manual_seed(seed)
    hidden, inter = 1024, 2816
    a = {}
    for layer in range(args.layers):
        pre = f"model.layers.{layer}."
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            a[pre + f"self_attn.{proj}.weight"] = torch.randn(hidden, hidden, generator=gen) * 0.02
        a[pre + "mlp.gate_proj.weight"] = torch.randn(inter, hidden, generator=gen) * 0.02
        a[pre + "mlp.up_proj.weight"] = torch.randn(inter, hidden, generator=gen) * 0.02
        a[pre + "mlp.down_proj.weight"] = torch.randn(hidden, inter, generator=gen) * 0.02
        a[pre + "input_layernorm.weight"] = 1 + torch.randn(hidden, generator=gen) * 0.1
    a = {k: v.to(torch.bfloat16) for k, v in a.items()}
    a["model.embed_tokens.weight"] = (torch.randn(4096, hidden, generator=gen) * 0.02).half()
    a["lm_head.weight"] = torch.randn(4096, hidden, generator=gen) * 0.02
    b = {k: nudge(v.clone(), gen, 0.09, "layernorm" in k or "lm_head" in k) for k, v in a.items()}
    for name, tensors in (("A", a), ("B", b)):
        d = os.path.join(args.outdir, name)
        os.makedirs(d, exist_ok=True)
        save_file(tensors, os.path.join(d, "model.safetensors"))
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump({"hidden_size": hidden, "num_attention_heads": 16, "head_dim": 64}, f)
    print(f"pair: {len(a)} tensors, {sum(v.numel() for v in a.values())} elements, seed {seed}")


if __name__ == "__main__":
    main()
