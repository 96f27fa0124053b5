"""Independent numpy oracle for sparsity-scan (tests/oracle and tests/cli share it).

Nothing here comes from the C sources: safetensors headers are parsed with json + numpy
frombuffer, BF16/F16/F8 values are decoded from their bit patterns with vectorized numpy, and the
expected report follows the definitions in docs/metrics.md (DESIGN.md, "Definitions").

Tensors are handled as (dtype, shape, bits): bits is a flat little-endian numpy array of the
unsigned integer type of the element's width (uint8/16/32/64), i.e. the stored bit patterns.

Test scripts exit 0 (pass), 1 (fail, after printing what differed) or 77 (skip).
"""

import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

SKIP = 77

# dtype -> (storage uint type, safetensors python dtype name, kind)
# kind: 'bool', 'int' (with the numpy signed/unsigned type), or 'float' (with a decoder name)
DTYPES = {
    'BOOL': (np.uint8, 'bool', ('bool', None)),
    'U8': (np.uint8, 'uint8', ('int', np.uint8)),
    'I8': (np.uint8, 'int8', ('int', np.int8)),
    'I16': (np.uint16, 'int16', ('int', np.int16)),
    'U16': (np.uint16, 'uint16', ('int', np.uint16)),
    'I32': (np.uint32, 'int32', ('int', np.int32)),
    'U32': (np.uint32, 'uint32', ('int', np.uint32)),
    'I64': (np.uint64, 'int64', ('int', np.int64)),
    'U64': (np.uint64, 'uint64', ('int', np.uint64)),
    'F16': (np.uint16, 'float16', ('float', 'F16')),
    'BF16': (np.uint16, 'bfloat16', ('float', 'BF16')),
    'F32': (np.uint32, 'float32', ('float', 'F32')),
    'F64': (np.uint64, 'float64', ('float', 'F64')),
    'F8_E4M3': (np.uint8, 'float8_e4m3fn', ('float', 'F8_E4M3')),
    'F8_E5M2': (np.uint8, 'float8_e5m2', ('float', 'F8_E5M2')),
}
ALL_DTYPES = list(DTYPES)
FLOAT_DTYPES = [d for d in ALL_DTYPES if DTYPES[d][2][0] == 'float']
INT_DTYPES = [d for d in ALL_DTYPES if DTYPES[d][2][0] != 'float']


def is_float(dt):
    return DTYPES[dt][2][0] == 'float'


def storage(dt):
    return DTYPES[dt][0]


# ---------------------------------------------------------------------------------------------
# Decoding bit patterns to float64 (vectorized; independent of the C code)

def decode_minifloat(bits, ebits, mbits, bias, fn_nan_only=False):
    """IEEE-style binary format with ebits exponent and mbits mantissa bits. fn_nan_only: the
    OCP 'FN' convention (no Inf; only all-ones exponent AND all-ones mantissa is NaN)."""
    b = np.asarray(bits).astype(np.int64)
    sign = (b >> (ebits + mbits)) & 1
    e = (b >> mbits) & ((1 << ebits) - 1)
    m = (b & ((1 << mbits) - 1)).astype(np.float64)
    emax = (1 << ebits) - 1
    normal = np.ldexp(1.0 + m / float(1 << mbits), (e - bias).astype(np.int32))
    sub = np.ldexp(m, np.full(e.shape, 1 - bias - mbits, dtype=np.int32))
    val = np.where(e == 0, sub, normal)
    if fn_nan_only:
        val = np.where((e == emax) & (m == (1 << mbits) - 1), np.nan, val)
    else:
        val = np.where(e == emax, np.where(m == 0, np.inf, np.nan), val)
    return np.where(sign == 1, -val, val)


def decode(dt, bits):
    """Stored bit patterns -> float64 values (integers and BOOL by value)."""
    with np.errstate(invalid='ignore'):  # signalling NaNs widen quietly
        return _decode(dt, bits)


