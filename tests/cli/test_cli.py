#!/usr/bin/python3
"""Command-line tests of sparsity-scan (suite 'cli'): exit statuses, messages, the table, the
JSON schema, stdout/stderr discipline and the progress bar.

usage: test_cli.py CASE [path/to/sparsity-scan]      (CASE: one of CASES below, or 'all')
Exits 0 (pass), 1 (fail, printing what differed) or 77 (skip)."""

import json
import os
import re
import shutil
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'oracle'))
import gen  # noqa: E402
import sslib as L  # noqa: E402

OPTIONS = ['--tol', '--rtol', '--json', '--threads', '--quiet', '--skip-mismatched', '--top',
           '--by-layer', '--group-regex', '--h5', '--masks', '--delta-dtype']
# Schema sparsity-scan/1 as issue 2 fixed it, plus the keys the grouping added (keys are only
# ever added, never removed or renamed).
TOP_KEYS = {'schema', 'a', 'b', 'tolerances', 'totals', 'tensors', 'only_in_a', 'only_in_b',
            'mismatched', 'layers_nmatrices', 'layers_mean_matrix_sparsity', 'layers', 'groups'}
TENSOR_KEYS = {'name', 'dtype', 'shape', 'numel', 'changed', 'sparsity', 'nonfinite',
               'changed_tol', 'max_abs_delta', 'l2_delta', 'rel_l2_delta', 'layer', 'module'}
TOTAL_KEYS = {'numel', 'changed', 'sparsity', 'nonfinite', 'changed_tol', 'max_abs_delta',
              'l2_delta', 'rel_l2_delta'}


class Ctx:
    def __init__(self, exe, td):
        self.exe = exe
        self.td = td
        self.fails = []
        self.notes = []
        self.rng = np.random.default_rng(5)

    def path(self, *p):
        return os.path.join(self.td, *p)

    def fail(self, msg):
        self.fails.append(msg)

    def run(self, args, **kw):
        return L.run(self.exe, args, **kw)

    def pair(self, name='pair', tensors=None):
        """Writes a small A/B pair; returns their paths and the checkpoints."""
        if tensors is None:
            tensors = simple_tensors(self.rng)
        A = {k: v[0] for k, v in tensors.items()}
        B = {k: v[1] for k, v in tensors.items() if v[1] is not None}
        pa = self.path(name + '-a.safetensors')
        pb = self.path(name + '-b.safetensors')
        L.write_st(pa, A)
        L.write_st(pb, B)
        return pa, pb, A, B


def t(dt, shape, bits):
    return (dt, list(shape), np.asarray(bits, dtype=L.storage(dt)).reshape(-1))


def simple_tensors(rng):
    """name -> (A tensor, B tensor): tensors of distinct sparsities."""
    n = 200
    base = L.f32_to_bf16_bits((rng.standard_normal(n) * 0.02).astype(np.float32))
    out = {}
    for name, frac in (('t.dense', 1.0), ('t.half', 0.5), ('t.few', 0.1), ('t.none', 0.0)):
        b = base.copy()
        k = int(frac * n)
        b[:k] = b[:k] + np.uint16(1)
        out[name] = (t('BF16', [10, 20], base), t('BF16', [10, 20], b))
    out['t.int'] = (t('I32', [5], [1, 2, 3, 4, 5]), t('I32', [5], [1, 2, 3, 4, 6]))
    return out


def one_line(ctx, label, err, must_contain):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if len(lines) != 1:
        ctx.fail('%s: expected exactly one stderr line, got %d: %r' % (label, len(lines), err))
    for s in must_contain:
        if s not in err:
            ctx.fail('%s: stderr should name %r, got %r' % (label, s, err.strip()))


# ---------------------------------------------------------------------------------------------

