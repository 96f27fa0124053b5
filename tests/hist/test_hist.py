#!/usr/bin/python3
"""The tolerance curves of `sparsity-scan --hist` (suite 'hist'), against separate `--tol 2^k`
runs and a numpy oracle.

usage: test_hist.py CASE [path/to/sparsity-scan]
  curve  generated pairs (BF16 over 3 chunks of 2^20 elements, F16, F32, F64) with powers of two
         exactly, subnormal differences, +0/-0, NaN and Inf: for every tensor and the totals,
         changed_at_pow2[k] == the changed_tol count of `--tol 2^k` for every k in the used range
         (exactness), the JSON bins == numpy (np.frexp), HDF5 /hist == JSON, and --threads 1 and 2
         give identical curves
  usage  without --hist no tolerance_curve and no /hist; --series with --hist exits 1
Exits 0 (pass), 1 (fail, printing what differed) or 77 (skip)."""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'oracle'))
import sslib as L  # noqa: E402

CHUNK = 1 << 20
MAG = {'F16': 0x7FFF, 'BF16': 0x7FFF, 'F32': 0x7FFFFFFF, 'F64': 0x7FFFFFFFFFFFFFFF}


# ---- data ----

def encode(dt, x):
    x = np.asarray(x)
    if dt == 'BF16':
        return L.f32_to_bf16_bits(x.astype(np.float32))
    if dt == 'F16':
        return x.astype(np.float16).view(np.uint16)
    if dt == 'F32':
        return x.astype(np.float32).view(np.uint32)
    return x.astype(np.float64).view(np.uint64)


def make_pair(dt, n, rng):
    """(bits_a, bits_b): a fraction changed by updates of many magnitudes, plus special pairs."""
    a = rng.standard_normal(n) * 0.02
    b = a.copy()
    sel = rng.random(n) < 0.3
    scale = 10.0 ** rng.uniform(-6, 0, sel.sum())
    b[sel] += rng.standard_normal(sel.sum()) * scale * 0.01
    ba, bb = encode(dt, a), encode(dt, b)
    st = L.storage(dt)
    tiny = {'BF16': 1, 'F16': 1, 'F32': 1, 'F64': 1}[dt]  # the smallest subnormal's bits
    one = encode(dt, [1.0])[0]
    half = encode(dt, [0.5])[0]
    quarter = encode(dt, [0.25])[0]
    sign = st(MAG[dt] + 1)
    nan = encode(dt, [np.nan])[0]
    inf = encode(dt, [np.inf])[0]
    specials = [
        (half, one), (one, half), (quarter, st(0)), (one, one | sign),   # powers of two exactly
        (st(0), sign), (sign, st(0)),                                    # +0 / -0: unchanged
        (st(tiny), st(0)), (st(tiny), st(3 * tiny)), (st(2 * tiny), sign | st(tiny)),  # subnormal
        (nan, nan), (nan, nan | st(1)), (one, nan), (inf, one), (inf, inf), (inf, inf | sign),
        (one, st(one + 1)), (half, st(tiny)),                            # ulp; a huge exponent gap
    ]
    for i, (x, y) in enumerate(specials):
        j = 7 + 5 * i
        ba[j], bb[j] = x, y
    return ba, bb


# ---- oracle ----

def oracle(dt, ba, bb):
    """changed-at-2^k function, abs and rel bins {e: (count, pow2)}, nonfinite_changed."""
    da, db = L.decode(dt, ba).astype(np.float64), L.decode(dt, bb).astype(np.float64)
    changed = ba != bb
    changed &= ~((da == 0) & (db == 0))
    fin = np.isfinite(da) & np.isfinite(db)
    nonfinite_changed = int((changed & ~fin).sum())
    with np.errstate(invalid='ignore', over='ignore'):
        d = np.abs(db - da)
    c = changed & fin & (d > 0)
    d = d[c]
    m = np.maximum(np.abs(da[c]), np.abs(db[c]))
    md, ed = np.frexp(d)
    mm, em = np.frexp(m)
    e_abs = ed.astype(np.int64) - 1
    k_rel = ed.astype(np.int64) - em.astype(np.int64) - (md < mm)
    absb, relb = {}, {}
    for e in np.unique(e_abs):
        s = e_abs == e
        absb[int(e)] = (int(s.sum()), int((md[s] == 0.5).sum()))
    for k in np.unique(k_rel):
        s = k_rel == k
        relb[int(k)] = (int(s.sum()), int((md[s] == mm[s]).sum()))

    def at(k):
        return int((d > np.ldexp(1.0, k)).sum()) + nonfinite_changed
    return at, absb, relb, nonfinite_changed


