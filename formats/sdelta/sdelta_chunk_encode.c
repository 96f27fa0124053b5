/* Chunk encoding (sdelta_encode_chunk, sdelta_chunk_stats): find the changed elements, express
 * each against its parent (XOR or SUB), turn values and gaps into byte tokens plus extra bits,
 * estimate every mode from the token counts, and write the smallest: sparse (gaps and values),
 * dense (a token per element), planes (zstd of the XOR byte planes) or raw; chunks of 1- and
 * 2-byte elements with many changes may take the split or escape modes (byte symbols, faster to
 * decode) when they cost about as little. */
#include "formats/sdelta/sdelta_chunk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "formats/sdelta/sdelta_chunk_impl.h"

#define scratch_grow sdelta_chunk_scratch_grow

/* Room for the extra bits of k changed elements: at most 8 bytes each, plus slack. */
static int scratch_grow_bits(SdChunkScratch *s, size_t k)
{
    if (k <= s->bits_cap)
        return 0;
    free(s->bits_g);
    free(s->bits_v);
    s->bits_g = malloc(8 * k + 16);
    s->bits_v = malloc(8 * k + 16);
    if (!s->bits_g || !s->bits_v) {
        s->bits_cap = 0;
        return -1;
    }
    s->bits_cap = k;
    return 0;
}

/* ---- finding changes and counting tokens ---- */

ALWAYS_INLINE size_t find_changes_w(const uint8_t *a, const uint8_t *b, size_t m, unsigned w,
                                    uint32_t *pos)
{
    size_t k = 0, i = 0;
    const size_t blk = 64;
    for (; i < m; i += blk) {
        size_t e = m - i < blk ? m : i + blk;
        if (a) {
            if (memcmp(a + i * w, b + i * w, (e - i) * w) == 0)
                continue;
            for (size_t j = i; j < e; j++) {
                pos[k] = (uint32_t)j;
                k += ld(a, j, w) != ld(b, j, w);
            }
        } else {
            for (size_t j = i; j < e; j++) {
                pos[k] = (uint32_t)j;
                k += ld(b, j, w) != 0;
            }
        }
    }
    return k;
}

static size_t find_changes(const SdChunkShape *sh, const uint8_t *a, const uint8_t *b,
                           uint32_t *pos)
{
    switch (sh->width) {
    case 1: return find_changes_w(a, b, sh->m, 1, pos);
    case 2: return find_changes_w(a, b, sh->m, 2, pos);
    case 4: return find_changes_w(a, b, sh->m, 4, pos);
    default: return find_changes_w(a, b, sh->m, 8, pos);
    }
}

ALWAYS_INLINE void stats_w(const uint8_t *a, const uint8_t *b, const uint32_t *pos, size_t k,
                           unsigned w, bool fl, SdChunkStats *st)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < k; i++) {
        unsigned ne;
        uint64_t gap = i == 0 ? pos[0] : pos[i] - prev - 1;
        prev = pos[i];
        st->gap[sdelta_token_of(gap, &ne)]++;
        st->gap_extra_bits += ne;
        uint64_t p = a ? ld(a, pos[i], w) : 0, c = ld(b, pos[i], w);
        st->val[SDELTA_XFORM_XOR][sdelta_token_of(value_of(p, c, w, fl, SDELTA_XFORM_XOR), &ne)]++;
        st->val_extra_bits[SDELTA_XFORM_XOR] += ne;
        st->val[SDELTA_XFORM_SUB][sdelta_token_of(value_of(p, c, w, fl, SDELTA_XFORM_SUB), &ne)]++;
        st->val_extra_bits[SDELTA_XFORM_SUB] += ne;
    }
}

static void stats_of(const SdChunkShape *sh, const uint8_t *a, const uint8_t *b,
                     const uint32_t *pos, size_t k, SdChunkStats *st)
{
    memset(st, 0, sizeof *st);
    st->nchanged = k;
    bool fl = sh->is_float;
    switch (sh->width) {
    case 1: stats_w(a, b, pos, k, 1, fl, st); break;
    case 2: stats_w(a, b, pos, k, 2, fl, st); break;
    case 4: stats_w(a, b, pos, k, 4, fl, st); break;
    default: stats_w(a, b, pos, k, 8, fl, st); break;
    }
}

