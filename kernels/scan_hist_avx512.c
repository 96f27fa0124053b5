/* The AVX-512 path of the tolerance-curve histograms (scan_hist_block for BF16, F16, F32; the rule
 * is scan_elem_hist_bin in kernels/scan_elem.h, the scalar loop is in kernels/scan_hist.c).
 *
 * Data flow, per piece of HIST_PIECE_GROUPS 64-byte groups of A and B:
 *   stage   the changed lanes of each group (from the mask, or by the changed rule) are
 *           compressed in registers and appended to a staging buffer of stored bits;
 *   code    the staged pairs are binned 16 at a time into two codes each, 2 * bin + pow2 (abs
 *           and rel side), lanes that are not binned here get HIST_JUNK;
 *   count   a scalar loop adds 1 per code into HIST_BANKS banks of 32-bit counters (consecutive
 *           codes in different banks, so that adds to one counter do not wait on each other).
 * Fewer than 16 staged pairs wait for the next piece; the counters go to out (only the codes
 * that were used) at the end of the call, or every HIST_SEG_GROUPS groups, well before a 32-bit
 * counter could overflow.
 *
 * BF16 and F16 are binned in float lanes (16 a vector): the difference of two such values with
 * p-bit significands whose exponents differ by g <= 24 - p (16 for BF16, 13 for F16) is exact in
 * float: in units of the smaller value's ulp it is an integer below (2^p - 1) 2^g + 2^p - 1 < 2^24,
 * unless it overflows (BF16 near its largest values), so it equals the double difference of the
 * rule, and vgetexp/vgetmant of exact floats give the rule's exponents and significand order
 * (subnormals normalised). The other pairs (a larger gap, NaN, Inf, an overflow, a zero
 * difference) are rare: the scalar rule bins them, from the staged bits. F32
 * differences need not be exact in float: F32 is binned in double lanes (8 a vector), where the
 * rule computes them. */
#include <immintrin.h>
#include <string.h>

#include "formats/dtype_convert.h"
#include "kernels/scan.h"
#include "kernels/scan_elem.h"
#include "kernels/scan_hist_avx512.h"

#define HIST512_TARGET "avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi2"

#define HIST_PIECE_GROUPS 16 /* 64-byte groups staged before binning */
#define HIST_SEG_GROUPS ((size_t)1 << 22) /* groups counted before a flush: < 2^28 elements */
#define HIST_BANKS 2 /* measured: 1 and 4 slower */
#define HIST_CODES 576 /* codes a side: 2 * 279 bins (BF16's and F32's widest side) + HIST_JUNK */
#define HIST_JUNK (HIST_CODES - 1)

/* The exponent gap up to which a float difference of two BF16 or F16 values is exact: 24 minus the
 * significand bits. Measured on the float bits, it is never less than the gap of the two values'
 * ulps (a BF16 subnormal has exponent field 0, an F16 subnormal its true exponent as a float). */
#define HIST_GAP_BF16 16
#define HIST_GAP_F16 13

/* ---- counting ---- */

/* Counters of one call: code 2 * i + p of a side is bin i (from the dtype's low end), pow2 p. */
typedef struct HistCounters {
    uint32_t abs[HIST_BANKS][HIST_CODES];
    uint32_t rel[HIST_BANKS][HIST_CODES];
    __m512i abs_min, abs_max, rel_min, rel_max; /* lanes: the codes used, for the flush */
} HistCounters;

__attribute__((target(HIST512_TARGET))) static void hist_counters_zero(HistCounters *k)
{
    memset(k->abs, 0, sizeof k->abs);
    memset(k->rel, 0, sizeof k->rel);
    k->abs_min = k->rel_min = _mm512_set1_epi32(HIST_CODES);
    k->abs_max = k->rel_max = _mm512_setzero_si512();
}

/* Adds the nc codes (a multiple of 16) of each side. */
static inline void hist_count(HistCounters *k, const uint32_t *ca, const uint32_t *cr, size_t nc)
{
    for (size_t c = 0; c < nc; c += HIST_BANKS)
        for (int q = 0; q < HIST_BANKS; q++) {
            k->abs[q][ca[c + q]]++;
            k->rel[q][cr[c + q]]++;
        }
}

/* Adds the used codes [lo, hi] of one side's banks into count and pow2 (indexed by bin) and
 * clears them. */
