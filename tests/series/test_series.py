#!/usr/bin/python3
"""`sparsity-scan --series RUN` against an independent numpy oracle (suite 'series').

Builds a run folder: a ckpt-synth tiny base (2 layers) with a +0 and a NaN planted in it, then
  step 100  AdamW-like update of the base               (snapshot against the base)
  step 200  AdamW-like update of step 100               (--chain: against step 100)
  step 300  hand-made from step 200: about half of the changed elements of every float tensor
            put back to the base bits exactly, the +0 written as -0 and the NaN kept
  step 400  SGD-like update of step 300
and computes every figure from the safetensors files in numpy (bits compared, +0 and -0 equal,
bit-identical NaNs unchanged): per-step totals against the base and against the previous step
(tolerances and the relative probe), and the never / restored / final split per tensor, per
layer x module, per module and overall. The --json report and the --h5 file (read with h5py)
must match exactly, for --threads 1 and 2.

usage: test_series.py CASE SPARSITY_SCAN CKPT_SYNTH CKPT_DELTA
  oracle   the figures above, JSON and HDF5, threads 1 vs 2, the table
  errors   A B with --series -> 1; --masks with --series -> 1; a missing run, a folder without
           base.safetensors, a run without snapshots -> 2; an unwritable --h5 -> 4, no file
Exits 0 (pass) or 1 (fail)."""

import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'oracle'))
import sslib as L  # noqa: E402

TOLS = [1e-8, 1e-5]
RTOL = 1e-3
KNOWN_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'q_norm', 'k_norm', 'gate_proj',
                 'up_proj', 'down_proj', 'input_layernorm', 'post_attention_layernorm',
                 'embed_tokens', 'norm', 'lm_head']


def run(args, expect=0, fails=None):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    if p.returncode != expect:
        msg = '%s exited %d (expected %d): %s' % (' '.join(map(str, args)), p.returncode,
                                                  expect, p.stderr.strip()[-500:])
        if fails is None:
            sys.exit('FAIL: ' + msg)
        fails.append(msg)
    return p


# ---- the oracle ----

def changed_mask(dt, a, b):
    """Exact test of docs/metrics.md: bits differ, +0 and -0 equal (identical NaNs unchanged)."""
    a = a.reshape(-1)
    b = b.reshape(-1)
    diff = a != b
    if L.is_float(dt):
        va, vb = L.decode(dt, a), L.decode(dt, b)
        diff &= ~((va == 0) & (vb == 0))
    return diff


def totals(ck_a, ck_b):
    t = {'numel': 0, 'changed': 0, 'nonfinite': 0,
         'changed_tol': {L.tol_key(x): 0 for x in TOLS}, 'changed_rtol': 0}
    for name in sorted(ck_a):
        dt, _, ba = ck_a[name]
        rec = L.expected_pair(dt, ba, ck_b[name][2], TOLS, RTOL)
        for k in ('numel', 'changed', 'nonfinite', 'changed_rtol'):
            t[k] += rec[k]
        for k, v in rec['changed_tol'].items():
            t['changed_tol'][k] += v
    t['sparsity'] = 1.0 - t['changed'] / t['numel'] if t['numel'] else 1.0
    return t


def split_of(numel, never, restored, final):
    return {'numel': numel, 'never': never, 'restored': restored, 'final': final,
            'never_fraction': never / numel if numel else 0.0,
            'restored_fraction': restored / numel if numel else 0.0,
            'final_fraction': final / numel if numel else 0.0}


def add_split(acc, s):
    for k in ('numel', 'never', 'restored', 'final'):
        acc[k] = acc.get(k, 0) + s[k]


def classify(name):
    parts = name.split('.')
    layer = -1
    for p in parts:
        if p and p.isdigit() and int(p) <= 2147483647:
            layer = int(p)
            break
    if parts[-1] in ('weight', 'bias') and len(parts) > 1:
        parts = parts[:-1]
    return layer, parts[-1]


