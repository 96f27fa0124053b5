"""Oracle test of sparsity-compare against numpy (an independent implementation). Builds BASE, X
and Y checkpoints (F32, BF16, F16; tall, wide, low-rank, zero, identical and opposite updates,
plus tensors that must be skipped or listed as absent) and PEFT LoRA adapter folders, runs
sparsity-compare --json and --h5, and compares every figure with numpy: cosines and norms from
the decoded values in float64, subspace overlaps and principal cosines from numpy.linalg.svd.
usage: test_compare.py CASE SPARSITY_COMPARE [CKPT_DELTA]   (CASE: oracle | lora | errors)"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

try:
    import h5py
except ImportError:  # pragma: no cover
    h5py = None

try:
    from safetensors.numpy import load_file as st_load
except ImportError:  # pragma: no cover
    st_load = None

EPS = 2.0 ** -23
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def close(a, b, rtol, atol, what):
    a = np.asarray([np.nan if v is None else v for v in np.atleast_1d(a)], dtype=float)
    b = np.asarray(np.atleast_1d(b), dtype=float)
    ok = a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    check(ok, f"{what}: {a} vs {b}")


# ---- fixtures ----

def to_bf16_bits(arr):
    """float64 -> bf16 bits (round to nearest even)."""
    bits = np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return bits.astype("<u2")


def decode(dt, arr):
    """The value a dtype stores for arr (float64 in, float64 out)."""
    if dt == "F32":
        return arr.astype(np.float32).astype(np.float64)
    if dt == "F16":
        return arr.astype(np.float16).astype(np.float64)
    if dt == "BF16":
        return (to_bf16_bits(arr).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if dt == "F64":
        return arr.astype(np.float64)
    return arr


def write_st(path, tensors):
    """tensors: name -> (dtype, array). Values are rounded to the dtype."""
    header, blobs, off = {}, [], 0
    for name, (dt, arr) in tensors.items():
        if dt == "BF16":
            raw = to_bf16_bits(arr).tobytes()
        elif dt == "F16":
            raw = np.asarray(arr).astype("<f2").tobytes()
        elif dt == "F32":
            raw = np.asarray(arr).astype("<f4").tobytes()
        elif dt == "F64":
            raw = np.asarray(arr).astype("<f8").tobytes()
        elif dt == "I64":
            raw = np.asarray(arr).astype("<i8").tobytes()
        else:
            raise ValueError(dt)
        header[name] = {"dtype": dt, "shape": list(np.shape(arr)),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    if st_load is not None and all(dt in ("F32", "F16", "F64", "I64")
                                   for dt, _ in tensors.values()):
        back = st_load(path)  # the reference reader agrees with the fixture writer
        for name, (dt, arr) in tensors.items():
            check(np.array_equal(back[name].astype(np.float64), decode(dt, np.asarray(arr, float)),
                                 equal_nan=True),
                  f"fixture {name} read back by safetensors")


def spectrum(rng, m, n, s):
    """An (m, n) matrix with the given leading singular values (random orthonormal vectors)."""
    q1, _ = np.linalg.qr(rng.standard_normal((m, len(s))))
    q2, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return (q1 * np.asarray(s)) @ q2.T


# ---- the oracle ----

def oracle(dx, dy, K):
    """dx, dy: the exact updates (float64). Figures as docs/metrics.md defines them."""
    m, n = dx.shape
    o = {"m": m, "n": n, "dot": float(np.sum(dx * dy)), "norm_x": float(np.linalg.norm(dx)),
         "norm_y": float(np.linalg.norm(dy))}
    o["cosine"] = (o["dot"] / (o["norm_x"] * o["norm_y"])
                   if o["norm_x"] > 0 and o["norm_y"] > 0 else None)
    if o["cosine"] is None:
        o.update(k=0, left_overlap=None, right_overlap=None, left_cosines=[], right_cosines=[],
                 left_random=None, right_random=None)
        return o
    fx = dx.astype(np.float32).astype(np.float64)
    fy = dy.astype(np.float32).astype(np.float64)
    ux, sx, vxt = np.linalg.svd(fx, full_matrices=False)
    uy, sy, vyt = np.linalg.svd(fy, full_matrices=False)
    kq = min(K, m, n)
    tol = lambda s: s[0] * max(m, n) * EPS
    rx = int(np.sum(sx[:kq] > tol(sx)))
    ry = int(np.sum(sy[:kq] > tol(sy)))
    for s in (sx, sy):  # data built far from the tolerance
        check(np.all(np.abs(s[:kq + 1] - tol(s)) > 0.5 * tol(s)), "margin at the rank tolerance")
    k = min(kq, rx, ry)
    o.update(k=k, rank_x=rx, rank_y=ry, sigma1_x=sx[0], sigma1_y=sy[0])
    ml = ux[:, :k].T @ uy[:, :k]
    mr = vxt[:k] @ vyt[:k].T
    o["left_overlap"] = float(np.sum(ml ** 2) / k)
    o["right_overlap"] = float(np.sum(mr ** 2) / k)
    o["left_cosines"] = list(np.clip(np.linalg.svd(ml, compute_uv=False), 0, 1))
    o["right_cosines"] = list(np.clip(np.linalg.svd(mr, compute_uv=False), 0, 1))
    o["left_random"], o["right_random"] = k / m, k / n
    return o


def compare_tensor(got, o, what, sub_tol=1e-4):
    name = got["name"]
    w = f"{what} {name}"
    for key in ("m", "n", "k"):
        check(got[key] == o[key], f"{w} {key}: {got[key]} != {o[key]}")
    close(got["dot"], o["dot"], 1e-12, 1e-300, w + " dot")
    close(got["norm_x"], o["norm_x"], 1e-12, 0, w + " norm_x")
    close(got["norm_y"], o["norm_y"], 1e-12, 0, w + " norm_y")
    if o["cosine"] is None:
        check(got["cosine"] is None and "cosine_note" in got, f"{w}: null cosine with a note")
    else:
        close(got["cosine"], o["cosine"], 1e-12, 1e-13, w + " cosine")
    if o["k"]:
        for key in ("rank_x", "rank_y"):
            check(got[key] == o[key], f"{w} {key}: {got[key]} != {o[key]}")
        close(got["sigma1_x"], o["sigma1_x"], 1e-5, 0, w + " sigma1_x")
        close(got["sigma1_y"], o["sigma1_y"], 1e-5, 0, w + " sigma1_y")
    for key in ("left_overlap", "right_overlap", "left_random", "right_random"):
        close(got[key], o[key], 0, sub_tol if "overlap" in key else 1e-15, f"{w} {key}")
    close(got["left_cosines"], o["left_cosines"], 0, sub_tol, w + " left_cosines")
    close(got["right_cosines"], o["right_cosines"], 0, sub_tol, w + " right_cosines")


def run(exe, *args):
    return subprocess.run([exe, *args], capture_output=True, text=True)


def strs(ds):
    return [x.decode() if isinstance(x, bytes) else x for x in ds[...]]


def check_h5(path, doc, what):
    """The /compare group holds the JSON report's numbers."""
    if h5py is None:
        print("note: h5py missing, HDF5 part not checked", file=sys.stderr)
        return
    K = doc["subspace_k"]
    with h5py.File(path, "r") as f:
        check(f.attrs["schema"] == "sparsity-compare/1", f"{what}: h5 schema")
        check(list(strs_attr(f.attrs["inputs"])) == [doc["base"], doc["x"], doc["y"]],
              f"{what}: h5 inputs")
        check(f.attrs["x_kind"] == doc["x_kind"], f"{what}: h5 x_kind")
        g = f["compare"]
        names = strs(g["name"])
        check(names == [t["name"] for t in doc["tensors"]], f"{what}: h5 names {names}")
        check(g["left_cosines"].shape == (len(names), K), f"{what}: h5 cosines shape")
        if names:
            check(g["cosine"].compression == "gzip" and g["cosine"].shuffle, f"{what}: filters")
        for i, t in enumerate(doc["tensors"]):
            for key in ("m", "n", "k"):
                check(int(g[key][i]) == t[key], f"{what}: h5 {key} of {t['name']}")
            for key in ("dot", "norm_x", "norm_y", "cosine", "left_overlap", "right_overlap",
                        "left_random", "right_random", "sigma1_x", "sigma1_y"):
                close(g[key][i], t[key], 0, 0, f"{what}: h5 {key} of {t['name']}")
            close(g["left_cosines"][i], t["left_cosines"] + [None] * (K - t["k"]), 0, 0,
                  f"{what}: h5 left_cosines of {t['name']}")
            close(g["right_cosines"][i], t["right_cosines"] + [None] * (K - t["k"]), 0, 0,
                  f"{what}: h5 right_cosines of {t['name']}")
            check(strs(g["cosine_note"])[i] == t.get("cosine_note", ""), f"{what}: h5 note")
            check(strs(g["k_note"])[i] == t.get("k_note", ""), f"{what}: h5 k_note")
        check(strs(g["skipped"]) == [s["name"] for s in doc["skipped"]], f"{what}: h5 skipped")
        check(strs(g["absent"]) == [s["name"] for s in doc["absent"]], f"{what}: h5 absent")
        check(strs(g["absent_note"]) == [s["note"] for s in doc["absent"]], f"{what}: h5 notes")
        for key, v in doc["model"].items():
            close(g.attrs[key], v, 0, 0, f"{what}: h5 model {key}")
        if doc["x_kind"] == "lora":
            check(strs(g["no_lora"]) == doc["lora"]["no_lora"], f"{what}: h5 no_lora")
            close(g.attrs["lora_scale"], doc["lora"]["scale"], 0, 0, f"{what}: h5 lora_scale")


