#!/usr/bin/python3
"""The update maps of `sparsity-scan --maps --h5 OUT.h5` (suite 'maps'): every maps/<tensor>
group read back with h5py and compared exactly with a numpy oracle computed here from the
checkpoints' raw bits (docs/metrics.md, "Update maps"), and the JSON "maps" keys.

usage: test_maps.py CASE [path/to/sparsity-scan]
  heads   bf16 q_proj changed only in head 2's rows, o_proj only in head 2's columns, a GQA
          k_proj, an f32 MLP matrix and a 1-D norm; head size from config.json beside B, and
          from --head-dim (which wins); --masks kept or not
  shapes  non-divisible shapes: 1000x700 (512x512 uneven cells), 3x5, 1x9, 600x3, 140000x2 (cells
          of 274 elements: u16 cell counts); --stripe-k
  errors  --maps without --h5, --head-dim without --maps exit 1; an attention projection with no head size exits 1 with
          "--head-dim" in the message; a --head-dim that does not divide the rows exits 1
Exits 0 (pass), 1 (fail, printing what differed) or 77 (skip)."""

import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'oracle'))
import sslib as L  # noqa: E402

CELLS = 512


def make_pair(rng, dt, shape, changed):
    """(bits_a, bits_b) of dtype dt with exactly the elements of boolean `changed` differing."""
    n = int(np.prod(shape))
    vals = rng.standard_normal(n).astype(np.float32) + np.float32(3.0)  # no zeros
    if dt == 'BF16':
        a = L.f32_to_bf16_bits(vals).astype(np.uint16)
    else:
        a = vals.view(np.uint32).copy()
    b = a.copy()
    flip = changed.reshape(-1)
    b[flip] ^= 1
    return a, b


