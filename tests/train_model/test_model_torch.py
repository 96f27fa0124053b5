"""The PyTorch oracle for train/model*.c: random configs and weights (GQA and not, tied and
untied, padded sequences), run through the C model (model_dump) and through qwen3_ref.py in
float64; logits, logp, entropy and every parameter gradient must agree to 1e-4 of each array's
largest magnitude. Then checkpoint dtypes against torch: BF16 and F16 loading is exact, and
model_save_params' BF16 / F16 equal torch's .to(torch.bfloat16) / .to(torch.float16) bit for bit
(ties, overflow, subnormals included). Also the statistics of model_init_params.

usage: test_model_torch.py MODEL_DUMP   (exit 77 without torch or safetensors)"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import torch
    from safetensors.torch import load_file, save_file
except ImportError as e:  # pragma: no cover
    print(f"skipping: {e}")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen3_ref  # noqa: E402

DUMP = sys.argv[1]
failures = []


def run(*args):
    r = subprocess.run([DUMP, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"model_dump {' '.join(args)} failed: {r.stderr}")


def write_config(path, cfg):
    hf = dict(cfg, model_type="qwen3", architectures=["Qwen3ForCausalLM"], torch_dtype="float32")
    with open(path, "w") as f:
        json.dump(hf, f)


def random_weights(cfg, gen):
    w = {}
    for name, shape in qwen3_ref.param_shapes(cfg).items():
        if name.endswith("norm.weight"):
            w[name] = 1.0 + 0.3 * torch.randn(shape, generator=gen)
        else:
            w[name] = 0.25 * torch.randn(shape, generator=gen)
    return {k: v.float().contiguous() for k, v in w.items()}


def compare(what, got, want, tol=1e-4):
    got = got.double()
    scale = want.abs().max().item()
    err = (got - want).abs().max().item()
    ok = err <= tol * scale + 1e-7
    if not ok:
        failures.append(f"{what}: max |C - torch| {err:.3g}, max |torch| {scale:.3g}")
    return err / max(scale, 1e-30)


def case(tmp, label, cfg, B, T, pad, given_dlogp, seed):
    gen = torch.Generator().manual_seed(seed)
    cfgp, wp, ip, op = (os.path.join(tmp, f"{label}.{s}") for s in
                        ("config.json", "weights.safetensors", "inputs.safetensors", "out.safetensors"))
    write_config(cfgp, cfg)
    w32 = random_weights(cfg, gen)
    save_file(w32, wp)
    tokens = torch.randint(0, cfg["vocab_size"], (B, T), generator=gen, dtype=torch.int32)
    targets = torch.full((B, T), -1, dtype=torch.int32)
    targets[:, :-1] = tokens[:, 1:]
    for b, n in pad.items():  # the last n positions of sequence b are padding
        tokens[b, T - n:] = 0
        targets[b, T - n - 1:] = -1
    inputs = {"tokens": tokens, "targets": targets}
    dlogp = None
    if given_dlogp:
        dlogp = torch.randn((B, T), generator=gen).float() * (targets >= 0)
        inputs["dlogp"] = dlogp
    save_file(inputs, ip)
    run("grads", cfgp, wp, ip, op)
    got = load_file(op)

    w = {k: v.double().requires_grad_(True) for k, v in w32.items()}
    logits = qwen3_ref.forward(cfg, w, tokens.long())
    logp, ent = qwen3_ref.logp_entropy(logits, targets.long())
    mask = targets >= 0
    if dlogp is None:
        loss = -(logp * mask).sum() / mask.sum()
    else:
        loss = (logp * dlogp.double()).sum()
    loss.backward()
    worst = 0.0
    worst = max(worst, compare(f"{label} logits", got["logits"], logits.detach()))
    worst = max(worst, compare(f"{label} logp", got["logp"], logp.detach()))
    worst = max(worst, compare(f"{label} entropy", got["entropy"], ent.detach()))
    for name, p in w.items():
        worst = max(worst, compare(f"{label} grad {name}", got["grad." + name], p.grad))
    print(f"{label}: worst relative error {worst:.2e}")


def dtype_checks(tmp):
    cfg = dict(vocab_size=11, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
               num_attention_heads=2, num_key_value_heads=1, head_dim=8,
               max_position_embeddings=16, rms_norm_eps=1e-6, rope_theta=10000.0,
               initializer_range=0.02, tie_word_embeddings=False)
    cfgp = os.path.join(tmp, "dt.config.json")
    write_config(cfgp, cfg)
    gen = torch.Generator().manual_seed(5)
    w = {k: v * 3 for k, v in random_weights(cfg, gen).items()}
    # rounding edge cases in the embedding: BF16 and F16 ties, overflow, subnormals, Inf
    bits = torch.tensor([0x3f808000, 0x3f818000, 0x3f808001, 0x7f7f8000, 0x7f7fffff, 0x3f801000,
                         0x3f803000, 0x477fe000, 0x477ff000, 0x477fefff, 0x33000000, 0x33000001,
                         0x33c00000, 0x387fe000, 0x00018000, 0x807fffff, 0x7f800000, 0xff800000,
                         0x80000000, 0x2edbe6ff], dtype=torch.int64)
    special = bits.to(torch.int32).view(torch.float32)
    emb = w["model.embed_tokens.weight"].flatten().clone()
    emb[: special.numel()] = special
    w["model.embed_tokens.weight"] = emb.view(cfg["vocab_size"], cfg["hidden_size"])
    src = os.path.join(tmp, "dt.f32.safetensors")
    save_file(w, src)
    for dtname, tdt in (("BF16", torch.bfloat16), ("F16", torch.float16)):
        out = os.path.join(tmp, f"dt.{dtname}.safetensors")
        run("convert", cfgp, src, out, dtname)
        got = load_file(out)
        for name, t in w.items():
            want = t.to(tdt)
            g = got[name]
            if g.dtype != tdt or not torch.equal(g.view(torch.int16), want.view(torch.int16)):
                diff = (g.view(torch.int16) != want.view(torch.int16)).nonzero()
                failures.append(f"save {dtname} {name}: differs from torch at {diff[:5].tolist()}")
        # loading BF16 / F16 written by torch is exact
        back = os.path.join(tmp, f"dt.{dtname}.back.safetensors")
        run("convert", cfgp, out, back, "F32")
        got32 = load_file(back)
        for name, t in w.items():
            if not torch.equal(got32[name].view(torch.int32), t.to(tdt).float().view(torch.int32)):
                failures.append(f"load {dtname} {name}: not exact")
    # F32 round trip is bit-exact
    back = os.path.join(tmp, "dt.f32.back.safetensors")
    run("convert", cfgp, src, back, "F32")
    got = load_file(back)
    for name, t in w.items():
        if not torch.equal(got[name].view(torch.int32), t.view(torch.int32)):
            failures.append(f"F32 round trip {name}: not bit-exact")
    print("dtype checks done")


def init_check(tmp):
    cfg = dict(vocab_size=50, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, head_dim=16,
               max_position_embeddings=16, rms_norm_eps=1e-6, rope_theta=1e6,
               initializer_range=0.05, tie_word_embeddings=True)
    cfgp = os.path.join(tmp, "init.config.json")
    write_config(cfgp, cfg)
    a, b, c = (os.path.join(tmp, f"init{i}.safetensors") for i in range(3))
    run("init", cfgp, "7", a)
    run("init", cfgp, "7", b)
    run("init", cfgp, "8", c)
    ta, tb, tc = load_file(a), load_file(b), load_file(c)
    for name, t in ta.items():
        if not torch.equal(t, tb[name]):
            failures.append(f"init {name}: not a function of the seed")
        if name.endswith("norm.weight"):
            if not torch.all(t == 1):
                failures.append(f"init {name}: norm weights must be 1")
            continue
        if torch.equal(t, tc[name]):
            failures.append(f"init {name}: the seed changes nothing")
        std, mean = t.double().std().item(), t.double().mean().item()
        n = t.numel()
        if abs(std - 0.05) > 0.05 * 6 / (2 * n) ** 0.5 or abs(mean) > 0.05 * 6 / n ** 0.5:
            failures.append(f"init {name}: mean {mean:.4g} std {std:.4g}, want 0 and 0.05")
    # different tensors draw different values
    if torch.equal(ta["model.layers.0.mlp.gate_proj.weight"], ta["model.layers.0.mlp.up_proj.weight"]):
        failures.append("init: gate and up are equal")
    print("init checks done")


def main():
    torch.manual_seed(0)
    base = dict(vocab_size=29, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
                initializer_range=0.02, tie_word_embeddings=False)
    with tempfile.TemporaryDirectory() as tmp:
        case(tmp, "gqa-untied-mean", base, 3, 11, {1: 4, 2: 1}, False, 1)
        case(tmp, "gqa-tied-dlogp", dict(base, tie_word_embeddings=True, rope_theta=1e6), 2, 13,
             {0: 5}, True, 2)
        case(tmp, "mha-untied", dict(base, num_key_value_heads=4, head_dim=8, hidden_size=24,
                                     num_hidden_layers=3), 2, 9, {}, True, 3)
        case(tmp, "mqa-tied", dict(base, num_attention_heads=6, num_key_value_heads=1, head_dim=6,
                                   tie_word_embeddings=True, vocab_size=7), 4, 17, {3: 10}, False, 4)
        dtype_checks(tmp)
        init_check(tmp)
    if failures:
        for f in failures:
            print("FAIL", f)
        sys.exit(1)
    print("model_torch: ok")


if __name__ == "__main__":
    main()