int sdelta_chunk_stats(const SdChunkShape *sh, const uint8_t *parent, const uint8_t *child,
                       SdChunkScratch *scr, SdChunkStats *st)
{
    if (scratch_grow(scr, sh->m))
        return -1;
    size_t k = find_changes(sh, parent, child, scr->pos);
    stats_of(sh, parent, child, scr->pos, k, st);
    return 0;
}

/* ---- choosing how to code one token stream ---- */

typedef struct StreamPlan {
    const SdRansTable *table; /* the table used */
    uint64_t ref;             /* 0: inline (table written), else shared index + 1 */
    double bytes;             /* estimated bytes of a stream of its own */
    double head, bits;        /* of which: reference and table bytes; coded bits */
    SdRansTable inl;
} StreamPlan;

static double stream_bytes(double bits, size_t n)
{
    unsigned lanes = sdelta_rans_lanes_for(n);
    double words = ceil(bits / 16.0);
    return 1.0 + (double)sdelta_varint_len((uint64_t)(words * 2 + 4 * lanes)) + 4.0 * lanes +
           2.0 * words;
}

static void plan_stream(const uint64_t hist[SDELTA_NSYMS], size_t n, const SdRansTable *shared,
                        uint32_t shared_index, StreamPlan *pl)
{
    sdelta_rans_build(&pl->inl, hist);
    pl->table = &pl->inl;
    pl->ref = 0;
    pl->head = 1.0 + (double)sdelta_rans_table_bytes(&pl->inl);
    pl->bits = sdelta_rans_cost_bits(&pl->inl, hist);
    pl->bytes = pl->head + stream_bytes(pl->bits, n);
    if (shared) {
        double bits = sdelta_rans_cost_bits(shared, hist);
        if (isfinite(bits)) {
            double head = (double)sdelta_varint_len(shared_index + 1ull);
            double b = head + stream_bytes(bits, n);
            if (b < pl->bytes) {
                pl->bytes = b;
                pl->head = head;
                pl->bits = bits;
                pl->table = shared;
                pl->ref = shared_index + 1ull;
            }
        }
    }
}

/* A token stream: per table its reference (and the table when inline), then the rANS data.
 * With two tables, symbol i uses table i % 2. */
static void write_stream(SdBuf *out, const StreamPlan *a, const StreamPlan *b, const uint8_t *toks,
                         size_t n)
{
    const SdRansTable *t[2] = {a->table, b ? b->table : NULL};
    for (int k = 0; k < (b ? 2 : 1); k++) {
        const StreamPlan *pl = k ? b : a;
        sdbuf_varint(out, pl->ref);
        if (pl->ref == 0)
            sdelta_rans_table_write(out, pl->table);
    }
    sdelta_rans_encode(out, t, b ? 2 : 1, toks, n, sdelta_rans_lanes_for(n));
}

/* ---- encoding ---- */

/* A bit writer kept in locals: acc holds n < 8 pending bits; each put stores 8 bytes at p (the
 * buffer has 8 bytes of slack) and advances p by the whole bytes completed. nb <= 56. */
#define PUT_BITS(acc, n, p, v, nb)                                                                 \
    do {                                                                                           \
        (acc) |= (v) << (n);                                                                       \
        (n) += (nb);                                                                               \
        memcpy((p), &(acc), 8);                                                                    \
        (p) += (n) >> 3;                                                                           \
        (acc) = (n) >= 8 ? (acc) >> ((n) & ~7u) : (acc);                                           \
        (n) &= 7;                                                                                  \
    } while (0)

#define PUT_BITS_ANY(acc, n, p, v, nb)                                                             \
    do {                                                                                           \
        uint64_t v_ = (v);                                                                         \
        unsigned nb_ = (nb);                                                                       \
        if (nb_ > 32) {                                                                            \
            PUT_BITS(acc, n, p, v_ & 0xffffffffull, 32);                                           \
            v_ >>= 32;                                                                             \
            nb_ -= 32;                                                                             \
        }                                                                                          \
        PUT_BITS(acc, n, p, v_, nb_);                                                              \
    } while (0)

/* One pass over the changed elements: gap tokens and value tokens, their extra bits written to
 * gout and vout (each needs 8 * k + 16 bytes); returns the byte lengths. */