def expected(base, cks, steps):
    exp = {'steps': [], 'tensors': {}, 'modules': {}, 'groups': {}}
    prev = base
    for s in steps:
        exp['steps'].append({'step': s, 'vs_base': totals(base, cks[s]),
                             'consecutive': totals(prev, cks[s])})
        prev = cks[s]
    total = {}
    for name in sorted(base):
        dt, _, ba = base[name]
        ever = np.zeros(ba.size, dtype=bool)
        for s in steps:
            ever |= changed_mask(dt, ba, cks[s][name][2])
        final = changed_mask(dt, ba, cks[steps[-1]][name][2])
        assert not np.any(final & ~ever)
        n = int(ba.size)
        s = split_of(n, int(n - ever.sum()), int((ever & ~final).sum()), int(final.sum()))
        layer, module = classify(name)
        exp['tensors'][name] = dict(s, layer=layer, module=module, dtype=dt)
        add_split(exp['modules'].setdefault(module, {}), s)
        add_split(exp['groups'].setdefault((layer, module), {}), s)
        add_split(total, s)
    fin = lambda d: split_of(d['numel'], d['never'], d['restored'], d['final'])  # noqa: E731
    exp['split'] = fin(total)
    exp['modules'] = {k: fin(v) for k, v in exp['modules'].items()}
    exp['groups'] = {k: fin(v) for k, v in exp['groups'].items()}
    order = [m for m in KNOWN_MODULES if m in exp['modules']]
    exp['module_order'] = order + sorted(m for m in exp['modules'] if m not in KNOWN_MODULES)
    return exp


# ---- the run folder ----

def build_run(tmp, synth, delta):
    rundir = os.path.join(tmp, 'run')
    os.makedirs(rundir)
    base = os.path.join(rundir, 'base.safetensors')
    raw = os.path.join(tmp, 'raw.safetensors')
    run([synth, 'init', '--preset', 'tiny', '--layers', '2', '--seed', '5', '-o', raw])
    ck = L.read_st(raw)
    name = 'model.embed_tokens.weight'
    dt, shape, bits = ck[name]
    bits = bits.copy()
    bits[0] = 0x0000   # +0
    bits[1] = 0x7FC1   # a NaN
    ck[name] = (dt, shape, bits)
    L.write_st(base, ck)
    files = {s: os.path.join(tmp, 's%d.safetensors' % s) for s in (100, 200, 300, 400)}
    run([synth, 'update', base, '--optimizer', 'adamw', '--seed', '11', '-o', files[100]])
    run([synth, 'update', files[100], '--optimizer', 'adamw', '--seed', '12', '-o', files[200]])
    # step 300: put about half of what changed back to the base bits
    ckb = L.read_st(base)
    ck2 = L.read_st(files[200])
    rng = np.random.default_rng(3)
    ck3 = {}
    for nm in sorted(ck2):
        dt, shape, b2 = ck2[nm]
        b3 = b2.copy()
        if L.is_float(dt):
            idx = np.nonzero(b2 != ckb[nm][2])[0]
            pick = idx[rng.random(idx.size) < 0.5]
            b3[pick] = ckb[nm][2][pick]
        ck3[nm] = (dt, shape, b3)
    b3 = ck3[name][2]
    b3[0] = 0x8000     # -0: not a change against +0
    b3[1] = 0x7FC1     # the same NaN: unchanged
    L.write_st(files[300], ck3)
    run([synth, 'update', files[300], '--optimizer', 'sgd', '--seed', '13', '-o', files[400]])
    run([delta, 'snapshot', rundir, files[100], '--step', '100'])
    run([delta, 'snapshot', rundir, files[200], '--step', '200', '--chain'])
    run([delta, 'snapshot', rundir, files[300], '--step', '300'])
    run([delta, 'snapshot', rundir, files[400], '--step', '400'])
    return rundir, base, files


# ---- comparisons ----

def cmp(where, want, got, fails):
    if want != got:
        fails.append('%s: got %r, want %r' % (where, got, want))


def check_json(doc, exp, rundir, fails):
    cmp('schema', 'sparsity-series/1', doc.get('schema'), fails)
    cmp('run', rundir, doc.get('run'), fails)
    cmp('tolerances', TOLS, doc.get('tolerances'), fails)
    cmp('rtol', RTOL, doc.get('rtol'), fails)
    cmp('nsteps', len(exp['steps']), len(doc.get('steps', [])), fails)
    for want, got in zip(exp['steps'], doc.get('steps', [])):
        cmp('step', want['step'], got.get('step'), fails)
        for side in ('vs_base', 'consecutive'):
            cmp('step %d %s' % (want['step'], side), want[side], got.get(side), fails)
    cmp('split', exp['split'], doc.get('split'), fails)
    mods = doc.get('modules', [])
    cmp('module order', exp['module_order'], [m['module'] for m in mods], fails)
    for m in mods:
        got = {k: v for k, v in m.items() if k != 'module'}
        cmp('module %s' % m['module'], exp['modules'].get(m['module']), got, fails)
    groups = {(g['layer'], g['module']): g for g in doc.get('groups', [])}
    cmp('group keys', sorted(exp['groups']), sorted(groups), fails)
    for key, g in groups.items():
        got = {k: v for k, v in g.items() if k not in ('layer', 'module', 'ntensors')}
        cmp('group %r' % (key,), exp['groups'].get(key), got, fails)
    tensors = doc.get('tensors', [])
    cmp('tensor names', sorted(exp['tensors']), [t['name'] for t in tensors], fails)
    for t in tensors:
        got = {k: v for k, v in t.items() if k != 'name'}
        cmp('tensor %s' % t['name'], exp['tensors'].get(t['name']), got, fails)


