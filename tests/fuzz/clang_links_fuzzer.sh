#!/bin/sh
# Configure-time probe: exits 0 when CLANG can link a libFuzzer harness with ASan and UBSan.
# Usage: clang_links_fuzzer.sh CLANG
set -eu
dir=$(mktemp -d "${TMPDIR:-/tmp}/ss-fuzz-probe-XXXXXX")
trap 'rm -rf "$dir"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$dir/p.c"
"$1" -fsanitize=fuzzer,address,undefined "$dir/p.c" -o "$dir/p" >/dev/null 2>&1