def strs_attr(v):
    return [x.decode() if isinstance(x, bytes) else x for x in v]


def check_model(doc, oracles, what):
    mdl = doc["model"]
    dot = sum(o["dot"] for o in oracles.values())
    sx = sum(o["norm_x"] ** 2 for o in oracles.values())
    sy = sum(o["norm_y"] ** 2 for o in oracles.values())
    check(mdl["nmatrices"] == len(oracles), f"{what}: nmatrices {mdl['nmatrices']}")
    close(mdl["dot"], dot, 1e-12, 0, what + " model dot")
    close(mdl["norm_x"], np.sqrt(sx), 1e-12, 0, what + " model norm_x")
    close(mdl["norm_y"], np.sqrt(sy), 1e-12, 0, what + " model norm_y")
    close(mdl["cosine"], dot / np.sqrt(sx * sy), 1e-12, 1e-14, what + " model cosine")
    ov = [o for o in oracles.values() if o["k"]]
    check(mdl["noverlap"] == len(ov), f"{what}: noverlap")
    check(mdl["nzero_x"] == sum(o["norm_x"] == 0 for o in oracles.values()), what + " nzero_x")
    close(mdl["mean_left_random"], np.mean([o["left_random"] for o in ov]), 1e-12, 0,
          what + " mean_left_random")


