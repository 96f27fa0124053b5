/* Chunk decoding (sdelta_decode_chunk): read the token streams, then rebuild the child chunk
 * from the parent chunk, the tokens and their extra bits. Every count, position and value read
 * from the payload is checked; malformed bytes give an error, never an out-of-bounds access. */
#include "formats/sdelta/sdelta_chunk.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "formats/sdelta/sdelta_chunk_impl.h"

#define scratch_grow sdelta_chunk_scratch_grow

/* ---- extra bits ---- */

typedef struct BitRd {
    const uint8_t *p, *end;
    uint64_t buf;
    unsigned avail;
    bool bad;
} BitRd;

static inline void bits_refill(BitRd *b)
{
    if (b->end - b->p >= 8) {
        b->buf |= sdelta_rd64(b->p) << b->avail;
        b->p += (63 - b->avail) >> 3;
        b->avail |= 56;
    } else {
        while (b->avail <= 56 && b->p < b->end) {
            b->buf |= (uint64_t)*b->p++ << b->avail;
            b->avail += 8;
        }
    }
}

static inline uint64_t bits_get32(BitRd *b, unsigned n)
{
    if (b->avail < n) {
        bits_refill(b);
        if (b->avail < n) {
            b->bad = true;
            return 0;
        }
    }
    uint64_t v = b->buf & ((1ull << n) - 1);
    b->buf >>= n;
    b->avail -= n;
    return v;
}

static inline uint64_t bits_get(BitRd *b, unsigned n)
{
    if (n <= 32)
        return n ? bits_get32(b, n) : 0;
    uint64_t lo = bits_get32(b, 32);
    return lo | (bits_get32(b, n - 32) << 32);
}

/* All bytes read, fewer than 8 bits left over, and those zero. */
static inline bool bits_done(const BitRd *b)
{
    return !b->bad && b->p == b->end && b->avail < 8 && b->buf == 0;
}

/* ---- decoding ---- */

/* Reads the table references (and inline tables) of a token stream into decoder tables. */
static bool read_tables(SdReader *r, const SdRansTable *shared, size_t nshared,
                        SdRansDecTable *const *dec, unsigned ntables)
{
    for (unsigned k = 0; k < ntables; k++) {
        uint64_t ref = sdrd_varint(r);
        if (r->bad)
            return false;
        SdRansTable inl;
        const SdRansTable *t;
        if (ref == 0) {
            if (!sdelta_rans_table_read(r, &inl))
                return false;
            t = &inl;
        } else {
            if (ref - 1 >= nshared)
                return false;
            t = &shared[ref - 1];
        }
        sdelta_rans_dectable_build(dec[k], t);
    }
    return true;
}

/* Reads a whole token stream of n symbols with ntables tables (see write_stream). */
static bool read_stream(SdReader *r, const SdRansTable *shared, size_t nshared,
                        SdRansDecTable *const *dec, unsigned ntables, uint8_t *toks, size_t n)
{
    return read_tables(r, shared, nshared, dec, ntables) &&
           sdelta_rans_decode(r, (const SdRansDecTable *const *)dec, ntables, toks, n);
}

/* Token -> (value with zero extra bits, extra-bit count), as tables. */
static uint64_t tok_base[SDELTA_NSYMS];
static uint8_t tok_nextra[SDELTA_NSYMS];
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;

static void tok_fill(void)
{
    for (unsigned t = 0; t < SDELTA_NSYMS; t++) {
        tok_base[t] = sdelta_token_base(t);
        tok_nextra[t] = (uint8_t)sdelta_token_nextra(t);
    }
}

static void tok_init(void) { pthread_once(&tok_once, tok_fill); }

/* Bit-reader state kept in locals inside the hot loops (so that stores to the output cannot
 * alias it): while 8 bytes remain, each refill tops the buffer up to >= 56 bits. A token asking
 * for more than maxne (<= 56) extra bits cannot be valid here: it sets bad and reads none. */
