"""An independent reader of .sdelta files, written from docs/sdelta-format.md alone (pure Python
plus the zstd command for zstd frames). Used by test_ckpt_delta.py as an oracle for the C
implementation: it must decode what ckpt-delta writes, and verify every checksum the spec names.

    read_delta(path) -> Delta
    Delta.decode(parent: dict name -> bytes) -> dict name -> bytes   (raises SdeltaError)
"""
import struct
import subprocess

M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)
DTYPE_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "I32": 4, "U32": 4, "I64": 8,
              "U64": 8, "F16": 2, "BF16": 2, "F32": 4, "F64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
FLOATS = {"F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2"}


class SdeltaError(Exception):
    pass


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    acc = (acc + lane * P2) & M64
    return (_rotl(acc, 31) * P1) & M64


def xxh64(data, seed=0):
    n = len(data)
    p = 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed, (seed - P1) & M64]
        while p + 32 <= n:
            for k in range(4):
                v[k] = _round(v[k], struct.unpack_from("<Q", data, p + 8 * k)[0])
            p += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for k in range(4):
            h ^= _round(0, v[k])
            h = (h * P1 + P4) & M64
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while p + 8 <= n:
        h ^= _round(0, struct.unpack_from("<Q", data, p)[0])
        h = (_rotl(h, 27) * P1 + P4) & M64
        p += 8
    if p + 4 <= n:
        h ^= (struct.unpack_from("<I", data, p)[0] * P1) & M64
        h = (_rotl(h, 23) * P2 + P3) & M64
        p += 4
    while p < n:
        h ^= (data[p] * P5) & M64
        h = (_rotl(h, 11) * P1) & M64
        p += 1
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    h ^= h >> 32
    return h


XXH3_SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e")
P32_1, P32_2, P32_3 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D


def _u64(b, p):
    return struct.unpack_from("<Q", b, p)[0]


def _fold(a, b):
    x = a * b
    return (x ^ (x >> 64)) & M64


def _xxh64_aval(h):
    h ^= h >> 33
    h = (h * P2) & M64
    h ^= h >> 29
    h = (h * P3) & M64
    return h ^ (h >> 32)


def _xxh3_aval(h):
    h ^= h >> 37
    h = (h * 0x165667919E3779F9) & M64
    return h ^ (h >> 32)


def _mix16(d, p, s):
    return _fold(_u64(d, p) ^ _u64(XXH3_SECRET, s), _u64(d, p + 8) ^ _u64(XXH3_SECRET, s + 8))


