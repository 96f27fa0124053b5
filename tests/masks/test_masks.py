#!/usr/bin/python3
"""The changed-element masks of `sparsity-scan --masks --h5 OUT.h5` (suite 'masks'): every
masks/<tensor> dataset read back with h5py and compared bit for bit with a mask computed here in
numpy from the checkpoints' raw bits (np.packbits(changed, bitorder='little')), with its type,
shape, filters and attributes; popcount == changed.

usage: test_masks.py CASE [path/to/sparsity-scan [path/to/ckpt-synth]]
  synth    a ckpt-synth tiny pair (BF16, AdamW update)
  chunks   tensors over several 2^20-element chunks, odd lengths, several dtypes; --threads 1 vs 2
           and every SIMD path give identical masks; names with '/' and '%' are escaped
  special  every dtype with +0/-0, NaNs with equal and different bits, Inf, sign flips
  usage    --masks without --h5 exits 1; without --masks there is no /masks group
Exits 0 (pass), 1 (fail, printing what differed) or 77 (skip)."""

import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'oracle'))
import sslib as L  # noqa: E402

CHUNK = 1 << 20

# magnitude bits of each float dtype's storage word; integers and BOOL compare all bits
MAG = {'F16': 0x7FFF, 'BF16': 0x7FFF, 'F32': 0x7FFFFFFF, 'F64': 0x7FFFFFFFFFFFFFFF,
       'F8_E4M3': 0x7F, 'F8_E5M2': 0x7F}


def is_zero(dt, bits):
    """Elements that are +0 or -0, through numpy's own float types where it has them."""
    if dt == 'F16':
        return bits.view(np.float16) == 0
    if dt == 'F32':
        return bits.view(np.float32) == 0
    if dt == 'F64':
        return bits.view(np.float64) == 0
    if dt == 'BF16':  # bf16 is the top half of a float32
        return (bits.astype(np.uint32) << 16).view(np.float32) == 0
    return (bits & MAG[dt]) == 0  # F8: no numpy type


def numpy_mask(dt, a, b):
    """(packed mask, changed count) per docs/metrics.md: bits differ, +0 and -0 equal."""
    a = a.reshape(-1)
    b = b.reshape(-1)
    changed = a != b
    if L.is_float(dt):
        changed &= ~(is_zero(dt, a) & is_zero(dt, b))
    return np.packbits(changed, bitorder='little'), int(changed.sum())


def h5_name(tensor):
    return tensor.replace('%', '%25').replace('/', '%2F')


def check_masks(label, h5path, ck_a, ck_b, fails):
    """Compares every masks/<name> of h5path with numpy; returns {name: mask bytes}."""
    import h5py
    got_all = {}
    with h5py.File(h5path, 'r') as f:
        if 'masks' not in f:
            fails.append('%s: no /masks group' % label)
            return got_all
        g = f['masks']
        if g.attrs.get('bitorder') != 'little':
            fails.append('%s: /masks bitorder attribute %r' % (label, g.attrs.get('bitorder')))
        shared = sorted(set(ck_a) & set(ck_b))
        want_names = sorted(h5_name(n) for n in shared)
        if sorted(g.keys()) != want_names:
            fails.append('%s: /masks holds %r, want %r' % (label, sorted(g.keys())[:5],
                                                           want_names[:5]))
        tnames = list(f['tensors/name'].asstr()[...])
        tchanged = f['tensors/changed'][...]
        for name in shared:
            dt, shape, bits_a = ck_a[name]
            bits_b = ck_b[name][2]
            want, nchanged = numpy_mask(dt, bits_a, bits_b)
            key = h5_name(name)
            if key not in g:
                continue
            d = g[key]
            where = '%s: masks/%s' % (label, key)
            if d.dtype != np.uint8 or d.shape != (len(want),):
                fails.append('%s: dtype %s shape %r, want uint8 (%d,)' % (where, d.dtype, d.shape,
                                                                         len(want)))
                continue
            got = d[...]
            if not np.array_equal(got, want):
                bad = np.nonzero(got != want)[0]
                fails.append('%s: %d mask bytes differ, first at byte %d: got %#x want %#x'
                             % (where, len(bad), bad[0], got[bad[0]], want[bad[0]]))
            pop = int(np.unpackbits(got, bitorder='little').sum()) if got.size else 0
            numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
            attrs = {k: d.attrs[k] for k in d.attrs}
            exp = {'tensor': name, 'dtype': dt, 'numel': numel, 'bitorder': 'little',
                   'changed': nchanged}
            for k, v in exp.items():
                if k not in attrs or attrs[k] != v:
                    fails.append('%s: attribute %s = %r, want %r' % (where, k, attrs.get(k), v))
            if 'shape' not in attrs or [int(s) for s in np.atleast_1d(attrs['shape'])] != \
                    [int(s) for s in shape]:
                fails.append('%s: attribute shape %r, want %r' % (where, attrs.get('shape'),
                                                                   shape))
            if pop != nchanged:
                fails.append('%s: popcount %d != changed %d' % (where, pop, nchanged))
            if name in tnames and int(tchanged[tnames.index(name)]) != nchanged:
                fails.append('%s: tensors/changed %d != numpy %d' % (
                    where, tchanged[tnames.index(name)], nchanged))
            if got.size:
                if d.chunks is None or d.compression != 'gzip' or not d.shuffle:
                    fails.append('%s: not chunked + shuffle + deflate (%r %r %r)' % (
                        where, d.chunks, d.compression, d.shuffle))
            got_all[name] = got
    return got_all