def check_h5(path, exp, rundir, fails):
    import h5py
    with h5py.File(path, 'r') as f:
        cmp('h5 schema', 'sparsity-series/1', f.attrs.get('schema'), fails)
        cmp('h5 run', rundir, f.attrs.get('run'), fails)
        cmp('h5 tolerances', TOLS, [float(x) for x in f.attrs['tolerances']], fails)
        s = f['series']
        steps = exp['steps']
        cmp('h5 step', [x['step'] for x in steps], [int(v) for v in s['step'][...]], fails)
        for side, suffix in (('vs_base', 'vs_base'), ('consecutive', 'consecutive')):
            cmp('h5 sparsity_' + suffix, [x[side]['sparsity'] for x in steps],
                [float(v) for v in s['sparsity_' + suffix][...]], fails)
            for k in ('changed', 'nonfinite', 'changed_rtol'):
                cmp('h5 %s_%s' % (k, suffix), [x[side][k] for x in steps],
                    [int(v) for v in s['%s_%s' % (k, suffix)][...]], fails)
            cmp('h5 changed_tol_' + suffix,
                [[x[side]['changed_tol'][L.tol_key(t)] for t in TOLS] for x in steps],
                s['changed_tol_' + suffix][...].tolist(), fails)
        d = s['changed_tol_vs_base']
        if d.chunks is None or d.compression != 'gzip' or not d.shuffle:
            fails.append('h5 series/changed_tol_vs_base: not chunked + shuffle + deflate')
        sp = f['split']
        got = {k: (float(sp.attrs[k]) if k.endswith('fraction') else int(sp.attrs[k]))
               for k in exp['split']}
        cmp('h5 split attrs', exp['split'], got, fails)
        names = list(sp['name'].asstr()[...])
        cmp('h5 split/name', sorted(exp['tensors']), names, fails)
        cols = {k: sp[k][...] for k in ('numel', 'never', 'restored', 'final', 'layer')}
        mods = list(sp['module'].asstr()[...])
        for i, nm in enumerate(names):
            e = exp['tensors'][nm]
            got = {k: int(cols[k][i]) for k in cols}
            got['module'] = mods[i]
            cmp('h5 split %s' % nm, {k: e[k] for k in got}, got, fails)
        lg = sp['layers']
        layers = [int(x) for x in lg['layer'][...]]
        lmods = list(lg['module'].asstr()[...])
        cmp('h5 split/layers/module', exp['module_order'], lmods, fails)
        mats = {k: lg[k][...] for k in ('numel', 'never', 'restored', 'final')}
        for li, layer in enumerate(layers):
            for mi, m in enumerate(lmods):
                e = exp['groups'].get((layer, m), {'numel': 0, 'never': 0, 'restored': 0,
                                                   'final': 0})
                got = {k: int(mats[k][li, mi]) for k in mats}
                cmp('h5 split/layers (%d, %s)' % (layer, m), {k: e[k] for k in mats}, got, fails)
        mg = f['split/modules']
        cmp('h5 split/modules/module', exp['module_order'], list(mg['module'].asstr()[...]), fails)
        for k in ('numel', 'never', 'restored', 'final'):
            cmp('h5 split/modules/' + k, [exp['modules'][m][k] for m in exp['module_order']],
                [int(v) for v in mg[k][...]], fails)


def h5_data(path):
    """Every dataset and attribute except the command line, for equality across runs."""
    import h5py
    out = {}
    with h5py.File(path, 'r') as f:
        def visit(name, obj):
            for k, v in obj.attrs.items():
                if k != 'command_line':
                    out['%s@%s' % (name, k)] = repr(v)
            if isinstance(obj, h5py.Dataset):
                out[name] = repr(obj[...].tolist())
        f.visititems(visit)
        for k, v in f.attrs.items():
            if k != 'command_line':
                out['/@' + k] = repr(v)
    return out