def curve_bins(side):
    return {int(e): (c, p) for e, c, p in zip(side['exponent'], side['count'], side['pow2'])}


# ---- cases ----

def case_curve(exe, fails):
    import h5py
    rng = np.random.default_rng(7)
    sizes = {'BF16': 3 * CHUNK + 13, 'F16': 70001, 'F32': 50000, 'F64': 30011}
    ck_a, ck_b, pairs = {}, {}, {}
    for dt, n in sizes.items():
        ba, bb = make_pair(dt, n, rng)
        name = 'model.layers.0.%s.weight' % dt.lower()
        ck_a[name] = (dt, [n], ba)
        ck_b[name] = (dt, [n], bb)
        pairs[name] = (dt, ba, bb)
    with L.tempdir() as tmp:
        pa, pb, h5 = (os.path.join(tmp, x) for x in ('a.safetensors', 'b.safetensors', 'o.h5'))
        L.write_st(pa, ck_a)
        L.write_st(pb, ck_b)
        reps = {}
        for th in (1, 2):
            reps[th] = L.run_json(exe, [pa, pb, '--hist', '--threads', th]
                                  + (['--h5', h5] if th == 2 else []), fails, 'threads %d' % th)
        if not reps[1] or not reps[2]:
            return
        rep = reps[2]
        curves1 = [t.get('tolerance_curve') for t in reps[1]['tensors']]
        curves2 = [t.get('tolerance_curve') for t in rep['tensors']]
        if curves1 != curves2 or reps[1]['totals'].get('tolerance_curve') != \
                rep['totals'].get('tolerance_curve'):
            fails.append('--threads 1 and 2 give different tolerance curves')

        # exactness: separate --tol 2^k runs over the union of the used ranges
        ks = sorted({int(k) for t in rep['tensors'] for k in t['tolerance_curve']['changed_at_pow2']})
        ks = list(range(ks[0] - 1, ks[-1] + 2))
        tol_counts = {}  # (tensor name or None for totals, k) -> count
        for i in range(0, len(ks), 16):
            batch = ks[i:i + 16]
            r = L.run_json(exe, [pa, pb, '--tol', L.tol_arg([np.ldexp(1.0, k) for k in batch])],
                           fails, '--tol batch %d' % i)
            if not r:
                return
            for t in r['tensors'] + [dict(r['totals'], name=None)]:
                for k, v in zip(batch, t['changed_tol'].values()):
                    tol_counts[(t['name'], k)] = v

        tot_at = {}
        for t in rep['tensors'] + [dict(rep['totals'], name=None)]:
            name, tc = t['name'], t['tolerance_curve']
            absb, relb = curve_bins(tc['abs']), curve_bins(tc['rel'])
            nfc = tc['nonfinite_changed']
            binned = sum(c for c, _ in absb.values())
            if binned + nfc + tc['zero_delta'] != t['changed']:
                fails.append('%s: bins %d + nonfinite %d + zero %d != changed %d'
                             % (name, binned, nfc, tc['zero_delta'], t['changed']))
            used = sorted(absb)
            if used and sorted(int(k) for k in tc['changed_at_pow2']) != \
                    list(range(used[0], used[-1] + 1)):
                fails.append('%s: changed_at_pow2 keys are not the used range' % name)
            for k in ks:
                from_bins = sum(c for e, (c, _) in absb.items() if e >= k) \
                    - absb.get(k, (0, 0))[1] + nfc
                if str(k) in tc['changed_at_pow2'] and tc['changed_at_pow2'][str(k)] != from_bins:
                    fails.append('%s: changed_at_pow2[%d] %d != from its bins %d'
                                 % (name, k, tc['changed_at_pow2'][str(k)], from_bins))
                if from_bins != tol_counts[(name, k)]:
                    fails.append('%s: curve at 2^%d = %d, --tol 2^%d counts %d'
                                 % (name, k, from_bins, k, k, tol_counts[(name, k)]))
            if name is None:
                continue
            dt, ba, bb = pairs[name]
            at, o_abs, o_rel, o_nfc = oracle(dt, ba, bb)
            if (absb, relb, nfc) != (o_abs, o_rel, o_nfc):
                fails.append('%s: bins differ from numpy: abs %s vs %s; rel %s vs %s'
                             % (name, absb, o_abs, relb, o_rel))
            for k in ks:
                if at(k) != tol_counts[(name, k)]:
                    fails.append('%s: numpy at 2^%d = %d, --tol says %d'
                                 % (name, k, at(k), tol_counts[(name, k)]))
                tot_at[k] = tot_at.get(k, 0) + at(k)
        for k in ks:
            if tot_at[k] != tol_counts[(None, k)]:
                fails.append('totals: numpy at 2^%d = %d, --tol says %d'
                             % (k, tot_at[k], tol_counts[(None, k)]))

        # HDF5 /hist against the JSON
        with h5py.File(h5, 'r') as f:
            g = f['hist']
            ex = list(g['exponent'][...])
            names = list(f['tensors/name'].asstr()[...])
            for ds in ('abs_count', 'abs_pow2', 'rel_count', 'rel_pow2', 'changed_at_pow2'):
                d = g[ds]
                if d.dtype != np.uint64 or d.shape != (len(names), len(ex)) or \
                        d.compression != 'gzip' or not d.shuffle:
                    fails.append('/hist/%s: %s %s %s' % (ds, d.dtype, d.shape, d.compression))
            for i, name in enumerate(names + [None]):
                t = rep['tensors'][i] if name else rep['totals']
                tc = t['tolerance_curve']
                pre = '' if name else 'total_'
                row = (lambda ds: g[ds][i]) if name else (lambda ds: g[ds][...])
                for side in ('abs', 'rel'):
                    cnt, p2 = row(pre + side + '_count'), row(pre + side + '_pow2')
                    got = {int(e): (int(c), int(p)) for e, c, p in zip(ex, cnt, p2) if c}
                    if got != curve_bins(tc[side]):
                        fails.append('/hist %s %s: bins differ from the JSON' % (name, side))
                at = row(pre + 'changed_at_pow2')
                for k, v in tc['changed_at_pow2'].items():
                    if int(at[ex.index(int(k))]) != v:
                        fails.append('/hist %s: changed_at_pow2[%s] %d != JSON %d'
                                     % (name, k, int(at[ex.index(int(k))]), v))
                nfc = int(g['nonfinite_changed'][i]) if name else \
                    int(g.attrs['total_nonfinite_changed'])
                if nfc != tc['nonfinite_changed']:
                    fails.append('/hist %s: nonfinite_changed %d != JSON' % (name, nfc))


