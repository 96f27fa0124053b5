"""tests/gpu/compare_reports.py: are two sparsity-scan HDF5 reports of the same pair the same,
one from --device cpu and one from --device cuda? (tests/gpu/run.sh; docs/cuda.md)

usage: python3 compare_reports.py CPU.h5 CUDA.h5

Integer, string and boolean datasets and attributes must be equal; floating-point ones equal
within 1e-6 relative (the scan's double sums differ only by summation order), NaN where the other
has NaN; under /rank (LAPACK against cuSOLVER) within 1e-4 of the dataset's largest magnitude
(spectral_shift 2e-3; principal_angles only reported: see RANK_LOOSE), and the integer ranks
within 1. The root attribute command_line is not compared. Prints one line
per difference and a summary; exit 0 when equal in that sense, 1 when not. Needs h5py and numpy."""
import sys

import h5py
import numpy as np

SKIP_ATTRS = {"command_line"}
# /rank datasets that are ill-conditioned functions of the spectra, with their limits (relative to
# the dataset's largest value): the spectral shift, a difference of two nearly equal spectra
# (6e-4 seen on an H200, 2026-11-28); and the principal angles between the top-k singular
# subspaces of A and B, only reported: the test pair's weights are random, with closely spaced
# top singular values, so the top-16 subspaces are ill-defined and two SVD algorithms give
# angles up to 0.23 of the largest apart (seen: 0, 0.019, 0.092, 0.233 on four fresh pairs).
RANK_LOOSE = {"spectral_shift": 2e-3, "principal_angles": float("inf")}


def close(path, x, y):
    """None when x and y agree, else a short reason."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape:
        return f"shape {x.shape} vs {y.shape}"
    if x.dtype.kind in "fc":
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            return "NaN positions differ"
        ok = ~np.isnan(x)
        if not ok.any():
            return None
        d = np.abs(x[ok] - y[ok])
        if path.startswith("/rank"):
            scale = max(np.abs(x[ok]).max(), 1e-300)
            worst = d.max() / scale
            limit = RANK_LOOSE.get(path.rsplit("/", 1)[-1], 1e-4)
            if limit == float("inf"):
                print(f"note {path}: max diff {worst:.3g} of the largest value (not checked)")
                return None
            return None if worst <= limit else f"max diff {worst:.3g} of the largest value"
        rel = d / np.maximum(np.abs(x[ok]), 1e-300)
        worst = rel.max()
        return None if worst <= 1e-6 else f"max relative diff {worst:.3g}"
    if path.startswith("/rank") and x.dtype.kind in "iu":
        worst = np.abs(x.astype(np.int64) - y.astype(np.int64)).max(initial=0)
        return None if worst <= 1 else f"integer ranks differ by up to {worst}"
    if not np.array_equal(x, y):
        n = int(np.sum(x != y)) if x.shape else 1
        return f"{n} elements differ"
    return None


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    problems, checked = [], 0
    with h5py.File(sys.argv[1], "r") as fa, h5py.File(sys.argv[2], "r") as fb:
        names_a, names_b = [], []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        only_a, only_b = set(names_a) - set(names_b), set(names_b) - set(names_a)
        for only, where in ((only_a, "CPU"), (only_b, "CUDA")):
            for n in sorted(only):
                problems.append(f"/{n}: only in the {where} report")
        for obj_path in [""] + sorted(set(names_a) & set(names_b)):
            oa = fa[obj_path] if obj_path else fa
            ob = fb[obj_path] if obj_path else fb
            path = "/" + obj_path
            for key in sorted(set(oa.attrs) | set(ob.attrs)):
                if obj_path == "" and key in SKIP_ATTRS:
                    continue
                if key not in oa.attrs or key not in ob.attrs:
                    problems.append(f"{path} attribute {key}: in one report only")
                    continue
                why = close(path, oa.attrs[key], ob.attrs[key])
                checked += 1
                if why:
                    problems.append(f"{path} attribute {key}: {why}")
            if isinstance(oa, h5py.Dataset):
                why = close(path, oa[()], ob[()])
                checked += 1
                if why:
                    problems.append(f"{path}: {why}")
    for p in problems:
        print("DIFF", p)
    print(f"compare_reports: {checked} datasets and attributes compared, {len(problems)} differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
