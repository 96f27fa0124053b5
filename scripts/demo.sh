#!/usr/bin/env bash
# The main job on its built-in default: installs missing packages, builds, generates a realistic
# bf16 checkpoint with Qwen3-0.6B's names and shapes plus two updates of it (SGD-like: few weights
# cross half a bf16 ULP; AdamW-like: most do), and scans each update against the base. Then it
# stores both updates as compressed .sdelta snapshots of a run folder and scans the run directly.
# Usage: scripts/demo.sh [OUT_DIR]   (default out/demo; generated checkpoints are reused)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bin=${BUILD_DIR:-build}
out=${1:-out/demo}
mkdir -p "$out"

synth() { "$bin/train/ckpt-synth" "$@"; }
[ -e "$out/base" ] || synth init --preset qwen3-0.6b --dtype bf16 --seed 1 -o "$out/base"
[ -e "$out/sgd" ] || synth update "$out/base" --optimizer sgd --seed 2 -o "$out/sgd"
[ -e "$out/adamw" ] || synth update "$out/base" --optimizer adamw --seed 2 --shard-size 500M \
  -o "$out/adamw"

for run in sgd adamw; do
  echo
  echo "== base vs $run: the 12 least sparse tensors and the total =="
  "$bin/analyze/sparsity-scan" "$out/base" "$out/$run" --tol 1e-8,1e-6,1e-5 --rtol 1e-3 --top 12
done

# The same updates as snapshots of a run folder: RUN/base.safetensors + RUN/snapshots/*.sdelta.
run="$out/run"
if [ ! -e "$run/snapshots/step-000200.sdelta" ]; then
  rm -rf "$run" && mkdir -p "$run"
  ln -f "$out/base/model.safetensors" "$run/base.safetensors" 2>/dev/null \
    || cp "$out/base/model.safetensors" "$run/base.safetensors"
  "$bin/formats/sdelta/ckpt-delta" snapshot "$run" "$out/sgd" --step 100
  "$bin/formats/sdelta/ckpt-delta" snapshot "$run" "$out/adamw" --step 200
fi
echo
echo "== the run folder: full base, then each step as a compressed delta against it =="
ls -l "$run/base.safetensors" "$run"/snapshots/*.sdelta | awk '{print $5, $NF}'
echo
echo "== RUN@base vs RUN@latest (decoded tensor by tensor while scanning), per layer =="
"$bin/analyze/sparsity-scan" "$run@base" "$run@latest" --by-layer --quiet