# ---- case: oracle ----

def make_oracle_fixture(rng, d):
    g = rng.standard_normal
    base, x, y, upd = {}, {}, {}, {}

    def add(name, dt, b, dxx, dyy):
        bb = decode(dt, b)
        base[name] = (dt, b)
        x[name] = (dt, bb + dxx)
        y[name] = (dt, bb + dyy)
        upd[name] = dt

    # separated spectra: top-4 singular values far above the rest (randomized SVD is exact there)
    sx = [90, 70, 50, 30] + [0.5] * 20
    sy = [80, 60, 45, 25] + [0.4] * 20
    shared = spectrum(rng, 64, 48, [40, 20])
    add("model.layers.0.mlp.down_proj.weight", "F32", g((64, 48)),
        spectrum(rng, 64, 48, sx), spectrum(rng, 64, 48, sy) + shared)
    add("model.layers.0.mlp.up_proj.weight", "BF16", g((40, 96)) * 0.25,
        spectrum(rng, 40, 96, sx) * 0.1, spectrum(rng, 40, 96, sy) * 0.1)
    add("model.layers.0.self_attn.o_proj.weight", "F16", g((32, 32)),
        spectrum(rng, 32, 32, [8, 6, 4, 3, 0.01]), spectrum(rng, 32, 32, [7, 5, 3.5, 2, 0.02]))
    d_same = spectrum(rng, 56, 40, sx)
    add("model.layers.1.identical.weight", "F32", g((56, 40)), d_same, d_same)
    # integer base, deltas on a 2^-10 grid: X - BASE and Y - BASE are exactly d and -d
    d_opp = np.round(spectrum(rng, 40, 56, sx) * 1024) / 1024
    add("model.layers.1.opposite.weight", "F32", np.round(g((40, 56)) * 8), d_opp, -d_opp)
    add("model.layers.1.zero_x.weight", "F32", g((24, 20)), np.zeros((24, 20)),
        spectrum(rng, 24, 20, [3, 2, 1, 0.5]))
    add("model.layers.1.zero_both.weight", "BF16", g((16, 24)), np.zeros((16, 24)),
        np.zeros((16, 24)))
    # k clamps: min(m, n) = 3 < K, and a rank-1 X (exact integers)
    add("model.layers.2.thin.weight", "F32", g((3, 50)), spectrum(rng, 3, 50, [5, 3, 2]),
        spectrum(rng, 3, 50, [4, 3, 1]))
    add("model.layers.2.rank1.weight", "F32", np.round(g((36, 30)) * 8),
        np.outer(rng.integers(-3, 4, 36), rng.integers(-3, 4, 30)).astype(float),
        spectrum(rng, 36, 30, sy))
    # not compared
    base["model.norm.weight"] = ("F32", g(16))
    x["model.norm.weight"] = ("F32", g(16))
    y["model.norm.weight"] = ("F32", g(16))
    base["model.ids"] = ("I64", rng.integers(0, 9, (4, 4)))
    x["model.ids"] = y["model.ids"] = base["model.ids"]
    base["model.only_base_y.weight"] = y["model.only_base_y.weight"] = ("F32", g((4, 4)))
    x["model.only_x.weight"] = ("F32", g((4, 4)))
    paths = [os.path.join(d, f) for f in ("base.safetensors", "x.safetensors", "y.safetensors")]
    for p, t in zip(paths, (base, x, y)):
        write_st(p, t)
    oracles_in = {}
    for name, dt in upd.items():
        b = decode(dt, base[name][1])
        oracles_in[name] = (decode(dt, x[name][1]) - b, decode(dt, y[name][1]) - b)
    return paths, oracles_in


