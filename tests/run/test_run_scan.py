#!/usr/bin/env python3
"""Scanning RUN@STEP equals scanning the materialized checkpoint.

Builds a run folder (base.safetensors + snapshots/step-*.sdelta, one snapshot against the base
and one chained to the previous snapshot) with ckpt-synth and ckpt-delta, then requires that
`sparsity-scan RUN@X RUN@Y --json` reports exactly what `sparsity-scan X.safetensors
Y.safetensors --json` reports (paths aside), for @base, @STEP, @latest, mixed with plain files,
on 1 and 2 threads; and that a damaged snapshot is exit 2 naming the file.
usage: test_run_scan.py SPARSITY_SCAN CKPT_SYNTH CKPT_DELTA
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

SCAN, SYNTH, DELTA = sys.argv[1:4]


def run(*args, expect=0):
    p = subprocess.run(list(args), capture_output=True, text=True)
    if p.returncode != expect:
        sys.exit(f"FAIL: {' '.join(args)} exited {p.returncode} (expected {expect})\n{p.stderr}")
    return p


def scan_json(a, b, threads=1):
    out = run(SCAN, a, b, "--json", "--quiet", "--tol", "1e-8,1e-5", "--rtol", "1e-3",
              "--threads", str(threads)).stdout
    doc = json.loads(out)
    doc.pop("a")
    doc.pop("b")
    return doc


def main():
    tmp = tempfile.mkdtemp(prefix="ss-run-")
    try:
        rundir = os.path.join(tmp, "run")
        os.makedirs(os.path.join(rundir, "snapshots"))
        base = os.path.join(rundir, "base.safetensors")
        s10 = os.path.join(tmp, "s10.safetensors")
        s20 = os.path.join(tmp, "s20.safetensors")
        run(SYNTH, "init", "--preset", "tiny", "--layers", "3", "--seed", "5", "-o", base)
        run(SYNTH, "update", base, "--optimizer", "adamw", "--seed", "6", "-o", s10)
        run(SYNTH, "update", s10, "--optimizer", "sgd", "--seed", "7", "-o", s20)
        run(DELTA, "snapshot", rundir, s10, "--step", "10")
        run(DELTA, "snapshot", rundir, s20, "--step", "20", "--chain")

        cases = [
            (f"{rundir}@base", f"{rundir}@10", base, s10),
            (f"{rundir}@10", f"{rundir}@20", s10, s20),
            (f"{rundir}@base", f"{rundir}@latest", base, s20),
            (base, f"{rundir}@20", base, s20),
            (f"{rundir}@20", s10, s20, s10),
        ]
        for ra, rb, fa, fb in cases:
            want = scan_json(fa, fb)
            for threads in (1, 2):
                got = scan_json(ra, rb, threads)
                if got != want:
                    sys.exit(f"FAIL: scan {ra} {rb} (threads {threads}) differs from {fa} {fb}")
            if want["totals"]["changed"] == 0 and fa != fb:
                sys.exit(f"FAIL: {fa} vs {fb}: no change at all; the test data is too weak")

        # A missing step and a damaged snapshot are input errors (exit 2) naming the run.
        p = run(SCAN, f"{rundir}@30", base, expect=2)
        if "run" not in p.stderr or len(p.stderr.strip().splitlines()) != 1:
            sys.exit(f"FAIL: missing step message: {p.stderr!r}")
        snap = os.path.join(rundir, "snapshots", "step-000010.sdelta")
        data = bytearray(open(snap, "rb").read())
        data[len(data) // 2] ^= 0x40
        open(snap, "wb").write(bytes(data))
        p = run(SCAN, f"{rundir}@base", f"{rundir}@10", "--quiet", expect=2)
        if "step-000010.sdelta" not in p.stderr:
            sys.exit(f"FAIL: damaged snapshot message does not name the file: {p.stderr!r}")
        print("ok: RUN@STEP scans equal materialized scans")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
