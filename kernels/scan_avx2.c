/* The AVX2 (+FMA) scan path, chosen at run time; same counts as the portable rule.
 *
 * The plan of scan_avx512.c, 16 half-like elements (or 8 F32, 4 F64) a group, with these
 * differences: every group is checked before its arithmetic (non-finite values, exponent gaps too
 * large for an exact float difference, BF16 magnitudes >= 2^127) and refused to the portable rule
 * if needed, since without exception suppression the inexact flag cannot tell; F16 and F8 images
 * are decoded by shifting their bits into a float and scaling by a power of two (no F16C needed);
 * without embedded rounding the rtol test brackets rtol*max(|a|,|b|) between float bounds 2^-20
 * (relative) and 2^-140 (absolute) wide, valid for rtol in [2^-100, 1] (other rtol values take the
 * portable path), and settles the lanes inside the bracket in double. Counts are per-lane vector
 * counters (compare results are -1 or 0). Sums: a^2 and d^2 in double, 4 partials of 4 lanes. */
#include <immintrin.h>
#include <string.h>

#include "kernels/scan.h"
#include "kernels/scan_isa.h"

#define AVX2_TARGET "avx2,fma"
#define AVX2_INLINE static inline __attribute__((always_inline, target(AVX2_TARGET)))

/* Largest element count of one drive: the 32-bit per-lane counters count at most n/4 each. */
#define KERNEL_MAX_ELEMS ((size_t)1 << 32)
#define MXCSR_DEFAULT 0x1F80u /* exceptions masked, round to nearest, no FTZ/DAZ */

/* The accumulators; a run (a leaf function) keeps them in registers. */
typedef struct Acc256 {
    __m256d sq_a[4], sq_d[4];       /* partial sums of a^2 and d^2, 4 lanes each */
    __m256i max_f32;                /* half-like: max |d| as float bits */
    __m256d max_f64;                /* F32, F64: max |d| */
    __m256i tol0, tol1, tol2, tol3; /* per-lane counts of d > tol[0..3] (8 lanes; 4 for F64) */
    __m256i rtol;                   /* per-lane count of d > rtol*m (surely) */
} Acc256;

/* Scalar counts: popcounts, tolerances beyond 3, rtol lanes settled in double. */
typedef struct Side256 {
    uint64_t changed, rtol, tol[SCAN_MAX_TOL];
} Side256;

typedef struct Const256 {
    __m256i thr0, thr1, thr2, thr3; /* half-like: tol_dn[0..3] as float bits */
    __m256d tol0, tol1, tol2, tol3; /* F32/F64: tol[0..3] */
    __m256d rtol;                   /* F32/F64 */
    __m256 rtol_near;               /* half-like */
    size_t ntol;
    int rtol_mode;                  /* RTOL_* */
} Const256;

/* kind < 0: a double kernel. */
__attribute__((target(AVX2_TARGET))) static void const_init(Const256 *c, const ScanPrep *p, int kind)
{
    const ScanConfig *cfg = p->cfg;
    c->thr0 = _mm256_set1_epi32((int)p->tol_dn[0]);
    c->thr1 = _mm256_set1_epi32((int)p->tol_dn[1]);
    c->thr2 = _mm256_set1_epi32((int)p->tol_dn[2]);
    c->thr3 = _mm256_set1_epi32((int)p->tol_dn[3]);
    c->tol0 = _mm256_set1_pd(cfg->ntol > 0 ? cfg->tol[0] : 0.0);
    c->tol1 = _mm256_set1_pd(cfg->ntol > 1 ? cfg->tol[1] : 0.0);
    c->tol2 = _mm256_set1_pd(cfg->ntol > 2 ? cfg->tol[2] : 0.0);
    c->tol3 = _mm256_set1_pd(cfg->ntol > 3 ? cfg->tol[3] : 0.0);
    c->ntol = cfg->ntol;
    c->rtol = _mm256_set1_pd(cfg->has_rtol ? cfg->rtol : 0.0);
    c->rtol_near = _mm256_set1_ps(p->rtol_near);
    c->rtol_mode = kind < 0 ? (cfg->has_rtol ? RTOL_BOUNDS : RTOL_NONE) : scan_half_rtol_mode(kind, cfg);
}