static void hist_flush_side(uint32_t banks[HIST_BANKS][HIST_CODES], uint32_t lo, uint32_t hi,
                            uint64_t *count, uint64_t *pow2)
{
    for (uint32_t i = lo / 2; i <= hi / 2; i++) {
        uint64_t c = 0, p = 0;
        for (int q = 0; q < HIST_BANKS; q++) {
            c += banks[q][2 * i] + banks[q][2 * i + 1];
            p += banks[q][2 * i + 1];
            banks[q][2 * i] = banks[q][2 * i + 1] = 0;
        }
        count[i] += c;
        pow2[i] += p;
    }
}

/* Adds the counters into out (whose bins for the dtype's range r start at oa, orl) and clears
 * them. */
__attribute__((target(HIST512_TARGET))) static void
hist_counters_flush(HistCounters *k, ScanHist *out, size_t oa, size_t orl)
{
    uint32_t lo = _mm512_reduce_min_epu32(k->abs_min), hi = _mm512_reduce_max_epu32(k->abs_max);
    if (lo <= hi)
        hist_flush_side(k->abs, lo, hi, out->abs_count + oa, out->abs_pow2 + oa);
    lo = _mm512_reduce_min_epu32(k->rel_min);
    hi = _mm512_reduce_max_epu32(k->rel_max);
    if (lo <= hi)
        hist_flush_side(k->rel, lo, hi, out->rel_count + orl, out->rel_pow2 + orl);
    k->abs_min = k->rel_min = _mm512_set1_epi32(HIST_CODES);
    k->abs_max = k->rel_max = _mm512_setzero_si512();
}

/* ---- coding 16 staged pairs ---- */

/* Stores the 16 codes of each side (HIST_JUNK where good is 0) and widens the used ranges. */
__attribute__((target(HIST512_TARGET))) static inline void
hist512_store_codes(__m512i ca, __m512i cr, __mmask16 good, uint32_t *pa, uint32_t *pr,
                    HistCounters *k)
{
    const __m512i junk = _mm512_set1_epi32(HIST_JUNK);
    _mm512_storeu_si512(pa, _mm512_mask_mov_epi32(junk, good, ca));
    _mm512_storeu_si512(pr, _mm512_mask_mov_epi32(junk, good, cr));
    k->abs_min = _mm512_mask_min_epu32(k->abs_min, good, k->abs_min, ca);
    k->abs_max = _mm512_mask_max_epu32(k->abs_max, good, k->abs_max, ca);
    k->rel_min = _mm512_mask_min_epu32(k->rel_min, good, k->rel_min, cr);
    k->rel_max = _mm512_mask_max_epu32(k->rel_max, good, k->rel_max, cr);
}

/* BF16 or F16: the codes of the staged pairs sa[j], sb[j] (stored bits) of the lanes in valid,
 * in float lanes. Returns the valid lanes left to the scalar rule (their codes are HIST_JUNK). */
