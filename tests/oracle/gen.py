"""Test-data generators for the oracle tests: special values, tolerance boundaries, random
mutations, SGD-like sparse and AdamW-like dense updates. Everything is returned as bit patterns
({name: (dtype, shape, bits)}) so that every dtype is handled the same way."""

import numpy as np

import sslib as L

# Special bit patterns per float type (the F8 types are covered exhaustively instead).
SPECIALS = {
    'F16': [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7E01, 0xFE00, 0x0001, 0x03FF, 0x0400,
            0x7BFF, 0xFBFF, 0x3C00, 0x3C01, 0x8001],
    'BF16': [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x7FC1, 0xFFC0, 0x0001, 0x007F, 0x0080,
             0x7F7F, 0xFF7F, 0x3F80, 0x3F81, 0x8001],
    'F32': [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FC00001, 0xFFC00000,
            0x00000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0x3F800001,
            0x80000001, 0x7F800001],  # last: a signalling NaN
    # F64: no +-DBL_MAX (their squares overflow the l2 sums); +-1e150 instead
    'F64': [0x0000000000000000, 0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000,
            0x7FF8000000000000, 0x7FF8000000000001, 0xFFF8000000000000, 0x0000000000000001,
            0x000FFFFFFFFFFFFF, 0x0010000000000000,
            int(np.array([1e150]).view(np.uint64)[0]), int(np.array([-1e150]).view(np.uint64)[0]),
            0x3FF0000000000000, 0x3FF0000000000001, 0x8000000000000001, 0x7FF0000000000001],
}


def cross(dt, pats):
    """All ordered pairs of the given patterns."""
    p = np.array(pats, dtype=np.uint64).astype(L.storage(dt))
    a = np.repeat(p, len(p))
    b = np.tile(p, len(p))
    return a, b


def exhaustive8(dt):
    """Every ordered pair of the 256 patterns of an 8-bit type."""
    p = np.arange(256, dtype=np.uint16).astype(np.uint8)
    return np.repeat(p, 256), np.tile(p, 256)


def _nearest_pattern(dt, target):
    """Bit pattern of the dtype value nearest to target (a float64)."""
    if dt == 'F64':
        return np.array([target], dtype=np.float64).view(np.uint64)[0]
    if dt == 'F32':
        return np.array([target], dtype=np.float32).view(np.uint32)[0]
    pats, vals = L.all_values(dt)
    ok = np.isfinite(vals)
    pats, vals = pats[ok], vals[ok]
    i = int(np.argmin(np.abs(vals - target) + (np.signbit(vals) != np.signbit(target)) * 1e-300))
    return pats[i]


def tolerance_boundary(dt, tols, anchors=(0.0, 1.0, 0.25, -2.0, 3e-3)):
    """Pairs (x, y) whose difference lies at and a few ULPs around each tolerance: y runs over the
    five dtype values nearest to x + t; plus the reversed and negated pairs."""
    st = L.storage(dt)
    A = []
    B = []
    for t in tols:
        if t <= 0:
            continue
        for x in anchors:
            px = _nearest_pattern(dt, x)
            py = _nearest_pattern(dt, x + t)
            for k in (-2, -1, 0, 1, 2):
                q = (int(py) + k) % (1 << (8 * np.dtype(st).itemsize))
                A += [px, q]
                B += [q, px]
                sign = 1 << (8 * np.dtype(st).itemsize - 1)
                A += [int(px) ^ sign]
                B += [q ^ sign]
    a = np.array(A, dtype=np.uint64).astype(st)
    b = np.array(B, dtype=np.uint64).astype(st)
    return a, b


