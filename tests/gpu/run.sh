#!/bin/sh
# tests/gpu/run.sh: the one prepared script for a lent GPU machine (one H200; docs/cuda.md,
# docs/BENCHMARKS.md "CUDA"). From the repository root:
#
#   1. builds (meson, -Dcuda=enabled) only what the steps below run, or, with
#      SS_GPU_PREBUILT=PACK, takes the executables and libraries tests/gpu/pack.sh packed on a
#      machine that has the build's Debian packages (the GPU machine's image lacks them);
#   2. stops cleanly (exit 77, "no GPU") when the CUDA runtime sees no device;
#   3. runs the gpu tests (tests/gpu: device query, scan_cuda vs the CPU, svd_cuda vs LAPACK,
#      train_ops_cuda: the trainer's CUDA ops vs their CPU twins and the CUDA model step's loss
#      and gradients vs the CPU model, which also times a training step: f32 and bf16 GEMMs);
#      a failing test is run once more under compute-sanitizer when the machine has it;
#   4. end to end: sparsity-scan --device cpu and --device cuda (with --masks --maps --hist
#      --rank) on a fresh random pair (tests/gpu/make_pair.py), the two HDF5 reports compared by
#      tests/gpu/compare_reports.py (needs python3 with torch, safetensors, h5py);
#   5. measures copy bandwidths (bench/cuda_bandwidth: pinned and pageable H2D, D2H, D2D);
#   6. times the scan kernel on device-resident data against D2D bandwidth, the end-to-end scan
#      from host memory against pinned H2D bandwidth, and the CPU scan, on a BF16 pair of
#      SS_GPU_GIB GiB (default 8) generated in memory; then full spectra of SS_GPU_SVD_N^2 matrices
#      (default 4096): SS_GPU_SVD_GPU of them on cuSOLVER (default 4), SS_GPU_SVD_CPU on LAPACK
#      (default 1), per-matrix seconds;
#   7. times one training step of a Qwen3-0.6B-shaped model (B 8, T 256) on kernels/train_model.h
#      (bench/train_step_bench) and in PyTorch eager on the same GPU (bench/train_step_torch.py),
#      with bf16 and f32 GEMMs (issue 7's benchmark);
#   8. prints a short table last.
#
# Every step has its own time limit; the whole run is meant to take 3-5 minutes, well under 10.
# It reads device properties only and never changes a GPU setting (no nvidia-smi -pm/-lgc/-ac,
# no MIG changes, no resets). Logs go to SS_GPU_LOGS (default /tmp/ss-gpu-logs) and, packed, to
# $OUT/gpu-logs.tar.gz when OUT (the device tool's output folder) is set. Environment:
# SS_GPU_BUILD (build folder, default build-gpu-run), SS_GPU_PREBUILT, SS_GPU_LOGS, SS_GPU_GIB,
# SS_GPU_SVD_N, SS_GPU_SVD_GPU, SS_GPU_SVD_CPU, SS_GPU_SKIP (steps to leave out, of: tests e2e
# train trainbench svd; e.g. "train trainbench svd" for a second, shorter run), SS_GPU_NCU=1
# (after the scan benchmark, Nsight Compute on one launch of the scan kernel: the sections
# docs/BENCHMARKS.md's kernel history quotes).
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
BUILD=${SS_GPU_BUILD:-build-gpu-run}
GIB=${SS_GPU_GIB:-8}
SVD_N=${SS_GPU_SVD_N:-4096}
SVD_GPU=${SS_GPU_SVD_GPU:-4}
SVD_CPU=${SS_GPU_SVD_CPU:-1}
PREBUILT=${SS_GPU_PREBUILT:-}
START=$(date +%s)

