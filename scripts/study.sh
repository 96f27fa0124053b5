#!/usr/bin/env bash
# The one-command study (the README's main command): installs missing packages, builds, trains a
# small Qwen3-style model with supervised warm-up, then runs GRPO from it with plain SGD (no
# momentum), AdamW and rank-1 LoRA on the same steps, seeds and data; scans every run (masks,
# maps, tolerance curves, ranks, series), measures how the runs' changed sets overlap, compares
# the SGD update with the LoRA one, draws every figure and writes OUT/REPORT.md.
#
# Usage: scripts/study.sh [--quick] [--no-build] [-o OUT]   (default OUT: out/study or out/study-quick)
#   --quick   a tiny model and 20 GRPO steps (a few minutes; CI runs it); the default is the
#             "small" preset (3.2M parameters) and 100 GRPO steps (under 20 minutes on 2 cores)
#   --no-build  use the programs already built in BUILD_DIR (the test suite runs it so)
# Environment: BUILD_DIR (default build), THREADS (default: all cores), SEED (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
build=1
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    -o) out=$2; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "study.sh: unknown argument '$1' (--quick, --no-build, -o OUT)" >&2; exit 1 ;;
  esac
  shift
done

[ "$build" = 1 ] && bash scripts/build.sh
bin=${BUILD_DIR:-build}
threads=${THREADS:-$(nproc)}
seed=${SEED:-1}
task=add:3
if [ "$quick" = 1 ]; then
  out=${out:-out/study-quick}
  sft_args=(--preset tiny --steps 1500 --target-acc 0.25 --eval-every 25)
  grpo_steps=20; snap_every=5; eval_every=5; eval_size=100
else
  out=${out:-out/study}
  sft_args=(--preset small --steps 3000 --target-acc 0.3 --eval-every 25)
  grpo_steps=100; snap_every=10; eval_every=10; eval_size=200
fi
train="$bin/train/grpo-train"
scan="$bin/analyze/sparsity-scan"
rm -rf "$out"
mkdir -p "$out/analysis"
start=$(date +%s)
say() { printf '\n== %s (%d s)\n' "$*" $(( $(date +%s) - start )); }

say "supervised warm-up: $task, ${sft_args[*]}"
"$train" sft -o "$out/base" --task "$task" --seed "$seed" --threads "$threads" \
  --eval-size "$eval_size" "${sft_args[@]}"

# The runs: the same base, seed, prompts and sampling settings; only the optimizer differs.
common=(--init "$out/base" --steps "$grpo_steps" --snapshot-every "$snap_every"
        --eval-every "$eval_every" --eval-size "$eval_size" --seed "$seed" --threads "$threads"
        --save-master)
runs=(sgd adamw lora-r1)
declare -A run_args=(
  [sgd]="--optimizer sgd --lr 0.03"
  [adamw]="--optimizer adamw --lr 1e-5"
  [lora-r1]="--optimizer adamw --lr 1e-4 --lora-rank 1 --lora-alpha 32"
)
for r in "${runs[@]}"; do
  say "GRPO: $r (${run_args[$r]})"
  # shellcheck disable=SC2086
  "$train" grpo -o "$out/$r" "${common[@]}" ${run_args[$r]}
done

a="$out/analysis"
h5s=()
series=()
report_runs=()
for r in "${runs[@]}"; do
  say "scanning $r: base vs latest (masks, maps, tolerance curve, rank), the float32 master, the series"
  "$scan" "$out/$r@base" "$out/$r@latest" --tol 1e-5 --rtol 1e-3 --rank --hist --maps --masks \
    --h5 "$a/scan-$r.h5" --json --quiet --threads "$threads" > "$a/scan-$r.json"
  "$scan" "$out/$r/master@base" "$out/$r/master@latest" --json --quiet \
    --threads "$threads" > "$a/master-$r.json"
  "$scan" --series "$out/$r" --h5 "$a/series-$r.h5" --quiet --threads "$threads" > /dev/null
  h5s+=("$a/scan-$r.h5")
  series+=("$a/series-$r.h5")
  report_runs+=(--run "$r=$out/$r,$a/scan-$r.json,$a/master-$r.json")
done

say "overlap of the changed sets"
"$bin/analyze/sparsity-overlap" "${h5s[@]}" --any-base --h5 "$a/overlap.h5" --json \
  > "$a/overlap.json"

say "comparing the SGD update with the rank-1 LoRA and the AdamW updates"
"$bin/analyze/sparsity-compare" "$out/sgd@base" "$out/sgd@latest" "$out/lora-r1@latest" \
  --json --quiet > "$a/compare-sgd-lora.json"
compares=(--compare "SGD vs rank-1 LoRA (merged)=$a/compare-sgd-lora.json")
"$bin/analyze/sparsity-compare" "$out/sgd@base" "$out/sgd@latest" "$out/adamw@latest" \
  --json --quiet > "$a/compare-sgd-adamw.json"
compares+=(--compare "SGD vs AdamW=$a/compare-sgd-adamw.json")

say "figures"
labels=()
for r in "${runs[@]}"; do labels+=(--label "$r"); done
for r in "${runs[@]}"; do labels+=(--label "$r"); done
for r in "${runs[@]}"; do labels+=(--label "$r"); done
run_dirs=()
for r in "${runs[@]}"; do run_dirs+=("$out/$r"); done
"$bin/plots/sparsity-plot" "${h5s[@]}" "${series[@]}" "${run_dirs[@]}" "$a/overlap.h5" \
  "${labels[@]}" -o "$out/figures"

say "report"
mode="the full study"
[ "$quick" = 1 ] && mode="the --quick variant"
"$bin/analyze/sparsity-report" -o "$out/REPORT.md" --figures "$out/figures" \
  --figures-link figures --title "RLVR sparsity study: SGD vs AdamW vs rank-1 LoRA (toy scale)" \
  --intro "Made by \`scripts/study.sh\` ($mode) on $(date -u +%Y-%m-%d), $(nproc) cores, \
--threads $threads, seed $seed: task $task, supervised warm-up (${sft_args[*]}), then $grpo_steps \
GRPO steps per run (8 prompts x 8 samples, temperature 1, KL coefficient 0.001). Runs: \
$(for r in "${runs[@]}"; do printf '%s (%s), ' "$r" "${run_args[$r]}"; done | sed 's/, $/./')" \
  "${report_runs[@]}" --overlap "$a/overlap.json" "${compares[@]}"
say "done: $out/REPORT.md"
