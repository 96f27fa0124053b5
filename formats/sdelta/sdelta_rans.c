/* Static rANS: table normalization, table serialization, and the encode/decode loops.
 * Symbol i of a stream is coded by lane i % lanes; the encoder runs backwards and writes words
 * backwards so that the decoder reads them forwards. Reciprocal division follows ryg_rans
 * (exact for states below 2^31, which L = 2^15 with 16-bit renormalization guarantees). */
#include "formats/sdelta/sdelta_rans.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define M SDELTA_RANS_PROB_SCALE
#define PB SDELTA_RANS_PROB_BITS
#define L SDELTA_RANS_L

static float lg2_tab[M + 1];
static pthread_once_t lg2_once = PTHREAD_ONCE_INIT;

static void lg2_fill(void)
{
    for (unsigned i = 1; i <= M; i++)
        lg2_tab[i] = (float)log2((double)i);
}

static void lg2_init(void) { pthread_once(&lg2_once, lg2_fill); }

bool sdelta_rans_build(SdRansTable *t, const uint64_t counts[SDELTA_NSYMS])
{
    lg2_init();
    memset(t, 0, sizeof *t);
    uint64_t total = 0;
    unsigned present = 0, last = 0;
    for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
        total += counts[s];
        if (counts[s]) {
            present++;
            last = s;
        }
    }
    if (!present)
        return false;
    uint32_t f[SDELTA_NSYMS] = {0};
    if (present == 1) {
        f[last] = M;
    } else {
        int64_t sum = 0;
        for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
            if (!counts[s])
                continue;
            double x = (double)counts[s] * M / (double)total;
            uint32_t v = (uint32_t)(x + 0.5);
            if (v < 1)
                v = 1;
            if (v > M - 1)
                v = M - 1;
            f[s] = v;
            sum += v;
        }
        /* Fix the sum one unit at a time where it costs the fewest bits. */
        while (sum != M) {
            int best = -1;
            double bestv = 0;
            if (sum < M) {
                for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
                    if (!counts[s])
                        continue;
                    double gain = (double)counts[s] * (lg2_tab[f[s] + 1] - lg2_tab[f[s]]);
                    if (best < 0 || gain > bestv) {
                        best = (int)s;
                        bestv = gain;
                    }
                }
                f[best]++;
                sum++;
            } else {
                for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
                    if (f[s] <= 1)
                        continue;
                    double loss = (double)counts[s] * (lg2_tab[f[s]] - lg2_tab[f[s] - 1]);
                    if (best < 0 || loss < bestv) {
                        best = (int)s;
                        bestv = loss;
                    }
                }
                f[best]--;
                sum--;
            }
        }
    }
    uint32_t start = 0;
    for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
        t->freq[s] = (uint16_t)f[s];
        t->start[s] = (uint16_t)start;
        start += f[s];
    }
    t->nsyms = (uint16_t)present;
    return true;
}

double sdelta_rans_cost_bits(const SdRansTable *t, const uint64_t counts[SDELTA_NSYMS])
{
    lg2_init();
    double bits = 0;
    for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
        if (!counts[s])
            continue;
        if (!t->freq[s])
            return INFINITY;
        bits += (double)counts[s] * (PB - lg2_tab[t->freq[s]]);
    }
    return bits;
}

size_t sdelta_rans_table_bytes(const SdRansTable *t)
{
    size_t n = sdelta_varint_len(t->nsyms);
    int prev = -1;
    for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
        if (!t->freq[s])
            continue;
        n += sdelta_varint_len((uint64_t)((int)s - prev - 1)) + sdelta_varint_len(t->freq[s] - 1u);
        prev = (int)s;
    }
    return n;
}

void sdelta_rans_table_write(SdBuf *out, const SdRansTable *t)
{
    sdbuf_varint(out, t->nsyms);
    int prev = -1;
    for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
        if (!t->freq[s])
            continue;
        sdbuf_varint(out, (uint64_t)((int)s - prev - 1));
        sdbuf_varint(out, t->freq[s] - 1u);
        prev = (int)s;
    }
}

bool sdelta_rans_table_read(SdReader *r, SdRansTable *t)
{
    memset(t, 0, sizeof *t);
    uint64_t k = sdrd_varint(r);
    if (r->bad || k < 1 || k > SDELTA_NSYMS)
        return false;
    uint64_t sym = 0, sum = 0;
    for (uint64_t i = 0; i < k; i++) {
        uint64_t gap = sdrd_varint(r), fm1 = sdrd_varint(r);
        if (r->bad || gap >= SDELTA_NSYMS || fm1 >= M)
            return false;
        sym = (i == 0 ? 0 : sym + 1) + gap;
        if (sym >= SDELTA_NSYMS)
            return false;
        t->freq[sym] = (uint16_t)(fm1 + 1);
        sum += fm1 + 1;
        if (sum > M)
            return false;
    }
    if (sum != M)
        return false;
    uint32_t start = 0;
    for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
        t->start[s] = (uint16_t)start;
        start += t->freq[s];
    }
    t->nsyms = (uint16_t)k;
    return true;
}

