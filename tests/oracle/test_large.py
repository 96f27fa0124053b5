#!/usr/bin/python3
"""oracle_large: tensors of 3*2^20+17 elements (crossing the 2^20-element chunk size, so the
multi-threaded path splits them) with SGD-like sparse BF16 and AdamW-like dense F32 updates, and
NaN/Inf/-0 placed on chunk boundaries. Compares against the numpy oracle and requires identical
JSON for --threads 1, 2, 3 and 0 (all cores).

usage: test_large.py [path/to/sparsity-scan]"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402
import sslib as L  # noqa: E402

CH = 1 << 20
N = 3 * CH + 17
TOLS = [1e-8, 1e-5, 1e-3]


def main():
    exe = L.find_exe(sys.argv)
    rng = np.random.default_rng(4242)
    A = {}
    B = {}
    a, b = gen.sgd_like_bf16(rng, [N])
    A['big.sgd.bf16'] = ('BF16', [N], a)
    B['big.sgd.bf16'] = ('BF16', [N], b)

    a, b = gen.adamw_like('F32', rng, [N])
    a = a.copy()
    b = b.copy()
    # special values right at and around the chunk boundaries
    edges = [0, CH - 1, CH, CH + 1, 2 * CH - 1, 2 * CH, 3 * CH - 1, 3 * CH, N - 1]
    specials_a = [0x7FC00000, 0x7F800000, 0x00000000, 0x80000000, 0x7FC00000, 0xFF800000,
                  0x00000001, 0x3F800000, 0x7FC00001]
    specials_b = [0x7FC00000, 0x7F800000, 0x80000000, 0x00000000, 0x7FC00001, 0x3F800000,
                  0x00000000, 0x7F800000, 0x7FC00001]
    a[edges] = np.array(specials_a, dtype=np.uint32)
    b[edges] = np.array(specials_b, dtype=np.uint32)
    A['big.adamw.f32'] = ('F32', [N // 17, 17] if N % 17 == 0 else [N], a)
    B['big.adamw.f32'] = A['big.adamw.f32'][:2] + (b,)

    # a dense-ish BF16 AdamW tensor, 2-D, also crossing chunks
    rows = (2 * CH + 5000) // 1024
    a, b = gen.adamw_like('BF16', rng, [rows, 1024])
    A['big.adamw.bf16'] = ('BF16', [rows, 1024], a)
    B['big.adamw.bf16'] = ('BF16', [rows, 1024], b)
    # and some small tensors so that jobs of very different sizes share the threads
    for i in range(5):
        a, b = gen.adamw_like('F32', rng, [33 * (i + 1)])
        A['small.%d' % i] = ('F32', [a.size], a)
        B['small.%d' % i] = ('F32', [b.size], b)

    # tensors whose sizes sit on the chunk size, and many tiny (and empty) ones
    for size in (CH - 1, CH, CH + 1):
        a, b = gen.sgd_like_bf16(rng, [size], gscale=1e-3)
        A['edge.%d' % size] = ('BF16', [size], a)
        B['edge.%d' % size] = ('BF16', [size], b)
    for i in range(300):
        size = int(rng.integers(0, 40))
        a, b = gen.adamw_like('F32', rng, [size])
        A['tiny.%03d' % i] = ('F32', [size], a)
        B['tiny.%03d' % i] = ('F32', [size], b)

    fails = []
    with L.tempdir() as td:
        pa = os.path.join(td, 'a.safetensors')
        pb = os.path.join(td, 'b.safetensors')
        L.write_st(pa, A)
        L.write_st(pb, B)
        ca = L.read_checkpoint(pa)
        cb = L.read_checkpoint(pb)
        exp = L.expected_report(ca, cb, TOLS, rtol=1e-3)
        sgd = [t for t in exp['tensors'] if t['name'] == 'big.sgd.bf16'][0]
        notes = ['big.sgd.bf16: changed %d of %d (sparsity %.4f); big.adamw.f32 sparsity %.4f' % (
            sgd['changed'], sgd['numel'], sgd['sparsity'],
            [t for t in exp['tensors'] if t['name'] == 'big.adamw.f32'][0]['sparsity'])]
        runs = {}
        for th in (1, 2, 3, 0):
            got = L.run_json(exe, [pa, pb, '--tol', L.tol_arg(TOLS), '--rtol', '1e-3',
                                   '--threads', th], fails, 'threads %d' % th)
            if got is None:
                continue
            runs[th] = got
            if th in (1, 2):
                fails += ['--threads %d: %s' % (th, d)
                          for d in L.compare_report(exp, got, rtol=1e-3, paths=(pa, pb))]
        for isa in L.ISAS:
            got = L.run_json(exe, [pa, pb, '--tol', L.tol_arg(TOLS), '--rtol', '1e-3', '--threads', 2],
                             fails, 'SS_SCAN_ISA=' + isa, env=L.isa_env(isa))
            if got is not None:
                fails += ['SS_SCAN_ISA=%s: %s' % (isa, d)
                          for d in L.compare_report(exp, got, rtol=1e-3, paths=(pa, pb))]
        base = runs.get(1)
        for th, got in runs.items():
            if base is not None and got != base:
                diff = [t['name'] for t, u in zip(base.get('tensors', []), got.get('tensors', []))
                        if t != u]
                fails.append('JSON for --threads %d differs from --threads 1 (tensors %r; totals %s)'
                             % (th, diff, 'differ' if base.get('totals') != got.get('totals') else 'equal'))
    L.finish('oracle_large', fails, notes)


if __name__ == '__main__':
    main()