ALWAYS_INLINE void emit_tokens_w(const uint8_t *a, const uint8_t *b, const uint32_t *pos, size_t k,
                                 unsigned w, bool fl, int xf, uint8_t *tg, uint8_t *tv,
                                 uint8_t *gout, size_t *glen, uint8_t *vout, size_t *vlen)
{
    uint64_t prev = UINT64_MAX, gacc = 0, vacc = 0; /* the first gap is pos[0] - (-1) - 1 */
    unsigned gn = 0, vn = 0;
    uint8_t *gp = gout, *vp = vout;
    for (size_t i = 0; i < k; i++) {
        unsigned ng, nv;
        uint32_t at = pos[i];
        uint64_t gap = at - prev - 1;
        prev = at;
        uint64_t p = a ? ld(a, at, w) : 0, c = ld(b, at, w);
        uint64_t v = value_of(p, c, w, fl, xf);
        tg[i] = (uint8_t)sdelta_token_of(gap, &ng);
        tv[i] = (uint8_t)sdelta_token_of(v, &nv);
        uint64_t gx = gap & ((1ull << ng) - 1);
        PUT_BITS(gacc, gn, gp, gx, ng); /* gaps < 2^32: ng <= 29 */
        uint64_t vx = nv == 64 ? v : v & ((1ull << nv) - 1);
        if (w <= 4)
            PUT_BITS(vacc, vn, vp, vx, nv);
        else
            PUT_BITS_ANY(vacc, vn, vp, vx, nv);
    }
    *glen = (size_t)(gp - gout) + (gn ? 1 : 0);
    *vlen = (size_t)(vp - vout) + (vn ? 1 : 0);
}

/* Token statistics of a sample of the changed elements under both transforms. */
ALWAYS_INLINE void sample_xforms_w(const uint8_t *a, const uint8_t *b, const uint32_t *pos,
                                   size_t k, size_t step, unsigned w, bool fl, uint64_t *hx,
                                   uint64_t *hs, uint64_t *ex, uint64_t *es)
{
    for (size_t i = 0; i < k; i += step) {
        unsigned n;
        uint64_t p = a ? ld(a, pos[i], w) : 0, c = ld(b, pos[i], w);
        hx[sdelta_token_of(value_of(p, c, w, fl, SDELTA_XFORM_XOR), &n)]++;
        *ex += n;
        hs[sdelta_token_of(value_of(p, c, w, fl, SDELTA_XFORM_SUB), &n)]++;
        *es += n;
    }
}

static void byte_hist(const uint8_t *t, size_t n, uint64_t h[SDELTA_NSYMS])
{
    uint32_t h4[4][SDELTA_NSYMS];
    memset(h4, 0, sizeof h4);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        h4[0][t[i]]++;
        h4[1][t[i + 1]]++;
        h4[2][t[i + 2]]++;
        h4[3][t[i + 3]]++;
    }
    for (; i < n; i++)
        h4[0][t[i]]++;
    for (unsigned s = 0; s < SDELTA_NSYMS; s++)
        h[s] = (uint64_t)h4[0][s] + h4[1][s] + h4[2][s] + h4[3][s];
}

static size_t encode_planes(const SdChunkShape *sh, const uint8_t *a, const uint8_t *b,
                            uint8_t *planes, int level, SdBuf *out)
{
    size_t m = sh->m, w = sh->width;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < w; j++)
            planes[j * m + i] = (uint8_t)((a ? a[i * w + j] : 0) ^ b[i * w + j]);
    size_t bound = ZSTD_compressBound(m * w);
    if (!sdbuf_reserve(out, bound))
        return 0;
    size_t r = ZSTD_compress(out->p + out->len, bound, planes, m * w, level);
    if (ZSTD_isError(r))
        return 0;
    out->len += r;
    return r;
}

static double cost_of(const uint64_t h[SDELTA_NSYMS])
{
    SdRansTable t;
    if (!sdelta_rans_build(&t, h))
        return 0;
    return sdelta_rans_cost_bits(&t, h);
}

/* ---- split mode (widths 1 and 2): the bytes of every element's value, one table per byte ---- */

/* Sampled costs (bits per sampled element) of the split, dense and (w = 2) escape modes under
 * both transforms. */