#define BR_FAST_GET(p, buf, avail, t, maxne, bad, out)                                             \
    do {                                                                                           \
        (buf) |= sdelta_rd64(p) << (avail);                                                        \
        (p) += (63 - (avail)) >> 3;                                                                \
        (avail) |= 56;                                                                             \
        unsigned ne_ = tok_nextra[t];                                                              \
        (bad) |= ne_ > (maxne);                                                                    \
        ne_ = ne_ > (maxne) ? 0 : ne_;                                                             \
        (out) = tok_base[t] + ((buf) & ((1ull << ne_) - 1));                                       \
        (buf) >>= ne_;                                                                             \
        (avail) -= ne_;                                                                            \
    } while (0)

/* Extra bits a valid value of a w-byte element can have (its bit length is at most 8w). */
#define MAX_NEXTRA(w) (8u * (w) - 3u)
/* Extra bits a valid gap can have (gaps are below 2^26). */
#define MAX_GAP_NEXTRA 23u

/* ts: gap and value tokens interleaved (gap i at 2i, value i at 2i + 1). */
ALWAYS_INLINE bool apply_sparse_w(const uint8_t *ts, size_t k, size_t m,
                                  unsigned w, bool fl, int xf, BitRd *gb, BitRd *vb, uint8_t *dst)
{
    uint64_t mask = mask_of(w), next = 0; /* next = first position the next change may take */
    size_t i = 0;
    /* fast path: both readers have 8 bytes ahead; values need <= 56 extra bits (w <= 4) */
    if (w <= 4) {
        const uint8_t *gp = gb->p, *gend = gb->end, *vp = vb->p, *vend = vb->end;
        uint64_t gbuf = gb->buf, vbuf = vb->buf;
        unsigned gav = gb->avail, vav = vb->avail;
        uint64_t bad = 0;
        for (; i < k && gend - gp >= 8 && vend - vp >= 8; i++) {
            uint64_t gap, v;
            BR_FAST_GET(gp, gbuf, gav, ts[2 * i], MAX_GAP_NEXTRA, bad, gap);
            BR_FAST_GET(vp, vbuf, vav, ts[2 * i + 1], MAX_NEXTRA(w), bad, v);
            bad |= (uint64_t)(gap >= m - next) | (uint64_t)(v == 0) | (uint64_t)(v > mask);
            if (bad)
                return false;
            size_t pos = (size_t)(next + gap);
            next = pos + 1;
            st(dst, pos, w, apply_value(ld(dst, pos, w), v, w, fl, xf));
        }
        *gb = (BitRd){gp, gend, gbuf, gav, false};
        *vb = (BitRd){vp, vend, vbuf, vav, false};
    }
    for (; i < k; i++) {
        unsigned tg = ts[2 * i], tv = ts[2 * i + 1];
        uint64_t gap = tok_base[tg] + bits_get(gb, tok_nextra[tg]);
        uint64_t v = tok_base[tv] + bits_get(vb, tok_nextra[tv]);
        if (gap >= m - next || v == 0 || v > mask)
            return false;
        size_t pos = (size_t)(next + gap);
        next = pos + 1;
        st(dst, pos, w, apply_value(ld(dst, pos, w), v, w, fl, xf));
    }
    return !gb->bad && !vb->bad;
}

/* Writes elements j0 .. j0 + nb of dst from the parent (NULL: zeros) and the block's tokens tv;
 * counts nonzero tokens into *cnt and flags values above the mask in *over. */
