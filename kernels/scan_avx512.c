/* The AVX-512 (F, BW, DQ, VL) scan path, chosen at run time; same counts as the portable rule.
 *
 * Half-like dtypes (BF16, F16, F8_E4M3, F8_E5M2) go 32 elements at a time:
 *   1. compare the stored bits of a and b (16-bit images); an all-equal group only adds a^2;
 *   2. decode to two 16-lane float vectors, d = b - a, and count d > tol[k] as
 *      d > (largest float <= tol[k]), which is the same decision when d is exact;
 *   3. rtol: for rtol <= 2^-(p+1) (p = significand bits; BF16 at 1e-3) the rtol count is the
 *      changed count (distinct values differ by more than that); otherwise d is compared against
 *      rtol*max(|a|,|b|) rounded up and down to float (embedded rounding) and the rare lanes in
 *      between are settled in double.
 * d is exact in float unless the exponents of a and b are far apart (gap > 24 - p) or, for BF16,
 * b - a overflows. Runs of groups are first done optimistically, without those checks: a rounded
 * or overflowing d raises the MXCSR inexact flag (every other floating-point operation of the run
 * suppresses exceptions), and a non-finite input makes the double sums non-finite. Either sign
 * makes the driver redo the run from its saved state carefully: groups with a non-finite value or
 * a large exponent gap go to the portable rule. The outcome is a function of the data only.
 * In optimistic runs, groups where few lanes differ (sparse updates: most AdamW steps round away in
 * BF16) sum a^2 at once and compress their differences into a stage worked off 16 at a time.
 * F32 and F64 go through double arithmetic, which is the definition itself.
 * Counts are popcounts of compare masks added in general registers (off the vector pipes).
 * Sums: a^2 and d^2 in double, 4 vector partials of 8 lanes each, reduced in a fixed order; the
 * lane a value lands in depends on the path its group took, so sums may differ from the portable
 * ones in the last bits, but for given data they are always the same.
 * (Measured on Zen 4: the double sums cost about as much as everything else together.)
 * scan_block_avx512_seg hands each finished segment (whole optimistic segments, about 32768
 * elements, ending on a multiple of 64) to a hook while it is still in L2: the masks and
 * histograms of scan_jobs_cpu_ext are made there, in the same pass over memory. */
#include <immintrin.h>
#include <string.h>

#include "kernels/scan.h"
#include "kernels/scan_isa.h"

#define AVX512_TARGET "avx512f,avx512bw,avx512dq,avx512vl"
#define AVX512_INLINE static inline __attribute__((always_inline, target(AVX512_TARGET)))

/* The accumulators. A run of groups (half_run, f32_run, f64_run: leaf functions, no calls
 * inside) copies them into locals, so that they live in registers, and back. */
typedef struct Acc512 {
    __m512d sq_a[4], sq_d[4]; /* partial sums of a^2 and d^2, 8 lanes each */
    __m512i max_f32;          /* max |d| as float bits (half-like kinds) */
    __m512d max_f64;          /* max |d| (F32, F64) */
} Acc512;

typedef struct Side512 {
    uint64_t changed, rtol, tol0, tol1, tol2, tol3; /* tol[0..3] named, to stay in registers */
    uint64_t tol[SCAN_MAX_TOL];                      /* tol[4..] */
} Side512;

/* Loop constants. */
typedef struct Const512 {
    __m512i thr0, thr1, thr2, thr3; /* half-like: tol_dn[0..3] as float bits, broadcast */
    __m512d tol0, tol1, tol2, tol3; /* F32/F64: tol[0..3], broadcast */
    __m512d rtol;                   /* F32/F64, broadcast */
    __m512 rtol_up, rtol_dn;        /* half-like, broadcast */
    size_t ntol;
    int rtol_mode;                  /* RTOL_* */
} Const512;

/* Everything but the float subtraction b - a runs with suppressed exceptions (SAE), so that the
 * MXCSR inexact flag after an optimistic run says whether some difference was rounded. */
#define SAE_RN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define MXCSR_DEFAULT 0x1F80u /* exceptions masked, round to nearest, no FTZ/DAZ, flags clear */
#define MXCSR_INEXACT 0x20u
#define OPTIMISTIC_SEGMENT 32768 /* elements per optimistic run (a multiple of 32) */