def case_oracle(exe, ckpt_delta=None):
    rng = np.random.default_rng(7)
    K = 4
    with tempfile.TemporaryDirectory() as d:
        paths, upd = make_oracle_fixture(rng, d)
        oracles = {name: oracle(dx, dy, K) for name, (dx, dy) in upd.items()}
        h5 = os.path.join(d, "c.h5")
        for mode in ([], ["--exact-svd"]):
            r = run(exe, *paths, "--json", "--quiet", "--subspace-k", str(K), "--h5", h5, *mode)
            check(r.returncode == 0, f"{mode}: exit {r.returncode}: {r.stderr}")
            check(r.stderr == "", f"{mode}: stderr is empty with --quiet: {r.stderr!r}")
            doc = json.loads(r.stdout)
            what = "exact" if mode else "randomized"
            check(doc["schema"] == "sparsity-compare/1" and doc["subspace_k"] == K
                  and doc["svd"] == what and doc["x_kind"] == "checkpoint", f"{what}: header")
            by = {t["name"]: t for t in doc["tensors"]}
            check(sorted(by) == sorted(oracles), f"{what}: compared {sorted(by)}")
            for name, o in oracles.items():
                compare_tensor(by[name], o, what)
            check_model(doc, oracles, what)
            check_h5(h5, doc, what)

            # the named cases
            t = by["model.layers.1.identical.weight"]
            check(t["cosine"] == 1.0, f"{what}: identical updates: cosine {t['cosine']}")
            close([t["left_overlap"], t["right_overlap"]], [1, 1], 0, 1e-5, what + " identical")
            t = by["model.layers.1.opposite.weight"]
            check(t["cosine"] == -1.0, f"{what}: opposite updates: cosine {t['cosine']}")
            close([t["left_overlap"], t["right_overlap"]], [1, 1], 0, 1e-5, what + " opposite")
            t = by["model.layers.1.zero_x.weight"]
            check(t["cosine"] is None and t["cosine_note"] == "dW_X = 0" and t["k"] == 0
                  and t["norm_x"] == 0 and t["left_overlap"] is None, f"{what}: zero X {t}")
            t = by["model.layers.1.zero_both.weight"]
            check(t["cosine"] is None and t["cosine_note"] == "dW_X = dW_Y = 0", f"{what}: 0, 0")
            t = by["model.layers.2.thin.weight"]
            check(t["k"] == 3 and t["k_note"] == "k clamped to min(m, n)", f"{what}: thin {t}")
            close(t["left_overlap"], 1.0, 0, 1e-5, what + " thin: the whole R^3")
            t = by["model.layers.2.rank1.weight"]
            check(t["k"] == 1 and t["k_note"] == "k clamped to the numerical rank of dW_X"
                  and t["rank_x"] == 1, f"{what}: rank-1 {t}")
            check("k_note" not in by["model.layers.0.mlp.down_proj.weight"], what + " no k_note")
            check({s["name"]: s["note"] for s in doc["skipped"]} ==
                  {"model.norm.weight": "skipped: 1-D (not a matrix)",
                   "model.ids": "skipped: not a floating-point dtype"}, f"{what}: skipped")
            check({s["name"]: s["note"] for s in doc["absent"]} ==
                  {"model.only_base_y.weight": "absent from X",
                   "model.only_x.weight": "absent from BASE and Y"}, f"{what}: absent")
            check(doc["model"]["nskipped"] == 2, f"{what}: nskipped")

        # results do not depend on --threads
        outs = []
        for th in ("1", "2"):
            r = run(exe, *paths, "--json", "--quiet", "--threads", th)
            doc = json.loads(r.stdout)
            doc.pop("seconds")
            outs.append(doc)
        check(outs[0] == outs[1], "--threads 1 and 2 give the same report")
        check(outs[0]["subspace_k"] == 16, "default --subspace-k is 16")

        # run-folder inputs: RUN@base and RUN@STEP give the same report as the files
        if ckpt_delta:
            rd = os.path.join(d, "run")
            os.makedirs(rd)
            with open(paths[0], "rb") as src:
                raw = src.read()
            with open(os.path.join(rd, "base.safetensors"), "wb") as dst:
                dst.write(raw)
            r = subprocess.run([ckpt_delta, "snapshot", rd, paths[1], "--step", "5"],
                               capture_output=True, text=True)
            check(r.returncode == 0, f"ckpt-delta snapshot: {r.stderr}")
            r = run(exe, rd + "@base", rd + "@5", paths[2], "--json", "--quiet")
            check(r.returncode == 0, f"RUN@STEP: exit {r.returncode}: {r.stderr}")
            doc = json.loads(r.stdout)
            check(doc["base"] == rd + "@base" and doc["x"] == rd + "@5", "RUN@STEP: inputs")
            for key in ("base", "x", "seconds"):
                doc.pop(key)
            ref = dict(outs[0])
            for key in ("base", "x"):
                ref.pop(key)
            check(doc == ref, "RUN@STEP inputs give the same report as the files")
        else:
            print("note: no ckpt-delta, RUN@STEP inputs not checked", file=sys.stderr)

        # the table: stdout only the report, no progress
        r = run(exe, *paths)
        check(r.returncode == 0 and "model: 9 matrices" in r.stdout
              and "model.layers.1.zero_x.weight: dW_X = 0" in r.stdout
              and "model.only_x.weight: absent from BASE and Y" in r.stdout
              and "\r" not in r.stdout, f"table: {r.stdout[:2000]}")


