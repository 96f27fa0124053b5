"""ckpt-delta from the command line, checked against an independent reader of the format.

Usage: test_ckpt_delta.py CASE CKPT_DELTA
  oracle  deltas written by ckpt-delta (every dtype, densities 0..100%, empty and 0-d tensors,
          new and retyped tensors) decode with tests/sdelta/sdelta_reader.py (written from
          docs/sdelta-format.md) to the child's exact bytes
  apply   ckpt-delta apply reproduces every child tensor and the metadata; info and verify
  errors  exit statuses: 1 usage, 2 corrupt or truncated delta, 3 wrong parent, 4 unwritable
  run     snapshot and materialize on a run folder, base- and chain-parented
Exit 0 pass, 1 fail (printing what differed).
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdelta_reader  # noqa: E402

SIZES = sdelta_reader.DTYPE_SIZE


def write_st(path, tensors, meta=None):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, off = {}, 0
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for _, _, _, data in tensors:
            f.write(data)


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack_from("<Q", b)[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop("__metadata__", {})
    out = {}
    for name, t in h.items():
        a, z = t["data_offsets"]
        out[name] = (t["dtype"], t["shape"], b[8 + n + a:8 + n + z])
    return out, meta


def perturb(rng, data, w, density):
    """Changes about density of the elements by a few units, sometimes to anything."""
    out = bytearray(data)
    for i in range(len(data) // w):
        if rng.random() >= density:
            continue
        x = int.from_bytes(out[i * w:(i + 1) * w], "little")
        y = rng.getrandbits(8 * w) if rng.random() < 0.03 else (x + rng.choice([-3, -2, -1, 1, 2, 3])) % (1 << (8 * w))
        if y == x:
            y = x ^ 1
        out[i * w:(i + 1) * w] = y.to_bytes(w, "little")
    return bytes(out)


def make_pair(rng, density):
    parent, child = [], []
    shapes = [[0], [], [7], [33, 65], [3000]]
    for dt in sorted(SIZES):
        for k, shape in enumerate(shapes):
            n = 1
            for s in shape:
                n *= s
            p = bytes(rng.getrandbits(8) for _ in range(n * SIZES[dt]))
            name = "model.%s.t%d" % (dt.lower(), k)
            parent.append((name, dt, shape, p))
            child.append((name, dt, shape, perturb(rng, p, SIZES[dt], density)))
    # a tensor new in the child, one whose dtype changed, one dropped
    child.append(("new.weight", "F32", [50], bytes(rng.getrandbits(8) for _ in range(200))))
    parent.append(("retyped", "BF16", [40], bytes(80)))
    child.append(("retyped", "F32", [40], bytes(rng.getrandbits(8) for _ in range(160))))
    parent.append(("dropped", "U8", [3], b"abc"))
    # repetitive bytes that zstd's matches beat an order-0 coder on: the planes mode
    parent.append(("pattern", "I32", [4096], bytes(16384)))
    child.append(("pattern", "I32", [4096], bytes(range(256)) * 64))
    return parent, child


class Case:
    def __init__(self, tool):
        self.tool = tool
        self.failures = 0
        self.tmp = tempfile.mkdtemp(prefix="sdelta-cli-")

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run(self, *args, want=0):
        r = subprocess.run([self.tool] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, check=False)
        if r.returncode != want:
            self.fail("%s: exit %d, want %d\nstdout: %s\nstderr: %s" %
                      (" ".join(args), r.returncode, want, r.stdout, r.stderr))
        return r

    def fail(self, msg):
        print("FAIL:", msg)
        self.failures += 1

    def check(self, cond, msg):
        if not cond:
            self.fail(msg)


def case_oracle(c):
    rng = random.Random(5)
    modes = set()
    for density in (0.0, 0.001, 0.05, 0.3, 0.95, 1.0):
        parent, child = make_pair(rng, density)
        write_st(c.path("p.safetensors"), parent)
        write_st(c.path("c.safetensors"), child, {"format": "pt"})
        c.run("encode", c.path("p.safetensors"), c.path("c.safetensors"), "-o",
              c.path("d.sdelta"), "--chunk-elems", "1000", "--step", "7", "--meta", "k=v")
        d = sdelta_reader.read_delta(c.path("d.sdelta"))
        c.check(d.step == 7 and d.parent_name == "p.safetensors", "step or parent name")
        c.check(("k", "v") in d.meta and ("format", "pt") in d.meta, "metadata %r" % d.meta)
        modes.update(ch[0] for t in d.tensors for ch in t["chunks"])
        got = sdelta_reader.decode(d, {n: b for n, _, _, b in parent})
        want = {n: b for n, _, _, b in child}
        c.check(set(got) == set(want), "tensor names differ")
        for n in want:
            c.check(got.get(n) == want[n], "density %g: tensor %s differs" % (density, n))
        # the reader must refuse the wrong parent (the child, when it differs)
        if density == 0.0:
            continue
        try:
            sdelta_reader.decode(d, {n: b for n, _, _, b in child})
            c.fail("independent reader accepted the wrong parent")
        except (sdelta_reader.SdeltaError, KeyError):
            pass
    c.check(modes >= {0, 1, 2, 3, 5, 6}, "chunk modes covered by the oracle: %r" % sorted(modes))


def case_apply(c):
    rng = random.Random(6)
    parent, child = make_pair(rng, 0.1)
    write_st(c.path("p.safetensors"), parent)
    write_st(c.path("c.safetensors"), child, {"format": "pt", "note": "x"})
    c.run("encode", c.path("p.safetensors"), c.path("c.safetensors"), "-o", c.path("d.sdelta"),
          "--threads", "2")
    c.run("apply", c.path("p.safetensors"), c.path("d.sdelta"), "-o", c.path("out.safetensors"))
    got, meta = read_st(c.path("out.safetensors"))
    c.check(meta == {"format": "pt", "note": "x"}, "metadata %r" % meta)
    for name, dt, shape, data in child:
        c.check(got.get(name) == (dt, shape, data), "applied tensor %s differs" % name)
    c.check(set(got) == {t[0] for t in child}, "applied tensor set differs")
    r = c.run("info", c.path("d.sdelta"))
    c.check("model.bf16.t4" in r.stdout and "sparse" in r.stdout and "total:" in r.stdout,
            "info output:\n" + r.stdout)
    c.check("(no parent)" in r.stdout, "info does not flag tensors without parent")
    for mode in ("unchanged", "raw", "sparse", "dense", "planes"):
        c.check(mode in r.stdout, "no %s chunk in the test delta:\n%s" % (mode, r.stdout))
    r = c.run("verify", c.path("d.sdelta"))
    c.check("ok" in r.stdout, "verify without parent")
    r = c.run("verify", c.path("d.sdelta"), c.path("p.safetensors"))
    c.check("decoded against the parent" in r.stdout, "verify with parent")


def case_errors(c):
    rng = random.Random(7)
    parent, child = make_pair(rng, 0.2)
    write_st(c.path("p.safetensors"), parent)
    write_st(c.path("c.safetensors"), child)
    c.run(want=1)
    c.run("frobnicate", want=1)
    c.run("encode", c.path("p.safetensors"), want=1)
    c.run("encode", c.path("p.safetensors"), c.path("c.safetensors"), "-o", c.path("d.sdelta"))
    # wrong parent: exit 3, naming the tensor
    r = c.run("apply", c.path("c.safetensors"), c.path("d.sdelta"), "-o",
              c.path("o.safetensors"), want=3)
    c.check("tensor '" in r.stderr and "d.sdelta" in r.stderr, "message: " + r.stderr)
    c.check(not os.path.exists(c.path("o.safetensors")), "output left behind")
    c.run("verify", c.path("d.sdelta"), c.path("c.safetensors"), want=3)
    # corruption in a chunk: exit 2, naming tensor and chunk
    b = bytearray(open(c.path("d.sdelta"), "rb").read())
    b[40] ^= 0x10
    open(c.path("bad.sdelta"), "wb").write(b)
    r = c.run("verify", c.path("bad.sdelta"), want=2)
    c.check("chunk" in r.stderr and "tensor '" in r.stderr, "message: " + r.stderr)
    c.run("apply", c.path("p.safetensors"), c.path("bad.sdelta"), "-o", c.path("o.safetensors"),
          want=2)
    # a newer minor version (here 1.3): refused with both versions named, by both readers
    good = open(c.path("d.sdelta"), "rb").read()
    c.check(good[8:12] == b"\x01\x00\x02\x00", "writer version %r" % good[8:12])
    newer = bytearray(good)
    newer[10] = 3
    open(c.path("newer.sdelta"), "wb").write(newer)
    r = c.run("info", c.path("newer.sdelta"), want=2)
    c.check("version 1.3" in r.stderr and "1.2" in r.stderr, "message: " + r.stderr)
    try:
        sdelta_reader.read_delta(c.path("newer.sdelta"))
        c.fail("independent reader accepted version 1.3")
    except sdelta_reader.SdeltaError:
        pass
    # truncated: exit 2
    open(c.path("cut.sdelta"), "wb").write(bytes(b[:-5]))
    c.run("info", c.path("cut.sdelta"), want=2)
    c.run("info", c.path("missing.sdelta"), want=2)
    # unwritable output: exit 4
    c.run("encode", c.path("p.safetensors"), c.path("c.safetensors"), "-o",
          c.path("no/such/dir/d.sdelta"), want=4)


def case_run(c):
    rng = random.Random(8)
    parent, child1 = make_pair(rng, 0.05)
    child2 = [(n, dt, s, perturb(rng, b, SIZES[dt], 0.05)) for n, dt, s, b in child1]
    run = c.path("run")
    os.makedirs(run)
    write_st(os.path.join(run, "base.safetensors"), parent)
    write_st(c.path("c1.safetensors"), child1)
    write_st(c.path("c2.safetensors"), child2)
    c.run("snapshot", run, c.path("c1.safetensors"), "--step", "100")
    c.run("snapshot", run, c.path("c2.safetensors"), "--step", "200", "--chain")
    for spec, want in (("100", child1), ("200", child2), ("latest", child2), ("base", parent)):
        out = c.path("m-%s.safetensors" % spec)
        c.run("materialize", "%s@%s" % (run, spec), "-o", out)
        got, _ = read_st(out)
        for name, dt, shape, data in want:
            c.check(got.get(name) == (dt, shape, data), "%s@%s: %s differs" % (run, spec, name))
    d = sdelta_reader.read_delta(os.path.join(run, "snapshots", "step-000200.sdelta"))
    c.check(d.parent_name == "step-000100.sdelta", "chain parent name " + d.parent_name)
    c.run("materialize", run + "@300", "-o", c.path("x.safetensors"), want=2)


def main():
    case, tool = sys.argv[1], sys.argv[2]
    if case in ("oracle", "run") and shutil.which("zstd") is None:
        print("the independent reader needs the zstd command: skipped")
        sys.exit(77)
    c = Case(tool)
    {"oracle": case_oracle, "apply": case_apply, "errors": case_errors, "run": case_run}[case](c)
    subprocess.run(["rm", "-rf", c.tmp], check=False)
    print("%s: %d failures" % (case, c.failures))
    sys.exit(1 if c.failures else 0)


if __name__ == "__main__":
    main()