__attribute__((target(AVX2_TARGET))) static void acc_init(Acc256 *acc, Side256 *side)
{
    for (int q = 0; q < 4; q++)
        acc->sq_a[q] = acc->sq_d[q] = _mm256_setzero_pd();
    acc->max_f32 = acc->tol0 = acc->tol1 = acc->tol2 = acc->tol3 = acc->rtol = _mm256_setzero_si256();
    acc->max_f64 = _mm256_setzero_pd();
    memset(side, 0, sizeof *side);
}

/* s0 += x[0:4]^2, s1 += x[4:8]^2 in double. */
AVX2_INLINE void acc_square(__m256d *s0, __m256d *s1, __m256 x)
{
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
    __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
    *s0 = _mm256_fmadd_pd(lo, lo, *s0);
    *s1 = _mm256_fmadd_pd(hi, hi, *s1);
}

/* Counts lanes of a compare result (-1 or 0) into a per-lane counter. */
AVX2_INLINE __m256i acc_count(__m256i cnt, __m256i cmp)
{
    return _mm256_sub_epi32(cnt, cmp);
}

/* Sum of the 8 lanes of a per-lane counter. */
__attribute__((target(AVX2_TARGET))) static uint64_t acc_reduce(__m256i c)
{
    uint32_t lanes[8];
    _mm256_storeu_si256((__m256i *)lanes, c);
    uint64_t t = 0;
    for (int j = 0; j < 8; j++)
        t += lanes[j];
    return t;
}

/* Sum of the 4 lanes in a fixed order. */
__attribute__((target(AVX2_TARGET))) static double acc_sum4(__m256d v)
{
    double x[4];
    _mm256_storeu_pd(x, v);
    return (x[0] + x[1]) + (x[2] + x[3]);
}

/* Adds everything into out; pc holds the groups done by the portable rule. lane_weight: how many
 * 32-bit counter lanes one element bumps (2 for the double kernels' 64-bit compare results). */
__attribute__((target(AVX2_TARGET))) static void acc_finish(const Acc256 *acc, const Side256 *side,
                                                            const ScanCounts *pc,
                                                            const ScanConfig *cfg, size_t n,
                                                            uint64_t lane_weight, ScanCounts *out)
{
    double sa = acc_sum4(_mm256_add_pd(_mm256_add_pd(acc->sq_a[0], acc->sq_a[1]),
                                       _mm256_add_pd(acc->sq_a[2], acc->sq_a[3])));
    double sd = acc_sum4(_mm256_add_pd(_mm256_add_pd(acc->sq_d[0], acc->sq_d[1]),
                                       _mm256_add_pd(acc->sq_d[2], acc->sq_d[3])));
    uint32_t mb[8];
    double md[4], mx = pc->max_abs_delta;
    _mm256_storeu_si256((__m256i *)mb, acc->max_f32);
    _mm256_storeu_pd(md, acc->max_f64);
    for (int j = 0; j < 8; j++) {
        float f;
        memcpy(&f, &mb[j], sizeof f);
        if ((double)f > mx)
            mx = f;
        if (j < 4 && md[j] > mx)
            mx = md[j];
    }
    const uint64_t vec_tol[4] = {acc_reduce(acc->tol0) / lane_weight, acc_reduce(acc->tol1) / lane_weight,
                                 acc_reduce(acc->tol2) / lane_weight, acc_reduce(acc->tol3) / lane_weight};
    out->numel += n;
    out->changed += side->changed + pc->changed;
    out->nonfinite += pc->nonfinite;
    for (size_t k = 0; k < cfg->ntol; k++)
        out->changed_tol[k] += (k < 4 ? vec_tol[k] : side->tol[k]) + pc->changed_tol[k];
    if (cfg->has_rtol)
        out->changed_rtol += acc_reduce(acc->rtol) / lane_weight + side->rtol + pc->changed_rtol;
    if (mx > out->max_abs_delta)
        out->max_abs_delta = mx;
    out->sum_sq_delta += sd + pc->sum_sq_delta;
    out->sum_sq_a += sa + pc->sum_sq_a;
}

