#!/usr/bin/env bash
# The learning-rate sweep and the subnetwork-only run of docs/RESULTS.md, from a finished study
# (scripts/study.sh -o OUT): GRPO from OUT/base with SGD at lr 0.1 and 0.01 and AdamW at 1e-6 and
# 1e-4 (the study itself has SGD 0.03 and AdamW 1e-5), everything else as in the study; then SGD
# 0.03 restricted to the elements the study's SGD run changed (--mask OUT/analysis/scan-sgd.h5),
# compared with that run. Prints one line per run.
# Usage: bench/study_sweep.sh OUT [BUILD_DIR] [WORK_DIR]   (defaults: build, /tmp/study-sweep)
set -euo pipefail
study=${1:?usage: bench/study_sweep.sh OUT [BUILD_DIR] [WORK_DIR]}
bin=${2:-build}
work=${3:-/tmp/study-sweep}
threads=${THREADS:-2}
mkdir -p "$work"
common=(--init "$study/base" --steps 100 --snapshot-every 10 --eval-every 10 --eval-size 200
        --seed 1 --threads "$threads" --quiet)
json() { /usr/bin/python3 -c "import json,sys; t=json.load(sys.stdin); print($1)"; }
evals() { grep eval_acc "$1/metrics.jsonl" | sed -n '1p;$p' | sed 's/.*"eval_acc"://; s/}//' | paste -sd' '; }

for cfg in "sgd 0.1" "sgd 0.01" "adamw 1e-6" "adamw 1e-4"; do
  set -- $cfg
  run="$work/$1-$2"
  rm -rf "$run"
  "$bin/train/grpo-train" grpo -o "$run" "${common[@]}" --optimizer "$1" --lr "$2"
  sp=$("$bin/analyze/sparsity-scan" "$run@base" "$run@latest" --json --quiet \
       | json "t['totals']['sparsity']")
  echo "$1 lr $2: eval accuracy $(evals "$run" | sed 's/ / -> /'), exact sparsity $sp"
done

sub="$work/sgd-subnetwork"
rm -rf "$sub"
"$bin/train/grpo-train" grpo -o "$sub" "${common[@]}" --optimizer sgd --lr 0.03 \
  --mask "$study/analysis/scan-sgd.h5"
echo "sgd lr 0.03 on its own subnetwork: eval accuracy $(evals "$sub" | sed 's/ / -> /')"
"$bin/analyze/sparsity-scan" "$sub@base" "$sub@latest" --json --quiet \
  | json "'changed from the base:', t['totals']['changed'], 'of', t['totals']['numel']"
"$bin/analyze/sparsity-scan" "$study/sgd@latest" "$sub@latest" --tol 1e-5,1e-4 --json --quiet \
  | json "'identical to the unrestricted run (exact, 1e-5, 1e-4):', *[1 - c / t['totals']['numel'] for c in (t['totals']['changed'], *t['totals']['changed_tol'].values())]"
"$bin/analyze/sparsity-compare" "$study/sgd@base" "$study/sgd@latest" "$sub@latest" --json \
  --quiet | json "'cosine of the two updates:', t['model']['cosine']"
for r in "$study/sgd" "$sub"; do
  grep -o '"reward_mean":[0-9.e-]*' "$r/metrics.jsonl" | tail -10 | cut -d: -f2 \
    | awk -v r="$r" '{s += $1} END {print r ": training reward, last 10 steps", s / NR}'
done