__attribute__((target(AVX512_TARGET))) static void const_init(Const512 *c, const ScanPrep *p, int kind)
{
    const ScanConfig *cfg = p->cfg;
    c->thr0 = _mm512_set1_epi32((int)p->tol_dn[0]);
    c->thr1 = _mm512_set1_epi32((int)p->tol_dn[1]);
    c->thr2 = _mm512_set1_epi32((int)p->tol_dn[2]);
    c->thr3 = _mm512_set1_epi32((int)p->tol_dn[3]);
    c->tol0 = _mm512_set1_pd(cfg->ntol > 0 ? cfg->tol[0] : 0.0);
    c->tol1 = _mm512_set1_pd(cfg->ntol > 1 ? cfg->tol[1] : 0.0);
    c->tol2 = _mm512_set1_pd(cfg->ntol > 2 ? cfg->tol[2] : 0.0);
    c->tol3 = _mm512_set1_pd(cfg->ntol > 3 ? cfg->tol[3] : 0.0);
    c->ntol = cfg->ntol;
    c->rtol = _mm512_set1_pd(cfg->has_rtol ? cfg->rtol : 0.0);
    c->rtol_up = _mm512_set1_ps(p->rtol_up);
    c->rtol_dn = _mm512_set1_ps(p->rtol_dn);
    c->rtol_mode = kind < 0 ? (cfg->has_rtol ? RTOL_BOUNDS : RTOL_NONE) : scan_half_rtol_mode(kind, cfg);
}

__attribute__((target(AVX512_TARGET))) static void acc_init(Acc512 *acc, Side512 *side)
{
    for (int q = 0; q < 4; q++)
        acc->sq_a[q] = acc->sq_d[q] = _mm512_setzero_pd();
    acc->max_f32 = _mm512_setzero_si512();
    acc->max_f64 = _mm512_setzero_pd();
    memset(side, 0, sizeof *side);
}

/* s0 += x[0:8]^2, s1 += x[8:16]^2 in double. */
AVX512_INLINE void acc_square(__m512d *s0, __m512d *s1, __m512 x)
{
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    *s0 = _mm512_fmadd_round_pd(lo, lo, *s0, SAE_RN);
    *s1 = _mm512_fmadd_round_pd(hi, hi, *s1, SAE_RN);
}

/* Adds everything into out; pc holds the groups done by the portable rule. */
__attribute__((target(AVX512_TARGET))) static void acc_finish(const Acc512 *acc, const Side512 *side,
                                                              const ScanCounts *pc,
                                                              const ScanConfig *cfg, size_t n,
                                                              ScanCounts *out)
{
    double sa = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc->sq_a[0], acc->sq_a[1]),
                                                   _mm512_add_pd(acc->sq_a[2], acc->sq_a[3])));
    double sd = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc->sq_d[0], acc->sq_d[1]),
                                                   _mm512_add_pd(acc->sq_d[2], acc->sq_d[3])));
    uint32_t mbits = _mm512_reduce_max_epu32(acc->max_f32);
    float mf;
    memcpy(&mf, &mbits, sizeof mf);
    double mx = _mm512_reduce_max_pd(acc->max_f64);
    if ((double)mf > mx)
        mx = mf;
    if (pc->max_abs_delta > mx)
        mx = pc->max_abs_delta;

    out->numel += n;
    out->changed += side->changed + pc->changed;
    out->nonfinite += pc->nonfinite;
    const uint64_t tol0123[4] = {side->tol0, side->tol1, side->tol2, side->tol3};
    for (size_t k = 0; k < cfg->ntol; k++)
        out->changed_tol[k] += (k < 4 ? tol0123[k] : side->tol[k]) + pc->changed_tol[k];
    if (cfg->has_rtol)
        out->changed_rtol += side->rtol + pc->changed_rtol;
    if (mx > out->max_abs_delta)
        out->max_abs_delta = mx;
    out->sum_sq_delta += sd + pc->sum_sq_delta;
    out->sum_sq_a += sa + pc->sum_sq_a;
}

/* ---- half-like dtypes: 32 elements, 16-bit images, float arithmetic ------------------------ */

/* Loads 32 elements as 16-bit images: BF16 and F16 as stored, F8_E5M2 as the F16 it is the top
 * byte of, F8_E4M3 as the F16 whose value is 1/256 of it (magnitude bits moved down by 1). */
AVX512_INLINE __m512i half_load(int kind, const uint8_t *p, size_t i, __mmask32 lm)
{
    if (kind == HALF_BF16 || kind == HALF_F16)
        return _mm512_maskz_loadu_epi16(lm, p + 2 * i);
    __m512i x = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(lm, p + i));
    if (kind == HALF_E5M2)
        return _mm512_slli_epi16(x, 8);
    __m512i sign = _mm512_and_si512(_mm512_slli_epi16(x, 8), _mm512_set1_epi16((short)0x8000));
    __m512i mag = _mm512_slli_epi16(_mm512_and_si512(x, _mm512_set1_epi16(0x7F)), 7);
    return _mm512_or_si512(sign, mag);
}

/* The 32 images as two float vectors (lane order differs by kind but is the same for a, b, m):
 * BF16 even elements shifted up, odd elements masked in place; the others through F16. */