/* Loads 32 bytes from p, or only len bytes (the rest zero) when len < 32. */
AVX2_INLINE __m256i load32(const uint8_t *p, size_t len)
{
    if (len >= 32)
        return _mm256_loadu_si256((const __m256i *)p);
    uint8_t tmp[32] = {0};
    memcpy(tmp, p, len);
    return _mm256_loadu_si256((const __m256i *)tmp);
}

AVX2_INLINE __m128i load16(const uint8_t *p, size_t len)
{
    if (len >= 16)
        return _mm_loadu_si128((const __m128i *)p);
    uint8_t tmp[16] = {0};
    memcpy(tmp, p, len);
    return _mm_loadu_si128((const __m128i *)tmp);
}

/* ---- half-like dtypes: 16 elements, 16-bit images, float arithmetic ------------------------ */

/* 16 elements from i (len valid, the rest read as 0) as 16-bit images, as in scan_avx512.c. */
AVX2_INLINE __m256i half_load(int kind, const uint8_t *p, size_t i, size_t len)
{
    if (kind == HALF_BF16 || kind == HALF_F16)
        return load32(p + 2 * i, 2 * len);
    __m256i x = _mm256_cvtepu8_epi16(load16(p + i, len));
    if (kind == HALF_E5M2)
        return _mm256_slli_epi16(x, 8);
    __m256i sign = _mm256_and_si256(_mm256_slli_epi16(x, 8), _mm256_set1_epi16((short)0x8000));
    __m256i mag = _mm256_slli_epi16(_mm256_and_si256(x, _mm256_set1_epi16(0x7F)), 7);
    return _mm256_or_si256(sign, mag);
}

/* The 16 images as two 8-lane float vectors (even and odd elements). BF16 moves into the top
 * half; an F16 image in the top half, shifted right by 3 with its sign kept and bits 30..28
 * cleared, is a float of value * 2^-112 (subnormals included), scaled back exactly. */
AVX2_INLINE __m256 half_to_f32(int kind, __m256i v, int odd)
{
    __m256i top = odd ? _mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000)) : _mm256_slli_epi32(v, 16);
    if (kind == HALF_BF16)
        return _mm256_castsi256_ps(top);
    __m256i f = _mm256_and_si256(_mm256_srai_epi32(top, 3), _mm256_set1_epi32((int)0x8FFFFFFF));
    return _mm256_mul_ps(_mm256_castsi256_ps(f), _mm256_set1_ps(kind == HALF_E4M3 ? 0x1p120f : 0x1p112f));
}

static inline uint16_t half_bad_min(int kind)
{
    return kind == HALF_BF16 ? 0x7F00 : kind == HALF_E4M3 ? 0x3F80 : 0x7C00;
}

static inline uint16_t half_nonfinite_min(int kind)
{
    return kind == HALF_BF16 ? 0x7F80 : kind == HALF_E4M3 ? 0x3F80 : 0x7C00;
}

/* As in scan_avx512.c: exponent gaps up to 24 - p keep the float difference exact. */
static inline uint16_t half_gap_max(int kind)
{
    return kind == HALF_BF16 ? 16 << 7 : kind == HALF_F16 ? 13 << 10 : kind == HALF_E5M2 ? 21 << 10 : 0;
}

/* Lanes of x (16-bit, values <= 0x7FFF) that are >= t: a signed compare is safe. */
AVX2_INLINE __m256i ge16(__m256i x, uint16_t t)
{
    return _mm256_cmpgt_epi16(x, _mm256_set1_epi16((short)(t - 1)));
}

/* rtol bounds for 8 lanes: ad = |b - a|, m = max(|a|, |b|), both exact floats. */
AVX2_INLINE void half_rtol_bounds(Acc256 *acc, Side256 *side, const ScanPrep *p, const Const256 *c,
                                  __m256i ad, __m256 m)
{
    __m256 adf = _mm256_castsi256_ps(ad);
    __m256 r = _mm256_mul_ps(c->rtol_near, m);
    __m256 up = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f + 0x1p-20f), _mm256_set1_ps(0x1p-140f));
    __m256 dn = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f - 0x1p-20f), _mm256_set1_ps(-0x1p-140f));
    __m256 above = _mm256_cmp_ps(adf, up, _CMP_GT_OQ);
    acc->rtol = acc_count(acc->rtol, _mm256_castps_si256(above));
    __m256 unsure = _mm256_andnot_ps(above, _mm256_cmp_ps(adf, dn, _CMP_GT_OQ));
    if (__builtin_expect(!_mm256_testz_ps(unsure, unsure), 0)) {
        float af[8], mf[8];
        _mm256_storeu_ps(af, adf);
        _mm256_storeu_ps(mf, m);
        side->rtol += scan_rtol_settle(p->cfg->rtol, af, mf, (uint32_t)_mm256_movemask_ps(unsure));
    }
}

