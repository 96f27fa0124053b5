#!/usr/bin/env python3
"""--delta-dtype against the published script's arithmetic.

The script of "RL finetunes small subnetworks" subtracts two bf16 tensors in bf16 (torch computes
the float32 difference and rounds it to bf16) and counts |delta| > tol. This oracle does exactly
that in numpy for BF16 and F16 pairs whose exponents are within 16 of each other (so the float32
difference is exact, as it is for real weights), with values around the tolerances so that many
differences land on and next to the rounding boundaries, and requires sparsity-scan
--delta-dtype same (and bf16 / f16) to report the same counts; without the option the exact
difference is used and the counts differ.
usage: test_delta_dtype.py SPARSITY_SCAN
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

SCAN = sys.argv[1]
TOLS = [1e-5, 1e-6, 3e-7, 2.0 ** -17]


def bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_rne(x):
    """float32 -> bf16 bits, round to nearest even (finite inputs)."""
    u = x.view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def random_bf16(rng, n):
    """bf16 values with magnitudes in [2^-28, 2^-13) and random signs (exponents within 15)."""
    exp = rng.integers(127 - 28, 127 - 13, n).astype(np.uint16)
    man = rng.integers(0, 128, n).astype(np.uint16)
    sign = rng.integers(0, 2, n).astype(np.uint16)
    return (sign << 15) | (exp << 7) | man


def random_f16(rng, n):
    exp = rng.integers(15 - 14, 15 - 1, n).astype(np.uint16)  # normal f16, 2^-14 .. 2^-2
    man = rng.integers(0, 1024, n).astype(np.uint16)
    sign = rng.integers(0, 2, n).astype(np.uint16)
    return ((sign << 15) | (exp << 10) | man).view(np.float16)


def scan(a, b, extra):
    out = subprocess.run([SCAN, a, b, "--json", "--quiet", "--tol", ",".join(repr(t) for t in TOLS)]
                         + extra, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"FAIL: sparsity-scan exited {out.returncode}: {out.stderr}")
    return {t["name"]: t for t in json.loads(out.stdout)["tensors"]}


def main():
    rng = np.random.default_rng(11)
    n = 1 << 20
    a16, b16 = random_bf16(rng, n), random_bf16(rng, n)
    b16[: n // 4] = a16[: n // 4]  # some unchanged
    fa, fb = random_f16(rng, n), random_f16(rng, n)
    # f16 pairs around the tolerance: b = a + small offsets
    fb[: n // 2] = (fa[: n // 2].astype(np.float32)
                    + rng.normal(0, 2e-5, n // 2).astype(np.float32)).astype(np.float16)

    # Oracle: float32 difference (exact here), rounded to the tensor's dtype, compared in double.
    d_bf16 = bf16_bits_to_f32(f32_to_bf16_rne(bf16_bits_to_f32(b16) - bf16_bits_to_f32(a16)))
    d_f16 = (fb.astype(np.float32) - fa.astype(np.float32)).astype(np.float16)
    d_exact_bf16 = bf16_bits_to_f32(b16).astype(np.float64) - bf16_bits_to_f32(a16).astype(np.float64)
    want = {
        "w.bf16": [int((np.abs(d_bf16.astype(np.float64)) > t).sum()) for t in TOLS],
        "w.f16": [int((np.abs(d_f16.astype(np.float64)) > t).sum()) for t in TOLS],
    }
    exact = [int((np.abs(d_exact_bf16) > t).sum()) for t in TOLS]

    tmp = tempfile.mkdtemp(prefix="ss-dd-")
    pa, pb = os.path.join(tmp, "a.safetensors"), os.path.join(tmp, "b.safetensors")
    # numpy has no bfloat16: the files are written with a hand-built header.
    write_with_bf16(pa, {"w.f16": fa}, "w.bf16", a16)
    write_with_bf16(pb, {"w.f16": fb}, "w.bf16", b16)

    keys = ["%g" % t for t in TOLS]
    got = scan(pa, pb, ["--delta-dtype", "same"])
    for name in want:
        counts = [got[name]["changed_tol"][k] for k in keys]
        if counts != want[name]:
            sys.exit(f"FAIL: {name}: --delta-dtype same gives {counts}, the script's arithmetic {want[name]}")
    got_bf16 = scan(pa, pb, ["--delta-dtype", "bf16"])["w.bf16"]
    if [got_bf16["changed_tol"][k] for k in keys] != want["w.bf16"]:
        sys.exit("FAIL: --delta-dtype bf16 differs from the oracle on the BF16 tensor")
    got_f16 = scan(pa, pb, ["--delta-dtype", "f16"])["w.f16"]
    if [got_f16["changed_tol"][k] for k in keys] != want["w.f16"]:
        sys.exit("FAIL: --delta-dtype f16 differs from the oracle on the F16 tensor")
    plain = scan(pa, pb, [])["w.bf16"]
    if [plain["changed_tol"][k] for k in keys] != exact:
        sys.exit("FAIL: without --delta-dtype the exact difference must be used")
    if exact == want["w.bf16"]:
        sys.exit("FAIL: test data too weak: rounding changes no count")
    bad = subprocess.run([SCAN, pa, pb, "--delta-dtype", "f8"], capture_output=True, text=True)
    if bad.returncode != 1:
        sys.exit(f"FAIL: --delta-dtype f8 should be a usage error, got {bad.returncode}")
    print("ok: --delta-dtype reproduces the bf16/f16 subtraction;", dict(zip(keys, want["w.bf16"])),
          "vs exact", dict(zip(keys, exact)))
    return 0


def write_with_bf16(path, np_tensors, bf16_name, bf16_bits):
    """Rewrites path with np_tensors plus one BF16 tensor given by its bits."""
    entries, blobs, off = {}, [], 0
    items = [(k, v.dtype.str, v.shape, v.tobytes()) for k, v in np_tensors.items()]
    items.append((bf16_name, "BF16", bf16_bits.shape, bf16_bits.astype("<u2").tobytes()))
    for name, dt, shape, raw in sorted(items):
        dtype = {"<f2": "F16"}.get(dt, dt)
        entries[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header = json.dumps(entries).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for raw in blobs:
            f.write(raw)


if __name__ == "__main__":
    sys.exit(main())
