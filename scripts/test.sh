#!/usr/bin/env bash
# Runs the whole test suite twice and ends with the line "N passed, N failed, N skipped" counting
# both runs:
#   1. in BUILD_DIR (default build: the release build), after installing missing packages and the
#      PyPI oracles (`safetensors`; `tokenizers` and `transformers` for tests/train_hf) into
#      <build>/pydeps;
#   2. in SAN_BUILD_DIR (default build-asan), configured on first use with
#      -Db_sanitize=address,undefined -Dbuildtype=debugoptimized -Dcuda=disabled (-O2 -g: the
#      sanitizers at a fraction of -O0's run time), so that every test also
#      runs under AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer. The suites
#      fuzz (its harnesses are sanitized already) and valgrind (ASan binaries cannot run under
#      Valgrind) run in the first build only. SS_SANITIZE=0 leaves this run out.
# Suite limits_long (minutes, gigabytes) runs only with SS_LONG_TESTS=1. Extra arguments go to
# both `meson test` calls (e.g. --suite formats). GPU tests skip themselves without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
san_dir=${SAN_BUILD_DIR:-build-asan}
san_opts=(-Db_sanitize=address,undefined -Dbuildtype=debugoptimized -Dcuda=disabled)

passed=0 failed=0 skipped=0
summary() { echo "$passed passed, $failed failed, $skipped skipped"; }

# Installs the safetensors oracle, and the tokenizers / transformers oracles of tests/train_hf
# (versions that work with Debian's torch 1.13; --no-deps keeps Debian's numpy and torch), into
# $1/pydeps (copied from the first build when it has them). Only safetensors is required: the
# train_hf tests skip themselves without the others.
pydeps() {
  if PYTHONPATH="$1/pydeps" /usr/bin/python3 -c "import safetensors, tokenizers, transformers" \
       2>/dev/null; then
    return 0
  fi
  if [ "$1" != "$build_dir" ] && [ -d "$build_dir/pydeps" ]; then
    rm -rf "$1/pydeps" && cp -r "$build_dir/pydeps" "$1/pydeps"
  else
    /usr/bin/python3 -m pip install -q --disable-pip-version-check --no-deps --target "$1/pydeps" \
      safetensors transformers==4.44.2 tokenizers==0.19.1 huggingface_hub==0.24.7 \
      regex==2024.7.24 tqdm==4.66.5 packaging==24.1 filelock==3.15.4 fsspec==2024.6.1 2>&1 |
      grep -v "Running pip as the 'root' user" >&2
  fi
  if ! PYTHONPATH="$1/pydeps" /usr/bin/python3 -c "import safetensors" 2>/dev/null; then
    echo "test.sh: cannot install the safetensors oracle from PyPI into $1/pydeps" >&2
    return 1
  fi
}

# Runs meson test in $1 with the remaining arguments and adds its results to the counts.
run_suite() {
  local dir=$1
  shift
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@"
  local status=$? p f s
  read -r p f s < <(/usr/bin/python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"): p += 1
        elif r == "SKIP": s += 1
        else: f += 1
except OSError:
    f = 1
print(p, f, s)
PY
)
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

long=()
if [ "${SS_LONG_TESTS:-0}" != 1 ]; then long=(--no-suite limits_long); fi

if ! bash scripts/build.sh --test; then
  echo "test.sh: the build failed" >&2
  failed=1
  summary
  exit 1
fi
if pydeps "$build_dir"; then
  run_suite "$build_dir" "${long[@]}" "$@"
else
  failed=$((failed + 1))
fi

if [ "${SS_SANITIZE:-1}" != 0 ]; then
  echo "== the same tests under ASan and UBSan ($san_dir)"
  if [ -f "$san_dir/build.ninja" ] &&
     ! meson introspect "$san_dir" --buildoptions 2>/dev/null | /usr/bin/python3 -c '
import json, sys
sys.exit(0 if any(o["name"] == "b_sanitize" and o["value"] == "address,undefined"
                  for o in json.load(sys.stdin)) else 1)'; then
    meson configure "$san_dir" "${san_opts[@]}" >/dev/null
  fi
  if ! BUILD_DIR="$san_dir" bash scripts/build.sh --test "${san_opts[@]}"; then
    echo "test.sh: the sanitizer build failed" >&2
    failed=$((failed + 1))
  elif pydeps "$san_dir"; then
    run_suite "$san_dir" "${long[@]}" --no-suite fuzz --no-suite valgrind "$@"
  else
    failed=$((failed + 1))
  fi
fi

summary
[ "$failed" -eq 0 ]