def _decode(dt, bits):
    kind, arg = DTYPES[dt][2]
    bits = np.asarray(bits, dtype=storage(dt))
    if kind == 'bool':
        return (bits != 0).astype(np.float64)
    if kind == 'int':
        return bits.view(arg).astype(np.float64)
    if arg == 'F32':
        return bits.view(np.float32).astype(np.float64)
    if arg == 'F64':
        return bits.view(np.float64).astype(np.float64)
    if arg == 'F16':
        return decode_minifloat(bits, 5, 10, 15)
    if arg == 'BF16':
        return decode_minifloat(bits, 8, 7, 127)
    if arg == 'F8_E5M2':
        return decode_minifloat(bits, 5, 2, 15)
    if arg == 'F8_E4M3':
        return decode_minifloat(bits, 4, 3, 7, fn_nan_only=True)
    raise ValueError(dt)


def f32_to_bf16_bits(x):
    """Round float32 values to BF16 (round to nearest, ties to even); finite inputs only.
    Used only to generate realistic test data."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return r.astype(np.uint16)


def all_values(dt):
    """For 8/16-bit float types: (patterns, decoded values) of every bit pattern."""
    st = storage(dt)
    pats = np.arange(1 << (8 * np.dtype(st).itemsize), dtype=np.uint64).astype(st)
    return pats, decode(dt, pats)


# ---------------------------------------------------------------------------------------------
# safetensors writing (the PyPI package where it supports the dtype) and reading (our own parser)

_warned = []


def _own_write(path, tensors, metadata=None):
    header = {}
    if metadata:
        header['__metadata__'] = dict(metadata)
    off = 0
    blobs = []
    for name, (dt, shape, bits) in tensors.items():
        raw = np.ascontiguousarray(bits, dtype=storage(dt)).astype(
            np.dtype(storage(dt)).newbyteorder('<')).tobytes()
        header[name] = {'dtype': dt, 'shape': list(shape), 'data_offsets': [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def write_st(path, tensors, metadata=None):
    """tensors: {name: (dtype, shape, bits)} in the order wanted (the package may reorder)."""
    for name, (dt, shape, bits) in tensors.items():
        n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
        assert np.asarray(bits).size == n, (name, shape, np.asarray(bits).size)
    try:
        import safetensors
    except ImportError:
        safetensors = None
    if safetensors is None or not hasattr(safetensors, 'serialize_file'):
        if not _warned:
            print('note: the safetensors package is not importable (PYTHONPATH=<build>/pydeps); '
                  'writing with the oracle\'s own writer', file=sys.stderr)
            _warned.append(1)
        return _own_write(path, tensors, metadata)
    keep = []
    flat = {}
    for name, (dt, shape, bits) in tensors.items():
        arr = np.ascontiguousarray(np.asarray(bits, dtype=storage(dt)).reshape(-1))
        if arr.size == 0:
            arr = np.zeros(1, dtype=storage(dt))  # a valid pointer; data_len says 0
            nbytes = 0
        else:
            nbytes = arr.nbytes
        keep.append(arr)
        if hasattr(safetensors, 'TensorSpec'):
            flat[name] = safetensors.TensorSpec(dtype=DTYPES[dt][1], shape=tuple(int(s) for s in shape),
                                                data_ptr=arr.ctypes.data, data_len=nbytes)
        else:  # older packages: dicts with the bytes
            flat[name] = {'dtype': DTYPES[dt][1], 'shape': [int(s) for s in shape],
                          'data': arr.tobytes()[:nbytes]}
    safetensors.serialize_file(flat, str(path), metadata=metadata)
    del keep


def read_st(path):
    """Our own reader: {name: (dtype, shape, bits)}; raises ValueError on anything malformed."""
    with open(path, 'rb') as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError('%s: too short' % path)
    (n,) = struct.unpack('<Q', raw[:8])
    if 8 + n > len(raw):
        raise ValueError('%s: header length beyond end of file' % path)
    hdr = json.loads(raw[8:8 + n].decode('utf-8'))
    data = memoryview(raw)[8 + n:]
    out = {}
    spans = []
    for name, info in hdr.items():
        if name == '__metadata__':
            continue
        dt = info['dtype']
        shape = [int(s) for s in info['shape']]
        lo, hi = (int(x) for x in info['data_offsets'])
        st = storage(dt)
        numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if hi - lo != numel * np.dtype(st).itemsize or hi > len(data):
            raise ValueError('%s: tensor %s: bad data_offsets' % (path, name))
        spans.append((lo, hi))
        bits = np.frombuffer(data[lo:hi], dtype=np.dtype(st).newbyteorder('<')).astype(st)
        out[name] = (dt, shape, bits)
    spans.sort()
    pos = 0
    for lo, hi in spans:
        if lo != pos:
            raise ValueError('%s: data not contiguous' % path)
        pos = hi
    if pos != len(data):
        raise ValueError('%s: trailing bytes' % path)
    return out


def read_checkpoint(path):
    """A .safetensors file, a folder with model.safetensors.index.json, or with model.safetensors."""
    if os.path.isdir(path):
        idx = os.path.join(path, 'model.safetensors.index.json')
        if os.path.exists(idx):
            with open(idx) as f:
                wm = json.load(f)['weight_map']
            out = {}
            for shard in sorted(set(wm.values())):
                part = read_st(os.path.join(path, shard))
                for name, t in part.items():
                    if wm.get(name) != shard or name in out:
                        raise ValueError('%s: index does not match shard %s' % (path, shard))
                    out[name] = t
            if set(out) != set(wm):
                raise ValueError('%s: index names tensors missing from the shards' % path)
            return out
        return read_st(os.path.join(path, 'model.safetensors'))
    return read_st(path)


def write_sharded(folder, tensors, nshards, rng, metadata=None):
    """Writes tensors into nshards shard files in shuffled order plus a shuffled index."""
    os.makedirs(folder, exist_ok=True)
    names = list(tensors)
    rng.shuffle(names)
    groups = [names[i::nshards] for i in range(nshards)]
    wm = {}
    total = 0
    for i, g in enumerate(groups):
        shard = 'model-%05d-of-%05d.safetensors' % (i + 1, nshards)
        write_st(os.path.join(folder, shard), {n: tensors[n] for n in g})
        for n in g:
            wm[n] = shard
            total += np.asarray(tensors[n][2]).nbytes
    keys = list(wm)
    rng.shuffle(keys)
    with open(os.path.join(folder, 'model.safetensors.index.json'), 'w') as f:
        json.dump({'metadata': dict(metadata or {}, total_size=total),
                   'weight_map': {k: wm[k] for k in keys}}, f, indent=2)


# ---------------------------------------------------------------------------------------------
# The expected report

def tol_key(t):
    return '%g' % t


def expected_pair(dt, bits_a, bits_b, tols, rtol=None):
    """Expected per-tensor numbers for one pair, straight from the definitions."""
    ba = np.asarray(bits_a, dtype=storage(dt)).reshape(-1)
    bb = np.asarray(bits_b, dtype=storage(dt)).reshape(-1)
    n = ba.size
    va = decode(dt, ba)
    vb = decode(dt, bb)
    bitsdiff = ba != bb
    if is_float(dt):
        fa = np.isfinite(va)
        fb = np.isfinite(vb)
        both_zero = (va == 0) & (vb == 0)
        changed = bitsdiff & ~both_zero
    else:
        if DTYPES[dt][2][0] == 'bool':
            bitsdiff = (ba != 0) != (bb != 0)
        fa = np.ones(n, dtype=bool)
        fb = fa
        changed = bitsdiff
    fin = fa & fb
    nonfin_changed = int(np.count_nonzero(~fin & bitsdiff))
    with np.errstate(all='ignore'):
        d = np.abs(vb[fin] - va[fin])
        big = np.maximum(np.abs(va[fin]), np.abs(vb[fin]))
        rec = {
            'numel': int(n),
            'changed': int(np.count_nonzero(changed)),
            'nonfinite': int(np.count_nonzero(~fin)),
            'changed_tol': {tol_key(t): int(np.count_nonzero(d > t)) + nonfin_changed for t in tols},
            'max_abs_delta': float(d.max()) if d.size else 0.0,
            'l2_delta': math.sqrt(float(np.sum(d * d))),
            '_sum_sq_a': float(np.sum(va[fa] * va[fa])),
        }
        if rtol is not None:
            rec['changed_rtol'] = int(np.count_nonzero(d > rtol * big)) + nonfin_changed
    rec['sparsity'] = 1.0 - rec['changed'] / n if n else 1.0
    na = math.sqrt(rec['_sum_sq_a'])
    rec['rel_l2_delta'] = rec['l2_delta'] / na if na != 0 else None
    return rec


def expected_report(ck_a, ck_b, tols, rtol=None, skip_mismatched=False):
    """Returns (report, mismatched names). ck_*: {name: (dtype, shape, bits)}."""
    shared = sorted(set(ck_a) & set(ck_b))
    tensors = []
    mism = []
    for name in shared:
        dta, sha, ba = ck_a[name]
        dtb, shb, bb = ck_b[name]
        if dta != dtb or list(sha) != list(shb):
            mism.append(name)
            continue
        rec = expected_pair(dta, ba, bb, tols, rtol)
        rec.update(name=name, dtype=dta, shape=[int(s) for s in sha])
        tensors.append(rec)
    tot = {'numel': 0, 'changed': 0, 'nonfinite': 0, 'changed_tol': {tol_key(t): 0 for t in tols}}
    if rtol is not None:
        tot['changed_rtol'] = 0
    ssd = 0.0
    ssa = 0.0
    mx = 0.0
    for r in tensors:
        for k in ('numel', 'changed', 'nonfinite') + (('changed_rtol',) if rtol is not None else ()):
            tot[k] += r[k]
        for k in r['changed_tol']:
            tot['changed_tol'][k] += r['changed_tol'][k]
        ssd += r['l2_delta'] ** 2
        ssa += r['_sum_sq_a']
        mx = max(mx, r['max_abs_delta'])
    tot['sparsity'] = 1.0 - tot['changed'] / tot['numel'] if tot['numel'] else 1.0
    tot['max_abs_delta'] = mx
    tot['l2_delta'] = math.sqrt(ssd)
    tot['rel_l2_delta'] = math.sqrt(ssd) / math.sqrt(ssa) if ssa != 0 else None
    rep = {
        'schema': 'sparsity-scan/1',
        'tolerances': list(tols),
        'totals': tot,
        'tensors': tensors,
        'only_in_a': sorted(set(ck_a) - set(ck_b)),
        'only_in_b': sorted(set(ck_b) - set(ck_a)),
        'mismatched': mism,
    }
    return rep


# ---------------------------------------------------------------------------------------------
# Comparing the tool's JSON against the oracle

REL = 1e-9


def _close(exp, got, rel=REL):
    if exp is None or got is None:
        return exp is None and got is None
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return False
    if exp == 0:
        return got == 0
    return abs(got - exp) <= rel * abs(exp)


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool)


def compare_record(where, exp, got, diffs, rtol, check_l2=True):
    for k in ('numel', 'changed', 'nonfinite') + (('changed_rtol',) if rtol is not None else ()):
        if k not in got:
            diffs.append('%s: key %r missing' % (where, k))
        elif not _is_count(got[k]) or got[k] != exp[k]:
            diffs.append('%s: %s expected %r got %r' % (where, k, exp[k], got[k]))
    ct = got.get('changed_tol')
    if not isinstance(ct, dict) or set(ct) != set(exp['changed_tol']):
        diffs.append('%s: changed_tol keys expected %r got %r' % (
            where, sorted(exp['changed_tol']), sorted(ct) if isinstance(ct, dict) else ct))
    else:
        for k, v in exp['changed_tol'].items():
            if not _is_count(ct[k]) or ct[k] != v:
                diffs.append('%s: changed_tol[%s] expected %r got %r' % (where, k, v, ct[k]))
    # sparsity exactly as computed from the (tool's) counts, and equal to the oracle's
    if _is_count(got.get('changed')) and _is_count(got.get('numel')):
        sp = 1.0 - got['changed'] / got['numel'] if got['numel'] else 1.0
        if got.get('sparsity') != sp or sp != exp['sparsity']:
            diffs.append('%s: sparsity expected %r (1 - %r/%r) got %r' % (
                where, exp['sparsity'], exp['changed'], exp['numel'], got.get('sparsity')))
    if 'max_abs_delta' not in got or got['max_abs_delta'] != exp['max_abs_delta'] \
            or isinstance(got['max_abs_delta'], bool):
        diffs.append('%s: max_abs_delta expected %r got %r' % (
            where, exp['max_abs_delta'], got.get('max_abs_delta', '<missing>')))
    if check_l2:
        for k in ('l2_delta', 'rel_l2_delta'):
            if k not in got or not _close(exp[k], got[k]):
                diffs.append('%s: %s expected %r got %r (relative tolerance %g)' % (
                    where, k, exp[k], got.get(k, '<missing>'), REL))


def compare_report(exp, got, rtol=None, paths=None):
    """Returns a list of human-readable differences (empty when the report matches)."""
    diffs = []
    if got.get('schema') != 'sparsity-scan/1':
        diffs.append('schema expected "sparsity-scan/1" got %r' % got.get('schema'))
    if paths is not None and (got.get('a'), got.get('b')) != tuple(paths):
        diffs.append('a/b expected %r got %r' % (tuple(paths), (got.get('a'), got.get('b'))))
    if got.get('tolerances') != exp['tolerances']:
        diffs.append('tolerances expected %r got %r' % (exp['tolerances'], got.get('tolerances')))
    if rtol is not None and got.get('rtol') != rtol:
        diffs.append('rtol expected %r got %r' % (rtol, got.get('rtol')))
    gt = got.get('tensors')
    if not isinstance(gt, list):
        diffs.append('tensors missing or not a list')
        return diffs
    gnames = [t.get('name') for t in gt]
    enames = [t['name'] for t in exp['tensors']]
    if gnames != enames:
        diffs.append('tensor names (sorted by name) expected %r got %r' % (enames, gnames))
    gmap = {t.get('name'): t for t in gt}
    for e in exp['tensors']:
        g = gmap.get(e['name'])
        if g is None:
            continue
        where = 'tensor %r (%s %r)' % (e['name'], e['dtype'], e['shape'])
        if g.get('dtype') != e['dtype']:
            diffs.append('%s: dtype got %r' % (where, g.get('dtype')))
        if g.get('shape') != e['shape']:
            diffs.append('%s: shape got %r' % (where, g.get('shape')))
        compare_record(where, e, g, diffs, rtol)
    tot = got.get('totals')
    if not isinstance(tot, dict):
        diffs.append('totals missing')
    else:
        compare_record('totals', exp['totals'], tot, diffs, rtol)
    for k in ('only_in_a', 'only_in_b', 'mismatched'):
        g = got.get(k)
        if not isinstance(g, list) or sorted(g) != exp[k]:
            diffs.append('%s expected %r got %r' % (k, exp[k], g))
    return diffs


def numbers_only(rep):
    """The report without the 'a'/'b' paths (for comparing runs over different paths)."""
    return {k: v for k, v in rep.items() if k not in ('a', 'b')}


# ---------------------------------------------------------------------------------------------
# Running the tool

def find_exe(argv):
    exe = argv[1] if len(argv) > 1 and argv[1] else None
    if exe is None:
        bd = os.environ.get('SS_BUILD_DIR')
        if bd:
            exe = os.path.join(bd, 'analyze', 'sparsity-scan')
    if exe is None or not os.access(exe, os.X_OK):
        print('skip: sparsity-scan not built (%r)' % exe)
        sys.exit(SKIP)
    return exe


def _reject_constant(c):
    raise ValueError('not strict JSON: %s' % c)


def loads_strict(s):
    """json.loads that rejects NaN / Infinity / -Infinity tokens (not JSON)."""
    return json.loads(s, parse_constant=_reject_constant)


def run(exe, args, timeout=120, **kw):
    p = subprocess.run([exe] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, **kw)
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


def isa_env(isa):
    """The environment with SS_SCAN_ISA forcing a SIMD path (ignored where the CPU lacks it)."""
    env = dict(os.environ)
    env['SS_SCAN_ISA'] = isa
    return env


ISAS = ('portable', 'avx2', 'avx512')


def run_json(exe, args, failures, label, env=None):
    """Runs with --json; returns the parsed report or None (and records the failure)."""
    rc, out, err = run(exe, list(args) + ['--json', '--quiet'], env=env)
    if rc != 0:
        failures.append('%s: exit %d, stderr: %s' % (label, rc, err.strip()))
        return None
    try:
        return loads_strict(out)
    except ValueError as e:
        failures.append('%s: stdout is not JSON (%s): %r' % (label, e, out[:300]))
        return None


def tol_arg(tols):
    return ','.join(repr(float(t)) for t in tols)


def finish(name, failures, notes=()):
    for n in notes:
        print(n)
    if failures:
        print('%s: FAIL (%d problem%s)' % (name, len(failures), '' if len(failures) == 1 else 's'))
        for f in failures[:60]:
            print('  - ' + f)
        if len(failures) > 60:
            print('  ... and %d more' % (len(failures) - 60))
        sys.exit(1)
    print('%s: ok' % name)
    sys.exit(0)


def tempdir():
    return tempfile.TemporaryDirectory(prefix='ss-test-')