/* 8 lanes of finite a, b with b - a exact in float; q picks the partial sums. */
AVX2_INLINE void half_lanes(Acc256 *acc, Side256 *side, const ScanPrep *p, const Const256 *c,
                            __m256 a, __m256 b, int q)
{
    __m256 d = _mm256_sub_ps(b, a);
    __m256i ad = _mm256_and_si256(_mm256_castps_si256(d), _mm256_set1_epi32(0x7FFFFFFF));
    /* ad and the thresholds are non-negative floats: their bits order like their values */
    if (c->ntol > 0)
        acc->tol0 = acc_count(acc->tol0, _mm256_cmpgt_epi32(ad, c->thr0));
    if (c->ntol > 1)
        acc->tol1 = acc_count(acc->tol1, _mm256_cmpgt_epi32(ad, c->thr1));
    if (c->ntol > 2)
        acc->tol2 = acc_count(acc->tol2, _mm256_cmpgt_epi32(ad, c->thr2));
    if (c->ntol > 3)
        acc->tol3 = acc_count(acc->tol3, _mm256_cmpgt_epi32(ad, c->thr3));
    for (size_t k = 4; k < c->ntol; k++)
        side->tol[k] += (uint64_t)__builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(
            _mm256_cmpgt_epi32(ad, _mm256_set1_epi32((int)p->tol_dn[k])))));
    if (c->rtol_mode == RTOL_BOUNDS) {
        const __m256i mag = _mm256_set1_epi32(0x7FFFFFFF);
        __m256i m = _mm256_max_epu32(_mm256_and_si256(_mm256_castps_si256(a), mag),
                                     _mm256_and_si256(_mm256_castps_si256(b), mag));
        half_rtol_bounds(acc, side, p, c, ad, _mm256_castsi256_ps(m));
    }
    acc->max_f32 = _mm256_max_epu32(acc->max_f32, ad);
    acc_square(&acc->sq_d[q], &acc->sq_d[q + 1], d);
    acc_square(&acc->sq_a[q], &acc->sq_a[q + 1], a);
}

/* One group of 16 elements from i (len valid). Returns 0, having added nothing, when the group
 * needs the portable rule. */
AVX2_INLINE int half_group(Acc256 *acc, Side256 *side, const ScanPrep *p, const Const256 *c,
                           int kind, const uint8_t *a, const uint8_t *b, size_t i, size_t len)
{
    const __m256i magmask = _mm256_set1_epi16(0x7FFF), zero = _mm256_setzero_si256();
    __m256i va = half_load(kind, a, i, len), vb = half_load(kind, b, i, len);
    __m256i eq = _mm256_cmpeq_epi16(va, vb);
    __m256i aa = _mm256_and_si256(va, magmask);
    if (_mm256_movemask_epi8(eq) == -1) { /* bit-identical group: only a^2 */
        if (_mm256_movemask_epi8(ge16(aa, half_nonfinite_min(kind))))
            return 0;
        acc_square(&acc->sq_a[0], &acc->sq_a[1], half_to_f32(kind, va, 0));
        acc_square(&acc->sq_a[2], &acc->sq_a[3], half_to_f32(kind, va, 1));
        return 1;
    }
    __m256i ba = _mm256_and_si256(vb, magmask);
    __m256i mn = _mm256_min_epu16(aa, ba), mx = _mm256_max_epu16(aa, ba);
    __m256i bad = ge16(mx, half_bad_min(kind));
    if (half_gap_max(kind))
        bad = _mm256_or_si256(bad, _mm256_andnot_si256(
            _mm256_cmpeq_epi16(mn, zero),
            _mm256_cmpgt_epi16(_mm256_sub_epi16(mx, mn), _mm256_set1_epi16((short)half_gap_max(kind)))));
    if (_mm256_movemask_epi8(bad))
        return 0;
    /* changed: bits differ and not both zero (+0 / -0); two mask bits per element */
    unsigned same = (unsigned)_mm256_movemask_epi8(_mm256_or_si256(eq, _mm256_cmpeq_epi16(mx, zero)));
    uint64_t changed = (uint64_t)__builtin_popcount(~same) / 2;
    side->changed += changed;
    if (c->rtol_mode == RTOL_IS_CHANGED)
        side->rtol += changed;
    half_lanes(acc, side, p, c, half_to_f32(kind, va, 0), half_to_f32(kind, vb, 0), 0);
    half_lanes(acc, side, p, c, half_to_f32(kind, va, 1), half_to_f32(kind, vb, 1), 2);
    return 1;
}

