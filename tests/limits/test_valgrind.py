#!/usr/bin/python3
"""sparsity-scan under Valgrind's memcheck: no invalid access, no use of uninitialised values and
no definite or indirect leak on one scan of two small checkpoints (a single file against a sharded
folder holding the same tensors, six dtypes, some elements changed), with --json, --hist and
--h5 --masks --maps, on 2 threads.

Usage: test_valgrind.py SPARSITY_SCAN [sanitized]

Skips (77) when valgrind is not installed, or with the argument "sanitized" (an ASan build cannot
run under Valgrind). Exit status: 0 pass, 1 fail.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

# (name, dtype, shape, struct format of one element)
TENSORS = [
    ("model.embed_tokens.weight", "BF16", [16, 8], "H"),
    ("model.layers.0.self_attn.q_proj.weight", "F32", [8, 8], "f"),
    ("model.layers.0.self_attn.k_proj.weight", "F16", [4, 8], "e"),
    ("model.layers.0.mlp.up_proj.weight", "F64", [12, 8], "d"),
    ("model.layers.1.input_layernorm.weight", "I32", [8], "i"),
    ("model.layers.1.mlp.down_proj.weight", "U8", [8, 12], "B"),
]


def tensor_bytes(k, dtype, shape, fmt, changed):
    n = 1
    for d in shape:
        n *= d
    vals = []
    for i in range(n):
        v = (i * 7 + k) % 23 - 11
        if changed and i % 5 == k % 5:
            v += 3
        if fmt == "H":  # BF16: the top half of the F32 bit pattern
            vals.append(struct.unpack("<I", struct.pack("<f", v * 0.125))[0] >> 16)
        elif fmt in "iB":
            vals.append(abs(v) if fmt == "B" else v)
        else:
            vals.append(v * 0.125)
    return struct.pack("<%d%s" % (n, fmt), *vals)


def write_st(path, items):
    hdr, data = {}, b""
    for name, dtype, shape, blob in items:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(hdr).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 1
    scan = sys.argv[1]
    if len(sys.argv) == 3 and sys.argv[2] == "sanitized":
        print("sanitizer build: Valgrind cannot run ASan binaries: skipped")
        return 77
    valgrind = shutil.which("valgrind")
    if not valgrind:
        print("valgrind not installed: skipped")
        return 77
    with tempfile.TemporaryDirectory(prefix="ss-valgrind-") as tmp:
        a = os.path.join(tmp, "a.safetensors")
        write_st(a, [(n, dt, sh, tensor_bytes(k, dt, sh, f, False))
                     for k, (n, dt, sh, f) in enumerate(TENSORS)])
        b = os.path.join(tmp, "b")
        os.mkdir(b)
        items = [(n, dt, sh, tensor_bytes(k, dt, sh, f, True)) for k, (n, dt, sh, f) in enumerate(TENSORS)]
        write_st(os.path.join(b, "s1.safetensors"), items[:3])
        write_st(os.path.join(b, "s2.safetensors"), items[3:])
        with open(os.path.join(b, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": {n: "s1.safetensors" if i < 3 else
                                                      "s2.safetensors"
                                                      for i, (n, _, _, _) in enumerate(items)}}, f)
        failures = []
        runs = [["--json", "--tol", "1e-5,0.1", "--rtol", "1e-3", "--threads", "2"],
                ["--hist", "--json", "--threads", "2"],
                ["--h5", os.path.join(tmp, "r.h5"), "--masks", "--maps", "--head-dim", "4",
                 "--threads", "2"]]
        for opts in runs:
            cmd = [valgrind, "-q", "--error-exitcode=99", "--leak-check=full", "--suppressions="
                   + os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                  "valgrind.supp"),
                   "--errors-for-leak-kinds=definite,indirect",
                   "--show-leak-kinds=definite,indirect", "--track-origins=yes",
                   scan, a, b, "--quiet"] + opts
            p = subprocess.run(cmd, capture_output=True, timeout=600)
            err = p.stderr.decode("utf-8", "replace")
            print(f"sparsity-scan {' '.join(opts)}: exit {p.returncode}")
            if p.returncode != 0 or "==" in err:
                failures.append(f"{' '.join(opts)}: exit {p.returncode}\n{err[-4000:]}")
        if failures:
            print(f"{len(failures)} failure(s):", file=sys.stderr)
            for f in failures:
                print("  " + f, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