ALWAYS_INLINE bool apply_dense_w(const uint8_t *tv, size_t j0, size_t nb, unsigned w, bool fl,
                                 int xf, BitRd *br, const uint8_t *parent, uint8_t *dst,
                                 uint64_t *cnt_out, uint64_t *over_out)
{
    uint64_t mask = mask_of(w), cnt = 0, over = 0;
    size_t q = 0;
    if (w <= 2) {
        /* at most 13 extra bits per element: one refill serves four elements */
        const uint8_t *p = br->p, *end = br->end;
        uint64_t buf = br->buf;
        unsigned avail = br->avail;
        for (; q + 4 <= nb && end - p >= 8; q += 4) {
            buf |= sdelta_rd64(p) << avail;
            p += (63 - avail) >> 3;
            avail |= 56;
            for (size_t u = 0; u < 4; u++) {
                unsigned t = tv[q + u], ne = tok_nextra[t];
                over |= ne > MAX_NEXTRA(w); /* four such values fit in the 56 bits */
                ne = ne > MAX_NEXTRA(w) ? 0 : ne;
                uint64_t v = tok_base[t] + (buf & ((1ull << ne) - 1));
                buf >>= ne;
                avail -= ne;
                over |= v > mask;
                cnt += t != 0;
                size_t j = j0 + q + u;
                st(dst, j, w, apply_value(parent ? ld(parent, j, w) : 0, v, w, fl, xf));
            }
        }
        *br = (BitRd){p, end, buf, avail, false};
    } else if (w <= 4) {
        const uint8_t *p = br->p, *end = br->end;
        uint64_t buf = br->buf;
        unsigned avail = br->avail;
        for (; q < nb && end - p >= 8; q++) {
            unsigned t = tv[q];
            uint64_t v; /* token 0 is value 0: the element stays the parent's */
            BR_FAST_GET(p, buf, avail, t, MAX_NEXTRA(w), over, v);
            over |= v > mask;
            cnt += t != 0;
            size_t j = j0 + q;
            st(dst, j, w, apply_value(parent ? ld(parent, j, w) : 0, v, w, fl, xf));
        }
        *br = (BitRd){p, end, buf, avail, false};
    }
    for (; q < nb; q++) {
        unsigned t = tv[q];
        uint64_t v = tok_base[t] + bits_get(br, tok_nextra[t]);
        over |= v > mask;
        cnt += t != 0;
        size_t j = j0 + q;
        st(dst, j, w, apply_value(parent ? ld(parent, j, w) : 0, v, w, fl, xf));
    }
    *cnt_out += cnt;
    *over_out |= over;
    return !br->bad;
}

/* Split mode: value q of the block is the w bytes of symbols q*w .. q*w + w-1, little-endian.
 * Returns the number of nonzero values. */
ALWAYS_INLINE uint64_t apply_split_w(const uint8_t *ts, size_t j0, size_t nb, unsigned w, bool fl,
                                     int xf, const uint8_t *parent, uint8_t *dst)
{
    uint64_t cnt = 0;
    for (size_t q = 0; q < nb; q++) {
        uint64_t v = ld(ts, q, w);
        cnt += v != 0;
        size_t j = j0 + q;
        st(dst, j, w, apply_value(parent ? ld(parent, j, w) : 0, v, w, fl, xf));
    }
    return cnt;
}

/* Escape mode (w = 2): symbol q of the block is value q, or 255: the value is the next u16 at
 * *ep (below eend, at least 255). Returns false on a malformed escape; adds the nonzero values
 * to *cnt. */
ALWAYS_INLINE bool apply_escape_w(const uint8_t *ts, size_t j0, size_t nb, bool fl, int xf,
                                  const uint8_t *parent, uint8_t *dst, const uint8_t **ep,
                                  const uint8_t *eend, uint64_t *cnt)
{
    const uint8_t *e = *ep;
    uint64_t n = 0;
    for (size_t q = 0; q < nb; q++) {
        uint64_t v = ts[q];
        if (v == SDELTA_ESCAPE_SYM) {
            if (eend - e < 2)
                return false;
            v = sdelta_rd16(e);
            e += 2;
            if (v < SDELTA_ESCAPE_SYM)
                return false;
        }
        n += v != 0;
        size_t j = j0 + q;
        st(dst, j, 2, apply_value(parent ? ld(parent, j, 2) : 0, v, 2, fl, xf));
    }
    *ep = e;
    *cnt += n;
    return true;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SD_SPLIT_AVX2 1
static int split_avx2_ok;
static pthread_once_t split_once = PTHREAD_ONCE_INIT;

static void split_fill(void)
{
    __builtin_cpu_init();
    split_avx2_ok = __builtin_cpu_supports("avx2");
}

/* Child elements from 16 parent elements p and their 16-bit values v; kind 0 XOR, 1 SUB of
 * integers, 2 SUB of floats. */
__attribute__((target("avx2"))) static inline __m256i apply16_avx2(__m256i p, __m256i v, int kind)
{
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi16(1);
    const __m256i sgn = _mm256_set1_epi16((short)0x8000), ones = _mm256_set1_epi16(-1);
    if (kind == 0)
        return _mm256_xor_si256(p, v);
    __m256i d = _mm256_xor_si256(_mm256_srli_epi16(v, 1),
                                 _mm256_sub_epi16(zero, _mm256_and_si256(v, one)));
    if (kind == 1)
        return _mm256_add_epi16(p, d);
    __m256i k = _mm256_xor_si256(p, _mm256_or_si256(_mm256_srai_epi16(p, 15), sgn));
    k = _mm256_add_epi16(k, d);
    __m256i nk = _mm256_xor_si256(k, ones);
    return _mm256_xor_si256(k, _mm256_or_si256(_mm256_srai_epi16(nk, 15), sgn));
}

/* The 2-byte split mode 16 elements at a time. Handles the largest multiple of 16 of nb;
 * returns it, adding the nonzero values to *cnt. ts, parent and dst point at the block's first
 * element. */
__attribute__((target("avx2,popcnt"))) static size_t
split2_avx2(const uint8_t *ts, size_t nb, int kind, const uint8_t *parent, uint8_t *dst,
            uint64_t *cnt)
{
    const __m256i zero = _mm256_setzero_si256();
    uint64_t zeros = 0;
    size_t q = 0;
    for (; q + 16 <= nb; q += 16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(ts + 2 * q));
        __m256i p = parent ? _mm256_loadu_si256((const __m256i *)(parent + 2 * q)) : zero;
        _mm256_storeu_si256((__m256i *)(dst + 2 * q), apply16_avx2(p, v, kind));
        zeros += (unsigned)__builtin_popcount(
            (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi16(v, zero)));
    }
    *cnt += q - zeros / 2;
    return q;
}

