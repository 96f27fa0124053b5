#!/bin/sh
# The .sdelta benchmark: bf16 parent/child pairs of about 150 MB (a qwen3-0.6b-shaped checkpoint
# from ckpt-synth with a 32768-token vocabulary) at 0.01%, 1%, 14% and 90% changed
# elements (changed values near the parent, as a training step moves them), and for each:
#   - the entropy lower bound: n * H2(changed/n) + the empirical entropy of the XOR values
#   - the .sdelta file (ckpt-delta's encoder, one thread), its ratio and its fraction of the
#     bound's ratio (goal >= 0.9)
#   - zstd -3 of the child file, of the raw XOR and of the byte-split XOR (goal: smaller than all)
#   - single-thread encode speed (child bytes / s; goal >= 300 MB/s) and decode speed (output
#     bytes / s, parent and child checks included; goal >= 1 GB/s)
# plus two children made by ckpt-synth update (sgd and adamw) when ckpt-synth is built.
# Usage: bench/sdelta_bench.sh [BUILD_DIR] [WORK_DIR]   (defaults: build-sd, a temporary folder)
# Needs: ckpt-synth, sdelta-gen and sdelta-bench in BUILD_DIR, and the zstd command.
set -eu
build=${1:-build-sd}
work=${2:-}
synth=$build/train/ckpt-synth
gen=$build/tests/sdelta/sdelta-gen
bench=$build/tests/sdelta/sdelta-bench
for x in "$synth" "$gen" "$bench"; do
    [ -x "$x" ] || { echo "sdelta_bench: $x not built" >&2; exit 1; }
done
command -v zstd >/dev/null || { echo "sdelta_bench: zstd not found" >&2; exit 1; }
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/sdelta-bench-XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
parent=$work/parent.safetensors
[ -f "$parent" ] || "$synth" init -o "$parent" --preset qwen3-0.6b --dtype bf16 --target-bytes 150M --vocab 32768 --seed 7 >/dev/null

zsize() { zstd -3 -T1 -q -c "$1" | wc -c; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; zstd $(zstd -V | grep -o 'v[0-9.]*')"
echo "parent: $(basename "$parent"), $(stat -c %s "$parent") bytes"
echo
printf '| %-14s | %9s | %8s | %8s | %6s | %9s | %9s | %9s | %9s | %9s | %9s |\n' \
    child changed bound sdelta 'of bd' 'zstd chld' 'zstd xor' 'zstd bsx' 'enc MB/s' 'dec MB/s' 'delta B'
printf '|%s|\n' '----------------|-----------|----------|----------|--------|-----------|-----------|-----------|-----------|-----------|-----------'
run_pair() { # name child
    name=$1 child=$2
    base=$work/base-$name
    mkdir -p "$base"
    line=$("$bench" "$parent" "$child" "$work/$name.sdelta" --baselines "$base" --reps 3)
    eval "$line"
    zc=$(zsize "$child"); zx=$(zsize "$base/xor.bin"); zp=$(zsize "$base/xor-planes.bin")
    rb=$(ratio "$raw_bytes" "$bound_bytes"); rs=$(ratio "$raw_bytes" "$delta_bytes")
    frac=$(ratio "$rs" "$rb")
    pct=$(awk -v k="$changed" -v n="$elements" 'BEGIN { printf "%.4f%%", 100 * k / n }')
    printf '| %-14s | %9s | %7sx | %7sx | %6s | %8sx | %8sx | %8sx | %9s | %9s | %9s |\n' \
        "$name" "$pct" "$rb" "$rs" "$frac" "$(ratio "$raw_bytes" "$zc")" "$(ratio "$raw_bytes" "$zx")" \
        "$(ratio "$raw_bytes" "$zp")" "$encode_MBps" "$decode_MBps" "$delta_bytes"
    rm -rf "$base"
}
for d in 0.0001 0.01 0.14 0.90; do
    child=$work/child-$d.safetensors
    [ -f "$child" ] || "$gen" "$parent" "$child" --density "$d" --seed 11 >/dev/null
    run_pair "gen $d" "$child"
done
for opt in sgd adamw; do
    child=$work/child-$opt.safetensors
    [ -f "$child" ] || "$synth" update "$parent" -o "$child" --optimizer "$opt" --seed 3 >/dev/null
    run_pair "synth $opt" "$child"
done
echo
echo "ratios are tensor bytes / compressed bytes; 'of bd' = sdelta ratio / bound ratio;"
echo "zstd chld/xor/bsx = zstd -3 of the child file / the raw XOR / the byte-split XOR;"
echo "speeds: one thread, best of 3; decode includes the parent and child checks."
