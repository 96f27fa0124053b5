"""Independent oracle for train/grpo_loss.h and train/optim.h (C side: grpo_driver.c).

  loss   grpo_advantages + grpo_loss vs torch autograd of the same formulas written in torch
         (float64), on random logp/old/ref/mask/rewards, every aggregation mode, beta 0 and > 0,
         clip_high != clip_low.
  optim  20 steps of SGD, SGD+momentum and AdamW (weight decay, warm-up, gradient clipping) on
         1e5 float32 with random gradients vs torch.optim (foreach=False) + LambdaLR +
         torch.nn.utils.clip_grad_norm_. Without clipping, or with clipping driven by the same
         total norm, the parameters must be bit-identical after every step. With torch's own
         float32 norm (a differently rounded sum) the difference is bounded in ulps.

usage: test_grpo_oracle.py GRPO_DRIVER loss|optim
"""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

try:
    import torch
except ImportError:
    print("SKIP: torch is not installed")
    sys.exit(77)

torch.set_num_threads(1)  # torch's per-thread chunks end in scalar tails; keep one chunk
DRIVER = sys.argv[1]
CASE = sys.argv[2]
FAIL = []


def check(cond, msg):
    if not cond:
        FAIL.append(msg)
        print("FAIL:", msg)


def run_driver(mode, payload, nout):
    with tempfile.TemporaryDirectory() as d:
        fin, fout = os.path.join(d, "in.bin"), os.path.join(d, "out.bin")
        with open(fin, "wb") as f:
            f.write(payload)
        subprocess.run([DRIVER, mode, fin, fout], check=True)
        with open(fout, "rb") as f:
            out = f.read()
    assert len(out) == nout, (len(out), nout)
    return out


# ---------------------------------------------------------------- loss

AGGS = ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]


def torch_loss(rewards, G, adv_mode, adv_eps, logp, old, ref, mask, clip_low, clip_high, beta, agg):
    """The formulas of train/grpo_loss.h in torch (float64), gradient by autograd."""
    r = torch.tensor(rewards, dtype=torch.float64).view(-1, G)
    mean = r.mean(dim=1, keepdim=True)
    std = r.std(dim=1, keepdim=True)  # unbiased, as torch.std
    adv = r - mean
    if adv_mode == 0:
        adv = adv / (std + adv_eps)
    adv = torch.where((r == r[:, :1]).all(dim=1, keepdim=True), torch.zeros_like(adv), adv)
    adv = adv.reshape(-1).to(torch.float32).to(torch.float64)  # the C side hands on float32
    lp = torch.tensor(logp, dtype=torch.float64, requires_grad=True)
    lo = torch.tensor(old, dtype=torch.float64)
    m = torch.tensor(mask, dtype=torch.float64)
    B, T = lp.shape
    ratio = torch.exp(lp - lo)
    A = adv[:, None]
    pg1 = -A * ratio
    pg2 = -A * torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
    pg = torch.maximum(pg1, pg2)
    clipped = (pg2 > pg1).double()
    l = pg
    if beta != 0:
        x = torch.clamp(torch.tensor(ref, dtype=torch.float64) - lp, -20.0, 20.0)
        kl = torch.exp(x) - x - 1
        l = pg + beta * kl
    ntok = m.sum()
    if agg == 0:
        L = (l * m).sum() / ntok
        Lpg = (pg * m).sum() / ntok
    elif agg == 1:
        nb = m.sum(dim=1)
        has = nb > 0
        L = ((l * m).sum(dim=1)[has] / nb[has]).mean()
        Lpg = ((pg * m).sum(dim=1)[has] / nb[has]).mean()
    else:
        L = (l * m).sum() / (B * T)
        Lpg = (pg * m).sum() / (B * T)
    L.backward()
    klm = float(((kl * m).sum() / ntok).item()) if beta != 0 else 0.0
    return (adv.numpy(), lp.grad.numpy(), float(L.item()), float(Lpg.item()), klm,
            float(((clipped * m).sum() / ntok).item()), int(ntok.item()))