void sdelta_rans_dectable_build(SdRansDecTable *d, const SdRansTable *t)
{
    for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
        uint32_t f = t->freq[s], st = t->start[s];
        for (uint32_t j = 0; j < f; j++)
            d->slot[st + j] = ((uint32_t)s << 24) | ((f - 1) << 12) | j;
    }
}

/* ---- encoding ---- */

typedef struct EncSym {
    uint32_t x_max, rcp_freq, bias;
    uint16_t cmpl_freq, rcp_shift;
} EncSym;

static void encsym_init(EncSym *e, uint32_t start, uint32_t freq)
{
    e->x_max = ((L >> PB) << 16) * freq;
    e->cmpl_freq = (uint16_t)(M - freq);
    if (freq < 2) {
        e->rcp_freq = ~0u;
        e->rcp_shift = 0;
        e->bias = start + M - 1;
    } else {
        uint32_t shift = 0;
        while (freq > (1u << shift))
            shift++;
        e->rcp_freq = (uint32_t)(((1ull << (shift + 31)) + freq - 1) / freq);
        e->rcp_shift = (uint16_t)(shift - 1);
        e->bias = start;
    }
}

bool sdelta_rans_encode(SdBuf *out, const SdRansTable *const *tables, unsigned ntables,
                        const uint8_t *syms, size_t n, unsigned lanes)
{
    if (lanes < 1 || lanes > SDELTA_RANS_MAX_LANES || ntables < 1 || ntables > 2)
        return false;
    EncSym es[2][SDELTA_NSYMS];
    for (unsigned k = 0; k < ntables; k++)
        for (unsigned s = 0; s < SDELTA_NSYMS; s++)
            if (tables[k]->freq[s])
                encsym_init(&es[k][s], tables[k]->start[s], tables[k]->freq[s]);
    size_t cap = n + 2 * (size_t)lanes;
    uint16_t *buf = malloc(cap * sizeof *buf);
    if (!buf) {
        out->oom = true;
        return false;
    }
    uint16_t *ptr = buf + cap;
    uint32_t x[SDELTA_RANS_MAX_LANES];
    for (unsigned j = 0; j < lanes; j++)
        x[j] = L;
    size_t i = n;
    unsigned j = (unsigned)(n % lanes);
    while (i > 0) {
        i--;
        j = j == 0 ? lanes - 1 : j - 1;
        const EncSym *e = &es[ntables == 1 ? 0 : i & 1][syms[i]];
        uint32_t xx = x[j];
        /* branch-free renormalization: the word is always stored below ptr, kept only when due */
        uint32_t out = xx >= e->x_max;
        ptr[-1] = (uint16_t)xx;
        ptr -= out;
        xx >>= out * 16;
        uint32_t q = (uint32_t)(((uint64_t)xx * e->rcp_freq) >> 32) >> e->rcp_shift;
        x[j] = xx + e->bias + q * e->cmpl_freq;
    }
    for (unsigned k = lanes; k-- > 0;) {
        *--ptr = (uint16_t)(x[k] >> 16);
        *--ptr = (uint16_t)x[k];
    }
    size_t nwords = (size_t)(buf + cap - ptr);
    sdbuf_u8(out, (uint8_t)lanes);
    sdbuf_varint(out, (uint64_t)nwords * 2);
    if (sdbuf_reserve(out, nwords * 2)) {
        uint8_t *o = out->p + out->len;
        for (size_t k = 0; k < nwords; k++)
            sdelta_wr16(o + 2 * k, ptr[k]);
        out->len += nwords * 2;
    }
    free(buf);
    return !out->oom;
}

/* ---- decoding ---- */

#define DEC_STEP(tab, xv, outp)                                                                    \
    do {                                                                                           \
        uint32_t e_ = (tab)->slot[(xv) & (M - 1)];                                                     \
        *(outp) = (uint8_t)(e_ >> 24);                                                             \
        (xv) = (((e_ >> 12) & 0xfffu) + 1) * ((xv) >> PB) + (e_ & 0xfffu);                         \
    } while (0)

