#!/usr/bin/env bash
# analyses_bench.sh: what the analyses of issue 4 cost on top of the scan. For each cached pair
# (base vs sgd, base vs adamw: ~2 GB bf16 checkpoints made by bench/bench_scan.sh), runs, in an
# alternating order, RUNS times each:
#   read     bench/read-bound A B (maps both files and reads every byte once on all cores)
#   plain    sparsity-scan A B --tol 1e-8,1e-6,1e-5 --quiet --json
#   h5       plain + --h5 OUT.h5                    (the report file alone)
#   masks    plain + --masks --h5 OUT.h5
#   hist     plain + --hist
#   maps     plain + --maps --head-dim 128 --h5 OUT.h5
#   all      plain + --hist --maps --head-dim 128 --h5 OUT.h5   (grouping is always on)
#   start    sparsity-scan --version                  (start-up alone: loading the libraries)
#   plain1   plain with OPENBLAS_NUM_THREADS=1         (a control: OpenBLAS's worker threads,
#            which the tools park at start, must cost plain nothing: plain1 ~ plain)
# and prints, per pair, the median wall time and median user+system CPU time of each, and the
# issue's ratios: masks/plain (goal <= 1.2; also masks/h5), read/hist and read/all (goal >= 0.6
# of the read bound: read time over the command's time). Wall time is what the goals are about;
# CPU time is the steadier figure on a shared machine. The page cache is warmed first.
#
# usage: bench/analyses_bench.sh [--builddir DIR] [--cache DIR] [--runs N] [--threads N]
#                                [--out F.h5] [--pairs "sgd adamw"]
#   --builddir DIR  meson build folder holding analyze/sparsity-scan and bench/read-bound
#                   (default <repo>/build)
#   --cache DIR     where base/sgd/adamw.safetensors are (default /tmp/ss-bench); run
#                   bench/bench_scan.sh once to make them
#   --runs N        timed runs per command, median taken (default 5)
#   --threads N     passed to sparsity-scan (default: all cores)
#   --out F.h5      the HDF5 file written (default /tmp/analyses-bench.h5; removed at the end)
# Exit status: 0 when every goal is met, 1 when one is not, 2 when something is missing or fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
CACHE="/tmp/ss-bench"
RUNS=5
THREADS=()
OUT="/tmp/analyses-bench.h5"
PAIRS="sgd adamw"

while [ $# -gt 0 ]; do
    case "$1" in
    --builddir) BUILD="$2"; shift 2 ;;
    --cache) CACHE="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --threads) THREADS=(--threads "$2"); shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --pairs) PAIRS="$2"; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "analyses_bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

SCAN="$BUILD/analyze/sparsity-scan"
READ="$BUILD/bench/read-bound"
for x in "$SCAN" "$READ"; do
    [ -x "$x" ] || { echo "analyses_bench.sh: $x is not built" >&2; exit 2; }
done
for f in base $PAIRS; do
    if [ ! -f "$CACHE/$f.safetensors" ]; then
        echo "analyses_bench.sh: $CACHE/$f.safetensors is missing (run bench/bench_scan.sh once)" >&2
        exit 2
    fi
done
TIMES=$(mktemp)
CPUF=$(mktemp)
trap 'rm -f "$TIMES" "$CPUF" "$OUT"' EXIT

# timed NAME CMD...: one run; appends "NAME wall cpu" to TIMES.
timed() {
    local name=$1 t0 t1 cpu
    shift
    t0=$(date +%s.%N)
    /usr/bin/time -o "$CPUF" -f '%U %S' "$@" >/dev/null 2>&1 \
        || { echo "analyses_bench.sh: failed: $*" >&2; exit 2; }
    t1=$(date +%s.%N)
    echo "$name $(echo "$t1 - $t0" | bc -l) $(awk '{print $1 + $2}' "$CPUF")" >>"$TIMES"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); runs: median of $RUNS; threads: ${THREADS[1]:-all}"
status=0
for child in $PAIRS; do
    A="$CACHE/base.safetensors"
    B="$CACHE/$child.safetensors"
    base=("$SCAN" "$A" "$B" --tol 1e-8,1e-6,1e-5 --quiet --json "${THREADS[@]}")
    "${base[@]}" >/dev/null # warm the page cache
    : >"$TIMES"
    for _ in $(seq "$RUNS"); do # alternating, so that drifting load hits every command alike
        timed read "$READ" "$A" "$B"
        timed plain "${base[@]}"
        timed h5 "${base[@]}" --h5 "$OUT"
        timed masks "${base[@]}" --masks --h5 "$OUT"
        timed hist "${base[@]}" --hist
        timed maps "${base[@]}" --maps --head-dim 128 --h5 "$OUT"
        timed all "${base[@]}" --hist --maps --head-dim 128 --h5 "$OUT"
        timed start "$SCAN" --version
        timed plain1 env OPENBLAS_NUM_THREADS=1 "${base[@]}"
    done
    python3 - "$TIMES" "$child" <<'PY' || status=1
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for name in dict.fromkeys(r[0] for r in rows):
    med[name] = (statistics.median(float(r[1]) for r in rows if r[0] == name),
                 statistics.median(float(r[2]) for r in rows if r[0] == name))
print(f"\nbase vs {sys.argv[2]}: median wall s / CPU s")
for name, (w, c) in med.items():
    print(f"  {name:6s} {w:7.3f} / {c:6.3f}")
goals = [("masks/plain", med["masks"][0] / med["plain"][0], "<=", 1.2),
         ("read/hist", med["read"][0] / med["hist"][0], ">=", 0.6),
         ("read/all", med["read"][0] / med["all"][0], ">=", 0.6)]
print(f"  read/plain {med['read'][0] / med['plain'][0]:.3f}   masks/h5 "
      f"{med['masks'][0] / med['h5'][0]:.3f}   (CPU: masks/plain "
      f"{med['masks'][1] / med['plain'][1]:.3f})")
ok = True
for what, v, op, g in goals:
    met = v <= g if op == "<=" else v >= g
    ok &= met
    print(f"  {what:11s} {v:.3f}  goal {op} {g}: {'met' if met else 'NOT MET'}")
sys.exit(0 if ok else 1)
PY
done
exit $status
