#!/usr/bin/python3
"""Integration tests of ckpt-synth: generated checkpoints read back through st_open (synth_dump)
and through an independent numpy reader of the safetensors format.

usage: test_synth.py CKPT_SYNTH SYNTH_DUMP CASE
CASE: layout | sharded | config | determinism | fractions | stripes | order | dtypes | errors
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

SYNTH, DUMP, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
TMP = tempfile.mkdtemp(prefix="synth-test-")
TINY = dict(layers=2, hidden=64, intermediate=128, heads=4, kv_heads=2, head_dim=16, vocab=256,
            tied=False)
# Big enough for stable changed fractions (10.5M elements), small enough to generate in a blink.
MEDIUM = ["--hidden", "512", "--intermediate", "1536", "--heads", "8", "--kv-heads", "4",
          "--head-dim", "64", "--layers", "2", "--vocab", "8192", "--tied"]


def run(*args, expect=0):
    p = subprocess.run([SYNTH, *args], capture_output=True, text=True)
    if p.returncode != expect:
        sys.exit(f"ckpt-synth {' '.join(args)}: exit {p.returncode}, expected {expect}\n"
                 f"{p.stdout}{p.stderr}")
    return p


def dump(*args):
    p = subprocess.run([DUMP, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"synth_dump {' '.join(args)}: exit {p.returncode}\n{p.stderr}")
    return p.stdout


def path(name):
    return os.path.join(TMP, name)


def check(cond, msg):
    if not cond:
        sys.exit("FAIL: " + msg)


def expected_tensors(s, dtype):
    """Hugging Face Qwen3 names and shapes, written out independently of train/synth_layout.c."""
    H, I, Q, K, D, V = (s["hidden"], s["intermediate"], s["heads"], s["kv_heads"], s["head_dim"],
                        s["vocab"])
    t = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H]}
    if not s["tied"]:
        t["lm_head.weight"] = [V, H]
    for i in range(s["layers"]):
        p = f"model.layers.{i}."
        t.update({
            p + "input_layernorm.weight": [H],
            p + "post_attention_layernorm.weight": [H],
            p + "self_attn.q_proj.weight": [Q * D, H],
            p + "self_attn.k_proj.weight": [K * D, H],
            p + "self_attn.v_proj.weight": [K * D, H],
            p + "self_attn.o_proj.weight": [H, Q * D],
            p + "self_attn.q_norm.weight": [D],
            p + "self_attn.k_norm.weight": [D],
            p + "mlp.gate_proj.weight": [I, H],
            p + "mlp.up_proj.weight": [I, H],
            p + "mlp.down_proj.weight": [H, I],
        })
    return {k: (dtype, v) for k, v in t.items()}


def listed(ckpt):
    """{name: (dtype, shape)} and {name: file} as st_open sees them."""
    tensors, files = {}, {}
    for line in dump("list", ckpt).splitlines():
        name, dt, shape, f = line.split("\t")
        tensors[name] = (dt, [int(x) for x in shape.split(",")] if shape else [])
        files[name] = f
    return tensors, files


def read_st(p):
    """Independent reader: (header order, {name: (dtype, shape, raw bytes)})."""
    with open(p, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
        data = fh.read()
    order = [k for k in header if k != "__metadata__"]
    out = {}
    for k in order:
        a, b = header[k]["data_offsets"]
        out[k] = (header[k]["dtype"], header[k]["shape"], data[a:b])
    return order, out, header.get("__metadata__")


def read_ckpt(p):
    if not os.path.isdir(p):
        return read_st(p)[1]
    idx = os.path.join(p, "model.safetensors.index.json")
    files = (sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx)
             else ["model.safetensors"])
    out = {}
    for f in files:
        out.update(read_st(os.path.join(p, f))[1])
    return out


def changed_fraction(a, b):
    total = dump("count", a, b).splitlines()[-1].split("\t")
    return int(total[2]) / int(total[1])


def case_layout():
    run("init", "--preset", "tiny", "-o", path("tiny.safetensors"))
    got, _ = listed(path("tiny.safetensors"))
    check(got == expected_tensors(TINY, "BF16"), "tiny layout differs from Qwen3's")
    s = dict(TINY, layers=3, tied=True)
    run("init", "--preset", "tiny", "--layers", "3", "--tied", "--dtype", "f16",
        "-o", path("tied.safetensors"))
    got, _ = listed(path("tied.safetensors"))
    check(got == expected_tensors(s, "F16"), "tied f16 layout differs")
    check("lm_head.weight" not in got, "tied model has lm_head")
    # each file lists its tensors sorted by name, with the format=pt metadata HF writes
    order, data, meta = read_st(path("tiny.safetensors"))
    check(order == sorted(order), "tensors not in name order")
    check(meta == {"format": "pt"}, f"metadata {meta}")
    emb = np.frombuffer(data["model.embed_tokens.weight"][2], np.uint16).astype(np.uint32) << 16
    emb = emb.view(np.float32)
    check(abs(emb.std() - 0.02) < 0.002 and abs(emb.mean()) < 0.002, "embedding not N(0, 0.02^2)")
    norm = np.frombuffer(data["model.norm.weight"][2], np.uint16).astype(np.uint32) << 16
    check(abs(norm.view(np.float32).mean() - 1.0) < 0.02, "norm gains not near 1")
    # --target-bytes picks the layer count
    run("init", "--preset", "tiny", "--target-bytes", "1M", "-o", path("fit.safetensors"))
    got, _ = listed(path("fit.safetensors"))
    layers = len({k.split(".")[2] for k in got if k.startswith("model.layers.")})
    total = sum(np.prod(s) * 2 for _, s in got.values())
    check(abs(total - (1 << 20)) < 80000, f"--target-bytes 1M gave {total} bytes, {layers} layers")


def case_sharded():
    run("init", "--preset", "tiny", "-o", path("single.safetensors"))
    run("init", "--preset", "tiny", "--shard-size", "64K", "-o", path("sh"))
    names = sorted(os.listdir(path("sh")))
    shards = [n for n in names if n.startswith("model-")]
    check(len(shards) >= 3, f"expected several shards, got {names}")
    n = len(shards)
    check(shards == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)],
          f"shard names {shards}")
    check("model.safetensors" not in names, "stale model.safetensors beside an index")
    text = open(path("sh/model.safetensors.index.json")).read()
    index = json.loads(text)
    check(set(index) == {"metadata", "weight_map"}, "index keys")
    got, files = listed(path("sh"))
    check(got == expected_tensors(TINY, "BF16"), "sharded layout differs")
    nbytes = {k: int(np.prod(s)) * 2 for k, (_, s) in got.items()}
    check(index["metadata"]["total_size"] == sum(nbytes.values()), "total_size")
    check(index["weight_map"] == files, "weight_map disagrees with where st_open found tensors")
    check(list(index["weight_map"]) == sorted(index["weight_map"]), "weight_map not sorted")
    check(text.startswith('{\n  "metadata": {\n    "total_size": '), "index not HF-formatted")
    per_shard = {}
    for k, f in files.items():
        per_shard.setdefault(f, []).append(nbytes[k])
    for f, sizes in per_shard.items():
        check(sum(sizes) <= 65536 or len(sizes) == 1, f"{f} over the shard size")
    # sharding does not change values
    a, b = read_ckpt(path("single.safetensors")), read_ckpt(path("sh"))
    check(a.keys() == b.keys() and all(a[k][2] == b[k][2] for k in a), "sharded bytes differ")
    # an update of the sharded base, itself sharded, and one whole
    run("update", path("sh"), "-o", path("child-sh"), "--optimizer", "adamw",
        "--shard-size", "100K")
    run("update", path("sh"), "-o", path("child"), "--optimizer", "adamw")
    check(os.listdir(path("child")).count("model.safetensors") == 1, "unsharded child folder")
    a, b = read_ckpt(path("child-sh")), read_ckpt(path("child"))
    check(a.keys() == b.keys() and all(a[k][2] == b[k][2] for k in a), "child bytes differ")
    # re-writing a folder unsharded removes the stale index
    run("init", "--preset", "tiny", "-o", path("sh"))
    check(not os.path.exists(path("sh/model.safetensors.index.json")), "stale index kept")
    listed(path("sh"))


def case_config():
    run("init", *MEDIUM, "--dtype", "f32", "-o", path("m"))
    c = json.load(open(path("m/config.json")))
    want = {"architectures": ["Qwen3ForCausalLM"], "hidden_size": 512, "num_hidden_layers": 2,
            "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 64,
            "intermediate_size": 1536, "vocab_size": 8192, "tie_word_embeddings": True,
            "torch_dtype": "float32", "rms_norm_eps": 1e-6, "rope_theta": 1000000,
            "model_type": "qwen3"}
    for k, v in want.items():
        check(c.get(k) == v, f"config.json {k} = {c.get(k)!r}, expected {v!r}")
    # a folder child copies the base's config.json; a file base gets one inferred
    run("update", path("m"), "-o", path("m-child"), "--optimizer", "sgd")
    check(open(path("m/config.json")).read() == open(path("m-child/config.json")).read(),
          "child config.json differs from the base's")
    run("init", "--preset", "tiny", "-o", path("t.safetensors"))
    run("update", path("t.safetensors"), "-o", path("t-child"), "--optimizer", "sgd")
    c = json.load(open(path("t-child/config.json")))
    check(c["hidden_size"] == 64 and c["num_hidden_layers"] == 2 and c["head_dim"] == 16 and
          c["num_key_value_heads"] == 2 and not c["tie_word_embeddings"] and
          c["torch_dtype"] == "bfloat16", f"inferred config {c}")
    check(not os.path.exists(path("config.json")), "config.json beside a single-file output")


def files_equal(a, b):
    return open(a, "rb").read() == open(b, "rb").read()


def case_determinism():
    run("init", *MEDIUM, "--seed", "7", "-o", path("a.safetensors"))
    run("init", *MEDIUM, "--seed", "7", "--threads", "1", "-o", path("b.safetensors"))
    run("init", *MEDIUM, "--seed", "8", "--threads", "3", "-o", path("c.safetensors"))
    check(files_equal(path("a.safetensors"), path("b.safetensors")), "same seed, other bytes")
    check(not files_equal(path("a.safetensors"), path("c.safetensors")), "seed ignored")
    for opt in ("sgd", "adamw"):
        run("update", path("a.safetensors"), "--optimizer", opt, "--seed", "3", "--stripes",
            "-o", path(f"{opt}1.safetensors"))
        run("update", path("a.safetensors"), "--optimizer", opt, "--seed", "3", "--stripes",
            "--threads", "1", "-o", path(f"{opt}2.safetensors"))
        check(files_equal(path(f"{opt}1.safetensors"), path(f"{opt}2.safetensors")),
              f"{opt}: same seed, other bytes")
    run("update", path("a.safetensors"), "--optimizer", "adamw", "--seed", "4",
        "-o", path("adamw3.safetensors"))
    check(not files_equal(path("adamw1.safetensors"), path("adamw3.safetensors")),
          "update seed ignored")


def case_fractions():
    run("init", *MEDIUM, "-o", path("base.safetensors"))
    run("update", path("base.safetensors"), "--optimizer", "sgd", "-o", path("sgd.safetensors"))
    run("update", path("base.safetensors"), "--optimizer", "adamw", "-o", path("adamw.safetensors"))
    sgd = changed_fraction(path("base.safetensors"), path("sgd.safetensors"))
    adamw = changed_fraction(path("base.safetensors"), path("adamw.safetensors"))
    print(f"changed: sgd {sgd:.6%} (sparsity {1 - sgd:.4%}), adamw {adamw:.4%} "
          f"(sparsity {1 - adamw:.4%})")
    check(5e-5 <= sgd <= 2e-4, f"SGD changed {sgd:.6%}, expected 0.005%-0.02% (sparsity ~99.99%)")
    check(0.075 <= adamw <= 0.10, f"AdamW changed {adamw:.4%}, expected 7.5%-10% (sparsity ~91%)")
    # more steps, more change; the numpy count agrees with st_open's
    run("update", path("base.safetensors"), "--optimizer", "sgd", "--steps", "400",
        "-o", path("sgd400.safetensors"))
    check(changed_fraction(path("base.safetensors"), path("sgd400.safetensors")) > 3 * sgd,
          "SGD: 10x the steps did not change clearly more")
    a, b = read_ckpt(path("base.safetensors")), read_ckpt(path("adamw.safetensors"))
    n = c = 0
    for k in a:
        x = np.frombuffer(a[k][2], np.uint16)
        y = np.frombuffer(b[k][2], np.uint16)
        c += int(((x != y) & (((x | y) & 0x7FFF) != 0)).sum())
        n += x.size
    check(c / n == adamw, "numpy count differs from synth_dump's")
    # SGD's changes come from rounding: every changed element moved by exactly what float32
    # master arithmetic + RNE allows, i.e. the change is at least half an ULP of the base value
    a, b = read_ckpt(path("base.safetensors")), read_ckpt(path("sgd.safetensors"))
    for k in a:
        x = (np.frombuffer(a[k][2], np.uint16).astype(np.uint32) << 16).view(np.float32)
        y = (np.frombuffer(b[k][2], np.uint16).astype(np.uint32) << 16).view(np.float32)
        m = x != y
        if m.any():
            ulp = np.spacing(np.abs(x[m])) * 65536  # bf16 ULP = float32 ULP * 2^16
            check(np.all(np.abs(y[m] - x[m]) >= ulp * 0.5), f"{k}: change below half an ULP")


def head_counts(opt, name, axis):
    out = dump("heads", path("base.safetensors"), path(f"{opt}.safetensors"),
               f"model.layers.1.self_attn.{name}.weight", "64", str(axis))
    return [int(x) for x in out.split()]


def case_stripes():
    run("init", *MEDIUM, "-o", path("base.safetensors"))
    for opt, lr in (("adamw", "1e-6"), ("sgd", "10")):
        run("update", path("base.safetensors"), "--optimizer", opt, "--lr", lr, "--stripes",
            "-o", path(f"{opt}.safetensors"))
        for name, axis in (("q_proj", 0), ("o_proj", 1), ("k_proj", 0)):
            per = head_counts(opt, name, axis)
            hot = max(per)
            cold = sorted(per)[len(per) // 2 - 1]
            print(f"{opt} {name} per head: {per}")
            check(hot > 1.8 * cold, f"{opt} {name}: no stripe head ({per})")
            check(sum(x > 1.8 * cold for x in per) == 1, f"{opt} {name}: >1 stripe head {per}")
        # q's stripe head h and o's stripe head match; k's is h // (Q/K)
        heads = {}
        for name, axis in (("q_proj", 0), ("o_proj", 1), ("k_proj", 0)):
            per = head_counts(opt, name, axis)
            heads[name] = per.index(max(per))
        check(heads["q_proj"] == heads["o_proj"] and heads["k_proj"] == heads["q_proj"] // 2,
              f"{opt}: stripe heads disagree {heads}")


def case_order():
    run("init", "--preset", "tiny", "-o", path("base.safetensors"))
    run("init", "--preset", "tiny", "--order", "shuffled", "-o", path("shuf.safetensors"))
    o1, d1, _ = read_st(path("base.safetensors"))
    o2, d2, _ = read_st(path("shuf.safetensors"))
    check(o1 == sorted(o1) and o2 != o1 and sorted(o2) == o1, "shuffled order")
    check(all(d1[k] == d2[k] for k in o1), "shuffled init changed values")
    run("update", path("base.safetensors"), "--optimizer", "sgd", "-o", path("c1.safetensors"))
    run("update", path("base.safetensors"), "--optimizer", "sgd", "--order", "shuffled",
        "-o", path("c2.safetensors"))
    run("update", path("shuf.safetensors"), "--optimizer", "sgd", "-o", path("c3.safetensors"))
    _, c1, _ = read_st(path("c1.safetensors"))
    o2, c2, _ = read_st(path("c2.safetensors"))
    _, c3, _ = read_st(path("c3.safetensors"))
    check(o2 != sorted(o2), "update --order shuffled kept name order")
    check(all(c1[k] == c2[k] == c3[k] for k in c1), "values depend on the tensor order")
    run("update", path("base.safetensors"), "--optimizer", "adamw", "--order", "shuffled",
        "--shard-size", "40K", "-o", path("c4"))
    c4 = read_ckpt(path("c4"))
    check(c4.keys() == c1.keys(), "shuffled sharded child lost tensors")


def case_dtypes():
    for dt in ("f16", "f32"):
        run("init", "--preset", "tiny", "--dtype", dt, "-o", path(f"{dt}.safetensors"))
        run("update", path(f"{dt}.safetensors"), "--optimizer", "adamw",
            "-o", path(f"{dt}-child.safetensors"))
        got, _ = listed(path(f"{dt}-child.safetensors"))
        check(all(v[0] == dt.upper() for v in got.values()), f"{dt} child dtype")
        frac = changed_fraction(path(f"{dt}.safetensors"), path(f"{dt}-child.safetensors"))
        print(f"{dt} AdamW changed {frac:.2%}")
        # f16 has 3 more mantissa bits than bf16: much less sparse; f32: nothing stays (RL's Razor)
        check(frac > (0.3 if dt == "f16" else 0.95), f"{dt}: only {frac:.2%} changed")


def case_errors():
    run(expect=1)
    run("init", expect=1)
    run("frobnicate", "-o", path("x"), expect=1)
    run("init", "--preset", "qwen3-70b", "-o", path("x"), expect=1)
    run("init", "--preset", "tiny", "--heads", "3", "-o", path("x"), expect=1)
    run("init", "--preset", "tiny", "--dtype", "f8", "-o", path("x"), expect=1)
    run("init", "--preset", "tiny", "--shard-size", "1K", "-o", path("x.safetensors"), expect=1)
    run("init", "--preset", "tiny", "--shard-size", "12Q", "-o", path("x"), expect=1)
    run("init", "--preset", "tiny", "--bogus", "-o", path("x"), expect=1)
    run("update", path("missing.safetensors"), "-o", path("y"), "--optimizer", "sgd", expect=2)
    with open(path("bad.safetensors"), "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    run("update", path("bad.safetensors"), "-o", path("y"), "--optimizer", "sgd", expect=2)
    run("init", "--preset", "tiny", "-o", path("ok.safetensors"))
    run("update", path("ok.safetensors"), "-o", path("y"), expect=1)  # no --optimizer
    run("update", path("ok.safetensors"), "-o", path("y"), "--optimizer", "lion", expect=1)
    run("update", path("ok.safetensors"), "-o", path("y"), "--optimizer", "sgd", "--lr", "-1",
        expect=1)
    run("init", "--preset", "tiny", "-o", "/proc/ckpt-synth-test/x.safetensors", expect=4)
    open(path("afile"), "w").close()
    run("init", "--preset", "tiny", "-o", path("afile/sub"), expect=4)
    h = run("--help").stdout
    for word in ("--preset", "--target-bytes", "--shard-size", "--optimizer", "--stripes",
                 "--order", "--seed", "--threads", "exit status"):
        check(word in h, f"--help lacks {word}")
    check(not any(n.startswith("x") for n in os.listdir(TMP)), "failed runs left files")
    check(not any(".tmp." in n for n in os.listdir(TMP)), "temporary files left behind")


try:
    {"layout": case_layout, "sharded": case_sharded, "config": case_config,
     "determinism": case_determinism, "fractions": case_fractions, "stripes": case_stripes,
     "order": case_order, "dtypes": case_dtypes, "errors": case_errors}[CASE]()
    print(f"synth {CASE}: ok")
finally:
    shutil.rmtree(TMP, ignore_errors=True)
