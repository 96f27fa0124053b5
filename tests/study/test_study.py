#!/usr/bin/python3
"""The one-command study, --quick: scripts/study.sh runs end to end on the built programs, and
REPORT.md's numbers are checked against independent computations: each run's exact sparsity from
the base and the materialized latest snapshot compared bit by bit in numpy, the eval accuracies and
optimizer state from metrics.jsonl; every figure the report lists exists. Also sparsity-report's
exit codes.

Usage: test_study.py SOURCE_DIR BUILD_DIR CKPT_DELTA SPARSITY_REPORT
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

SRC, BUILD, DELTA, REPORT = sys.argv[1:5]


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    return {k: data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
            for k, v in header.items() if k != "__metadata__"}


def exact_sparsity(a_path, b_path):
    a, b = read_safetensors(a_path), read_safetensors(b_path)
    assert set(a) == set(b)
    changed = numel = 0
    for k in a:
        x = np.frombuffer(a[k], dtype=np.uint16)
        y = np.frombuffer(b[k], dtype=np.uint16)
        # bits differ, except +0 and -0
        diff = (x != y) & ~(((x & 0x7FFF) == 0) & ((y & 0x7FFF) == 0))
        changed += int(diff.sum())
        numel += x.size
    return 1.0 - changed / numel


def main():
    tmp = tempfile.mkdtemp(prefix="study-test-")
    try:
        out = os.path.join(tmp, "study")
        env = dict(os.environ, BUILD_DIR=BUILD, THREADS="2")
        p = subprocess.run(["bash", os.path.join(SRC, "scripts/study.sh"), "--quick",
                            "--no-build", "-o", out], env=env, capture_output=True, text=True,
                           timeout=900)
        if p.returncode != 0:
            sys.exit(f"FAIL: study.sh exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        report = open(os.path.join(out, "REPORT.md")).read()
        rows = {}
        for line in report.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 12 and cells[0] in ("sgd", "adamw", "lora-r1"):
                rows[cells[0]] = cells
        assert set(rows) == {"sgd", "adamw", "lora-r1"}, report[:2000]
        for run, cells in rows.items():
            rd = os.path.join(out, run)
            latest = os.path.join(tmp, run + "-latest.safetensors")
            subprocess.run([DELTA, "materialize", rd + "@latest", "-o", latest], check=True)
            want = exact_sparsity(os.path.join(rd, "base.safetensors"), latest)
            got = float(cells[6].rstrip("%")) / 100
            assert abs(got - want) < 5e-7, (run, got, want)
            m = [json.loads(l) for l in open(os.path.join(rd, "metrics.jsonl"))]
            evals = [x["eval_acc"] for x in m if "eval_acc" in x]
            assert cells[4] == f"{evals[0]:.3f} → {evals[-1]:.3f}", (cells[4], evals)
            steps = [x for x in m if "reward_mean" in x]
            assert len(steps) == 20
            state = steps[-1]["opt_state_bytes"]
            if run == "sgd":
                assert state == 0 and cells[3] == "0", cells
            else:
                assert state > 0 and cells[3] != "0", cells
        # Every figure the report links exists and is a PNG.
        figs = re.findall(r"\]\((figures/[^)]+)\)", report)
        assert len(figs) >= 15, figs
        for f in figs:
            with open(os.path.join(out, f), "rb") as fh:
                assert fh.read(8) == b"\x89PNG\r\n\x1a\n", f
        assert "## Overlap of the changed sets" in report
        assert "| SGD vs AdamW |" in report and "| SGD vs rank-1 LoRA (merged) |" in report
        # LoRA: rank-1 factors of every projection are the trainable parameters.
        assert int(rows["lora-r1"][2]) < int(rows["sgd"][2]) // 10, rows

        # sparsity-report's own errors: usage 1, bad input 2, no partial report.
        a = os.path.join(out, "analysis")
        bad = os.path.join(tmp, "bad.md")
        for args, code in [([], 1), (["-o", bad], 1), (["-o", bad, "--run", "x"], 1),
                           (["-o", bad, "--run", f"x={out}/sgd,/nonexistent.json"], 2),
                           (["-o", bad, "--run", f"x=/nonexistent,{a}/scan-sgd.json"], 2),
                           (["-o", bad, "--run", f"x={out}/sgd,{a}/scan-sgd.json",
                             "--figures", "/nonexistent"], 2)]:
            r = subprocess.run([REPORT, *args], capture_output=True, text=True)
            assert r.returncode == code, (args, r.returncode, r.stderr)
            assert not os.path.exists(bad), args
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