def case_usage(ctx):
    pa, pb, _, _ = ctx.pair()
    bad = [
        [], [pa], [pa, pb, pb], [pa, pb, '--bogus'], [pa, pb, '-x'],
        [pa, pb, '--tol', 'abc'], [pa, pb, '--tol', '-1'], [pa, pb, '--tol', ''],
        [pa, pb, '--tol', 'nan'], [pa, pb, '--tol', 'inf'], [pa, pb, '--tol', '1e-5,abc'],
        [pa, pb, '--tol', '1e-5,1e-05'],  # same %g key twice
        [pa, pb, '--tol'], [pa, pb, '--rtol', 'abc'], [pa, pb, '--rtol', '-1'],
        [pa, pb, '--rtol', 'nan'], [pa, pb, '--threads', 'abc'], [pa, pb, '--threads', '-1'],
        [pa, pb, '--threads', '1.5'], [pa, pb, '--top', 'x'], [pa, pb, '--top', '-3'],
        [pa, pb, '--json=yes'],
    ]
    for args in bad:
        rc, out, err = ctx.run(args)
        label = 'args %r' % [os.path.basename(a) if a in (pa, pb) else a for a in args]
        if rc != 1:
            ctx.fail('%s: expected exit 1 (usage), got %d; stderr %r' % (label, rc, err.strip()))
            continue
        if not re.search(r'usage|--help', err, re.I):
            ctx.fail('%s: exit 1 but stderr has no usage line (%r)' % (label, err.strip()))
        if out.strip():
            ctx.fail('%s: usage error printed on stdout: %r' % (label, out[:200]))
    # more than 16 tolerances: either all counted or a usage error
    many = ','.join('%g' % (10.0 ** -k) for k in range(1, 18))
    rc, out, err = ctx.run([pa, pb, '--tol', many, '--json', '--quiet'])
    if rc == 0:
        keys = L.loads_strict(out)['totals']['changed_tol']
        if len(keys) != 17:
            ctx.fail('17 tolerances: exit 0 but %d keys' % len(keys))
    elif rc != 1:
        ctx.fail('17 tolerances: expected exit 0 or 1, got %d (%r)' % (rc, err.strip()))
    # accepted forms: options before the positionals, --threads 0 (all cores), --opt=value
    good = [['--json', '--threads', '1', pa, pb], [pa, pb, '--threads', '0', '--json'],
            [pa, pb, '--tol=1e-3', '--json'], [pa, '--quiet', pb, '--top', '0'],
            [pa, pb, '--tol', '0', '--rtol', '0', '--json']]
    for args in good:
        rc, out, err = ctx.run(args)
        if rc != 0:
            ctx.fail('args %r: expected exit 0, got %d (%r)' % (args, rc, err.strip()))


def case_help(ctx):
    for flag in ('--help', '-h'):
        rc, out, err = ctx.run([flag])
        if rc != 0:
            ctx.fail('%s: exit %d' % (flag, rc))
        text = out + err
        if not out.strip():
            ctx.fail('%s: help should go to stdout' % flag)
        for o in OPTIONS + ['--version']:
            if o not in text:
                ctx.fail('%s: does not mention %s' % (flag, o))
        m = re.search(r'exit', text, re.I)
        if not m:
            ctx.fail('%s: does not describe exit statuses' % flag)
        else:
            tail = text[m.start():]
            for code in '01234':
                if not re.search(r'\b%s\b' % code, tail):
                    ctx.fail('%s: exit status %s not described' % (flag, code))
    # --help wins over missing positionals and is not an error with them either
    rc, out, err = ctx.run(['a', 'b', '--help'])
    if rc != 0:
        ctx.fail('A B --help: exit %d' % rc)


def case_version(ctx):
    rc, out, err = ctx.run(['--version'])
    if rc != 0:
        ctx.fail('--version: exit %d' % rc)
    want = None
    src = os.environ.get('SS_SOURCE_DIR')
    if src and os.path.exists(os.path.join(src, 'meson.build')):
        m = re.search(r"version:\s*'([^']+)'", open(os.path.join(src, 'meson.build')).read())
        want = m.group(1) if m else None
    if want and want not in out:
        ctx.fail('--version: %r does not contain the project version %s' % (out.strip(), want))
    if not re.search(r'\d+\.\d+', out):
        ctx.fail('--version: no version number in %r' % out.strip())
    if len(out.strip().splitlines()) != 1:
        ctx.fail('--version: expected one line, got %r' % out)


def case_missing_file(ctx):
    pa, pb, _, _ = ctx.pair()
    missing = ctx.path('no-such-file.safetensors')
    for args, name in (([missing, pb], missing), ([pa, missing], missing),
                       ([ctx.path('no-such-dir') + '/', pb], ctx.path('no-such-dir'))):
        rc, out, err = ctx.run(args + ['--quiet'])
        if rc != 2:
            ctx.fail('missing %s: expected exit 2, got %d (%r)' % (name, rc, err.strip()))
        one_line(ctx, 'missing %s' % os.path.basename(name), err, [name])
        if out.strip():
            ctx.fail('missing %s: stdout not empty: %r' % (name, out[:200]))
    # an empty folder: neither an index nor model.safetensors
    d = ctx.path('empty-folder')
    os.makedirs(d)
    rc, out, err = ctx.run([d, pb])
    if rc != 2:
        ctx.fail('empty folder: expected exit 2, got %d (%r)' % (rc, err.strip()))
    one_line(ctx, 'empty folder', err, [d])
    # unreadable (permission) file: only meaningful when not root
    if os.geteuid() != 0:
        p = ctx.path('noperm.safetensors')
        shutil.copy(pa, p)
        os.chmod(p, 0)
        rc, out, err = ctx.run([p, pb])
        if rc != 2:
            ctx.fail('unreadable file: expected exit 2, got %d' % rc)
        one_line(ctx, 'unreadable file', err, [p])