/* The dense mode for 2-byte elements 16 at a time: a group whose tokens are all below 16 has
 * no extra bits (the tokens are the values); other groups read their extra bits from br. Handles
 * the largest multiple of 16 of nb and returns it, adding the nonzero tokens to *cnt and flagging
 * impossible values in *over. */
__attribute__((target("avx2,popcnt"))) static size_t
dense2_avx2(const uint8_t *tv, size_t nb, int kind, const uint8_t *parent, uint8_t *dst,
            BitRd *br, uint64_t *cnt, uint64_t *over)
{
    const __m256i zero = _mm256_setzero_si256();
    const __m128i hi4 = _mm_set1_epi8((char)0xf0), z8 = _mm_setzero_si128();
    const uint8_t *bp = br->p, *bend = br->end;
    uint64_t buf = br->buf;
    unsigned avail = br->avail;
    uint64_t zeros = 0, ov = 0;
    bool bad = false;
    size_t q = 0;
    for (; q + 16 <= nb; q += 16) {
        __m128i sb = _mm_loadu_si128((const __m128i *)(tv + q));
        __m256i v;
        if (_mm_testz_si128(sb, hi4)) {
            v = _mm256_cvtepu8_epi16(sb);
        } else {
            /* at most 13 extra bits per element: one refill serves four elements */
            uint16_t tmp[16];
            for (int u4 = 0; u4 < 16; u4 += 4) {
                if (bend - bp >= 8) {
                    buf |= sdelta_rd64(bp) << avail;
                    bp += (63 - avail) >> 3;
                    avail |= 56;
                    for (int u = u4; u < u4 + 4; u++) {
                        unsigned t = tv[q + u], ne = tok_nextra[t];
                        ov |= ne > MAX_NEXTRA(2);
                        ne = ne > MAX_NEXTRA(2) ? 0 : ne;
                        uint64_t x = tok_base[t] + (buf & ((1ull << ne) - 1));
                        buf >>= ne;
                        avail -= ne;
                        ov |= x > 0xffff;
                        tmp[u] = (uint16_t)x;
                    }
                } else {
                    BitRd b = {bp, bend, buf, avail, false};
                    for (int u = u4; u < u4 + 4; u++) {
                        unsigned t = tv[q + u], ne = tok_nextra[t];
                        ov |= ne > MAX_NEXTRA(2);
                        ne = ne > MAX_NEXTRA(2) ? 0 : ne;
                        uint64_t x = tok_base[t] + bits_get(&b, ne);
                        ov |= x > 0xffff;
                        tmp[u] = (uint16_t)x;
                    }
                    bp = b.p;
                    buf = b.buf;
                    avail = b.avail;
                    bad |= b.bad;
                }
            }
            v = _mm256_loadu_si256((const __m256i *)tmp);
        }
        __m256i p = parent ? _mm256_loadu_si256((const __m256i *)(parent + 2 * q)) : zero;
        _mm256_storeu_si256((__m256i *)(dst + 2 * q), apply16_avx2(p, v, kind));
        zeros += (unsigned)__builtin_popcount((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(sb, z8)));
    }
    *br = (BitRd){bp, bend, buf, avail, bad};
    *cnt += q - zeros;
    *over |= ov;
    return q;
}

