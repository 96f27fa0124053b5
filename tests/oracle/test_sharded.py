#!/usr/bin/python3
"""oracle_sharded: a single-file A against a sharded B (model.safetensors.index.json + 3 shards,
tensors in a shuffled order, index keys shuffled), tensors only in A and only in B; also the
swapped direction, a folder holding model.safetensors, and sharded against sharded.

usage: test_sharded.py [path/to/sparsity-scan]"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402
import sslib as L  # noqa: E402

TOLS = [1e-5, 1e-3]


def model(rng):
    """A tiny transformer-shaped checkpoint pair: B is A after a few optimizer steps."""
    A = {}
    B = {}
    hid, inter, vocab = 64, 160, 300

    def pair(name, dt, shape, how):
        if how == 'sgd':
            a, b = gen.sgd_like_bf16(rng, shape, gscale=1e-4)
        elif how == 'same':
            a, _ = gen.adamw_like(dt, rng, shape)
            b = a.copy()
        else:
            a, b = gen.adamw_like(dt, rng, shape)
        A[name] = (dt, shape, a)
        B[name] = (dt, shape, b)

    pair('model.embed_tokens.weight', 'BF16', [vocab, hid], 'sgd')
    for i in range(2):
        p = 'model.layers.%d.' % i
        for m in ('q_proj', 'k_proj', 'v_proj', 'o_proj'):
            pair(p + 'self_attn.%s.weight' % m, 'BF16', [hid, hid], 'sgd' if m != 'o_proj' else 'adamw')
        pair(p + 'mlp.gate_proj.weight', 'BF16', [inter, hid], 'adamw')
        pair(p + 'mlp.up_proj.weight', 'F32', [inter, hid], 'adamw')
        pair(p + 'mlp.down_proj.weight', 'F16', [hid, inter], 'adamw')
        pair(p + 'input_layernorm.weight', 'F32', [hid], 'same')
        pair(p + 'post_attention_layernorm.weight', 'BF16', [hid], 'sgd')
    pair('model.norm.weight', 'F32', [hid], 'adamw')
    pair('lm_head.weight', 'BF16', [vocab, hid], 'adamw')
    A['model.rotary.inv_freq'] = ('F32', [hid // 2], np.arange(hid // 2, dtype=np.float32).view(np.uint32))
    A['zz.only_in_a'] = ('I64', [3], np.array([1, 2, 3], np.int64).view(np.uint64))
    B['aa.only_in_b'] = ('U8', [4], np.array([1, 2, 3, 4], np.uint8))
    B['value_head.bias'] = ('F32', [], np.array([0.5], np.float32).view(np.uint32))
    return A, B


def main():
    exe = L.find_exe(sys.argv)
    rng = np.random.default_rng(7)
    A, B = model(rng)
    fails = []
    with L.tempdir() as td:
        pa = os.path.join(td, 'a.safetensors')
        L.write_st(pa, A, metadata={'format': 'pt', 'note': 'a "quoted" value'})
        db = os.path.join(td, 'b-sharded')
        L.write_sharded(db, B, 3, rng, metadata={'format': 'pt'})
        da = os.path.join(td, 'a-folder')
        os.makedirs(da)
        L.write_st(os.path.join(da, 'model.safetensors'), A)
        da2 = os.path.join(td, 'a-sharded')
        L.write_sharded(da2, A, 3, rng)

        ca = L.read_checkpoint(pa)
        cb = L.read_checkpoint(db)
        if set(ca) != set(L.read_checkpoint(da)) or set(ca) != set(L.read_checkpoint(da2)):
            fails.append('oracle: the A copies differ (test bug)')
        exp = L.expected_report(ca, cb, TOLS, rtol=1e-3)
        exp_swap = L.expected_report(cb, ca, TOLS, rtol=1e-3)
        if not exp['only_in_a'] or not exp['only_in_b']:
            fails.append('oracle: only_in lists empty (test bug)')
        reports = {}
        for label, x, y, e in (('file vs sharded', pa, db, exp),
                               ('sharded vs file', db, pa, exp_swap),
                               ('folder(model.safetensors) vs sharded', da, db, exp),
                               ('sharded vs sharded', da2, db, exp)):
            got = L.run_json(exe, [x, y, '--tol', L.tol_arg(TOLS), '--rtol', '1e-3', '--threads', 2],
                             fails, label)
            if got is not None:
                reports[label] = got
                fails += ['%s: %s' % (label, d) for d in L.compare_report(e, got, rtol=1e-3, paths=(x, y))]
        base = reports.get('file vs sharded')
        for label in ('folder(model.safetensors) vs sharded', 'sharded vs sharded'):
            if base is not None and label in reports and \
                    L.numbers_only(reports[label]) != L.numbers_only(base):
                fails.append('%s: numbers differ from file vs sharded' % label)
    L.finish('oracle_sharded', fails)


if __name__ == '__main__':
    main()