def raw_st(header, data=b'', pad=True, hlen=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        h += b' ' * ((8 - len(h) % 8) % 8)
    return struct.pack('<Q', len(h) if hlen is None else hlen) + h + data


def case_malformed(ctx):
    _, pb, _, _ = ctx.pair()
    good = {'w': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]}}
    cases = {
        'empty': b'',
        'short': b'\x05\x00\x00',
        'hlen-beyond-eof': raw_st(good, b'\0' * 8, hlen=1 << 20),
        'hlen-huge': raw_st(good, b'\0' * 8, hlen=(1 << 63) + 5),
        'not-json': raw_st(b'{"w": {"dtype": "F32", ', b'\0' * 8),
        'json-array': raw_st(b'[1, 2, 3]'),
        'unknown-dtype': raw_st({'w': {'dtype': 'X99', 'shape': [2], 'data_offsets': [0, 8]}}, b'\0' * 8),
        'offsets-beyond-data': raw_st({'w': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]}}, b'\0' * 4),
        'size-mismatch': raw_st({'w': {'dtype': 'F32', 'shape': [3], 'data_offsets': [0, 8]}}, b'\0' * 8),
        'negative-shape': raw_st({'w': {'dtype': 'F32', 'shape': [-2], 'data_offsets': [0, 8]}}, b'\0' * 8),
        'shape-not-int': raw_st({'w': {'dtype': 'F32', 'shape': ['2'], 'data_offsets': [0, 8]}}, b'\0' * 8),
        'offsets-reversed': raw_st({'w': {'dtype': 'F32', 'shape': [2], 'data_offsets': [8, 0]}}, b'\0' * 8),
        'overlap': raw_st({'w': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
                           'v': {'dtype': 'F32', 'shape': [2], 'data_offsets': [4, 12]}}, b'\0' * 12),
        'gap': raw_st({'w': {'dtype': 'F32', 'shape': [1], 'data_offsets': [0, 4]},
                       'v': {'dtype': 'F32', 'shape': [1], 'data_offsets': [8, 12]}}, b'\0' * 12),
        'duplicate-key': raw_st(b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                b'"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b'\0' * 4),
        'missing-dtype': raw_st({'w': {'shape': [2], 'data_offsets': [0, 8]}}, b'\0' * 8),
    }
    for label, raw in cases.items():
        p = ctx.path('bad-%s.safetensors' % label)
        with open(p, 'wb') as f:
            f.write(raw)
        for args in ([p, pb], [pb, p]):
            rc, out, err = ctx.run(args + ['--json'])
            if rc != 2:
                ctx.fail('malformed %s (%s): expected exit 2, got %d (stderr %r)' % (
                    label, 'A' if args[0] == p else 'B', rc, err.strip()[:200]))
                continue
            one_line(ctx, 'malformed ' + label, err, [p])
            if out.strip():
                ctx.fail('malformed %s: stdout not empty: %r' % (label, out[:200]))
    # sharded folders: a shard named by the index is missing; the index is not JSON; the index
    # lists a tensor that its shard does not hold
    rng = np.random.default_rng(3)
    tensors = {'x.%d' % i: t('F32', [4], np.arange(4, dtype=np.float32).view(np.uint32)) for i in range(6)}
    for label in ('missing-shard', 'bad-index', 'index-names-absent-tensor', 'shard-holds-unlisted',
                  'duplicate-across-shards', 'index-without-weight-map'):
        d = ctx.path('sharded-' + label)
        L.write_sharded(d, tensors, 3, rng)
        idx = os.path.join(d, 'model.safetensors.index.json')
        if label == 'missing-shard':
            os.remove(os.path.join(d, 'model-00002-of-00003.safetensors'))
        elif label == 'bad-index':
            with open(idx, 'w') as f:
                f.write('{"weight_map": {"x.0": ')
        elif label == 'index-names-absent-tensor':
            j = json.load(open(idx))
            j['weight_map']['x.99'] = 'model-00001-of-00003.safetensors'
            json.dump(j, open(idx, 'w'))
        elif label == 'index-without-weight-map':
            json.dump({'metadata': {}}, open(idx, 'w'))
        else:
            # rewrite shard 1 with one more tensor: unlisted in the map, or listed in another shard
            j = json.load(open(idx))
            s1 = os.path.join(d, 'model-00001-of-00003.safetensors')
            part = L.read_st(s1)
            extra = 'x.77' if label == 'shard-holds-unlisted' else \
                next(k for k, v in j['weight_map'].items() if v != 'model-00001-of-00003.safetensors')
            part[extra] = t('F32', [4], np.zeros(4, np.uint32))
            L.write_st(s1, part)
        rc, out, err = ctx.run([d, pb, '--quiet'])
        if rc != 2:
            ctx.fail('sharded %s: expected exit 2, got %d (%r)' % (label, rc, err.strip()[:200]))
            continue
        one_line(ctx, 'sharded ' + label, err, [d])


