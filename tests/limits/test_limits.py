#!/usr/bin/python3
"""Size limits of the safetensors reader and of sparsity-scan: each case must work, or fail with a
clear one-line error, in bounded time and memory.

Usage: test_limits.py CASE SPARSITY_SCAN ST_CHECK [sanitized]

With "sanitized" (an ASan build: shadow memory, redzones and quarantine) every memory bound below
is doubled.

  big_tensor    a BF16 tensor of 4 GiB + 8 KiB followed by a small F32 tensor whose data starts
                past 4 GiB, in sparse files (header written, then the file truncated up to size:
                no disk used). A against a copy with 24 changed tail elements, and A against A:
                exact counts (the big tensor: every element equal). Bound: the scan's anonymous
                memory (RssAnon, polled) stays under 256 MiB; the mapped file pages it reads are
                page cache, reported but not bounded.
  many_tensors  100,000 tensors in one file (1 to 7 elements each, 100 layers) against a copy
                with one element changed in every 10th: exact per-tensor and total counts.
                Bound: peak RSS under 512 MiB.
  header_limit  a header of exactly 100,000,000 bytes (the reference implementation's limit,
                ST_MAX_HEADER_BYTES; mostly one __metadata__ string) scans against itself; one
                byte more fails with exit 2 and "exceeds the limit of 100000000 bytes"; a length
                field at the limit with a shorter file fails with "runs past the end". Bound:
                peak RSS under 768 MiB.
  header_dense  (suite limits_long: 15-40 s) a header at the limit filled with 1,713,747 zero-size tensor entries opens
                (st_check). This is the reader's worst case of memory per header byte: the
                jansson tree costs about 1.1 KB per entry. Bound: peak RSS under 3 GiB.

Files go to a temporary folder under $TMPDIR (removed afterwards). The sizes, times and peaks are
printed. Exit status: 0 pass, 1 fail, 77 skip (no sparse files on this file system).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
HEADER_LIMIT = 100_000_000


def write_st(path, entries, header_len=None, writes=(), pad_to=None):
    """A safetensors file: entries (name, dtype, shape, nbytes) laid out back to back; the data
    section is left as a hole (zeros) except for writes [(offset in data, bytes)]. pad_to pads
    the header with spaces to that length; header_len overrides the length field."""
    hdr, off = {}, 0
    for name, dt, shape, nb in entries:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad_to is not None:
        h += b" " * (pad_to - len(h))
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h) if header_len is None else header_len) + h)
        f.truncate(8 + len(h) + off)
        for pos, data in writes:
            f.seek(8 + len(h) + pos)
            f.write(data)
    return 8 + len(h) + off


def status_kb(pid, key):
    """A 'kB' field of /proc/pid/status, 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(cmd, tmp):
    """Runs cmd; returns (exit status, stdout, stderr, seconds, peak RSS MiB, peak RssAnon MiB).
    Both peaks come from /proc/PID/status polled every 5 ms: VmHWM (the kernel's high-water mark,
    reset by exec, so the forked Python's pages do not count as getrusage's would) and RssAnon
    (memory that is not mapped file pages)."""
    with open(os.path.join(tmp, "out"), "w+b") as out, open(os.path.join(tmp, "err"), "w+b") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=err)
        hwm = anon = 0
        while True:
            pid, st, _ = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            hwm = max(hwm, status_kb(p.pid, "VmHWM"))
            anon = max(anon, status_kb(p.pid, "RssAnon"))
            time.sleep(0.005)
        secs = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(st)
        out.seek(0)
        err.seek(0)
        return (p.returncode, out.read().decode(), err.read().decode("utf-8", "replace"), secs,
                hwm / 1024, anon / 1024)