/* The escape mode 16 elements at a time: symbols ts (255: the next u16 at *ep, which must be
 * below eend and at least 255). Handles the largest multiple of 16 of nb and returns it (0 with
 * *bad set on a malformed escape), adding the nonzero values to *cnt. */
__attribute__((target("avx2,popcnt"))) static size_t
escape_avx2(const uint8_t *ts, size_t nb, int kind, const uint8_t *parent, uint8_t *dst,
            const uint8_t **ep, const uint8_t *eend, uint64_t *cnt, bool *bad)
{
    const __m256i zero = _mm256_setzero_si256();
    const __m128i esc = _mm_set1_epi8((char)SDELTA_ESCAPE_SYM), z8 = _mm_setzero_si128();
    const uint8_t *e = *ep;
    uint64_t zeros = 0;
    size_t q = 0;
    for (; q + 16 <= nb; q += 16) {
        __m128i sb = _mm_loadu_si128((const __m128i *)(ts + q));
        __m256i v = _mm256_cvtepu8_epi16(sb);
        unsigned em = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(sb, esc));
        if (em) {
            uint16_t tmp[16];
            _mm256_storeu_si256((__m256i *)tmp, v);
            if ((size_t)(eend - e) < 2u * (unsigned)__builtin_popcount(em)) {
                *bad = true;
                return 0;
            }
            unsigned small = 0;
            do {
                unsigned j = (unsigned)__builtin_ctz(em);
                tmp[j] = sdelta_rd16(e);
                small |= tmp[j] < SDELTA_ESCAPE_SYM;
                e += 2;
                em &= em - 1;
            } while (em);
            if (small) {
                *bad = true;
                return 0;
            }
            v = _mm256_loadu_si256((const __m256i *)tmp);
        }
        __m256i p = parent ? _mm256_loadu_si256((const __m256i *)(parent + 2 * q)) : zero;
        _mm256_storeu_si256((__m256i *)(dst + 2 * q), apply16_avx2(p, v, kind));
        zeros += (unsigned)__builtin_popcount(
            (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(sb, z8)));
    }
    *ep = e;
    *cnt += q - zeros;
    return q;
}
#endif

