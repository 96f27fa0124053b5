#!/bin/sh
# tests/gpu/run.sh: the one prepared script for a lent GPU machine (one H200; docs/cuda.md,
# docs/BENCHMARKS.md "CUDA"). From the repository root:
#
#   1. configures a fresh build with -Dcuda=enabled and builds only what the steps below run;
#   2. stops cleanly (exit 77, "no GPU") when the CUDA runtime sees no device;
#   3. runs the gpu test suite (tests/gpu: device query, scan_cuda vs the CPU, svd_cuda vs LAPACK,
#      train_ops_cuda: the trainer's CUDA ops vs their CPU twins and the CUDA model step's loss
#      and gradients vs the CPU model, which also times a training step: f32 and bf16 GEMMs);
#   4. measures copy bandwidths (bench/cuda_bandwidth: pinned and pageable H2D, D2H, D2D);
#   5. times the scan kernel on device-resident data against D2D bandwidth, the end-to-end scan
#      from host memory against pinned H2D bandwidth, and the CPU scan, on a BF16 pair of
#      SS_GPU_GIB GiB (default 8) generated in memory; then full spectra of SS_GPU_SVD_N^2 matrices
#      (default 4096): SS_GPU_SVD_GPU of them on cuSOLVER (default 4), SS_GPU_SVD_CPU on LAPACK
#      (default 1), per-matrix seconds;
#   6. prints a short table last.
#
# Every step has its own time limit; the whole run is meant to take 3-5 minutes, well under 10.
# It reads device properties only and never changes a GPU setting (no nvidia-smi -pm/-lgc/-ac,
# no MIG changes, no resets). Logs go to $OUT (the device tool's output folder) when set, else to
# <build>/gpu-run/. Environment: SS_GPU_BUILD (build folder, default build-gpu-run),
# SS_GPU_GIB, SS_GPU_SVD_N, SS_GPU_SVD_GPU, SS_GPU_SVD_CPU.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${SS_GPU_BUILD:-build-gpu-run}
GIB=${SS_GPU_GIB:-8}
SVD_N=${SS_GPU_SVD_N:-4096}
SVD_GPU=${SS_GPU_SVD_GPU:-4}
SVD_CPU=${SS_GPU_SVD_CPU:-1}
START=$(date +%s)

say() { printf '[run.sh %4ss] %s\n' "$(($(date +%s) - START))" "$*"; }
die() { say "FAILED: $*"; exit 1; }

rm -rf "$BUILD"
LOGS=${OUT:-$BUILD/gpu-run}
mkdir -p "$LOGS" || die "cannot create $LOGS"

# ---- 1. build -------------------------------------------------------------------------------
say "configuring $BUILD (-Dcuda=enabled)"
timeout 180 meson setup "$BUILD" -Dcuda=enabled -Dbuildtype=release >"$LOGS/setup.log" 2>&1 \
    || { tail -20 "$LOGS/setup.log"; die "meson setup (log: $LOGS/setup.log)"; }
TARGETS="tests/gpu/test_cuda_device tests/gpu/test_scan_cuda tests/gpu/test_svd_cuda
         tests/gpu/test_train_ops_cuda bench/cuda_bandwidth bench/cuda_scan_bench"
say "building: $(echo $TARGETS)"
# shellcheck disable=SC2086
timeout 300 ninja -C "$BUILD" $TARGETS >"$LOGS/build.log" 2>&1 \
    || { tail -30 "$LOGS/build.log"; die "build (log: $LOGS/build.log)"; }

# ---- 2. is there a GPU? ---------------------------------------------------------------------
"$BUILD/tests/gpu/test_cuda_device" >"$LOGS/device.txt" 2>&1
rc=$?
cat "$LOGS/device.txt"
if [ "$rc" -eq 77 ]; then
    say "no GPU: built everything, nothing to run"
    exit 77
fi
[ "$rc" -eq 0 ] || die "device query (exit $rc)"
if command -v nvidia-smi >/dev/null 2>&1; then # read-only queries
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
        --format=csv >"$LOGS/nvidia-smi.txt" 2>&1 && cat "$LOGS/nvidia-smi.txt"
fi