def mismatch_pair(ctx):
    one = np.arange(6, dtype=np.float32).view(np.uint32)
    tensors = {
        'ok.weight': (t('BF16', [8], np.arange(8)), t('BF16', [8], np.arange(8) + 1)),
        'w.dtype': (t('F32', [6], one), t('F16', [6], np.arange(6, dtype=np.float16).view(np.uint16))),
        'w.shape': (t('F32', [2, 3], one), t('F32', [3, 2], one)),
        'w.rank': (t('F32', [6], one), t('F32', [1, 6], one)),
    }
    return tensors


def case_mismatch(ctx):
    full = mismatch_pair(ctx)
    for bad in ('w.dtype', 'w.shape', 'w.rank'):
        sub = {k: v for k, v in full.items() if k in ('ok.weight', bad)}
        pa, pb, _, _ = ctx.pair('mm-' + bad, sub)
        for args in ([pa, pb], [pa, pb, '--json']):
            rc, out, err = ctx.run(args)
            if rc != 3:
                ctx.fail('%s mismatch: expected exit 3, got %d (%r)' % (bad, rc, err.strip()))
                continue
            one_line(ctx, '%s mismatch' % bad, err, [bad])
            if out.strip():
                ctx.fail('%s mismatch: stdout not empty: %r' % (bad, out[:200]))


def case_skip_mismatched(ctx):
    full = mismatch_pair(ctx)
    pa, pb, A, B = ctx.pair('mm-all', full)
    rc, out, err = ctx.run([pa, pb, '--json', '--skip-mismatched', '--quiet'])
    if rc != 0:
        ctx.fail('--skip-mismatched: expected exit 0, got %d (%r)' % (rc, err.strip()))
        return
    rep = L.loads_strict(out)
    exp = L.expected_report(A, B, [1e-5], skip_mismatched=True)
    for d in L.compare_report(exp, rep, paths=(pa, pb)):
        ctx.fail('--skip-mismatched: ' + d)
    if sorted(rep.get('mismatched', [])) != ['w.dtype', 'w.rank', 'w.shape']:
        ctx.fail('mismatched: got %r' % rep.get('mismatched'))
    if [x.get('name') for x in rep.get('tensors', [])] != ['ok.weight']:
        ctx.fail('--skip-mismatched: tensors should be only ok.weight, got %r'
                 % [x.get('name') for x in rep.get('tensors', [])])
    # the table with --skip-mismatched also exits 0 and names the skipped tensors somewhere
    rc, out, err = ctx.run([pa, pb, '--skip-mismatched', '--quiet'])
    if rc != 0:
        ctx.fail('--skip-mismatched (table): exit %d' % rc)
    for n in ('w.dtype', 'w.shape', 'w.rank'):
        if n not in out:
            ctx.fail('--skip-mismatched (table): %s not listed' % n)


def table_rows(out, names):
    lines = out.splitlines()
    hdr = next((i for i, ln in enumerate(lines) if re.search(r'sparsity', ln, re.I)
                and not ln.startswith(('A:', 'B:'))), None)
    if hdr is None:
        return None, None, lines
    rows = []
    tot = None
    for i in range(hdr + 1, len(lines)):
        w = lines[i].split()
        if w and w[-1] in names:
            rows.append(w[-1])
        if re.search(r'\btotal\b', lines[i], re.I):
            tot = i
    return hdr, (rows, tot), lines


def case_table(ctx):
    pa, pb, A, B = ctx.pair('table')
    names = set(A)
    rc, out, err = ctx.run([pa, pb, '--quiet'])
    if rc != 0:
        ctx.fail('table: exit %d (%r)' % (rc, err.strip()))
        return
    hdr, res, lines = table_rows(out, names)
    if hdr is None:
        ctx.fail('table: no header line (with "sparsity") in %r' % out[:500])
        return
    rows, tot = res
    exp = L.expected_report(A, B, [1e-5])
    order = [x['name'] for x in sorted(exp['tensors'], key=lambda x: (x['sparsity'], x['name']))]
    if rows != order:
        ctx.fail('table: tensors should be listed least sparse first: expected %r got %r' % (order, rows))
    if tot is None:
        ctx.fail('table: no totals line')
    elif any(re.search(r'\b%s\s*$' % re.escape(n), ln) for n in names for ln in lines[tot + 1:]):
        ctx.fail('table: tensor rows after the totals line')
    # the table's percentages agree with the oracle: look for the sparsity in each row
    for x in exp['tensors']:
        row = next((ln for ln in lines[hdr + 1:] if ln.split() and ln.split()[-1] == x['name']), '')
        if str(x['changed']) not in row.split():
            ctx.fail('table: row of %s does not show changed=%d: %r' % (x['name'], x['changed'], row))
    # --top 2: only the two least sparse
    rc, out, err = ctx.run([pa, pb, '--quiet', '--top', '2'])
    hdr, res, lines = table_rows(out, names)
    if rc != 0 or hdr is None:
        ctx.fail('--top 2: exit %d, header %r' % (rc, hdr))
    elif res[0] != order[:2]:
        ctx.fail('--top 2: expected rows %r got %r' % (order[:2], res[0]))
    elif res[1] is None:
        ctx.fail('--top 2: no totals line')
    # only-in lists appear in the table output
    tensors = simple_tensors(ctx.rng)
    tensors['only.a'] = (t('F32', [1], [0]), None)
    pa2, pb2, _, _ = ctx.pair('table-only', tensors)
    rc, out, err = ctx.run([pa2, pb2, '--quiet'])
    if rc != 0 or 'only.a' not in out:
        ctx.fail('table: tensor only in A not listed (exit %d)' % rc)