AVX512_INLINE __m512 half_to_f32(int kind, __m512i v, int hi)
{
    if (kind == HALF_BF16)
        return _mm512_castsi512_ps(hi ? _mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000))
                                      : _mm512_slli_epi32(v, 16));
    __m512 f = _mm512_cvtph_ps(hi ? _mm512_extracti64x4_epi64(v, 1) : _mm512_castsi512_si256(v));
    return kind == HALF_E4M3 ? _mm512_mul_ps(f, _mm512_set1_ps(256.0f)) : f;
}

/* Image magnitudes at or above this go to the portable rule: non-finite, and for BF16 also
 * |x| >= 2^127 where b - a could overflow float. */
static inline uint16_t half_bad_min(int kind)
{
    return kind == HALF_BF16 ? 0x7F00 : kind == HALF_E4M3 ? 0x3F80 : 0x7C00;
}

/* Image magnitudes at or above this are non-finite. */
static inline uint16_t half_nonfinite_min(int kind)
{
    return kind == HALF_BF16 ? 0x7F80 : kind == HALF_E4M3 ? 0x3F80 : 0x7C00;
}

/* Largest magnitude difference of nonzero images whose float difference is surely exact. Values
 * with p significand bits and exponents e >= e' (gap g = e - e') are multiples of 2^(e'-p+1); for
 * g >= p their sum or difference stays below 2^(e+1) and so needs at most g + p bits, which float
 * holds for g <= 24 - p (for g < p it needs at most g + p + 1 <= 24 bits). In exponent-field units
 * of the image; 0: no limit (every F8_E4M3 difference is exact). The bit difference of the
 * magnitudes bounds the exponent gap from above (a subnormal counts as exponent 0, not 1), so the
 * test errs on the safe side. */
static inline uint16_t half_gap_max(int kind)
{
    return kind == HALF_BF16 ? 16 << 7 : kind == HALF_F16 ? 13 << 10 : kind == HALF_E5M2 ? 21 << 10 : 0;
}

/* Lanes (of two 16-lane halves) with ad > thr, counted. ad and thr are non-negative floats
 * compared as integers: their bits order like their values. */
AVX512_INLINE uint64_t count_gt32(__m512i ad0, __m512i ad1, __m512i thr)
{
    uint32_t m = (uint32_t)_mm512_cmpgt_epi32_mask(ad0, thr) |
                 (uint32_t)_mm512_cmpgt_epi32_mask(ad1, thr) << 16;
    return (uint64_t)__builtin_popcount(m);
}

