#!/bin/sh
# Runs a libFuzzer harness for a short time on a scratch copy of its seed corpus; fails when the
# fuzzer finds a crash, a leak, a timeout or a sanitizer report. libFuzzer's own exit status for
# those is 77 (70 for a timeout), which meson would report as a skip, so both are set to 1 here.
# Usage: run_fuzz.sh FUZZER SEED_DIR [SECONDS [DICT]]   (exit 77 = skipped when FUZZER is "none")
set -eu
fuzzer=$1
seeds=$2
secs=${3:-20}
dict=${4:-}
if [ "$fuzzer" = none ]; then
    echo "fuzzer not built (needs clang with -fsanitize=fuzzer): skipped"
    exit 77
fi
case "$fuzzer" in /*) ;; *) fuzzer="$PWD/$fuzzer" ;; esac
case "$dict" in /* | '') ;; *) dict="$PWD/$dict" ;; esac
work=$(mktemp -d "${TMPDIR:-/tmp}/ss-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp "$seeds"/* "$work/corpus/"
cd "$work"
status=0
"$fuzzer" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -error_exitcode=1 -timeout_exitcode=1 \
    ${dict:+-dict="$dict"} corpus >fuzz.log 2>&1 || status=$?
tail -25 fuzz.log
if [ "$status" -ne 0 ]; then
    echo "fuzzer exited $status"
    ls crash-* leak-* timeout-* oom-* 2>/dev/null | head -5
fi
exit "$status"
