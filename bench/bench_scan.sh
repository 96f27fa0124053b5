#!/usr/bin/env bash
# bench_scan.sh: the one benchmark of sparsity-scan anyone can run.
#
# Builds what it needs, generates (once, cached) a ~2 GB bf16 Qwen3-like base checkpoint and two
# children (SGD-like and AdamW-like) with ckpt-synth, warms the page cache, then for each pair
# measures, best of --runs runs, all timed the same way (bench/peak_anon.py: process wall time):
#   read-bound       every byte of A and B read once on all cores: the speed limit
#   sparsity-scan    A B --tol 1e-8,1e-6,1e-5 --quiet --json   (GB/s = bytes of A+B / wall)
#   numpy_scan.py    the numpy baseline in three variants: the default (bit tests everywhere,
#                    values decoded only where bits differ), --simple (decode, subtract, compare
#                    every element, float64) and --simple --f32
# and checks the goals: scan >= 0.7 x read bound, >= 20x the fastest numpy variant whose counts
# agree (the speedups over the others are printed too), peak RssAnon < 256 MiB, and identical
# counts (totals and every tensor) with every numpy variant (the --f32 one: information only).
#
# usage: bench/bench_scan.sh [--builddir DIR] [--cache DIR] [--target-bytes SIZE] [--runs N]
#                            [--threads N] [--regen]
#   --builddir DIR      meson build folder (default: <repo>/build; set up if missing)
#   --cache DIR         where the checkpoints live (default /tmp/ss-bench)
#   --target-bytes SIZE size of each checkpoint (default 2G), see ckpt-synth --help
#   --runs N            timed runs per command, best taken (default 3)
#   --threads N         passed to sparsity-scan and read-bound (default: all cores)
#   --regen             regenerate the checkpoints even if cached
# Exit status: 0 when every goal passes, 1 when one fails, 2 when something could not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
CACHE="/tmp/ss-bench"
TARGET="2G"
RUNS=3
THREADS=""
REGEN=0
PY=/usr/bin/python3
TOLS="1e-8,1e-6,1e-5"

die() { echo "bench_scan: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --builddir) BUILD="$(realpath -m "$2")"; shift 2 ;;
    --cache) CACHE="$(realpath -m "$2")"; shift 2 ;;
    --target-bytes) TARGET="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --regen) REGEN=1; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
[ "$RUNS" -ge 1 ] 2>/dev/null || die "--runs needs a positive integer"
[ -x "$PY" ] || die "$PY is missing (Debian: apt-get install python3-numpy)"
"$PY" -c "import numpy" 2>/dev/null || die "numpy is missing for $PY (apt-get install python3-numpy)"

# ---- build ----
if [ ! -f "$BUILD/build.ninja" ]; then
  echo "bench_scan: setting up $BUILD" >&2
  meson setup "$BUILD" "$ROOT" >/dev/null || die "meson setup failed"
fi
ninja -C "$BUILD" analyze/sparsity-scan bench/read-bound train/ckpt-synth >/dev/null \
  || die "build failed (ninja -C $BUILD)"
SCAN="$BUILD/analyze/sparsity-scan"
READ="$BUILD/bench/read-bound"
SYNTH="$BUILD/train/ckpt-synth"
THREAD_ARGS=()
[ -n "$THREADS" ] && THREAD_ARGS=(--threads "$THREADS")

# ---- checkpoints (cached; a stamp records how they were made) ----
mkdir -p "$CACHE"
STAMP="ckpt-synth $("$SYNTH" --version) target $TARGET seed 0"
if [ "$REGEN" = 1 ] || [ "$(cat "$CACHE/stamp" 2>/dev/null)" != "$STAMP" ] \
   || [ ! -f "$CACHE/base.safetensors" ] || [ ! -f "$CACHE/sgd.safetensors" ] \
   || [ ! -f "$CACHE/adamw.safetensors" ]; then
  rm -f "$CACHE/stamp"
  echo "bench_scan: generating the checkpoints in $CACHE (once)" >&2
  t0=$(date +%s.%N)
  "$SYNTH" init -o "$CACHE/base.safetensors" --target-bytes "$TARGET" --seed 0
  "$SYNTH" update "$CACHE/base.safetensors" -o "$CACHE/sgd.safetensors" --optimizer sgd --seed 1
  "$SYNTH" update "$CACHE/base.safetensors" -o "$CACHE/adamw.safetensors" --optimizer adamw --seed 1
  t1=$(date +%s.%N)
  echo "bench_scan: generated 3 checkpoints in $(awk "BEGIN {printf \"%.1f\", $t1 - $t0}") s" >&2
  echo "$STAMP" > "$CACHE/stamp"
fi

# ---- measurements ----
WORK="$(mktemp -d /tmp/ss-bench-run.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
echo "bench_scan: warming the page cache" >&2
cat "$CACHE/base.safetensors" "$CACHE/sgd.safetensors" "$CACHE/adamw.safetensors" > /dev/null

# timed NAME OUTFILE CMD...: runs CMD through peak_anon.py, keeps stdout of the last run
timed() {
  local name="$1" out="$2"; shift 2
  for i in $(seq 1 "$RUNS"); do
    "$PY" "$ROOT/bench/peak_anon.py" -o "$WORK/$name.$i.json" "$@" > "$out" 2>> "$WORK/log" \
      || die "$name failed (exit $?): $*; see below
$(tail -5 "$WORK/log")"
  done
}