# ---- case: lora ----

def write_adapter(d, cfg, tensors):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(cfg, f)
    write_st(os.path.join(d, "adapter_model.safetensors"), tensors)


def case_lora(exe):
    rng = np.random.default_rng(11)
    g = rng.standard_normal
    shapes = {"model.layers.0.self_attn.q_proj.weight": (48, 32),
              "model.layers.0.self_attn.v_proj.weight": (16, 32),
              "model.layers.0.mlp.down_proj.weight": (32, 80)}
    with tempfile.TemporaryDirectory() as d:
        for cfg_extra, r, alpha, scale, tag in (({}, 4, 8, 2.0, "alpha/r"),
                                                 ({"use_rslora": True}, 4, 6, 3.0,
                                                  "alpha/sqrt(r)")):
            base = {n: ("F32", np.round(g(s) * 16)) for n, s in shapes.items()}
            base["model.norm.weight"] = ("F32", g(32))
            y = dict(base)
            ad, exact = {}, {}
            for name in ("model.layers.0.self_attn.q_proj.weight",
                         "model.layers.0.mlp.down_proj.weight"):
                m, n = shapes[name]
                a = rng.integers(-3, 4, (r, n)).astype(float)
                b = rng.integers(-3, 4, (m, r)).astype(float)
                stem = "base_model.model." + name[: -len(".weight")]
                dt = "BF16" if "down" in name else "F32"  # small integers: exact in bf16
                ad[stem + ".lora_A.weight"] = (dt, a)
                ad[stem + ".lora_B.weight"] = (dt, b)
                exact[name] = scale * b @ a
                y[name] = ("F32", base[name][1] + exact[name])  # merged: exact in f32
            vname = "model.layers.0.self_attn.v_proj.weight"
            dv = spectrum(rng, 16, 32, [4, 3, 2, 1])
            y[vname] = ("F32", base[vname][1] + dv)  # no LoRA pair: dW_X = 0
            ad["base_model.model.lm_head.weight"] = ("F32", g((4, 4)))  # ignored
            sub = os.path.join(d, tag.replace("/", "_"))
            os.makedirs(sub)
            pb, py = os.path.join(sub, "base.safetensors"), os.path.join(sub, "y.safetensors")
            write_st(pb, base)
            write_st(py, y)
            adir = os.path.join(sub, "adapter")
            cfg = {"peft_type": "LORA", "r": r, "lora_alpha": alpha,
                   "target_modules": ["q_proj", "down_proj"], **cfg_extra}
            write_adapter(adir, cfg, ad)
            h5 = os.path.join(sub, "c.h5")
            res = run(exe, pb, adir, py, "--json", "--quiet", "--h5", h5)
            check(res.returncode == 0, f"{tag}: exit {res.returncode}: {res.stderr}")
            doc = json.loads(res.stdout)
            lo = doc["lora"]
            check(doc["x_kind"] == "lora" and lo["r"] == r and lo["scale"] == scale
                  and lo["scale_rule"] == tag and lo["npairs"] == 2, f"{tag}: lora header {lo}")
            check(lo["no_lora"] == [vname], f"{tag}: no_lora {lo['no_lora']}")
            check(lo["ignored"] == ["base_model.model.lm_head.weight"], f"{tag}: ignored")
            by = {t["name"]: t for t in doc["tensors"]}
            oracles = {}
            for name in shapes:
                dx = exact.get(name, np.zeros(shapes[name]))
                dy = decode("F32", y[name][1]) - decode("F32", base[name][1])
                oracles[name] = oracle(dx, dy, 16)
                compare_tensor(by[name], oracles[name], tag)
            for name in exact:
                t = by[name]
                check(t["cosine"] == 1.0, f"{tag}: merged LoRA = Y - BASE: cosine {t['cosine']}")
                check(t["x_source"] == "lora" and t["k"] == r
                      and t["k_note"] == "k clamped to the numerical rank of dW_X and dW_Y",
                      f"{tag}: k {t['k']} {t.get('k_note')}")
                close([t["left_overlap"], t["right_overlap"]], [1, 1], 0, 1e-5, tag + " overlap")
            t = by[vname]
            check(t["x_source"] == "zero" and t["cosine"] is None
                  and t["cosine_note"] == "dW_X = 0", f"{tag}: no pair {t}")
            check_model(doc, oracles, tag)
            check_h5(h5, doc, tag)

        # a LoRA update that is not Y's: cosine from numpy, scale alpha/r with alpha 16, r 8
        r, alpha = 8, 16
        name = "model.layers.0.self_attn.q_proj.weight"
        base = {name: ("F32", g((48, 32)))}
        a, b = g((r, 32)) * 0.1, g((48, r)) * 0.1
        y = {name: ("F32", base[name][1] + (alpha / r) * b @ a + 0.05 * g((48, 32)))}
        pb, py = os.path.join(d, "b2.safetensors"), os.path.join(d, "y2.safetensors")
        write_st(pb, base)
        write_st(py, y)
        adir = os.path.join(d, "adapter2")
        stem = "base_model.model.model.layers.0.self_attn.q_proj"
        write_adapter(adir, {"r": r, "lora_alpha": alpha, "use_rslora": False},
                      {stem + ".lora_A.weight": ("F32", a), stem + ".lora_B.weight": ("F32", b)})
        res = run(exe, pb, adir, py, "--json", "--quiet", "--exact-svd")
        check(res.returncode == 0, f"random LoRA: exit {res.returncode}: {res.stderr}")
        doc = json.loads(res.stdout)
        dx = (alpha / r) * decode("F32", b) @ decode("F32", a)
        dy = decode("F32", y[name][1]) - decode("F32", base[name][1])
        o = oracle(dx, dy, 16)
        t = doc["tensors"][0]
        compare_tensor(t, o, "random LoRA")
        check(0.5 < t["cosine"] < 0.999, f"random LoRA: a partial cosine {t['cosine']}")

        # adapter errors
        def adapter_case(cfg, tensors, code, text, what):
            ad2 = os.path.join(d, "bad_" + what.replace(" ", "_"))
            write_adapter(ad2, cfg, tensors)
            res = run(exe, pb, ad2, py, "--json", "--quiet")
            check(res.returncode == code and text in res.stderr and res.stdout == "",
                  f"{what}: exit {res.returncode} ({code}), stderr {res.stderr!r}")

        good = {stem + ".lora_A.weight": ("F32", a), stem + ".lora_B.weight": ("F32", b)}
        adapter_case({"r": r, "lora_alpha": alpha},
                     {stem + ".lora_A.weight": ("F32", a),
                      stem + ".lora_B.weight": ("F32", b[:40])},
                     3, stem + ".lora_B.weight", "lora_B rows mismatch")
        other = "base_model.model.model.layers.9.mlp.up_proj"
        adapter_case({"r": r, "lora_alpha": alpha},
                     {**good, other + ".lora_A.weight": ("F32", a),
                      other + ".lora_B.weight": ("F32", b)},
                     3, other + ".lora_A.weight", "target missing from BASE")
        adapter_case({"r": r, "lora_alpha": alpha}, {stem + ".lora_A.weight": ("F32", a)},
                     2, "no matching lora_B", "lone lora_A")
        adapter_case({"lora_alpha": alpha}, good, 2, "\"r\"", "config without r")
        adapter_case({"r": 4, "lora_alpha": alpha}, good, 2, "r = 4", "r disagrees")
        adapter_case({"r": r, "lora_alpha": alpha, "use_dora": True}, good, 2, "use_dora", "dora")
        ad3 = os.path.join(d, "no_weights")
        os.makedirs(ad3)
        with open(os.path.join(ad3, "adapter_config.json"), "w") as f:
            json.dump({"r": r, "lora_alpha": alpha}, f)
        res = run(exe, pb, ad3, py, "--quiet")
        check(res.returncode == 2 and "adapter_model.safetensors" in res.stderr,
              f"adapter without weights: exit {res.returncode} {res.stderr!r}")
        res = run(exe, pb, py, adir, "--quiet")
        check(res.returncode == 1 and "only X" in res.stderr, f"adapter as Y: {res.returncode}")