__attribute__((target(HIST512_TARGET))) static inline __mmask16
hist512_code_half(DType dt, const uint16_t *sa, const uint16_t *sb, __mmask16 valid,
                  ScanHistRange r, uint32_t *pa, uint32_t *pr, HistCounters *k)
{
    __m256i ha = _mm256_maskz_loadu_epi16(valid, sa), hb = _mm256_maskz_loadu_epi16(valid, sb);
    __m512i ua, ub; /* the values' float bits, exactly */
    if (dt == DT_F16) {
        ua = _mm512_castps_si512(_mm512_cvtph_ps(ha));
        ub = _mm512_castps_si512(_mm512_cvtph_ps(hb));
    } else {
        ua = _mm512_slli_epi32(_mm512_cvtepu16_epi32(ha), 16);
        ub = _mm512_slli_epi32(_mm512_cvtepu16_epi32(hb), 16);
    }
    const __m512i mag = _mm512_set1_epi32(0x7fffffff);
    __m512i ma = _mm512_and_si512(ua, mag), mb = _mm512_and_si512(ub, mag);
    __m512i mmax = _mm512_max_epu32(ma, mb), mmin = _mm512_min_epu32(ma, mb);
    __m512i gap = _mm512_sub_epi32(_mm512_srli_epi32(mmax, 23), _mm512_srli_epi32(mmin, 23));
    __m512 d = _mm512_sub_ps(_mm512_castsi512_ps(ub), _mm512_castsi512_ps(ua));
    __m512i dbits = _mm512_and_si512(_mm512_castps_si512(d), mag);
    const __m512i gap_max = _mm512_set1_epi32(dt == DT_F16 ? HIST_GAP_F16 : HIST_GAP_BF16);
    __mmask16 bad =
        _mm512_cmpgt_epu32_mask(gap, gap_max) |
        _mm512_cmpge_epu32_mask(dbits, _mm512_set1_epi32(0x7f800000)) | /* NaN, Inf, overflow */
        _mm512_testn_epi32_mask(dbits, dbits);                          /* a zero difference */
    __m512 df = _mm512_castsi512_ps(dbits), mf = _mm512_castsi512_ps(mmax);
    __m512i ed = _mm512_cvttps_epi32(_mm512_getexp_ps(df));
    __m512i em = _mm512_cvttps_epi32(_mm512_getexp_ps(mf));
    __m512 sd = _mm512_getmant_ps(df, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __m512 sm = _mm512_getmant_ps(mf, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __mmask16 lt = _mm512_cmp_ps_mask(sd, sm, _CMP_LT_OQ);
    __mmask16 eq = _mm512_cmp_ps_mask(sd, sm, _CMP_EQ_OQ);
    __mmask16 one = _mm512_cmp_ps_mask(sd, _mm512_set1_ps(1.0f), _CMP_EQ_OQ);
    const __m512i one_i = _mm512_set1_epi32(1);
    /* abs: 2 (ed - abs_lo) + one; rel: 2 (ed - em - lt - rel_lo) + eq */
    __m512i ca = _mm512_add_epi32(_mm512_slli_epi32(ed, 1), _mm512_set1_epi32(-2 * r.abs_lo));
    ca = _mm512_mask_add_epi32(ca, one, ca, one_i);
    __m512i cr = _mm512_add_epi32(_mm512_slli_epi32(_mm512_sub_epi32(ed, em), 1),
                                  _mm512_set1_epi32(-2 * r.rel_lo));
    cr = _mm512_mask_sub_epi32(cr, lt, cr, _mm512_set1_epi32(2));
    cr = _mm512_mask_add_epi32(cr, eq, cr, one_i);
    hist512_store_codes(ca, cr, valid & (__mmask16)~bad, pa, pr, k);
    return valid & bad;
}

/* F32, 8 lanes in double: the two codes of each lane (abs in the low, rel in the high half of
 * each 64-bit lane), and *good, the lanes binned here; counts the rare kinds of the valid lanes
 * m into rare[0] (nonfinite_changed) and rare[1] (zero_delta). */
__attribute__((target(HIST512_TARGET))) static inline __m512i
hist512_code_f64(__m512d da, __m512d db, __mmask8 m, ScanHistRange r, uint64_t rare[2],
                 __mmask8 *good)
{
    const __m512d sign = _mm512_set1_pd(-0.0);
    /* NaN, Inf */
    __mmask8 nf = _mm512_fpclass_pd_mask(da, 0x99) | _mm512_fpclass_pd_mask(db, 0x99);
    __m512d d = _mm512_andnot_pd(sign, _mm512_sub_pd(db, da));
    __mmask8 zero = _mm512_cmp_pd_mask(d, _mm512_setzero_pd(), _CMP_EQ_OQ) & (__mmask8)~nf;
    rare[0] += (uint64_t)__builtin_popcount(m & nf);
    rare[1] += (uint64_t)__builtin_popcount(m & zero);
    *good = m & (__mmask8)~nf & (__mmask8)~zero;
    __m512d mx = _mm512_max_pd(_mm512_andnot_pd(sign, da), _mm512_andnot_pd(sign, db));
    __m256i ed = _mm512_cvttpd_epi32(_mm512_getexp_pd(d));
    __m256i em = _mm512_cvttpd_epi32(_mm512_getexp_pd(mx));
    __m512d sd = _mm512_getmant_pd(d, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __m512d sm = _mm512_getmant_pd(mx, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __mmask8 lt = _mm512_cmp_pd_mask(sd, sm, _CMP_LT_OQ);
    __mmask8 eq = _mm512_cmp_pd_mask(sd, sm, _CMP_EQ_OQ);
    __mmask8 one = _mm512_cmp_pd_mask(sd, _mm512_set1_pd(1.0), _CMP_EQ_OQ);
    const __m256i one_i = _mm256_set1_epi32(1);
    __m256i ca = _mm256_add_epi32(_mm256_slli_epi32(ed, 1), _mm256_set1_epi32(-2 * r.abs_lo));
    ca = _mm256_mask_add_epi32(ca, one, ca, one_i);
    __m256i cr = _mm256_add_epi32(_mm256_slli_epi32(_mm256_sub_epi32(ed, em), 1),
                                  _mm256_set1_epi32(-2 * r.rel_lo));
    cr = _mm256_mask_sub_epi32(cr, lt, cr, _mm256_set1_epi32(2));
    cr = _mm256_mask_add_epi32(cr, eq, cr, one_i);
    return _mm512_inserti64x4(_mm512_castsi256_si512(ca), cr, 1);
}

/* F32: the codes of the 16 staged pairs of the lanes in valid (all binned here). */
__attribute__((target(HIST512_TARGET))) static inline void
hist512_code_f32(const uint32_t *sa, const uint32_t *sb, __mmask16 valid, ScanHistRange r,
                 uint64_t rare[2], uint32_t *pa, uint32_t *pr, HistCounters *k)
{
    __m512 fa = _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(valid, sa));
    __m512 fb = _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(valid, sb));
    __mmask8 g0, g1;
    __m512i c0 = hist512_code_f64(_mm512_cvtps_pd(_mm512_castps512_ps256(fa)),
                                  _mm512_cvtps_pd(_mm512_castps512_ps256(fb)), (__mmask8)valid,
                                  r, rare, &g0);
    __m512i c1 = hist512_code_f64(
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(fa), 1))),
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(fb), 1))),
        (__mmask8)(valid >> 8), r, rare, &g1);
    /* c0, c1: (abs 8 lanes, rel 8 lanes) each; gather the sides */
    __m512i ca = _mm512_shuffle_i64x2(c0, c1, _MM_SHUFFLE(1, 0, 1, 0));
    __m512i cr = _mm512_shuffle_i64x2(c0, c1, _MM_SHUFFLE(3, 2, 3, 2));
    hist512_store_codes(ca, cr, (__mmask16)(g0 | (g1 << 8)), pa, pr, k);
}

