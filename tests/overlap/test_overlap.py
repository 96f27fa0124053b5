#!/usr/bin/python3
"""sparsity-overlap against an independent numpy oracle (suite 'overlap'): the oracle computes the
changed masks straight from the safetensors files (bits differ, +0 = -0, identical NaN bits
unchanged), then every count, o1/o2/Jaccard with baselines, per tensor, per module and overall,
the consensus histograms and their Poisson-binomial baseline; compared exactly with --json and
with the --h5 file read back by h5py.

usage: test_overlap.py CASE [sparsity-overlap [sparsity-scan [ckpt-synth]]]
  synth   ckpt-synth base + AdamW seeds 1, 2 + SGD: k = 2 and k = 3
  exact   hand-built files (F32, BF16, F16, scalar, empty, -0/+0, NaNs), k = 4, a tensor missing
          from one run (listed and skipped)
  errors  no /masks -> 2, different bases -> 3, shape mismatch -> 3, one file -> 1,
          unwritable --h5 -> 4 with no file left
Exits 0 (pass), 1 (fail) or 77 (skip)."""

import math
import os
import re
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'oracle'))
import sslib as L  # noqa: E402

HF_ORDER = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'q_norm', 'k_norm', 'gate_proj', 'up_proj',
            'down_proj', 'input_layernorm', 'post_attention_layernorm', 'embed_tokens', 'norm',
            'lm_head']
MAG = {'F16': 0x7FFF, 'BF16': 0x7FFF, 'F32': 0x7FFFFFFF, 'F64': 0x7FFFFFFFFFFFFFFF}


def tool(i, name, sub):
    if len(sys.argv) > i and sys.argv[i]:
        return sys.argv[i]
    return os.path.join(os.environ.get('SS_BUILD_DIR', ''), sub, name)


# ---- the oracle -------------------------------------------------------------------------------

def changed_mask(dt, a, b):
    a = a.reshape(-1)
    b = b.reshape(-1)
    ch = a != b
    if dt in MAG:
        both_zero = ((a & MAG[dt]) == 0) & ((b & MAG[dt]) == 0)
        ch &= ~both_zero
    return ch


def classify(name):
    parts = name.split('.')
    layer = -1
    for p in parts:
        if p.isdigit() and int(p) <= 2147483647:
            layer = int(p)
            break
    if parts and parts[-1] in ('weight', 'bias') and len(parts) > 1:
        parts = parts[:-1]
    return layer, parts[-1]


def figures(n, a, b, i):
    p = a / n if n else None
    q = b / n if n else None
    u = a + b - i
    return {'numel': n, 'n1': a, 'n2': b, 'intersection': i, 'union': u, 'p': p, 'q': q,
            'o1': i / a if a else None, 'o1_random': q, 'o2': i / b if b else None,
            'o2_random': p, 'jaccard': i / u if u else None,
            'jaccard_random': (p * q / (p + q - p * q)) if (n and u) else None}


def poisson_binomial(probs):
    out = [1.0] + [0.0] * len(probs)
    for r, p in enumerate(probs):
        for j in range(r + 1, 0, -1):
            out[j] = out[j] * (1.0 - p) + out[j - 1] * p
        out[0] *= 1.0 - p
    return out


def hist_entry(k, numel, counts, changed):
    exp = poisson_binomial([c / numel for c in changed]) if numel else [None] * (k + 1)
    return {'numel': numel, 'changed': list(changed), 'counts': list(counts),
            'share': [c / numel if numel else None for c in counts], 'expected': exp}


