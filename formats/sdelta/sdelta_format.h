/* On-disk constants of the .sdelta format (docs/sdelta-format.md is the spec) and the small
 * byte-level helpers shared by the encoder and the decoder: little-endian fields, LEB128 varints,
 * a growable output buffer, and the value-token scheme. Private to formats/sdelta/. */
#ifndef SDELTA_FORMAT_H
#define SDELTA_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- file layout ---- */
#define SDELTA_MAGIC "SDLT\r\n\x1a\n"      /* 8 bytes at offset 0 */
#define SDELTA_END_MAGIC "SDLTEND\n"       /* last 8 bytes of the file */
#define SDELTA_VERSION_MAJOR 1u
#define SDELTA_VERSION_MINOR 2u /* 1: split mode, up to 32 rANS lanes; 2: escape mode */
#define SDELTA_PREAMBLE_BYTES 16u          /* magic, u16 major, u16 minor, u32 flags (0) */
#define SDELTA_FOOTER_BYTES 48u            /* 5 x u64 + end magic */
#define SDELTA_MAX_HEADER_BYTES (1ull << 30) /* decompressed header limit */
#define SDELTA_MAX_NDIM 64
#define SDELTA_DEFAULT_CHUNK_ELEMS (1ull << 20)
#define SDELTA_MAX_CHUNK_ELEMS (1ull << 26)

/* ---- chunk modes ---- */
enum {
    SDELTA_MODE_UNCHANGED = 0, /* no payload: the child chunk equals the parent chunk */
    SDELTA_MODE_RAW = 1,       /* payload: the child chunk's bytes verbatim */
    SDELTA_MODE_SPARSE = 2,    /* transform byte, gap-token stream, value-token stream, extra bits */
    SDELTA_MODE_DENSE = 3,     /* transform byte, value-token stream over every element, extra bits */
    SDELTA_MODE_PLANES = 4,    /* one zstd frame of the XOR split into byte planes */
    SDELTA_MODE_SPLIT = 5,     /* transform byte, one stream of every value's bytes (width <= 2) */
    SDELTA_MODE_ESCAPE = 6,    /* transform byte, one byte symbol per value (255: escape), then
                                  the escaped values as u16 (width 2; minor version 2) */
    SDELTA_MODE_COUNT
};

/* ---- value transforms (how a changed element is expressed against its parent) ---- */
enum {
    SDELTA_XFORM_XOR = 0, /* v = parent ^ child */
    SDELTA_XFORM_SUB = 1, /* v = zigzag(key(child) - key(parent) mod 2^bits), key orders floats */
    SDELTA_XFORM_COUNT
};

/* ---- rANS ---- */
#define SDELTA_RANS_PROB_BITS 12u
#define SDELTA_RANS_PROB_SCALE (1u << SDELTA_RANS_PROB_BITS)
#define SDELTA_RANS_L (1u << 15)           /* state lives in [L, 2^31) */
#define SDELTA_NSYMS 256u                  /* token alphabet */
#define SDELTA_ESCAPE_SYM 255u             /* escape mode: the value is >= 255, stored apart */

/* ---- tokens: an unsigned value v becomes a token (0..255) plus extra raw bits ----
 * v < 16: token v, no extra bits. Otherwise b = bit length of v (5..64):
 * token = 16 + 4*(b-5) + the two bits below the leading one; extra = the low b-3 bits. */
static inline unsigned sdelta_token_of(uint64_t v, unsigned *nextra)
{
    unsigned b = 64u - (unsigned)__builtin_clzll(v | 16); /* >= 5; branch-free for speed */
    unsigned big = 16u + 4u * (b - 5u) + (unsigned)((v >> (b - 3)) & 3u);
    uint64_t sm = (uint64_t)0 - (uint64_t)(v < 16); /* all ones when v < 16 */
    *nextra = (unsigned)((b - 3) & ~sm);
    return (unsigned)((v & sm) | (big & ~sm));
}

/* Extra-bit count of a token, and the value with all extra bits zero. */
static inline unsigned sdelta_token_nextra(unsigned tok)
{
    return tok < 16 ? 0 : (tok - 16) / 4 + 2;
}