/* rtol for one half: ad = |b - a|, m = max(|a|, |b|) (float), both exact. */
AVX512_INLINE void half_rtol_bounds(Side512 *side, const ScanPrep *p, const Const512 *c, __m512i ad,
                                    __m512 m)
{
    __m512i up = _mm512_castps_si512(
        _mm512_mul_round_ps(c->rtol_up, m, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC));
    __m512i dn = _mm512_castps_si512(
        _mm512_mul_round_ps(c->rtol_dn, m, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
    __mmask16 above = _mm512_cmpgt_epu32_mask(ad, up); /* surely d > rtol*m */
    side->rtol += (uint64_t)__builtin_popcount(above);
    __mmask16 unsure = _mm512_mask_cmpgt_epu32_mask(_knot_mask16(above), ad, dn);
    if (__builtin_expect(unsure != 0, 0)) {
        float adf[16], mf[16];
        _mm512_storeu_si512(adf, ad);
        _mm512_storeu_ps(mf, m);
        unsigned csr = _mm_getcsr(); /* the double product may be inexact: keep the flags */
        side->rtol += scan_rtol_settle(p->cfg->rtol, adf, mf, unsure);
        _mm_setcsr(csr);
    }
}

/* 32 lanes (two float halves) of finite a, b with b - a exact in float; m16 holds the
 * max(|a|,|b|) images. */
AVX512_INLINE void half_lanes(Acc512 *acc, Side512 *side, const ScanPrep *p, const Const512 *c,
                              int kind, __m512 a0, __m512 a1, __m512 b0, __m512 b1, __m512i m16)
{
    const __m512i mag = _mm512_set1_epi32(0x7FFFFFFF);
    __m512 d0 = _mm512_sub_ps(b0, a0), d1 = _mm512_sub_ps(b1, a1);
    __m512i ad0 = _mm512_and_si512(_mm512_castps_si512(d0), mag);
    __m512i ad1 = _mm512_and_si512(_mm512_castps_si512(d1), mag);
    if (c->ntol > 0)
        side->tol0 += count_gt32(ad0, ad1, c->thr0);
    if (c->ntol > 1)
        side->tol1 += count_gt32(ad0, ad1, c->thr1);
    if (c->ntol > 2)
        side->tol2 += count_gt32(ad0, ad1, c->thr2);
    if (c->ntol > 3)
        side->tol3 += count_gt32(ad0, ad1, c->thr3);
    for (size_t k = 4; k < c->ntol; k++)
        side->tol[k] += count_gt32(ad0, ad1, _mm512_set1_epi32((int)p->tol_dn[k]));
    if (c->rtol_mode == RTOL_BOUNDS) {
        half_rtol_bounds(side, p, c, ad0, half_to_f32(kind, m16, 0));
        half_rtol_bounds(side, p, c, ad1, half_to_f32(kind, m16, 1));
    }
    acc->max_f32 = _mm512_max_epu32(acc->max_f32, _mm512_max_epu32(ad0, ad1));
    acc_square(&acc->sq_d[0], &acc->sq_d[1], d0);
    acc_square(&acc->sq_d[2], &acc->sq_d[3], d1);
    acc_square(&acc->sq_a[0], &acc->sq_a[1], a0);
    acc_square(&acc->sq_a[2], &acc->sq_a[3], a1);
}

/* Optimistic runs gather the differences of sparse groups (at most SPARSE_MAX of 32 lanes
 * differ) here, with max(|a|, |b|) when rtol needs bounds, and do their work 16 at a time; the
 * a^2 of every lane is summed as it comes. Lanes are read back only once 16 more have been written
 * after them, so that the loads find stores already done rather than waiting on store
 * forwarding across several compressed stores. */
#define SPARSE_MAX 12
#define STAGE_LEN 256 /* floats; a push writes 16 at w < STAGE_LEN */

typedef struct Stage {
    float d[STAGE_LEN + 16], m[STAGE_LEN + 16];
    unsigned r, w; /* lanes [r, w) pending */
} Stage;

/* 16 differences b - a (exact floats) of finite pairs and their max(|a|, |b|) (used in rtol
 * bounds mode): everything but a^2. */
AVX512_INLINE void stage_lanes(Acc512 *acc, Side512 *side, const ScanPrep *p, const Const512 *c,
                               __m512 d, __m512 m)
{
    __m512i ad = _mm512_and_si512(_mm512_castps_si512(d), _mm512_set1_epi32(0x7FFFFFFF));
    if (c->ntol > 0)
        side->tol0 += (uint64_t)__builtin_popcount(_mm512_cmpgt_epi32_mask(ad, c->thr0));
    if (c->ntol > 1)
        side->tol1 += (uint64_t)__builtin_popcount(_mm512_cmpgt_epi32_mask(ad, c->thr1));
    if (c->ntol > 2)
        side->tol2 += (uint64_t)__builtin_popcount(_mm512_cmpgt_epi32_mask(ad, c->thr2));
    if (c->ntol > 3)
        side->tol3 += (uint64_t)__builtin_popcount(_mm512_cmpgt_epi32_mask(ad, c->thr3));
    for (size_t k = 4; k < c->ntol; k++)
        side->tol[k] += (uint64_t)__builtin_popcount(
            _mm512_cmpgt_epi32_mask(ad, _mm512_set1_epi32((int)p->tol_dn[k])));
    if (c->rtol_mode == RTOL_BOUNDS)
        half_rtol_bounds(side, p, c, ad, m);
    acc->max_f32 = _mm512_max_epu32(acc->max_f32, ad);
    acc_square(&acc->sq_d[0], &acc->sq_d[1], d);
}

/* Appends the lanes of (b - a, max(|a|, |b|)) in k to the stage and works off what is ready. */
AVX512_INLINE void stage_push(Stage *st, Acc512 *acc, Side512 *side, const ScanPrep *p,
                              const Const512 *c, __m512 a, __m512 b, __mmask16 k)
{
    const __m512i mag = _mm512_set1_epi32(0x7FFFFFFF);
    _mm512_storeu_ps(st->d + st->w, _mm512_maskz_compress_ps(k, _mm512_sub_ps(b, a)));
    if (c->rtol_mode == RTOL_BOUNDS) {
        __m512i m = _mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(a), mag),
                                     _mm512_and_si512(_mm512_castps_si512(b), mag));
        _mm512_storeu_ps(st->m + st->w, _mm512_maskz_compress_ps(k, _mm512_castsi512_ps(m)));
    }
    st->w += (unsigned)__builtin_popcount(k);
    if (st->w - st->r >= 32) {
        stage_lanes(acc, side, p, c, _mm512_loadu_ps(st->d + st->r), _mm512_loadu_ps(st->m + st->r));
        st->r += 16;
        if (st->w > STAGE_LEN - 16) { /* move the pending lanes (< 32) to the front */
            for (unsigned j = 0; j < 32; j += 16) {
                _mm512_storeu_ps(st->d + j, _mm512_loadu_ps(st->d + st->r + j));
                _mm512_storeu_ps(st->m + j, _mm512_loadu_ps(st->m + st->r + j));
            }
            st->w -= st->r;
            st->r = 0;
        }
    }
}