SKIP=" ${SS_GPU_SKIP:-} "
want() { case $SKIP in *" $1 "*) say "skipping $1 (SS_GPU_SKIP)"; return 1 ;; esac; return 0; }
say() { printf '[run.sh %4ss] %s\n' "$(($(date +%s) - START))" "$*"; }
die() { say "FAILED: $*"; save_logs; exit 1; }
# Logs are written to LOGS and, after each step, packed into $OUT/gpu-logs.tar.gz (the device
# tool brings back at most 8 files from $OUT, and brings them back even when a step overruns).
LOGS=${SS_GPU_LOGS:-/tmp/ss-gpu-logs}
save_logs() {
    [ -z "${OUT:-}" ] \
        || tar -C "$(dirname "$LOGS")" -czf "$OUT/gpu-logs.tar.gz" "$(basename "$LOGS")"
}
rm -rf "$LOGS" && mkdir -p "$LOGS" || { echo "cannot create $LOGS"; exit 1; }

# ---- 1. build, or unpack what pack.sh built --------------------------------------------------
# the build targets the GPU run needs, one list for pack.sh and run.sh
TARGETS=$(cat tests/gpu/targets.txt)
if [ -n "$PREBUILT" ]; then
    [ -d "$PREBUILT/bin" ] || die "$PREBUILT/bin: no such folder (run tests/gpu/pack.sh first)"
    BIN=$ROOT/$PREBUILT/bin
    LIBDIR=/tmp/ss-gpu-lib
    rm -rf "$LIBDIR" && mkdir -p "$LIBDIR" || die "cannot create $LIBDIR"
    tar -C "$LIBDIR" -xzf "$PREBUILT/lib.tar.gz" || die "cannot unpack $PREBUILT/lib.tar.gz"
    LIBDIR=$LIBDIR/lib
    # The CUDA libraries come from this machine: the toolkit's folders, else a Python package's.
    CUDA_LIBS=
    for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcusolver.so.12 \
               libcusparse.so.12 libnvJitLink.so.13; do
        found=$(find /usr/local/cuda/lib64/ /usr/local/cuda/targets/x86_64-linux/lib/ \
                     /usr/local/cuda*/lib* /usr/lib/x86_64-linux-gnu/ /opt /usr/local/lib \
                     -name "$lib" 2>/dev/null | head -1)
        if [ -n "$found" ]; then
            d=$(dirname "$found")
            case ":$CUDA_LIBS:" in *":$d:"*) ;; *) CUDA_LIBS=$CUDA_LIBS:$d ;; esac
        else
            say "warning: $lib not found on this machine"
        fi
    done
    # Only our executables see the carried libraries (python3 and the system tools keep theirs).
    OUR_LD="$LIBDIR$CUDA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "prebuilt executables from $PREBUILT; their LD_LIBRARY_PATH=$OUR_LD"
    missing=$(for t in $TARGETS; do env LD_LIBRARY_PATH="$OUR_LD" ldd "$BIN/$t"; done \
              | grep 'not found' | sort -u)
    [ -z "$missing" ] || { echo "$missing"; die "libraries missing"; }
else
    rm -rf "$BUILD"
    BIN=$ROOT/$BUILD
    OUR_LD=${LD_LIBRARY_PATH:-}
    say "configuring $BUILD (-Dcuda=enabled)"
    timeout 180 meson setup "$BUILD" -Dcuda=enabled -Dmpi=disabled -Dbuildtype=release \
        >"$LOGS/setup.log" 2>&1 \
        || { tail -20 "$LOGS/setup.log"; die "meson setup (log: $LOGS/setup.log)"; }
    say "building: $(echo $TARGETS)"
    # shellcheck disable=SC2086
    timeout 300 ninja -C "$BUILD" $TARGETS >"$LOGS/build.log" 2>&1 \
        || { tail -30 "$LOGS/build.log"; die "build (log: $LOGS/build.log)"; }
fi

# ---- 2. is there a GPU? ---------------------------------------------------------------------
env LD_LIBRARY_PATH="$OUR_LD" "$BIN/tests/gpu/test_cuda_device" >"$LOGS/device.txt" 2>&1
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

