#!/usr/bin/python3
"""Interoperability of formats/ with the official `safetensors` Python package (the reference).

Usage: interop.py ST_CHECK ST_COPY

1. Files the reference writes (safetensors.numpy.save_file for every numpy dtype it supports;
   BF16 and FP8 through the reference's raw serializer when available, else a hand-built header
   checked by the reference's deserialize) are read by `ST_CHECK --dump` with the right names,
   dtypes, shapes, byte counts and FNV-1a hashes of the bytes; also a sharded folder with
   model.safetensors.index.json.
2. Files our writer produces (`ST_COPY IN OUT PIECE`) load in safetensors.numpy.load_file (or the
   reference's deserialize, for dtypes numpy lacks) with identical arrays and metadata, and the
   header is padded so that 8 + N is a multiple of 8.

Exit status: 0 pass, 1 fail, 77 skip (safetensors not importable).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import safetensors
    import safetensors.numpy as stnp
except ImportError as e:
    print(f"skip: {e} (install with: python3 -m pip install --target <builddir>/pydeps "
          "safetensors)")
    sys.exit(77)

NP_DTYPES = {  # numpy dtype -> safetensors name
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
    "int32": "I32", "uint32": "U32", "int64": "I64", "uint64": "U64", "float16": "F16",
    "float32": "F32", "float64": "F64",
}
RAW_DTYPES = {  # safetensors name -> (the reference's dtype string, numpy storage type)
    "BF16": ("bfloat16", np.uint16),
    "F8_E4M3": ("float8_e4m3fn", np.uint8),
    "F8_E5M2": ("float8_e5m2", np.uint8),
}
failures = []


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def numpy_tensors(rng):
    """name -> array, every numpy dtype, with 0-d, empty and multi-d shapes."""
    out = {}
    shapes = [(3, 5), (), (0,), (2, 0, 3), (4, 1, 2, 3)]
    for i, dt in enumerate(NP_DTYPES):
        shape = shapes[i % len(shapes)]
        if dt == "bool":
            a = rng.integers(0, 2, size=shape).astype(bool)
        elif dt.startswith("float"):
            a = rng.standard_normal(size=shape).astype(dt)
        else:
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
        out[f"model.layers.{i}.{dt}"] = a
        out[f"big.{dt}"] = rng.integers(0, 2, size=(37, 11)).astype(dt)
    return out


def raw_tensors(rng):
    """name -> (safetensors dtype, storage array) for the dtypes numpy lacks."""
    out = {}
    for i, (name, (_, storage)) in enumerate(RAW_DTYPES.items()):
        out[f"raw.{name}"] = (name, rng.integers(0, np.iinfo(storage).max, size=(3, 7),
                                                 dtype=storage, endpoint=True))
        out[f"raw.{name}.scalar"] = (name, np.array(i + 1, dtype=storage))
        out[f"raw.{name}.empty"] = (name, np.zeros((0, 2), dtype=storage))
    return out


def hand_built(tensors, metadata):
    """A safetensors file built by hand, laid out as the reference writer lays it out."""
    header, pos, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, arr) in tensors.items():
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape),
                        "data_offsets": [pos, pos + len(data)]}
        pos += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def reference_serialize(tensors, metadata):
    """The reference's own writer for raw dtypes, or None when this version's API differs."""
    try:
        specs = {name: safetensors.TensorSpec(dtype=RAW_DTYPES[dt][0], shape=list(arr.shape),
                                              data_ptr=arr.ctypes.data, data_len=arr.nbytes)
                 for name, (dt, arr) in tensors.items()}  # arrays stay alive in tensors
        return bytes(safetensors.serialize(specs, metadata=metadata))
    except (AttributeError, TypeError):
        return None


def st_dump(st_check, path):
    """Runs st_check --dump; returns (name -> record, file -> metadata) or None on failure."""
    p = subprocess.run([st_check, "--dump", path], capture_output=True, text=True, timeout=60)
    if not check(p.returncode == 0 and not p.stderr,
                 f"st_check {path}: exit {p.returncode}: {p.stderr.strip()}"):
        return None
    lines = p.stdout.splitlines()
    tensors, meta = {}, {}
    for line in lines[1:]:
        rec = json.loads(line)
        if "metadata" in rec:
            meta[rec["file"]] = rec["metadata"]
        else:
            tensors[rec["name"]] = rec
    check(lines[0] == f"ok {len(tensors)} tensors", f"st_check {path}: first line {lines[0]!r}")
    return tensors, meta


def compare_dump(where, dump, expected):
    """expected: name -> (dtype name, shape, bytes, file base name or None)."""
    tensors, _ = dump
    check(set(tensors) == set(expected),
          f"{where}: names differ: {sorted(set(tensors) ^ set(expected))}")
    for name, (dtype, shape, data, file) in expected.items():
        rec = tensors.get(name)
        if rec is None:
            continue
        got = (rec["dtype"], rec["shape"], rec["nbytes"], rec["fnv1a64"])
        want = (dtype, list(shape), len(data), fnv1a64(data))
        check(got == want, f"{where}: tensor {name}: got {got}, want {want}")
        if file:
            check(rec["file"] == file, f"{where}: tensor {name}: in {rec['file']}, want {file}")


def st_copy(st_copy_exe, src, dst, piece):
    p = subprocess.run([st_copy_exe, src, dst, str(piece)], capture_output=True, text=True,
                       timeout=60)
    return check(p.returncode == 0 and not p.stderr,
                 f"st_copy {src}: exit {p.returncode}: {p.stderr.strip()}")


def check_padding(where, path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = f.read(n)
    check((8 + n) % 8 == 0, f"{where}: 8 + N = {8 + n} is not a multiple of 8")
    check(header.rstrip(b" ").endswith(b"}"), f"{where}: header padding is not spaces")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 1
    st_check, st_copy_exe = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(20240611)
    meta = {"format": "np", "note": "w\u00fcrfel"}
    with tempfile.TemporaryDirectory(prefix="st-interop-") as tmp:
        # 1a. numpy dtypes through save_file.
        arrays = numpy_tensors(rng)
        ref = os.path.join(tmp, "reference.safetensors")
        stnp.save_file(arrays, ref, metadata=meta)
        expected = {n: (NP_DTYPES[a.dtype.name], a.shape, a.tobytes(), None)
                    for n, a in arrays.items()}
        dump = st_dump(st_check, ref)
        if dump:
            compare_dump("reference.safetensors", dump, expected)
            check(dump[1].get("reference.safetensors") == meta,
                  f"reference.safetensors: metadata {dump[1]}")

        # 1b. BF16 / FP8: the reference's raw writer (or a hand-built file it accepts).
        raws = raw_tensors(rng)
        raw_expected = {n: (dt, a.shape, a.tobytes(), None) for n, (dt, a) in raws.items()}
        variants = [("hand_built", hand_built(raws, meta))]
        official = reference_serialize(raws, meta)
        if official is not None:
            variants.append(("reference_raw", official))
        else:
            print("note: this safetensors version has no TensorSpec; BF16/FP8 hand-built only")
        for label, data in variants:
            try:
                safetensors.deserialize(data)
            except Exception as e:  # noqa: BLE001
                check(False, f"{label}: the reference rejects it: {e}")
            path = os.path.join(tmp, label + ".safetensors")
            with open(path, "wb") as f:
                f.write(data)
            dump = st_dump(st_check, path)
            if dump:
                compare_dump(label, dump, raw_expected)

        # 1c. A sharded Hugging Face folder written by the reference.
        folder = os.path.join(tmp, "sharded")
        os.mkdir(folder)
        names = sorted(arrays)
        shards = {"model-00001-of-00002.safetensors": names[::2],
                  "model-00002-of-00002.safetensors": names[1::2]}
        weight_map = {}
        for shard, members in shards.items():
            stnp.save_file({n: arrays[n] for n in members}, os.path.join(folder, shard))
            weight_map.update({n: shard for n in members})
        total = sum(a.nbytes for a in arrays.values())
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        dump = st_dump(st_check, folder)
        if dump:
            compare_dump("sharded", dump, {n: (NP_DTYPES[a.dtype.name], a.shape, a.tobytes(),
                                               weight_map[n]) for n, a in arrays.items()})

        # 2a. Our writer -> the reference's numpy loader.
        for piece in (1, 7, 4096, 1 << 24):
            ours = os.path.join(tmp, f"ours-{piece}.safetensors")
            if not st_copy(st_copy_exe, ref, ours, piece):
                continue
            check_padding(f"ours-{piece}", ours)
            loaded = stnp.load_file(ours)
            check(set(loaded) == set(arrays), f"ours-{piece}: names differ")
            for n, a in arrays.items():
                b = loaded.get(n)
                check(b is not None and b.dtype == a.dtype and b.shape == a.shape and
                      np.array_equal(a, b, equal_nan=a.dtype.kind == "f"),
                      f"ours-{piece}: tensor {n} differs")
            with safetensors.safe_open(ours, framework="numpy") as f:
                check(f.metadata() == meta, f"ours-{piece}: metadata {f.metadata()}")

        # 2b. Our writer on BF16 / FP8 -> the reference's deserialize.
        ours = os.path.join(tmp, "ours-raw.safetensors")
        with open(os.path.join(tmp, "raw-in.safetensors"), "wb") as f:
            f.write(hand_built(raws, meta))
        if st_copy(st_copy_exe, os.path.join(tmp, "raw-in.safetensors"), ours, 5):
            check_padding("ours-raw", ours)
            with open(ours, "rb") as f:
                got = {n: v for n, v in safetensors.deserialize(f.read())}
            check(set(got) == set(raws), "ours-raw: names differ")
            for n, (dt, a) in raws.items():
                g = got.get(n)
                check(g is not None and g["dtype"] == dt and list(g["shape"]) == list(a.shape)
                      and bytes(g["data"]) == a.tobytes(), f"ours-raw: tensor {n} differs")

        # 2c. The sharded folder merged by our writer -> the reference.
        merged = os.path.join(tmp, "merged.safetensors")
        if st_copy(st_copy_exe, folder, merged, 1000):
            loaded = stnp.load_file(merged)
            check(all(np.array_equal(loaded[n], a) for n, a in arrays.items()),
                  "merged: tensors differ")

    if failures:
        print(f"{len(failures)} failure(s):", file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        return 1
    print(f"interop: {len(arrays)} numpy tensors, {len(raws)} BF16/FP8 tensors, "
          f"{len(variants)} raw variants: all agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