/* Scans groups from i until n (returns n) or a group that needs the portable rule (returns its
 * start). The state is copied into locals so that it lives in registers. */
AVX2_INLINE size_t half_run(Acc256 *state, Side256 *side_state, const ScanPrep *p,
                            const Const256 *cst, int kind, const uint8_t *a, const uint8_t *b,
                            size_t i, size_t n)
{
    Acc256 acc = *state;
    Side256 side = *side_state;
    Const256 c = *cst;
    for (; i < n; i += 16)
        if (!half_group(&acc, &side, p, &c, kind, a, b, i, n - i < 16 ? n - i : 16))
            break;
    if (i > n)
        i = n;
    *state = acc;
    *side_state = side;
    return i;
}

/* ---- F32 and F64: double arithmetic --------------------------------------------------------- */

/* 4 lanes of finite a, b in double; q picks the partial sums. Compare results are 64-bit -1 or 0,
 * so each lane counts twice in the 32-bit counters (acc_finish divides by 2). */
AVX2_INLINE void dbl_lanes(Acc256 *acc, Side256 *side, const ScanConfig *cfg, const Const256 *c,
                           __m256d a, __m256d b, int q)
{
    const __m256d sign = _mm256_set1_pd(-0.0);
    __m256d d = _mm256_sub_pd(b, a);
    __m256d ad = _mm256_andnot_pd(sign, d);
    if (c->ntol > 0)
        acc->tol0 = acc_count(acc->tol0, _mm256_castpd_si256(_mm256_cmp_pd(ad, c->tol0, _CMP_GT_OQ)));
    if (c->ntol > 1)
        acc->tol1 = acc_count(acc->tol1, _mm256_castpd_si256(_mm256_cmp_pd(ad, c->tol1, _CMP_GT_OQ)));
    if (c->ntol > 2)
        acc->tol2 = acc_count(acc->tol2, _mm256_castpd_si256(_mm256_cmp_pd(ad, c->tol2, _CMP_GT_OQ)));
    if (c->ntol > 3)
        acc->tol3 = acc_count(acc->tol3, _mm256_castpd_si256(_mm256_cmp_pd(ad, c->tol3, _CMP_GT_OQ)));
    for (size_t k = 4; k < c->ntol; k++)
        side->tol[k] += (uint64_t)__builtin_popcount(
            (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(ad, _mm256_set1_pd(cfg->tol[k]), _CMP_GT_OQ)));
    if (c->rtol_mode != RTOL_NONE) {
        __m256d m = _mm256_max_pd(_mm256_andnot_pd(sign, a), _mm256_andnot_pd(sign, b));
        acc->rtol = acc_count(acc->rtol, _mm256_castpd_si256(
            _mm256_cmp_pd(ad, _mm256_mul_pd(c->rtol, m), _CMP_GT_OQ)));
    }
    acc->max_f64 = _mm256_max_pd(acc->max_f64, ad);
    acc->sq_d[q] = _mm256_fmadd_pd(d, d, acc->sq_d[q]);
    acc->sq_a[q] = _mm256_fmadd_pd(a, a, acc->sq_a[q]);
}