def case_oracle(scan, synth, delta, tmp, fails):
    rundir, base, files = build_run(tmp, synth, delta)
    steps = sorted(files)
    exp = expected(L.read_st(base), {s: L.read_st(files[s]) for s in steps}, steps)
    if exp['split']['restored'] == 0 or exp['split']['never'] == 0 or exp['split']['final'] == 0:
        fails.append('test run is degenerate: %r' % exp['split'])
    print('split: never %(never)d, restored %(restored)d, final %(final)d of %(numel)d'
          % exp['split'])
    docs, h5s = [], []
    for threads in (1, 2):
        h5 = os.path.join(tmp, 'series-%d.h5' % threads)
        p = run([scan, '--series', rundir, '--tol', L.tol_arg(TOLS), '--rtol', repr(RTOL),
                 '--json', '--quiet', '--threads', threads, '--h5', h5], fails=fails)
        if p.returncode:
            return
        doc = L.loads_strict(p.stdout)
        check_json(doc, exp, rundir, fails)
        check_h5(h5, exp, rundir, fails)
        docs.append(p.stdout)
        h5s.append(h5_data(h5))
    if docs[0] != docs[1]:
        fails.append('--json differs between --threads 1 and 2')
    if h5s[0] != h5s[1]:
        fails.append('--h5 differs between --threads 1 and 2: %r' % sorted(
            k for k in h5s[0] if h5s[0][k] != h5s[1].get(k))[:5])
    p = run([scan, '--series', rundir, '--quiet'], fails=fails)
    lines = p.stdout.splitlines()
    for s in steps:
        if not any(ln.split()[:1] == [str(s)] for ln in lines):
            fails.append('table: no row for step %d' % s)
    if not any(ln.startswith('TOTAL') for ln in lines):
        fails.append('table: no TOTAL line')


def case_errors(scan, synth, delta, tmp, fails):
    rundir = os.path.join(tmp, 'run')
    os.makedirs(rundir)
    base = os.path.join(rundir, 'base.safetensors')
    run([synth, 'init', '--preset', 'tiny', '--layers', '1', '--seed', '5', '-o', base])
    run([scan, '--series', rundir, base], expect=1, fails=fails)
    run([scan, '--series', rundir, base, base], expect=1, fails=fails)
    run([scan, base, base, '--series', rundir], expect=1, fails=fails)
    run([scan, '--series', rundir, '--masks', '--h5', os.path.join(tmp, 'm.h5')], expect=1,
        fails=fails)
    missing = os.path.join(tmp, 'no-such-run')
    p = run([scan, '--series', missing, '--quiet'], expect=2, fails=fails)
    if missing not in p.stderr:
        fails.append('missing run: message does not name it: %r' % p.stderr)
    empty = os.path.join(tmp, 'empty')
    os.makedirs(empty)
    p = run([scan, '--series', empty, '--quiet'], expect=2, fails=fails)
    if empty not in p.stderr or 'base.safetensors' not in p.stderr:
        fails.append('folder without base: message %r' % p.stderr)
    p = run([scan, '--series', rundir, '--quiet'], expect=2, fails=fails)
    if 'no snapshots' not in p.stderr:
        fails.append('run without snapshots: message %r' % p.stderr)
    s1 = os.path.join(tmp, 's1.safetensors')
    run([synth, 'update', base, '--optimizer', 'adamw', '--seed', '2', '-o', s1])
    run([delta, 'snapshot', rundir, s1, '--step', '7'])
    blocker = os.path.join(tmp, 'a-file')
    with open(blocker, 'w') as f:
        f.write('x')
    out = os.path.join(blocker, 'out.h5')
    p = run([scan, '--series', rundir, '--quiet', '--json', '--h5', out], expect=4, fails=fails)
    if p.stdout:
        fails.append('unwritable --h5: something was printed on stdout')
    if os.path.exists(out):
        fails.append('unwritable --h5: %s exists' % out)
    out = os.path.join(tmp, 'ok.h5')
    run([scan, '--series', rundir, '--quiet', '--h5', out], fails=fails)
    if not os.path.exists(out) or [n for n in os.listdir(tmp) if '.tmp.' in n]:
        fails.append('--h5: no file, or a temporary file left: %r' % os.listdir(tmp))


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    case, scan, synth, delta = sys.argv[1:5]
    fails = []
    with L.tempdir() as tmp:
        {'oracle': case_oracle, 'errors': case_errors}[case](scan, synth, delta, tmp, fails)
    L.finish('series_' + case, fails)


if __name__ == '__main__':
    main()