for pair in sgd adamw; do
  A="$CACHE/base.safetensors"; B="$CACHE/$pair.safetensors"
  echo "bench_scan: $pair pair" >&2
  timed "$pair.read" "$WORK/$pair.read.out" "$READ" "${THREAD_ARGS[@]}" "$A" "$B"
  timed "$pair.scan" "$WORK/$pair.scan.out" "$SCAN" "$A" "$B" --tol "$TOLS" --quiet --json \
    "${THREAD_ARGS[@]}"
  timed "$pair.npmask" "$WORK/$pair.npmask.out" "$PY" "$ROOT/bench/numpy_scan.py" "$A" "$B" \
    --tol "$TOLS" --json
  timed "$pair.np64" "$WORK/$pair.np64.out" "$PY" "$ROOT/bench/numpy_scan.py" "$A" "$B" \
    --tol "$TOLS" --simple --json
  timed "$pair.np32" "$WORK/$pair.np32.out" "$PY" "$ROOT/bench/numpy_scan.py" "$A" "$B" \
    --tol "$TOLS" --simple --f32 --json
done

# ---- the table ----
CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
CORES="$(nproc)"
RAM="$(free -g | awk '/^Mem:/ {print $2}')"
"$PY" - "$WORK" "$CACHE" "$RUNS" "$CPU" "$CORES" "$RAM" <<'EOF'
import json, os, sys
work, cache, runs, cpu, cores, ram = sys.argv[1:7]
runs = int(runs)
base = os.path.join(cache, "base.safetensors")

def best(name):
    reps = [json.load(open(os.path.join(work, f"{name}.{i}.json"))) for i in range(1, runs + 1)]
    return min(r["wall_s"] for r in reps), max(r["peak_rss_anon_kib"] for r in reps)

def counts(doc):
    t = {x["name"]: (x["numel"], x["changed"], x["nonfinite"], x["changed_tol"])
         for x in doc["tensors"]}
    tot = doc["totals"]
    return t, (tot["numel"], tot["changed"], tot["nonfinite"], tot["changed_tol"])

ok = True
print(f"sparsity-scan benchmark: {cpu}, {cores} cores, {ram} GiB RAM; best of {runs} runs, "
      "page cache warm")
for pair in ("sgd", "adamw"):
    b = os.path.join(cache, f"{pair}.safetensors")
    nbytes = os.path.getsize(base) + os.path.getsize(b)
    r_wall, _ = best(f"{pair}.read")
    s_wall, s_peak = best(f"{pair}.scan")
    scan = json.load(open(os.path.join(work, f"{pair}.scan.out")))
    variants = (("npmask", "numpy_scan.py (default: masked)"),
                ("np64", "numpy_scan.py --simple"),
                ("np32", "numpy_scan.py --simple --f32"))
    agree, walls = {}, {}
    for v, _ in variants:
        agree[v] = counts(scan) == counts(json.load(open(os.path.join(work, f"{pair}.{v}.out"))))
        walls[v] = best(f"{pair}.{v}")[0]
    gb = lambda w: nbytes / w / 1e9
    ratio = r_wall / s_wall
    fastest = min(walls[v] for v, _ in variants if agree[v]) if any(agree.values()) else None
    tot = scan["totals"]
    print(f"\n{pair} pair: {os.path.basename(base)} vs {os.path.basename(b)}, "
          f"{nbytes} bytes, {tot['numel']} elements, sparsity {tot['sparsity']:.4%}, "
          f"changed at 1e-8/1e-6/1e-5: " + "/".join(str(v) for v in tot["changed_tol"].values()))
    print(f"  {'command':34s} {'wall s':>8s} {'GB/s':>7s} {'scan is':>9s}")
    print(f"  {'read-bound':34s} {r_wall:8.3f} {gb(r_wall):7.2f}")
    print(f"  {'sparsity-scan':34s} {s_wall:8.3f} {gb(s_wall):7.2f}")
    for v, label in variants:
        print(f"  {label:34s} {walls[v]:8.3f} {gb(walls[v]):7.2f} {walls[v] / s_wall:8.1f}x"
              + ("" if agree[v] else "  (counts differ)"))
    checks = [
        (f"scan / read bound = {ratio:.2f}", ">= 0.70", ratio >= 0.7),
        ("speedup over the fastest numpy = " +
         (f"{fastest / s_wall:.1f}x" if fastest else "n/a"), ">= 20x",
         fastest is not None and fastest / s_wall >= 20),
        (f"peak RssAnon = {s_peak / 1024:.1f} MiB", "< 256 MiB", s_peak < 256 * 1024),
        ("counts agree with numpy (exact variants)", "identical", agree["npmask"] and agree["np64"]),
        ("counts agree with numpy --f32", "info", None if not agree["np32"] else True),
    ]
    for what, goal, res in checks:
        mark = "differ" if res is None else ("PASS" if res else "FAIL")
        print(f"  {what:44s} goal {goal:10s} {mark}")
        ok &= res is not False
print("\nall goals " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
EOF