ALWAYS_INLINE void sample_split_w(const uint8_t *a, const uint8_t *b, size_t m, size_t step,
                                  unsigned w, bool fl, double split[2], double dense[2],
                                  double esc[2])
{
    uint64_t hb[SDELTA_XFORM_COUNT][2][SDELTA_NSYMS], ht[SDELTA_XFORM_COUNT][SDELTA_NSYMS];
    uint64_t he[SDELTA_XFORM_COUNT][SDELTA_NSYMS];
    uint64_t ex[SDELTA_XFORM_COUNT] = {0};
    memset(hb, 0, sizeof hb);
    memset(ht, 0, sizeof ht);
    memset(he, 0, sizeof he);
    for (size_t i = 0; i < m; i += step) {
        uint64_t p = a ? ld(a, i, w) : 0, c = ld(b, i, w);
        for (int xf = 0; xf < SDELTA_XFORM_COUNT; xf++) {
            unsigned ne;
            uint64_t v = value_of(p, c, w, fl, xf);
            hb[xf][0][v & 255]++;
            hb[xf][1][(v >> 8) & 255]++;
            he[xf][v < SDELTA_ESCAPE_SYM ? v : SDELTA_ESCAPE_SYM]++;
            ht[xf][sdelta_token_of(v, &ne)]++;
            ex[xf] += ne;
        }
    }
    for (int xf = 0; xf < SDELTA_XFORM_COUNT; xf++) {
        SdRansTable t;
        split[xf] = 0;
        for (unsigned j = 0; j < w; j++)
            if (sdelta_rans_build(&t, hb[xf][j]))
                split[xf] += sdelta_rans_cost_bits(&t, hb[xf][j]);
        dense[xf] = (double)ex[xf];
        if (sdelta_rans_build(&t, ht[xf]))
            dense[xf] += sdelta_rans_cost_bits(&t, ht[xf]);
        esc[xf] = INFINITY;
        if (w == 2 && sdelta_rans_build(&t, he[xf]))
            esc[xf] = sdelta_rans_cost_bits(&t, he[xf]) + 16.0 * (double)he[xf][SDELTA_ESCAPE_SYM];
    }
}

/* The values of all m elements as w-byte little-endian words (the split mode's symbols). */
ALWAYS_INLINE void split_values_w(const uint8_t *a, const uint8_t *b, size_t m, unsigned w,
                                  bool fl, int xf, uint8_t *out)
{
    for (size_t i = 0; i < m; i++)
        st(out, i, w, value_of(a ? ld(a, i, w) : 0, ld(b, i, w), w, fl, xf));
}

static void byte_hist2(const uint8_t *t, size_t m, uint64_t h0[SDELTA_NSYMS],
                       uint64_t h1[SDELTA_NSYMS])
{
    uint32_t h4[4][SDELTA_NSYMS];
    memset(h4, 0, sizeof h4);
    size_t i = 0;
    for (; i + 2 <= m; i += 2) {
        h4[0][t[2 * i]]++;
        h4[1][t[2 * i + 1]]++;
        h4[2][t[2 * i + 2]]++;
        h4[3][t[2 * i + 3]]++;
    }
    for (; i < m; i++) {
        h4[0][t[2 * i]]++;
        h4[1][t[2 * i + 1]]++;
    }
    for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
        h0[s] = (uint64_t)h4[0][s] + h4[2][s];
        h1[s] = (uint64_t)h4[1][s] + h4[3][s];
    }
}

static unsigned split_lanes(size_t n) { return n < 1024 ? 1u : SDELTA_RANS_SPLIT_LANES; }

/* Appends a split-mode payload (transform byte, one stream of m * w symbols with w inline
 * tables). Returns the estimated payload bytes, or -1 on allocation failure. */
static double encode_split(const SdChunkShape *sh, const uint8_t *a, const uint8_t *b, int xf,
                           SdChunkScratch *scr, SdBuf *payload)
{
    size_t m = sh->m;
    unsigned w = sh->width;
    bool fl = sh->is_float;
    uint8_t *sy = scr->planes;
    if (w == 1) {
        if (xf == SDELTA_XFORM_XOR)
            split_values_w(a, b, m, 1, false, SDELTA_XFORM_XOR, sy);
        else if (fl)
            split_values_w(a, b, m, 1, true, SDELTA_XFORM_SUB, sy);
        else
            split_values_w(a, b, m, 1, false, SDELTA_XFORM_SUB, sy);
    } else {
        if (xf == SDELTA_XFORM_XOR)
            split_values_w(a, b, m, 2, false, SDELTA_XFORM_XOR, sy);
        else if (fl)
            split_values_w(a, b, m, 2, true, SDELTA_XFORM_SUB, sy);
        else
            split_values_w(a, b, m, 2, false, SDELTA_XFORM_SUB, sy);
    }
    uint64_t h[2][SDELTA_NSYMS];
    if (w == 1)
        byte_hist(sy, m, h[0]);
    else
        byte_hist2(sy, m, h[0], h[1]);
    SdRansTable t[2];
    const SdRansTable *tp[2] = {&t[0], &t[1]};
    double bits = 0, head = 1;
    for (unsigned j = 0; j < w; j++) {
        sdelta_rans_build(&t[j], h[j]);
        bits += sdelta_rans_cost_bits(&t[j], h[j]);
        head += 1.0 + (double)sdelta_rans_table_bytes(&t[j]);
    }
    sdbuf_u8(payload, (uint8_t)xf);
    for (unsigned j = 0; j < w; j++) {
        sdbuf_varint(payload, 0);
        sdelta_rans_table_write(payload, &t[j]);
    }
    unsigned lanes = split_lanes(m * w);
    if (!sdelta_rans_encode(payload, tp, w, sy, m * w, lanes))
        return -1;
    return head + 1.0 + 3.0 + 4.0 * lanes + bits / 8.0;
}