bool sdelta_rans_dec_begin(SdReader *r, SdRansDec *s, const SdRansDecTable *const *d,
                           unsigned ntables)
{
    if (ntables < 1 || ntables > 2)
        return false;
    unsigned lanes = sdrd_u8(r);
    uint64_t nbytes = sdrd_varint(r);
    if (r->bad || lanes < 1 || lanes > SDELTA_RANS_MAX_LANES || (nbytes & 1) ||
        nbytes < 4ull * lanes || (ntables == 2 && lanes > 1 && (lanes & 1)))
        return false;
    const uint8_t *in = sdrd_bytes(r, nbytes);
    if (!in)
        return false;
    s->end = in + nbytes;
    for (unsigned j = 0; j < lanes; j++) {
        s->x[j] = sdelta_rd32(in);
        in += 4;
        if (s->x[j] < L || s->x[j] >= (1u << 31))
            return false;
    }
    s->in = in;
    s->lanes = lanes;
    s->ntables = ntables;
    s->d[0] = d[0];
    s->d[1] = d[ntables - 1];
    s->done = 0;
    return true;
}

#define RENORM(xv)                                                                                 \
    do {                                                                                           \
        uint32_t w_ = sdelta_rd16(in), nd_ = (xv) < L;                                             \
        (xv) = nd_ ? ((xv) << 16) | w_ : (xv);                                                     \
        in += 2 * nd_;                                                                             \
    } while (0)

/* One symbol with bounds checks; i is the symbol's index in the stream. */
static inline bool dec_one(SdRansDec *s, const uint8_t **inp, size_t i, uint8_t *out)
{
    unsigned j = (unsigned)(i % s->lanes);
    DEC_STEP(s->d[i % s->ntables], s->x[j], out);
    if (s->x[j] < L) {
        if (s->end - *inp < 2)
            return false;
        s->x[j] = (s->x[j] << 16) | sdelta_rd16(*inp);
        *inp += 2;
    }
    return true;
}

bool sdelta_rans_dec_block(SdRansDec *s, uint8_t *syms, size_t n)
{
    const uint8_t *in = s->in, *end = s->end;
    size_t i = 0, base = s->done;
    /* the unrolled loops start at symbols whose index is a multiple of the lane count, where
     * lane j always meets table j % ntables */
    while (i < n && (base + i) % s->lanes != 0) {
        if (!dec_one(s, &in, base + i, syms + i))
            return false;
        i++;
    }
    const SdRansDecTable *d0 = s->d[0], *d1 = s->d[1];
    if (s->lanes == 4) {
        uint32_t x0 = s->x[0], x1 = s->x[1], x2 = s->x[2], x3 = s->x[3];
        /* each symbol reads at most one word, so 4 symbols read at most 8 bytes */
        while (n - i >= 4 && end - in >= 8) {
            DEC_STEP(d0, x0, syms + i);
            DEC_STEP(d1, x1, syms + i + 1);
            DEC_STEP(d0, x2, syms + i + 2);
            DEC_STEP(d1, x3, syms + i + 3);
            RENORM(x0);
            RENORM(x1);
            RENORM(x2);
            RENORM(x3);
            i += 4;
        }
        s->x[0] = x0; s->x[1] = x1; s->x[2] = x2; s->x[3] = x3;
    } else if (s->lanes == 8) {
        uint32_t x0 = s->x[0], x1 = s->x[1], x2 = s->x[2], x3 = s->x[3], x4 = s->x[4],
                 x5 = s->x[5], x6 = s->x[6], x7 = s->x[7];
        while (n - i >= 8 && end - in >= 16) {
            DEC_STEP(d0, x0, syms + i);
            DEC_STEP(d1, x1, syms + i + 1);
            DEC_STEP(d0, x2, syms + i + 2);
            DEC_STEP(d1, x3, syms + i + 3);
            DEC_STEP(d0, x4, syms + i + 4);
            DEC_STEP(d1, x5, syms + i + 5);
            DEC_STEP(d0, x6, syms + i + 6);
            DEC_STEP(d1, x7, syms + i + 7);
            RENORM(x0);
            RENORM(x1);
            RENORM(x2);
            RENORM(x3);
            RENORM(x4);
            RENORM(x5);
            RENORM(x6);
            RENORM(x7);
            i += 8;
        }
        s->x[0] = x0; s->x[1] = x1; s->x[2] = x2; s->x[3] = x3;
        s->x[4] = x4; s->x[5] = x5; s->x[6] = x6; s->x[7] = x7;
    }
    for (; i < n; i++)
        if (!dec_one(s, &in, base + i, syms + i))
            return false;
    s->in = in;
    s->done = base + n;
    return true;
}

bool sdelta_rans_dec_end(const SdRansDec *s)
{
    if (s->in != s->end)
        return false;
    for (unsigned j = 0; j < s->lanes; j++)
        if (s->x[j] != L)
            return false;
    return true;
}

bool sdelta_rans_decode(SdReader *r, const SdRansDecTable *const *d, unsigned ntables,
                        uint8_t *syms, size_t n)
{
    SdRansDec s;
    return sdelta_rans_dec_begin(r, &s, d, ntables) && sdelta_rans_dec_block(&s, syms, n) &&
           sdelta_rans_dec_end(&s);
}