def random_float(dt, rng, n):
    """n random A values of a float type and a B that mutates half of them in assorted ways."""
    st = L.storage(dt)
    bitsw = 8 * np.dtype(st).itemsize
    if dt == 'F64':
        a = (rng.standard_normal(n) * 10.0 ** rng.uniform(-30, 30, n)).view(np.uint64)
    elif dt == 'F32':
        # mostly realistic values plus some uniformly random patterns (NaN, Inf, subnormals)
        a = (rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 3, n)).astype(np.float32).view(np.uint32)
        r = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
        a = np.where(rng.random(n) < 0.2, r, a)
    else:  # 16-bit: uniformly random patterns cover every class
        a = rng.integers(0, 1 << 16, n, dtype=np.uint64).astype(np.uint16)
    a = a.astype(st)
    kind = rng.integers(0, 10, n)
    b = a.copy()
    one = st(1)
    b = np.where(kind == 5, a + one, b)                     # +1 ULP (in bits)
    b = np.where(kind == 6, a - one, b)                     # -1 ULP
    b = np.where(kind == 7, a ^ st(1 << (bitsw - 1)), b)    # sign flip (+0 <-> -0 too)
    k = rng.integers(2, 40, n).astype(st)
    b = np.where(kind == 8, a + k, b)                       # a few ULPs
    if dt == 'F64':
        r = (rng.standard_normal(n) * 10.0 ** rng.uniform(-30, 30, n)).view(np.uint64)
    elif dt == 'F32':
        r = (rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 3, n)).astype(np.float32).view(np.uint32)
    else:
        r = rng.integers(0, 1 << 16, n, dtype=np.uint64).astype(np.uint16)
    b = np.where(kind == 9, r.astype(st), b)                # unrelated value
    return a.astype(st), b.astype(st)


def random_int(dt, rng, n):
    st = L.storage(dt)
    kind, nt = L.DTYPES[dt][2]
    if kind == 'bool':
        a = rng.integers(0, 2, n).astype(np.uint8)
        b = np.where(rng.random(n) < 0.3, 1 - a, a).astype(np.uint8)
        return a, b
    info = np.iinfo(nt)
    lo, hi = int(info.min), int(info.max)
    if np.dtype(nt).itemsize == 8:  # stay where doubles hold the integers and their differences
        lo, hi = (max(lo, -(1 << 52)), min(hi, 1 << 52))
    a = rng.integers(lo, hi, n, dtype=np.int64, endpoint=True)
    r = rng.integers(lo, hi, n, dtype=np.int64, endpoint=True)
    kind = rng.integers(0, 10, n)
    b = np.where(kind == 6, a + 1, a)
    b = np.where(kind == 7, a - 1, b)
    b = np.where(kind == 8, a + 2, b)
    b = np.where(kind == 9, r, b)
    b = np.clip(b, lo, hi)
    # extremes and small differences around the tolerances 0.5 and 1
    ex_a = [lo, hi, lo, 0, 0, 1, 0, 5, hi, lo]
    ex_b = [hi, lo, lo, 1, 2, 0, 0, 4, hi - 1, lo + 1]
    if lo == 0:
        ex_a = [x if x >= 0 else 0 for x in ex_a]
        ex_b = [x if x >= 0 else 0 for x in ex_b]
    a = np.concatenate([a, ex_a]).astype(np.int64).astype(nt).view(st)
    b = np.concatenate([b, ex_b]).astype(np.int64).astype(nt).view(st)
    return a, b


def sgd_like_bf16(rng, shape, lr=0.1, gscale=1e-6, base=0.02):
    """BF16 weights updated by plain SGD with a tiny gradient: almost every update is below half
    a BF16 ULP and vanishes when the result is rounded back to BF16 (sparse change)."""
    n = int(np.prod(shape))
    a = L.f32_to_bf16_bits((rng.standard_normal(n) * base).astype(np.float32))
    af = L.decode('BF16', a)
    upd = lr * rng.standard_normal(n) * gscale
    b = L.f32_to_bf16_bits((af - upd).astype(np.float32))
    return a, b


def adamw_like(dt, rng, shape, lr=1e-5, base=0.02, wd=0.01):
    """AdamW-like dense update: every weight moves by about lr (sign-like step) plus decay."""
    n = int(np.prod(shape))
    w = (rng.standard_normal(n) * base).astype(np.float32)
    step = lr * np.sign(rng.standard_normal(n)) * rng.uniform(0.5, 1.5, n) + lr * wd * w
    w2 = (w.astype(np.float64) - step).astype(np.float32)
    if dt == 'BF16':
        return L.f32_to_bf16_bits(w), L.f32_to_bf16_bits(w2)
    if dt == 'F16':
        return w.astype(np.float16).view(np.uint16), w2.astype(np.float16).view(np.uint16)
    if dt == 'F32':
        return w.view(np.uint32), w2.view(np.uint32)
    raise ValueError(dt)
