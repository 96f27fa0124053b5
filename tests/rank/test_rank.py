"""Oracle test of sparsity-scan --rank against numpy (an independent implementation): builds a
safetensors pair whose updates have known rank (0, 1, r, full; tall and wide; bf16 and f32) plus
a 1-D tensor, and compares every figure of --rank --json and of the /rank HDF5 group with
numpy.linalg.svd, matrix_rank and the formulas of docs/metrics.md. Also --rank-k (randomized).
usage: test_rank.py SPARSITY_SCAN"""
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

EPS = 2.0 ** -23
R = [1, 2, 4, 8, 16, 32, 64, 128, 256]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def close(a, b, rtol, atol, what):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    check(ok, f"{what}: {a} vs {b}")


def write_st(path, tensors):
    """tensors: name -> (dtype 'F32'|'BF16', float64 array of exactly representable values)."""
    header, blobs, off = {}, [], 0
    for name, (dt, arr) in tensors.items():
        f32 = np.ascontiguousarray(arr, dtype=np.float32)
        if dt == "BF16":
            bits = f32.view(np.uint32)
            assert np.all(bits & 0xFFFF == 0), name
            raw = (bits >> 16).astype("<u2").tobytes()
        else:
            raw = f32.astype("<f4").tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_pair(rng):
    ints = lambda lo, hi, shape: rng.integers(lo, hi + 1, size=shape).astype(np.float64)
    t_a, t_b = {}, {}
    def add(name, dt, a, d):
        t_a[name], t_b[name] = (dt, a), (dt, a + d)
    add("m.zero.weight", "F32", ints(-40, 40, (48, 40)), np.zeros((48, 40)))
    add("m.rank1.weight", "BF16", ints(-40, 40, (64, 48)),
        np.outer(ints(-3, 3, 64), ints(-3, 3, 48)))
    add("m.rank5.weight", "F32", ints(-40, 40, (40, 96)),
        ints(-3, 3, (40, 5)) @ ints(-3, 3, (5, 96)))
    add("m.full.weight", "BF16", ints(-40, 40, (96, 40)), ints(-8, 8, (96, 40)))
    d = np.zeros((56, 72))
    mask = rng.random((56, 72)) < 0.05
    d[mask] = ints(-5, 5, mask.sum())
    add("m.sparse.weight", "F32", ints(-40, 40, (56, 72)), d)
    add("m.norm.weight", "F32", ints(-40, 40, (64,)), ints(-2, 2, (64,)))
    return t_a, t_b


def oracle(a, b, k):
    a = a.astype(np.float32).astype(np.float64)
    b = b.astype(np.float32).astype(np.float64)
    dw = (b - a).astype(np.float32).astype(np.float64)
    m, n = dw.shape
    s = np.linalg.svd(dw, compute_uv=False)
    tol = (s[0] if s.size else 0) * max(m, n) * EPS
    nr = int(np.linalg.matrix_rank(dw, tol=tol)) if s[0] > 0 else 0
    # data built far from the tolerance: integer ranks are exact
    check(np.all(np.abs(s - tol) > 1e-3 * max(tol, 1e-30)) or s[0] == 0, "margin at tol")
    tot2 = np.sum(s ** 2)
    o = {"m": m, "n": n, "numerical_rank": nr, "numerical_rank_fraction": nr / min(m, n),
         "nnz": int(np.count_nonzero(b - a)), "sv": s}
    if tot2 == 0:
        o.update(effective_rank_99=0, entropy_rank=0.0, stable_rank=0.0,
                 energy_at_r=[0.0] * 9, rel_frobenius_error_at_r=[0.0] * 9)
    else:
        cum = np.cumsum(s ** 2) / tot2
        o["effective_rank_99"] = int(np.argmax(cum >= 0.99) + 1)
        check(np.min(np.abs(cum - 0.99)) > 1e-4, "margin at 99%")
        p = s / s.sum()
        p = p[p > 0]
        o["entropy_rank"] = float(np.exp(-np.sum(p * np.log(p))))
        o["stable_rank"] = float(tot2 / s[0] ** 2)
        o["energy_at_r"] = [float(cum[min(r, len(s)) - 1]) for r in R]
        o["rel_frobenius_error_at_r"] = [float(np.sqrt(max(0.0, np.sum(s[r:] ** 2)) / tot2))
                                         for r in R]
    o["lora_r_star"] = o["nnz"] / (m + n)
    ua, sa, _ = np.linalg.svd(a, full_matrices=False)
    ub, sb, _ = np.linalg.svd(b, full_matrices=False)
    kk = min(k, min(m, n))
    c = np.linalg.svd(ua[:, :kk].T @ ub[:, :kk], compute_uv=False)
    o["principal_angles"] = list(np.arccos(np.clip(c, 0, 1))) + [float("nan")] * (k - kk)
    o["spectral_shift"] = float(np.linalg.norm(sb - sa) / np.linalg.norm(sa))
    return o


