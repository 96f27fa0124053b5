"""Independent oracle for sparsity-scan's grouping by layer and module and its --h5 file.

Written from docs/metrics.md ("Per layer and module") and docs/hdf5-schema.md, sharing no code
with the C sources: names are grouped with Python's str and re, per-tensor numbers come from the
numpy oracle in tests/oracle/sslib.py, and the whole expected HDF5 content (every dataset and
attribute, with its HDF5 type and shape) is built here and compared with what h5py reads back.
"""

import math
import os
import re

import numpy as np

import sslib as L

KNOWN = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'q_norm', 'k_norm', 'gate_proj', 'up_proj',
         'down_proj', 'input_layernorm', 'post_attention_layernorm', 'embed_tokens', 'norm',
         'lm_head']
MAX_LAYER = 2147483647
DIGITS = re.compile(r'[0-9]+\Z')


# ---------------------------------------------------------------------------------------------
# Naming rules

def _layer_number(s):
    if s is not None and DIGITS.match(s) and int(s) <= MAX_LAYER:
        return int(s)
    return None


def default_group(name):
    layer = -1
    for c in name.split('.'):
        v = _layer_number(c)
        if v is not None:
            layer = v
            break
    parts = name.split('.')
    if len(parts) > 1 and parts[-1] in ('weight', 'bias'):
        parts = parts[:-1]
    return layer, parts[-1]


def classify(name, regex=None):
    """(layer, module) of a name under the default rule or a --group-regex (Python re stands in
    for POSIX ERE: tests use patterns on which both agree)."""
    if regex is not None:
        m = re.search(regex, name)
        if m:
            g1, g2 = m.group(1), m.group(2)
            if g1 is None or g1 == '':
                layer = -1
            else:
                layer = _layer_number(g1)
            if layer is not None and g2:
                return layer, g2
    return default_group(name)


def module_key(m):
    return (KNOWN.index(m) if m in KNOWN else len(KNOWN), m.encode('utf-8'))


# ---------------------------------------------------------------------------------------------
# Per layer x module and per layer figures

def is_matrix(rec):
    return len(rec['shape']) == 2 and rec['numel'] > 0


def merge(recs, tols, rtol):
    """Parameter-weighted record over tensor records (sslib.expected_pair + name/shape)."""
    out = {'numel': 0, 'changed': 0, 'nonfinite': 0,
           'changed_tol': {L.tol_key(t): 0 for t in tols}}
    if rtol is not None:
        out['changed_rtol'] = 0
    ssd = ssa = mx = 0.0
    for r in recs:
        for k in ('numel', 'changed', 'nonfinite') + (('changed_rtol',) if rtol is not None else ()):
            out[k] += r[k]
        for k in r['changed_tol']:
            out['changed_tol'][k] += r['changed_tol'][k]
        ssd += r['l2_delta'] ** 2
        ssa += r['_sum_sq_a']
        mx = max(mx, r['max_abs_delta'])
    out['sparsity'] = 1.0 - out['changed'] / out['numel'] if out['numel'] else 1.0
    out['max_abs_delta'] = mx
    out['l2_delta'] = math.sqrt(ssd)
    out['rel_l2_delta'] = math.sqrt(ssd) / math.sqrt(ssa) if ssa != 0 else None
    out['_sum_sq_a'] = ssa
    out['ntensors'] = len(recs)
    mats = [r['sparsity'] for r in recs if is_matrix(r)]
    out['nmatrices'] = len(mats)
    out['mean_matrix_sparsity'] = sum(mats) / len(mats) if mats else None
    return out