def case_quiet(ctx):
    pa, pb, _, _ = ctx.pair()
    for extra in ([], ['--json']):
        rc, out, err = ctx.run([pa, pb, '--quiet'] + extra)
        if rc != 0:
            ctx.fail('--quiet %r: exit %d' % (extra, rc))
        if err != '':
            ctx.fail('--quiet %r: stderr not empty on success: %r' % (extra, err))


def big_pair(ctx):
    n = (1 << 21) + 3
    a, b = gen.adamw_like('F32', ctx.rng, [n])
    return ctx.pair('big', {'big': (t('F32', [n], a), t('F32', [n], b))})


def case_no_progress_pipe(ctx):
    """Without --quiet, stderr a pipe (not a terminal): no progress bar, nothing on stderr."""
    pa, pb, _, _ = big_pair(ctx)
    for extra in ([], ['--json']):
        rc, out, err = ctx.run([pa, pb] + extra)
        if rc != 0:
            ctx.fail('%r: exit %d' % (extra, rc))
        if '\r' in err or '\x1b' in err or '#' in err:
            ctx.fail('%r: progress bar drawn on a non-terminal stderr: %r' % (extra, err[:200]))
        if err.strip():
            ctx.fail('%r: stderr not empty on success: %r' % (extra, err[:200]))
    # stderr a regular file
    with open(ctx.path('stderr.txt'), 'w') as f:
        p = subprocess.run([ctx.exe, pa, pb, '--json'], stdout=subprocess.PIPE, stderr=f, timeout=60)
    if p.returncode != 0 or open(ctx.path('stderr.txt')).read():
        ctx.fail('stderr to a file: exit %d, stderr %r' % (p.returncode, open(ctx.path('stderr.txt')).read()[:200]))