save_logs
# ---- 3. the gpu tests -----------------------------------------------------------------------
TESTS_RC=0
TEST_SUMMARY=
GPU_TESTS="scan_cuda svd_cuda train_ops_cuda"
want tests || GPU_TESTS="scan_cuda"
for t in $GPU_TESTS; do
    say "test $t"
    timeout 150 env LD_LIBRARY_PATH="$OUR_LD" "$BIN/tests/gpu/test_$t" >"$LOGS/test_$t.txt" 2>&1
    rc=$?
    tail -5 "$LOGS/test_$t.txt"
    case $rc in
        0) verdict=pass ;;
        77) verdict=skip ;;
        124) verdict=TIMEOUT; TESTS_RC=1 ;;
        *) verdict="FAIL($rc)"; TESTS_RC=1 ;;
    esac
    TEST_SUMMARY="$TEST_SUMMARY $t:$verdict"
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && command -v compute-sanitizer >/dev/null 2>&1; then
        say "test $t again under compute-sanitizer (memcheck)"
        timeout 90 env LD_LIBRARY_PATH="$OUR_LD" compute-sanitizer --tool memcheck \
            --print-limit 20 "$BIN/tests/gpu/test_$t" >"$LOGS/sanitizer_$t.txt" 2>&1
        grep -E 'ERROR SUMMARY|Invalid|out of bounds|FAIL' "$LOGS/sanitizer_$t.txt" | head -20
    fi
done
say "gpu tests:$TEST_SUMMARY"
# The training-step lines train_ops_cuda printed.
grep -E '^(RESULT train_step|model .*worst)' "$LOGS/test_train_ops_cuda.txt" \
    >"$LOGS/train_ops.txt" 2>/dev/null
cat "$LOGS/train_ops.txt"

save_logs
# ---- 4. end to end: sparsity-scan --device cpu vs cuda ----------------------------------------
E2E=skipped
PAIR=/tmp/ss-gpu-pair
if ! want e2e; then
    :
elif python3 -c 'import torch, safetensors, h5py' 2>/dev/null; then
    say "end to end: sparsity-scan --device cpu and cuda on a fresh pair"
    rm -rf "$PAIR"
    if timeout 120 python3 tests/gpu/make_pair.py "$PAIR" >"$LOGS/e2e.txt" 2>&1; then
        E2E=ok
        for dev in cpu cuda; do
            t0=$(date +%s.%N)
            timeout 240 env LD_LIBRARY_PATH="$OUR_LD" "$BIN/analyze/sparsity-scan" \
                "$PAIR/A" "$PAIR/B" --device "$dev" --quiet --tol 1e-5,1e-3 --rtol 1e-3 \
                --masks --maps --hist --rank --h5 "$PAIR/$dev.h5" \
                >"$PAIR/$dev.txt" 2>>"$LOGS/e2e.txt" \
                || { E2E="FAIL(sparsity-scan --device $dev exit $?)"; break; }
            t1=$(date +%s.%N)
            echo "RESULT e2e_$dev $(awk "BEGIN {printf \"%.2f\", $t1 - $t0}") s wall" \
                >>"$LOGS/e2e.txt"
        done
        if [ "$E2E" = ok ]; then
            # The tables must be the same but for the times they print ("in 0.06 s") and the
            # rank section (LAPACK vs cuSOLVER: compared within tolerances in the HDF5 below).
            for dev in cpu cuda; do
                sed -E '/^rank of the update/,$d; s/[0-9.]+ s\)/T s)/g' "$PAIR/$dev.txt" \
                    >"$PAIR/$dev.table"
            done
            diff "$PAIR/cpu.table" "$PAIR/cuda.table" >"$PAIR/table.diff" \
                || { head -20 "$PAIR/table.diff" >>"$LOGS/e2e.txt"; E2E="FAIL(tables differ)"; }
            timeout 120 python3 tests/gpu/compare_reports.py "$PAIR/cpu.h5" "$PAIR/cuda.h5" \
                >>"$LOGS/e2e.txt" 2>&1 || E2E="FAIL(reports differ)"
        fi
    else
        E2E="FAIL(make_pair.py)"
    fi
    tail -25 "$LOGS/e2e.txt"
    case $E2E in ok) ;; *) TESTS_RC=1 ;; esac
