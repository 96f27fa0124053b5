#!/usr/bin/env bash
# Runs the whole test suite: installs missing packages (and the PyPI `safetensors` oracle into
# <build>/pydeps), configures, builds, runs `meson test`, and ends with the line
# "N passed, N failed, N skipped". Extra arguments go to `meson test` (e.g. --suite formats).
# GPU tests skip themselves on machines without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}

summary() { echo "$1 passed, $2 failed, $3 skipped"; }

if ! bash scripts/build.sh --test; then
  echo "test.sh: the build failed" >&2
  summary 0 1 0
  exit 1
fi
if ! PYTHONPATH="$build_dir/pydeps" /usr/bin/python3 -c "import safetensors" 2>/dev/null; then
  /usr/bin/python3 -m pip install -q --disable-pip-version-check --target "$build_dir/pydeps" \
    safetensors 2>&1 | grep -v "Running pip as the 'root' user" >&2
  if ! PYTHONPATH="$build_dir/pydeps" /usr/bin/python3 -c "import safetensors" 2>/dev/null; then
    echo "test.sh: cannot install the safetensors oracle from PyPI" >&2
    summary 0 1 0
    exit 1
  fi
fi

meson test -C "$build_dir" --print-errorlogs --num-processes 2 "$@"
status=$?

# Count results from meson's machine-readable log.
read -r passed failed skipped < <(/usr/bin/python3 - "$build_dir/meson-logs/testlog.json" <<'PY'
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
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
summary "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
