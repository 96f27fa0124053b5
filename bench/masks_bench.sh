#!/usr/bin/env bash
# masks_bench.sh: what --masks costs. For each cached pair in the cache folder (base vs sgd,
# base vs adamw: ~2 GB bf16 checkpoints made by bench/bench_scan.sh), times, best of --runs,
#   plain   sparsity-scan A B --tol 1e-8,1e-6,1e-5 --quiet --json
#   h5      the same with --h5 OUT.h5                  (the cost of the report file alone)
#   masks   the same with --masks --h5 OUT.h5
# and prints masks/plain (the issue's goal: <= 1.2) and masks/h5. The page cache is warmed first
# (one untimed plain run per pair). Timing is the process wall time (date +%s.%N around it).
#
# usage: bench/masks_bench.sh [--builddir DIR] [--cache DIR] [--runs N] [--threads N] [--out F.h5]
#   --builddir DIR  meson build folder holding analyze/sparsity-scan (default <repo>/build)
#   --cache DIR     where base/sgd/adamw.safetensors are (default /tmp/ss-bench); this script
#                   does not generate them: run bench/bench_scan.sh once for that
#   --runs N        timed runs per command, best taken (default 3)
#   --threads N     passed to sparsity-scan (default: all cores)
#   --out F.h5      the HDF5 file written (default /tmp/x.h5; removed at the end)
# Exit status: 0 when every masks/plain ratio is <= 1.2, 1 when one is not, 2 when something is
# missing or a run fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
CACHE="/tmp/ss-bench"
RUNS=3
THREADS=()
OUT="/tmp/x.h5"
GOAL="1.2"

while [ $# -gt 0 ]; do
    case "$1" in
    --builddir) BUILD="$2"; shift 2 ;;
    --cache) CACHE="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --threads) THREADS=(--threads "$2"); shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "masks_bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

SCAN="$BUILD/analyze/sparsity-scan"
if [ ! -x "$SCAN" ]; then
    echo "masks_bench.sh: $SCAN is not built" >&2
    exit 2
fi
for f in base sgd adamw; do
    if [ ! -f "$CACHE/$f.safetensors" ]; then
        echo "masks_bench.sh: $CACHE/$f.safetensors is missing (run bench/bench_scan.sh once)" >&2
        exit 2
    fi
done

# best_of CMD...: the smallest wall time of RUNS runs, in seconds.
best_of() {
    local best="" t0 t1 t
    for _ in $(seq "$RUNS"); do
        t0=$(date +%s.%N)
        "$@" >/dev/null || { echo "masks_bench.sh: failed: $*" >&2; exit 2; }
        t1=$(date +%s.%N)
        t=$(echo "$t1 - $t0" | bc -l)
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
    done
    printf '%.3f' "$best"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "scan path: ${SS_SCAN_ISA:-default}; runs: best of $RUNS; threads: ${THREADS[1]:-all}"
status=0
for child in sgd adamw; do
    A="$CACHE/base.safetensors"
    B="$CACHE/$child.safetensors"
    args=("$A" "$B" --tol 1e-8,1e-6,1e-5 --quiet --json "${THREADS[@]}")
    "$SCAN" "${args[@]}" >/dev/null # warm the page cache
    plain=$(best_of "$SCAN" "${args[@]}")
    h5=$(best_of "$SCAN" "${args[@]}" --h5 "$OUT")
    masks=$(best_of "$SCAN" "${args[@]}" --masks --h5 "$OUT")
    size=$(stat -c %s "$OUT")
    r_plain=$(echo "$masks / $plain" | bc -l)
    r_h5=$(echo "$masks / $h5" | bc -l)
    verdict=ok
    if [ "$(echo "$r_plain > $GOAL" | bc -l)" = 1 ]; then verdict="OVER GOAL $GOAL"; status=1; fi
    printf 'base vs %-5s  plain %6.3fs  h5 %6.3fs  masks %6.3fs  masks/plain %.3f (%s)  masks/h5 %.3f  h5 file %d bytes\n' \
        "$child" "$plain" "$h5" "$masks" "$r_plain" "$verdict" "$r_h5" "$size"
done
rm -f "$OUT"
exit $status
