#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing sparsity-scan need, when they are missing.
# Usage: scripts/install-deps.sh [--test]   (--test adds the Python oracles the test suite uses)
set -euo pipefail

pkgs=(build-essential meson ninja-build pkg-config libjansson-dev libzstd-dev libhdf5-dev
      hdf5-tools libopenblas-dev liblapacke-dev gnuplot-nox
      libopenmpi-dev openmpi-bin)  # Open MPI: optional scale-out (docs/mpi.md)
if [ "${1:-}" = "--test" ]; then
  # clang and its runtime build the libFuzzer harness for the short fuzz test
  # python3-torch is the independent oracle of the trainer's forward, backward and optimizers
  pkgs+=(python3-numpy python3-h5py python3-pip python3-torch clang libclang-rt-14-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages and not root; run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
