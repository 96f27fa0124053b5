#!/usr/bin/python3
"""Malformed-input corpus for the safetensors reader.

Usage: malformed_corpus.py ST_CHECK

Writes each case into a temporary folder and runs `ST_CHECK PATH` on it (st_check opens the path
with st_open). A malformed case must exit 2 with exactly one line on stderr that starts with the
file's path and contains a word specific to the case, and with no sanitizer report. A valid edge
case must exit 0 and print "ok N tensors". When the official `safetensors` package is importable,
the valid cases must also load in it (so "valid" here never means laxer than the reference), and
the malformed cases it accepts are listed (those are rules where we are stricter).

Exit status: 0 pass, 1 fail.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile


def st_bytes(header, data=b"", n=None):
    """A safetensors file: 8-byte little-endian header length (n, default len(header)), header,
    data."""
    if isinstance(header, str):
        header = header.encode()
    return struct.pack("<Q", len(header) if n is None else n) + header + data


def js(obj):
    """Compact JSON bytes of obj."""
    return json.dumps(obj, separators=(",", ":")).encode()


def entry(dtype, shape, offsets, **extra):
    e = {"dtype": dtype, "shape": shape, "data_offsets": offsets}
    e.update(extra)
    return e


U8_4 = entry("U8", [4], [0, 4])  # a well-formed 4-byte tensor

# (case name, file bytes, word the message must contain)
BAD = [
    ("empty", b"", "empty"),
    ("seven_bytes", b"\x02\x00\x00\x00\x00\x00\x00", "too short"),
    ("header_too_large", struct.pack("<Q", 100_000_001) + b"{}", "exceeds the limit"),
    ("header_len_huge", struct.pack("<Q", 2**64 - 1) + b"{}", "exceeds the limit"),
    ("header_past_end", struct.pack("<Q", 100) + b"{}" + b" " * 20, "past the end"),
    ("header_len_zero", st_bytes(b"", n=0), "not valid JSON"),
    ("bad_json", st_bytes(b'{"a": '), "not valid JSON"),
    ("trailing_garbage", st_bytes(b"{} x"), "not valid JSON"),
    ("nul_padding", st_bytes(b"{}\x00\x00\x00\x00\x00\x00"), "not valid JSON"),
    ("not_object_array", st_bytes(b"[]"), "not an object"),
    ("not_object_string", st_bytes(b'"abc"'), "not an object"),
    ("not_object_number", st_bytes(b"42"), "not an object"),
    ("bad_utf8", st_bytes(b'{"\xff":' + js(U8_4) + b"}", b"abcd"), "UTF-8"),
    ("overlong_utf8", st_bytes(b'{"\xc0\xaf":' + js(U8_4) + b"}", b"abcd"), "UTF-8"),
    ("surrogate_utf8", st_bytes(b'{"\xed\xa0\x80":' + js(U8_4) + b"}", b"abcd"), "UTF-8"),
    ("truncated_utf8", st_bytes(b'{"a":' + js(U8_4) + b"}\xe2\x82", b"abcd"), "UTF-8"),
    ("duplicate_keys", st_bytes(b'{"a":' + js(U8_4) + b',"a":' + js(U8_4) + b"}", b"abcd"),
     "duplicate"),
    ("duplicate_keys_in_entry",
     st_bytes(b'{"a":{"dtype":"U8","dtype":"U8","shape":[4],"data_offsets":[0,4]}}', b"abcd"),
     "duplicate"),
    ("unknown_dtype", st_bytes(js({"a": entry("F7", [4], [0, 4])}), b"abcd"), "dtype"),
    ("lowercase_dtype", st_bytes(js({"a": entry("u8", [4], [0, 4])}), b"abcd"), "dtype"),
    ("dtype_not_string", st_bytes(js({"a": entry(1, [4], [0, 4])}), b"abcd"), "dtype"),
    ("negative_shape", st_bytes(js({"a": entry("U8", [-4], [0, 4])}), b"abcd"), "negative"),
    ("minus_zero_shape", st_bytes(b'{"a":{"dtype":"U8","shape":[-0],"data_offsets":[0,0]}}'),
     "-0"),
    ("float_shape", st_bytes(js({"a": entry("U8", [4.0], [0, 4])}), b"abcd"), "integer"),
    ("exponent_shape", st_bytes(b'{"a":{"dtype":"U8","shape":[4e0],"data_offsets":[0,4]}}',
                                b"abcd"), "integer"),
    ("bool_shape", st_bytes(js({"a": entry("U8", [True], [0, 1])}), b"a"), "integer"),
    ("too_many_dims", st_bytes(js({"a": entry("U8", [1] * 2000, [0, 1])}), b"a"), "dimensions"),
    ("huge_shape_array", st_bytes(js({"a": entry("U8", [0] * 1_000_000, [0, 0])})), "1024"),
    ("shape_not_array", st_bytes(js({"a": entry("U8", 4, [0, 4])}), b"abcd"), "shape"),
    ("overflow_shape",
     st_bytes(js({"a": entry("U8", [4294967296] * 3, [0, 4])}), b"abcd"), "2^64"),
    ("overflow_bytes", st_bytes(js({"a": entry("F32", [2**62], [0, 4])}), b"abcd"), "2^64"),
    ("too_big_integer", st_bytes(js({"a": entry("U8", [2**64], [0, 4])}), b"abcd"),
     "not valid JSON"),
    ("shape_bytes_mismatch",
     st_bytes(js({"model.embed_tokens.weight": entry("BF16", [3, 2], [0, 10])}), b"x" * 10),
     "need 12"),
    ("reversed_offsets", st_bytes(js({"a": entry("U8", [4], [8, 4])}), b"x" * 8), "reversed"),
    ("out_of_range_offsets", st_bytes(js({"a": entry("U8", [10], [0, 10])}), b"abcd"),
     "past the end"),
    ("overlapping_offsets",
     st_bytes(js({"a": entry("U8", [8], [0, 8]), "b": entry("U8", [8], [4, 12])}), b"x" * 12),
     "overlap"),
    ("same_offsets",
     st_bytes(js({"a": entry("U8", [4], [0, 4]), "b": entry("U8", [4], [0, 4])}), b"x" * 4),
     "overlap"),
    ("zero_size_inside_tensor",
     st_bytes(js({"a": entry("U8", [8], [0, 8]), "z": entry("U8", [0], [4, 4])}), b"x" * 8),
     "overlap"),
    ("hole_between_tensors",
     st_bytes(js({"a": entry("U8", [4], [0, 4]), "b": entry("U8", [4], [8, 12])}), b"x" * 12),
     "hole"),
    ("hole_at_start", st_bytes(js({"a": entry("U8", [4], [4, 8])}), b"x" * 8), "hole"),
    ("trailing_bytes", st_bytes(js({"a": U8_4}), b"x" * 6), "trailing"),
    ("data_without_tensors", st_bytes(b"{}", b"x" * 4), "trailing"),
    ("deep_nesting", st_bytes(b"[" * 100_000), "deeper"),
    ("deep_nesting_objects", st_bytes(b'{"a":{"b":{"c":{"d":1}}}}'), "deeper"),
    ("metadata_non_string", st_bytes(js({"__metadata__": {"k": 1}})), "not a string"),
    ("metadata_nested", st_bytes(js({"__metadata__": {"k": {"x": "y"}}})), "not a string"),
    ("metadata_not_object", st_bytes(js({"__metadata__": "x"})), "__metadata__"),
    ("nul_in_name", st_bytes(b'{"a\\u0000b":' + js(U8_4) + b"}", b"abcd"), "u0000"),
    ("nul_in_metadata", st_bytes(b'{"__metadata__":{"k":"a\\u0000"}}'), "u0000"),
    ("lone_surrogate_escape", st_bytes(b'{"\\ud800":' + js(U8_4) + b"}", b"abcd"),
     "not valid JSON"),
    ("unknown_key_in_entry", st_bytes(js({"a": entry("U8", [4], [0, 4], extra=1)}), b"abcd"),
     "unknown key"),
    ("missing_data_offsets", st_bytes(js({"a": {"dtype": "U8", "shape": [4]}}), b"abcd"),
     "data_offsets"),
    ("missing_dtype", st_bytes(js({"a": {"shape": [4], "data_offsets": [0, 4]}}), b"abcd"),
     "dtype"),
    ("three_offsets", st_bytes(js({"a": entry("U8", [4], [0, 4, 4])}), b"abcd"), "data_offsets"),
    ("one_offset", st_bytes(js({"a": entry("U8", [4], [4])}), b"abcd"), "data_offsets"),
    ("offsets_not_array", st_bytes(js({"a": entry("U8", [4], "0,4")}), b"abcd"), "data_offsets"),
    ("float_offset", st_bytes(js({"a": entry("U8", [4], [0, 4.0])}), b"abcd"), "integer"),
    ("negative_offset", st_bytes(js({"a": entry("U8", [0], [-1, -1])})), "negative"),
    ("entry_not_object", st_bytes(js({"a": [1, 2]})), "not an object"),
    ("entry_null", st_bytes(js({"a": None})), "not an object"),
    ("name_with_newline", st_bytes(js({"a\nb": entry("U8", [4], [0, 3])}), b"abc"), "need 4"),
]

# (case name, file bytes, tensor count)
GOOD = [
    ("whitespace_around", st_bytes(b" \n\t{\"a\":" + js(U8_4) + b"} \n ", b"abcd"), 1),
    ("empty_header", st_bytes(b"{}"), 0),
    ("empty_header_padded", st_bytes(b"{}      "), 0),
    ("metadata_only", st_bytes(js({"__metadata__": {"format": "pt", "": ""}})), 0),
    ("zero_size_tensors",
     st_bytes(js({"z0": entry("F32", [0, 3], [0, 0]), "a": entry("U8", [4], [0, 4]),
                  "z1": entry("BF16", [2, 0], [4, 4]), "b": entry("I16", [2], [4, 8]),
                  "z2": entry("F64", [0], [8, 8])}), b"x" * 8), 5),
    ("only_zero_size", st_bytes(js({"z": entry("U8", [0], [0, 0])})), 1),
    ("max_dims", st_bytes(js({"a": entry("U8", [1] * 1023 + [4], [0, 4])}), b"abcd"), 1),
    ("sixty_four_dims", st_bytes(js({"a": entry("U8", [1] * 63 + [4], [0, 4])}), b"abcd"), 1),
    ("scalar", st_bytes(js({"s": entry("F32", [], [0, 4])}), b"abcd"), 1),
    ("empty_name", st_bytes(js({"": U8_4}), b"abcd"), 1),
    ("unicode_name", st_bytes(js({"w\u00fcrfel.\u4e2d": U8_4}), b"abcd"), 1),
    ("brackets_in_strings",
     st_bytes(js({"[[[[{{{{\"\\": U8_4, "__metadata__": {"k": "]]]]}}}}[[[["}}), b"abcd"), 1),
    ("header_order_differs_from_offsets",
     st_bytes(js({"b": entry("U8", [2], [2, 4]), "a": entry("U8", [2], [0, 2])}), b"abcd"), 2),
]


def every_dtype_case():
    """One element of each dtype, back to back."""
    sizes = [("BOOL", 1), ("U8", 1), ("I8", 1), ("I16", 2), ("U16", 2), ("I32", 4), ("U32", 4),
             ("I64", 8), ("U64", 8), ("F16", 2), ("BF16", 2), ("F32", 4), ("F64", 8),
             ("F8_E4M3", 1), ("F8_E5M2", 1)]
    hdr, pos = {}, 0
    for name, size in sizes:
        hdr["t_" + name] = entry(name, [1], [pos, pos + size])
        pos += size
    return ("every_dtype", st_bytes(js(hdr), bytes(range(pos))), len(sizes))


GOOD.append(every_dtype_case())


def mutations(seed, count):
    """Deterministic random damage to valid files: byte flips, truncation, splices of JSON
    punctuation into the header. Yields (label, bytes)."""
    import random
    rnd = random.Random(seed)
    bases = [data for _, data, _ in GOOD if len(data) > 8]
    for k in range(count):
        data = bytearray(rnd.choice(bases))
        kind = k % 4
        if kind == 0:  # flip a few bytes anywhere
            for _ in range(rnd.randint(1, 3)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
        elif kind == 1:  # truncate
            del data[rnd.randrange(len(data)):]
        elif kind == 2:  # splice punctuation into the header, keeping N consistent
            n = struct.unpack("<Q", data[:8])[0]
            pos = 8 + rnd.randrange(n + 1)
            ins = rnd.choice([b"[", b"{", b"]", b"}", b",", b":", b'"', b"\\", b"-0", b"1e9",
                              b"\\u0000", b"\xc3"])
            data[pos:pos] = ins
            data[:8] = struct.pack("<Q", n + len(ins))
        else:  # change a digit inside the header
            n = struct.unpack("<Q", data[:8])[0]
            digits = [i for i in range(8, 8 + n) if chr(data[i]).isdigit()]
            if digits:
                data[rnd.choice(digits)] = ord(rnd.choice("0123456789"))
        yield f"mutation_{k}", bytes(data)


def reference_accepts(data):
    """True/False from the official package's deserialize, None when it is not importable."""
    try:
        import safetensors
    except ImportError:
        return None
    try:
        safetensors.deserialize(data)
        return True
    except Exception:  # noqa: BLE001 - any rejection counts
        return False