def expected_groups(rep, tols, rtol, regex=None):
    """rep: sslib.expected_report(...). Adds 'layer' and 'module' to each tensor record and
    returns {'modules', 'layers' (list of layer records), 'cells' (list), 'layers_nmatrices',
    'layers_mean_matrix_sparsity'}."""
    tensors = rep['tensors']
    for r in tensors:
        r['layer'], r['module'] = classify(r['name'], regex)
    modules = sorted({r['module'] for r in tensors}, key=module_key)
    layers = sorted({r['layer'] for r in tensors})
    cells = []
    for l in layers:
        for m in modules:
            recs = [r for r in tensors if r['layer'] == l and r['module'] == m]
            if recs:
                c = merge(recs, tols, rtol)
                c.update(layer=l, module=m)
                cells.append(c)
    lrecs = []
    for l in layers:
        c = merge([r for r in tensors if r['layer'] == l], tols, rtol)
        c['layer'] = l
        mine = [x for x in cells if x['layer'] == l]
        best = mine[0]
        for x in mine[1:]:
            if x['sparsity'] < best['sparsity']:
                best = x
        c['least_sparse_module'] = best['module']
        lrecs.append(c)
    mats = [r['sparsity'] for r in tensors if r['layer'] >= 0 and is_matrix(r)]
    return {'modules': modules, 'layers': lrecs, 'cells': cells, 'layers_nmatrices': len(mats),
            'layers_mean_matrix_sparsity': sum(mats) / len(mats) if mats else None}


# ---------------------------------------------------------------------------------------------
# The JSON additions

MEAN_REL = 1e-12
LAYER_KEYS = {'layer', 'ntensors', 'nmatrices', 'numel', 'changed', 'sparsity', 'nonfinite',
              'changed_tol', 'max_abs_delta', 'l2_delta', 'rel_l2_delta', 'mean_matrix_sparsity',
              'least_sparse_module'}
CELL_KEYS = (LAYER_KEYS - {'least_sparse_module'}) | {'module'}


def _close_or_null(exp, got, rel):
    if exp is None or got is None:
        return exp is None and got is None
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    return got == exp if exp == 0 else abs(got - exp) <= rel * abs(exp)


def compare_json_groups(exp_rep, g, got, rtol, regex=None):
    """Differences between the tool's JSON and the oracle's groups (tensor layer/module too)."""
    diffs = []
    gmap = {t.get('name'): t for t in got.get('tensors', [])}
    for r in exp_rep['tensors']:
        t = gmap.get(r['name'], {})
        if t.get('layer') != r['layer'] or t.get('module') != r['module']:
            diffs.append('tensor %r: layer/module expected %r/%r got %r/%r' % (
                r['name'], r['layer'], r['module'], t.get('layer'), t.get('module')))
    if regex is None and 'group_regex' in got:
        diffs.append('group_regex present without --group-regex')
    if regex is not None and got.get('group_regex') != regex:
        diffs.append('group_regex expected %r got %r' % (regex, got.get('group_regex')))
    if got.get('layers_nmatrices') != g['layers_nmatrices']:
        diffs.append('layers_nmatrices expected %r got %r' % (g['layers_nmatrices'],
                                                             got.get('layers_nmatrices')))
    if not _close_or_null(g['layers_mean_matrix_sparsity'], got.get('layers_mean_matrix_sparsity', 'x'),
                          MEAN_REL):
        diffs.append('layers_mean_matrix_sparsity expected %r got %r' % (
            g['layers_mean_matrix_sparsity'], got.get('layers_mean_matrix_sparsity')))
    for key, exp_list, keys, ident in (('layers', g['layers'], LAYER_KEYS, ('layer',)),
                                        ('cells', g['cells'], CELL_KEYS, ('layer', 'module'))):
        jkey = 'layers' if key == 'layers' else 'groups'
        gl = got.get(jkey)
        if not isinstance(gl, list):
            diffs.append('%s missing or not a list' % jkey)
            continue
        gid = [tuple(x.get(k) for k in ident) for x in gl]
        eid = [tuple(x[k] for k in ident) for x in exp_list]
        if gid != eid:
            diffs.append('%s: entries (in order) expected %r got %r' % (jkey, eid, gid))
            continue
        want = keys | ({'changed_rtol'} if rtol is not None else set())
        for e, x in zip(exp_list, gl):
            where = '%s %r' % (jkey, tuple(e[k] for k in ident))
            if set(x) != want:
                diffs.append('%s: keys missing %r unexpected %r' % (
                    where, sorted(want - set(x)), sorted(set(x) - want)))
            L.compare_record(where, e, x, diffs, rtol)
            for k in ('ntensors', 'nmatrices'):
                if x.get(k) != e[k]:
                    diffs.append('%s: %s expected %r got %r' % (where, k, e[k], x.get(k)))
            if not _close_or_null(e['mean_matrix_sparsity'], x.get('mean_matrix_sparsity', 'x'),
                                  MEAN_REL):
                diffs.append('%s: mean_matrix_sparsity expected %r got %r' % (
                    where, e['mean_matrix_sparsity'], x.get('mean_matrix_sparsity')))
            if key == 'layers' and x.get('least_sparse_module') != e['least_sparse_module']:
                diffs.append('%s: least_sparse_module expected %r got %r' % (
                    where, e['least_sparse_module'], x.get('least_sparse_module')))
    return diffs


