#!/bin/sh
# tests/gpu/pack.sh: builds here what tests/gpu/run.sh runs on a lent GPU machine and packs it
# into one ignored folder that the device tool carries (docs/cuda.md, "On a lent GPU").
#
# The GPU machine's image has nvcc but not the Debian packages the build needs (HDF5, jansson,
# zstd, OpenBLAS/LAPACKE), so the build happens here (with this machine's nvcc, for sm_90) and
# travels: PACK/bin/ holds the executables under their build-tree paths, PACK/lib.tar.gz every
# shared library they load except the C runtime (libc, libm, libstdc++, ...) and the CUDA
# libraries, which the GPU machine has in versions its driver matches.
#
# usage: tests/gpu/pack.sh [PACK]       (PACK defaults to .gpu-carry; build folder build-gpu)
# then:  device run, carry [".gpu-carry"], command "SS_GPU_PREBUILT=.gpu-carry sh tests/gpu/run.sh"
set -eu
cd "$(dirname "$0")/../.."
PACK=${1:-.gpu-carry}
BUILD=${SS_GPU_BUILD:-build-gpu}
# the build targets the GPU run needs, one list for pack.sh and run.sh
TARGETS=$(cat tests/gpu/targets.txt)

# Always a fresh build: meson 1.0's nvcc rule records no header dependencies, so an object of a
# .cu file would not be rebuilt after a header it includes changed (docs/cuda.md).
# MPI off: a singleton MPI_Init would look for Open MPI's plugins, which do not travel.
rm -rf "$BUILD"
meson setup "$BUILD" -Dcuda=enabled -Dmpi=disabled -Dbuildtype=release >/dev/null
# shellcheck disable=SC2086
ninja -C "$BUILD" $TARGETS >/dev/null

rm -rf "$PACK"
mkdir -p "$PACK/bin" "$PACK/lib"
for t in $TARGETS; do
    mkdir -p "$PACK/bin/$(dirname "$t")"
    cp "$BUILD/$t" "$PACK/bin/$t"
done
# Every library the executables load, resolved through symlinks, minus the C runtime and CUDA.
# shellcheck disable=SC2086
for t in $TARGETS; do ldd "$BUILD/$t"; done \
    | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
while read -r soname path; do
    case "$soname" in
        libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) continue ;;
        libstdc++.so*|libgcc_s.so*) continue ;;
        libcu*|libnvJitLink*|libnvrtc*) continue ;;
    esac
    cp -L "$path" "$PACK/lib/$soname"
done
tar -C "$PACK" -czf "$PACK/lib.tar.gz" lib
rm -rf "$PACK/lib"
nbin=$(find "$PACK/bin" -type f | wc -l)
nlib=$(tar -tzf "$PACK/lib.tar.gz" | grep -c '\.so')
echo "packed $nbin executables and $nlib libraries into $PACK ($(du -sh "$PACK" | cut -f1))"