def run(st_check, path):
    p = subprocess.run([st_check, path], capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 1
    st_check = sys.argv[1]
    failures = []
    stricter = []
    with tempfile.TemporaryDirectory(prefix="st-corpus-") as tmp:
        for name, data, word in BAD:
            path = os.path.join(tmp, name + ".safetensors")
            with open(path, "wb") as f:
                f.write(data)
            rc, out, err = run(st_check, path)
            lines = err.splitlines()
            problems = []
            if rc != 2:
                problems.append(f"exit {rc}, want 2")
            if len(lines) != 1 or not err.endswith("\n"):
                problems.append(f"{len(lines)} stderr lines, want 1")
            if not err.startswith(path + ": "):
                problems.append("message does not start with the path")
            if word not in err:
                problems.append(f"message lacks '{word}'")
            if "Sanitizer" in err or "runtime error" in err:
                problems.append("sanitizer report")
            if out:
                problems.append("unexpected stdout")
            if problems:
                failures.append(f"{name}: {'; '.join(problems)}\n    stderr: {err.strip()[:600]}")
            if reference_accepts(data):
                stricter.append(name)
            os.unlink(path)

        # Sharded folders whose index names a shard with a control byte (found by
        # tests/fuzz/fuzz_st_index: the shard's path would start a message of two lines).
        for label, shard in (("shard_name_newline", "a\nb.safetensors"),
                             ("shard_name_del", "a\x7fb.safetensors")):
            folder = os.path.join(tmp, label)
            os.mkdir(folder)
            with open(os.path.join(folder, "ok.safetensors"), "wb") as f:
                f.write(st_bytes(js({"a": U8_4}), b"abcd"))
            index = os.path.join(folder, "model.safetensors.index.json")
            with open(index, "w") as f:
                json.dump({"weight_map": {"a": shard}}, f)
            rc, out, err = run(st_check, folder)
            if (rc != 2 or len(err.splitlines()) != 1 or not err.startswith(index + ": ") or
                    "not a plain file name" not in err or "\\x" not in err or out):
                failures.append(f"{label}: exit {rc}, stderr {err.strip()[:600]!r}")

        # The largest header the format allows (N = 10^8), all '[': rejected at its 4th byte.
        path = os.path.join(tmp, "huge_nesting.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", 100_000_000))
            f.write(b"[" * 100_000_000)
        rc, out, err = run(st_check, path)
        if rc != 2 or "deeper" not in err or len(err.splitlines()) != 1:
            failures.append(f"huge_nesting: exit {rc}, stderr: {err.strip()[:600]}")
        os.unlink(path)

        # Random damage: either accepted ("ok") or one clean error line, never a crash or a
        # sanitizer report; and never accepted when the reference rejects it.
        for name, data in mutations(seed=1234, count=160):
            path = os.path.join(tmp, name + ".safetensors")
            with open(path, "wb") as f:
                f.write(data)
            rc, out, err = run(st_check, path)
            ok = (rc == 0 and out.startswith("ok ") and not err) or (
                rc == 2 and not out and len(err.splitlines()) == 1 and
                err.startswith(path + ": ") and "Sanitizer" not in err and
                "runtime error" not in err)
            if not ok:
                failures.append(f"{name}: exit {rc}, stdout {out.strip()!r}, "
                                f"stderr {err.strip()[:600]!r}")
            elif rc == 0 and reference_accepts(data) is False:
                failures.append(f"{name}: accepted here but the reference rejects it")
            os.unlink(path)

        for name, data, count in GOOD:
            path = os.path.join(tmp, name + ".safetensors")
            with open(path, "wb") as f:
                f.write(data)
            rc, out, err = run(st_check, path)
            if rc != 0 or out != f"ok {count} tensors\n" or err:
                failures.append(f"{name}: exit {rc}, stdout {out.strip()!r}, "
                                f"stderr {err.strip()!r}")
            if reference_accepts(data) is False:
                failures.append(f"{name}: the reference implementation rejects this 'valid' case")

    print(f"malformed corpus: {len(BAD) + 3} malformed and {len(GOOD)} valid cases, "
          "160 random mutations")
    if stricter:
        print("rejected here but accepted by the reference (we are stricter): "
              + ", ".join(stricter))
    if failures:
        print(f"{len(failures)} failure(s):", file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