def oracle(base, runs):
    """base: path; runs: [path]; returns the expected JSON document (without 'runs' paths)."""
    ck0 = L.read_checkpoint(base)
    cks = [L.read_checkpoint(r) for r in runs]
    k = len(runs)
    per_run = [set(n for n in ck0 if n in c and c[n][1] == ck0[n][1]) for c in cks]
    names = sorted(set.intersection(*per_run))
    missing = sorted(set.union(*per_run) - set(names))
    masks = {n: [changed_mask(ck0[n][0], ck0[n][2], c[n][2]) for c in cks] for n in names}
    cls = {n: classify(n) for n in names}
    mods_present = set(m for _, m in cls.values())
    modules = [m for m in HF_ORDER if m in mods_present] + \
        sorted((m for m in mods_present if m not in HF_ORDER), key=lambda s: s.encode())
    numel = {n: int(masks[n][0].size) for n in names}
    chg = {n: [int(m.sum()) for m in masks[n]] for n in names}
    doc = {'schema': 'sparsity-overlap/1', 'ntensors': len(names), 'missing': missing}
    total = sum(numel.values())
    doc['runs'] = [{'numel': total, 'changed': sum(chg[n][i] for n in names),
                    'density': (sum(chg[n][i] for n in names) / total) if total else None}
                   for i in range(k)]
    pairs = []
    for i in range(k):
        for j in range(i + 1, k):
            inter = {n: int((masks[n][i] & masks[n][j]).sum()) for n in names}
            tens = []
            for n in names:
                e = {'name': n, 'layer': cls[n][0], 'module': cls[n][1]}
                e.update(figures(numel[n], chg[n][i], chg[n][j], inter[n]))
                tens.append(e)
            mods = []
            for m in modules:
                ns = [n for n in names if cls[n][1] == m]
                e = {'module': m}
                e.update(figures(sum(numel[n] for n in ns), sum(chg[n][i] for n in ns),
                                 sum(chg[n][j] for n in ns), sum(inter[n] for n in ns)))
                if e['numel']:
                    mods.append(e)
            ov = figures(total, sum(chg[n][i] for n in names), sum(chg[n][j] for n in names),
                         sum(inter.values()))
            pairs.append({'i': i, 'j': j, 'overall': ov, 'modules': mods, 'tensors': tens})
    doc['pairs'] = pairs
    if k >= 3:
        hist = {}
        for n in names:
            cnt = np.zeros(numel[n], dtype=np.int64)
            for m in masks[n]:
                cnt += m
            hist[n] = [int((cnt == j).sum()) for j in range(k + 1)]
        tens = []
        for n in names:
            e = {'name': n, 'layer': cls[n][0], 'module': cls[n][1]}
            e.update(hist_entry(k, numel[n], hist[n], chg[n]))
            tens.append(e)
        cells = sorted(set(cls.values()), key=lambda c: (c[0], modules.index(c[1])))
        groups = []
        for (lay, mod) in cells:
            ns = [n for n in names if cls[n] == (lay, mod)]
            e = {'layer': lay, 'module': mod}
            e.update(hist_entry(k, sum(numel[n] for n in ns),
                                [sum(hist[n][j] for n in ns) for j in range(k + 1)],
                                [sum(chg[n][r] for n in ns) for r in range(k)]))
            groups.append(e)
        ov = hist_entry(k, total, [sum(hist[n][j] for n in names) for j in range(k + 1)],
                        [sum(chg[n][r] for n in names) for r in range(k)])
        doc['consensus'] = {'k': k, 'overall': ov, 'groups': groups, 'tensors': tens}
    return doc


# ---- comparing --------------------------------------------------------------------------------

