#!/usr/bin/env bash
# grpo_bench.sh: a whole GRPO step of grpo-train (sampling, forward, backward, update) against the
# same step in PyTorch eager (bench/grpo_step_torch.py), same model, batch shape and threads.
#
# Builds nothing. Makes (once, cached) a small-preset base with `grpo-train sft` (add:3; accuracy
# does not matter, only shapes), then for each thread count:
#   grpo-train grpo --optimizer sgd and --optimizer adamw, --steps N (P x G = 8 x 8, max-new 8)
#   grpo_step_torch.py with SGD and with AdamW, the same settings
# and prints median step time, sampling time, tokens per step, tokens/s, CPU seconds per step,
# mean response length, optimizer-state bytes and peak RSS, the ratio ours / torch of tokens/s
# (goal >= 1.5), the optimizer-state bytes against 0 (SGD) and 8 x nparams (AdamW), and peak RSS
# of SGD against AdamW.
#
# Fairness: response lengths are random. Both sample from the same base weights at temperature 1
# from prompts of the same distribution, so their lengths have the same distribution; tokens/s
# (prompt + response tokens over step time) is compared, over the median step. A second table,
# "fixed length", uses a base straight from initialization (sft --steps 0: EOS is rare, so
# grpo-train's responses mostly run to --max-new; their mean length is printed) against torch
# with --ignore-eos (every response exactly --max-new tokens).
# torch runs with OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = N and OMP_WAIT_POLICY=PASSIVE: Debian's
# torch does its GEMMs in OpenBLAS's own threads while its OpenMP workers spin by default, which
# at 2 threads on 2 cores made it 5-8x slower (its best setting is used).
# Medians skip the first --warmup steps. grpo-train's CPU s/step is the whole process's CPU time
# (/usr/bin/time: load, base and final snapshot included) over the steps: an upper bound; torch's
# is the median of the per-step process time. On a busy machine CPU time is the steadier measure.
#
# usage: bench/grpo_bench.sh [BUILD] [--threads "2 1"] [--steps 15] [--warmup 3]
#                            [--cache DIR] [--sft-steps 200] [--no-fixed]
#   BUILD       meson build folder with train/grpo-train and pydeps/ (safetensors for torch)
#               (default <repo>/build)
# Exit status: 0 when every ratio meets the goal, 1 when one does not, 2 when something failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
THREADS="2 1"
STEPS=15
WARMUP=3
CACHE=/tmp/grpo-bench
SFT_STEPS=200
FIXED=1
PY=/usr/bin/python3
GOAL=1.5

die() { echo "grpo_bench: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --cache) CACHE="$2"; shift 2 ;;
    --sft-steps) SFT_STEPS="$2"; shift 2 ;;
    --no-fixed) FIXED=0; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) BUILD="$(realpath -m "$1")"; shift ;;
  esac
done
GT="$BUILD/train/grpo-train"
[ -x "$GT" ] || die "$GT not found (build first: meson setup $BUILD && ninja -C $BUILD)"
[ -d "$BUILD/pydeps" ] || die "$BUILD/pydeps not found (safetensors for the torch script)"
export PYTHONPATH="$BUILD/pydeps${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$CACHE"
TOTAL=$((STEPS + WARMUP))

base() { # base DIR SFT_STEPS
  if [ ! -f "$1/model.safetensors" ]; then
    echo "grpo_bench: making the base $1 (sft, small preset, $2 steps)" >&2
    rm -rf "$1"
    "$GT" sft -o "$1" --preset small --task add:3 --steps "$2" --eval-every 0 --eval-size 64 \
      --threads 2 --quiet || die "sft failed"
  fi
}
base "$CACHE/base-small" "$SFT_STEPS"
[ "$FIXED" = 1 ] && base "$CACHE/base-init" 0

# ours BASE OPT THREADS -> one JSON line of medians
ours() {
  local run="$CACHE/run-$(basename "$1")-$2-t$3" tf="$CACHE/time.txt"
  rm -rf "$run"
  OPENBLAS_NUM_THREADS="$3" /usr/bin/time -f "%U %S" -o "$tf" "$GT" grpo --init "$1" -o "$run" \
    --optimizer "$2" --steps "$TOTAL" --threads "$3" --eval-every 0 --eval-size 0 \
    --snapshot-every 100000 --quiet || die "grpo-train grpo failed"
  "$PY" - "$run/metrics.jsonl" "$tf" "$WARMUP" "$TOTAL" "$2" "$3" <<'EOF'
import json, statistics, sys
path, tf, warm, total, opt, thr = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
rows = [r for r in map(json.loads, open(path)) if "tokens_per_s" in r and r["step"] > warm]
u, s = map(float, open(tf).read().split()[-2:])
med = lambda k: statistics.median(r[k] for r in rows)
print(json.dumps(dict(impl="ours", optimizer=opt, threads=thr, steps=len(rows),
    step_time_s=med("step_time_s"), sample_time_s=med("sample_time_s"), tokens=med("tokens"),
    tokens_per_s=med("tokens_per_s"), cpu_s=(u + s) / total,
    resp_len_mean=statistics.mean(r["resp_len_mean"] for r in rows),
    reward_mean=statistics.mean(r["reward_mean"] for r in rows),
    opt_state_bytes=rows[-1]["opt_state_bytes"], peak_rss_bytes=max(r["peak_rss_bytes"] for r in rows))))
EOF
}