/* The valid lanes that hist512_code_half left: binned one by one by the rule, into out. */
static void hist_bin_scalar(DType dt, const uint16_t *sa, const uint16_t *sb, uint32_t lanes,
                            ScanHist *out)
{
    ScanHistRange r = out->range;
    for (; lanes; lanes &= lanes - 1) {
        int j = __builtin_ctz(lanes);
        ScanElemBin bin;
        int kind = scan_elem_hist_bin(ss_decode(dt, sa, (size_t)j), ss_decode(dt, sb, (size_t)j),
                                      &bin);
        if (kind == SCAN_BIN_NONFINITE) {
            out->nonfinite_changed++;
        } else if (kind == SCAN_BIN_ZERO) {
            out->zero_delta++;
        } else {
            out->abs_count[bin.abs_e - r.abs_lo]++;
            out->abs_pow2[bin.abs_e - r.abs_lo] += bin.abs_pow2;
            out->rel_count[bin.rel_k - r.rel_lo]++;
            out->rel_pow2[bin.rel_k - r.rel_lo] += bin.rel_pow2;
        }
    }
}

/* ---- the loop ---- */

/* Staged pairs and their codes: < 16 waiting plus one piece, and room for full-vector stores. */
#define HIST_STAGE_MAX (16 + HIST_PIECE_GROUPS * 32 + 32)

typedef struct HistStage {
    uint32_t a[HIST_STAGE_MAX], b[HIST_STAGE_MAX]; /* stored bits: 16-bit or 32-bit entries */
    uint32_t ca[HIST_STAGE_MAX], cr[HIST_STAGE_MAX];
} HistStage;

/* Codes the staged pairs [from, from + 16), of which the first nvalid are real, into st's codes
 * at from (HIST_JUNK for the rest); the rare F32 kinds go to rare, the BF16/F16 pairs left to the
 * scalar rule straight into out. */
__attribute__((target(HIST512_TARGET))) static inline __attribute__((always_inline)) void
hist512_code16(DType dt, HistStage *st, size_t from, size_t nvalid, ScanHistRange r,
               uint64_t rare[2], HistCounters *k, ScanHist *out)
{
    __mmask16 valid = nvalid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nvalid) - 1);
    if (dt == DT_F32) {
        hist512_code_f32(st->a + from, st->b + from, valid, r, rare, st->ca + from,
                         st->cr + from, k);
        return;
    }
    const uint16_t *sa = (const uint16_t *)st->a + from, *sb = (const uint16_t *)st->b + from;
    __mmask16 left = hist512_code_half(dt, sa, sb, valid, r, st->ca + from, st->cr + from, k);
    if (__builtin_expect(left != 0, 0))
        hist_bin_scalar(dt, sa, sb, left, out);
}

