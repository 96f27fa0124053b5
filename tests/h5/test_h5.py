#!/usr/bin/python3
"""Grouping by layer and module, --by-layer, the JSON "layers"/"groups" keys and the --h5 file
of sparsity-scan (suite 'h5'), against the independent oracles in h5oracle.py and
tests/oracle/sslib.py, reading the HDF5 file back with h5py (every dataset and attribute) and
h5dump.

usage: test_h5.py CASE [path/to/sparsity-scan [path/to/ckpt-synth]]   (CASE: see CASES, or 'all')
Exits 0 (pass), 1 (fail, printing what differed) or 77 (skip)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'oracle'))
sys.path.insert(0, HERE)
import h5oracle as H  # noqa: E402
import sslib as L  # noqa: E402


class Ctx:
    def __init__(self, exe, synth, td):
        self.exe = exe
        self.synth = synth
        self.td = td
        self.fails = []
        self.rng = np.random.default_rng(11)
        rc, out, _ = L.run(exe, ['--version'])
        self.version = out.split()[-1] if rc == 0 and out.split() else '?'

    def path(self, *p):
        return os.path.join(self.td, *p)

    def fail(self, msg):
        self.fails.append(msg)

    def run(self, args, **kw):
        return L.run(self.exe, args, **kw)

    def need_synth(self):
        if not self.synth or not os.access(self.synth, os.X_OK):
            print('skip: ckpt-synth not built (%r)' % self.synth)
            sys.exit(L.SKIP)

    def synth_run(self, args):
        p = subprocess.run([self.synth] + [str(a) for a in args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120)
        if p.returncode != 0:
            raise RuntimeError('ckpt-synth %r: exit %d: %s' % (args, p.returncode, p.stderr.decode()))


def leftovers(folder, base):
    """Temporary files "<base>.tmp.*" left in folder."""
    return [f for f in os.listdir(folder) if f.startswith(base + '.tmp.')]


def check_scan(ctx, label, pa, pb, tols, rtol=None, regex=None, extra=(), skip_mismatched=False):
    """Runs the scan with --json and --h5 and compares both with the oracles. Returns the oracle's
    (report, groups) or None."""
    out_h5 = ctx.path(label.replace(' ', '_').replace('/', '_') + '.h5')
    args = [pa, pb, '--tol', L.tol_arg(tols), '--h5', out_h5, '--json', '--quiet'] + list(extra)
    if rtol is not None:
        args += ['--rtol', repr(rtol)]
    if regex is not None:
        args += ['--group-regex', regex]
    if skip_mismatched:
        args += ['--skip-mismatched']
    rc, out, err = ctx.run(args)
    if rc != 0:
        ctx.fail('%s: exit %d: %s' % (label, rc, err.strip()))
        return None
    try:
        got = L.loads_strict(out)
    except ValueError as e:
        ctx.fail('%s: stdout is not JSON: %s' % (label, e))
        return None
    A = L.read_checkpoint(pa)
    B = L.read_checkpoint(pb)
    rep = L.expected_report(A, B, tols, rtol=rtol, skip_mismatched=skip_mismatched)
    g = H.expected_groups(rep, tols, rtol, regex)
    diffs = L.compare_report(rep, got, rtol=rtol, paths=(pa, pb))
    diffs += H.compare_json_groups(rep, g, got, rtol, regex)
    exp_ds, exp_at = H.expected_h5(rep, g, tols, rtol, (pa, pb),
                                   (H.input_bytes(pa), H.input_bytes(pb)), ctx.version, regex)
    if not os.path.exists(out_h5):
        diffs.append('no HDF5 file at %s' % out_h5)
    else:
        cmd = ' '.join(shlex.quote(a) for a in [ctx.exe] + [str(x) for x in args])
        _, got_at = H.compare_h5(out_h5, exp_ds, exp_at, diffs)
        cl = got_at.get(('/', 'command_line'), (None, ''))[1]
        if shlex.split(cl) != [ctx.exe] + [str(x) for x in args]:
            diffs.append('command_line %r does not split back into the arguments %r' % (cl, cmd))
    left = leftovers(ctx.td, os.path.basename(out_h5))
    if left:
        diffs.append('temporary files left: %r' % left)
    for d in diffs:
        ctx.fail('%s: %s' % (label, d))
    return rep, g


def t(dt, shape, bits):
    return (dt, list(shape), np.asarray(bits, dtype=L.storage(dt)).reshape(-1))


def bf16(rng, shape, scale=0.02):
    n = int(np.prod(shape)) if shape else 1
    return t('BF16', shape, L.f32_to_bf16_bits((rng.standard_normal(n) * scale).astype(np.float32)))


def bump(tensor, frac, rng):
    """A copy with about frac of the elements moved by one or two ULPs."""
    dt, shape, bits = tensor
    b = bits.copy()
    n = b.size
    k = int(round(frac * n))
    if k:
        idx = rng.choice(n, size=k, replace=False)
        b[idx] = b[idx] + rng.integers(1, 3, size=k).astype(b.dtype)
    return (dt, shape, b)


def odd_names(rng):
    """name -> (A tensor, B tensor or None): HF, GPT-2 and made-up names, MoE experts, 0-d, 3-D,
    empty and UTF-8 tensors, huge and zero-padded numbers, an all-zero A."""
    P = {}

    def add(name, shape, frac, dt='BF16'):
        if dt == 'BF16':
            a = bf16(rng, shape)
        elif dt == 'F32':
            n = int(np.prod(shape)) if shape else 1
            a = t('F32', shape, (rng.standard_normal(n).astype(np.float32) * 0.1).view(np.uint32))
        else:
            a = t(dt, shape, rng.integers(0, 100, size=int(np.prod(shape))))
        P[name] = (a, bump(a, frac, rng))

    add('model.embed_tokens.weight', [32, 8], 0.05)
    add('lm_head.weight', [32, 8], 0.2)
    add('model.norm.weight', [8], 0.0)
    add('model.layers.0.self_attn.q_proj.weight', [8, 8], 0.3)
    add('model.layers.0.self_attn.q_proj.bias', [8], 0.5)
    add('model.layers.0.self_attn.k_proj.weight', [4, 8], 0.1)
    add('model.layers.0.input_layernorm.weight', [8], 0.0)
    add('model.layers.0.empty.weight', [0, 4], 0.0)
    add('model.layers.0.counter', [3], 0.34, dt='I32')
    add('model.layers.0.\u00fcn\u00efc\u00f6de.weight', [4, 4], 0.25)
    for e, frac in enumerate((0.0, 0.25, 0.75)):
        add('model.layers.1.mlp.experts.%d.down_proj.weight' % e, [4, 8], frac)
        add('model.layers.1.mlp.experts.%d.up_proj.weight' % e, [8, 4], frac / 3)
    add('model.layers.1.self_attn.o_proj.weight', [8, 8], 0.0)
    add('model.layers.10.mlp.gate_proj.weight', [6, 8], 0.5)
    add('transformer.wte.weight', [16, 8], 0.1)
    add('transformer.h.2.attn.c_attn.weight', [8, 24], 0.2)
    add('transformer.h.2.attn.c_attn.bias', [24], 0.0)
    add('transformer.h.2.ln_1.weight', [8], 1.0)
    add('encoder.block.03.conv.weight', [4, 4, 3], 0.2, dt='F32')
    add('scale', [], 1.0, dt='F32')
    add('weight', [2, 2], 0.5)
    add('big.99999999999.weight', [4, 4], 0.5)
    add('x.2147483647.y', [2, 3], 0.5)
    add('x.2147483648.y.3.z', [3, 2], 0.5)
    z = t('BF16', [4, 4], np.zeros(16))
    P['model.layers.2.zero.weight'] = (z, bump(z, 0.5, rng))
    P['model.layers.5.only_a.weight'] = (bf16(rng, [2, 2]), None)
    return P


def write_pair(ctx, name, P, extra_b=None, mismatched=None):
    A = {k: v[0] for k, v in P.items()}
    B = {k: v[1] for k, v in P.items() if v[1] is not None}
    if extra_b:
        B.update(extra_b)
    if mismatched:
        for k, (ta, tb) in mismatched.items():
            A[k] = ta
            B[k] = tb
    pa = ctx.path(name + '-a.safetensors')
    pb = ctx.path(name + '-b.safetensors')
    L.write_st(pa, A)
    L.write_st(pb, B)
    return pa, pb


# ---------------------------------------------------------------------------------------------

def case_synth(ctx):
    """ckpt-synth tiny (single file) and a small sharded folder: SGD- and AdamW-like updates."""
    ctx.need_synth()
    base = ctx.path('tiny.safetensors')
    ctx.synth_run(['init', '-o', base, '--preset', 'tiny', '--seed', '3'])
    for opt in ('sgd', 'adamw'):
        child = ctx.path('tiny-%s.safetensors' % opt)
        ctx.synth_run(['update', base, '-o', child, '--optimizer', opt, '--seed', '4'])
        r = check_scan(ctx, 'tiny %s' % opt, base, child, [1e-5, 1e-8], rtol=1e-3)
        if r and opt == 'sgd':
            rep, g = r
            if [x['layer'] for x in g['layers']] != [-1, 0, 1]:
                ctx.fail('tiny: layers %r (oracle) should be [-1, 0, 1]' % [x['layer'] for x in g['layers']])
            if g['layers_nmatrices'] != 14:
                ctx.fail('tiny: %d matrices in the layers, expected 2 x 7' % g['layers_nmatrices'])
    small = ctx.path('small')
    ctx.synth_run(['init', '-o', small, '--preset', 'tiny', '--layers', '4', '--hidden', '96',
                   '--intermediate', '160', '--heads', '6', '--kv-heads', '2', '--head-dim', '16',
                   '--vocab', '300', '--tied', '--shard-size', '60K', '--seed', '5'])
    child = ctx.path('small-adamw')
    ctx.synth_run(['update', small, '-o', child, '--optimizer', 'adamw', '--stripes',
                   '--shard-size', '60K', '--seed', '6'])
    r = check_scan(ctx, 'small sharded adamw', small, child, [1e-5])
    if r:
        rep, g = r
        if len(g['layers']) != 5 or 'lm_head' in g['modules']:
            ctx.fail('small: oracle sees layers %r modules %r' % (
                [x['layer'] for x in g['layers']], g['modules']))


def case_names(ctx):
    """Odd names under the default rule, with one-sided and mismatched tensors."""
    P = odd_names(ctx.rng)
    mism = {'model.layers.0.mism.weight': (bf16(ctx.rng, [4, 4]), bf16(ctx.rng, [2, 8]))}
    extra = {'model.layers.6.only_b.weight': bf16(ctx.rng, [2, 2])}
    pa, pb = write_pair(ctx, 'names', P, extra_b=extra, mismatched=mism)
    r = check_scan(ctx, 'odd names', pa, pb, [0.0, 1e-5, 1e-3], rtol=1e-3, skip_mismatched=True)
    if not r:
        return
    rep, g = r
    want = {  # spot checks of the rule itself, independent of the oracle's code path
        'transformer.h.2.attn.c_attn.bias': (2, 'c_attn'), 'scale': (-1, 'scale'),
        'weight': (-1, 'weight'), 'big.99999999999.weight': (-1, '99999999999'),
        'x.2147483647.y': (2147483647, 'y'), 'x.2147483648.y.3.z': (3, 'z'),
        'encoder.block.03.conv.weight': (3, 'conv'), 'model.norm.weight': (-1, 'norm'),
        'model.layers.1.mlp.experts.2.down_proj.weight': (1, 'down_proj'),
        'lm_head.weight': (-1, 'lm_head'),
    }
    for r_ in rep['tensors']:
        if r_['name'] in want and (r_['layer'], r_['module']) != want[r_['name']]:
            ctx.fail('oracle grouping of %r: %r, expected %r' % (
                r_['name'], (r_['layer'], r_['module']), want[r_['name']]))
    cell = [c for c in g['cells'] if c['layer'] == 1 and c['module'] == 'down_proj']
    if not cell or cell[0]['nmatrices'] != 3:
        ctx.fail('MoE cell (1, down_proj) should hold 3 matrices: %r' % cell)


REGEXES = [
    # attention vs MLP per layer; norms and the rest fall back to the default rule
    r'^model\.layers\.([0-9]+)\.(self_attn|mlp)\.',
    # group 1 empty (layer -1); the second alternative's groups are 3 and 4, so its matches
    # leave groups 1 and 2 out and fall back to the default rule
    r'^transformer\.()(wte)\.|^transformer\.h\.([0-9]+)\.(attn)',
    # group 1 not a number for encoder.* -> default rule; group 2 empty for lm_head -> default
    r'^(encoder|model\.layers\.1)\.([a-z]*)|^lm_head()(x*)',
    # a layer number beyond the limit -> default rule; zero-padded numbers parse
    r'^[a-z]+\.([0-9]+)\.([a-z]+)',
]


def case_regex(ctx):
    """--group-regex: matches, fallbacks, empty and non-numeric groups, extra groups."""
    P = odd_names(ctx.rng)
    pa, pb = write_pair(ctx, 'regex', P)
    for i, rx in enumerate(REGEXES):
        check_scan(ctx, 'regex %d' % i, pa, pb, [1e-5], rtol=None if i % 2 else 1e-3, regex=rx)
    # a regex that matches nothing groups exactly like the default rule (apart from the attribute)
    rc1, o1, e1 = ctx.run([pa, pb, '--json', '--quiet', '--group-regex', '^(zz)(zz)$'])
    rc2, o2, e2 = ctx.run([pa, pb, '--json', '--quiet'])
    if rc1 or rc2:
        ctx.fail('no-match regex: exit %d / %d (%s %s)' % (rc1, rc2, e1.strip(), e2.strip()))
    else:
        j1, j2 = L.loads_strict(o1), L.loads_strict(o2)
        j1.pop('group_regex', None)
        if j1 != j2:
            ctx.fail('a regex matching nothing changed the report')


def case_errors(ctx):
    """Bad --group-regex -> exit 1; unwritable --h5 -> exit 4, a message naming it, no file."""
    P = {'model.layers.0.mlp.up_proj.weight': (bf16(ctx.rng, [4, 4]), None)}
    P['model.layers.0.mlp.up_proj.weight'] = (P['model.layers.0.mlp.up_proj.weight'][0],
                                              bump(P['model.layers.0.mlp.up_proj.weight'][0], 0.5, ctx.rng))
    pa, pb = write_pair(ctx, 'err', P)
    bad = [('(unclosed', 'compile'), ('[z-a]', 'compile'), ('layers\\.([0-9]+)', 'two'),
           ('no groups', 'two'), ('a{1', 'compile')]
    for rx, why in bad:
        rc, out, err = ctx.run([pa, pb, '--group-regex', rx, '--h5', ctx.path('never.h5')])
        label = '--group-regex %r' % rx
        if rc != 1:
            ctx.fail('%s: exit %d, expected 1 (%r)' % (label, rc, err.strip()))
        if '--group-regex' not in err or rx not in err or why not in err:
            ctx.fail('%s: message should name the option, the pattern and why: %r' % (label, err))
        if not re.search(r'--help', err) or out:
            ctx.fail('%s: expected a usage hint on stderr and nothing on stdout (%r, %r)' % (
                label, err, out))
    rc, out, err = ctx.run([pa, pb, '--h5', ''])
    if rc != 1:
        ctx.fail("--h5 '': exit %d, expected 1" % rc)
    if os.path.exists(ctx.path('never.h5')):
        ctx.fail('a usage error wrote the HDF5 file')

    afile = ctx.path('plainfile')
    with open(afile, 'w') as f:
        f.write('x')
    adir = ctx.path('adir')
    os.mkdir(adir)
    with open(os.path.join(adir, 'keep'), 'w') as f:
        f.write('keep')
    for target in (ctx.path('missing', 'out.h5'), os.path.join(afile, 'out.h5'), adir):
        for fmt in ([], ['--json']):
            rc, out, err = ctx.run([pa, pb, '--h5', target, '--quiet'] + fmt)
            label = '--h5 %s %s' % (os.path.relpath(target, ctx.td), ' '.join(fmt))
            if rc != 4:
                ctx.fail('%s: exit %d, expected 4 (%r)' % (label, rc, err.strip()))
            lines = [x for x in err.splitlines() if x.strip()]
            if len(lines) != 1 or target not in err:
                ctx.fail('%s: expected one stderr line naming %s, got %r' % (label, target, err))
            if out:
                ctx.fail('%s: a failed --h5 printed a report: %r' % (label, out[:200]))
            folder = os.path.dirname(target)
            if os.path.isdir(folder) and leftovers(folder, os.path.basename(target)):
                ctx.fail('%s: temporary files left: %r' % (
                    label, leftovers(folder, os.path.basename(target))))
    if os.path.exists(ctx.path('missing')) or not os.path.isdir(adir) \
            or os.listdir(adir) != ['keep']:
        ctx.fail('a failed --h5 changed the file system: %r' % os.listdir(ctx.td))
    # an existing file at OUT is replaced whole
    out_h5 = ctx.path('replace.h5')
    with open(out_h5, 'w') as f:
        f.write('old contents')
    rc, out, err = ctx.run([pa, pb, '--h5', out_h5, '--quiet'])
    if rc != 0:
        ctx.fail('replacing an existing file: exit %d (%r)' % (rc, err.strip()))
    else:
        with open(out_h5, 'rb') as f:
            if f.read(8) != b'\x89HDF\r\n\x1a\n':
                ctx.fail('the existing file was not replaced by an HDF5 file')


def case_threads(ctx):
    """The HDF5 content (every dataset and attribute but command_line) is identical for
    --threads 1 and 2, and h5dump prints the same apart from the file name and command line."""
    P = odd_names(ctx.rng)
    pa, pb = write_pair(ctx, 'thr', P)
    files = []
    for th in ('1', '2'):
        out_h5 = ctx.path('t%s.h5' % th)
        rc, out, err = ctx.run([pa, pb, '--h5', out_h5, '--threads', th, '--rtol', '1e-3',
                                '--tol', '0,1e-5', '--quiet'])
        if rc != 0:
            ctx.fail('--threads %s: exit %d (%r)' % (th, rc, err.strip()))
            return
        files.append(out_h5)
    (d1, a1, g1), (d2, a2, g2) = H.read_h5(files[0]), H.read_h5(files[1])
    a1.pop(('/', 'command_line'))
    a2.pop(('/', 'command_line'))
    if set(d1) != set(d2) or set(a1) != set(a2) or g1 != g2:
        ctx.fail('--threads 1 vs 2: different objects')
        return
    for p in d1:
        v1, v2 = d1[p][1], d2[p][1]
        same = v1 == v2 if isinstance(v1, list) else np.array_equal(v1, v2, equal_nan=v1.dtype.kind == 'f')
        if not same or d1[p][0] != d2[p][0] or d1[p][2] != d2[p][2]:
            ctx.fail('--threads 1 vs 2: dataset %s differs' % p)
    for k in a1:
        v1, v2 = a1[k][1], a2[k][1]
        if isinstance(v1, np.ndarray) or isinstance(v2, np.ndarray):
            same = np.array_equal(np.asarray(v1), np.asarray(v2),
                                  equal_nan=np.asarray(v1).dtype.kind == 'f')
        else:
            same = v1 == v2 or (v1 != v1 and v2 != v2)
        if not same or a1[k][0] != a2[k][0]:
            ctx.fail('--threads 1 vs 2: attribute %s:%s differs (%r vs %r)' % (k[0], k[1], v1, v2))
    h5dump = shutil.which('h5dump')
    if h5dump:
        outs = []
        for fpath in files:
            p = subprocess.run([h5dump, fpath], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            text = p.stdout.decode('utf-8', 'replace').replace(fpath, 'FILE')
            text = re.sub(r'ATTRIBUTE "command_line" \{.*?\n   \}\n', '', text, flags=re.S)
            outs.append(text)
        if outs[0] != outs[1]:
            ctx.fail('h5dump output differs between --threads 1 and 2')


def case_h5dump(ctx):
    """h5dump (HDF5's own tool) reads the whole file, and sees the shuffle and deflate filters."""
    h5dump = shutil.which('h5dump')
    if not h5dump:
        print('skip: h5dump not installed (Debian package hdf5-tools)')
        sys.exit(L.SKIP)
    P = odd_names(ctx.rng)
    pa, pb = write_pair(ctx, 'dump', P)
    out_h5 = ctx.path('dump.h5')
    rc, out, err = ctx.run([pa, pb, '--h5', out_h5, '--rtol', '1e-3', '--quiet'])
    if rc != 0:
        ctx.fail('exit %d (%r)' % (rc, err.strip()))
        return
    p = subprocess.run([h5dump, out_h5], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    text = p.stdout.decode('utf-8', 'replace')
    if p.returncode != 0 or p.stderr.strip():
        ctx.fail('h5dump: exit %d, stderr %r' % (p.returncode, p.stderr[:300]))
    for s in ('GROUP "tensors"', 'GROUP "layers"', 'GROUP "totals"', 'DATASET "name"',
              '"model.layers.1.mlp.experts.2.down_proj.weight"', 'sparsity-scan/1',
              'DATASET "layer_least_sparse_module"'):
        if s not in text:
            ctx.fail('h5dump output lacks %r' % s)
    p = subprocess.run([h5dump, '-p', '-H', '-d', '/tensors/sparsity', out_h5],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    props = p.stdout.decode('utf-8', 'replace')
    for s in ('CHUNKED', 'SHUFFLE', 'DEFLATE'):
        if s not in props:
            ctx.fail('h5dump -p: /tensors/sparsity lacks %s' % s)


def by_layer_rows(out):
    rows = {}
    for line in out.splitlines():
        m = re.match(r'\s*(-?\d+)\s+(\d+)\s+(\d+)\s+(>99\.9999%|[\d.]+%)\s+(>99\.9999%|[\d.]+%|-)'
                     r'\s+(\d+)\s+(\d+)\s+(\S+) \((>99\.9999%|[\d.]+%)\)\s*$', line)
        if m:
            rows[int(m.group(1))] = m.groups()[1:]
    return rows


def pct(x):
    if x is None:
        return '-'
    if x < 1 and 100 * x >= 99.99995:
        return '>99.9999%'
    return '%.4f%%' % (100 * x)


def case_by_layer(ctx):
    """--by-layer rows against the oracle; the default table keeps its columns."""
    P = odd_names(ctx.rng)
    pa, pb = write_pair(ctx, 'byl', P)
    rc, out, err = ctx.run([pa, pb, '--by-layer', '--quiet'])
    if rc != 0:
        ctx.fail('--by-layer: exit %d (%r)' % (rc, err.strip()))
        return
    rep = L.expected_report(L.read_checkpoint(pa), L.read_checkpoint(pb), [1e-5])
    g = H.expected_groups(rep, [1e-5], None)
    rows = by_layer_rows(out)
    if sorted(rows) != [x['layer'] for x in g['layers']]:
        ctx.fail('--by-layer: rows for layers %r, expected %r\n%s' % (
            sorted(rows), [x['layer'] for x in g['layers']], out))
    for x in g['layers']:
        r = rows.get(x['layer'])
        if r is None:
            continue
        least = [c for c in g['cells'] if c['layer'] == x['layer'] and c['module'] == x['least_sparse_module']][0]
        want = (str(x['ntensors']), str(x['nmatrices']), pct(x['sparsity']),
                pct(x['mean_matrix_sparsity']), str(x['changed']), str(x['numel']),
                x['least_sparse_module'], pct(least['sparsity']))
        if tuple(r) != want:
            ctx.fail('--by-layer layer %d: got %r expected %r' % (x['layer'], r, want))
    tot = [ln for ln in out.splitlines() if ln.strip().startswith('TOTAL')]
    if len(tot) != 1 or pct(g['layers_mean_matrix_sparsity']) not in tot[0] \
            or pct(rep['totals']['sparsity']) not in tot[0]:
        ctx.fail('--by-layer: totals line %r' % tot)
    # the default table: unchanged header and one row per tensor
    rc, out, err = ctx.run([pa, pb, '--quiet'])
    hdr = [ln for ln in out.splitlines() if ln.lstrip().startswith('sparsity')]
    if rc != 0 or len(hdr) != 1 or 'layer' in hdr[0] or not hdr[0].rstrip().endswith('name'):
        ctx.fail('default table header changed: %r' % hdr)
    # --json takes precedence
    rc, out, err = ctx.run([pa, pb, '--by-layer', '--json', '--quiet'])
    try:
        ok = rc == 0 and 'groups' in L.loads_strict(out)
    except ValueError:
        ok = False
    if not ok:
        ctx.fail('--by-layer --json: expected the JSON report (exit %d)' % rc)
    # --help documents the options
    rc, out, err = ctx.run(['--help'])
    for o in ('--by-layer', '--group-regex', '--h5'):
        if o not in out:
            ctx.fail('--help does not mention %s' % o)
    # with a regex the view says so
    rc, out, err = ctx.run([pa, pb, '--by-layer', '--quiet', '--group-regex', REGEXES[0]])
    if rc != 0 or REGEXES[0] not in out:
        ctx.fail('--by-layer --group-regex: exit %d, regex not shown' % rc)


def case_empty(ctx):
    """No shared tensors, and only scalars: zero-length datasets, layers 0 x 0 or 1 x 1."""
    rng = ctx.rng
    pa, pb = write_pair(ctx, 'disjoint', {'a.0.weight': (bf16(rng, [2, 2]), None)},
                        extra_b={'b.1.weight': bf16(rng, [2, 2])})
    r = check_scan(ctx, 'disjoint', pa, pb, [1e-5])
    if r and (r[1]['layers'] or r[0]['tensors']):
        ctx.fail('disjoint: the oracle should see no tensors')
    s = t('F32', [], np.array([1.5], dtype=np.float32).view(np.uint32))
    s2 = t('F32', [], np.array([2.5], dtype=np.float32).view(np.uint32))
    pa, pb = write_pair(ctx, 'scalars', {'s.0.weight': (s, s2), 'u': (s, s)})
    check_scan(ctx, 'scalars', pa, pb, [1e-5, 0.5], rtol=0.0)


CASES = {
    'synth': case_synth, 'names': case_names, 'regex': case_regex, 'errors': case_errors,
    'threads': case_threads, 'h5dump': case_h5dump, 'by_layer': case_by_layer, 'empty': case_empty,
}


def main():
    if len(sys.argv) < 2 or (sys.argv[1] not in CASES and sys.argv[1] != 'all'):
        print('usage: test_h5.py CASE [sparsity-scan [ckpt-synth]]; CASE one of: all %s'
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
    names = list(CASES) if sys.argv[1] == 'all' else [sys.argv[1]]
    bad = 0
    for name in names:
        with L.tempdir() as td:
            ctx = Ctx(exe, synth, td)
            try:
                CASES[name](ctx)
            except SystemExit:
                raise
            except Exception as e:  # a crash of the test is a failure with its reason
                import traceback
                traceback.print_exc()
                ctx.fail('exception: %r' % e)
            for f in ctx.fails[:60]:
                print('  - %s' % f)
            if len(ctx.fails) > 60:
                print('  ... and %d more' % (len(ctx.fails) - 60))
            print('h5_%s: %s' % (name, 'FAIL' if ctx.fails else 'ok'))
            bad += bool(ctx.fails)
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