/* 8 F32 elements from i (len valid); 0: needs the portable rule. */
AVX2_INLINE int f32_group(Acc256 *acc, Side256 *side, const ScanPrep *p, const Const256 *c,
                          const uint8_t *a, const uint8_t *b, size_t i, size_t len)
{
    const __m256i magmask = _mm256_set1_epi32(0x7FFFFFFF), fmax_bits = _mm256_set1_epi32(0x7F7FFFFF);
    __m256i va = load32(a + 4 * i, 4 * len), vb = load32(b + 4 * i, 4 * len);
    __m256i eq = _mm256_cmpeq_epi32(va, vb);
    __m256i aa = _mm256_and_si256(va, magmask);
    if (_mm256_movemask_epi8(eq) == -1) {
        if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(aa, fmax_bits)))
            return 0;
        acc_square(&acc->sq_a[0], &acc->sq_a[1], _mm256_castsi256_ps(va));
        return 1;
    }
    __m256i mx = _mm256_max_epu32(aa, _mm256_and_si256(vb, magmask));
    if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(mx, fmax_bits)))
        return 0;
    unsigned same = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(
        _mm256_or_si256(eq, _mm256_cmpeq_epi32(mx, _mm256_setzero_si256()))));
    side->changed += (uint64_t)__builtin_popcount(~same & 0xFFu);
    __m256 fa = _mm256_castsi256_ps(va), fb = _mm256_castsi256_ps(vb);
    dbl_lanes(acc, side, p->cfg, c, _mm256_cvtps_pd(_mm256_castps256_ps128(fa)),
              _mm256_cvtps_pd(_mm256_castps256_ps128(fb)), 0);
    dbl_lanes(acc, side, p->cfg, c, _mm256_cvtps_pd(_mm256_extractf128_ps(fa, 1)),
              _mm256_cvtps_pd(_mm256_extractf128_ps(fb, 1)), 1);
    return 1;
}

/* 4 F64 elements from i (len valid), into partial sums q; 0: needs the portable rule. */
AVX2_INLINE int f64_group(Acc256 *acc, Side256 *side, const ScanPrep *p, const Const256 *c,
                          const uint8_t *a, const uint8_t *b, size_t i, size_t len, int q)
{
    const __m256i magmask = _mm256_set1_epi64x(0x7FFFFFFFFFFFFFFF);
    const __m256i dmax_bits = _mm256_set1_epi64x(0x7FEFFFFFFFFFFFFF);
    __m256i va = load32(a + 8 * i, 8 * len), vb = load32(b + 8 * i, 8 * len);
    __m256i eq = _mm256_cmpeq_epi64(va, vb);
    __m256i aa = _mm256_and_si256(va, magmask), ba = _mm256_and_si256(vb, magmask);
    if (_mm256_movemask_epi8(eq) == -1) {
        if (_mm256_movemask_epi8(_mm256_cmpgt_epi64(aa, dmax_bits)))
            return 0;
        __m256d da = _mm256_castsi256_pd(va);
        acc->sq_a[q] = _mm256_fmadd_pd(da, da, acc->sq_a[q]);
        return 1;
    }
    if (_mm256_movemask_epi8(_mm256_or_si256(_mm256_cmpgt_epi64(aa, dmax_bits),
                                             _mm256_cmpgt_epi64(ba, dmax_bits))))
        return 0;
    __m256i mzero = _mm256_cmpeq_epi64(_mm256_or_si256(aa, ba), _mm256_setzero_si256());
    unsigned same = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_or_si256(eq, mzero)));
    side->changed += (uint64_t)__builtin_popcount(~same & 0xFu);
    dbl_lanes(acc, side, p->cfg, c, _mm256_castsi256_pd(va), _mm256_castsi256_pd(vb), q);
    return 1;
}

AVX2_INLINE size_t f32_run(Acc256 *state, Side256 *side_state, const ScanPrep *p,
                           const Const256 *cst, const uint8_t *a, const uint8_t *b, size_t i, size_t n)
{
    Acc256 acc = *state;
    Side256 side = *side_state;
    Const256 c = *cst;
    for (; i < n; i += 8)
        if (!f32_group(&acc, &side, p, &c, a, b, i, n - i < 8 ? n - i : 8))
            break;
    if (i > n)
        i = n;
    *state = acc;
    *side_state = side;
    return i;
}

/* The group's index parity picks the partial sums (a function of the position only). */
AVX2_INLINE size_t f64_run(Acc256 *state, Side256 *side_state, const ScanPrep *p,
                           const Const256 *cst, const uint8_t *a, const uint8_t *b, size_t i, size_t n)
{
    Acc256 acc = *state;
    Side256 side = *side_state;
    Const256 c = *cst;
    for (; i < n; i += 4)
        if (!f64_group(&acc, &side, p, &c, a, b, i, n - i < 4 ? n - i : 4, (int)((i >> 2) & 1)))
            break;
    if (i > n)
        i = n;
    *state = acc;
    *side_state = side;
    return i;
}