/* The pending lanes (fewer than 32), missing lanes zero (a zero difference adds nothing). */
AVX512_INLINE void stage_flush(Stage *st, Acc512 *acc, Side512 *side, const ScanPrep *p,
                               const Const512 *c)
{
    while (st->w > st->r) {
        unsigned left = st->w - st->r;
        __mmask16 k = (__mmask16)(left >= 16 ? 0xFFFFu : (1u << left) - 1);
        stage_lanes(acc, side, p, c, _mm512_maskz_loadu_ps(k, st->d + st->r),
                    _mm512_maskz_loadu_ps(k, st->m + st->r));
        st->r += left >= 16 ? 16 : left;
    }
    st->r = st->w = 0;
}

/* One group of 32 elements from i (lm: the valid lanes). Returns 0, having added nothing, when
 * the group needs the portable rule (careful runs only; st is used by optimistic runs). */
AVX512_INLINE int half_group(Acc512 *acc, Side512 *side, Stage *st, const ScanPrep *p,
                             const Const512 *c, int kind, int careful, const uint8_t *a,
                             const uint8_t *b, size_t i, __mmask32 lm)
{
    const __m512i magmask = _mm512_set1_epi16(0x7FFF);
    __m512i va = half_load(kind, a, i, lm), vb = half_load(kind, b, i, lm);
    __mmask32 neq = _mm512_cmpneq_epi16_mask(va, vb);
    /* Optimistic runs check nothing here: a non-finite lane makes the sums non-finite and an
     * inexact b - a raises the inexact flag, and the driver then redoes the run carefully. */
    if (neq == 0) { /* bit-identical group: only a^2 */
        if (careful && _mm512_cmpge_epu16_mask(_mm512_and_si512(va, magmask),
                                               _mm512_set1_epi16((short)half_nonfinite_min(kind))))
            return 0;
        acc_square(&acc->sq_a[0], &acc->sq_a[1], half_to_f32(kind, va, 0));
        acc_square(&acc->sq_a[2], &acc->sq_a[3], half_to_f32(kind, va, 1));
        return 1;
    }
    __m512i mx = _mm512_setzero_si512(); /* max(|a|, |b|) images, where needed */
    if (careful || c->rtol_mode == RTOL_BOUNDS)
        mx = _mm512_max_epu16(_mm512_and_si512(va, magmask), _mm512_and_si512(vb, magmask));
    if (careful) {
        __m512i mn = _mm512_min_epu16(_mm512_and_si512(va, magmask), _mm512_and_si512(vb, magmask));
        __mmask32 bad = _mm512_cmpge_epu16_mask(mx, _mm512_set1_epi16((short)half_bad_min(kind)));
        if (half_gap_max(kind))
            bad |= _mm512_mask_cmpgt_epu16_mask(_mm512_test_epi16_mask(mn, mn),
                                                _mm512_sub_epi16(mx, mn),
                                                _mm512_set1_epi16((short)half_gap_max(kind)));
        if (bad)
            return 0;
    }
    /* changed: bits differ and not both zero (+0 / -0) */
    uint64_t changed = (uint64_t)__builtin_popcount(
        _mm512_mask_test_epi16_mask(neq, _mm512_or_si512(va, vb), magmask));
    side->changed += changed;
    if (c->rtol_mode == RTOL_IS_CHANGED)
        side->rtol += changed;
    __m512 a0 = half_to_f32(kind, va, 0), a1 = half_to_f32(kind, va, 1);
    __m512 b0 = half_to_f32(kind, vb, 0), b1 = half_to_f32(kind, vb, 1);
    if (!careful && __builtin_popcount(neq) <= SPARSE_MAX) {
        /* few lanes differ: a^2 now, the differences later, 16 at a time */
        acc_square(&acc->sq_a[0], &acc->sq_a[1], a0);
        acc_square(&acc->sq_a[2], &acc->sq_a[3], a1);
        stage_push(st, acc, side, p, c, a0, b0,
                   _mm512_cmpneq_epi32_mask(_mm512_castps_si512(a0), _mm512_castps_si512(b0)));
        stage_push(st, acc, side, p, c, a1, b1,
                   _mm512_cmpneq_epi32_mask(_mm512_castps_si512(a1), _mm512_castps_si512(b1)));
        return 1;
    }
    half_lanes(acc, side, p, c, kind, a0, a1, b0, b1, mx);
    return 1;
}

/* Scans groups from i until the end (returns n) or a group that needs the portable rule (returns
 * its start). The state is copied into locals so that it lives in registers. */
AVX512_INLINE size_t half_run(Acc512 *state, Side512 *side_state, const ScanPrep *p,
                              const Const512 *cst, int kind, int careful, const uint8_t *a,
                              const uint8_t *b, size_t i, size_t n)
{
    Acc512 acc = *state;
    Side512 side = *side_state;
    Const512 c = *cst;
    Stage st;
    st.r = st.w = 0;
    for (; i + 32 <= n; i += 32)
        if (!half_group(&acc, &side, &st, p, &c, kind, careful, a, b, i, (__mmask32)~0u))
            goto out;
    if (i < n && half_group(&acc, &side, &st, p, &c, kind, careful, a, b, i,
                            (__mmask32)((1u << (n - i)) - 1)))
        i = n;
out:
    stage_flush(&st, &acc, &side, p, &c);
    *state = acc;
    *side_state = side;
    return i;
}