def compare(name, got, o, sv, what):
    w = f"{what} {name}"
    for key in ("m", "n", "numerical_rank", "effective_rank_99", "nnz"):
        check(got[key] == o[key], f"{w} {key}: {got[key]} != {o[key]}")
    close(got["numerical_rank_fraction"], o["numerical_rank_fraction"], 0, 1e-12, w + " frac")
    close(got["entropy_rank"], o["entropy_rank"], 1e-3, 1e-6, w + " entropy_rank")
    close(got["stable_rank"], o["stable_rank"], 1e-4, 1e-6, w + " stable_rank")
    close(got["energy_at_r"], o["energy_at_r"], 1e-4, 1e-6, w + " energy_at_r")
    close(got["rel_frobenius_error_at_r"], o["rel_frobenius_error_at_r"], 1e-3, 2e-4,
          w + " rel_frobenius_error_at_r")
    close(got["lora_r_star"], o["lora_r_star"], 1e-12, 0, w + " lora_r_star")
    close(got["principal_angles"], o["principal_angles"], 0, 3e-3, w + " principal_angles")
    close(got["spectral_shift"], o["spectral_shift"], 1e-4, 1e-6, w + " spectral_shift")
    if sv is not None:
        close(sv, o["sv"], 0, 1e-4 * o["sv"][0] + 1e-30, w + " singular values")