def case_loss():
    rng = np.random.default_rng(1234)
    n = 0
    for agg in range(3):
        for beta in (0.0, 0.04):
            for adv_mode in (0, 1):
                ngroups, G, T = 3, 4, 7
                B = ngroups * G
                rewards = rng.integers(0, 3, size=B).astype(np.float32) * np.float32(0.5)
                rewards[:G] = 1.0  # one zero-spread group
                old = (rng.normal(size=(B, T)) - 1.5).astype(np.float32)
                # ratios from about 0.5 to 2: both clip sides and the inside get tokens
                logp = (old + rng.normal(scale=0.35, size=(B, T))).astype(np.float32)
                ref = (logp + rng.normal(scale=0.5, size=(B, T))).astype(np.float32)
                mask = (rng.random((B, T)) < 0.7).astype(np.uint8)
                mask[3, :] = 0  # a sequence without response tokens
                clip_low, clip_high, adv_eps = np.float32(0.2), np.float32(0.28), np.float32(1e-6)
                payload = struct.pack("<5i4f", ngroups, G, adv_mode, agg, 1 if beta else 0,
                                      adv_eps, clip_low, clip_high, beta)
                payload += rewards.tobytes() + struct.pack("<i", T)
                payload += logp.tobytes() + old.tobytes() + ref.tobytes() + mask.tobytes()
                out = run_driver("loss", payload, 4 * B + 4 * B * T + 40)
                c_adv = np.frombuffer(out[:4 * B], np.float32)
                c_dl = np.frombuffer(out[4 * B:4 * B + 4 * B * T], np.float32).reshape(B, T)
                c_st = struct.unpack("<5d", out[4 * B + 4 * B * T:])
                t_adv, t_dl, t_L, t_pg, t_kl, t_cf, t_n = torch_loss(
                    rewards, G, adv_mode, float(adv_eps), logp, old, ref, mask,
                    float(clip_low), float(clip_high), beta, agg)
                tag = f"agg={AGGS[agg]} beta={beta} adv_mode={adv_mode}"
                check(np.all(c_adv[:G] == 0), f"{tag}: zero-spread group advantages not 0")
                check(np.allclose(c_adv, t_adv, rtol=1e-6, atol=1e-7),
                      f"{tag}: advantages differ by {np.abs(c_adv - t_adv).max()}")
                scale = np.abs(t_dl).max()
                err = np.abs(c_dl - t_dl).max()
                check(err <= 1e-6 * scale, f"{tag}: dlogp max error {err} (scale {scale})")
                check(np.all(c_dl[mask == 0] == 0), f"{tag}: masked dlogp not 0")
                check(abs(c_st[0] - t_L) <= 1e-9 * max(1, abs(t_L)), f"{tag}: loss {c_st[0]} vs {t_L}")
                check(abs(c_st[1] - t_pg) <= 1e-9 * max(1, abs(t_pg)),
                      f"{tag}: pg_loss {c_st[1]} vs {t_pg}")
                check(abs(c_st[2] - t_kl) <= 1e-9 * max(1, abs(t_kl)), f"{tag}: kl {c_st[2]} vs {t_kl}")
                check(abs(c_st[3] - t_cf) <= 1e-12, f"{tag}: clip_frac {c_st[3]} vs {t_cf}")
                check(c_st[4] == t_n, f"{tag}: tokens {c_st[4]} vs {t_n}")
                check(0.05 < t_cf < 0.6, f"{tag}: clip_frac {t_cf}: the example does not exercise clipping")
                print(f"{tag}: loss {c_st[0]:.6g} (torch {t_L:.6g}) clip_frac {c_st[3]:.3f} "
                      f"dlogp max err {err:.2e}")
                n += 1
    return n


# ---------------------------------------------------------------- optimizers

def ordered(a):
    """float32 -> integers whose difference is the distance in ulps."""
    i = a.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def ulps(a, b):
    return int(np.abs(ordered(a) - ordered(b)).max())


def fma_probe():
    """Does this torch fuse tensor.add_(t, alpha=a) into one rounding? (Its AVX2/AVX512 kernels do;
    the baseline kernels would not, and the C code follows the fused form.)"""
    rng = np.random.default_rng(7)
    p = rng.normal(size=4096).astype(np.float32)
    g = rng.normal(size=4096).astype(np.float32)
    r = torch.from_numpy(p.copy()).add_(torch.from_numpy(g), alpha=-0.1).numpy()
    unfused = p + np.float32(-0.1) * g
    exact = (p.astype(np.float64) + np.float64(np.float32(-0.1)) * g.astype(np.float64))
    fused = exact.astype(np.float32)  # product exact in double; double rounding is rare
    return np.count_nonzero(r != fused) < np.count_nonzero(r != unfused)


def torch_run(kind, p0, grads, lr, momentum, wd, warmup, max_norm, betas, eps, norm_mode):
    """norm_mode: 'torch' (clip_grad_norm_ as is) or 'double' (clip_grad_norm_'s arithmetic on
    the float32 rounding of a float64 norm, which is what the C side computes)."""
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    if kind == 0:
        opt = torch.optim.SGD([p], lr=lr, momentum=momentum, weight_decay=wd, foreach=False)
    else:
        opt = torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=wd, foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) if warmup > 0 else 1.0)
    out, norms, lrs = [], [], []
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        lrs.append(opt.param_groups[0]["lr"])
        if max_norm > 0:
            if norm_mode == "torch":
                norms.append(float(torch.nn.utils.clip_grad_norm_([p], max_norm)))
            else:
                # clip_grad_norm_'s body, lines after total_norm, verbatim
                total_norm = torch.tensor(np.float32(np.sqrt(np.sum(g.astype(np.float64) ** 2))))
                clip_coef = max_norm / (total_norm + 1e-6)
                clip_coef_clamped = torch.clamp(clip_coef, max=1.0)
                p.grad.detach().mul_(clip_coef_clamped)
                norms.append(float(total_norm))
        opt.step()
        sched.step()
        out.append(p.detach().numpy().copy())
    return out, norms, lrs