# ---------------------------------------------------------------------------------------------
# The expected HDF5 content: {path: (kind, value)} for datasets, {(object, name): (kind, value)}
# for attributes. kind: 'u64', 'i64', 'u32', 'f64' or 'str'; value a numpy array (or a scalar).

NP = {'u64': np.dtype('<u8'), 'i64': np.dtype('<i8'), 'u32': np.dtype('<u4'),
      'f64': np.dtype('<f8')}
REL = {'l2_delta': 1e-9, 'rel_l2_delta': 1e-9, 'mean_matrix_sparsity': MEAN_REL}


def _nan(x):
    return float('nan') if x is None or not math.isfinite(x) else x


def _block(prefix, recs, shape, tols, rtol, present=None):
    """Count and real columns of recs (None: an absent cell) reshaped to shape."""
    out = {}
    nt = len(tols)

    def col(f, kind, absent):
        vals = [f(r) if r is not None else absent for r in recs]
        return (kind, np.array(vals, dtype=NP[kind]).reshape(shape))

    out[prefix + 'numel'] = col(lambda r: r['numel'], 'u64', 0)
    out[prefix + 'changed'] = col(lambda r: r['changed'], 'u64', 0)
    out[prefix + 'sparsity'] = col(lambda r: r['sparsity'], 'f64', float('nan'))
    out[prefix + 'nonfinite'] = col(lambda r: r['nonfinite'], 'u64', 0)
    ct = [[r['changed_tol'][L.tol_key(t)] for t in tols] if r is not None else [0] * nt
          for r in recs]
    out[prefix + 'changed_tol'] = ('u64', np.array(ct, dtype=NP['u64']).reshape(tuple(shape) + (nt,)))
    if rtol is not None:
        out[prefix + 'changed_rtol'] = col(lambda r: r['changed_rtol'], 'u64', 0)
    for k in ('max_abs_delta', 'l2_delta', 'rel_l2_delta'):
        out[prefix + k] = col(lambda r, k=k: _nan(r[k]), 'f64', float('nan'))
    return out


