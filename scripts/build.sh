#!/usr/bin/env bash
# Configures (once) and builds sparsity-scan in BUILD_DIR (default: build), after installing any
# missing Debian packages. Extra arguments go to `meson setup` on the first configure.
# Usage: scripts/build.sh [--test] [meson setup options...]
set -euo pipefail
cd "$(dirname "$0")/.."
deps_flag=()
if [ "${1:-}" = "--test" ]; then deps_flag=(--test); shift; fi
bash scripts/install-deps.sh "${deps_flag[@]}"
build_dir=${BUILD_DIR:-build}
if [ ! -f "$build_dir/build.ninja" ]; then
  meson setup "$build_dir" "$@" >/dev/null
fi
ninja -C "$build_dir" >/dev/null