def same(a, b):
    """Exact equality; None / NaN mean null."""
    na = a is None or (isinstance(a, float) and math.isnan(a))
    nb = b is None or (isinstance(b, float) and math.isnan(b))
    if na or nb:
        return na and nb
    if isinstance(a, (list, tuple, np.ndarray)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def compare(where, exp, got, fails):
    if isinstance(exp, dict):
        if not isinstance(got, dict):
            fails.append('%s: want an object, got %r' % (where, got))
            return
        for key, v in exp.items():
            if key not in got:
                fails.append('%s: key %r missing' % (where, key))
            else:
                compare('%s.%s' % (where, key), v, got[key], fails)
    elif isinstance(exp, list) and exp and isinstance(exp[0], dict):
        if not isinstance(got, list) or len(got) != len(exp):
            fails.append('%s: %d entries, want %d' % (where, len(got or []), len(exp)))
            return
        for i, (e, g) in enumerate(zip(exp, got)):
            compare('%s[%d]' % (where, i), e, g, fails)
    elif not same(exp, got):
        fails.append('%s: got %r, want %r' % (where, got, exp))


def run_overlap(exe, args):
    p = subprocess.run([exe] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def h5_as_doc(path, k):
    """The --h5 file rebuilt as the JSON document's numbers (for compare)."""
    import h5py
    with h5py.File(path, 'r') as f:
        doc = {'schema': f.attrs['schema'], 'missing': list(f['missing'].asstr()[...])}
        t = f['tensors']
        names = list(t['name'].asstr()[...])
        layer = [int(x) for x in t['layer'][...]]
        module = list(t['module'].asstr()[...])
        doc['ntensors'] = len(names)
        total = int(f.attrs['numel'])
        doc['runs'] = [{'numel': total, 'changed': int(c), 'density': float(d)}
                       for c, d in zip(f.attrs['run_changed'], f.attrs['run_density'])]
        keys = ['numel', 'n1', 'n2', 'intersection', 'union', 'p', 'q', 'o1', 'o1_random', 'o2',
                'o2_random', 'jaccard', 'jaccard_random']

        def rows(g, n):
            cols = {key: g[key][...] for key in keys}
            return [{key: cols[key][r].item() for key in keys} for r in range(n)]
        pairs = []
        for i in range(k):
            for j in range(i + 1, k):
                g = f['pairs/%d_%d' % (i, j)]
                ov = {key: g.attrs[key].item() for key in keys}
                tens = rows(g, len(names))
                for r, e in enumerate(tens):
                    e.update({'name': names[r], 'layer': layer[r], 'module': module[r]})
                gm = g['modules']
                mnames = list(gm['module'].asstr()[...])
                mods = [dict(e, module=mnames[r]) for r, e in enumerate(rows(gm, len(mnames)))
                        if e['numel']]
                pairs.append({'i': int(g.attrs['i']), 'j': int(g.attrs['j']), 'overall': ov,
                              'modules': mods, 'tensors': tens})
        doc['pairs'] = pairs
        if k >= 3:
            c = f['consensus']

            def hrows(g, n):
                return [{'numel': int(g['numel'][r]), 'changed': list(g['changed'][r]),
                         'counts': list(g['counts'][r]), 'share': list(g['share'][r]),
                         'expected': list(g['expected'][r])} for r in range(n)]
            tens = hrows(c['tensors'], len(names))
            for r, e in enumerate(tens):
                e.update({'name': names[r], 'layer': layer[r], 'module': module[r]})
            gl = [int(x) for x in c['groups/layer'][...]]
            gmod = list(c['groups/module'].asstr()[...])
            groups = hrows(c['groups'], len(gl))
            for r, e in enumerate(groups):
                e.update({'layer': gl[r], 'module': gmod[r]})
            doc['consensus'] = {'k': int(c.attrs['k']), 'tensors': tens, 'groups': groups,
                                'overall': {'numel': int(c.attrs['numel']),
                                            'changed': list(c.attrs['changed']),
                                            'counts': list(c.attrs['counts']),
                                            'share': list(c.attrs['share']),
                                            'expected': list(c.attrs['expected'])}}
        return doc


def check_filters(path, fails):
    import h5py
    with h5py.File(path, 'r') as f:
        d = f['pairs/0_1/n1']
        if d.shape[0] and (d.compression != 'gzip' or not d.shuffle):
            fails.append('%s: pairs/0_1/n1 not shuffled+deflated' % path)


def check_run(label, exe, base, runs, reports, td, fails, extra=()):
    exp = oracle(base, runs)
    out_h5 = os.path.join(td, label + '.out.h5')
    rc, out, err = run_overlap(exe, list(reports) + ['--json', '--h5', out_h5] + list(extra))
    if rc != 0:
        fails.append('%s: exit %d: %s' % (label, rc, err.strip()))
        return
    got = L.loads_strict(out)
    compare(label + ' json', exp, got, fails)
    compare(label + ' h5', exp, h5_as_doc(out_h5, len(runs)), fails)
    check_filters(out_h5, fails)
    rc, out, err = run_overlap(exe, reports)
    if rc != 0 or 'TOTAL' not in out:
        fails.append('%s: table: exit %d: %s' % (label, rc, err.strip()))


def scan(scan_exe, a, b, h5, fails, masks=True):
    rc, _, err = run_overlap(scan_exe, [a, b, '--h5', h5, '--quiet'] + (['--masks'] if masks
                                                                      else []))
    if rc != 0:
        fails.append('sparsity-scan %s %s: exit %d: %s' % (a, b, rc, err.strip()))


def synth(synth_exe, args, fails):
    p = subprocess.run([synth_exe] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        fails.append('ckpt-synth %r: %s' % (args, p.stderr.decode()))


def make_synth(synth_exe, scan_exe, td, fails):
    base = os.path.join(td, 'base.safetensors')
    synth(synth_exe, ['init', '--preset', 'tiny', '--layers', '2', '-o', base], fails)
    runs, reports = [], []
    for s, optim in ((1, 'adamw'), (2, 'adamw'), (3, 'sgd')):
        c = os.path.join(td, 'c%d.safetensors' % s)
        synth(synth_exe, ['update', base, '--optimizer', optim, '--seed', str(s), '-o', c], fails)
        x = os.path.join(td, 'x%d.h5' % s)
        scan(scan_exe, base, c, x, fails)
        runs.append(c)
        reports.append(x)
    return base, runs, reports


# ---- cases ------------------------------------------------------------------------------------

def case_synth(exes, td, fails):
    base, runs, reports = make_synth(exes[2], exes[1], td, fails)
    if fails:
        return
    check_run('k2', exes[0], base, runs[:2], reports[:2], td, fails)
    check_run('k3', exes[0], base, runs, reports, td, fails)


def flip(rng, bits, frac):
    out = bits.copy()
    n = out.size
    idx = rng.choice(n, size=int(n * frac), replace=False) if n else []
    out.reshape(-1)[idx] ^= 1
    return out


def case_exact(exes, td, fails):
    rng = np.random.default_rng(7)
    f32 = rng.standard_normal((8, 37)).astype(np.float32).view(np.uint32)
    f32.reshape(-1)[:4] = [0x00000000, 0x80000000, 0x7FC00001, 0x7FC00002]  # +0 -0 NaN NaN
    bf = (rng.standard_normal(15).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    f16 = rng.standard_normal(7).astype(np.float16).view(np.uint16)
    base = {'model.layers.0.self_attn.q_proj.weight': ('F32', [8, 37], f32),
            'model.layers.1.mlp.up_proj.weight': ('BF16', [3, 5], bf),
            'model.layers.1.mlp.up_proj.bias': ('BF16', [15], bf.copy()),
            'model.norm.weight': ('F16', [7], f16),
            'model.embed_tokens.weight': ('F32', [0, 4], np.zeros(0, np.uint32)),
            'model.scale': ('F32', [], np.array([0x3F800000], np.uint32)),
            'extra/odd%name': ('F32', [9], np.arange(9, dtype=np.uint32) + 0x40000000)}
    bpath = os.path.join(td, 'base.safetensors')
    L.write_st(bpath, base)
    runs, reports = [], []
    for r in range(4):
        t = {}
        for n, (dt, shape, bits) in base.items():
            nb = flip(rng, bits, [0.5, 0.3, 0.05, 0.0][r])
            if n.endswith('q_proj.weight'):
                flat = nb.reshape(-1)
                flat[0] = 0x80000000 if r % 2 else 0  # -0 vs +0: unchanged
                flat[1] = 0                             # -0 -> +0: unchanged
                flat[2] = 0x7FC00001                    # same NaN bits: unchanged
                flat[3] = 0x7FC00003 if r == 1 else 0x7FC00002  # other NaN payload in run 1
            if n == 'model.scale':
                nb = bits if r != 2 else bits + 1
            if r == 3 and n == 'model.norm.weight':
                continue  # missing from run 3: listed, skipped
            t[n] = (dt, shape, nb)
        p = os.path.join(td, 'r%d.safetensors' % r)
        L.write_st(p, t)
        x = os.path.join(td, 'r%d.h5' % r)
        scan(exes[1], bpath, p, x, fails)
        runs.append(p)
        reports.append(x)
    if fails:
        return
    check_run('exact4', exes[0], bpath, runs, reports, td, fails)
    # without run 3, model.norm.weight is compared again
    check_run('exact3', exes[0], bpath, runs[:3], reports[:3], td, fails)


def case_errors(exes, td, fails):
    base, runs, reports = make_synth(exes[2], exes[1], td, fails)
    if fails:
        return
    nomask = os.path.join(td, 'nomask.h5')
    scan(exes[1], base, runs[0], nomask, fails, masks=False)
    # a different base (another init seed) with the same layout
    base2 = os.path.join(td, 'base2.safetensors')
    synth(exes[2], ['init', '--preset', 'tiny', '--layers', '2', '--seed', '9', '-o', base2],
          fails)
    other = os.path.join(td, 'other.h5')
    scan(exes[1], base2, runs[1], other, fails)
    # a shape mismatch: hand-built pair sharing a base path
    sb = os.path.join(td, 'sb.safetensors')
    s1 = os.path.join(td, 's1.safetensors')
    L.write_st(sb, {'w': ('F32', [4, 1], np.arange(4, dtype=np.uint32))})
    L.write_st(s1, {'w': ('F32', [4, 1], np.arange(4, dtype=np.uint32) + 1)})
    sx = os.path.join(td, 'sx.h5')
    scan(exes[1], sb, s1, sx, fails)
    # same base path and size, same numel, another shape: [4, 1] vs [1, 4]
    L.write_st(sb, {'w': ('F32', [1, 4], np.arange(4, dtype=np.uint32))})
    L.write_st(s1, {'w': ('F32', [1, 4], np.arange(4, dtype=np.uint32) + 2)})

    sy = os.path.join(td, 'sy.h5')
    scan(exes[1], sb, s1, sy, fails)
    if fails:
        return
    cases = [
        ('no masks', [reports[0], nomask], 2, 'with --masks'),
        ('missing file', [reports[0], os.path.join(td, 'nope.h5')], 2, 'nope.h5'),
        ('not hdf5', [reports[0], base], 2, 'not an HDF5'),
        ('different bases', [reports[0], other], 3, 'different bases'),
        ('shape mismatch', [sx, sy], 3, "'w'"),
        ('one file', [reports[0]], 1, 'at least two'),
        ('bad option', [reports[0], reports[1], '--bogus'], 1, 'unknown'),
        ('unwritable', [reports[0], reports[1], '--h5', os.path.join(td, 'no', 'dir', 'o.h5')],
         4, 'o.h5'),
    ]
    for label, args, want, text in cases:
        rc, out, err = run_overlap(exes[0], args)
        if rc != want or text not in err or out:
            fails.append('%s: exit %d (want %d), stdout %r, stderr %r' % (label, rc, want,
                                                                         out[:100], err))
    # a folder as OUT: exit 4 and nothing left behind
    outdir = os.path.join(td, 'outdir')
    os.mkdir(outdir)
    rc, out, err = run_overlap(exes[0], [reports[0], reports[1], '--h5', outdir])
    left = [f for f in os.listdir(td) if re.match(r'outdir\.tmp', f)]
    if rc != 4 or left or out:
        fails.append('--h5 onto a folder: exit %d, left %r, stdout %r' % (rc, left, out[:100]))
    rc, out, _ = run_overlap(exes[0], ['--help'])
    for word in ('--json', '--h5', '--any-base', 'exit status', 'o1', 'Jaccard', 'Poisson'):
        if rc != 0 or word not in out:
            fails.append('--help: exit %d, lacks %r' % (rc, word))


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 1
    case = sys.argv[1]
    exes = [tool(2, 'sparsity-overlap', 'analyze'), tool(3, 'sparsity-scan', 'analyze'),
            tool(4, 'ckpt-synth', 'train')]
    for e in exes:
        if not os.access(e, os.X_OK):
            print('skip: %s not built' % e)
            return L.SKIP
    try:
        import h5py  # noqa: F401
    except ImportError:
        print('skip: h5py not importable')
        return L.SKIP
    fails = []
    with L.tempdir() as td:
        {'synth': case_synth, 'exact': case_exact, 'errors': case_errors}[case](exes, td, fails)
    L.finish('overlap_' + case, fails)


if __name__ == '__main__':
    sys.exit(main())