def expected_h5(rep, g, tols, rtol, paths, input_bytes, version, regex=None):
    ds = {}
    at = {}
    T = rep['tensors']
    n = len(T)
    at[('/', 'schema')] = ('str', 'sparsity-scan/1')
    at[('/', 'tool')] = ('str', 'sparsity-scan')
    at[('/', 'tool_version')] = ('str', version)
    at[('/', 'definitions_version')] = ('i64', 1)
    at[('/', 'inputs')] = ('str', list(paths))
    at[('/', 'input_bytes')] = ('u64', np.array(input_bytes, dtype=NP['u64']))
    at[('/', 'scanned_bytes')] = ('u64', 2 * sum(
        r['numel'] * np.dtype(L.storage(r['dtype'])).itemsize for r in T))
    at[('/', 'tolerances')] = ('f64', np.array(tols, dtype=NP['f64']))
    at[('/', 'tolerance_keys')] = ('str', [L.tol_key(t) for t in tols])
    at[('/', 'command_line')] = ('str', None)  # checked by the caller
    if rtol is not None:
        at[('/', 'rtol')] = ('f64', rtol)
    if regex is not None:
        at[('/', 'group_regex')] = ('str', regex)

    ds['/tensors/name'] = ('str', [r['name'] for r in T])
    ds['/tensors/dtype'] = ('str', [r['dtype'] for r in T])
    ds['/tensors/ndim'] = ('u32', np.array([len(r['shape']) for r in T], dtype=NP['u32']))
    mx = max([len(r['shape']) for r in T], default=0)
    ds['/tensors/shape'] = ('u64', np.array([list(r['shape']) + [0] * (mx - len(r['shape']))
                                             for r in T], dtype=NP['u64']).reshape(n, mx))
    for k, v in _block('', T, (n,), tols, rtol).items():
        ds['/tensors/' + k] = v
    ds['/tensors/layer'] = ('i64', np.array([r['layer'] for r in T], dtype=NP['i64']))
    ds['/tensors/module'] = ('str', [r['module'] for r in T])
    for k in ('only_in_a', 'only_in_b', 'mismatched'):
        ds['/' + k] = ('str', list(rep[k]))

    layers = [x['layer'] for x in g['layers']]
    mods = g['modules']
    nl, nm = len(layers), len(mods)
    ds['/layers/layer'] = ('i64', np.array(layers, dtype=NP['i64']))
    ds['/layers/module'] = ('str', list(mods))
    cellmap = {(c['layer'], c['module']): c for c in g['cells']}
    grid = [cellmap.get((l, m)) for l in layers for m in mods]
    for k, v in _block('', grid, (nl, nm), tols, rtol).items():
        ds['/layers/' + k] = v
    for prefix, recs, shape in (('', grid, (nl, nm)), ('layer_', g['layers'], (nl,))):
        ds['/layers/%sntensors' % prefix] = ('u64', np.array(
            [r['ntensors'] if r else 0 for r in recs], dtype=NP['u64']).reshape(shape))
        ds['/layers/%snmatrices' % prefix] = ('u64', np.array(
            [r['nmatrices'] if r else 0 for r in recs], dtype=NP['u64']).reshape(shape))
        ds['/layers/%smean_matrix_sparsity' % prefix] = ('f64', np.array(
            [_nan(r['mean_matrix_sparsity']) if r else float('nan') for r in recs],
            dtype=NP['f64']).reshape(shape))
    for k, v in _block('layer_', g['layers'], (nl,), tols, rtol).items():
        ds['/layers/' + k] = v
    ds['/layers/layer_least_sparse_module'] = ('str', [x['least_sparse_module'] for x in g['layers']])
    at[('/layers', 'layers_nmatrices')] = ('u64', g['layers_nmatrices'])
    at[('/layers', 'layers_mean_matrix_sparsity')] = ('f64', _nan(g['layers_mean_matrix_sparsity']))

    tot = rep['totals']
    at[('/totals', 'ntensors')] = ('u64', n)
    for k in ('numel', 'changed', 'nonfinite'):
        at[('/totals', k)] = ('u64', tot[k])
    at[('/totals', 'sparsity')] = ('f64', tot['sparsity'])
    at[('/totals', 'changed_tol')] = ('u64', np.array([tot['changed_tol'][L.tol_key(t)] for t in tols],
                                                      dtype=NP['u64']))
    if rtol is not None:
        at[('/totals', 'changed_rtol')] = ('u64', tot['changed_rtol'])
    for k in ('max_abs_delta', 'l2_delta', 'rel_l2_delta'):
        at[('/totals', k)] = ('f64', _nan(tot[k]))
    return ds, at


# ---------------------------------------------------------------------------------------------
# Reading the file back and comparing

def read_h5(path):
    """Everything in the file: ({dataset path: (kind, value, h5py Dataset info)},
    {(object path, attr): (kind, value, shape)}, [group paths])."""
    import h5py
    ds, at, groups = {}, {}, ['/']

    def kind_of(dt):
        s = h5py.check_string_dtype(dt)
        if s is not None:
            return 'str' if s.length is None and s.encoding == 'utf-8' else 'fixed-or-ascii-str'
        for k, v in NP.items():
            if dt == v:
                return k
        return str(dt)

    def attrs_of(name, obj):
        for a in obj.attrs:
            aid = obj.attrs.get_id(a)
            k = kind_of(aid.dtype)
            v = obj.attrs[a]
            if k == 'str':
                v = v if isinstance(v, str) else [x if isinstance(x, str) else x.decode() for x in v]
            at[(name, a)] = (k, v, aid.shape)

    with h5py.File(path, 'r') as f:
        attrs_of('/', f)

        def visit(name, obj):
            full = '/' + name
            attrs_of(full, obj)
            if isinstance(obj, h5py.Group):
                groups.append(full)
                return
            k = kind_of(obj.dtype)
            v = list(obj.asstr()[...]) if k == 'str' else obj[...]
            info = {'chunks': obj.chunks, 'compression': obj.compression,
                    'shuffle': obj.shuffle, 'shape': obj.shape}
            ds[full] = (k, v, info)
        f.visititems(visit)
    return ds, at, groups


