#!/usr/bin/python3
"""numpy_scan.py: the numpy baseline of sparsity-scan, for bench/bench_scan.sh.

usage: numpy_scan.py A B [--tol T[,T...]] [--simple] [--f32] [--chunk N] [--json]

A and B are single-file safetensors checkpoints (BF16, F16, F32, F64 tensors are compared; others
are skipped). The header is parsed with json and the data section read through numpy.memmap; per
shared tensor, and in total, it counts what sparsity-scan counts (docs/metrics.md):
  changed      stored bits differ, +0 and -0 equal (via unsigned-integer views)
  nonfinite    pairs where a or b is NaN or +-Inf
  changed_tol  finite pairs with |b - a| > t, plus non-finite pairs whose bits differ
Two implementations, both exact (differences in float64, exact for bf16 and f16 pairs):
  default   bit tests on integer views for every element (changed, nonfinite); values are decoded
            only for the elements whose bits differ, since |b - a| > t >= 0 needs that
  --simple  the straightforward one: decode every element, subtract, compare
--f32 takes the differences in float32 instead (can differ from the definition only when the
exact difference lies within float32 rounding of t). Tensors are processed --chunk elements at a
time (default 65536: the temporaries stay in cache), so memory stays bounded.
Output: a table, or with --json {"totals": {...}, "tensors": [...]} with sparsity-scan's names
(tolerance keys are C's %g of the value).
"""
import ctypes
import json
import struct
import sys

import numpy as np