/* ---- F32 and F64: double arithmetic --------------------------------------------------------- */

/* Lanes of an 8-lane compare, counted. */
#define DBL_COUNT(M) ((uint64_t)__builtin_popcount((unsigned)(M)))

/* 8 lanes of finite a, b in double; q picks the partial sums. */
AVX512_INLINE void dbl_lanes(Acc512 *acc, Side512 *side, const ScanConfig *cfg, const Const512 *c,
                             __m512d a, __m512d b, int q)
{
    __m512d d = _mm512_sub_pd(b, a);
    __m512d ad = _mm512_abs_pd(d);
    if (c->ntol > 0)
        side->tol0 += DBL_COUNT(_mm512_cmp_pd_mask(ad, c->tol0, _CMP_GT_OQ));
    if (c->ntol > 1)
        side->tol1 += DBL_COUNT(_mm512_cmp_pd_mask(ad, c->tol1, _CMP_GT_OQ));
    if (c->ntol > 2)
        side->tol2 += DBL_COUNT(_mm512_cmp_pd_mask(ad, c->tol2, _CMP_GT_OQ));
    if (c->ntol > 3)
        side->tol3 += DBL_COUNT(_mm512_cmp_pd_mask(ad, c->tol3, _CMP_GT_OQ));
    for (size_t k = 4; k < c->ntol; k++)
        side->tol[k] += DBL_COUNT(_mm512_cmp_pd_mask(ad, _mm512_set1_pd(cfg->tol[k]), _CMP_GT_OQ));
    if (c->rtol_mode != RTOL_NONE) {
        __m512d m = _mm512_max_pd(_mm512_abs_pd(a), _mm512_abs_pd(b));
        side->rtol += DBL_COUNT(_mm512_cmp_pd_mask(ad, _mm512_mul_pd(c->rtol, m), _CMP_GT_OQ));
    }
    acc->max_f64 = _mm512_max_pd(acc->max_f64, ad);
    acc->sq_d[q] = _mm512_fmadd_round_pd(d, d, acc->sq_d[q], SAE_RN);
    acc->sq_a[q] = _mm512_fmadd_round_pd(a, a, acc->sq_a[q], SAE_RN);
}

/* 16 F32 elements from i (lm: valid lanes); 0: needs the portable rule. */
AVX512_INLINE int f32_group(Acc512 *acc, Side512 *side, const ScanPrep *p, const Const512 *c,
                            const uint8_t *a, const uint8_t *b, size_t i, __mmask16 lm)
{
    const __m512i magmask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
    __m512i va = _mm512_maskz_loadu_epi32(lm, a + 4 * i), vb = _mm512_maskz_loadu_epi32(lm, b + 4 * i);
    __mmask16 neq = _mm512_cmpneq_epi32_mask(va, vb);
    __m512i aa = _mm512_and_si512(va, magmask);
    __m512d da0 = _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)lm, a + 4 * i));
    __m512d da1 = _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)(lm >> 8), a + 4 * i + 32));
    if (neq == 0) {
        if (_mm512_cmpge_epu32_mask(aa, inf))
            return 0;
        acc->sq_a[0] = _mm512_fmadd_round_pd(da0, da0, acc->sq_a[0], SAE_RN);
        acc->sq_a[1] = _mm512_fmadd_round_pd(da1, da1, acc->sq_a[1], SAE_RN);
        return 1;
    }
    __m512i mx = _mm512_max_epu32(aa, _mm512_and_si512(vb, magmask));
    if (_mm512_cmpge_epu32_mask(mx, inf))
        return 0;
    side->changed += (uint64_t)__builtin_popcount(_mm512_mask_test_epi32_mask(neq, mx, mx));
    dbl_lanes(acc, side, p->cfg, c, da0, _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)lm, b + 4 * i)), 0);
    dbl_lanes(acc, side, p->cfg, c, da1,
              _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)(lm >> 8), b + 4 * i + 32)), 1);
    return 1;
}

