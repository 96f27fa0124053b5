/* Static rANS: table normalization, table serialization, and the encode/decode loops.
 * Symbol i of a stream is coded by lane i % lanes; the encoder runs backwards and writes words
 * backwards so that the decoder reads them forwards. Reciprocal division follows ryg_rans
 * (exact for states below 2^31, which L = 2^15 with 16-bit renormalization guarantees). */
#include "formats/sdelta/sdelta_rans.h"

#include <math.h>
#include <pthread.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SD_AVX2_PATH 1
#endif
#include <stdlib.h>
#include <string.h>

#define M SDELTA_RANS_PROB_SCALE
#define PB SDELTA_RANS_PROB_BITS
#define L SDELTA_RANS_L
#define NL SDELTA_RANS_SPLIT_LANES /* lanes of the AVX2 paths */
#define NG ((int)NL / 8)           /* their groups of 8 */

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

#ifdef SD_AVX2_PATH
/* 32 lanes as four groups of 8 AVX2 states. A group gathers its 8 slot entries, updates the
 * states, and renormalizes the lanes below L from the next words in lane order: the words are
 * widened to 32 bits and permuted to their lanes by a table indexed by the lane mask. The four
 * groups' state chains are independent, so their latencies overlap. */
static uint32_t perm_tab[256][8] __attribute__((aligned(32)));
static int avx2_ok;
static pthread_once_t avx2_once = PTHREAD_ONCE_INIT;

static void avx2_fill(void)
{
    __builtin_cpu_init();
    avx2_ok = __builtin_cpu_supports("avx2");
    for (unsigned m = 0; m < 256; m++) {
        unsigned r = 0;
        for (unsigned j = 0; j < 8; j++)
            perm_tab[m][j] = (m >> j) & 1 ? r++ : 0;
    }
}
#endif

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

#ifdef SD_AVX2_PATH
/* Word compression for the encoder: for lane mask m with c lanes set, entry r (8 - c <= r < 8)
 * is the (r - 8 + c)-th set lane, so that the c words land in the top c of 8 positions. */
static uint32_t cperm_tab[256][8] __attribute__((aligned(32)));
static pthread_once_t cperm_once = PTHREAD_ONCE_INIT;

static void cperm_fill(void)
{
    for (unsigned m = 0; m < 256; m++) {
        unsigned c = (unsigned)__builtin_popcount(m), r = 8 - c;
        for (unsigned j = 0; j < 8; j++)
            cperm_tab[m][j] = 0;
        for (unsigned j = 0; j < 8; j++)
            if ((m >> j) & 1)
                cperm_tab[m][r++] = j;
    }
}

/* Encodes symbols n-1 .. 0 (n a multiple of 32) with 32 lanes as four groups of 8 AVX2 states,
 * groups and lanes in descending order; each group stores its renormalization words in
 * ascending lane order just below ptr (8 words are written, the extra ones below the new ptr,
 * which the buffer's slack allows). Returns the new ptr. */
