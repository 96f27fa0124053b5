#!/usr/bin/env bash
# MPI scaling of sparsity-scan (docs/mpi.md, docs/BENCHMARKS.md "MPI scaling"): wall time of one
# process against `mpirun -np 2` on a ~1.5 GB synthetic pair (two ~0.75 GB bf16 checkpoints),
# generated with ckpt-synth into $SS_BENCH_DIR (default /tmp/ss-mpi-bench) and reused when present.
# Rows: a plain process (no MPI_Init), mpirun -np 1 and -np 2 (the scaling figure), and the launch
# cost alone (mpirun -np 2 sparsity-scan --version: process start and MPI_Init).
# Each configuration runs once to warm the page cache, then REPS times; the best wall time counts.
# Usage: bench/mpi_scaling.sh [builddir] (default build-mpi); env REPS (3), SIZE (768M), EXTRA
# (more sparsity-scan options, e.g. "--masks --h5 out.h5").
set -euo pipefail
bd=${1:-build-mpi}
scan=$bd/analyze/sparsity-scan
synth=$bd/train/ckpt-synth
dir=${SS_BENCH_DIR:-/tmp/ss-mpi-bench}
reps=${REPS:-3}
size=${SIZE:-768M}
extra=${EXTRA:-}
command -v mpirun >/dev/null || { echo "mpi_scaling: no mpirun (apt-get install openmpi-bin)" >&2; exit 1; }
mkdir -p "$dir"
if [ ! -s "$dir/base-$size.safetensors" ]; then
  "$synth" init -o "$dir/base-$size.safetensors" --target-bytes "$size" --seed 1
fi
if [ ! -s "$dir/adamw-$size.safetensors" ]; then
  "$synth" update "$dir/base-$size.safetensors" -o "$dir/adamw-$size.safetensors" --optimizer adamw --seed 2
fi
a=$dir/base-$size.safetensors
b=$dir/adamw-$size.safetensors
bytes=$(( $(stat -c %s "$a") + $(stat -c %s "$b") ))
mpirun_=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpirun_+=(--allow-run-as-root)

best() { # best wall seconds of REPS runs of "$@" (after one warm-up)
  "$@" >/dev/null
  local b=""
  for _ in $(seq "$reps"); do
    local t0 t1 s
    t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
    s=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$s < $b" | bc -l)" -eq 1 ]; then b=$s; fi
  done
  printf '%.3f' "$b"
}

echo "mpi_scaling: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $bytes bytes in A+B, reps $reps"
t1=$(best "$scan" "$a" "$b" --json --quiet $extra)
gbs() { printf '%.2f' "$(echo "$bytes / $1 / 1000000000" | bc -l)"; }
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
echo "1 process (--threads 0: all cores): ${t1} s, $(gbs "$t1") GB/s"
t1t=$(best "$scan" "$a" "$b" --json --quiet --threads 1 $extra)
echo "1 process, --threads 1:             ${t1t} s"
t1m=$(best "${mpirun_[@]}" -np 1 "$scan" "$a" "$b" --json --quiet $extra)
echo "mpirun -np 1 (all cores):           ${t1m} s, $(gbs "$t1m") GB/s"
t2=$(best "${mpirun_[@]}" -np 2 "$scan" "$a" "$b" --json --quiet $extra)
echo "mpirun -np 2 (1 thread a rank):     ${t2} s, $(gbs "$t2") GB/s"
t0=$(best "${mpirun_[@]}" -np 2 "$scan" --version)
echo "mpirun -np 2 --version (launch + MPI_Init): ${t0} s"
echo "speed-up 2 ranks vs 1 rank: $(ratio "$t1m" "$t2")x; vs 1 plain process: $(ratio "$t1" "$t2")x"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
