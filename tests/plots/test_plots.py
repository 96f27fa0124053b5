#!/usr/bin/python3
"""sparsity-plot (suite 'plots'): the figures drawn from sparsity-scan / -series / -overlap reports
and a grpo-train run folder, the numbers in FIGDIR/data/ against h5py reading the same reports,
the skip notes, and the error exits (docs/sparsity-plot.md).

usage: test_plots.py CASE sparsity-plot sparsity-scan sparsity-overlap ckpt-synth ckpt-delta
  figures  complete inputs: every figure kind drawn, data files right, replot.sh redraws
  skips    a bare scan report and a run folder without metrics.jsonl: skip notes
  errors   usage errors (1), bad inputs (2), gnuplot missing or failing (5, no partial figure)
Exits 0 (pass), 1 (fail, printing what differed) or 77 (skip)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

PLOT, SCAN, OVERLAP, SYNTH, DELTA = sys.argv[2:7]
FAILS = []
PNG_SIG = b'\x89PNG\r\n\x1a\n'


def fail(msg):
    FAILS.append(msg)


def run(args, env=None, cwd=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run(args, capture_output=True, text=True, env=e, cwd=cwd)


def must(args, **kw):
    p = run(args, **kw)
    if p.returncode != 0:
        print('command failed (%d): %s\n%s%s' % (p.returncode, ' '.join(args), p.stdout,
                                                 p.stderr))
        sys.exit(1)
    return p


def make_inputs(d, full=True):
    """Reports and a run folder under d (a 4-layer Qwen3-like model of about 0.7M weights)."""
    shape = ['--preset', 'tiny', '--layers', '4', '--hidden', '128', '--intermediate', '256',
             '--heads', '4', '--kv-heads', '2', '--head-dim', '32', '--vocab', '512',
             '--threads', '2']
    j = lambda *p: os.path.join(d, *p)  # noqa: E731
    must([SYNTH, 'init', '-o', j('base')] + shape)
    must([SYNTH, 'update', j('base'), '-o', j('sgd'), '--optimizer', 'sgd', '--lr', '3',
          '--stripes', '--threads', '2'])
    must([SYNTH, 'update', j('base'), '-o', j('adamw'), '--optimizer', 'adamw', '--stripes',
          '--threads', '2'])
    if not full:
        must([SCAN, j('base'), j('sgd'), '--h5', j('bare.h5'), '--quiet'])
        os.makedirs(j('run'))
        return
    must([SYNTH, 'update', j('base'), '-o', j('adamw2'), '--optimizer', 'adamw', '--stripes',
          '--seed', '7', '--threads', '2'])
    os.makedirs(j('run'))
    shutil.copy(j('base', 'model.safetensors'), j('run', 'base.safetensors'))
    shutil.copy(j('base', 'config.json'), j('run', 'config.json'))
    for s in (10, 20, 40):
        must([SYNTH, 'update', j('base'), '-o', j('c%d' % s), '--optimizer', 'adamw',
              '--steps', str(s), '--threads', '2'])
        must([DELTA, 'snapshot', j('run'), j('c%d' % s), '--step', str(s)])
    for r in ('sgd', 'adamw', 'adamw2'):
        must([SCAN, j('base'), j(r), '--h5', j(r + '.h5'), '--masks', '--maps', '--hist',
              '--rank', '--tol', '1e-6,1e-5,1e-4', '--rtol', '1e-3', '--quiet'])
    must([SCAN, '--series', j('run'), '--h5', j('series.h5'), '--quiet'])
    must([OVERLAP, j('sgd.h5'), j('adamw.h5'), j('adamw2.h5'), '--h5', j('overlap.h5')])
    with open(j('run', 'metrics.jsonl'), 'w') as f:
        f.write('{"step": 0, "eval_acc": 0.25}\n')
        for s in range(1, 9):
            f.write(json.dumps({'step': s, 'reward_mean': 0.1 * s, 'reward_std': 0.3,
                                'kl': 0.001 * s * s, 'entropy': 1.5 - 0.1 * s,
                                'resp_len_mean': 6 - 0.25 * s, 'grad_norm': None}) + '\n')
            if s % 4 == 0:
                f.write(json.dumps({'step': s, 'eval_acc': 0.25 + 0.05 * s}) + '\n')


def load(path):
    """The numeric columns of a data file (comment lines skipped; text columns dropped)."""
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            out = []
            for w in line.split():
                try:
                    out.append(float(w))
                except ValueError:
                    out.append(w)
            rows.append(out)
    return rows


def close(a, b, what, rel=1e-12):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or not np.allclose(a, b, rtol=rel, atol=0, equal_nan=True):
        fail('%s: %r != %r' % (what, a.tolist()[:12], b.tolist()[:12]))


def check_png(path):
    try:
        with open(path, 'rb') as f:
            head = f.read(8)
        size = os.path.getsize(path)
    except OSError as e:
        fail('%s: %s' % (path, e))
        return
    if head != PNG_SIG:
        fail('%s: not a PNG (%r)' % (path, head))
    if size < 8000:
        fail('%s: only %d bytes' % (path, size))


def case_figures(tmp):
    import h5py
    make_inputs(tmp)
    j = lambda *p: os.path.join(tmp, *p)  # noqa: E731
    figs = j('figs')
    p = run([PLOT, j('sgd.h5'), j('adamw.h5'), j('adamw2.h5'), j('series.h5'), j('overlap.h5'),
             j('run'), '-o', figs, '--label', 'SGD'])
    if p.returncode != 0:
        fail('sparsity-plot exit %d: %s' % (p.returncode, p.stderr))
        return
    if 'skipped:' in p.stderr:
        fail('complete inputs, yet skipped: %s' % p.stderr)
    mid = 'model.layers.2.self_attn.'
    want = ['training', 'eval_acc', 'sparsity', 'series', 'layer_lines', 'tolerance',
            'rank_energy', 'split-run', 'consensus-overlap']
    for lab in ('SGD', 'adamw', 'adamw2'):
        want += ['layers-' + lab, 'rank_fraction-' + lab, 'rank_spectra-' + lab]
        want += ['map-%s-2.self_attn.%s' % (lab, m) for m in ('q_proj', 'k_proj', 'v_proj',
                                                              'o_proj')]
    want += ['overlap-overlap-0_1', 'overlap-overlap-0_2', 'overlap-overlap-1_2']
    for w in want:
        check_png(os.path.join(figs, w + '.png'))
        if ('drawn: %s/%s.png' % (figs, w)) not in p.stderr:
            fail('stderr does not list %s as drawn' % w)
    leftovers = [n for n in os.listdir(figs) + os.listdir(os.path.join(figs, 'data'))
                 if '.tmp.' in n]
    if leftovers:
        fail('temporary files left: %r' % leftovers)
    data = lambda n: load(os.path.join(figs, 'data', n))  # noqa: E731

    # training and eval_acc: the metrics.jsonl numbers
    tr = data('training-run.dat')
    close([r[0] for r in tr], range(1, 9), 'training steps')
    close([r[1] for r in tr], [0.1 * s for s in range(1, 9)], 'training reward_mean')
    close([r[2] for r in tr], [0.001 * s * s for s in range(1, 9)], 'training kl')
    close([r[4] for r in tr], [6 - 0.25 * s for s in range(1, 9)], 'training resp_len_mean')
    ev = data('eval_acc-run.dat')
    close(ev, [[0, 0.25], [4, 0.45], [8, 0.65]], 'eval_acc')

    # sparsity: changed fractions per run and measure
    sp = data('sparsity.dat')
    for i, r in enumerate(('sgd', 'adamw', 'adamw2')):
        with h5py.File(j(r + '.h5'), 'r') as f:
            t = f['totals'].attrs
            n = float(t['numel'])
            exp = [t['changed'] / n] + [c / n for c in t['changed_tol']] + \
                  [t['changed_rtol'] / n]
        got = [row[2] for row in sp if row[0] == i]
        close(got, exp, 'sparsity.dat run %s' % r)
    lab = [row[6] for row in sp if row[0] == 0 and row[1] == 0]
    if lab != ['SGD']:
        fail('--label not applied: %r' % lab)

    # series and split
    with h5py.File(j('series.h5'), 'r') as f:
        n = float(f['series'].attrs['numel'])
        se = data('series-run.dat')
        close([r[0] for r in se], f['series/step'][...], 'series steps')
        close([r[1] for r in se], f['series/changed_vs_base'][...] / n, 'series vs base')
        close([r[2] for r in se], f['series/changed_consecutive'][...] / n, 'series consecutive')
        sl = data('split-run.dat')
        a = f['split'].attrs
        close(sl[-1][2:6], [a['numel'], a['never'], a['restored'], a['final']], 'split all')
        close(sl[-1][6:9], [a['never_fraction'], a['restored_fraction'], a['final_fraction']],
              'split fractions', rel=1e-9)
        mods = f['split/modules/module'].asstr()[...]
        got = {r[1]: r[3:6] for r in sl[:-1]}
        for k, m in enumerate(mods):
            close(got[m], [f['split/modules/' + c][k] for c in ('never', 'restored', 'final')],
                  'split module %s' % m)

    # layer x module heat map and per-layer lines (layers >= 0)
    with h5py.File(j('adamw.h5'), 'r') as f:
        layers = f['layers/layer'][...]
        sp2 = f['layers/sparsity'][...]
        mods = list(f['layers/module'].asstr()[...])
        hm = data('layers-adamw.dat')
        for row in hm:
            li = list(layers).index(int(row[0]))
            close([row[2]], [1 - sp2[li, mods.index(row[4])]], 'heat map %s' % row[4:])
        if len(hm) != 4 * 11:
            fail('heat map: %d cells, want 44' % len(hm))
        ll = data('layer_lines-adamw.dat')
        keep = layers >= 0
        close([r[1] for r in ll], 1 - f['layers/layer_sparsity'][...][keep], 'layer lines')
        close([r[2] for r in ll], 1 - f['layers/layer_mean_matrix_sparsity'][...][keep],
              'layer lines mean')

        # maps: row and column fractions, density, heads
        g = f['maps/' + mid + 'q_proj.weight']
        R, C = int(g.attrs['rows']), int(g.attrs['cols'])
        base = 'map-adamw-2.self_attn.q_proj-'
        close([r[2] for r in data(base + 'rows.dat')], g['row_changed'][...] / C, 'map rows')
        close([r[2] for r in data(base + 'cols.dat')], g['col_changed'][...] / R, 'map cols')
        dens = g['cell_changed'][...] / np.outer(np.diff(g['row_edges'][...]),
                                                 np.diff(g['col_edges'][...]))
        close(data(base + 'density.dat'), dens, 'map density', rel=1e-5)

        close([r[1] for r in data(base + 'heads.dat')], g['head_fraction'][...], 'map heads')

        # tolerance curve: changed at 2^k over the used bins, exactly /hist's changed_at_pow2
        h = f['hist']
        e = list(h['exponent'][...])
        n = float(f['totals'].attrs['numel'])
        cur = data('tolerance_abs-adamw.dat')
        for row in cur:
            k = e.index(int(row[0]))
            close([row[1], row[3]], [2.0 ** row[0], h['total_changed_at_pow2'][k]],
                  'tolerance curve at 2^%d' % row[0])
        pts = data('tolerance_points-adamw.dat')
        close([r[0] for r in pts], list(f.attrs['tolerances']) + [f.attrs['rtol']],
              'tolerance points')

        # rank: Frobenius-weighted energy at r
        rk = f['rank']
        en = rk['energy_at_r'][...]
        w = rk['frobenius'][...] ** 2
        close([r[1] for r in data('rank_energy-adamw.dat')], (en * w[:, None]).sum(0) / w.sum(),
              'rank energy', rel=1e-9)
        rf = data('rank_fraction-adamw.dat')
        got = {r[8]: r[2] for r in rf}
        names = list(rk['name'].asstr()[...])
        close([got[nm] for nm in names], rk['numerical_rank_fraction'][...], 'rank fractions')
        sv = rk['singular_values/' + mid + 'q_proj.weight'][...]
        close([r[1] for r in data('rank_sv-adamw-2.self_attn.q_proj.dat')], sv, 'spectrum')

    # overlap and consensus
    with h5py.File(j('overlap.h5'), 'r') as f:
        g = f['pairs/1_2']
        ov = data('overlap-overlap-1_2.dat')
        close(ov[-1][2:8], [g.attrs[c] for c in ('o1', 'o1_random', 'o2', 'o2_random',
                                                   'jaccard', 'jaccard_random')], 'overlap all')
        mods = list(g['modules/module'].asstr()[...])
        for row in ov[:-1]:
            k = mods.index(row[1])
            close(row[2:4], [g['modules/o1'][k], g['modules/o1_random'][k]],
                  'overlap %s' % row[1])
        cs = data('consensus-overlap.dat')
        close([r[1] for r in cs], f['consensus'].attrs['share'], 'consensus share')
        close([r[2] for r in cs], f['consensus'].attrs['expected'], 'consensus expected')

    # replot.sh redraws every figure by hand from data/ and scripts/
    for w in want:
        os.remove(os.path.join(figs, w + '.png'))
    r = run(['sh', os.path.join(figs, 'replot.sh')])
    if r.returncode != 0:
        fail('replot.sh exit %d: %s' % (r.returncode, r.stderr[-2000:]))
    for w in want:
        check_png(os.path.join(figs, w + '.png'))

    # --format svg and --tensor
    s = run([PLOT, j('adamw.h5'), '-o', j('svg'), '--format', 'svg', '--tensor',
             'model.layers.0.mlp.down_proj.weight', '--tensor', 'no.such.tensor'])
    if s.returncode != 0:
        fail('svg exit %d: %s' % (s.returncode, s.stderr))
    elif not os.path.exists(j('svg', 'map-adamw-0.mlp.down_proj.svg')):
        fail('--tensor: no map of down_proj: %s' % sorted(os.listdir(j('svg'))))
    elif "no.such.tensor" not in s.stderr:
        fail('--tensor of a missing tensor: no note: %s' % s.stderr)
    else:
        with open(j('svg', 'sparsity.svg')) as fh:
            if '<svg' not in fh.read(2000):
                fail('sparsity.svg is not SVG')

    # a report written before the cell counts (f64 "density" instead of cell_changed and the
    # edges) still plots, from its stored densities
    shutil.copy(j('adamw.h5'), j('old.h5'))
    with h5py.File(j('old.h5'), 'r+') as f:
        g = f['maps/' + mid + 'q_proj.weight']
        dens = g['cell_changed'][...] / np.outer(np.diff(g['row_edges'][...]),
                                                 np.diff(g['col_edges'][...]))
        for name in list(f['maps']):
            g = f['maps'][name]
            sizes = np.outer(np.diff(g['row_edges'][...]), np.diff(g['col_edges'][...]))
            g['density'] = g['cell_changed'][...] / sizes
            for ds in ('cell_changed', 'row_edges', 'col_edges'):
                del g[ds]
    p = run([PLOT, j('old.h5'), '-o', j('figs-old'), '--label', 'old'])
    if p.returncode != 0:
        fail('sparsity-plot of an old-layout report: exit %d: %s' % (p.returncode, p.stderr))
    else:
        old = os.path.join(tmp, 'figs-old', 'data', 'map-old-2.self_attn.q_proj-density.dat')
        close(load(old), dens, 'old-layout map density', rel=1e-5)


def case_skips(tmp):
    make_inputs(tmp, full=False)
    j = lambda *p: os.path.join(tmp, *p)  # noqa: E731
    p = run([PLOT, j('bare.h5'), j('run'), '-o', j('figs')])
    if p.returncode != 0:
        fail('exit %d: %s' % (p.returncode, p.stderr))
        return
    for w in ('sparsity', 'layers-sgd', 'layer_lines', 'tolerance'):
        check_png(j('figs', w + '.png'))
    notes = ['skipped: training: %s: no metrics.jsonl' % j('run'),
             'skipped: series: no sparsity-series report',
             'skipped: map-sgd: %s has no /maps' % j('bare.h5'),
             'has no /hist (rerun sparsity-scan with --hist)',
             'skipped: rank: %s has no /rank' % j('bare.h5'),
             'skipped: overlap: no sparsity-overlap report',
             'skipped: split: no sparsity-series report']
    for n in notes:
        if n not in p.stderr:
            fail('no note %r in:\n%s' % (n, p.stderr))
    drawn = sorted(f for f in os.listdir(j('figs')) if f.endswith('.png'))
    if drawn != ['layer_lines.png', 'layers-sgd.png', 'sparsity.png', 'tolerance.png']:
        fail('figures drawn: %r' % drawn)
    # a run folder with metrics but no eval lines: training drawn, eval_acc skipped
    with open(j('run', 'metrics.jsonl'), 'w') as f:
        f.write('{"step": 1, "reward_mean": 0.5}\n{"step": 2, "reward_mean": 0.6}\n')
    p = run([PLOT, j('run'), '-o', j('figs2')])
    if p.returncode != 0 or 'eval_acc' not in p.stderr or 'no eval_acc lines' not in p.stderr:
        fail('metrics without eval: exit %d: %s' % (p.returncode, p.stderr))
    check_png(j('figs2', 'training.png'))


def case_errors(tmp):
    j = lambda *p: os.path.join(tmp, *p)  # noqa: E731
    os.makedirs(j('run'))
    with open(j('run', 'metrics.jsonl'), 'w') as f:
        f.write('{"step": 1, "reward_mean": 0.5, "kl": 0.1}\n')
    usage = [[], [j('run')], ['-o', j('f')], [j('run'), '-o', j('f'), '--format', 'bmp'],
             [j('run'), '-o', j('f'), '--bogus'], [j('run'), '-o', j('f'), '--label', 'a',
                                                     '--label', 'b'],
             [j('run'), '-o']]
    for a in usage:
        p = run([PLOT] + a)
        if p.returncode != 1:
            fail('usage %r: exit %d, want 1: %s' % (a, p.returncode, p.stderr))
    if run([PLOT, '--help']).returncode != 0:
        fail('--help does not exit 0')
    # unreadable or malformed inputs: exit 2
    with open(j('junk.h5'), 'w') as f:
        f.write('not hdf5')
    os.makedirs(j('bad'))
    with open(j('bad', 'metrics.jsonl'), 'w') as f:
        f.write('{"step": 1, "kl": 0.1}\n{"step": 2, "kl": \n')
    for a, what in (([j('nope.h5')], 'cannot open'), ([j('junk.h5')], 'not an HDF5 file'),
                    ([j('bad')], 'line 2')):
        p = run([PLOT] + a + ['-o', j('f2')])
        if p.returncode != 2 or what not in p.stderr:
            fail('bad input %r: exit %d: %s' % (a, p.returncode, p.stderr))
    if os.path.exists(j('f2')):
        fail('bad input: FIGDIR was created')
    # gnuplot missing: exit 5, a clear message, nothing written
    p = run([PLOT, j('run'), '-o', j('f3')], env={'SS_GNUPLOT': '/nonexistent/gnuplot'})
    if p.returncode != 5 or 'gnuplot' not in p.stderr or 'SS_GNUPLOT' not in p.stderr:
        fail('gnuplot missing: exit %d: %s' % (p.returncode, p.stderr))
    if os.path.exists(j('f3')):
        fail('gnuplot missing: FIGDIR was created')
    p = run([PLOT, j('run'), '-o', j('f3')], env={'PATH': j('empty-path')})
    if p.returncode != 5:
        fail('gnuplot not on PATH: exit %d: %s' % (p.returncode, p.stderr))
    # gnuplot that fails while drawing, after writing part of its output: no partial figure
    fake = j('fake-gnuplot')
    with open(fake, 'w') as f:
        f.write('#!/bin/sh\n'
                '# passes the terminal probe, then fails every figure after a partial write\n'
                'case "$2" in "set terminal"*) exit 0 ;; esac\n'
                'out=$(printf "%s" "$2" | sed -n "s/.*out=\'\\([^\']*\\)\'.*/\\1/p")\n'
                'printf "partial" > "$out"\n'
                'echo "line 3: simulated failure" >&2\n'
                'exit 1\n')
    os.chmod(fake, 0o755)
    p = run([PLOT, j('run'), '-o', j('f4')], env={'SS_GNUPLOT': fake})
    if p.returncode != 5 or 'simulated failure' not in p.stderr:
        fail('gnuplot failing: exit %d: %s' % (p.returncode, p.stderr))
    if os.path.isdir(j('f4')):
        left = [n for n in os.listdir(j('f4')) if os.path.isfile(j('f4', n))]
        if left:
            fail('gnuplot failing: files left in FIGDIR: %r' % left)
    # an unwritable FIGDIR: exit 4
    with open(j('afile'), 'w') as f:
        f.write('x')
    if shutil.which('gnuplot'):
        p = run([PLOT, j('run'), '-o', j('afile', 'figs')])
        if p.returncode != 4:
            fail('unwritable FIGDIR: exit %d: %s' % (p.returncode, p.stderr))


def main():
    case = sys.argv[1]
    if case in ('figures', 'skips') and not shutil.which(os.environ.get('SS_GNUPLOT',
                                                                         'gnuplot')):
        print('gnuplot not found: skipped')
        sys.exit(77)
    if case in ('figures', 'skips'):
        try:
            import h5py  # noqa: F401
        except ImportError:
            print('h5py not found: skipped')
            sys.exit(77)
    with tempfile.TemporaryDirectory(prefix='ss-plots-') as tmp:
        {'figures': case_figures, 'skips': case_skips, 'errors': case_errors}[case](tmp)
    if FAILS:
        print('\n'.join('FAIL: ' + f for f in FAILS))
        sys.exit(1)
    print('ok')


if __name__ == '__main__':
    main()