static inline uint64_t sdelta_token_base(unsigned tok)
{
    if (tok < 16)
        return tok;
    unsigned b = (tok - 16) / 4 + 5;
    return (1ull << (b - 1)) | ((uint64_t)((tok - 16) & 3) << (b - 3));
}

/* ---- little-endian fields ---- */
static inline uint16_t sdelta_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t sdelta_rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t sdelta_rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline void sdelta_wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void sdelta_wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void sdelta_wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* ---- a growable byte buffer; on allocation failure it sets oom and drops further writes ---- */
typedef struct SdBuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} SdBuf;

static inline bool sdbuf_reserve(SdBuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra > SIZE_MAX - b->len) {
        b->oom = true;
        return false;
    }
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra)
        cap = cap > SIZE_MAX / 2 ? b->len + extra : cap * 2;
    uint8_t *np = realloc(b->p, cap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

static inline void sdbuf_put(SdBuf *b, const void *src, size_t n)
{
    if (n && sdbuf_reserve(b, n)) {
        memcpy(b->p + b->len, src, n);
        b->len += n;
    }
}

static inline void sdbuf_u8(SdBuf *b, uint8_t v) { sdbuf_put(b, &v, 1); }
static inline void sdbuf_u32(SdBuf *b, uint32_t v) { uint8_t t[4]; sdelta_wr32(t, v); sdbuf_put(b, t, 4); }
static inline void sdbuf_u64(SdBuf *b, uint64_t v) { uint8_t t[8]; sdelta_wr64(t, v); sdbuf_put(b, t, 8); }

static inline void sdbuf_varint(SdBuf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    sdbuf_put(b, t, n);
}

static inline size_t sdelta_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline void sdbuf_str(SdBuf *b, const char *s)
{
    size_t n = strlen(s);
    sdbuf_varint(b, n);
    sdbuf_put(b, s, n);
}

static inline void sdbuf_free(SdBuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- a bounds-checked reader over untrusted bytes; any overrun sets bad and yields zeros ---- */
typedef struct SdReader {
    const uint8_t *p, *end;
    bool bad;
} SdReader;

static inline uint64_t sdrd_varint(SdReader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        uint8_t c = *r->p++;
        if (shift == 63 && c > 1) { /* more than 64 bits */
            r->bad = true;
            return 0;
        }
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            if (c == 0 && shift > 0) /* non-minimal encoding */
                r->bad = true;
            return v;
        }
    }
    r->bad = true;
    return 0;
}

static inline uint8_t sdrd_u8(SdReader *r)
{
    if (r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

static inline uint32_t sdrd_u32(SdReader *r)
{
    if ((size_t)(r->end - r->p) < 4) {
        r->bad = true;
        r->p = r->end;
        return 0;
    }
    uint32_t v = sdelta_rd32(r->p);
    r->p += 4;
    return v;
}

static inline uint64_t sdrd_u64(SdReader *r)
{
    if ((size_t)(r->end - r->p) < 8) {
        r->bad = true;
        r->p = r->end;
        return 0;
    }
    uint64_t v = sdelta_rd64(r->p);
    r->p += 8;
    return v;
}

/* Returns a pointer to n bytes and advances, or NULL (and sets bad) when fewer remain. */
static inline const uint8_t *sdrd_bytes(SdReader *r, uint64_t n)
{
    if (n > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        r->p = r->end;
        return NULL;
    }
    const uint8_t *s = r->p;
    r->p += n;
    return s;
}

/* ---- checksum comparisons ----
 * Fuzzing builds (-DSDELTA_FUZZING, tests/fuzz/) accept any checksum so that mutated inputs reach
 * the parser and the decoders; every other build compares. */
#ifdef SDELTA_FUZZING
#define SDELTA_CHECK_OK(got, want) ((void)(got), (void)(want), 1)
#else
#define SDELTA_CHECK_OK(got, want) ((got) == (want))
#endif

/* ---- checked arithmetic ---- */
static inline bool sdelta_mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool sdelta_add_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

#endif