def _values_differ(kind, exp, got, rel):
    if kind == 'str':
        return list(exp) != list(got) if isinstance(exp, list) else exp != got
    e = np.asarray(exp, dtype=NP[kind])
    g = np.asarray(got)
    if e.shape != g.shape:
        return 'shape %r vs %r' % (e.shape, g.shape)
    if kind != 'f64':
        return not np.array_equal(e, g)
    g = g.astype(np.float64)
    if not np.array_equal(np.isnan(e), np.isnan(g)):
        return True
    ok = ~np.isnan(e)
    if rel == 0:
        return not np.array_equal(e[ok], g[ok])
    err = np.abs(e[ok] - g[ok])
    return bool(np.any(err > rel * np.abs(e[ok])))


def compare_h5(path, exp_ds, exp_at, diffs, command_line=None):
    got_ds, got_at, groups = read_h5(path)
    if sorted(groups) != ['/', '/layers', '/tensors', '/totals']:
        diffs.append('groups expected /, /layers, /tensors, /totals; got %r' % sorted(groups))
    for p in sorted(set(exp_ds) | set(got_ds)):
        if p not in got_ds:
            diffs.append('dataset %s missing' % p)
            continue
        if p not in exp_ds:
            diffs.append('unexpected dataset %s' % p)
            continue
        ek, ev = exp_ds[p]
        gk, gv, info = got_ds[p]
        if ek != gk:
            diffs.append('dataset %s: type %s expected %s' % (p, gk, ek))
            continue
        if ek == 'str':
            if info['shape'] != (len(ev),):
                diffs.append('dataset %s: shape %r expected (%d,)' % (p, info['shape'], len(ev)))
        elif info['shape'] != np.asarray(ev).shape:
            diffs.append('dataset %s: shape %r expected %r' % (p, info['shape'], np.asarray(ev).shape))
            continue
        d = _values_differ(ek, ev, gv, REL.get(p.rsplit('/', 1)[1].replace('layer_', ''), 0))
        if d:
            diffs.append('dataset %s: values differ: expected %r got %r' % (p, ev, gv))
        if ek != 'str' and int(np.prod(info['shape'])) > 0:
            if not info['chunks'] or info['compression'] != 'gzip' or not info['shuffle']:
                diffs.append('dataset %s: not chunked + shuffle + deflate (%r)' % (p, info))
    for key in sorted(set(exp_at) | set(got_at)):
        where = 'attribute %s:%s' % key
        if key not in got_at:
            diffs.append('%s missing' % where)
            continue
        if key not in exp_at:
            diffs.append('unexpected %s' % where)
            continue
        ek, ev = exp_at[key]
        gk, gv, shape = got_at[key]
        if ek != gk:
            diffs.append('%s: type %s expected %s' % (where, gk, ek))
            continue
        scalar = not isinstance(ev, (list, np.ndarray))
        if scalar and shape != ():
            diffs.append('%s: should be a scalar, has shape %r' % (where, shape))
        if not scalar and shape != (len(ev),):
            diffs.append('%s: shape %r expected (%d,)' % (where, shape, len(ev)))
        if key == ('/', 'command_line'):
            if command_line is not None and gv != command_line:
                diffs.append('%s: expected %r got %r' % (where, command_line, gv))
            continue
        if _values_differ(ek, ev, gv, 0):
            diffs.append('%s: expected %r got %r' % (where, ev, gv))
    return got_ds, got_at


def input_bytes(path):
    """Bytes of the .safetensors files a checkpoint path names."""
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
                   if f.endswith('.safetensors'))
    return os.path.getsize(path)