def scan(exe, a, b, h5path, fails, label, extra=(), env=None):
    rc, out, err = L.run(exe, [a, b, '--quiet', '--h5', h5path, '--masks'] + list(extra),
                         env=env, timeout=280)
    if rc != 0:
        fails.append('%s: exit %d: %s' % (label, rc, err.strip()))
        return False
    return True


def case_synth(exe, synth, td, fails):
    if not synth or not os.access(synth, os.X_OK):
        print('skip: ckpt-synth not built (%r)' % synth)
        sys.exit(L.SKIP)
    x, y = os.path.join(td, 'x.safetensors'), os.path.join(td, 'y.safetensors')
    for args in (['init', '--preset', 'tiny', '-o', x],
                 ['update', x, '--optimizer', 'adamw', '-o', y]):
        p = subprocess.run([synth] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=200)
        if p.returncode != 0:
            fails.append('ckpt-synth %r: exit %d: %s' % (args, p.returncode, p.stderr.decode()))
            return
    ck_a, ck_b = L.read_checkpoint(x), L.read_checkpoint(y)
    h5 = os.path.join(td, 'synth.h5')
    if scan(exe, x, y, h5, fails, 'synth'):
        got = check_masks('synth', h5, ck_a, ck_b, fails)
        if got and not any(m.any() for m in got.values()):
            fails.append('synth: no element changed at all: the AdamW pair is not a test')


