#!/usr/bin/python3
"""oracle_selftest: checks the oracle itself (decoders, reader/writer round trip, definitions on
hand-worked pairs) so that a failure elsewhere points at sparsity-scan, not at the oracle.
Needs no sparsity-scan binary."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sslib as L  # noqa: E402

fail = []


def check(cond, msg):
    if not cond:
        fail.append(msg)


def same_values(x, y):
    """Equal as float64 including the sign of zero and NaN-ness."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    nan = np.isnan(x) & np.isnan(y)
    eq = (x == y) & (np.signbit(x) == np.signbit(y))
    return bool(np.all(nan | eq))


# BF16: every pattern against float32 with the low 16 bits zero
pats = np.arange(1 << 16, dtype=np.uint32)
with np.errstate(all='ignore'):
    ref = (pats << 16).astype(np.uint32).view(np.float32).astype(np.float64)
check(same_values(L.decode('BF16', pats.astype(np.uint16)), ref), 'BF16 decoder disagrees with f32<<16')
# F16: every pattern against numpy's float16
ref = pats.astype(np.uint16).view(np.float16).astype(np.float64)
check(same_values(L.decode('F16', pats.astype(np.uint16)), ref), 'F16 decoder disagrees with numpy float16')
# F8_E5M2 is the top byte of an F16
p8 = np.arange(256, dtype=np.uint16)
ref = (p8 << 8).astype(np.uint16).view(np.float16).astype(np.float64)
check(same_values(L.decode('F8_E5M2', p8.astype(np.uint8)), ref), 'F8_E5M2 decoder disagrees with f16<<8')
# F8_E4M3 (OCP E4M3FN), pattern by pattern from the format's definition with exact fractions
from fractions import Fraction  # noqa: E402
e4 = L.decode('F8_E4M3', p8.astype(np.uint8))
for p in range(256):
    s, e, m = p >> 7, (p >> 3) & 15, p & 7
    if e == 15 and m == 7:
        check(np.isnan(e4[p]), 'E4M3 0x%02x should be NaN' % p)
        continue
    v = Fraction(m, 8) * Fraction(2) ** (1 - 7) if e == 0 else (1 + Fraction(m, 8)) * Fraction(2) ** (e - 7)
    v = -v if s else v
    check(e4[p] == float(v) and bool(np.signbit(e4[p])) == bool(s), 'E4M3 0x%02x: %r vs %r' % (p, e4[p], float(v)))
check(e4[0x7E] == 448.0 and e4[0x01] == 2.0 ** -9 and e4[0x38] == 1.0 and e4[0x08] == 2.0 ** -6,
      'E4M3 landmarks')
check(not np.any(np.isinf(e4)), 'E4M3 has no Inf')
# integers by value
check(list(L.decode('I8', np.array([0x80, 0x7F, 0xFF], np.uint8))) == [-128, 127, -1], 'I8 decode')
check(list(L.decode('U64', np.array([2 ** 53], np.uint64))) == [2.0 ** 53], 'U64 decode')
check(list(L.decode('I64', np.array([2 ** 64 - 5], np.uint64))) == [-5.0], 'I64 decode')

# BF16 rounding helper (used for data generation only)
x = np.array([1.0, 1.00390625, 1.005859375, 1.0 + 2 ** -7, -3.0e-3], dtype=np.float32)
r = L.decode('BF16', L.f32_to_bf16_bits(x))
check(list(r[:4]) == [1.0, 1.0, 1.0078125, 1.0078125], 'f32_to_bf16 rounding: %r' % list(r))

# Definitions on hand-worked BF16 pairs
A = np.array([0x0000, 0x8000, 0x7FC0, 0x7FC0, 0x7F80, 0x3F80, 0x3F80, 0x0001, 0xFF80, 0x3F80], np.uint16)
B = np.array([0x8000, 0x0000, 0x7FC0, 0x7FC1, 0x7F80, 0x3F81, 0x3F82, 0x0000, 0x7F80, 0x7FC0], np.uint16)
r = L.expected_pair('BF16', A, B, [0.0078125, 0.0], rtol=1e-3)
# changed: +0/-0 no, -0/+0 no, same NaN no, NaN payloads yes, inf same no, 1ulp yes, 2ulp yes,
#          subnormal->0 yes, -inf->inf yes, 1->NaN yes
check(r['changed'] == 6, 'hand pairs changed %r' % r['changed'])
check(r['nonfinite'] == 5, 'hand pairs nonfinite %r' % r['nonfinite'])
# tol 2^-7: 1ulp at 1.0 (=2^-7) is not > tol; 2ulp is; subnormal 2^-133 not; + 3 nonfinite w/ bits diff
check(r['changed_tol']['0.0078125'] == 4, 'hand pairs tol %r' % r['changed_tol'])
check(r['changed_tol']['0'] == 6, 'hand pairs tol 0 %r' % r['changed_tol'])
check(r['changed_rtol'] == 6, 'hand pairs rtol %r' % r['changed_rtol'])
check(r['max_abs_delta'] == 2 ** -6, 'hand pairs max %r' % r['max_abs_delta'])
check(r['sparsity'] == 1 - 6 / 10, 'sparsity')
# empty and all-zero A
r = L.expected_pair('F32', np.zeros(0, np.uint32), np.zeros(0, np.uint32), [1e-5])
check(r['numel'] == 0 and r['sparsity'] == 1.0 and r['rel_l2_delta'] is None and r['max_abs_delta'] == 0.0,
      'empty %r' % r)

# writer (safetensors package) -> our reader round trip, every dtype, incl. 0-d and empty
try:
    import safetensors  # noqa: F401
except ImportError:
    print('note: safetensors package not importable; the round trip uses the own writer')
rng = np.random.default_rng(1)
with L.tempdir() as td:
    ts = {}
    for dt in L.ALL_DTYPES:
        st = L.storage(dt)
        bits = rng.integers(0, np.iinfo(st).max, size=12, dtype=st, endpoint=True)
        if dt == 'BOOL':
            bits = bits & 1
        ts['t.' + dt] = (dt, [3, 4], bits)
        ts['s.' + dt] = (dt, [], bits[:1])
        ts['e.' + dt] = (dt, [2, 0], bits[:0])
    p = os.path.join(td, 'x.safetensors')
    L.write_st(p, ts)
    back = L.read_st(p)
    check(set(back) == set(ts), 'round trip names')
    for k, (dt, sh, bits) in ts.items():
        if k in back:
            d2, s2, b2 = back[k]
            check(d2 == dt and list(s2) == list(sh) and np.array_equal(b2, bits), 'round trip %s' % k)
    rngs = np.random.default_rng(2)
    L.write_sharded(os.path.join(td, 'sh'), ts, 3, rngs)
    back = L.read_checkpoint(os.path.join(td, 'sh'))
    check(set(back) == set(ts) and all(np.array_equal(back[k][2], ts[k][2]) for k in ts), 'sharded round trip')

L.finish('oracle_selftest', fail)
