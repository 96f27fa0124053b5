#!/usr/bin/python3
"""sparsity-scan under Open MPI (suite 'mpi'; docs/mpi.md): `mpirun -np N sparsity-scan ...` must
give exactly the one-process output.

usage: test_mpi.py CASE path/to/sparsity-scan path/to/ckpt-synth mpi|no-mpi
  json2         2 ranks: --json (with --tol list and --rtol), the table and --by-layer equal the
                one-process stdout byte for byte (the table's seconds masked); stderr empty
  h5_2          2 ranks: --h5 with --masks --maps --hist: every group, dataset (values, dtype,
                shape) and attribute equals the one-process file; the JSON too
  ranks3        3 ranks on a sharded folder (ckpt-synth --shard-size), --h5 --masks --hist
  many_ranks    5 ranks, 3 tensors (two ranks idle, one tensor empty): JSON and --h5 --masks
  missing_file  2 ranks, B missing, --h5 OUT: exit 2, the message once, empty stdout, no OUT
                (nor a temporary file) left, within the timeout
  rank_fails    rank 0 finds A and B, rank 1 (another working folder) does not: exit 2 on every
                rank, rank 1's message printed once by rank 0, no --h5 file
  usage         --series under 2 ranks is a usage error (exit 1, one message); --version once
Exits 0 (pass), 1 (fail) or 77 (skip: no MPI support in the build, or no mpirun)."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'oracle'))
import sslib as L  # noqa: E402

SKIP = 77
TIMEOUT = 120


def mpirun_cmd(n, extra=()):
    mpirun = shutil.which('mpirun')
    # --oversubscribe: more ranks than cores; root: Open MPI refuses without the flag
    return [mpirun, '--allow-run-as-root', '--oversubscribe', '-np', str(n)] + list(extra)


def mpi_env():
    env = dict(os.environ)
    env['OMPI_MCA_rmaps_base_oversubscribe'] = '1'
    env['OMPI_MCA_btl_vader_single_copy_mechanism'] = 'none'  # containers without CMA
    return env


def run(cmd, cwd, timeout=TIMEOUT):
    try:
        p = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           cwd=cwd, env=mpi_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, '', 'TIMEOUT after %ds' % timeout
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


def synth(synth_exe, tmp, shard=None):
    base, child = os.path.join(tmp, 'base'), os.path.join(tmp, 'child')
    shape = ['--preset', 'tiny', '--layers', '4', '--hidden', '256', '--intermediate', '512',
             '--vocab', '2048', '--heads', '8', '--kv-heads', '4', '--head-dim', '32']
    extra = ['--shard-size', shard] if shard else []
    for cmd in ([synth_exe, 'init', '-o', base, '--seed', '7'] + shape + extra,
                [synth_exe, 'update', base, '-o', child, '--optimizer', 'adamw', '--stripes',
                 '--seed', '8'] + extra):
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            print('ckpt-synth failed: %s' % p.stderr.decode())
            sys.exit(1)
    return base, child


def strip_timing(x):
    if isinstance(x, dict):
        return {k: strip_timing(v) for k, v in x.items() if k != 'seconds'}
    if isinstance(x, list):
        return [strip_timing(v) for v in x]
    return x


def mask_table(s):
    return re.sub(r'\b\d+\.\d+ ?s\b', '<t>', s)


def compare_run(exe, n, args, tmp, fails, label, h5=False, text=False):
    """Runs `exe args` once plainly in tmp/one and under n ranks in tmp/n<n>; compares."""
    d1, dn = os.path.join(tmp, 'one'), os.path.join(tmp, 'n%d' % n)
    for d in (d1, dn):
        os.makedirs(d, exist_ok=True)
        if os.path.exists(os.path.join(d, 'out.h5')):
            os.remove(os.path.join(d, 'out.h5'))
    r1 = run([exe] + args, d1)
    rn = run(mpirun_cmd(n) + [exe] + args, dn)
    if r1[0] != 0 or rn[0] != 0:
        fails.append('%s: exit %r (one process) and %r (%d ranks): %s %s'
                     % (label, r1[0], rn[0], n, r1[2][-500:], rn[2][-500:]))
        return
    if rn[2].strip():
        fails.append('%s: %d ranks wrote to stderr: %r' % (label, n, rn[2][-500:]))
    if text:
        if mask_table(r1[1]) != mask_table(rn[1]):
            fails.append('%s: table differs:\n%s\n---\n%s' % (label, r1[1][:800], rn[1][:800]))
    else:
        j1, jn = json.loads(r1[1]), json.loads(rn[1])
        if strip_timing(j1) != strip_timing(jn):
            fails.append('%s: JSON differs between 1 process and %d ranks' % (label, n))
        elif 'seconds' not in r1[1] and r1[1] != rn[1]:
            fails.append('%s: JSON not byte-identical' % label)
    if h5:
        compare_h5(os.path.join(d1, 'out.h5'), os.path.join(dn, 'out.h5'), fails, label)


def compare_h5(p1, p2, fails, label):
    import h5py
    if not os.path.exists(p2):
        fails.append('%s: %d-rank run wrote no %s' % (label, 0, p2))
        return
    with h5py.File(p1, 'r') as f1, h5py.File(p2, 'r') as f2:
        seen = []

        def attrs(name, o1, o2):
            k1, k2 = sorted(o1.attrs.keys()), sorted(o2.attrs.keys())
            if k1 != k2:
                fails.append('%s: %s attributes %r vs %r' % (label, name, k1, k2))
                return
            for k in k1:
                a, b = o1.attrs[k], o2.attrs[k]
                if not same(a, b):
                    fails.append('%s: %s attribute %s: %r vs %r' % (label, name, k, a, b))

        def visit(name, o1):
            seen.append(name)
            if name not in f2:
                fails.append('%s: %s missing with MPI' % (label, name))
                return
            o2 = f2[name]
            attrs(name, o1, o2)
            if isinstance(o1, h5py.Dataset):
                if o1.dtype != o2.dtype or o1.shape != o2.shape:
                    fails.append('%s: %s dtype/shape %s %s vs %s %s'
                                 % (label, name, o1.dtype, o1.shape, o2.dtype, o2.shape))
                elif not same(o1[()], o2[()]):
                    fails.append('%s: dataset %s differs' % (label, name))

        attrs('/', f1, f2)
        f1.visititems(visit)
        extra = []
        f2.visit(lambda n: extra.append(n) if n not in seen else None)
        if extra:
            fails.append('%s: only with MPI: %r' % (label, extra[:5]))
        if len(seen) < 3:
            fails.append('%s: the file holds only %r' % (label, seen))


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == 'f':
        return bool(np.array_equal(a, b, equal_nan=True))
    if a.dtype.names:
        return a.tobytes() == b.tobytes()
    return bool(np.array_equal(a, b))


def case_json2(exe, synth_exe, tmp, fails):
    base, child = synth(synth_exe, tmp)
    compare_run(exe, 2, [base, child, '--json', '--tol', '1e-5,1e-3', '--rtol', '1e-3'], tmp,
                fails, 'json')
    compare_run(exe, 2, [base, child, '--quiet'], tmp, fails, 'table', text=True)
    compare_run(exe, 2, [base, child, '--by-layer'], tmp, fails, 'by-layer', text=True)


def case_h5_2(exe, synth_exe, tmp, fails):
    base, child = synth(synth_exe, tmp)
    compare_run(exe, 2, [base, child, '--json', '--h5', 'out.h5', '--masks', '--maps', '--hist',
                         '--tol', '1e-5,1e-3', '--rtol', '1e-3'], tmp, fails, 'h5', h5=True)


def case_ranks3(exe, synth_exe, tmp, fails):
    base, child = synth(synth_exe, tmp, shard='2MB')
    if not os.path.exists(os.path.join(base, 'model.safetensors.index.json')):
        fails.append('ckpt-synth wrote no sharded folder')
    compare_run(exe, 3, [base, child, '--json', '--h5', 'out.h5', '--masks', '--hist', '--maps'],
                tmp, fails, 'ranks3', h5=True)


def case_many_ranks(exe, synth_exe, tmp, fails):
    rng = np.random.default_rng(3)
    a = {'x.weight': ('F32', (40, 30), rng.standard_normal(1200).astype(np.float32).view(np.uint32)),
         'y.weight': ('BF16', (70,), rng.integers(0, 1 << 15, 70).astype(np.uint16)),
         'z.empty': ('F32', (0, 4), np.zeros(0, np.uint32))}
    b = {k: (dt, sh, bits.copy()) for k, (dt, sh, bits) in a.items()}
    b['x.weight'][2][::7] ^= 1
    b['y.weight'][2][::3] ^= 4
    pa, pb = os.path.join(tmp, 'a.safetensors'), os.path.join(tmp, 'b.safetensors')
    L.write_st(pa, a)
    L.write_st(pb, b)
    compare_run(exe, 5, [pa, pb, '--json', '--h5', 'out.h5', '--masks', '--hist'], tmp, fails,
                'many_ranks', h5=True)


def case_missing_file(exe, synth_exe, tmp, fails):
    base, _ = synth(synth_exe, tmp)
    missing = os.path.join(tmp, 'nope')
    rc1, out1, err1 = run([exe, base, missing, '--h5', 'out.h5'], tmp)
    rc, out, err = run(mpirun_cmd(2) + [exe, base, missing, '--h5', 'out.h5'], tmp, timeout=60)
    if rc is None:
        fails.append('missing file: hung (%s)' % err)
        return
    if rc != 2 or rc1 != 2:
        fails.append('missing file: exit %r under MPI, %r alone (want 2)' % (rc, rc1))
    if out:
        fails.append('missing file: stdout %r' % out[:300])
    msg = err1.strip()
    if err.count(msg) != 1:
        fails.append('missing file: the message %r %d times in %r' % (msg, err.count(msg), err))
    left = [f for f in os.listdir(tmp) if f.startswith('out.h5')]
    if left:
        fails.append('missing file: left %r' % left)


def case_rank_fails(exe, synth_exe, tmp, fails):
    good, bad = os.path.join(tmp, 'good'), os.path.join(tmp, 'bad')
    os.makedirs(good)
    os.makedirs(bad)
    synth(synth_exe, good)
    args = ['base', 'child', '--json', '--h5', 'out.h5']
    cmd = (mpirun_cmd(1, ['--wdir', good]) + [exe] + args + [':', '-np', '1', '--wdir', bad]
           + [exe] + args)
    rc, out, err = run(cmd, tmp, timeout=60)
    if rc is None:
        fails.append('rank 1 fails: hung (%s)' % err)
        return
    if rc != 2:
        fails.append('rank 1 fails: exit %r, want 2: %s' % (rc, err[-500:]))
    if out:
        fails.append('rank 1 fails: stdout %r' % out[:300])
    n = len(re.findall(r'sparsity-scan: base.*cannot open', err))
    if n != 1:
        fails.append('rank 1 fails: rank 1\'s message %d times in %r' % (n, err[-800:]))
    for d in (good, bad):
        left = [f for f in os.listdir(d) if f.startswith('out.h5')]
        if left:
            fails.append('rank 1 fails: left %r in %s' % (left, d))


def case_usage(exe, synth_exe, tmp, fails):
    rc, out, err = run(mpirun_cmd(2) + [exe, '--series', tmp], tmp, timeout=60)
    if rc != 1 or err.count('--series does not run under MPI') != 1 or out:
        fails.append('--series under MPI: exit %r, stdout %r, stderr %r' % (rc, out, err[-500:]))
    rc, out, err = run(mpirun_cmd(2) + [exe, '--version'], tmp, timeout=60)
    if rc != 0 or out.count('sparsity-scan ') != 1:
        fails.append('--version under MPI: exit %r, stdout %r' % (rc, out))
    rc, out, err = run(mpirun_cmd(2) + [exe, '--tol', 'x', 'a', 'b'], tmp, timeout=60)
    if rc != 1 or err.count('--tol') != 1:
        fails.append('usage error under MPI: exit %r, stderr %r' % (rc, err[-500:]))


CASES = {'json2': case_json2, 'h5_2': case_h5_2, 'ranks3': case_ranks3,
         'many_ranks': case_many_ranks, 'missing_file': case_missing_file,
         'rank_fails': case_rank_fails, 'usage': case_usage}


def main():
    if len(sys.argv) < 5 or sys.argv[1] not in CASES:
        print(__doc__)
        return 1
    case, exe, synth_exe, have = sys.argv[1:5]
    exe, synth_exe = os.path.abspath(exe), os.path.abspath(synth_exe)
    if have != 'mpi':
        print('skip: built without MPI support')
        return SKIP
    if not shutil.which('mpirun'):
        print('skip: no mpirun on PATH')
        return SKIP
    try:
        import h5py  # noqa: F401
    except ImportError:
        print('skip: no h5py')
        return SKIP
    fails = []
    with L.tempdir() as tmp:
        CASES[case](exe, synth_exe, tmp, fails)
    L.finish('mpi_' + case, fails)


if __name__ == '__main__':
    sys.exit(main())