/* One loop per dtype (dt is a constant after inlining). */
__attribute__((target(HIST512_TARGET))) static inline __attribute__((always_inline)) size_t
hist512_loop(DType dt, const void *a, const void *b, size_t n, const uint8_t *mask, ScanHist *out)
{
    const ScanHistRange r = scan_hist_dtype_range(dt);
    const size_t oa = (size_t)(r.abs_lo - out->range.abs_lo);
    const size_t orl = (size_t)(r.rel_lo - out->range.rel_lo);
    const size_t es = dt == DT_F32 ? 4 : 2, lanes = 64 / es, groups = n / lanes; /* constants */
    HistStage st;
    HistCounters k;
    uint64_t rare[2] = {0, 0}; /* in locals: out may share a cache line with another thread's */
    hist_counters_zero(&k);
    for (size_t seg = 0; seg < groups; seg += HIST_SEG_GROUPS) {
        size_t seg_end = groups - seg < HIST_SEG_GROUPS ? groups : seg + HIST_SEG_GROUPS;
        size_t ns = 0; /* staged pairs */
        for (size_t g0 = seg; g0 < seg_end; g0 += HIST_PIECE_GROUPS) {
            size_t g_end = seg_end - g0 < HIST_PIECE_GROUPS ? seg_end : g0 + HIST_PIECE_GROUPS;
            for (size_t g = g0; g < g_end; g++) { /* stage the changed lanes */
                size_t i = g * lanes;
                __m512i x = _mm512_loadu_si512((const uint8_t *)a + i * es);
                __m512i y = _mm512_loadu_si512((const uint8_t *)b + i * es);
                __mmask32 m;
                if (mask && es == 2) {
                    memcpy(&m, mask + i / 8, 4);
                } else if (mask) {
                    m = (__mmask32)(mask[i / 8] | (mask[i / 8 + 1] << 8));
                } else if (es == 2) { /* bits differ, not both zero */
                    __m512i both = _mm512_and_si512(_mm512_or_si512(x, y),
                                                    _mm512_set1_epi16(0x7fff));
                    m = _mm512_mask_cmpneq_epi16_mask(_mm512_test_epi16_mask(both, both), x, y);
                } else {
                    __m512i both = _mm512_and_si512(_mm512_or_si512(x, y),
                                                    _mm512_set1_epi32(0x7fffffff));
                    m = _mm512_mask_cmpneq_epi32_mask(_mm512_test_epi32_mask(both, both), x, y);
                }
                if (es == 2) {
                    _mm512_storeu_si512((uint16_t *)st.a + ns, _mm512_maskz_compress_epi16(m, x));
                    _mm512_storeu_si512((uint16_t *)st.b + ns, _mm512_maskz_compress_epi16(m, y));
                } else {
                    _mm512_storeu_si512(st.a + ns, _mm512_maskz_compress_epi32((__mmask16)m, x));
                    _mm512_storeu_si512(st.b + ns, _mm512_maskz_compress_epi32((__mmask16)m, y));
                }
                ns += (size_t)__builtin_popcount(m);
            }
            size_t full = ns & ~(size_t)15;
            if (!full)
                continue;
            for (size_t j = 0; j < full; j += 16)
                hist512_code16(dt, &st, j, 16, r, rare, &k, out);
            hist_count(&k, st.ca, st.cr, full);
            /* the < 16 left to the front: at most 60 bytes, apart from their old place */
            _mm512_storeu_si512(st.a, _mm512_loadu_si512((const uint8_t *)st.a + full * es));
            _mm512_storeu_si512(st.b, _mm512_loadu_si512((const uint8_t *)st.b + full * es));
            ns -= full;
        }
        if (ns) {
            hist512_code16(dt, &st, 0, ns, r, rare, &k, out);
            hist_count(&k, st.ca, st.cr, 16);
        }
        hist_counters_flush(&k, out, oa, orl);
    }
    out->nonfinite_changed += rare[0];
    out->zero_delta += rare[1];
    return groups * lanes;
}

int scan_hist_avx512_usable(DType dt)
{
    return (dt == DT_BF16 || dt == DT_F16 || dt == DT_F32) &&
           __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vbmi2");
}

__attribute__((target(HIST512_TARGET))) size_t
scan_hist_block_avx512(DType dt, const void *a, const void *b, size_t n, const uint8_t *mask,
                       ScanHist *out)
{
    switch (dt) {
    case DT_BF16: return hist512_loop(DT_BF16, a, b, n, mask, out);
    case DT_F16: return hist512_loop(DT_F16, a, b, n, mask, out);
    case DT_F32: return hist512_loop(DT_F32, a, b, n, mask, out);
    default: return 0;
    }
}