# ---- case: errors ----

def case_errors(exe):
    rng = np.random.default_rng(3)
    g = rng.standard_normal
    with tempfile.TemporaryDirectory() as d:
        p = lambda f: os.path.join(d, f)
        w = "model.layers.0.mlp.up_proj.weight"
        write_st(p("base.st"), {w: ("F32", g((8, 6))), "b": ("F32", g(3))})
        write_st(p("x.st"), {w: ("F32", g((8, 6))), "b": ("F32", g(3))})
        write_st(p("y.st"), {w: ("F32", g((8, 6))), "b": ("F32", g(3))})
        write_st(p("shape.st"), {w: ("F32", g((6, 8))), "b": ("F32", g(3))})
        write_st(p("dtype.st"), {w: ("BF16", g((8, 6))), "b": ("F32", g(3))})
        h5 = p("out.h5")

        def expect(args, code, text, what):
            r = run(exe, *args)
            check(r.returncode == code, f"{what}: exit {r.returncode}, wanted {code}: {r.stderr}")
            check(text in r.stderr, f"{what}: stderr lacks {text!r}: {r.stderr!r}")
            check(r.stdout == "", f"{what}: stdout not empty: {r.stdout[:200]!r}")
            check(not os.path.exists(h5), f"{what}: {h5} left behind")
            check(not [f for f in os.listdir(d) if ".tmp." in f], f"{what}: temporary left")

        ok = [p("base.st"), p("x.st"), p("y.st")]
        expect([p("base.st"), p("shape.st"), p("y.st"), "--h5", h5], 3, f"tensor '{w}'",
               "shape mismatch in X")
        expect([p("base.st"), p("x.st"), p("dtype.st"), "--h5", h5, "--json"], 3,
               f"tensor '{w}': Y has BF16", "dtype mismatch in Y")
        expect([p("base.st"), p("nope.st"), p("y.st"), "--h5", h5], 2, "nope.st", "missing X")
        expect([p("missing_base"), p("x.st"), p("y.st")], 2, "missing_base", "missing BASE")
        with open(p("junk.st"), "wb") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
        expect([p("base.st"), p("x.st"), p("junk.st"), "--h5", h5], 2, "junk.st", "malformed Y")
        expect(ok + ["--bogus"], 1, "--bogus", "unknown option")
        expect(ok + ["--subspace-k", "0"], 1, "--subspace-k", "k 0")
        expect(ok + ["--subspace-k", "abc"], 1, "--subspace-k", "k abc")
        expect(ok + ["--subspace-k", "5000"], 1, "--subspace-k", "k too large")
        expect(ok + ["--threads", "-1"], 1, "--threads", "threads -1")
        expect(ok[:2], 1, "three", "two inputs")
        expect(ok + [p("y.st")], 1, "three", "four inputs")
        expect(ok + ["--h5"], 1, "--h5", "--h5 without a name")
        expect(ok + ["--h5", p("no/such/dir/out.h5"), "--json"], 4, "no/such/dir/out.h5",
               "unwritable --h5")
        r = run(exe, "--help")
        check(r.returncode == 0 and "usage: sparsity-compare BASE X Y" in r.stdout, "--help")
        r = run(exe, *ok, "--json", "--quiet", "--h5", h5)
        check(r.returncode == 0 and os.path.exists(h5), f"the good run: {r.stderr}")
        check(json.loads(r.stdout)["skipped"] == [{"name": "b", "note":
                                                   "skipped: 1-D (not a matrix)"}], "good: skip")
        # non-finite values: the matrix is skipped with a note, not an error
        write_st(p("nan.st"), {w: ("F32", np.where(np.arange(48).reshape(8, 6) == 5, np.nan,
                                                   g((8, 6)))), "b": ("F32", g(3))})
        r = run(exe, p("base.st"), p("x.st"), p("nan.st"), "--json", "--quiet")
        doc = json.loads(r.stdout) if r.returncode == 0 else {}
        check(r.returncode == 0 and doc["tensors"] == [] and doc["skipped"][1]["name"] == w
              and "non-finite" in doc["skipped"][1]["note"], f"NaN: {r.returncode} {r.stderr}")


def main():
    case, exe = sys.argv[1], sys.argv[2]
    if case == "oracle":
        case_oracle(exe, sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        {"lora": case_lora, "errors": case_errors}[case](exe)
    if failures:
        print(f"{len(failures)} checks failed", file=sys.stderr)
        return 1
    print(f"test_compare {case}: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