def oracle(changed, k, head_kind=None, hd=0):
    ch = changed.astype(np.int64)
    R, C = ch.shape
    r, c = min(R, CELLS), min(C, CELLS)
    re = np.array([i * R // r for i in range(r + 1)])
    ce = np.array([j * C // c for j in range(c + 1)])
    cells = np.add.reduceat(np.add.reduceat(ch, re[:-1], axis=0), ce[:-1], axis=1)
    sizes = np.outer(np.diff(re), np.diff(ce))
    row, col = ch.sum(1), ch.sum(0)
    total = int(ch.sum())
    thr = k * (total / (R * C))
    largest = int(sizes.max())
    ctype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64)
                 if largest <= np.iinfo(t).max)
    out = {'row_changed': row.astype(np.uint64), 'col_changed': col.astype(np.uint64),
           'cell_changed': cells.astype(ctype), 'row_edges': re.astype(np.uint64),
           'col_edges': ce.astype(np.uint64), 'density': cells / sizes,
           'rows': R, 'cols': C, 'changed': total,
           'row_stripe_ratio': int((row / C > thr).sum()) / R,
           'col_stripe_ratio': int((col / R > thr).sum()) / C, 'head_dim': 0}
    if head_kind:
        cnt, other = (row, C) if head_kind == 'rows' else (col, R)
        out['head_fraction'] = cnt.reshape(-1, hd).sum(1) / (hd * other)
        out['head_dim'] = hd
    return out


def check_file(label, h5path, want, k, fails, masks_kept):
    import h5py
    with h5py.File(h5path, 'r') as f:
        if ('masks' in f) != masks_kept:
            fails.append('%s: /masks present=%s, want %s' % (label, 'masks' in f, masks_kept))
        if 'maps' not in f:
            fails.append('%s: no /maps group' % label)
            return
        g = f['maps']
        if g.attrs['stripe_k'] != k:
            fails.append('%s: /maps stripe_k %r' % (label, g.attrs['stripe_k']))
        names = sorted(n.replace('%', '%25').replace('/', '%2F') for n in want)
        if sorted(g.keys()) != names:
            fails.append('%s: /maps holds %r, want %r' % (label, sorted(g.keys()), names))
            return
        for name, w in want.items():
            t = g[name.replace('%', '%25').replace('/', '%2F')]
            for ds in ('row_changed', 'col_changed', 'cell_changed', 'row_edges', 'col_edges',
                       'head_fraction'):
                if ds not in w:
                    if ds in t:
                        fails.append('%s: %s/%s should be absent' % (label, name, ds))
                    continue
                got = t[ds][...]
                if got.dtype != w[ds].dtype or got.shape != w[ds].shape or \
                        not np.array_equal(got, w[ds]):
                    bad = np.argwhere(got != w[ds])[:3] if got.shape == w[ds].shape else None
                    fails.append('%s: %s/%s differs (dtype %s shape %s, want %s %s; at %s)' % (
                        label, name, ds, got.dtype, got.shape, w[ds].dtype, w[ds].shape, bad))
                if ds == 'cell_changed' and t[ds].compression != 'gzip' and got.size > 1:
                    fails.append('%s: %s/cell_changed not deflated' % (label, name))
            if 'density' in t:
                fails.append('%s: %s/density should be absent (derived from the cells)' % (
                    label, name))
            # the density map as docs/hdf5-schema.md derives it
            re_, ce_ = t['row_edges'][...], t['col_edges'][...]
            dens = t['cell_changed'][...] / np.outer(np.diff(re_), np.diff(ce_))
            if dens.shape != w['density'].shape or not np.array_equal(dens, w['density']):
                fails.append('%s: %s density from the cells differs' % (label, name))
            for a in ('rows', 'cols', 'changed', 'head_dim', 'row_stripe_ratio',
                      'col_stripe_ratio'):
                if t.attrs[a] != w[a]:
                    fails.append('%s: %s attr %s = %r, want %r' % (label, name, a, t.attrs[a],
                                                                  w[a]))
            if t.attrs['stripe_k'] != k or t.attrs['tensor'] != name:
                fails.append('%s: %s attrs stripe_k/tensor wrong' % (label, name))


def check_json(label, out, want, fails):
    rep = L.loads_strict(out)
    for t in rep['tensors']:
        w = want.get(t['name'])
        if w is None:
            if 'maps' in t:
                fails.append('%s: JSON %s has maps' % (label, t['name']))
            continue
        m = t.get('maps', {})
        for a in ('row_stripe_ratio', 'col_stripe_ratio'):
            if abs(m.get(a, -1) - w[a]) > 1e-15:
                fails.append('%s: JSON %s %s = %r, want %r' % (label, t['name'], a, m.get(a), w[a]))
        if 'head_fraction' in w:
            hf = m.get('head_fraction')
            if hf is None or not np.allclose(hf, w['head_fraction'], rtol=1e-15, atol=0):
                fails.append('%s: JSON %s head_fraction %r' % (label, t['name'], hf))
        elif 'head_fraction' in m:
            fails.append('%s: JSON %s has head_fraction' % (label, t['name']))


def scan(exe, a, b, h5, extra, fails, label):
    rc, out, err = L.run(exe, [a, b, '--json', '--quiet', '--maps', '--h5', h5] + extra)
    if rc != 0:
        fails.append('%s: exit %d: %s' % (label, rc, err.strip()))
        return None
    return out


def write_dirs(td, tensors_a, tensors_b, config=None):
    da, db = os.path.join(td, 'A'), os.path.join(td, 'B')
    os.makedirs(da, exist_ok=True)
    os.makedirs(db, exist_ok=True)
    L.write_st(os.path.join(da, 'model.safetensors'), tensors_a)
    L.write_st(os.path.join(db, 'model.safetensors'), tensors_b)
    if config is not None:
        with open(os.path.join(db, 'config.json'), 'w') as f:
            json.dump(config, f)
    return da, db


def attention_pair(rng):
    heads, hd, hidden, kv = 8, 16, 96, 2
    spec = {}  # name -> (dtype, changed)
    ch = np.zeros((heads * hd, hidden), bool)
    ch[2 * hd:3 * hd, :] = rng.random((hd, hidden)) < 0.5
    spec['model.layers.0.self_attn.q_proj.weight'] = ('BF16', ch)
    ch = np.zeros((hidden, heads * hd), bool)
    ch[:, 2 * hd:3 * hd] = rng.random((hidden, hd)) < 0.5
    spec['model.layers.0.self_attn.o_proj.weight'] = ('BF16', ch)
    spec['model.layers.0.self_attn.k_proj.weight'] = ('BF16', rng.random((kv * hd, hidden)) < 0.1)
    ch = np.zeros((40, hidden), bool)
    ch[5, :] = True
    ch[:, 7] = True
    ch |= rng.random((40, hidden)) < 0.02
    spec['model.layers.0.mlp/up%proj.weight'] = ('F32', ch)
    spec['model.norm.weight'] = ('F32', rng.random(hidden) < 0.3)
    ta, tb = {}, {}
    for name, (dt, c) in spec.items():
        a, b = make_pair(rng, dt, c.shape, c)
        ta[name], tb[name] = (dt, c.shape, a), (dt, c.shape, b)
    return spec, ta, tb, hd


def case_heads(exe, td, fails):
    rng = np.random.default_rng(2)
    spec, ta, tb, hd = attention_pair(rng)
    da, db = write_dirs(td, ta, tb, {'hidden_size': 128, 'num_attention_heads': 8})
    for k, extra, masks_kept, want_hd in ((2.0, [], False, hd), (3.0, ['--stripe-k', '3', '--masks'], True, hd),
                                          (2.0, ['--head-dim', '32'], False, 32)):
        want = {}
        for name, (dt, c) in spec.items():
            if c.ndim != 2:
                continue
            kind = 'rows' if 'q_proj' in name or 'k_proj' in name else \
                ('cols' if 'o_proj' in name else None)
            want[name] = oracle(c, k, kind, want_hd)
        label = 'heads %s' % ' '.join(extra)
        h5 = os.path.join(td, 'out.h5')
        out = scan(exe, da, db, h5, extra, fails, label)
        if out is None:
            continue
        check_file(label, h5, want, k, fails, masks_kept)
        check_json(label, out, want, fails)
        if want_hd == hd:
            hf = want['model.layers.0.self_attn.q_proj.weight']['head_fraction']
            if not (hf[2] > 0.3 and np.all(np.delete(hf, 2) == 0)):
                fails.append('%s: q_proj head fractions not only head 2: %r' % (label, hf))
    # head_dim key wins over hidden_size / num_attention_heads
    with open(os.path.join(db, 'config.json'), 'w') as f:
        json.dump({'head_dim': 32, 'hidden_size': 128, 'num_attention_heads': 8}, f)
    h5 = os.path.join(td, 'out2.h5')
    if scan(exe, da, db, h5, [], fails, 'head_dim key') is not None:
        import h5py
        with h5py.File(h5, 'r') as f:
            if f['maps'].attrs['head_dim'] != 32 or \
                    not f['maps'].attrs['head_dim_source'].endswith('B/config.json'):
                fails.append('head_dim key: /maps attrs %r' % dict(f['maps'].attrs))


def case_shapes(exe, td, fails):
    rng = np.random.default_rng(3)
    spec = {'big': rng.random((1000, 700)) < 0.05, 'small': rng.random((3, 5)) < 0.4,
            'row': rng.random((1, 9)) < 0.5, 'tall': rng.random((600, 3)) < 0.3,
            'none': np.zeros((4, 6), bool), 'all': np.ones((2, 3), bool),
            'deep': rng.random((140000, 2)) < 0.3}  # cells of 274 elements: u16 counts
    spec['big'][100:103, :] = True
    spec['big'][:, 650] |= rng.random(1000) < 0.5
    ta, tb = {}, {}
    for name, c in spec.items():
        a, b = make_pair(rng, 'F32', c.shape, c)
        ta[name], tb[name] = ('F32', c.shape, a), ('F32', c.shape, b)
    a, b = os.path.join(td, 'a.safetensors'), os.path.join(td, 'b.safetensors')
    L.write_st(a, ta)
    L.write_st(b, tb)
    for k in (2.0, 1.5):
        want = {n: oracle(c, k) for n, c in spec.items()}
        if want['big']['density'].shape != (512, 512) or \
                want['deep']['cell_changed'].dtype != np.uint16:
            fails.append('oracle shape or type')
        label = 'shapes k=%g' % k
        h5 = os.path.join(td, 'out.h5')
        out = scan(exe, a, b, h5, ['--stripe-k', repr(k), '--threads', '2'], fails, label)
        if out is not None:
            check_file(label, h5, want, k, fails, False)
            check_json(label, out, want, fails)


def case_errors(exe, td, fails):
    rng = np.random.default_rng(4)
    spec, ta, tb, hd = attention_pair(rng)
    da, db = write_dirs(td, ta, tb)
    h5 = os.path.join(td, 'out.h5')
    rc, _, err = L.run(exe, [da, db, '--maps', '--quiet'])
    if rc != 1 or '--h5' not in err:
        fails.append('--maps without --h5: exit %d, %r' % (rc, err))
    rc, _, err = L.run(exe, [da, db, '--maps', '--quiet', '--h5', h5])
    if rc != 1 or '--head-dim' not in err or 'q_proj' not in err and 'o_proj' not in err \
            and 'k_proj' not in err:
        fails.append('no head size: exit %d, %r' % (rc, err))
    if os.path.exists(h5):
        fails.append('no head size: %s was written' % h5)
    rc, _, err = L.run(exe, [da, db, '--maps', '--quiet', '--h5', h5, '--head-dim', '7'])
    if rc != 1 or 'does not divide' not in err:
        fails.append('--head-dim 7: exit %d, %r' % (rc, err))
    for bad in (['--head-dim', '0'], ['--head-dim', 'x'], ['--stripe-k', '-1']):
        rc, _, err = L.run(exe, [da, db, '--maps', '--quiet', '--h5', h5] + bad)
        if rc != 1:
            fails.append('%s: exit %d, %r' % (bad, rc, err))
    rc, _, err = L.run(exe, [da, db, '--quiet', '--head-dim', '16'])
    if rc != 1 or '--maps' not in err:
        fails.append('--head-dim without --maps: exit %d, %r' % (rc, err))
    rc, _, err = L.run(exe, ['--series', td, '--maps', '--quiet', '--h5', h5])
    if rc != 1:
        fails.append('--series --maps: exit %d, %r' % (rc, err))
    # without --maps: no /maps group, no JSON maps key
    rc, out, err = L.run(exe, [da, db, '--quiet', '--json', '--h5', h5])
    import h5py
    if rc != 0:
        fails.append('plain scan: exit %d %r' % (rc, err))
    else:
        with h5py.File(h5, 'r') as f:
            if 'maps' in f:
                fails.append('plain scan has /maps')
        if any('maps' in t for t in L.loads_strict(out)['tensors']):
            fails.append('plain scan JSON has maps')


CASES = {'heads': case_heads, 'shapes': case_shapes, 'errors': case_errors}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in CASES:
        print('usage: test_maps.py CASE [sparsity-scan]; CASE one of: %s' % ', '.join(CASES))
        return 1
    try:
        import h5py  # noqa: F401
    except ImportError:
        print('skip: h5py not importable')
        return 77
    exe = L.find_exe(sys.argv[1:])
    fails = []
    with tempfile.TemporaryDirectory() as td:
        CASES[sys.argv[1]](exe, td, fails)
    for f in fails:
        print('FAIL', f)
    if not fails:
        print('ok: maps %s' % sys.argv[1])
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