__attribute__((target("avx2,popcnt"))) static uint16_t *
enc32_avx2(uint32_t *xs, const EncSym (*es)[SDELTA_NSYMS], unsigned ntables, const uint8_t *syms,
           size_t n, uint16_t *ptr)
{
    pthread_once(&cperm_once, cperm_fill);
    /* two gathers per group: rcp_freq, and freq (13 bits) | bias << 13 (13 bits) | rcp_shift
     * << 26, from which x_max = freq << 19 and cmpl_freq = M - freq follow; symbols that do not
     * occur have freq 0 here and are never looked up */
    uint32_t f_rcp[2 * SDELTA_NSYMS], f_pk[2 * SDELTA_NSYMS];
    for (unsigned k = 0; k < 2; k++)
        for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
            const EncSym *e = &es[k < ntables ? k : 0][s];
            uint32_t freq = M - e->cmpl_freq;
            f_rcp[k * SDELTA_NSYMS + s] = e->rcp_freq;
            f_pk[k * SDELTA_NSYMS + s] = freq | e->bias << 13 | (uint32_t)e->rcp_shift << 26;
        }
    const __m256i m13 = _mm256_set1_epi32(0x1fff), mv = _mm256_set1_epi32((int)M);
    const int o = ntables == 2 ? (int)SDELTA_NSYMS : 0;
    const __m256i off = _mm256_setr_epi32(0, o, 0, o, 0, o, 0, o);
    const __m256i pk = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                        0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i x[NG];
    for (int g = 0; g < NG; g++)
        x[g] = _mm256_loadu_si256((const __m256i *)(xs + 8 * g));
    size_t i = n;
    while (i > 0) {
        i -= NL;
        for (int g = NG - 1; g >= 0; g--) {
            __m128i sb = _mm_loadl_epi64((const __m128i *)(syms + i + 8 * g));
            __m256i idx = _mm256_add_epi32(_mm256_cvtepu8_epi32(sb), off);
            __m256i rcp = _mm256_i32gather_epi32((const int *)f_rcp, idx, 4);
            __m256i pkd = _mm256_i32gather_epi32((const int *)f_pk, idx, 4);
            __m256i freq = _mm256_and_si256(pkd, m13);
            __m256i xmax = _mm256_slli_epi32(freq, 19);
            __m256i bias = _mm256_and_si256(_mm256_srli_epi32(pkd, 13), m13);
            __m256i xx = x[g];
            __m256i need = _mm256_cmpeq_epi32(_mm256_max_epu32(xx, xmax), xx); /* x >= x_max */
            unsigned msk = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(need));
            __m256i wv = _mm256_permutevar8x32_epi32(
                xx, _mm256_load_si256((const __m256i *)cperm_tab[msk]));
            wv = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(wv, pk), 0x08);
            _mm_storeu_si128((__m128i *)(ptr - 8), _mm256_castsi256_si128(wv));
            ptr -= __builtin_popcount(msk);
            xx = _mm256_blendv_epi8(xx, _mm256_srli_epi32(xx, 16), need);
            /* q = mulhi(x, rcp) >> shift, on even and odd lanes */
            __m256i qe = _mm256_srli_epi64(_mm256_mul_epu32(xx, rcp), 32);
            __m256i qo = _mm256_mul_epu32(_mm256_srli_epi64(xx, 32), _mm256_srli_epi64(rcp, 32));
            __m256i q = _mm256_blend_epi32(qe, qo, 0xaa);
            q = _mm256_srlv_epi32(q, _mm256_srli_epi32(pkd, 26));
            x[g] = _mm256_add_epi32(_mm256_add_epi32(xx, bias),
                                    _mm256_mullo_epi32(q, _mm256_sub_epi32(mv, freq)));
        }
    }
    for (int g = 0; g < NG; g++)
        _mm256_storeu_si256((__m256i *)(xs + 8 * g), x[g]);
    return ptr;
}
#endif