/* 8 F64 elements from i (lm: valid lanes), into partial sums q; 0: needs the portable rule. */
AVX512_INLINE int f64_group(Acc512 *acc, Side512 *side, const ScanPrep *p, const Const512 *c,
                            const uint8_t *a, const uint8_t *b, size_t i, __mmask8 lm, int q)
{
    const __m512i magmask = _mm512_set1_epi64(0x7FFFFFFFFFFFFFFF);
    const __m512i inf = _mm512_set1_epi64(0x7FF0000000000000);
    __m512i va = _mm512_maskz_loadu_epi64(lm, a + 8 * i), vb = _mm512_maskz_loadu_epi64(lm, b + 8 * i);
    __mmask8 neq = _mm512_cmpneq_epi64_mask(va, vb);
    __m512i aa = _mm512_and_si512(va, magmask);
    if (neq == 0) {
        if (_mm512_cmpge_epu64_mask(aa, inf))
            return 0;
        __m512d da = _mm512_castsi512_pd(va);
        acc->sq_a[q] = _mm512_fmadd_round_pd(da, da, acc->sq_a[q], SAE_RN);
        return 1;
    }
    __m512i mx = _mm512_max_epu64(aa, _mm512_and_si512(vb, magmask));
    if (_mm512_cmpge_epu64_mask(mx, inf))
        return 0;
    side->changed += (uint64_t)__builtin_popcount(_mm512_mask_test_epi64_mask(neq, mx, mx));
    dbl_lanes(acc, side, p->cfg, c, _mm512_castsi512_pd(va), _mm512_castsi512_pd(vb), q);
    return 1;
}

AVX512_INLINE size_t f32_run(Acc512 *state, Side512 *side_state, const ScanPrep *p,
                             const Const512 *cst, const uint8_t *a, const uint8_t *b, size_t i,
                             size_t n)
{
    Acc512 acc = *state;
    Side512 side = *side_state;
    Const512 c = *cst;
    for (; i + 16 <= n; i += 16)
        if (!f32_group(&acc, &side, p, &c, a, b, i, (__mmask16)0xFFFF))
            goto out;
    if (i < n && f32_group(&acc, &side, p, &c, a, b, i, (__mmask16)((1u << (n - i)) - 1)))
        i = n;
out:
    *state = acc;
    *side_state = side;
    return i;
}

/* F64 groups are 8 elements; the group's index parity picks the partial sums, so the lane
 * structure depends only on the position. */
AVX512_INLINE size_t f64_run(Acc512 *state, Side512 *side_state, const ScanPrep *p,
                             const Const512 *cst, const uint8_t *a, const uint8_t *b, size_t i,
                             size_t n)
{
    Acc512 acc = *state;
    Side512 side = *side_state;
    Const512 c = *cst;
    for (; i < n; i += 8) {
        size_t len = n - i < 8 ? n - i : 8;
        if (!f64_group(&acc, &side, p, &c, a, b, i, (__mmask8)((1u << len) - 1), (int)((i >> 3) & 1)))
            break;
    }
    if (i > n)
        i = n;
    *state = acc;
    *side_state = side;
    return i;
}

/* ---- entry ---------------------------------------------------------------------------------- */

typedef size_t (*Run512)(Acc512 *, Side512 *, const ScanPrep *, const Const512 *, const uint8_t *,
                         const uint8_t *, size_t, size_t);

#define RUN_FN(NAME, CALL)                                                                       \
    __attribute__((noinline, target(AVX512_TARGET))) static size_t NAME(                         \
        Acc512 *st, Side512 *sd, const ScanPrep *p, const Const512 *c, const uint8_t *a,         \
        const uint8_t *b, size_t i, size_t n)                                                    \
    {                                                                                            \
        return CALL;                                                                             \
    }
RUN_FN(bf16_run_fast, half_run(st, sd, p, c, HALF_BF16, 0, a, b, i, n))
RUN_FN(bf16_run_careful, half_run(st, sd, p, c, HALF_BF16, 1, a, b, i, n))
RUN_FN(f16_run_fast, half_run(st, sd, p, c, HALF_F16, 0, a, b, i, n))
RUN_FN(f16_run_careful, half_run(st, sd, p, c, HALF_F16, 1, a, b, i, n))
RUN_FN(e4m3_run_careful, half_run(st, sd, p, c, HALF_E4M3, 1, a, b, i, n))
RUN_FN(e5m2_run_fast, half_run(st, sd, p, c, HALF_E5M2, 0, a, b, i, n))
RUN_FN(e5m2_run_careful, half_run(st, sd, p, c, HALF_E5M2, 1, a, b, i, n))
RUN_FN(f32_run_careful, f32_run(st, sd, p, c, a, b, i, n))
RUN_FN(f64_run_careful, f64_run(st, sd, p, c, a, b, i, n))
#undef RUN_FN

/* 0 when some partial sum is NaN or infinite (an optimistic run met a non-finite value). */
__attribute__((target(AVX512_TARGET))) static int acc_sums_finite(const Acc512 *acc)
{
    __mmask8 bad = 0;
    for (int q = 0; q < 4; q++)
        bad |= _mm512_fpclass_pd_mask(acc->sq_a[q], 0x99) | _mm512_fpclass_pd_mask(acc->sq_d[q], 0x99);
    return bad == 0;
}