def chunk_pair(rng):
    """Tensors of several dtypes, one BF16 over several 2^20-element chunks."""
    specs = [('model.layers.0.mlp.down_proj.weight', 'BF16', (3 * CHUNK + 4099,)),
             ('model.layers.1.self_attn.q_proj.weight', 'F32', (1100, 1000)),
             ('model.norm.weight', 'F16', (1001,)),
             ('odd/name%with.slash', 'F8_E4M3', (CHUNK + 13,)),
             ('model.embed_tokens.weight', 'F64', (17, 3)),
             ('empty', 'BF16', (0, 4)),
             ('scalar', 'I32', ())]
    a, b = {}, {}
    for name, dt, shape in specs:
        st = L.storage(dt)
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        info = np.iinfo(st)
        bits_a = rng.integers(0, int(info.max), size=n, dtype=st, endpoint=True)
        bits_b = bits_a.copy()
        # sparse updates: about 3% of the elements, plus a dense stripe
        sel = rng.random(n) < 0.03
        sel[n // 3:n // 3 + min(n, 5000)] = True
        bits_b[sel] = rng.integers(0, int(info.max), size=int(sel.sum()), dtype=st,
                                   endpoint=True)
        a[name] = (dt, list(shape), bits_a)
        b[name] = (dt, list(shape), bits_b)
    return a, b


def case_chunks(exe, synth, td, fails):
    rng = np.random.default_rng(5)
    ck_a, ck_b = chunk_pair(rng)
    pa, pb = os.path.join(td, 'a.safetensors'), os.path.join(td, 'b.safetensors')
    L.write_st(pa, ck_a)
    L.write_st(pb, ck_b)
    ck_a, ck_b = L.read_checkpoint(pa), L.read_checkpoint(pb)
    results = {}
    runs = [('threads1', ['--threads', '1'], None), ('threads2', ['--threads', '2'], None)]
    runs += [('isa_' + i, ['--threads', '2'], L.isa_env(i)) for i in L.ISAS]
    for label, extra, env in runs:
        h5 = os.path.join(td, label + '.h5')
        if scan(exe, pa, pb, h5, fails, label, extra, env):
            results[label] = check_masks(label, h5, ck_a, ck_b, fails)
    ref = results.get('threads1')
    for label, got in results.items():
        if ref is not None and got.keys() == ref.keys():
            for k in ref:
                if not np.array_equal(ref[k], got[k]):
                    fails.append('%s: mask of %s differs from --threads 1' % (label, k))


def case_special(exe, synth, td, fails):
    rng = np.random.default_rng(9)
    a, b = {}, {}
    for dt in L.ALL_DTYPES:
        st = L.storage(dt)
        width = np.dtype(st).itemsize * 8
        sign = 1 << (width - 1)
        vals = []
        if L.is_float(dt):
            mag = MAG[dt]
            expo = {'F16': 0x7C00, 'BF16': 0x7F80, 'F32': 0x7F800000,
                    'F64': 0x7FF0000000000000, 'F8_E4M3': 0x78, 'F8_E5M2': 0x7C}[dt]
            qnan = mag if dt == 'F8_E4M3' else expo | (expo >> 1 & ~expo & mag) | 1
            other_nan = qnan ^ 1 if dt != 'F8_E4M3' else qnan | sign
            vals += [(0, 0), (0, sign), (sign, 0), (sign, sign), (qnan, qnan), (qnan, other_nan),
                     (qnan | sign, qnan), (expo, expo), (expo, expo | sign), (0, 1), (sign, 1),
                     (1, sign | 1), (expo - 1, expo - 1), (0, expo)]
        else:
            vals += [(0, 0), (0, sign), (sign, sign), (1, 0), (sign - 1, sign), (0, 1)]
        n = 200 * len(vals) + 5
        idx = rng.integers(0, len(vals), size=n)
        pa_bits = np.array([vals[i][0] for i in idx], dtype=np.uint64).astype(st)
        pb_bits = np.array([vals[i][1] for i in idx], dtype=np.uint64).astype(st)
        a[dt.lower()] = (dt, [n], pa_bits)
        b[dt.lower()] = (dt, [n], pb_bits)
    pa, pb = os.path.join(td, 'a.safetensors'), os.path.join(td, 'b.safetensors')
    L.write_st(pa, a)
    L.write_st(pb, b)
    ck_a, ck_b = L.read_checkpoint(pa), L.read_checkpoint(pb)
    for isa in L.ISAS:
        h5 = os.path.join(td, isa + '.h5')
        if scan(exe, pa, pb, h5, fails, 'special ' + isa, env=L.isa_env(isa)):
            check_masks('special ' + isa, h5, ck_a, ck_b, fails)


def case_usage(exe, synth, td, fails):
    import h5py
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 65535, size=100, dtype=np.uint16)
    pa, pb = os.path.join(td, 'a.safetensors'), os.path.join(td, 'b.safetensors')
    L.write_st(pa, {'w': ('BF16', [100], bits)})
    L.write_st(pb, {'w': ('BF16', [100], bits ^ 1)})
    rc, out, err = L.run(exe, [pa, pb, '--masks', '--quiet'])
    if rc != 1 or out or '--masks' not in err:
        fails.append('--masks without --h5: exit %d, stdout %r, stderr %r (want 1, nothing, '
                     'a message naming --masks)' % (rc, out[:100], err.strip()))
    h5 = os.path.join(td, 'plain.h5')
    rc, out, err = L.run(exe, [pa, pb, '--quiet', '--h5', h5])
    if rc != 0:
        fails.append('--h5 without --masks: exit %d: %s' % (rc, err.strip()))
    else:
        with h5py.File(h5, 'r') as f:
            if 'masks' in f:
                fails.append('--h5 without --masks wrote a /masks group')
    rc, out, err = L.run(exe, ['--help'])
    if rc != 0 or '--masks' not in out:
        fails.append('--help does not list --masks')


CASES = {'synth': case_synth, 'chunks': case_chunks, 'special': case_special, 'usage': case_usage}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in CASES:
        print('usage: test_masks.py CASE [sparsity-scan [ckpt-synth]]; CASE one of: %s'
              % ' '.join(CASES))
        sys.exit(1)
    exe = L.find_exe(sys.argv[1:])
    synth = sys.argv[3] if len(sys.argv) > 3 else None
    if synth is None and os.environ.get('SS_BUILD_DIR'):
        synth = os.path.join(os.environ['SS_BUILD_DIR'], 'train', 'ckpt-synth')
    try:
        import h5py  # noqa: F401
    except ImportError:
        print('skip: h5py is not importable (Debian package python3-h5py)')
        sys.exit(L.SKIP)
    fails = []
    with L.tempdir() as td:
        try:
            CASES[sys.argv[1]](exe, synth, td, fails)
        except SystemExit:
            raise
        except Exception as e:  # a crash of the test is a failure with its reason
            import traceback
            traceback.print_exc()
            fails.append('exception: %r' % e)
    L.finish('masks_' + sys.argv[1], fails)


if __name__ == '__main__':
    main()
