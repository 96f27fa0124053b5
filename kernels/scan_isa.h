/* Internal to kernels/ (and its tests): the per-ISA scan paths behind scan_block, and the
 * thresholds they precompute from a ScanConfig.
 *
 * Every path adds exactly the same counts into *out as scan_block_portable for every input; the
 * floating-point sums may differ from it in the last bits (other lane structure, FMA), but for a
 * given path they depend only on the data. */
#ifndef SS_SCAN_ISA_H
#define SS_SCAN_ISA_H

#include <stdint.h>

#include "kernels/scan.h"

typedef enum ScanIsa { SCAN_ISA_PORTABLE, SCAN_ISA_AVX2, SCAN_ISA_AVX512 } ScanIsa;

/* Per-call constants derived from a ScanConfig for the SIMD paths. */
typedef struct ScanPrep {
    const ScanConfig *cfg;
    int simd_ok;                      /* 0: some tol/rtol is negative or NaN -> portable path */
    uint32_t tol_dn[SCAN_MAX_TOL];    /* bits of the largest float <= tol[k] (tol >= 0) */
    float rtol_dn, rtol_up;           /* largest float <= rtol, smallest float >= rtol */
    int rtol_near_ok;                 /* rtol in [2^-100, 1]: the AVX2 margin test is valid */
    float rtol_near;                  /* rtol rounded to nearest float */
} ScanPrep;

void scan_prep_init(ScanPrep *p, const ScanConfig *cfg);

/* The 1- and 2-byte float kinds the SIMD paths handle with integer tricks. */
enum { HALF_BF16, HALF_F16, HALF_E4M3, HALF_E5M2 };

/* How a SIMD path counts rtol for finite half-like pairs: not at all, as the changed count (when
 * rtol <= 2^-(p+1), p = significand bits, every changed finite pair has d > rtol*max(|a|,|b|),
 * since two distinct values differ by more than 2^-(p+1) of the larger magnitude), or with
 * float bounds settled in double. */
enum { RTOL_NONE, RTOL_IS_CHANGED, RTOL_BOUNDS };
int scan_half_rtol_mode(int kind, const ScanConfig *cfg);

/* The level this CPU supports (ignoring SS_SCAN_ISA), and the one scan_block uses. */
ScanIsa scan_isa_best(void);
ScanIsa scan_isa_active(void);

/* Adds the counts of elements [i0, i1) into *c, element by element (the portable rule). The sums
 * go to c->sum_sq_* in a fixed order: 8 lane partials per call, combined pairwise. */
void scan_portable_range(const ScanConfig *cfg, DType dt, const void *a, const void *b,
                         size_t i0, size_t i1, ScanCounts *c);

/* The SIMD paths; same contract as scan_block. Call only where scan_isa_best() allows. Integer
 * and BOOL dtypes, and configs with simd_ok == 0, go through the portable path. */
void scan_block_avx2(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t n,
                     ScanCounts *out);
void scan_block_avx512(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t n,
                       ScanCounts *out);
/* scan_block_avx512 calling seg_fn after each finished segment (see scan_block_seg). */
void scan_block_avx512_seg(const ScanConfig *cfg, DType dt, const void *a, const void *b,
                           size_t n, ScanCounts *out, ScanSegmentFn seg_fn, void *seg_ctx);

/* The mask paths behind scan_mask_block (kernels/scan_mask.c); same contract, same bytes. Call the
 * SIMD ones only where scan_isa_best() allows (AVX2: avx2; AVX-512: avx512f and avx512bw). */
void scan_mask_block_portable(DType dt, const void *a, const void *b, size_t n, uint8_t *mask);
void scan_mask_block_avx2(DType dt, const void *a, const void *b, size_t n, uint8_t *mask);
void scan_mask_block_avx512(DType dt, const void *a, const void *b, size_t n, uint8_t *mask);

/* Exact rtol decision for lanes whose float bounds were inconclusive: the number of lanes j in
 * mask (bit j) with (double)ad[j] > rtol * (double)m[j], as the portable rule computes it (ad is
 * the exact |b - a|, m = max(|a|, |b|)). Inline: the SIMD loops stay free of calls. */
static inline uint64_t scan_rtol_settle(double rtol, const float *ad, const float *m, uint32_t mask)
{
    uint64_t count = 0;
    for (; mask; mask &= mask - 1) {
        int j = __builtin_ctz(mask);
        count += (uint64_t)((double)ad[j] > rtol * (double)m[j]);
    }
    return count;
}

#endif