def case_usage(exe, fails):
    import h5py
    with L.tempdir() as tmp:
        pa, pb, h5 = (os.path.join(tmp, x) for x in ('a.safetensors', 'b.safetensors', 'o.h5'))
        L.write_st(pa, {'w': ('BF16', [4], np.array([1, 2, 3, 4], dtype=np.uint16))})
        L.write_st(pb, {'w': ('BF16', [4], np.array([1, 2, 5, 4], dtype=np.uint16))})
        r = L.run_json(exe, [pa, pb, '--h5', h5], fails, 'no --hist')
        if r and ('tolerance_curve' in r['totals'] or 'tolerance_curve' in r['tensors'][0]):
            fails.append('tolerance_curve without --hist')
        with h5py.File(h5, 'r') as f:
            if 'hist' in f:
                fails.append('/hist without --hist')
        rc, _, err = L.run(exe, ['--series', tmp, '--hist'])
        if rc != 1:
            fails.append('--series --hist: exit %d (%s), want 1' % (rc, err.strip()))


def main():
    case = sys.argv[1] if len(sys.argv) > 1 else 'curve'
    exe = L.find_exe(sys.argv[1:])
    try:
        import h5py  # noqa: F401
    except ImportError:
        print('skip: h5py is missing')
        sys.exit(L.SKIP)
    fails = []
    {'curve': case_curve, 'usage': case_usage}[case](exe, fails)
    L.finish('hist_' + case, fails)


if __name__ == '__main__':
    main()
