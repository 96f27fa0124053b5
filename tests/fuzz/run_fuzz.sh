#!/bin/sh
# Runs a libFuzzer harness for a short time on a scratch copy of its seed corpus.
# Usage: run_fuzz.sh FUZZER SEED_DIR [SECONDS]   (exit 77 = skipped when FUZZER is "none")
set -eu
fuzzer=$1
seeds=$2
secs=${3:-20}
if [ "$fuzzer" = none ]; then
    echo "fuzzer not built (needs clang with -fsanitize=fuzzer): skipped"
    exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/sdelta-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp "$seeds"/* "$work/corpus/"
cd "$work"
"$fuzzer" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    corpus 2>&1 | tail -25