/* The runs of one dtype: careful (exactness checked per group) and, where some float difference
 * can be inexact, optimistic (fast, NULL where careful is as fast). */
typedef struct RunPair {
    Run512 fast, careful;
} RunPair;

/* Runs the vector path over n elements, sending each group a careful run refuses (group
 * elements from there) to the portable rule, and adds the result into out. With an optimistic
 * run, each segment goes first through it and, when the inexact flag or non-finite sums say it met
 * a case it cannot do, is redone carefully from the saved state. After such a failure the next
 * segments go straight to careful runs, for a number that doubles with each failure in a row (data
 * full of special values would otherwise pay twice). The outcome depends only on the data. */
__attribute__((target(AVX512_TARGET))) static void kernel_drive(const ScanPrep *p, DType dt,
                                                                RunPair runs, int kind, size_t group,
                                                                const uint8_t *a, const uint8_t *b,
                                                                size_t n, ScanCounts *out,
                                                                ScanSegmentFn seg_fn, void *seg_ctx)
{
    Acc512 acc, saved_acc;
    Side512 side, saved_side;
    Const512 c;
    ScanCounts pc;
    acc_init(&acc, &side);
    const_init(&c, p, kind);
    scan_counts_init(&pc);
    unsigned csr = _mm_getcsr();
    _mm_setcsr(MXCSR_DEFAULT);
    size_t seg_end = 0, careful_segments = 0, backoff = 1, done_to = 0;
    int careful = 1;
    for (size_t i = 0; i < n;) {
        if (i >= seg_end) { /* a new segment */
            if (seg_fn && i > done_to && i % 64 == 0) { /* [done_to, i) is final: hand it on */
                unsigned inner = _mm_getcsr(); /* the hook must not leave flags behind */
                seg_fn(seg_ctx, done_to, i - done_to);
                _mm_setcsr(inner);
                done_to = i;
            }
            seg_end = n - i < OPTIMISTIC_SEGMENT ? n : i + OPTIMISTIC_SEGMENT;
            careful = !runs.fast || careful_segments > 0;
            if (careful_segments > 0)
                careful_segments--;
        }
        if (!careful) {
            saved_acc = acc;
            saved_side = side;
            size_t next = runs.fast(&acc, &side, p, &c, a, b, i, seg_end);
            if (!(_mm_getcsr() & MXCSR_INEXACT) && acc_sums_finite(&acc)) {
                backoff = 1;
                i = next;
                continue;
            }
            acc = saved_acc; /* redo the segment carefully from i */
            side = saved_side;
            _mm_setcsr(MXCSR_DEFAULT); /* flags are sticky: clear only when raised */
            careful = 1;
            careful_segments = backoff;
            backoff = backoff < 64 ? 2 * backoff : 64;
        }
        i = runs.careful(&acc, &side, p, &c, a, b, i, seg_end);
        if (i < seg_end) {
            size_t stop = n - i < group ? n : i + group;
            scan_portable_range(p->cfg, dt, a, b, i, stop, &pc);
            i = stop;
        }
    }
    if (seg_fn && n > done_to)
        seg_fn(seg_ctx, done_to, n - done_to);
    _mm_setcsr(csr);
    acc_finish(&acc, &side, &pc, p->cfg, n, out);
}

void scan_block_avx512(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t n,
                       ScanCounts *out)
{
    scan_block_avx512_seg(cfg, dt, a, b, n, out, NULL, NULL);
}

void scan_block_avx512_seg(const ScanConfig *cfg, DType dt, const void *a, const void *b,
                           size_t n, ScanCounts *out, ScanSegmentFn seg_fn, void *seg_ctx)
{
    ScanPrep p;
    scan_prep_init(&p, cfg);
    RunPair runs = {NULL, NULL};
    int kind = -1;
    size_t group = 32;
    switch (dt) {
    case DT_BF16: runs = (RunPair){bf16_run_fast, bf16_run_careful}; kind = HALF_BF16; break;
    case DT_F16: runs = (RunPair){f16_run_fast, f16_run_careful}; kind = HALF_F16; break;
    case DT_F8_E4M3: runs = (RunPair){NULL, e4m3_run_careful}; kind = HALF_E4M3; break;
    case DT_F8_E5M2: runs = (RunPair){e5m2_run_fast, e5m2_run_careful}; kind = HALF_E5M2; break;
    case DT_F32: runs = (RunPair){NULL, f32_run_careful}; group = 16; break;
    case DT_F64: runs = (RunPair){NULL, f64_run_careful}; group = 8; break;
    default: break;
    }
    if (!runs.careful || !p.simd_ok) {
        scan_block_portable(cfg, dt, a, b, n, out);
        if (seg_fn && n)
            seg_fn(seg_ctx, 0, n);
        return;
    }
    kernel_drive(&p, dt, runs, kind, group, a, b, n, out, seg_fn, seg_ctx);
}