def xxh3_64(d):
    """XXH3_64bits with seed 0 and the default secret (xxHash 0.8)."""
    n, s = len(d), XXH3_SECRET
    if n == 0:
        return _xxh64_aval(_u64(s, 56) ^ _u64(s, 64))
    if n <= 3:
        c = (d[0] << 16) | (d[n >> 1] << 24) | d[n - 1] | (n << 8)
        return _xxh64_aval(c ^ (struct.unpack_from("<I", s, 0)[0] ^ struct.unpack_from("<I", s, 4)[0]))
    if n <= 8:
        x = struct.unpack_from("<I", d, n - 4)[0] + (struct.unpack_from("<I", d, 0)[0] << 32)
        h = x ^ (_u64(s, 8) ^ _u64(s, 16))
        h ^= _rotl(h, 49) ^ _rotl(h, 24)
        h = (h * 0x9FB21C651E98DF25) & M64
        h ^= ((h >> 35) + n) & M64
        h = (h * 0x9FB21C651E98DF25) & M64
        return h ^ (h >> 28)
    if n <= 16:
        lo = _u64(d, 0) ^ (_u64(s, 24) ^ _u64(s, 32))
        hi = _u64(d, n - 8) ^ (_u64(s, 40) ^ _u64(s, 48))
        swapped = int.from_bytes(lo.to_bytes(8, "little"), "big")
        return _xxh3_aval((n + swapped + hi + _fold(lo, hi)) & M64)
    acc = (n * P1) & M64
    if n <= 128:
        pairs = [(0, 0)]
        if n > 32:
            pairs.append((16, 32))
        if n > 64:
            pairs.append((32, 64))
        if n > 96:
            pairs.append((48, 96))
        for off, so in pairs:
            acc += _mix16(d, off, so) + _mix16(d, n - 16 - off, so + 16)
        return _xxh3_aval(acc & M64)
    if n <= 240:
        for i in range(8):
            acc += _mix16(d, 16 * i, 16 * i)
        acc = _xxh3_aval(acc & M64)
        for i in range(8, n // 16):
            acc += _mix16(d, 16 * i, 16 * (i - 8) + 3)
        acc += _mix16(d, n - 16, 136 - 17)
        return _xxh3_aval(acc & M64)
    a = [P32_3, P1, P2, P3, P4, P32_2, P5, P32_1]

    def stripe(p, so):
        for i in range(8):
            v = _u64(d, p + 8 * i)
            k = v ^ _u64(s, so + 8 * i)
            a[i ^ 1] = (a[i ^ 1] + v) & M64
            a[i] = (a[i] + (k & 0xFFFFFFFF) * (k >> 32)) & M64
    nblocks = (n - 1) // 1024
    for b in range(nblocks):
        for j in range(16):
            stripe(1024 * b + 64 * j, 8 * j)
        for i in range(8):
            x = a[i] ^ (a[i] >> 47) ^ _u64(s, 128 + 8 * i)
            a[i] = (x * P32_1) & M64
    for j in range(((n - 1) - 1024 * nblocks) // 64):
        stripe(1024 * nblocks + 64 * j, 8 * j)
    stripe(n - 64, 192 - 64 - 7)
    r = (n * P1) & M64
    for i in range(4):
        r += _fold(a[2 * i] ^ _u64(s, 11 + 16 * i), a[2 * i + 1] ^ _u64(s, 19 + 16 * i))
    return _xxh3_aval(r & M64)


def digest(data, minor):
    """The digest of chunk payloads and tensor bytes: XXH3-64 from format 1.2, XXH64 before."""
    return xxh3_64(data) if minor >= 2 else xxh64(data)


def check32(data, minor=2):
    return digest(data, minor) & 0xFFFFFFFF


def zstd_decompress(frame):
    r = subprocess.run(["zstd", "-d", "-q", "-c"], input=frame, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        raise SdeltaError("bad zstd frame")
    return r.stdout


class Reader:
    def __init__(self, b, pos=0, end=None):
        self.b, self.p, self.end = b, pos, len(b) if end is None else end

    def need(self, n):
        if self.p + n > self.end:
            raise SdeltaError("truncated")

    def u8(self):
        self.need(1)
        self.p += 1
        return self.b[self.p - 1]

    def u32(self):
        self.need(4)
        self.p += 4
        return struct.unpack_from("<I", self.b, self.p - 4)[0]

    def u64(self):
        self.need(8)
        self.p += 8
        return struct.unpack_from("<Q", self.b, self.p - 8)[0]

    def varint(self):
        v, shift = 0, 0
        while True:
            c = self.u8()
            v |= (c & 0x7F) << shift
            if not c & 0x80:
                if c == 0 and shift > 0:
                    raise SdeltaError("non-minimal varint")
                if v > M64:
                    raise SdeltaError("varint overflow")
                return v
            shift += 7
            if shift > 63:
                raise SdeltaError("varint too long")

    def bytes(self, n):
        self.need(n)
        self.p += n
        return self.b[self.p - n:self.p]

    def string(self):
        s = self.bytes(self.varint())
        if b"\0" in s:
            raise SdeltaError("NUL in string")
        return s.decode("utf-8")


def read_table(r):
    k = r.varint()
    if not 1 <= k <= 256:
        raise SdeltaError("table size")
    freq = [0] * 256
    s = -1
    for _ in range(k):
        s = s + 1 + r.varint()
        f = r.varint() + 1
        if s > 255 or f > 4096:
            raise SdeltaError("table entry")
        freq[s] = f
    if sum(freq) != 4096:
        raise SdeltaError("table sum")
    return freq


def _slots(freq):
    start, acc = [0] * 256, 0
    slot_sym = bytearray(4096)
    for s in range(256):
        start[s] = acc
        slot_sym[acc:acc + freq[s]] = bytes([s]) * freq[s]
        acc += freq[s]
    return freq, start, slot_sym


def rans_decode(r, freqs, n):
    """Symbol i is coded with table freqs[i % len(freqs)]."""
    tabs = [_slots(f) for f in freqs]
    lanes = r.u8()
    nbytes = r.varint()
    if not 1 <= lanes <= 32 or nbytes % 2 or nbytes < 4 * lanes:
        raise SdeltaError("stream header")
    words = r.bytes(nbytes)
    w = struct.unpack("<%dH" % (nbytes // 2), words)
    x = [w[2 * j] | (w[2 * j + 1] << 16) for j in range(lanes)]
    if any(not (1 << 15) <= v < (1 << 31) for v in x):
        raise SdeltaError("initial state")
    q = 2 * lanes
    out = bytearray(n)
    for i in range(n):
        j = i % lanes
        freq, start, slot_sym = tabs[i % len(tabs)]
        slot = x[j] & 4095
        s = slot_sym[slot]
        out[i] = s
        x[j] = freq[s] * (x[j] >> 12) + slot - start[s]
        if x[j] < (1 << 15):
            if q >= len(w):
                raise SdeltaError("rANS overrun")
            x[j] = (x[j] << 16) | w[q]
            q += 1
    if q != len(w) or any(v != (1 << 15) for v in x):
        raise SdeltaError("rANS final state")
    return out


def read_stream(r, shared, n, ntables=1):
    freqs = []
    for _ in range(ntables):
        ref = r.varint()
        if ref == 0:
            freqs.append(read_table(r))
        elif ref - 1 < len(shared):
            freqs.append(shared[ref - 1])
        else:
            raise SdeltaError("table reference")
    return rans_decode(r, freqs, n)


class Bits:
    def __init__(self, data):
        self.v = int.from_bytes(data, "little")
        self.n = 8 * len(data)
        self.pos = 0
        self.len = len(data)

    def get(self, k):
        if self.pos + k > self.n:
            raise SdeltaError("extra bits overrun")
        out = (self.v >> self.pos) & ((1 << k) - 1)
        self.pos += k
        return out

    def done(self):
        return (self.pos + 7) // 8 == self.len and (self.v >> self.pos) == 0


def token_value(t, bits):
    if t < 16:
        return t
    b = (t - 16) // 4 + 5
    return (1 << (b - 1)) + ((t - 16) & 3) * (1 << (b - 3)) + bits.get(b - 3)


def make_transform(xf, w, is_float):
    mask = (1 << (8 * w)) - 1
    s = 1 << (8 * w - 1)

    def key(x):
        if not is_float:
            return x
        return x | s if x < s else ~x & mask

    def unkey(k):
        if not is_float:
            return k
        return k & ~s & mask if k >= s else ~k & mask

    def apply(p, v):
        if v > mask:
            raise SdeltaError("value out of range")
        if xf == 0:
            return p ^ v
        if xf == 1:
            d = ((v >> 1) ^ (-(v & 1))) & mask
            return unkey((key(p) + d) & mask)
        raise SdeltaError("unknown transform")
    return apply


def decode_chunk(mode, payload, nchanged, parent, m, w, is_float, shared, minor=2):
    """parent: list of m ints. Returns the child's m ints."""
    if mode == 0:
        if payload or nchanged:
            raise SdeltaError("unchanged chunk with data")
        return list(parent)
    if mode == 1:
        if len(payload) != m * w:
            raise SdeltaError("raw size")
        child = [int.from_bytes(payload[i * w:(i + 1) * w], "little") for i in range(m)]
    elif mode == 4:
        planes = zstd_decompress(payload)
        if len(planes) != m * w:
            raise SdeltaError("planes size")
        child = []
        for i in range(m):
            x = sum(planes[j * m + i] << (8 * j) for j in range(w))
            child.append(parent[i] ^ x)
    elif mode in (2, 3):
        r = Reader(payload)
        xf = r.u8()
        apply = make_transform(xf, w, is_float)
        child = list(parent)
        if mode == 2:
            ts = read_stream(r, shared, 2 * nchanged, 2)
            tg, tv = ts[0::2], ts[1::2]
            glen = sum(0 if t < 16 else (t - 16) // 4 + 2 for t in tg)
            gbits = Bits(r.bytes((glen + 7) // 8))
            vbits = Bits(payload[r.p:])
            pos = -1
            for i in range(nchanged):
                pos = pos + 1 + token_value(tg[i], gbits)
                v = token_value(tv[i], vbits)
                if pos >= m or v == 0:
                    raise SdeltaError("bad sparse entry")
                child[pos] = apply(parent[pos], v)
            if not gbits.done() or not vbits.done():
                raise SdeltaError("extra bits left over")
        else:
            t = read_stream(r, shared, m)
            vbits = Bits(payload[r.p:])
            for i in range(m):
                v = token_value(t[i], vbits)
                child[i] = apply(parent[i], v)
            if sum(1 for x in t if x) != nchanged or not vbits.done():
                raise SdeltaError("dense count or extra bits")
        return child
    elif mode == 5:
        if w > 2:
            raise SdeltaError("split mode for a width above 2")
        r = Reader(payload)
        xf = r.u8()
        if xf > 1 or nchanged == 0:
            raise SdeltaError("split transform or count")
        apply = make_transform(xf, w, is_float)
        t = read_stream(r, shared, m * w, w)
        if r.p != len(payload):
            raise SdeltaError("split payload has trailing bytes")
        child = list(parent)
        nz = 0
        for i in range(m):
            v = int.from_bytes(t[i * w:(i + 1) * w], "little")
            if v:
                nz += 1
                child[i] = apply(parent[i], v)
        if nz != nchanged:
            raise SdeltaError("split count")
        return child
    elif mode == 6:
        if w != 2 or minor < 2:
            raise SdeltaError("escape mode for a width other than 2, or before format 1.2")
        r = Reader(payload)
        xf = r.u8()
        if xf > 1 or nchanged == 0:
            raise SdeltaError("escape transform or count")
        apply = make_transform(xf, w, is_float)
        t = read_stream(r, shared, m)
        child = list(parent)
        nz = 0
        for i in range(m):
            v = t[i]
            if v == 255:
                v = struct.unpack_from("<H", r.bytes(2))[0]
                if v < 255:
                    raise SdeltaError("escaped value below 255")
            if v:
                nz += 1
                child[i] = apply(parent[i], v)
        if r.p != len(payload):
            raise SdeltaError("escape payload has trailing bytes")
        if nz != nchanged:
            raise SdeltaError("escape count")
        return child
    else:
        raise SdeltaError("unknown mode %d" % mode)
    if sum(1 for a, b in zip(parent, child) if a != b) != nchanged:
        raise SdeltaError("changed count")
    return child


class Delta:
    pass


def read_delta(path):
    b = open(path, "rb").read()
    if len(b) < 64 or b[:8] != b"SDLT\r\n\x1a\n":
        raise SdeltaError("not a .sdelta file")
    major, minor, flags = struct.unpack_from("<HHI", b, 8)
    if major != 1 or minor > 2 or flags != 0:
        raise SdeltaError("version or flags")
    foot = b[-48:]
    if foot[40:] != b"SDLTEND\n":
        raise SdeltaError("end magic")
    hoff, csize, usize, hhash, fhash = struct.unpack_from("<5Q", foot)
    if xxh64(b[:16] + foot[:32]) != fhash:
        raise SdeltaError("footer checksum")
    if hoff < 16 or hoff + csize + 48 != len(b) or usize > (1 << 30):
        raise SdeltaError("footer offsets")
    frame = b[hoff:hoff + csize]
    if xxh64(frame) != hhash:
        raise SdeltaError("header checksum")
    h = zstd_decompress(frame)
    if len(h) != usize:
        raise SdeltaError("header size")
    r = Reader(h)
    d = Delta()
    d.minor = minor
    d.step = r.varint()
    d.parent_name = r.string()
    d.parent_hash = r.u64()
    d.chunk_elems = r.varint()
    if not 1 <= d.chunk_elems <= (1 << 26):
        raise SdeltaError("chunk_elems")
    d.meta = [(r.string(), r.string()) for _ in range(r.varint())]
    d.tables = [read_table(r) for _ in range(r.varint())]
    d.tensors = []
    off = 16
    for _ in range(r.varint()):
        t = {"name": r.string(), "dtype": r.string()}
        if t["dtype"] not in DTYPE_SIZE:
            raise SdeltaError("dtype")
        t["shape"] = [r.varint() for _ in range(r.varint())]
        numel = 1
        for x in t["shape"]:
            numel *= x
        t["numel"] = numel
        flags = r.u8()
        if flags & ~1:
            raise SdeltaError("tensor flags")
        t["has_parent"] = bool(flags & 1)
        t["parent_check"] = r.u32() if t["has_parent"] else None
        t["child_check"] = r.u32()
        chunks = []
        for _ in range((numel + d.chunk_elems - 1) // d.chunk_elems):
            mode = r.u8()
            if mode:
                size, check, nch = r.varint(), r.u32(), r.varint()
            else:
                size, check, nch = 0, 0, 0
            chunks.append((mode, off, size, check, nch))
            off += size
        t["chunks"] = chunks
        d.tensors.append(t)
    if r.p != len(h) or off != hoff:
        raise SdeltaError("header does not add up")
    d.data = b
    return d


def decode(d, parents):
    """parents: name -> bytes (for tensors with has_parent). Returns name -> child bytes."""
    out = {}
    phash = b""
    for t in d.tensors:
        w = DTYPE_SIZE[t["dtype"]]
        nbytes = t["numel"] * w
        if t["has_parent"]:
            pb = parents[t["name"]]
            if len(pb) != nbytes or check32(pb, d.minor) != t["parent_check"]:
                raise SdeltaError("wrong parent for " + t["name"])
            phash += struct.pack("<Q", digest(pb, d.minor))
        else:
            pb = bytes(nbytes)
        res = bytearray()
        for c, (mode, off, size, check, nch) in enumerate(t["chunks"]):
            payload = d.data[off:off + size]
            if size and check32(payload, d.minor) != check:
                raise SdeltaError("chunk checksum of %s chunk %d" % (t["name"], c))
            first = c * d.chunk_elems
            m = min(d.chunk_elems, t["numel"] - first)
            par = [int.from_bytes(pb[(first + i) * w:(first + i + 1) * w], "little")
                   for i in range(m)]
            child = decode_chunk(mode, payload, nch, par, m, w, t["dtype"] in FLOATS, d.tables,
                                 d.minor)
            res += b"".join(x.to_bytes(w, "little") for x in child)
        if check32(bytes(res), d.minor) != t["child_check"]:
            raise SdeltaError("child check of " + t["name"])
        out[t["name"]] = bytes(res)
    if xxh64(phash) != d.parent_hash:
        raise SdeltaError("parent hash")
    return out