def case_progress_tty(ctx):
    """Under script(1) stderr is a terminal: the bar is drawn (and erased), stdout unaffected;
    --quiet draws nothing."""
    script = shutil.which('script')
    if not script:
        print('skip: script(1) not installed')
        sys.exit(L.SKIP)
    pa, pb, _, _ = big_pair(ctx)
    outs = {}
    for extra in ([], ['--quiet']):
        jout = ctx.path('tty-out%s.json' % len(extra))
        cmd = ' '.join("'%s'" % x for x in [ctx.exe, pa, pb, '--json'] + extra) + " > '%s'" % jout
        p = subprocess.run([script, '-qec', cmd, '/dev/null'], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        tty = p.stdout.decode('utf-8', 'replace')
        if p.returncode != 0:
            if 'script:' in p.stderr.decode(errors='replace') and not os.path.exists(jout):
                print('skip: script(1) cannot allocate a terminal here: %r' % p.stderr[:200])
                sys.exit(L.SKIP)
            ctx.fail('under script %r: exit %d (%r)' % (extra, p.returncode, tty[:200]))
            continue
        try:
            outs[len(extra)] = L.loads_strict(open(jout).read())
        except ValueError as e:
            ctx.fail('under script %r: stdout not JSON (%s)' % (extra, e))
        if extra and tty.strip():
            ctx.fail('--quiet on a terminal: drew %r' % tty[:200])
        if not extra and '\r' not in tty:
            ctx.fail('no progress bar on a terminal stderr (got %r)' % tty[:200])
    if len(outs) == 2 and outs[0] != outs[1]:
        ctx.fail('JSON differs with and without the progress bar')


def case_json_schema(ctx):
    pa, pb, A, B = ctx.pair('schema')
    for with_rtol in (False, True):
        args = [pa, pb, '--json', '--quiet'] + (['--rtol', '1e-3'] if with_rtol else [])
        rc, out, err = ctx.run(args)
        label = '--json%s' % (' --rtol' if with_rtol else '')
        if rc != 0:
            ctx.fail('%s: exit %d (%r)' % (label, rc, err.strip()))
            continue
        try:
            rep = L.loads_strict(out)
        except ValueError as e:
            ctx.fail('%s: stdout is not (only) JSON: %s: %r' % (label, e, out[:300]))
            continue
        if not isinstance(rep, dict):
            ctx.fail('%s: not an object' % label)
            continue
        want = TOP_KEYS | ({'rtol'} if with_rtol else set())
        if set(rep) != want:
            ctx.fail('%s: top-level keys: missing %r, unexpected %r' % (
                label, sorted(want - set(rep)), sorted(set(rep) - want)))
        if rep.get('schema') != 'sparsity-scan/1':
            ctx.fail('%s: schema %r' % (label, rep.get('schema')))
        if rep.get('a') != pa or rep.get('b') != pb:
            ctx.fail('%s: a/b paths %r %r' % (label, rep.get('a'), rep.get('b')))
        if rep.get('tolerances') != [1e-5]:
            ctx.fail('%s: default tolerances should be [1e-05], got %r' % (label, rep.get('tolerances')))
        tw = TENSOR_KEYS | ({'changed_rtol'} if with_rtol else set())
        for x in rep.get('tensors', []):
            if set(x) != tw:
                ctx.fail('%s: tensor %r keys: missing %r, unexpected %r' % (
                    label, x.get('name'), sorted(tw - set(x)), sorted(set(x) - tw)))
                break
            if set(x['changed_tol']) != {'1e-05'}:
                ctx.fail('%s: changed_tol keys %r' % (label, sorted(x['changed_tol'])))
            for k in ('numel', 'changed', 'nonfinite'):
                if not L._is_count(x[k]):
                    ctx.fail('%s: %s.%s is not an integer: %r' % (label, x['name'], k, x[k]))
            if not isinstance(x['shape'], list) or not all(L._is_count(s) for s in x['shape']):
                ctx.fail('%s: shape %r' % (label, x['shape']))
        tot = rep.get('totals', {})
        tw = TOTAL_KEYS | ({'changed_rtol'} if with_rtol else set())
        if set(tot) != tw:
            ctx.fail('%s: totals keys: missing %r, unexpected %r' % (
                label, sorted(tw - set(tot)), sorted(set(tot) - tw)))
        for k in ('only_in_a', 'only_in_b', 'mismatched'):
            if rep.get(k) != []:
                ctx.fail('%s: %s should be [] here, got %r' % (label, k, rep.get(k)))
        exp = L.expected_report(A, B, [1e-5], rtol=1e-3 if with_rtol else None)
        for d in L.compare_report(exp, rep, rtol=1e-3 if with_rtol else None, paths=(pa, pb)):
            ctx.fail('%s: %s' % (label, d))
    # identical inputs: nothing changed
    rc, out, err = ctx.run([pa, pa, '--json', '--quiet'])
    rep = L.loads_strict(out) if rc == 0 else {}
    if rc != 0 or rep.get('totals', {}).get('changed') != 0 or rep['totals'].get('sparsity') != 1.0:
        ctx.fail('A vs A: exit %d, totals %r' % (rc, rep.get('totals')))
    # keys of several tolerances are %g renderings
    tols = [1e-4, 0.001, 2.5e-7, 0.1, 3.0, 123456789.0]
    rc, out, err = ctx.run([pa, pb, '--json', '--quiet', '--tol', ','.join(repr(x) for x in tols)])
    if rc != 0:
        ctx.fail('--tol list: exit %d (%r)' % (rc, err.strip()))
    else:
        rep = L.loads_strict(out)
        want = {'%g' % x for x in tols}
        if set(rep['totals']['changed_tol']) != want:
            ctx.fail('--tol list: keys %r, expected %r' % (sorted(rep['totals']['changed_tol']), sorted(want)))
        if rep.get('tolerances') != tols:
            ctx.fail('--tol list: tolerances %r, expected %r' % (rep.get('tolerances'), tols))


def case_json_only_stdout(ctx):
    """With --json, stdout carries the JSON document and nothing else, also with only-in lists
    and without --quiet."""
    tensors = simple_tensors(ctx.rng)
    tensors['only.in.a'] = (t('F32', [2], [0, 0]), None)
    pa, pb, A, B = ctx.pair('only', tensors)
    rc, out, err = ctx.run([pa, pb, '--json'])
    if rc != 0:
        ctx.fail('exit %d' % rc)
        return
    try:
        dec = json.JSONDecoder()
        obj, end = dec.raw_decode(out.lstrip())
        rest = out.lstrip()[end:]
        if rest.strip():
            ctx.fail('stdout has text after the JSON: %r' % rest[:200])
        if out.strip() and not out.lstrip().startswith('{'):
            ctx.fail('stdout has text before the JSON')
        if obj.get('only_in_a') != ['only.in.a']:
            ctx.fail('only_in_a %r' % obj.get('only_in_a'))
    except ValueError as e:
        ctx.fail('stdout not JSON: %s %r' % (e, out[:200]))


def case_json_strict(ctx):
    """F64 deltas that overflow double (|b-a| = inf; l2 = inf) must still give valid JSON
    (no bare inf/nan/Infinity tokens)."""
    big = np.array([1.5e308, -1.5e308, 1e200, 0.0], np.float64).view(np.uint64)
    big_b = np.array([-1.5e308, 1.5e308, -1e200, 0.0], np.float64).view(np.uint64)
    pa, pb, _, _ = ctx.pair('strict', {'huge': (t('F64', [4], big), t('F64', [4], big_b)),
                                       'fine': (t('F32', [1], [0]), t('F32', [1], [0x3F800000]))})
    rc, out, err = ctx.run([pa, pb, '--json', '--quiet', '--rtol', '1e-3'])
    if rc != 0:
        ctx.fail('overflowing F64 deltas: exit %d (%r)' % (rc, err.strip()))
        return
    try:
        rep = L.loads_strict(out)
    except ValueError as e:
        ctx.fail('overflowing F64 deltas: invalid JSON: %s; output %r' % (e, out[:400]))
        return
    h = [x for x in rep['tensors'] if x['name'] == 'huge'][0]
    if h['changed'] != 3 or h['changed_tol'].get('1e-05') != 3 or h.get('changed_rtol') != 3:
        ctx.fail('overflowing F64 deltas: counts %r' % h)


def case_json_escaping(ctx):
    """Tensor names with quotes, backslashes, control and non-ASCII characters survive the
    round trip through the header parser and the JSON writer; sorted by byte order."""
    names = ['plain', 'quo"te', 'back\\slash', 'uni.\u00e9.\u4e2d', 'tab\there', 'slash/x', 'ctl\x01']
    tensors = {n: (t('BF16', [2], [0x3F80, i]), t('BF16', [2], [0x3F81, i])) for i, n in enumerate(names)}
    pa, pb, A, B = ctx.pair('names', tensors)
    rc, out, err = ctx.run([pa, pb, '--json', '--quiet'])
    if rc != 0:
        ctx.fail('exit %d (%r)' % (rc, err.strip()))
        return
    try:
        rep = L.loads_strict(out)
    except ValueError as e:
        ctx.fail('invalid JSON: %s: %r' % (e, out[:400]))
        return
    got = [x.get('name') for x in rep.get('tensors', [])]
    want = sorted(names, key=lambda s: s.encode('utf-8'))
    if got != want:
        ctx.fail('names: expected %r got %r' % (want, got))
    # the table prints them without crashing
    rc, out, err = ctx.run([pa, pb, '--quiet'])
    if rc != 0:
        ctx.fail('table with odd names: exit %d' % rc)


def case_degenerate(ctx):
    """Checkpoints without tensors, with no shared names, and a checkpoint against itself in
    another layout: exit 0 and zero totals (sparsity 1, rel_l2_delta null)."""
    e = ctx.path('empty.safetensors')
    L.write_st(e, {})
    x = ctx.path('x.safetensors')
    y = ctx.path('y.safetensors')
    X = {'x': t('F32', [3], np.array([1, 2, 3], np.float32).view(np.uint32))}
    Y = {'y': t('BF16', [2, 2], [1, 2, 3, 4])}
    L.write_st(x, X)
    L.write_st(y, Y)
    for a, b, A, B in ((e, e, {}, {}), (x, y, X, Y), (e, x, {}, X)):
        rc, out, err = ctx.run([a, b, '--json', '--quiet', '--rtol', '1e-3'])
        label = '%s vs %s' % (os.path.basename(a), os.path.basename(b))
        if rc != 0:
            ctx.fail('%s: exit %d (%r)' % (label, rc, err.strip()))
            continue
        rep = L.loads_strict(out)
        for d in L.compare_report(L.expected_report(A, B, [1e-5], rtol=1e-3), rep, rtol=1e-3, paths=(a, b)):
            ctx.fail('%s: %s' % (label, d))
        rc, out, err = ctx.run([a, b, '--quiet'])
        if rc != 0:
            ctx.fail('%s (table): exit %d' % (label, rc))
    # the same tensors as one file and as a sharded folder: nothing changed
    tensors = {k: v[0] for k, v in simple_tensors(ctx.rng).items()}
    f = ctx.path('same.safetensors')
    L.write_st(f, tensors)
    d = ctx.path('same-sharded')
    L.write_sharded(d, tensors, 3, ctx.rng)
    rc, out, err = ctx.run([f, d, '--json', '--quiet'])
    rep = L.loads_strict(out) if rc == 0 else {}
    tot = rep.get('totals', {})
    if rc != 0 or tot.get('changed') != 0 or tot.get('numel') != sum(v[2].size for v in tensors.values()):
        ctx.fail('file vs its sharded copy: exit %d, totals %r' % (rc, tot))


def case_output_error(ctx):
    """stdout that cannot be written (/dev/full) -> exit 4 with a message."""
    if not os.path.exists('/dev/full'):
        print('skip: no /dev/full')
        sys.exit(L.SKIP)
    pa, pb, _, _ = ctx.pair()
    for extra in (['--json'], []):
        with open('/dev/full', 'w') as full:
            p = subprocess.run([ctx.exe, pa, pb, '--quiet'] + extra, stdout=full,
                               stderr=subprocess.PIPE, timeout=60)
        err = p.stderr.decode(errors='replace')
        if p.returncode != 4:
            ctx.fail('stdout=/dev/full %r: expected exit 4, got %d (%r)' % (extra, p.returncode, err.strip()))
        elif not err.strip():
            ctx.fail('stdout=/dev/full %r: exit 4 without a message' % extra)
    # stdout closed altogether
    p = subprocess.run([ctx.exe, pa, pb, '--quiet', '--json'], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        ctx.fail('stdout=/dev/null: exit %d' % p.returncode)


def case_threads(ctx):
    """--threads 0 (all cores), 1, 2, 7 give the same JSON."""
    pa, pb, _, _ = big_pair(ctx)
    base = None
    for th in ('1', '0', '2', '7'):
        rc, out, err = ctx.run([pa, pb, '--json', '--quiet', '--threads', th])
        if rc != 0:
            ctx.fail('--threads %s: exit %d (%r)' % (th, rc, err.strip()))
            continue
        rep = L.loads_strict(out)
        if base is None:
            base = rep
        elif rep != base:
            ctx.fail('--threads %s: JSON differs from --threads 1' % th)


def case_device(ctx):
    """--device: cpu and auto give the CPU's JSON where there is no GPU (auto picks the GPU when
    one is present, and the counts must then be the same); cuda without a usable GPU is exit 1
    with one line naming the reason; an unknown name is exit 1."""
    pa, pb, _, _ = big_pair(ctx)
    rc, base, err = ctx.run([pa, pb, '--json', '--quiet'])
    if rc != 0:
        ctx.fail('plain run: exit %d (%r)' % (rc, err.strip()))
        return
    for dev in ('cpu', 'auto'):
        rc, out, err = ctx.run([pa, pb, '--json', '--quiet', '--device', dev])
        if rc != 0:
            ctx.fail('--device %s: exit %d (%r)' % (dev, rc, err.strip()))
        elif L.loads_strict(out)['totals'] != L.loads_strict(base)['totals']:
            ctx.fail('--device %s: totals differ from the default run' % dev)
    rc, out, err = ctx.run([pa, pb, '--json', '--quiet', '--device', 'cuda'])
    if rc == 0:
        if L.loads_strict(out)['totals'] != L.loads_strict(base)['totals']:
            ctx.fail('--device cuda: totals differ from the CPU run')
    elif rc != 1 or 'CUDA' not in err or out:
        ctx.fail('--device cuda without a GPU: exit %d, stderr %r, stdout %r' % (rc, err, out[:80]))
    rc, out, err = ctx.run([pa, pb, '--device', 'tpu'])
    if rc != 1 or 'tpu' not in err:
        ctx.fail('--device tpu: exit %d (%r)' % (rc, err.strip()))


CASES = {
    'device': case_device,
    'usage': case_usage, 'help': case_help, 'version': case_version,
    'missing_file': case_missing_file, 'malformed': case_malformed, 'mismatch': case_mismatch,
    'skip_mismatched': case_skip_mismatched, 'table': case_table, 'quiet': case_quiet,
    'no_progress_pipe': case_no_progress_pipe, 'progress_tty': case_progress_tty,
    'json_schema': case_json_schema, 'json_only_stdout': case_json_only_stdout,
    'json_strict': case_json_strict, 'json_escaping': case_json_escaping,
    'output_error': case_output_error, 'threads': case_threads, 'degenerate': case_degenerate,
}


def main():
    if len(sys.argv) < 2 or (sys.argv[1] not in CASES and sys.argv[1] != 'all'):
        print('usage: test_cli.py CASE [sparsity-scan]; CASE one of: all %s' % ' '.join(CASES))
        sys.exit(1)
    exe = L.find_exe(sys.argv[1:])
    names = list(CASES) if sys.argv[1] == 'all' else [sys.argv[1]]
    bad = 0
    for name in names:
        with L.tempdir() as td:
            ctx = Ctx(exe, td)
            try:
                CASES[name](ctx)
            except SystemExit:
                raise
            except Exception as e:  # a crash of the test is a failure with its reason
                import traceback
                traceback.print_exc()
                ctx.fail('exception: %r' % e)
            for f in ctx.fails:
                print('  - %s' % f)
            print('cli_%s: %s' % (name, 'FAIL' if ctx.fails else 'ok'))
            bad += bool(ctx.fails)
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
