#!/usr/bin/env bash
# lora_step.sh: what a LoRA GRPO step costs against a full-parameter SGD step. From one base
# (made here by a short sft of --preset, or --base DIR), runs
#   full   grpo-train grpo --optimizer sgd                          (every weight trained)
#   lora   grpo-train grpo --optimizer sgd --lora-rank R --lora-alpha 2R
# for --steps steps each with the same seed, batch and --threads, alternating full and lora
# --repeat times (so that a change in the machine's load hits both alike), and prints the median
# step_time_s and sample_time_s of each over all repeats (metrics.jsonl; the first step of each
# run is dropped as warm-up),
# their update time (step - sample), and the ratio lora/full of the median step times.
# LoRA here merges W = W0 + s B A each update and takes dA, dB from the full dL/dW
# (train/lora.h), so it costs the full backward plus the merge and two small GEMMs per matrix;
# what it saves is optimizer state (none for SGD either way), not compute.
#
# usage: bench/lora_step.sh [--builddir DIR] [--base DIR] [--preset tiny|small] [--steps N]
#                           [--threads N] [--rank R] [--prompts P] [--group G] [--repeat K]
#                           [--work DIR]
#   --builddir DIR  meson build folder holding train/grpo-train (default <repo>/build)
#   --base DIR      an sft model folder to start from (default: made here, 300 sft steps)
#   --preset NAME   model size of the base made here (default tiny)
#   --steps N       GRPO steps per run (default 12)
#   --threads N     OpenBLAS threads for both runs (default 1)
#   --rank R        LoRA rank (default 8)
#   --prompts P --group G   batch (default 8 x 8)
#   --repeat K      runs of each, alternating (default 3)
#   --work DIR      scratch folder (default: a new one under /tmp, removed at the end)
# Exit status: 0 ok, 2 when a run fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build"
BASE=""
PRESET="tiny"
STEPS=12
THREADS=1
RANK=8
PROMPTS=8
GROUP=8
REPEAT=3
WORK=""

while [ $# -gt 0 ]; do
    case "$1" in
    --builddir) BUILD="$2"; shift 2 ;;
    --base) BASE="$2"; shift 2 ;;
    --preset) PRESET="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --rank) RANK="$2"; shift 2 ;;
    --prompts) PROMPTS="$2"; shift 2 ;;
    --group) GROUP="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "lora_step.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

TRAIN="$BUILD/train/grpo-train"
[ -x "$TRAIN" ] || { echo "lora_step.sh: $TRAIN not found (build first)" >&2; exit 2; }
CLEAN=0
if [ -z "$WORK" ]; then
    WORK="$(mktemp -d /tmp/lora-step.XXXXXX)"
    CLEAN=1
fi
mkdir -p "$WORK"
if [ -z "$BASE" ]; then
    BASE="$WORK/base"
    "$TRAIN" sft -o "$BASE" --preset "$PRESET" --task add:2 --steps 300 --eval-every 0 \
        --eval-size 50 --threads "$THREADS" --quiet || exit 2
fi

COMMON=(--init "$BASE" --steps "$STEPS" --prompts "$PROMPTS" --group "$GROUP"
        --optimizer sgd --eval-every 0 --eval-size 1 --snapshot-every 0 --threads "$THREADS"
        --quiet)
for k in $(seq 1 "$REPEAT"); do
    rm -rf "$WORK/full$k" "$WORK/lora$k"
    "$TRAIN" grpo "${COMMON[@]}" -o "$WORK/full$k" || exit 2
    "$TRAIN" grpo "${COMMON[@]}" -o "$WORK/lora$k" --lora-rank "$RANK" \
        --lora-alpha "$((2 * RANK))" || exit 2
done

python3 - "$WORK" "$REPEAT" "$PRESET" "$THREADS" "$RANK" "$PROMPTS" "$GROUP" <<'EOF'
import json, statistics, sys
work, repeat, preset, threads, rank, P, G = sys.argv[1:8]
runs = lambda kind: [f"{work}/{kind}{k}" for k in range(1, int(repeat) + 1)]
def med(kind):
    rows = []
    for run in runs(kind):
        r = [json.loads(l) for l in open(run + "/metrics.jsonl")]
        rows += [x for x in r if "step_time_s" in x][1:]  # drop the first step (warm-up)
    st = statistics.median(r["step_time_s"] for r in rows)
    sa = statistics.median(r["sample_time_s"] for r in rows)
    return st, sa
trainable = json.load(open(runs("lora")[0] + "/run.json"))["trainable_parameters"]
params = json.load(open(runs("full")[0] + "/run.json"))["parameters"]
(fs, fa), (ls, la) = med("full"), med("lora")
print(f"preset {preset}, {params} parameters, batch {P}x{G}, threads {threads}, "
      f"{repeat} runs each; LoRA r={rank}: {trainable} trainable")
print(f"full SGD  step {fs*1e3:8.2f} ms  (sampling {fa*1e3:7.2f} ms, update {(fs-fa)*1e3:7.2f} ms)")
print(f"LoRA SGD  step {ls*1e3:8.2f} ms  (sampling {la*1e3:7.2f} ms, update {(ls-la)*1e3:7.2f} ms)")
print(f"ratio LoRA / full (median step_time_s): {ls/fs:.3f}; update alone: {(ls-la)/(fs-fa):.3f}")
EOF
[ "$CLEAN" = 1 ] && rm -rf "$WORK"
exit 0
