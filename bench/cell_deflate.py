"""cell_deflate.py: what deflating the update maps' cell counts would cost (why analyze/h5_chunks.c
stores dense cell-count chunks raw; docs/BENCHMARKS.md, "Update maps").

usage: /usr/bin/python3 bench/cell_deflate.py REPORT.h5   (a sparsity-scan --maps --h5 report)

Reads every /maps/<tensor>/cell_changed, cuts each into 64 KiB pieces (the chunks h5_chunks
writes), and deflates every piece with more than 1 nonzero byte in 64 (those stored raw) at level
1, default strategy and Z_RLE, on one core; prints the bytes, the compression ratio and MB/s of
each. Needs h5py and numpy."""
import sys
import time
import zlib

import h5py
import numpy as np

PIECE = 1 << 16


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    pieces = []
    with h5py.File(sys.argv[1], "r") as f:
        for name in f["maps"]:
            raw = f["maps"][name]["cell_changed"][...].tobytes()
            for i in range(0, len(raw), PIECE):
                p = raw[i:i + PIECE]
                if np.count_nonzero(np.frombuffer(p, np.uint8)) * 64 > len(p):
                    pieces.append(p)
    total = sum(len(p) for p in pieces)
    print(f"{len(pieces)} dense pieces, {total / 1e6:.1f} MB")
    for label, strategy in (("default", zlib.Z_DEFAULT_STRATEGY), ("rle", zlib.Z_RLE)):
        t0 = time.perf_counter()
        out = 0
        for p in pieces:
            c = zlib.compressobj(1, zlib.DEFLATED, 15, 8, strategy)
            out += len(c.compress(p) + c.flush())
        dt = time.perf_counter() - t0
        print(f"level 1 {label}: {total / max(out, 1):.2f}x smaller, {total / 1e6 / dt:.0f} MB/s, "
              f"{dt:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
