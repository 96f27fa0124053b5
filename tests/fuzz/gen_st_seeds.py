#!/usr/bin/python3
"""Writes the seed corpora of the safetensors fuzz harnesses (checked in; rerun after changing
the cases, then commit the folders):

    tests/fuzz/corpus/st_header/   whole .safetensors files for fuzz_st_header: the valid and
                                   malformed cases of tests/formats/malformed_corpus.py (those
                                   under 4 KiB)
    tests/fuzz/corpus/st_index/    model.safetensors.index.json texts for fuzz_st_index, naming
                                   the shards its fixture folder holds

Usage: gen_st_seeds.py   (from anywhere; writes next to this script)
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "formats"))
sys.dont_write_bytecode = True
import malformed_corpus  # noqa: E402  (the case lists; importing runs nothing)

MAX_SEED = 4096


def reset(name):
    path = os.path.join(HERE, "corpus", name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def header_seeds():
    out = reset("st_header")
    cases = [(n, d) for n, d, _ in malformed_corpus.GOOD] + \
            [(n, d) for n, d, _ in malformed_corpus.BAD]
    for name, data in cases:
        if len(data) <= MAX_SEED:
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)


def index_seeds():
    out = reset("st_index")
    wm = {"x": "a.safetensors", "y": "a.safetensors", "z": "b.safetensors"}
    cases = {
        "valid": {"metadata": {"total_size": 8}, "weight_map": wm},
        "valid_no_metadata": {"weight_map": wm},
        "valid_b_and_c": {"weight_map": {"z": "b.safetensors", "x": "c.safetensors"}},
        "valid_extra_keys": {"weight_map": {"z": "b.safetensors"}, "format": "pt", "n": [1, 2]},
        "empty_shard": {"weight_map": {"z": "b.safetensors", "q": "e.safetensors"}},
        "duplicate_across_shards": {"weight_map": {"x": "a.safetensors", "y": "a.safetensors",
                                                   "x2": "c.safetensors"}},
        "wrong_shard": {"weight_map": {"x": "b.safetensors", "y": "a.safetensors",
                                       "z": "b.safetensors"}},
        "missing_from_map": {"weight_map": {"x": "a.safetensors"}},
        "absent_shard": {"weight_map": {"x": "nope.safetensors"}},
        "bad_shard": {"weight_map": {"x": "bad.safetensors"}},
        "folder_shard": {"weight_map": {"x": "sub"}},
        "dotdot": {"weight_map": {"x": ".."}},
        "slash": {"weight_map": {"x": "sub/a.safetensors"}},
        "empty_name": {"weight_map": {"x": ""}},
        "index_as_shard": {"weight_map": {"x": "model.safetensors.index.json"}},
        "single_as_shard": {"weight_map": {"w": "model.safetensors"}},
        "value_not_string": {"weight_map": {"x": 1}},
        "map_not_object": {"weight_map": ["a.safetensors"]},
        "metadata_not_object": {"metadata": [], "weight_map": wm},
        "no_weight_map": {"metadata": {}},
        "empty_map": {"weight_map": {}},
        "not_object": [wm],
    }
    for name, obj in cases.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(json.dumps(obj, indent=1).encode())
    raw = {
        "duplicate_key": b'{"weight_map": {"x": "a.safetensors", "x": "a.safetensors"}}',
        "nul_in_name": b'{"weight_map": {"x\\u0000": "a.safetensors"}}',
        "truncated": b'{"weight_map": {"x": "a.safet',
        "unicode_name": '{"weight_map": {"\u00fc\u4e2d": "a.safetensors"}}'.encode(),
        "empty": b"",
    }
    for name, data in raw.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def main():
    header_seeds()
    index_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
