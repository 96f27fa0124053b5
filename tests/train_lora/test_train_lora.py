#!/usr/bin/python3
"""grpo-train --lora-rank and --mask end to end (issue 7).

Usage: test_train_lora.py GRPO_TRAIN SPARSITY_SCAN CKPT_DELTA SPARSITY_COMPARE CASE
CASE:
  lora_run     merged bf16 snapshot - base = s B A of the PEFT adapter (safetensors + torch)
               within bf16 rounding; x W^T = x W0^T + s (x A^T) B^T within bf16 rounding; the
               embedding and norms keep their bits; trainable counts in run.json, metrics
               (opt_state_bytes) and stderr; sparsity-compare reads the adapter (cosine with the
               run's own merged update near 1); usage errors (--lora-rank with --mask, ...)
  lora_resume  a LoRA AdamW run killed after a committed state and resumed reaches the bits of
               an uninterrupted run (weights, factors, optimizer state, snapshots, adapters)
  mask_run     --mask MASKS.h5 (sparsity-scan --h5 --masks of another run): the float32 master
               weights never change outside the mask, bit for bit (SGD and AdamW), and change
               inside; run.json records the file and the trainable count; a missing mask, a
               wrong shape or a file without /masks exits 2 naming it, before any output
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

TRAIN, SCAN, DELTA, COMPARE, CASE = sys.argv[1:6]
SMALL = ["--layers", "2", "--hidden", "32", "--intermediate", "64", "--heads", "2",
         "--kv-heads", "1", "--head-dim", "16", "--max-positions", "32"]
COMMON = ["--threads", "1", "--quiet"]
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def run(args, expect=0):
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if p.returncode != expect:
        sys.exit(f"FAIL: {' '.join(args)} exited {p.returncode}, expected {expect}\n"
                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def load(path):
    """name -> float64 numpy array, with the safetensors package (torch for bf16)."""
    from safetensors.torch import load_file
    return {k: v.double().numpy() for k, v in load_file(path).items()}


def load_raw(path):
    from safetensors.torch import load_file
    return load_file(path)


def metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def sft(tmp):
    """A base that answers add:1 some of the time, so GRPO has reward spread to learn from."""
    out = os.path.join(tmp, "base")
    run([TRAIN, "sft", "-o", out, "--task", "add:1", "--steps", "800", "--batch", "16",
         "--eval-every", "50", "--eval-size", "50", "--target-acc", "0.3", *SMALL, *COMMON])
    return out


def grpo(base, out, *extra, expect=0, quiet=True):
    args = [TRAIN, "grpo", "--init", base, "-o", out, "--steps", "4", "--prompts", "4",
            "--group", "4", "--snapshot-every", "2", "--eval-every", "0", "--eval-size", "8",
            "--threads", "1", *(["--quiet"] if quiet else []), *extra]
    return run(args, expect=expect)


def half_ulp_bound(x):
    """Half a bf16 ulp of |x| at most: 2^-8 |x| (bf16 keeps 8 significant bits)."""
    return np.abs(x) * 2.0 ** -8


def case_lora_run(tmp):
    import torch
    base = sft(tmp)
    out = os.path.join(tmp, "lora")
    r, alpha = 4, 8.0
    p = grpo(base, out, "--lora-rank", str(r), "--lora-alpha", str(alpha), "--optimizer",
             "adamw", "--lr", "2e-3", quiet=False)
    s = alpha / r
    w0 = load(os.path.join(out, "base.safetensors"))
    expect_trainable = sum(r * (v.shape[0] + v.shape[1]) for k, v in w0.items()
                           if k.split(".")[-2] in TARGETS)
    assert f"grpo: {expect_trainable} trainable parameters of" in p.stderr, p.stderr
    rj = json.load(open(os.path.join(out, "run.json")))
    assert rj["trainable_parameters"] == expect_trainable, rj
    assert rj["options"]["lora"] == {"r": r, "alpha": alpha}, rj["options"]
    assert rj["lora"]["scale"] == s and rj["lora"]["target_matrices"] == 14, rj["lora"]
    steps = [x for x in metrics(os.path.join(out, "metrics.jsonl")) if "reward_mean" in x]
    assert len(steps) == 4
    # AdamW's state covers the factors alone: 8 bytes per trainable parameter.
    assert all(x["opt_state_bytes"] == 8 * expect_trainable for x in steps), steps[0]
    assert all(x["trainable_parameters"] == expect_trainable for x in steps), steps[0]
    assert any(x["grad_norm"] > 0 for x in steps), "no gradient: nothing to test"

    for step in (2, 4):
        adir = os.path.join(out, "adapters", f"step-{step:06d}")
        cfg = json.load(open(os.path.join(adir, "adapter_config.json")))
        assert cfg["peft_type"] == "LORA" and cfg["r"] == r and cfg["lora_alpha"] == alpha, cfg
        assert sorted(cfg["target_modules"]) == sorted(TARGETS) and not cfg["use_rslora"], cfg
        ad = load_raw(os.path.join(adir, "adapter_model.safetensors"))
        assert len(ad) == 28 and all(v.dtype == torch.float32 for v in ad.values())
        merged_path = os.path.join(tmp, f"merged-{step}.safetensors")
        run([DELTA, "materialize", f"{out}@{step}", "-o", merged_path])
        wm = load(merged_path)
        assert set(wm) == set(w0)
        moved = 0
        for name, base_w in w0.items():
            module = name[:-len(".weight")]
            if name.split(".")[-2] not in TARGETS:
                # Embedding and norms are frozen and not adapted: the same bits.
                assert np.array_equal(wm[name], base_w), name
                assert "base_model.model." + module + ".lora_A.weight" not in ad
                continue
            A = ad["base_model.model." + module + ".lora_A.weight"].double()
            B = ad["base_model.model." + module + ".lora_B.weight"].double()
            assert A.shape == (r, base_w.shape[1]) and B.shape == (base_w.shape[0], r), name
            delta = s * (B @ A).numpy()
            want = base_w + delta
            # merged bf16 = bf16(W0 + s B A): within half a bf16 ulp, plus float32 merge error.
            tol = half_ulp_bound(np.maximum(np.abs(want), np.abs(wm[name]))) + \
                1e-6 * (np.abs(base_w) + s * (B.abs() @ A.abs()).numpy())
            err = np.abs(wm[name] - want)
            assert np.all(err <= tol), (step, name, float((err - tol).max()))
            moved += int(np.count_nonzero(wm[name] != base_w))
            # The LoRA forward as PEFT computes it against the merged layer.
            x = torch.randn(6, base_w.shape[1], dtype=torch.float64,
                            generator=torch.Generator().manual_seed(step))
            y_lora = x @ torch.from_numpy(base_w).T + s * (x @ A.T) @ B.T
            y_merged = x @ torch.from_numpy(wm[name]).T
            bound = x.abs() @ torch.from_numpy(half_ulp_bound(want) + 1e-6 * np.abs(base_w)).T
            assert torch.all((y_lora - y_merged).abs() <= bound + 1e-12), name
        assert moved > 0, f"step {step}: LoRA changed no bf16 weight"

    # sparsity-compare reads the adapter: against the run's own merged update the cosine is
    # about 1 (bf16 rounding apart); against another run it reads and reports.
    rep = json.loads(run([COMPARE, out + "@base", os.path.join(out, "adapters", "step-000004"),
                          out + "@4", "--json", "--threads", "1"]).stdout)
    assert rep["x_kind"] == "lora" and rep["lora"]["r"] == r, rep["lora"]
    assert rep["model"]["noverlap"] == 14 and rep["model"]["cosine"] > 0.95, rep["model"]
    full = os.path.join(tmp, "full")
    grpo(base, full)
    run([COMPARE, out + "@base", os.path.join(out, "adapters", "step-000004"), full + "@4",
         "--threads", "1"])
    # sparsity-scan reads the LoRA run as it reads any run.
    scan = json.loads(run([SCAN, out + "@base", out + "@latest", "--json"]).stdout)
    assert scan["totals"]["numel"] == rj["parameters"], scan["totals"]

    # Usage errors: exit 1, nothing written.
    bad = os.path.join(tmp, "bad")
    grpo(base, bad, "--lora-rank", "4", "--mask", os.path.join(tmp, "m.h5"), expect=1)
    grpo(base, bad, "--lora-alpha", "8", expect=1)
    grpo(base, bad, "--lora-rank", "0", expect=1)
    run([TRAIN, "sft", "-o", bad, "--lora-rank", "4"], expect=1)
    assert not os.path.exists(bad)


def case_lora_resume(tmp):
    base = sft(tmp)
    args = ["--prompts", "4", "--group", "8", "--eval-every", "0", "--eval-size", "8",
            "--steps", "30", "--snapshot-every", "2", "--lora-rank", "4", "--lora-alpha", "16",
            "--optimizer", "adamw", "--lr", "1e-3", *COMMON]
    ref = os.path.join(tmp, "ref")
    run([TRAIN, "grpo", "--init", base, "-o", ref, *args])
    killed = False
    for attempt in range(3):
        out = os.path.join(tmp, f"killed{attempt}")
        cmd = [TRAIN, "grpo", "--init", base, "-o", out, *args]
        proc = subprocess.Popen(cmd)
        state = os.path.join(out, "state", "state.json")
        deadline = time.time() + 120
        while not os.path.exists(state) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode != -signal.SIGKILL:
            continue  # it finished first: try again
        killed = True
        done = json.load(open(state))["step"]
        assert 2 <= done < 30, done
        run(cmd + ["--resume"])
        for rel in ["state/params-000030.safetensors", "state/optimizer-000030.bin",
                    "state/lora-000030.safetensors", "snapshots/step-000030.sdelta",
                    f"snapshots/step-{done:06d}.sdelta",
                    "adapters/step-000030/adapter_model.safetensors",
                    f"adapters/step-{done:06d}/adapter_model.safetensors"]:
            a = open(os.path.join(ref, rel), "rb").read()
            b = open(os.path.join(out, rel), "rb").read()
            assert a == b, (attempt, rel)
        steps = [x["step"] for x in metrics(os.path.join(out, "metrics.jsonl"))
                 if "reward_mean" in x]
        assert steps == list(range(1, 31)), steps
        break
    assert killed, "the run always ended before it could be killed"
    # The factors moved (the resume compared something that trained).
    f0 = load(os.path.join(ref, "adapters", "step-000002", "adapter_model.safetensors"))
    f1 = load(os.path.join(ref, "state", "lora-000030.safetensors"))
    assert any(not np.array_equal(f0[k], f1[k]) for k in f0)


def master_pair(tmp, run_dir, tag):
    """(base, latest) float32 master weights of run_dir, name -> raw uint32 bits."""
    latest = os.path.join(tmp, tag + "-master.safetensors")
    run([DELTA, "materialize", run_dir + "/master@latest", "-o", latest])
    a = load_raw(os.path.join(run_dir, "master", "base.safetensors"))
    b = load_raw(latest)
    import torch
    return ({k: v.view(torch.int32).numpy() for k, v in a.items()},
            {k: v.view(torch.int32).numpy() for k, v in b.items()})


def case_mask_run(tmp):
    import h5py
    base = sft(tmp)
    other = os.path.join(tmp, "other")
    grpo(base, other, "--seed", "5")
    masks = os.path.join(tmp, "masks.h5")
    run([SCAN, other + "@base", other + "@latest", "--h5", masks, "--masks"])
    with h5py.File(masks, "r") as f:
        mask = {}
        for key in f["masks"]:
            d = f["masks"][key]
            bits = np.unpackbits(d[...], bitorder="little", count=int(d.attrs["numel"]))
            mask[d.attrs["tensor"]] = bits.astype(bool).reshape(tuple(d.attrs["shape"]))
    ones = sum(int(m.sum()) for m in mask.values())
    total = sum(m.size for m in mask.values())
    assert 0 < ones < total, (ones, total)

    for opt in ("sgd", "adamw"):
        out = os.path.join(tmp, "masked-" + opt)
        lr = ["--lr", "1e-3"] if opt == "adamw" else []
        p = grpo(base, out, "--mask", masks, "--save-master", "--optimizer", opt, *lr,
                 quiet=False)
        assert f"grpo: {ones} trainable parameters of {total}" in p.stderr, p.stderr
        rj = json.load(open(os.path.join(out, "run.json")))
        assert rj["trainable_parameters"] == ones and rj["mask"]["file"] == masks, rj
        assert rj["options"]["mask"] == masks
        steps = [x for x in metrics(os.path.join(out, "metrics.jsonl")) if "reward_mean" in x]
        assert all(x["trainable_parameters"] == ones for x in steps), steps[0]
        a, b = master_pair(tmp, out, opt)
        assert set(a) == set(mask)
        changed_inside = 0
        for name, m in mask.items():
            x, y = a[name].reshape(m.shape), b[name].reshape(m.shape)
            # Outside the mask: the same float32 bits, exactly.
            assert np.array_equal(x[~m], y[~m]), (opt, name)
            changed_inside += int(np.count_nonzero(x[m] != y[m]))
        assert changed_inside > 0, opt
        # The unrestricted run's comparison tools read the masked run as any other.
        run([SCAN, out + "@base", out + "@latest", "--json"])

    def bad_mask(edit, expect_text):
        path = os.path.join(tmp, "bad.h5")
        shutil.copy(masks, path)
        with h5py.File(path, "r+") as f:
            edit(f)
        out = os.path.join(tmp, "run-bad")
        p = grpo(base, out, "--mask", path, expect=2)
        assert expect_text in p.stderr and "bad.h5" in p.stderr, p.stderr
        assert not os.path.exists(out), "a failed --mask left output behind"

    def drop(f):
        del f["masks/model.norm.weight"]

    def reshape(f):
        f["masks/model.layers.1.mlp.up_proj.weight"].attrs["shape"] = np.array([32, 64], "u8")

    bad_mask(drop, "tensor 'model.norm.weight'")
    bad_mask(reshape, "tensor 'model.layers.1.mlp.up_proj.weight'")
    nomask = os.path.join(tmp, "nomask.h5")
    run([SCAN, other + "@base", other + "@latest", "--h5", nomask])
    p = grpo(base, os.path.join(tmp, "run-nomask"), "--mask", nomask, expect=2)
    assert "--masks" in p.stderr, p.stderr
    p = grpo(base, os.path.join(tmp, "run-missing"), "--mask", os.path.join(tmp, "no.h5"),
             expect=2)
    assert "no.h5" in p.stderr, p.stderr


def main():
    tmp = tempfile.mkdtemp(prefix="grpo-train-lora-test-")
    try:
        {"lora_run": case_lora_run, "lora_resume": case_lora_resume,
         "mask_run": case_mask_run}[CASE](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
