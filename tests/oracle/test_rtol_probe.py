#!/usr/bin/python3
"""oracle_rtol_probe: the published probe ("The Path Not Taken"): for BF16, the relative test
with eta = 1e-3 equals bitwise equality on finite, nonzero-magnitude pairs. On BF16 pairs without
special values, sparsity-scan's changed_rtol at --rtol 1e-3 must equal its changed count (and the
oracle's), tensor by tensor and in total. A contrasting F16 pair shows the probe is not vacuous
(F16's ULP can be below 1e-3 of the value, so there changed_rtol < changed).

usage: test_rtol_probe.py [path/to/sparsity-scan]"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402
import sslib as L  # noqa: E402


def finite_nonzero_bf16(rng, n):
    """Finite nonzero BF16 patterns over the whole exponent range (subnormals included)."""
    p = rng.integers(0, 1 << 16, 4 * n, dtype=np.uint64).astype(np.uint16)
    v = L.decode('BF16', p)
    p = p[np.isfinite(v) & (v != 0)][:n]
    assert p.size == n
    return p


def main():
    exe = L.find_exe(sys.argv)
    rng = np.random.default_rng(99)
    A = {}
    B = {}
    n = 20000
    # weight-like values, mutated by +-1 ULP, +-2 ULPs, sign flips, or unrelated values
    a = L.f32_to_bf16_bits((rng.standard_normal(n) * 0.02).astype(np.float32))
    kind = rng.integers(0, 6, n)
    b = a.copy()
    b = np.where(kind == 1, a + np.uint16(1), b)
    b = np.where(kind == 2, a - np.uint16(1), b)
    b = np.where(kind == 3, a + np.uint16(2), b)
    b = np.where(kind == 4, a ^ np.uint16(0x8000), b)
    b = np.where(kind == 5, finite_nonzero_bf16(rng, n), b)
    b = b.astype(np.uint16)
    ok = np.isfinite(L.decode('BF16', b)) & (L.decode('BF16', b) != 0)
    b = np.where(ok, b, a).astype(np.uint16)
    A['probe.mutated'] = ('BF16', [100, 200], a)
    B['probe.mutated'] = ('BF16', [100, 200], b)
    # whole exponent range, including subnormals, one ULP apart
    a = finite_nonzero_bf16(rng, n)
    b = np.where(rng.random(n) < 0.5, a, a + np.uint16(1)).astype(np.uint16)
    ok = np.isfinite(L.decode('BF16', b)) & (L.decode('BF16', b) != 0)
    b = np.where(ok, b, a).astype(np.uint16)
    A['probe.range'] = ('BF16', [n], a)
    B['probe.range'] = ('BF16', [n], b)
    # optimizer-like updates
    a, b = gen.sgd_like_bf16(rng, [128, 128], gscale=1e-4)
    A['probe.sgd'] = ('BF16', [128, 128], a)
    B['probe.sgd'] = ('BF16', [128, 128], b)
    a, b = gen.adamw_like('BF16', rng, [128, 128])
    A['probe.adamw'] = ('BF16', [128, 128], a)
    B['probe.adamw'] = ('BF16', [128, 128], b)
    # contrast: F16 one-ULP changes of values with a large mantissa (relative ULP < 1e-3)
    f = np.array([1.9, 1.95, 1.99, 3.9, -1.97], np.float16).view(np.uint16)
    A['contrast.f16'] = ('F16', [5], f)
    B['contrast.f16'] = ('F16', [5], (f + np.uint16(1)).astype(np.uint16))

    fails = []
    with L.tempdir() as td:
        pa = os.path.join(td, 'a.safetensors')
        pb = os.path.join(td, 'b.safetensors')
        L.write_st(pa, A)
        L.write_st(pb, B)
        ca = L.read_checkpoint(pa)
        cb = L.read_checkpoint(pb)
        exp = L.expected_report(ca, cb, [1e-5], rtol=1e-3)
        for t in exp['tensors']:
            if t['name'].startswith('probe.') and t['changed_rtol'] != t['changed']:
                fails.append('oracle: probe does not hold on %s (test bug)' % t['name'])
        got = L.run_json(exe, [pa, pb, '--rtol', '1e-3'], fails, 'rtol 1e-3')
        if got is not None:
            fails += L.compare_report(exp, got, rtol=1e-3, paths=(pa, pb))
            tot_c = tot_r = 0
            for t in got.get('tensors', []):
                if not t.get('name', '').startswith('probe.'):
                    if t.get('name') == 'contrast.f16' and not t.get('changed_rtol', 0) < t.get('changed', 0):
                        fails.append('contrast.f16: expected changed_rtol < changed, got %r vs %r'
                                     % (t.get('changed_rtol'), t.get('changed')))
                    continue
                tot_c += t.get('changed', 0)
                tot_r += t.get('changed_rtol', -1)
                if t.get('changed_rtol') != t.get('changed'):
                    fails.append('%s: BF16 probe: changed_rtol %r != changed %r'
                                 % (t['name'], t.get('changed_rtol'), t.get('changed')))
            if tot_c == 0 or tot_c != tot_r:
                fails.append('BF16 probe totals: changed %d, changed_rtol %d' % (tot_c, tot_r))
    L.finish('oracle_rtol_probe', fails)


if __name__ == '__main__':
    main()