def main():
    exe = sys.argv[1]
    rng = np.random.default_rng(5)
    t_a, t_b = make_pair(rng)
    with tempfile.TemporaryDirectory() as tmp:
        pa, pb, h5 = (os.path.join(tmp, x) for x in ("a.safetensors", "b.safetensors", "r.h5"))
        write_st(pa, t_a)
        write_st(pb, t_b)
        k = 4
        run = subprocess.run([exe, pa, pb, "--quiet", "--json", "--rank", "--rank-angles", str(k),
                              "--h5", h5], capture_output=True, text=True)
        check(run.returncode == 0, f"exit {run.returncode}: {run.stderr}")
        doc = json.loads(run.stdout)
        check("tensors" in doc and "totals" in doc, "scan report kept")
        rank = doc["rank"]
        check(rank["method"] == "full" and rank["k"] is None and rank["angles_k"] == k, "rank meta")
        by = {t["name"]: t for t in rank["tensors"]}
        check("note" in by["m.norm.weight"] and "1-D" in by["m.norm.weight"]["note"], "1-D note")
        oracles = {}
        for name, (dt, a) in t_a.items():
            if a.ndim != 2:
                continue
            oracles[name] = oracle(a, t_b[name][1], k)
            compare(name, by[name], oracles[name], None, "json")
        mdl = rank["model"]
        nnz = sum(o["nnz"] for o in oracles.values())
        mpn = sum(o["m"] + o["n"] for o in oracles.values())
        check(mdl["nmatrices"] == 5 and mdl["nskipped"] == 1, f"model counts {mdl}")
        check(mdl["nnz"] == nnz and mdl["sum_m_plus_n"] == mpn, "model nnz")
        close(mdl["lora_r_star"], nnz / mpn, 1e-12, 0, "model r*")
        close(mdl["lora_params_at_r"], [r * mpn for r in R], 0, 0, "model lora params")
        z = by["m.zero.weight"]
        check(z["numerical_rank"] == 0 and z["stable_rank"] == 0 and z["entropy_rank"] == 0,
              "zero update: ranks 0")
        check(by["m.rank1.weight"]["numerical_rank"] == 1, "rank 1")
        check(by["m.rank5.weight"]["numerical_rank"] == 5, "rank 5")
        check(by["m.full.weight"]["numerical_rank"] == 40, "full rank")

        if h5py is not None:
            with h5py.File(h5, "r") as f:
                check("tensors" in f, "h5: scan report kept")
                g = f["rank"]
                names = [x.decode() if isinstance(x, bytes) else x for x in g["name"][...]]
                check(names == sorted(oracles), f"h5 names {names}")
                skipped = [x.decode() if isinstance(x, bytes) else x for x in g["skipped"][...]]
                check(skipped == ["m.norm.weight"], f"h5 skipped {skipped}")
                check(g["energy_at_r"].shape == (5, 9) and g["principal_angles"].shape == (5, k),
                      "h5 shapes")
                check(g["energy_at_r"].compression == "gzip" and g["energy_at_r"].shuffle,
                      "h5 filters")
                for i, name in enumerate(names):
                    got = {key: g[key][i] for key in
                           ("m", "n", "numerical_rank", "numerical_rank_fraction",
                            "effective_rank_99", "entropy_rank", "stable_rank", "nnz",
                            "lora_r_star", "spectral_shift")}
                    got["energy_at_r"] = g["energy_at_r"][i]
                    got["rel_frobenius_error_at_r"] = g["rel_frobenius_error_at_r"][i]
                    got["principal_angles"] = g["principal_angles"][i]
                    compare(name, got, oracles[name], g["singular_values/" + name][...], "h5")
        else:
            print("note: h5py missing, HDF5 part not checked", file=sys.stderr)

        # randomized top 8: exact where the rank is below 8 + 10, never above the true values
        run = subprocess.run([exe, pa, pb, "--quiet", "--json", "--rank", "--rank-k", "8"],
                             capture_output=True, text=True)
        check(run.returncode == 0, f"--rank-k exit {run.returncode}: {run.stderr}")
        rk = {t["name"]: t for t in json.loads(run.stdout)["rank"]["tensors"]}
        for name in ("m.rank1.weight", "m.rank5.weight", "m.zero.weight"):
            o = oracles[name]
            for key in ("numerical_rank", "effective_rank_99"):
                check(rk[name][key] == o[key], f"rank-k {name} {key}: {rk[name][key]} {o[key]}")
            close(rk[name]["energy_at_r"][:4], o["energy_at_r"][:4], 1e-4, 1e-6,
                  f"rank-k {name} energy")
            close(rk[name]["stable_rank"], o["stable_rank"], 1e-4, 1e-6, f"rank-k {name} stable")
        f = rk["m.full.weight"]
        check(f["numerical_rank"] is None and f["entropy_rank"] is None, "rank-k full: nulls")
        check(f["energy_at_r"][4] is None and f["energy_at_r"][0] is not None, "rank-k nulls")
        check(f["energy_at_r"][0] <= oracles["m.full.weight"]["energy_at_r"][0] * (1 + 1e-5),
              "rank-k never overestimates")

        # the table
        run = subprocess.run([exe, pa, pb, "--quiet", "--rank"], capture_output=True, text=True)
        check(run.returncode == 0 and "rank of the update" in run.stdout
              and "m.norm.weight: skipped: 1-D" in run.stdout, "table section")
        run = subprocess.run([exe, pa, pb, "--rank-k", "x"], capture_output=True, text=True)
        check(run.returncode == 1, "--rank-k x is a usage error")
    if failures:
        print(f"{len(failures)} checks failed", file=sys.stderr)
        return 1
    print("test_rank: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