/* ---- escape mode (width 2): one byte symbol per value, values >= 255 stored apart ---- */

/* Appends an escape-mode payload (transform byte, one stream of m symbols with one inline table,
 * then the escaped values as u16). Returns the estimated payload bytes, or -1 on allocation
 * failure. */
static double encode_escape(const SdChunkShape *sh, const uint8_t *a, const uint8_t *b, int xf,
                            SdChunkScratch *scr, SdBuf *payload)
{
    size_t m = sh->m, ne = 0;
    uint8_t *val = scr->planes, *sy = scr->tok_a; /* m u16 values (planes holds 8m bytes) */
    if (xf == SDELTA_XFORM_XOR)
        split_values_w(a, b, m, 2, false, SDELTA_XFORM_XOR, val);
    else if (sh->is_float)
        split_values_w(a, b, m, 2, true, SDELTA_XFORM_SUB, val);
    else
        split_values_w(a, b, m, 2, false, SDELTA_XFORM_SUB, val);
    for (size_t i = 0; i < m; i++) {
        uint64_t v = ld(val, i, 2);
        sy[i] = (uint8_t)(v < SDELTA_ESCAPE_SYM ? v : SDELTA_ESCAPE_SYM);
        st(val, ne, 2, v); /* escaped values move to the front, in order (ne <= i) */
        ne += v >= SDELTA_ESCAPE_SYM;
    }
    uint64_t h[SDELTA_NSYMS];
    byte_hist(sy, m, h);
    SdRansTable t;
    const SdRansTable *tp[1] = {&t};
    sdelta_rans_build(&t, h);
    double bits = sdelta_rans_cost_bits(&t, h);
    sdbuf_u8(payload, (uint8_t)xf);
    sdbuf_varint(payload, 0);
    sdelta_rans_table_write(payload, &t);
    unsigned lanes = split_lanes(m);
    if (!sdelta_rans_encode(payload, tp, 1, sy, m, lanes))
        return -1;
    sdbuf_put(payload, val, 2 * ne); /* u16 little-endian (little-endian hosts only) */
    if (payload->oom)
        return -1;
    return 2.0 + (double)sdelta_rans_table_bytes(&t) + 1.0 + 3.0 + 4.0 * lanes + bits / 8.0 +
           2.0 * (double)ne;
}

/* Split or escape mode. */
static double encode_bytes(const SdChunkShape *sh, const uint8_t *a, const uint8_t *b, int mode,
                           int xf, SdChunkScratch *scr, SdBuf *payload)
{
    return mode == SDELTA_MODE_ESCAPE ? encode_escape(sh, a, b, xf, scr, payload)
                                      : encode_split(sh, a, b, xf, scr, payload);
}