/* ---- entry ---------------------------------------------------------------------------------- */

typedef size_t (*Run256)(Acc256 *, Side256 *, const ScanPrep *, const Const256 *, const uint8_t *,
                         const uint8_t *, size_t, size_t);

#define RUN_FN(NAME, CALL)                                                                       \
    __attribute__((noinline, target(AVX2_TARGET))) static size_t NAME(                           \
        Acc256 *st, Side256 *sd, const ScanPrep *p, const Const256 *c, const uint8_t *a,         \
        const uint8_t *b, size_t i, size_t n)                                                    \
    {                                                                                            \
        return CALL;                                                                             \
    }
RUN_FN(bf16_run, half_run(st, sd, p, c, HALF_BF16, a, b, i, n))
RUN_FN(f16_run, half_run(st, sd, p, c, HALF_F16, a, b, i, n))
RUN_FN(e4m3_run, half_run(st, sd, p, c, HALF_E4M3, a, b, i, n))
RUN_FN(e5m2_run, half_run(st, sd, p, c, HALF_E5M2, a, b, i, n))
RUN_FN(f32_run_fn, f32_run(st, sd, p, c, a, b, i, n))
RUN_FN(f64_run_fn, f64_run(st, sd, p, c, a, b, i, n))
#undef RUN_FN

/* Runs the vector path over n elements, sending each refused group (group elements from there)
 * to the portable rule, and adds the result into out. */
__attribute__((target(AVX2_TARGET))) static void kernel_drive(const ScanPrep *p, DType dt, Run256 run,
                                                              int kind, size_t group,
                                                              const uint8_t *a, const uint8_t *b,
                                                              size_t n, ScanCounts *out)
{
    Acc256 acc;
    Side256 side;
    Const256 c;
    ScanCounts pc;
    acc_init(&acc, &side);
    const_init(&c, p, kind);
    scan_counts_init(&pc);
    unsigned csr = _mm_getcsr();
    _mm_setcsr(MXCSR_DEFAULT);
    for (size_t i = 0; i < n;) {
        i = run(&acc, &side, p, &c, a, b, i, n);
        if (i < n) {
            size_t stop = n - i < group ? n : i + group;
            scan_portable_range(p->cfg, dt, a, b, i, stop, &pc);
            i = stop;
        }
    }
    _mm_setcsr(csr);
    acc_finish(&acc, &side, &pc, p->cfg, n, kind < 0 ? 2 : 1, out);
}

void scan_block_avx2(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t n,
                     ScanCounts *out)
{
    ScanPrep p;
    scan_prep_init(&p, cfg);
    int half_ok = p.simd_ok && (!cfg->has_rtol || p.rtol_near_ok);
    Run256 run = NULL;
    int kind = -1;
    size_t group = 16;
    switch (dt) {
    case DT_BF16: run = half_ok ? bf16_run : NULL; kind = HALF_BF16; break;
    case DT_F16: run = half_ok ? f16_run : NULL; kind = HALF_F16; break;
    case DT_F8_E4M3: run = half_ok ? e4m3_run : NULL; kind = HALF_E4M3; break;
    case DT_F8_E5M2: run = half_ok ? e5m2_run : NULL; kind = HALF_E5M2; break;
    case DT_F32: run = p.simd_ok ? f32_run_fn : NULL; group = 8; break;
    case DT_F64: run = p.simd_ok ? f64_run_fn : NULL; group = 4; break;
    default: break;
    }
    if (!run) {
        scan_block_portable(cfg, dt, a, b, n, out);
        return;
    }
    size_t es = dtype_size(dt);
    for (size_t i = 0; i < n; i += KERNEL_MAX_ELEMS) {
        size_t len = n - i < KERNEL_MAX_ELEMS ? n - i : KERNEL_MAX_ELEMS;
        kernel_drive(&p, dt, run, kind, group, (const uint8_t *)a + i * es, (const uint8_t *)b + i * es,
                     len, out);
    }
}