def case_optim():
    fused = fma_probe()
    print("torch fuses add_(alpha=...):", fused, "|", [l.strip() for l in
          torch.__config__.show().splitlines() if "CPU capability" in l])
    if not fused:
        print("SKIP: this torch build does not fuse multiply-adds; the C optimizers follow the "
              "fused (AVX2/AVX512) kernels")
        sys.exit(77)
    n, steps = 100_000, 20
    rng = np.random.default_rng(99)
    p0 = rng.normal(scale=0.05, size=n).astype(np.float32)
    # gradient scales vary so that some steps clip (norm ~ 316 * scale vs max_norm 400) and some don't
    scales = np.array([0.5, 2.0, 1.0, 3.0, 0.8] * 4)
    grads = [(rng.normal(size=n) * s).astype(np.float32) for s in scales]
    grads[3][::7] *= 1e-3  # a spread of magnitudes within one step
    configs = [
        ("sgd", 0, dict(lr=0.1, momentum=0.0, wd=0.0)),
        ("sgd+momentum", 0, dict(lr=0.1, momentum=0.9, wd=0.01)),
        ("adamw", 1, dict(lr=1e-3, momentum=0.0, wd=0.01)),
    ]
    betas, eps, warmup = (0.9, 0.999), 1e-8, 5
    # With torch's own float32 norm the clip coefficient differs by a few float ulps, so the runs
    # drift apart by design: elementwise ulp counts explode where a parameter passes near 0, so the
    # bound is on the normwise relative difference max|c - t| / max|t|. Measured on x86-64 (torch
    # 1.13, AVX2 kernels), 20 steps on 1e5 elements: torch's float32 norms are up to 11 float ulps
    # from the rounded float64 norm; normwise sgd 4.0e-7, sgd+momentum 4.4e-7, adamw 1.4e-7.
    rel_bound_torch_norm = {"sgd": 2e-6, "sgd+momentum": 2e-6, "adamw": 1e-6}
    for name, kind, c in configs:
        for max_norm in (0.0, 400.0):
            hdr = struct.pack("<11d", kind, n, steps, c["lr"], c["momentum"], c["wd"], warmup,
                              max_norm, betas[0], betas[1], eps)
            payload = hdr + p0.tobytes() + b"".join(g.tobytes() for g in grads)
            out = run_driver("optim", payload, 4 * n * steps + 16 * steps)
            c_p = np.frombuffer(out[:4 * n * steps], np.float32).reshape(steps, n)
            c_stats = np.frombuffer(out[4 * n * steps:], np.float64).reshape(steps, 2)
            modes = ["torch"] if max_norm == 0 else ["double", "torch"]
            for mode in modes:
                t_p, t_norms, t_lrs = torch_run(kind, p0, grads, c["lr"], c["momentum"], c["wd"],
                                                warmup, max_norm, betas, eps, mode)
                check(list(c_stats[:, 1]) == t_lrs, f"{name}: learning rates differ")
                per_step = [ulps(c_p[s], t_p[s]) for s in range(steps)]
                ndiff = sum(int(np.count_nonzero(c_p[s] != t_p[s])) for s in range(steps))
                tag = f"{name} max_norm={max_norm} norm={mode}"
                print(f"{tag}: max ulp per step {per_step}, differing elements {ndiff}")
                if max_norm > 0:
                    nclip = sum(1 for x in t_norms if x > max_norm)
                    check(0 < nclip < steps, f"{tag}: {nclip} clipped steps: clipping not exercised")
                    nulp = ulps(c_stats[:, 0].astype(np.float32), np.array(t_norms, np.float32))
                    print(f"{tag}: float32 total norms differ by up to {nulp} ulps")
                    check(nulp <= (0 if mode == "double" else 32), f"{tag}: total norms {nulp} ulps apart")
                if mode == "torch" and max_norm > 0:
                    rel = max(float(np.abs(c_p[s].astype(np.float64) - t_p[s]).max() /
                                    np.abs(t_p[s]).max()) for s in range(steps))
                    print(f"{tag}: normwise relative difference {rel:.2e}")
                    check(rel <= rel_bound_torch_norm[name],
                          f"{tag}: normwise difference {rel:.2e} > bound {rel_bound_torch_norm[name]}")
                else:
                    check(max(per_step) == 0, f"{tag}: not bit-identical")
            moved = np.count_nonzero(c_p[-1] != p0)
            check(moved > 0.99 * n, f"{name}: only {moved} parameters moved")


if CASE == "loss":
    print(f"{case_loss()} loss configurations compared")
elif CASE == "optim":
    case_optim()
else:
    sys.exit(f"unknown case {CASE}")
if FAIL:
    print(f"{len(FAIL)} failures")
    sys.exit(1)
print("OK")