def malloc_keep_memory():
    """Stops glibc's malloc from mapping and unmapping every chunk's temporaries (arrays above
    its mmap threshold): without this, page faults made the --simple variant 6x slower here."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass

# dtype name -> (unsigned-integer view, sign bit, exponent bits)
BITS = {"BF16": (np.uint16, 0x8000, 0x7F80), "F16": (np.uint16, 0x8000, 0x7C00),
        "F32": (np.uint32, 0x80000000, 0x7F800000),
        "F64": (np.uint64, 0x8000000000000000, 0x7FF0000000000000)}


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h, 8 + n


def decode(bits, dtype, f32):
    """Unsigned-integer view -> float32 or float64 values, exactly."""
    if dtype == "BF16":
        v = (bits.astype(np.uint32) << 16).view(np.float32)
    elif dtype == "F16":
        v = bits.view(np.float16).astype(np.float32)
    elif dtype == "F32":
        v = bits.view(np.float32)
    else:
        v = bits.view(np.float64)
    return v if f32 else v.astype(np.float64)


def scan_simple(x, y, dtype, tols, f32, acc):
    view, sign, _ = BITS[dtype]
    mag = view(np.iinfo(view).max ^ sign)
    diff_bits = (x != y) & (((x | y) & mag) != 0)
    acc[0] += int(np.count_nonzero(diff_bits))
    xv, yv = decode(x, dtype, f32), decode(y, dtype, f32)
    finite = np.isfinite(xv) & np.isfinite(yv)
    nf = finite.size - int(np.count_nonzero(finite))
    acc[1] += nf
    d = np.abs(yv - xv)
    extra = 0
    if nf:
        d[~finite] = 0
        extra = int(np.count_nonzero(diff_bits & ~finite))
    for i, t in enumerate(tols):
        acc[2 + i] += int(np.count_nonzero(d > d.dtype.type(t))) + extra


def scan_masked(x, y, dtype, tols, f32, acc):
    view, sign, expo = BITS[dtype]
    mag, expo = view(np.iinfo(view).max ^ sign), view(expo)
    diff_bits = (x != y) & (((x | y) & mag) != 0)
    nonfinite = ((x & expo) == expo) | ((y & expo) == expo)
    acc[1] += int(np.count_nonzero(nonfinite))
    idx = np.flatnonzero(diff_bits)
    acc[0] += idx.size
    if idx.size == 0:
        return
    nf = nonfinite[idx]
    d = np.abs(decode(y[idx], dtype, f32) - decode(x[idx], dtype, f32))
    extra = int(np.count_nonzero(nf))
    if extra:
        d[nf] = 0
    for i, t in enumerate(tols):
        acc[2 + i] += int(np.count_nonzero(d > d.dtype.type(t))) + extra


def main():
    args = sys.argv[1:]
    tols, f32, simple, as_json, chunk, paths = [1e-5], False, False, False, 1 << 16, []
    i = 0
    while i < len(args):
        if args[i] == "--tol" and i + 1 < len(args):
            tols = [float(t) for t in args[i + 1].split(",")]
            i += 1
        elif args[i] == "--chunk" and i + 1 < len(args):
            chunk = int(args[i + 1])
            i += 1
        elif args[i] == "--f32":
            f32 = True
        elif args[i] == "--simple":
            simple = True
        elif args[i] == "--json":
            as_json = True
        elif args[i].startswith("-"):
            sys.exit(f"numpy_scan.py: unknown option {args[i]}\n{__doc__}")
        else:
            paths.append(args[i])
        i += 1
    if len(paths) != 2 or chunk < 1:
        sys.exit(__doc__)
    scan = scan_simple if simple else scan_masked
    malloc_keep_memory()
    (ha, oa), (hb, ob) = header(paths[0]), header(paths[1])
    ma = np.memmap(paths[0], dtype=np.uint8, mode="r", offset=oa)
    mb = np.memmap(paths[1], dtype=np.uint8, mode="r", offset=ob)
    keys = ["%g" % t for t in tols]
    tensors = []
    tot = {"numel": 0, "changed": 0, "nonfinite": 0, "changed_tol": dict.fromkeys(keys, 0)}
    for name in sorted(set(ha) & set(hb)):
        ta, tb = ha[name], hb[name]
        if ta["dtype"] != tb["dtype"] or ta["shape"] != tb["shape"]:
            sys.exit(f"numpy_scan.py: tensor '{name}': dtype or shape differ")
        if ta["dtype"] not in BITS:
            continue
        view = BITS[ta["dtype"]][0]
        a = ma[ta["data_offsets"][0]:ta["data_offsets"][1]].view(view)
        b = mb[tb["data_offsets"][0]:tb["data_offsets"][1]].view(view)
        acc = [0] * (2 + len(tols))  # changed, nonfinite, changed_tol...
        with np.errstate(invalid="ignore", over="ignore"):  # Inf - Inf: counted, not warned
            for s in range(0, a.size, chunk):
                scan(np.asarray(a[s:s + chunk]), np.asarray(b[s:s + chunk]), ta["dtype"], tols,
                     f32, acc)
        numel = int(np.prod(ta["shape"], dtype=np.int64))
        tensors.append({"name": name, "dtype": ta["dtype"], "shape": ta["shape"], "numel": numel,
                        "changed": acc[0], "nonfinite": acc[1],
                        "changed_tol": dict(zip(keys, acc[2:]))})
        tot["numel"] += numel
        tot["changed"] += acc[0]
        tot["nonfinite"] += acc[1]
        for k, v in zip(keys, acc[2:]):
            tot["changed_tol"][k] += v
    tot["sparsity"] = 1 - tot["changed"] / tot["numel"] if tot["numel"] else 1.0
    if as_json:
        json.dump({"schema": "numpy-scan/1", "totals": tot, "tensors": tensors}, sys.stdout,
                  indent=1)
        print()
        return
    for t in tensors:
        print(f"{t['name']:60s} {t['numel']:12d} {t['changed']:12d} "
              + " ".join(f"{t['changed_tol'][k]:12d}" for k in keys))
    print(f"{'TOTAL':60s} {tot['numel']:12d} {tot['changed']:12d} "
          + " ".join(f"{tot['changed_tol'][k]:12d}" for k in keys)
          + f"  sparsity {tot['sparsity']:.6%}")


if __name__ == "__main__":
    main()