else
    say "end to end skipped: python3 lacks torch, safetensors or h5py"
fi

save_logs
# ---- 4b. the trainer: grpo-train --device cpu vs cuda -----------------------------------------
TRAIN_E2E=skipped
TR=/tmp/ss-gpu-train
if want train; then
    say "trainer: grpo-train sft + grpo, --device cpu vs cuda (f32 and bf16 GEMMs)"
    rm -rf "$TR" && mkdir -p "$TR"
    MODEL="--layers 2 --hidden 32 --intermediate 64 --heads 2 --kv-heads 1 --head-dim 16
           --max-positions 32 --threads 1 --quiet"
    SFT="--task add:1 --batch 32 --lr 1e-2 --warmup-steps 10 --eval-every 0 --eval-size 32"
    GRPO="--steps 4 --prompts 4 --group 4 --snapshot-every 2 --eval-every 2 --eval-size 16
          --threads 1 --quiet --optimizer sgd --kl-coef 0.01"
    TRAIN_E2E=ok
    # shellcheck disable=SC2086
    (
        timeout 120 env LD_LIBRARY_PATH="$OUR_LD" "$BIN/train/grpo-train" sft -o "$TR/base" \
            --steps 250 $SFT $MODEL &&
        for d in "cpu" "cuda --gemm f32" "cuda --gemm bf16"; do
            tag=$(echo "$d" | tr -d ' -')
            timeout 60 env LD_LIBRARY_PATH="$OUR_LD" "$BIN/train/grpo-train" sft \
                -o "$TR/sft-$tag" --steps 20 $SFT $MODEL --device $d || exit 1
            timeout 60 env LD_LIBRARY_PATH="$OUR_LD" "$BIN/train/grpo-train" grpo \
                --init "$TR/base" -o "$TR/grpo-$tag" $GRPO --device $d || exit 1
        done
    ) >"$LOGS/train_e2e.txt" 2>&1 || TRAIN_E2E="FAIL(grpo-train exit $?)"
    if [ "$TRAIN_E2E" = ok ]; then
        for k in sft grpo; do
            echo "$k f32:" >>"$LOGS/train_e2e.txt"
            python3 tests/gpu/compare_metrics.py "$TR/$k-cpu/metrics.jsonl" \
                "$TR/$k-cudagemmf32/metrics.jsonl" >>"$LOGS/train_e2e.txt" 2>&1 \
                || TRAIN_E2E="FAIL($k f32 metrics differ)"
            echo "$k bf16 (reported, not checked):" >>"$LOGS/train_e2e.txt"
            python3 tests/gpu/compare_metrics.py "$TR/$k-cpu/metrics.jsonl" \
                "$TR/$k-cudagemmbf16/metrics.jsonl" 1 >>"$LOGS/train_e2e.txt" 2>&1
        done
    fi
    tail -12 "$LOGS/train_e2e.txt"
    case $TRAIN_E2E in ok) ;; *) TESTS_RC=1 ;; esac
fi

save_logs
# ---- 5. copy bandwidth ----------------------------------------------------------------------
say "copy bandwidth"
timeout 60 env LD_LIBRARY_PATH="$OUR_LD" "$BIN/bench/cuda_bandwidth" --mib 1024 --reps 5 \
    >"$LOGS/bandwidth.txt" 2>&1 \
    || say "cuda_bandwidth failed (exit $?)"
cat "$LOGS/bandwidth.txt"

save_logs
# ---- 6. scan and SVD ------------------------------------------------------------------------
say "scan: $GIB GiB BF16 pair"
timeout 240 env LD_LIBRARY_PATH="$OUR_LD" "$BIN/bench/cuda_scan_bench" --gib "$GIB" --no-svd \
    >"$LOGS/scan.txt" 2>&1 \
    || say "cuda_scan_bench (scan) failed (exit $?)"