int sdelta_decode_chunk(const SdChunkShape *sh, uint8_t mode, const uint8_t *payload, size_t len,
                        uint64_t nchanged, const uint8_t *parent, const SdRansTable *shared,
                        size_t nshared, SdChunkScratch *scr, uint8_t *dst, const char **why)
{
    size_t m = sh->m, w = sh->width, raw = m * w;
    bool fl = sh->is_float;
    *why = "malformed chunk payload";
    if (nchanged > m) {
        *why = "changed count larger than the chunk";
        return -1;
    }
    switch (mode) {
    case SDELTA_MODE_UNCHANGED:
        if (len != 0 || nchanged != 0)
            return -1;
        if (parent)
            memcpy(dst, parent, raw);
        else
            memset(dst, 0, raw);
        return 0;
    case SDELTA_MODE_RAW:
        if (len != raw)
            return -1;
        memcpy(dst, payload, raw);
        if (count_diff(sh, parent, dst) != nchanged) {
            *why = "changed count does not match the payload";
            return -1;
        }
        return 0;
    case SDELTA_MODE_PLANES: {
        if (scratch_grow(scr, m)) {
            *why = "out of memory";
            return -1;
        }
        if (ZSTD_findFrameCompressedSize(payload, len) != len ||
            ZSTD_getFrameContentSize(payload, len) != (unsigned long long)raw)
            return -1;
        size_t r = ZSTD_decompress(scr->planes, raw, payload, len);
        if (ZSTD_isError(r) || r != raw)
            return -1;
        uint64_t cnt = 0;
        for (size_t i = 0; i < m; i++) {
            uint8_t any = 0;
            for (size_t j = 0; j < w; j++) {
                uint8_t x = scr->planes[j * m + i];
                any |= x;
                dst[i * w + j] = (uint8_t)((parent ? parent[i * w + j] : 0) ^ x);
            }
            cnt += any != 0;
        }
        if (cnt != nchanged) {
            *why = "changed count does not match the payload";
            return -1;
        }
        return 0;
    }
    case SDELTA_MODE_SPARSE:
    case SDELTA_MODE_DENSE:
        break;
    case SDELTA_MODE_SPLIT:
        if (w > 2) {
            *why = "split mode for an element wider than 2 bytes";
            return -1;
        }
        break;
    case SDELTA_MODE_ESCAPE:
        if (w != 2) {
            *why = "escape mode for an element not 2 bytes wide";
            return -1;
        }
        break;
    default:
        *why = "unknown chunk mode";
        return -1;
    }
    if (nchanged == 0)
        return -1;
    if (scratch_grow(scr, m)) {
        *why = "out of memory";
        return -1;
    }
    SdReader r = {payload, payload + len, false};
    int xf = sdrd_u8(&r);
    if (r.bad || xf >= SDELTA_XFORM_COUNT)
        return -1;
    bool ok;
    tok_init();
    if (mode == SDELTA_MODE_SPLIT) {
        /* one stream of m * w symbols, table j for byte j of each value; blocks of 4096
         * elements are decoded into tok_a and applied while in L1 */
        unsigned nt = (unsigned)w;
        SdRansDecTable *dec[2] = {scr->dec_a, scr->dec_b};
        SdRansDec rd;
        if (!read_tables(&r, shared, nshared, dec, nt) ||
            !sdelta_rans_dec_begin(&r, &rd, (const SdRansDecTable *const *)dec, nt) ||
            r.p != r.end)
            return -1;
        uint64_t cnt = 0;
        const size_t block = 4096;
#ifdef SD_SPLIT_AVX2
        pthread_once(&split_once, split_fill);
        int kind = xf == SDELTA_XFORM_XOR ? 0 : fl ? 2 : 1;
#endif
        for (size_t j0 = 0; j0 < m; j0 += block) {
            size_t nb = m - j0 < block ? m - j0 : block, q = 0;
            if (!sdelta_rans_dec_block(&rd, scr->tok_a, nb * w))
                return -1;
#ifdef SD_SPLIT_AVX2
            if (w == 2 && split_avx2_ok)
                q = split2_avx2(scr->tok_a, nb, kind, parent ? parent + 2 * j0 : NULL,
                                dst + 2 * j0, &cnt);
#endif
            const uint8_t *ts = scr->tok_a + q * w;
#define CALL_APPLY_SPLIT(W, FL, XF)                                                                \
    cnt += apply_split_w(ts, j0 + q, nb - q, W, FL, XF, parent, dst)
            DISPATCH_W(w, fl, xf, CALL_APPLY_SPLIT);
        }
        return sdelta_rans_dec_end(&rd) && cnt == nchanged ? 0 : -1;
    }
    if (mode == SDELTA_MODE_ESCAPE) {
        /* one stream of m symbols, then the escaped values; blocks of 4096 elements are
         * decoded into tok_a and applied while in L1 */
        SdRansDecTable *dec[1] = {scr->dec_a};
        SdRansDec rd;
        if (!read_tables(&r, shared, nshared, dec, 1) ||
            !sdelta_rans_dec_begin(&r, &rd, (const SdRansDecTable *const *)dec, 1))
            return -1;
        const uint8_t *ep = r.p, *eend = r.end;
        uint64_t cnt = 0;
        const size_t block = 4096;
#ifdef SD_SPLIT_AVX2
        pthread_once(&split_once, split_fill);
        int kind = xf == SDELTA_XFORM_XOR ? 0 : fl ? 2 : 1;
#endif
        for (size_t j0 = 0; j0 < m; j0 += block) {
            size_t nb = m - j0 < block ? m - j0 : block, q = 0;
            if (!sdelta_rans_dec_block(&rd, scr->tok_a, nb))
                return -1;
#ifdef SD_SPLIT_AVX2
            if (split_avx2_ok) {
                bool bad = false;
                q = escape_avx2(scr->tok_a, nb, kind, parent ? parent + 2 * j0 : NULL,
                                dst + 2 * j0, &ep, eend, &cnt, &bad);
                if (bad)
                    return -1;
            }
#endif
            const uint8_t *ts = scr->tok_a + q;
            if (xf == SDELTA_XFORM_XOR)
                ok = apply_escape_w(ts, j0 + q, nb - q, false, SDELTA_XFORM_XOR, parent, dst, &ep,
                                    eend, &cnt);
            else if (fl)
                ok = apply_escape_w(ts, j0 + q, nb - q, true, SDELTA_XFORM_SUB, parent, dst, &ep,
                                    eend, &cnt);
            else
                ok = apply_escape_w(ts, j0 + q, nb - q, false, SDELTA_XFORM_SUB, parent, dst, &ep,
                                    eend, &cnt);
            if (!ok)
                return -1;
        }
        return sdelta_rans_dec_end(&rd) && ep == eend && cnt == nchanged ? 0 : -1;
    }
    if (mode == SDELTA_MODE_SPARSE) {
        size_t k = (size_t)nchanged;
        SdRansDecTable *dec[2] = {scr->dec_a, scr->dec_b};
        if (!read_stream(&r, shared, nshared, dec, 2, scr->tok_a, 2 * k))
            return -1;
        /* the gap bits' length follows from the gap tokens */
        uint64_t gbits = 0;
        for (size_t i = 0; i < k; i++)
            gbits += tok_nextra[scr->tok_a[2 * i]];
        uint64_t gbytes = (gbits + 7) / 8;
        const uint8_t *g = sdrd_bytes(&r, gbytes);
        if (r.bad || !g)
            return -1;
        if (parent)
            memcpy(dst, parent, raw);
        else
            memset(dst, 0, raw);
        BitRd gb = {g, g + gbytes, 0, 0, false}, vb = {r.p, r.end, 0, 0, false};
#define CALL_APPLY_SPARSE(W, FL, XF)                                                               \
    ok = apply_sparse_w(scr->tok_a, k, m, W, FL, XF, &gb, &vb, dst)
        DISPATCH_W(w, fl, xf, CALL_APPLY_SPARSE);
        ok = ok && bits_done(&gb) && bits_done(&vb);
    } else {
        /* decode tokens a block at a time, so that they are still in L1 when applied */
        SdRansDecTable *dec[1] = {scr->dec_a};
        SdRansDec rd;
        if (!read_tables(&r, shared, nshared, dec, 1) ||
            !sdelta_rans_dec_begin(&r, &rd, (const SdRansDecTable *const *)dec, 1))
            return -1;
        BitRd br = {r.p, r.end, 0, 0, false};
        uint64_t cnt = 0, over = 0;
        const size_t block = 4096;
        ok = true;
#ifdef SD_SPLIT_AVX2
        pthread_once(&split_once, split_fill);
        int kind = xf == SDELTA_XFORM_XOR ? 0 : fl ? 2 : 1;
#endif
        for (size_t j0 = 0; ok && j0 < m; j0 += block) {
            size_t nb = m - j0 < block ? m - j0 : block;
            if (!sdelta_rans_dec_block(&rd, scr->tok_a, nb))
                return -1;
            size_t q = 0;
#ifdef SD_SPLIT_AVX2
            if (w == 2 && split_avx2_ok) {
                q = dense2_avx2(scr->tok_a, nb, kind, parent ? parent + 2 * j0 : NULL,
                                dst + 2 * j0, &br, &cnt, &over);
                if (br.bad)
                    return -1;
            }
#endif
#define CALL_APPLY_DENSE(W, FL, XF)                                                                \
    ok = apply_dense_w(scr->tok_a + q, j0 + q, nb - q, W, FL, XF, &br, parent, dst, &cnt, &over)
            DISPATCH_W(w, fl, xf, CALL_APPLY_DENSE);
        }
        ok = ok && sdelta_rans_dec_end(&rd) && cnt == nchanged && !over;
        ok = ok && bits_done(&br);
    }
    return ok ? 0 : -1;
}
