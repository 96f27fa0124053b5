#!/usr/bin/python3
"""grpo-train end to end: sft and grpo folders, run-folder contents read back independently
(a plain safetensors reader in numpy), sparsity-scan on the run, determinism, --resume after
SIGKILL, exit codes, and --device cuda's wiring (run on the CPU backend).

Usage: test_train.py GRPO_TRAIN SPARSITY_SCAN CKPT_DELTA CASE
CASE: sft | grpo | determinism | resume | errors | device | valgrind [sanitized]
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


def run(args, expect=0, env=None):
    p = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
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


def grpo(base, out, *extra, expect=0, env=None):
    return run([TRAIN, "grpo", "--init", base, "-o", out, "--steps", "4", "--prompts", "4",
                "--group", "4", "--snapshot-every", "2", "--eval-every", "2", "--eval-size", "16",
                *COMMON, *extra], expect=expect, env=env)


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


def read_f32(path):
    """name -> float32 array of a float32 safetensors file."""
    out = {}
    for name, (dt, shape, raw) in read_safetensors(path).items():
        assert dt == "F32", (path, name, dt)
        out[name] = np.frombuffer(raw, dtype=np.float32)
    return out


def close(a, b, rel, atol=0.0):
    return abs(a - b) <= rel * max(abs(a), abs(b)) + atol


def compare_metrics(cpu, dev, what):
    """The per-step lines of two runs that differ only in --device: the same samples (rewards,
    lengths, token counts exactly: sampling runs on the host weights, which differ by float
    rounding only, so a sampled token would flip only for a uniform draw within ~1e-6 of a
    boundary), and the losses and metrics of the training forward and backward to 1e-4 relative
    (the GEMMs and reductions sum in another order: ~1e-6 measured), plus an absolute term where
    the value is a cancellation whose rounding error scales with its terms, not with itself:
    the surrogate loss sums -A*ratio over zero-mean advantages A of size ~1 (1e-6), kl is a mean
    of small differences of log-probabilities (~1e-7 with AdamW's lr 1e-5; 1e-8)."""
    a, b = metrics(cpu), metrics(dev)
    assert [sorted(x) for x in a] == [sorted(x) for x in b], what
    n = 0
    for x, y in zip(a, b):
        assert x["step"] == y["step"], (what, x, y)
        for key in ["reward_mean", "reward_std", "resp_len_mean", "resp_len_max", "tokens",
                    "updates", "skipped", "eval_acc", "lr", "opt_state_bytes",
                    "trainable_parameters"]:
            if key in x:
                assert x[key] == y[key], (what, key, x, y)
        for key, atol in [("loss", 1e-6), ("pg_loss", 1e-6), ("kl", 1e-8), ("grad_norm", 0),
                          ("entropy", 0), ("clip_frac", 0)]:
            if key in x:
                n += 1
                assert close(x[key], y[key], 1e-4, atol), (what, key, x[key], y[key])
    assert n > 0, what
    return [x for x in a if "loss" in x]


def compare_weights(cpu, dev, base, what, tol):
    """Final float32 master weights of the two runs: max |w_cpu - w_dev| <= tol, and far below the
    update itself (otherwise the comparison would say nothing)."""
    a, b, w0 = read_f32(cpu), read_f32(dev), read_f32(base)
    assert sorted(a) == sorted(b), what
    diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
    upd = max(float(np.max(np.abs(a[k] - w0[k]))) for k in a)
    dn = np.sqrt(sum(float(np.sum((a[k].astype(np.float64) - b[k]) ** 2)) for k in a))
    un = np.sqrt(sum(float(np.sum((a[k].astype(np.float64) - w0[k]) ** 2)) for k in a))
    print(f"{what}: max |w_cpu - w_dev| {diff:.3g}, max |update| {upd:.3g}, "
          f"||w_cpu - w_dev|| / ||update|| {dn / un:.3g}")
    assert upd > 0, what
    assert diff <= tol, (what, diff, tol)
    assert dn <= 1e-2 * un, (what, dn, un)


def case_device(tmp):
    """--device cuda's wiring, on the CPU backend (SS_TRAIN_TM_BACKEND=cpu: kernels/train_model.h's
    TM_CPU, the composition TM_CUDA runs, in host memory) against the CPU model: sft and grpo (SGD,
    AdamW with mini-batches and epochs and KL, LoRA, --mask) agree per step and in the final weights.
    Then the refusals: an unusable device (this machine has no GPU), bad values."""
    env_tm = dict(os.environ, SS_TRAIN_TM_BACKEND="cpu")
    dev = ["--device", "cuda", "--gemm", "f32"]
    # sft: a base with some accuracy (add:1 learns fast), so that GRPO's rewards vary.
    sft_args = ["--task", "add:1", "--batch", "32", "--lr", "1e-2", "--warmup-steps", "10",
                "--eval-every", "0", "--eval-size", "32", *SMALL, *COMMON]
    base = os.path.join(tmp, "base")
    run([TRAIN, "sft", "-o", base, "--steps", "250", *sft_args])
    # The sft comparison: 20 AdamW steps (lr 1e-2) both ways. The folders hold bf16 weights; two
    # float32 weights d apart round to bf16 values at most one bf16 ulp + d apart. AdamW divides
    # by sqrt(v), so an element whose gradient is a cancellation (near 0, where the summation
    # order decides its sign) takes a different though lr-bounded step: d measured <= 3e-6, 1e-5
    # allowed. Almost all are the same bits.
    sft_cpu, sft_dev = os.path.join(tmp, "sft-cpu"), os.path.join(tmp, "sft-dev")
    run([TRAIN, "sft", "-o", sft_cpu, "--steps", "20", *sft_args])
    run([TRAIN, "sft", "-o", sft_dev, "--steps", "20", *sft_args, *dev], env=env_tm)
    steps = compare_metrics(os.path.join(sft_cpu, "metrics.jsonl"),
                            os.path.join(sft_dev, "metrics.jsonl"), "sft")
    assert len(steps) == 20 and steps[-1]["loss"] < steps[0]["loss"], steps
    a = read_safetensors(os.path.join(sft_cpu, "model.safetensors"))
    b = read_safetensors(os.path.join(sft_dev, "model.safetensors"))
    same = total = 0
    for name, (dt, shape, raw) in a.items():
        assert dt == b[name][0] == "BF16" and shape == b[name][1], name
        x, y = bf16_to_f32(raw), bf16_to_f32(b[name][2])
        big = np.maximum(np.abs(x), np.abs(y))
        ulp = np.exp2(np.floor(np.log2(np.maximum(big, 1e-30))) - 7)
        assert np.all(np.abs(x - y) <= ulp + 1e-5), name
        same += int(np.sum(x.view(np.uint32) == y.view(np.uint32)))
        total += x.size
    print(f"sft: {same} of {total} bf16 weights identical")
    assert same >= 0.99 * total, (same, total)
    sj = json.load(open(os.path.join(sft_dev, "sft.json")))
    assert sj["options"]["device"] == {"name": "cuda", "gemm": "f32"}, sj["options"]
    assert "device" not in json.load(open(os.path.join(sft_cpu, "sft.json")))["options"]

    # grpo: the same runs both ways. Weight tolerance: SGD's update is lr * the clipped gradient,
    # whose rounding differs by ~1e-6 relative; AdamW divides by sqrt(v), so an element whose
    # gradient is a cancellation (near 0) can take a noticeably different, though lr-sized, step:
    # max |dw| stays ~1e-7 in 4 steps at lr 1e-5, and we allow 1e-6 (~8 float32 ulps at 1).
    cases = [("sgd", ["--optimizer", "sgd", "--kl-coef", "0.01"]),
             ("adamw", ["--optimizer", "adamw", "--mini-batches", "2", "--epochs", "2",
                        "--kl-coef", "0.01"]),
             ("lora", ["--optimizer", "adamw", "--lr", "1e-3", "--lora-rank", "2"])]
    runs = {}
    for name, extra in cases:
        cpu, devo = os.path.join(tmp, "run-" + name), os.path.join(tmp, "run-" + name + "-dev")
        grpo(base, cpu, "--save-master", *extra)
        grpo(base, devo, "--save-master", *extra, *dev, env=env_tm)
        runs[name] = cpu
        steps = compare_metrics(os.path.join(cpu, "metrics.jsonl"),
                                os.path.join(devo, "metrics.jsonl"), name)
        assert any(x["reward_std"] > 0 for x in steps), (name, steps)  # a learning signal
        compare_weights(os.path.join(cpu, "state", "params-000004.safetensors"),
                        os.path.join(devo, "state", "params-000004.safetensors"),
                        os.path.join(cpu, "master", "base.safetensors"), name, 1e-6)
        opts = json.load(open(os.path.join(devo, "run.json")))["options"]
        assert opts["device"] == {"name": "cuda", "gemm": "f32"}, opts
    # --mask: the SGD run's changed elements, trained both ways; nothing outside them moves.
    masks = os.path.join(tmp, "masks.h5")
    run([SCAN, runs["sgd"] + "@base", runs["sgd"] + "@latest", "--h5", masks, "--masks",
         "--quiet"])
    cpu, devo = os.path.join(tmp, "run-mask"), os.path.join(tmp, "run-mask-dev")
    grpo(base, cpu, "--save-master", "--mask", masks)
    grpo(base, devo, "--save-master", "--mask", masks, *dev, env=env_tm)
    compare_metrics(os.path.join(cpu, "metrics.jsonl"), os.path.join(devo, "metrics.jsonl"),
                    "mask")
    compare_weights(os.path.join(cpu, "state", "params-000004.safetensors"),
                    os.path.join(devo, "state", "params-000004.safetensors"),
                    os.path.join(cpu, "master", "base.safetensors"), "mask", 1e-6)
    import h5py
    w0 = read_f32(os.path.join(cpu, "master", "base.safetensors"))
    w1 = read_f32(os.path.join(devo, "state", "params-000004.safetensors"))
    with h5py.File(masks, "r") as f:
        outside = 0
        for name in w0:
            bits = np.unpackbits(f["masks/" + name][...], bitorder="little")[:w0[name].size]
            keep = bits == 0
            outside += int(np.sum(keep))
            assert np.array_equal(w1[name][keep].view(np.uint32), w0[name][keep].view(np.uint32)), name
    assert outside > 0

    # Without the testing aid, --device cuda needs a GPU: on a machine without one it is refused
    # before anything is written (exit 1, the reason named, no folder).
    for mode in ["sft", "grpo"]:
        out = os.path.join(tmp, "no-gpu-" + mode)
        args = ([TRAIN, "sft", "-o", out, "--steps", "2", *sft_args] if mode == "sft" else
                [TRAIN, "grpo", "--init", base, "-o", out, "--steps", "2", "--prompts", "2",
                 "--group", "2", "--eval-size", "4", *COMMON])
        env = {k: v for k, v in os.environ.items() if k != "SS_TRAIN_TM_BACKEND"}
        p = subprocess.run(args + ["--device", "cuda"], capture_output=True, text=True,
                           timeout=600, env=env)
        if p.returncode == 0:
            print(f"{mode} --device cuda: a usable CUDA device is present; it trained on it")
            continue
        assert p.returncode == 1, (mode, p.returncode, p.stderr)
        assert "--device cuda" in p.stderr and "CUDA" in p.stderr.replace("--device cuda", ""), \
            p.stderr
        assert not os.path.exists(out), (mode, os.listdir(out))
        print(f"{mode} --device cuda without a GPU: {p.stderr.strip()}")
    # Bad values and combinations: usage errors, no folder.
    out = os.path.join(tmp, "bad")
    sft_short = [TRAIN, "sft", "-o", out, "--steps", "1", *SMALL, *COMMON]
    grpo_short = [TRAIN, "grpo", "--init", base, "-o", out, "--steps", "1", *COMMON]
    for args, env, needle in [
            (sft_short + ["--device", "tpu"], None, "--device"),
            (grpo_short + ["--device", "tpu"], None, "--device"),
            (sft_short + ["--gemm", "bf16"], None, "--gemm bf16"),
            (grpo_short + ["--device", "cpu", "--gemm", "bf16"], None, "--gemm bf16"),
            (grpo_short + ["--device", "cuda", "--gemm", "f16"], None, "--gemm"),
            (grpo_short + ["--device", "cuda"], env_tm, "--gemm f32"),  # TM_CPU has no bf16
            (grpo_short + ["--device", "cuda", "--gemm", "f32"],
             dict(os.environ, SS_TRAIN_TM_BACKEND="tpu"), "SS_TRAIN_TM_BACKEND")]:
        p = run(args, expect=1, env=env)
        assert needle in p.stderr, (args, p.stderr)
        assert not os.path.exists(out), (args, os.listdir(out))


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
         "resume": case_resume, "errors": case_errors, "device": case_device,
         "valgrind": case_valgrind}[CASE](tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