int sdelta_encode_chunk(const SdChunkShape *sh, const uint8_t *parent, const uint8_t *child,
                        const SdSharedTables *shared, const SdChunkEncodeOpts *opt,
                        SdChunkScratch *scr, uint8_t *mode, uint64_t *nchanged, SdBuf *payload)
{
    size_t m = sh->m, w = sh->width, raw = m * w;
    bool fl = sh->is_float;
    int force = opt ? opt->force_mode : -1;
    bool esc_ok = w == 2 && force != SDELTA_FORCE_V11; /* the escape mode is new in 1.2 */
    if (force < SDELTA_MODE_RAW || force > SDELTA_MODE_ESCAPE ||
        (force == SDELTA_MODE_SPLIT && w > 2) || (force == SDELTA_MODE_ESCAPE && w != 2))
        force = -1;
    if (scratch_grow(scr, m))
        return -1;
    *nchanged = 0;
    *mode = SDELTA_MODE_UNCHANGED;
    if (parent && memcmp(parent, child, raw) == 0)
        return 0;
    size_t k = find_changes(sh, parent, child, scr->pos);
    *nchanged = k;
    if (k == 0)
        return 0;

    int xf = opt && opt->force_xform >= 0 ? opt->force_xform : -1;

    /* Chunks of 2-byte elements with a few percent changed or more: the escape mode when its
     * sampled cost is within 3% of the dense and split modes' (one SIMD-decoded symbol per
     * element, no extra bits: the fastest to decode). Mostly changed chunks of 1- and 2-byte
     * elements: otherwise the split mode when its sampled cost is within 5% of the dense mode's
     * (it codes and decodes about twice as fast as dense: no extra bits, SIMD rANS). Below half
     * changed, its 12-bit tables lose more than the sample shows. */
    bool try_esc = esc_ok && (force == SDELTA_MODE_ESCAPE || (force < 0 && k >= m / 2));
    bool try_split = force == SDELTA_MODE_SPLIT || (force < 0 && w <= 2 && k >= m / 2);
    if (try_esc || try_split) {
        double sc[2], dc[2], ec[2];
        size_t step = m > 16384 ? m / 16384 : 1;
#define CALL_SAMPLE_SPLIT(W) sample_split_w(parent, child, m, step, W, fl, sc, dc, ec)
        if (w == 1)
            CALL_SAMPLE_SPLIT(1);
        else
            CALL_SAMPLE_SPLIT(2);
        int sx = xf >= 0 ? xf : sc[SDELTA_XFORM_SUB] < sc[SDELTA_XFORM_XOR] ? SDELTA_XFORM_SUB
                                                                            : SDELTA_XFORM_XOR;
        int ex = xf >= 0 ? xf : ec[SDELTA_XFORM_SUB] < ec[SDELTA_XFORM_XOR] ? SDELTA_XFORM_SUB
                                                                            : SDELTA_XFORM_XOR;
        double dmin = dc[0] < dc[1] ? dc[0] : dc[1];
        int bm = -1, bx = 0;
        if (force == SDELTA_MODE_ESCAPE ||
            (try_esc && ec[ex] <= 1.03 * dmin && (!try_split || ec[ex] <= 1.03 * sc[sx]))) {
            bm = SDELTA_MODE_ESCAPE;
            bx = ex;
        } else if (force == SDELTA_MODE_SPLIT || (try_split && sc[sx] <= 1.05 * dmin)) {
            bm = SDELTA_MODE_SPLIT;
            bx = sx;
        }
        if (bm >= 0) {
            size_t at = payload->len;
            double est = encode_bytes(sh, parent, child, bm, bx, scr, payload);
            if (est < 0 || payload->oom)
                return -1;
            *mode = (uint8_t)bm;
            if (force < 0 && payload->len - at > raw / 2) {
                /* poorly compressible: zstd of the byte planes, or raw, may do better */
                size_t bytes_len = payload->len - at;
                payload->len = at;
                size_t z = encode_planes(sh, parent, child, scr->planes,
                                         opt ? opt->zstd_level : 3, payload);
                if (payload->oom)
                    return -1;
                if (z && z < bytes_len && z < raw) {
                    *mode = SDELTA_MODE_PLANES;
                    return 0;
                }
                payload->len = at;
                if (bytes_len >= raw) {
                    *mode = SDELTA_MODE_RAW;
                    sdbuf_put(payload, child, raw);
                    return payload->oom ? -1 : 0;
                }
                encode_bytes(sh, parent, child, bm, bx, scr, payload);
                return payload->oom ? -1 : 0;
            }
            return 0;
        }
    }

    /* The transform: the one whose sampled tokens cost fewer bits (or the forced one). */
    if (xf < 0) {
        uint64_t hx[SDELTA_NSYMS] = {0}, hs[SDELTA_NSYMS] = {0}, ex = 0, es = 0;
        size_t step = k > 8192 ? k / 8192 : 1;
#define CALL_SAMPLE(W) sample_xforms_w(parent, child, scr->pos, k, step, W, fl, hx, hs, &ex, &es)
        switch (w) {
        case 1: CALL_SAMPLE(1); break;
        case 2: CALL_SAMPLE(2); break;
        case 4: CALL_SAMPLE(4); break;
        default: CALL_SAMPLE(8); break;
        }
        xf = cost_of(hs) + (double)es < cost_of(hx) + (double)ex ? SDELTA_XFORM_SUB
                                                                   : SDELTA_XFORM_XOR;
    }

    /* Tokens and extra bits of the chosen transform. */
    uint8_t *tg = scr->tok_a, *tv = scr->tok_b;
    if (scratch_grow_bits(scr, k))
        return -1;
    struct { uint8_t *p; size_t len; } gbuf = {scr->bits_g, 0}, vbuf = {scr->bits_v, 0};
#define CALL_EMIT(W, FL, XF)                                                                       \
    emit_tokens_w(parent, child, scr->pos, k, W, FL, XF, tg, tv, gbuf.p, &gbuf.len, vbuf.p, &vbuf.len)
    DISPATCH_W(w, fl, xf, CALL_EMIT);
    int rc = -1;
    StreamPlan *pl = malloc(3 * sizeof *pl);
    if (!pl)
        goto done;
    StreamPlan *pg = &pl[0], *pv = &pl[1], *pd = &pl[2];
    uint64_t hg[SDELTA_NSYMS], hv[SDELTA_NSYMS];
    byte_hist(tg, k, hg);
    byte_hist(tv, k, hv);
    int role = xf == SDELTA_XFORM_XOR ? SDELTA_ROLE_VAL_XOR : SDELTA_ROLE_VAL_SUB;
    plan_stream(hg, k, shared ? shared->table[SDELTA_ROLE_GAP] : NULL,
                shared ? shared->index[SDELTA_ROLE_GAP] : 0, pg);
    plan_stream(hv, k, shared ? shared->table[role] : NULL, shared ? shared->index[role] : 0, pv);
    double sparse = 1.0 + pg->head + pv->head + stream_bytes(pg->bits + pv->bits, 2 * k) +
                    (double)gbuf.len + (double)vbuf.len;
    hv[0] += m - k;
    plan_stream(hv, m, NULL, 0, pd);
    double dense = 1.0 + pd->bytes + (double)vbuf.len;

    int md;
    if (force >= 0)
        md = force;
    else
        md = dense < sparse ? SDELTA_MODE_DENSE : SDELTA_MODE_SPARSE;
    double best = md == SDELTA_MODE_DENSE ? dense : sparse;
    if (force == SDELTA_MODE_PLANES || (force < 0 && best > 0.5 * (double)raw)) {
        size_t at = payload->len;
        size_t z = encode_planes(sh, parent, child, scr->planes, opt ? opt->zstd_level : 3, payload);
        if (payload->oom)
            goto done;
        if (z && (force == SDELTA_MODE_PLANES || (double)z < best)) {
            *mode = SDELTA_MODE_PLANES;
            rc = 0;
            goto done;
        }
        payload->len = at;
    }
    if (md == SDELTA_MODE_RAW || (force < 0 && best >= (double)raw)) {
        *mode = SDELTA_MODE_RAW;
        sdbuf_put(payload, child, raw);
        rc = payload->oom ? -1 : 0;
        goto done;
    }
    size_t at = payload->len;
    sdbuf_u8(payload, (uint8_t)xf);
    if (md == SDELTA_MODE_SPARSE) {
        uint8_t *ti = scr->planes; /* gap and value tokens interleaved */
        for (size_t i = 0; i < k; i++) {
            ti[2 * i] = tg[i];
            ti[2 * i + 1] = tv[i];
        }
        write_stream(payload, pg, pv, ti, 2 * k);
        sdbuf_put(payload, gbuf.p, gbuf.len);
    } else {
        uint8_t *td = scr->tok_a; /* the gap tokens are no longer needed */
        memset(td, 0, m);
        for (size_t i = 0; i < k; i++)
            td[scr->pos[i]] = tv[i];
        write_stream(payload, pd, NULL, td, m);
    }
    sdbuf_put(payload, vbuf.p, vbuf.len);
    if (payload->oom)
        goto done;
    *mode = (uint8_t)md;
    if (payload->len - at >= raw && force < 0) { /* the estimate was wrong: store raw */
        payload->len = at;
        *mode = SDELTA_MODE_RAW;
        sdbuf_put(payload, child, raw);
    }
    rc = payload->oom ? -1 : 0;
done:
    free(pl);
    return rc;
}
