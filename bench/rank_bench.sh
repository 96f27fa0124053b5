#!/bin/sh
# The rank benchmark: for a generated float32 dW of 4096x4096 and of 4096x14336 (a 1% sparse
# update plus a rank-64 part with decaying spectrum; bench/rank_bench.c), times
#   our full spectrum (LAPACKE_sgesdd 'N')   against numpy.linalg.svd(compute_uv=False) (float32:
#                                             LAPACK sgesdd as well) on the same matrix, and
#   our randomized top 16 (svd_topk)         against our full spectrum,
# with the same OpenBLAS threads for all, and prints the ratios and the largest relative error
# of the top-16 values. Goals (issue 5): full >= numpy speed; top 16 >= 10x faster, within 1%.
# usage: bench/rank_bench.sh [BUILD_DIR] [M,N ...]   (default build-rk; 4096,4096 4096,14336)
set -eu
build=${1:-build-rk}
[ $# -gt 0 ] && shift
sizes=${*:-"4096,4096 4096,14336"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
threads=${OPENBLAS_NUM_THREADS:-$(nproc)}
export OPENBLAS_NUM_THREADS=$threads
echo "machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "OPENBLAS_NUM_THREADS=$threads OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}" \
     "OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
for mn in $sizes; do
    m=${mn%,*}
    n=${mn#*,}
    "$build/tests/rank/rank_bench" "$m" "$n" "$tmp/dw.f32" > "$tmp/ours.json"
    /usr/bin/python3 - "$m" "$n" "$tmp/dw.f32" "$tmp/ours.json" <<'PY'
import json, sys, time
import numpy as np
m, n, path, ours = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
a = np.fromfile(path, dtype=np.float32).reshape(m, n)
t0 = time.perf_counter()
s = np.linalg.svd(a, compute_uv=False)
t_np = time.perf_counter() - t0
r = json.load(open(ours))
full, topk = np.array(r["full"]), np.array(r["topk"])
err_np = np.max(np.abs(full - s[:16]) / s[:16])
err_k = np.max(np.abs(topk - full) / full)
print(f"{m}x{n}: numpy svd {t_np:.2f} s, ours full {r['full_s']:.2f} s "
      f"(numpy/ours {t_np / r['full_s']:.2f}x; top-16 max rel diff vs numpy {err_np:.1e}); "
      f"randomized top-16 {r['topk_s']:.3f} s (full/top16 {r['full_s'] / r['topk_s']:.1f}x, "
      f"max rel error {err_k:.1e})")
PY
done