bool sdelta_rans_encode(SdBuf *out, const SdRansTable *const *tables, unsigned ntables,
                        const uint8_t *syms, size_t n, unsigned lanes)
{
    if (lanes < 1 || lanes > SDELTA_RANS_MAX_LANES || ntables < 1 || ntables > 2)
        return false;
    EncSym es[2][SDELTA_NSYMS];
    memset(es, 0, sizeof es);
    for (unsigned k = 0; k < ntables; k++)
        for (unsigned s = 0; s < SDELTA_NSYMS; s++)
            if (tables[k]->freq[s])
                encsym_init(&es[k][s], tables[k]->start[s], tables[k]->freq[s]);
    size_t cap = n + 2 * (size_t)lanes;
    uint16_t *buf = malloc((cap + 8) * sizeof *buf); /* 8 words of slack below for AVX2 stores */
    if (!buf) {
        out->oom = true;
        return false;
    }
    uint16_t *ptr = buf + 8 + cap;
    uint32_t x[SDELTA_RANS_MAX_LANES];
    for (unsigned j = 0; j < lanes; j++)
        x[j] = L;
    size_t i = n;
    unsigned j = (unsigned)(n % lanes);
    while (i > 0 && (lanes != NL || i % NL != 0)) {
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
#ifdef SD_AVX2_PATH
    if (lanes == NL) {
        pthread_once(&avx2_once, avx2_fill);
        if (avx2_ok)
            ptr = enc32_avx2(x, es, ntables, syms, i, ptr);
        i = 0;
    }
#endif
    if (lanes == 32 && i % 32 == 0) {
        /* whole groups of 32 symbols, lane = position in the group, table = lane % ntables */
        const unsigned tm = ntables - 1;
#define ENC_STEP(J)                                                                                \
    do {                                                                                           \
        const EncSym *e_ = &es[(J) & tm][syms[i + (J)]];                                           \
        uint32_t xx_ = x[J], o_ = xx_ >= e_->x_max;                                                \
        ptr[-1] = (uint16_t)xx_;                                                                   \
        ptr -= o_;                                                                                 \
        xx_ >>= o_ * 16;                                                                           \
        uint32_t q_ = (uint32_t)(((uint64_t)xx_ * e_->rcp_freq) >> 32) >> e_->rcp_shift;           \
        x[J] = xx_ + e_->bias + q_ * e_->cmpl_freq;                                                \
    } while (0)
#define ENC_STEP4(J) ENC_STEP(J + 3); ENC_STEP(J + 2); ENC_STEP(J + 1); ENC_STEP(J)
        while (i > 0) {
            i -= 32;
            ENC_STEP4(28); ENC_STEP4(24); ENC_STEP4(20); ENC_STEP4(16);
            ENC_STEP4(12); ENC_STEP4(8); ENC_STEP4(4); ENC_STEP4(0);
        }
#undef ENC_STEP4
#undef ENC_STEP
    }
    for (unsigned k = lanes; k-- > 0;) {
        *--ptr = (uint16_t)(x[k] >> 16);
        *--ptr = (uint16_t)x[k];
    }
    size_t nwords = (size_t)(buf + 8 + cap - ptr);
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

#ifdef SD_AVX2_PATH

/* Decodes whole groups of 32 symbols while at least 32 remain and 64 bytes are ahead (a group
 * of 8 lanes reads at most 16 bytes). tab: the slot entries of table 0, followed at odd_off by
 * those of the odd lanes' table. Returns the symbols decoded. */
__attribute__((target("avx2,popcnt"))) static size_t
dec32_avx2(uint32_t *xs, const uint32_t *tab, int odd_off, const uint8_t **inp,
           const uint8_t *end, uint8_t *out, size_t n)
{
    const uint8_t *in = *inp;
    const __m256i m12 = _mm256_set1_epi32(M - 1), one = _mm256_set1_epi32(1);
    const __m256i lv = _mm256_set1_epi32((int)L);
    const __m256i off = _mm256_setr_epi32(0, odd_off, 0, odd_off, 0, odd_off, 0, odd_off);
    const __m256i shs = _mm256_setr_epi8(3, 7, 11, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                         -1, 3, 7, 11, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                         -1, -1);
    const __m256i pk = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
    __m256i x[NG];
    for (int g = 0; g < NG; g++)
        x[g] = _mm256_loadu_si256((const __m256i *)(xs + 8 * g));
    size_t i = 0;
    for (; n - i >= NL && end - in >= 16 * NG; i += NL) {
        for (int g = 0; g < NG; g++) {
            __m256i idx = _mm256_add_epi32(_mm256_and_si256(x[g], m12), off);
            __m256i e = _mm256_i32gather_epi32((const int *)tab, idx, 4);
            __m256i sy = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(e, shs), pk);
            _mm_storel_epi64((__m128i *)(out + i + 8 * g), _mm256_castsi256_si128(sy));
            __m256i f = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(e, 12), m12), one);
            __m256i nx = _mm256_add_epi32(_mm256_mullo_epi32(f, _mm256_srli_epi32(x[g], PB)),
                                          _mm256_and_si256(e, m12));
            __m256i need = _mm256_cmpgt_epi32(lv, nx);
            unsigned msk = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(need));
            __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)in));
            w = _mm256_permutevar8x32_epi32(w, _mm256_load_si256((const __m256i *)perm_tab[msk]));
            __m256i sh = _mm256_or_si256(_mm256_slli_epi32(nx, 16), w);
            x[g] = _mm256_blendv_epi8(nx, sh, need);
            in += 2 * (unsigned)__builtin_popcount(msk);
        }
    }
    for (int g = 0; g < NG; g++)
        _mm256_storeu_si256((__m256i *)(xs + 8 * g), x[g]);
    *inp = in;
    return i;
}
#endif

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
#ifdef SD_AVX2_PATH
    if (s->lanes == NL && (d1 == d0 || d1 == d0 + 1)) {
        pthread_once(&avx2_once, avx2_fill);
        if (avx2_ok)
            i += dec32_avx2(s->x, d0->slot, d1 == d0 ? 0 : (int)M, &in, end, syms + i, n - i);
    }
#endif
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