class Case:
    def __init__(self, scan, st_check, tmp, mem_scale):
        self.scan, self.st_check, self.tmp = scan, st_check, tmp
        self.mem_scale = mem_scale
        self.failures = []

    def check_mem(self, mib, bound, what):
        bound *= self.mem_scale
        self.check(mib < bound, f"{what} peaked at {mib:.0f} MiB, bound {bound}")

    def check(self, cond, what):
        if not cond:
            self.failures.append(what)
        return cond

    def scan_json(self, a, b, label):
        rc, out, err, secs, rss, anon = run([self.scan, a, b, "--json", "--quiet"], self.tmp)
        print(f"{label}: exit {rc}, {secs:.1f} s, peak RSS {rss:.0f} MiB, peak RssAnon {anon:.0f} MiB")
        if not self.check(rc == 0, f"{label}: exit {rc}: {err.strip()[:500]}"):
            return None, rss, anon
        return json.loads(out), rss, anon

    def expect_error(self, path, word, label):
        rc, out, err, secs, rss, _ = run([self.scan, path, path, "--quiet"], self.tmp)
        print(f"{label}: exit {rc}, {secs:.1f} s, peak RSS {rss:.0f} MiB: {err.strip()[:200]}")
        self.check(rc == 2 and len(err.splitlines()) == 1 and
                   err.startswith(("sparsity-scan: " + path + ": ", path + ": "))
                   and word in err and not out,
                   f"{label}: want exit 2 and one line naming the file with '{word}', got exit "
                   f"{rc}: {err.strip()[:500]!r}")

    # ---- the cases ----

    def big_tensor(self):
        n = (4 << 30) // 2 + 4096  # BF16 elements: 4 GiB + 8 KiB
        ents = [("big", "BF16", [n], 2 * n), ("tail", "F32", [1024], 4096)]
        ones = struct.pack("<1024f", *[1.0] * 1024)
        moved = struct.pack("<1024f", *([1.0] * 1000 + [2.0] * 24))
        a, b = os.path.join(self.tmp, "a.safetensors"), os.path.join(self.tmp, "b.safetensors")
        size = write_st(a, ents, writes=[(2 * n, ones)])
        write_st(b, ents, writes=[(2 * n, moved)])
        used = os.stat(a).st_blocks * 512
        if used > 64 * MIB:
            print(f"the file system stores holes ({used} bytes on disk): skipped")
            return 77
        print(f"two files of {size} bytes ({size / (1 << 30):.2f} GiB), {used} bytes on disk each")
        for x, y, want_tail in ((a, b, 24), (a, a, 0)):
            rep, _, anon = self.scan_json(x, y, f"scan {os.path.basename(x)} {os.path.basename(y)}")
            if rep is None:
                continue
            t = {e["name"]: e for e in rep["tensors"]}
            self.check(t["big"]["numel"] == n and t["big"]["changed"] == 0 and
                       t["big"]["max_abs_delta"] == 0, f"big tensor: {t['big']}")
            self.check(t["tail"]["changed"] == want_tail and
                       (want_tail == 0 or t["tail"]["max_abs_delta"] == 1),
                       f"tail tensor (data past 4 GiB): {t['tail']}")
            self.check(rep["totals"]["numel"] == n + 1024 and
                       rep["totals"]["changed"] == want_tail, f"totals: {rep['totals']}")
            self.check_mem(anon, 256, "RssAnon")
        return 0

    def many_tensors(self):
        count = 100_000
        ents = []
        for i in range(count):
            k = i % 7 + 1
            ents.append((f"model.layers.{i // 1000}.t{i}.weight", "F32", [k], 4 * k))
        a, b = os.path.join(self.tmp, "a.safetensors"), os.path.join(self.tmp, "b.safetensors")
        write_st(a, ents)
        offs, off = [], 0
        for _, _, _, nb in ents:
            offs.append(off)
            off += nb
        size = write_st(b, ents, writes=[(offs[i], struct.pack("<f", 0.5))
                                         for i in range(0, count, 10)])
        print(f"{count} tensors, files of {size} bytes")
        rep, rss, _ = self.scan_json(a, b, "scan a b")
        if rep is not None:
            self.check(len(rep["tensors"]) == count, f"{len(rep['tensors'])} tensors reported")
            bad = [e["name"] for e in rep["tensors"]
                   if e["changed"] != (1 if int(e["name"].split(".t")[1].split(".")[0]) % 10 == 0
                                       else 0)]
            self.check(not bad, f"wrong counts in {len(bad)} tensors, e.g. {bad[:3]}")
            self.check(rep["totals"]["changed"] == count // 10 and
                       rep["totals"]["numel"] == sum(i % 7 + 1 for i in range(count)),
                       f"totals: {rep['totals']}")
            self.check_mem(rss, 512, "RSS")
        return 0

    def header_limit(self):
        base = len(json.dumps({"__metadata__": {"k": ""}, "t": {"dtype": "F32", "shape": [2],
                                                                "data_offsets": [0, 8]}},
                              separators=(",", ":")).encode())

        def make(path, header_len):
            meta = "m" * (header_len - base)
            hdr = {"__metadata__": {"k": meta}}
            hdr["t"] = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
            h = json.dumps(hdr, separators=(",", ":")).encode()
            assert len(h) == header_len
            with open(path, "wb") as f:
                f.write(struct.pack("<Q", len(h)) + h + struct.pack("<2f", 1.0, 2.0))

        at = os.path.join(self.tmp, "at_limit.safetensors")
        make(at, HEADER_LIMIT)
        rep, rss, _ = self.scan_json(at, at, f"header of {HEADER_LIMIT} bytes")
        if rep is not None:
            self.check(rep["totals"]["numel"] == 2 and rep["totals"]["changed"] == 0,
                       f"totals: {rep['totals']}")
            self.check_mem(rss, 768, "RSS")
        os.unlink(at)
        over = os.path.join(self.tmp, "over_limit.safetensors")
        make(over, HEADER_LIMIT + 1)
        self.expect_error(over, "exceeds the limit of 100000000 bytes",
                          f"header of {HEADER_LIMIT + 1} bytes")
        os.unlink(over)
        short = os.path.join(self.tmp, "short.safetensors")
        with open(short, "wb") as f:
            f.write(struct.pack("<Q", HEADER_LIMIT) + b"{}")
        self.expect_error(short, "runs past the end", "length field at the limit, file shorter")
        return 0

    def header_dense(self):
        path = os.path.join(self.tmp, "dense.safetensors")
        parts, size, i = [b"{"], 1, 0
        while True:
            e = b'"t%d":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},' % i
            if size + len(e) + 1 > HEADER_LIMIT:
                break
            parts.append(e)
            size += len(e)
            i += 1
        h = b"".join(parts)[:-1] + b"}"
        h += b" " * (HEADER_LIMIT - len(h))
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
        del parts, h
        rc, out, err, secs, rss, _ = run([self.st_check, path], self.tmp)
        print(f"{i} zero-size tensors in a {HEADER_LIMIT}-byte header: exit {rc}, {secs:.1f} s, "
              f"peak RSS {rss:.0f} MiB ({rss * MIB / i:.0f} bytes a tensor)")
        self.check(rc == 0 and out == f"ok {i} tensors\n", f"exit {rc}: {err.strip()[:500]}")
        self.check_mem(rss, 3072, "RSS")
        return 0


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[4:] not in ([], ["sanitized"]):
        print(__doc__, file=sys.stderr)
        return 1
    name, scan, st_check = sys.argv[1:4]
    with tempfile.TemporaryDirectory(prefix="ss-limits-") as tmp:
        case = Case(scan, st_check, tmp, 2 if len(sys.argv) == 5 else 1)
        rc = getattr(case, name)()
    if case.failures:
        print(f"{len(case.failures)} failure(s):", file=sys.stderr)
        for f in case.failures:
            print("  " + f, file=sys.stderr)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
