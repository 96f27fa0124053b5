#!/usr/bin/python3
"""oracle_dtypes: every dtype, special values (+0/-0, NaN with equal and different bits, +-Inf,
subnormals), 0-d and empty tensors, differences at and one ULP around each tolerance, random
mutations, SGD-like sparse and AdamW-like dense updates. Compares sparsity-scan --json against
the numpy oracle for several tolerances and --rtol, on 1, 2 and 3 threads, and with A and B
swapped.

usage: test_dtypes.py [path/to/sparsity-scan]"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402
import sslib as L  # noqa: E402

TOLS = [0.0, 1e-8, 1e-5, 0.0009765625, 0.0078125, 0.5, 1.0]


def build(rng):
    A = {}
    B = {}

    def put(name, dt, a, b, shape=None):
        a = np.asarray(a, dtype=L.storage(dt)).reshape(-1)
        b = np.asarray(b, dtype=L.storage(dt)).reshape(-1)
        shape = [a.size] if shape is None else shape
        A[name] = (dt, shape, a)
        B[name] = (dt, shape, b)

    for dt in L.FLOAT_DTYPES:
        if dt.startswith('F8'):
            a, b = gen.exhaustive8(dt)
            put('dt.%s.allpairs' % dt, dt, a, b, [256, 256])
            # and a random mutation set on realistic values, one 2-D tensor
            a = rng.integers(0, 256, 3000, dtype=np.uint16).astype(np.uint8)
            b = np.where(rng.random(3000) < 0.5, a, (a.astype(np.int16) + rng.integers(-2, 3, 3000)) & 0xFF)
            put('dt.%s.random' % dt, dt, a, b.astype(np.uint8), [30, 100])
            continue
        a, b = gen.cross(dt, gen.SPECIALS[dt])
        put('dt.%s.special' % dt, dt, a, b)
        a, b = gen.random_float(dt, rng, 4000)
        put('dt.%s.random' % dt, dt, a, b, [40, 100])
        a, b = gen.tolerance_boundary(dt, TOLS)
        put('dt.%s.tolbound' % dt, dt, a, b)
    for dt in L.INT_DTYPES:
        a, b = gen.random_int(dt, rng, 3000)
        put('dt.%s.random' % dt, dt, a, b)

    # 64-bit integers beyond 2^53 decode to the nearest double (metrics.md): bits differ, yet
    # the decoded difference can be 0 (or rounded)
    big = [2 ** 60, 2 ** 60, -2 ** 62, 2 ** 63 - 1, -2 ** 63, 2 ** 53 + 1, 12345]
    big_b = [2 ** 60 + 1, 2 ** 60 + 1000, -2 ** 62 - 3, -2 ** 63, 2 ** 63 - 1, 2 ** 53, 12345]
    put('dt.I64.huge', 'I64', np.array(big, np.int64).view(np.uint64), np.array(big_b, np.int64).view(np.uint64))
    ubig = [2 ** 64 - 1, 2 ** 64 - 1, 0, 2 ** 63, 2 ** 53 + 1, 7]
    ubig_b = [2 ** 64 - 2, 0, 2 ** 64 - 1, 2 ** 63 + 4096, 2 ** 53 + 2, 7]
    put('dt.U64.huge', 'U64', np.array(ubig, np.uint64), np.array(ubig_b, np.uint64))

    # 0-d tensors (changed and unchanged) and empty tensors
    one32 = np.array([1.0], np.float32).view(np.uint32)
    two32 = np.array([2.5], np.float32).view(np.uint32)
    put('scalar.F32.changed', 'F32', one32, two32, [])
    put('scalar.BF16.same', 'BF16', [0x3F80], [0x3F80], [])
    put('scalar.BF16.negzero', 'BF16', [0x0000], [0x8000], [])
    put('scalar.F16.nan', 'F16', [0x7E00], [0x7E00], [])
    put('scalar.I64.changed', 'I64', np.array([-7], np.int64).view(np.uint64),
        np.array([9], np.int64).view(np.uint64), [])
    put('scalar.BOOL.flip', 'BOOL', [1], [0], [])
    put('scalar.F8_E4M3.nan', 'F8_E4M3', [0x7F], [0xFF], [])
    put('empty.F32', 'F32', [], [], [0])
    put('empty.BF16', 'BF16', [], [], [3, 0, 2])
    put('empty.I8', 'I8', [], [], [0, 5])
    put('empty.F8_E5M2', 'F8_E5M2', [], [], [0])
    # an all-zero A (rel_l2_delta is null) and an all-NaN pair (no finite pairs)
    put('zeroA.F32', 'F32', np.zeros(50, np.uint32),
        np.where(np.arange(50) % 3 == 0, one32[0], 0).astype(np.uint32))
    put('allnan.BF16', 'BF16', np.full(20, 0x7FC0), np.where(np.arange(20) % 2 == 0, 0x7FC0, 0xFFC1))

    # optimizer-like updates (small versions; big ones are in oracle_large)
    a, b = gen.sgd_like_bf16(rng, [256, 96])
    put('opt.sgd.BF16', 'BF16', a, b, [256, 96])
    a, b = gen.adamw_like('BF16', rng, [256, 96])
    put('opt.adamw.BF16', 'BF16', a, b, [256, 96])
    a, b = gen.adamw_like('F16', rng, [64, 48])
    put('opt.adamw.F16', 'F16', a, b, [64, 48])
    a, b = gen.adamw_like('F32', rng, [128, 64])
    put('opt.adamw.F32', 'F32', a, b, [128, 64])
    return A, B


def main():
    exe = L.find_exe(sys.argv)
    rng = np.random.default_rng(20260501)
    A, B = build(rng)
    fails = []
    with L.tempdir() as td:
        pa = os.path.join(td, 'a.safetensors')
        pb = os.path.join(td, 'b.safetensors')
        L.write_st(pa, A)
        L.write_st(pb, B)
        ca = L.read_checkpoint(pa)
        cb = L.read_checkpoint(pb)

        exp = L.expected_report(ca, cb, TOLS, rtol=1e-3)
        runs = {}
        for th in (1, 2, 3):
            got = L.run_json(exe, [pa, pb, '--tol', L.tol_arg(TOLS), '--rtol', '1e-3',
                                   '--threads', th], fails, 'threads %d' % th)
            if got is not None:
                runs[th] = got
                fails += ['--threads %d: %s' % (th, d)
                          for d in L.compare_report(exp, got, rtol=1e-3, paths=(pa, pb))]
        if 1 in runs:
            for th in (2, 3):
                if th in runs and runs[th] != runs[1]:
                    fails.append('JSON differs between --threads 1 and --threads %d' % th)

        # every SIMD path (SS_SCAN_ISA; a level this CPU lacks is ignored): exact counts on all
        for isa in L.ISAS:
            got = L.run_json(exe, [pa, pb, '--tol', L.tol_arg(TOLS), '--rtol', '1e-3', '--threads', 2],
                             fails, 'SS_SCAN_ISA=' + isa, env=L.isa_env(isa))
            if got is not None:
                fails += ['SS_SCAN_ISA=%s: %s' % (isa, d)
                          for d in L.compare_report(exp, got, rtol=1e-3, paths=(pa, pb))]

        # default tolerance (1e-5) and another relative probe, all cores
        exp = L.expected_report(ca, cb, [1e-5], rtol=0.01)
        got = L.run_json(exe, [pa, pb, '--rtol', '0.01', '--threads', 0], fails, 'default tol')
        if got is not None:
            fails += ['default --tol, --rtol 0.01: ' + d
                      for d in L.compare_report(exp, got, rtol=0.01, paths=(pa, pb))]

        # swapped: ||A|| now comes from the other file
        exp = L.expected_report(cb, ca, TOLS)
        got = L.run_json(exe, [pb, pa, '--tol', L.tol_arg(TOLS), '--threads', 2], fails, 'swapped')
        if got is not None:
            fails += ['B vs A: ' + d for d in L.compare_report(exp, got, paths=(pb, pa))]
            for t in got.get('tensors', []):
                if 'changed_rtol' in t:
                    fails.append('changed_rtol present without --rtol (tensor %r)' % t.get('name'))
                    break
    L.finish('oracle_dtypes', fails)


if __name__ == '__main__':
    main()