# ---- 3. the gpu suite -----------------------------------------------------------------------
say "gpu test suite"
timeout 240 meson test -C "$BUILD" --no-rebuild --suite gpu --print-errorlogs \
    >"$LOGS/tests.log" 2>&1
TESTS_RC=$?
grep -E '^ *[0-9]+/[0-9]+ |^Ok:|^Fail:|^Skipped:|^Timeout:' "$LOGS/tests.log"
[ "$TESTS_RC" -eq 0 ] || { tail -40 "$LOGS/tests.log"; say "gpu suite FAILED (continuing to the benchmarks)"; }

# The training-step lines train_ops_cuda printed (meson keeps every test's stdout in testlog.txt).
grep -E '^(RESULT train_step|model .*worst)' "$BUILD/meson-logs/testlog.txt" \
    >"$LOGS/train_ops.txt" 2>/dev/null
cat "$LOGS/train_ops.txt"

# ---- 4. copy bandwidth ----------------------------------------------------------------------
say "copy bandwidth"
timeout 60 "$BUILD/bench/cuda_bandwidth" --mib 1024 --reps 5 >"$LOGS/bandwidth.txt" 2>&1 \
    || say "cuda_bandwidth failed (exit $?)"
cat "$LOGS/bandwidth.txt"

# ---- 5. scan and SVD ------------------------------------------------------------------------
say "scan: $GIB GiB BF16 pair"
timeout 240 "$BUILD/bench/cuda_scan_bench" --gib "$GIB" --no-svd >"$LOGS/scan.txt" 2>&1 \
    || say "cuda_scan_bench (scan) failed (exit $?)"
cat "$LOGS/scan.txt"
say "SVD: ${SVD_N}x${SVD_N}, $SVD_GPU on cuSOLVER, $SVD_CPU on LAPACK"
timeout 200 "$BUILD/bench/cuda_scan_bench" --no-scan --svd-n "$SVD_N" --svd-gpu "$SVD_GPU" \
    --svd-cpu "$SVD_CPU" >"$LOGS/svd.txt" 2>&1 || say "cuda_scan_bench (svd) failed (exit $?)"
cat "$LOGS/svd.txt"

# ---- 6. the table ---------------------------------------------------------------------------
val() { grep -h "^RESULT $1 " "$LOGS/bandwidth.txt" "$LOGS/scan.txt" "$LOGS/svd.txt" \
        "$LOGS/train_ops.txt" 2>/dev/null \
        | head -1 | cut -d' ' -f3-; }
echo
echo "== CUDA summary ($(head -1 "$LOGS/device.txt"))"
printf '%-34s %s\n' "gpu suite" "$([ "$TESTS_RC" -eq 0 ] && echo pass || echo FAIL)"
printf '%-34s %s\n' "H2D pinned" "$(val h2d_pinned)"
printf '%-34s %s\n' "H2D pageable" "$(val h2d_pageable)"
printf '%-34s %s\n' "D2H pinned" "$(val d2h_pinned)"
printf '%-34s %s\n' "D2D (read + write)" "$(val d2d_read_write)"
printf '%-34s %s\n' "scan kernel, resident" "$(val scan_kernel)"
printf '%-34s %s\n' "scan kernel + mask, resident" "$(val scan_kernel_mask)"
printf '%-34s %s\n' "scan end to end from host" "$(val scan_e2e)"
printf '%-34s %s\n' "scan CPU (all cores)" "$(val scan_cpu)"
printf '%-34s %s\n' "GPU counts == CPU counts" "$(val counts_match)"
printf '%-34s %s\n' "spectrum ${SVD_N}^2 cuSOLVER" "$(val "svd_gpu_$SVD_N")"
printf '%-34s %s\n' "spectrum ${SVD_N}^2 LAPACK" "$(val "svd_cpu_$SVD_N")"
printf '%-34s %s\n' "spectra max difference" "$(val svd_max_rel_diff)"
printf '%-34s %s\n' "train step, f32 GEMMs" "$(val train_step_f32)"
printf '%-34s %s\n' "train step, bf16 GEMMs" "$(val train_step_bf16)"
printf '%-34s %s\n' "train step, CPU model" "$(val train_step_cpu)"
printf '%-34s %s\n' "wall time of run.sh" "$(($(date +%s) - START)) s"
[ "$TESTS_RC" -eq 0 ] || exit 1
exit 0