cat "$LOGS/scan.txt"
if [ "${SS_GPU_NCU:-0}" = 1 ] && command -v ncu >/dev/null 2>&1; then
    say "ncu on one scan_kernel launch (1 GiB pair)"
    # --clock-control none: the card's clocks as found (never changed)
    timeout 120 env LD_LIBRARY_PATH="$OUR_LD" ncu --clock-control none -k regex:scan_kernel -c 1 \
        --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
        --section InstructionStats --section SchedulerStats \
        "$BIN/bench/cuda_scan_bench" --gib 1 --no-svd >"$LOGS/ncu.txt" 2>&1 \
        || say "ncu failed (exit $?)"
    grep -E "Duration|Throughput|Active Threads|Occupancy|Registers|Eligible" "$LOGS/ncu.txt"
fi
if want svd; then
    say "SVD: ${SVD_N}x${SVD_N}, $SVD_GPU on cuSOLVER, $SVD_CPU on LAPACK"
    timeout 200 env LD_LIBRARY_PATH="$OUR_LD" "$BIN/bench/cuda_scan_bench" --no-scan \
        --svd-n "$SVD_N" --svd-gpu "$SVD_GPU" --svd-cpu "$SVD_CPU" >"$LOGS/svd.txt" 2>&1 \
        || say "cuda_scan_bench (svd) failed (exit $?)"
    cat "$LOGS/svd.txt"
fi

save_logs
# ---- 7. the trainer step against PyTorch eager ------------------------------------------------
if want trainbench; then
    say "trainer step, Qwen3-0.6B shape, B 8, T 256: ours and PyTorch eager, bf16 and f32 GEMMs"
    for g in bf16 f32; do
        timeout 150 env LD_LIBRARY_PATH="$OUR_LD" "$BIN/bench/train_step_bench" --gemm "$g" \
            --steps 5 >>"$LOGS/trainbench.txt" 2>&1 || say "train_step_bench --gemm $g failed"
        timeout 150 python3 bench/train_step_torch.py --gemm "$g" --steps 10 \
            >>"$LOGS/trainbench.txt" 2>&1 || say "train_step_torch.py --gemm $g failed"
    done
    cat "$LOGS/trainbench.txt"
fi

save_logs
# ---- 8. the table ---------------------------------------------------------------------------
val() { grep -h "^RESULT $1 " "$LOGS/bandwidth.txt" "$LOGS/scan.txt" "$LOGS/svd.txt" \
        "$LOGS/train_ops.txt" "$LOGS/e2e.txt" "$LOGS/trainbench.txt" 2>/dev/null \
        | head -1 | cut -d' ' -f3-; }
echo
echo "== CUDA summary ($(head -1 "$LOGS/device.txt"))"
printf '%-34s %s\n' "gpu tests" "$TEST_SUMMARY"
printf '%-34s %s\n' "end to end cpu == cuda reports" "$E2E"
printf '%-34s %s\n' "end to end cpu / cuda wall" "$(val e2e_cpu) / $(val e2e_cuda)"
printf '%-34s %s\n' "grpo-train cpu == cuda (f32)" "$TRAIN_E2E"
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
printf '%-34s %s\n' "0.6B step ours bf16 / torch bf16" \
    "$(val train_step_ours_bf16 | cut -d' ' -f1-2) / $(val train_step_torch_bf16 | cut -d' ' -f1-2)"
printf '%-34s %s\n' "0.6B step ours f32 / torch f32" \
    "$(val train_step_ours_f32 | cut -d' ' -f1-2) / $(val train_step_torch_f32 | cut -d' ' -f1-2)"
printf '%-34s %s\n' "wall time of run.sh" "$(($(date +%s) - START)) s"
save_logs
[ "$TESTS_RC" -eq 0 ] || exit 1
exit 0