# torch BASE OPT THREADS [--ignore-eos]
torch_step() {
  OPENBLAS_NUM_THREADS="$3" OMP_NUM_THREADS="$3" OMP_WAIT_POLICY=PASSIVE "$PY" "$ROOT/bench/grpo_step_torch.py" \
    --model "$1" --optimizer "$2" --threads "$3" --steps "$STEPS" --warmup "$WARMUP" ${4:-} \
    || die "grpo_step_torch.py failed"
}

RES="$CACHE/results.jsonl"
: > "$RES"
echo "grpo_bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for t in $THREADS; do
  for opt in sgd adamw; do
    echo "grpo_bench: threads $t, $opt: grpo-train" >&2
    ours "$CACHE/base-small" "$opt" "$t" | sed 's/^{/{"case": "sampled", /' >> "$RES"
    echo "grpo_bench: threads $t, $opt: torch" >&2
    torch_step "$CACHE/base-small" "$opt" "$t" | sed 's/^{/{"case": "sampled", /' >> "$RES"
  done
  if [ "$FIXED" = 1 ]; then
    echo "grpo_bench: threads $t, fixed length" >&2
    ours "$CACHE/base-init" sgd "$t" | sed 's/^{/{"case": "fixed", /' >> "$RES"
    torch_step "$CACHE/base-init" sgd "$t" --ignore-eos | sed 's/^{/{"case": "fixed", /' >> "$RES"
  fi
done
echo "grpo_bench: load average after $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$PY" - "$RES" "$GOAL" "$CACHE/run-base-small-sgd-t${THREADS%% *}/run.json" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
goal = float(sys.argv[2])
nparams = json.load(open(sys.argv[3]))["parameters"]
print(f"model: {nparams} parameters (small preset); P x G = 8 x 8, add:3, max-new 8")
print()
hdr = ("case", "thr", "impl", "opt", "step s", "sample s", "tok/step", "tok/s", "cpu s/step",
       "resp len", "opt-state B", "peak RSS MiB")
fmt = "| " + " | ".join(["{}"] * len(hdr)) + " |"
print(fmt.format(*hdr))
print("|" + "---|" * len(hdr))
for r in rows:
    print(fmt.format(r["case"], r["threads"], r["impl"], r["optimizer"], f'{r["step_time_s"]:.3f}',
                     f'{r["sample_time_s"]:.3f}', f'{r["tokens"]:.0f}', f'{r["tokens_per_s"]:.0f}',
                     f'{r["cpu_s"]:.3f}', f'{r["resp_len_mean"]:.2f}', r["opt_state_bytes"],
                     f'{r["peak_rss_bytes"] / 2**20:.0f}'))
print()
ok = True
def find(case, impl, opt, t):
    for r in rows:
        if (r["case"], r["impl"], r["optimizer"], r["threads"]) == (case, impl, opt, t):
            return r
for case in ("sampled", "fixed"):
    for t in sorted({r["threads"] for r in rows}, reverse=True):
        for opt in ("sgd", "adamw"):
            o, p = find(case, "ours", opt, t), find(case, "torch", opt, t)
            if not o or not p:
                continue
            ratio = o["tokens_per_s"] / p["tokens_per_s"]
            cpu = (p["cpu_s"] / p["tokens"]) / (o["cpu_s"] / o["tokens"])
            good = ratio >= goal
            ok &= good
            print(f"{case:7s} threads {t} {opt:5s}: tokens/s ours / torch = {ratio:.2f} "
                  f"(goal >= {goal}: {'PASS' if good else 'FAIL'}); per-token CPU time "
                  f"torch / ours = {cpu:.2f}")
print()
for t in sorted({r["threads"] for r in rows}, reverse=True):
    s, a = find("sampled", "ours", "sgd", t), find("sampled", "ours", "adamw", t)
    if s and a:
        print(f"threads {t}: opt-state bytes SGD {s['opt_state_bytes']} (expect 0), AdamW "
              f"{a['opt_state_bytes']} (expect 8 x {nparams} = {8 * nparams}); peak RSS SGD "
              f"{s['peak_rss_bytes'] / 2**20:.1f} MiB, AdamW {a['peak_rss_bytes'] / 2**20:.1f} "
              f"MiB (+{(a['peak_rss_bytes'] - s['peak_rss_bytes']) / 2**20:.1f} MiB; 8 x nparams "
              f"= {8 * nparams / 2**20:.1f} MiB)")
        ok &= s["opt_state_bytes"] == 0 and a["opt_state_bytes"] == 8 * nparams
sys.exit(0 if ok else 1)
EOF
