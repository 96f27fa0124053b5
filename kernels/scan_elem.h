/* The scan contract for one element pair, written once: the portable CPU path, the SIMD paths'
 * fallbacks, the mask and histogram loops and the CUDA kernels (kernels/scan_cuda.cu) all call
 * these, so the rule lives in one place. Header-only and SS_HD (__host__ __device__ under nvcc)
 * like formats/dtype_convert.h; tests/kernels/test_scan_elem.c checks them against an independent
 * oracle and against the CPU paths. */
#ifndef SS_SCAN_ELEM_H
#define SS_SCAN_ELEM_H

#include <math.h>
#include <stdint.h>

#include "formats/dtype_convert.h"
#include "kernels/scan.h"

/* The stored bits of element i (1, 2, 4 or 8 bytes by dtype), zero-extended. */
SS_HD uint64_t scan_elem_bits(DType dt, const void *p, size_t i)
{
    const uint8_t *b = (const uint8_t *)p;
    switch (dt) {
    case DT_I16: case DT_U16: case DT_F16: case DT_BF16: {
        uint16_t v; memcpy(&v, b + 2 * i, 2); return v;
    }
    case DT_I32: case DT_U32: case DT_F32: {
        uint32_t v; memcpy(&v, b + 4 * i, 4); return v;
    }
    case DT_I64: case DT_U64: case DT_F64: {
        uint64_t v; memcpy(&v, b + 8 * i, 8); return v;
    }
    default: return b[i];
    }
}

/* changed: stored bits differ, except that two float zeros (+0, -0) are equal. da, db are the
 * decoded values (a float element decodes to 0.0 exactly when its magnitude bits are zero). */
SS_HD int scan_elem_changed(int is_float, uint64_t bits_a, uint64_t bits_b, double da, double db)
{
    return bits_a != bits_b && !(is_float && da == 0.0 && db == 0.0);
}

/* Adds one pair into c (all counts except numel); the squares go to *sq_delta and *sq_a so that the
 * caller chooses the summation order. */
SS_HD void scan_elem_account(const ScanConfig *cfg, int changed, double da, double db,
                             ScanCounts *c, double *sq_delta, double *sq_a)
{
    int fin_a = isfinite(da), fin_b = isfinite(db);
    c->changed += (uint64_t)changed;
    if (fin_a)
        *sq_a += da * da;
    if (!(fin_a && fin_b)) {
        c->nonfinite++;
        if (changed) {
#ifdef __CUDA_ARCH__
#pragma unroll
            for (size_t k = 0; k < SCAN_MAX_TOL; k++)
                c->changed_tol[k] += k < cfg->ntol;
#else
            for (size_t k = 0; k < cfg->ntol; k++)
                c->changed_tol[k]++;
#endif
            c->changed_rtol += (uint64_t)(cfg->has_rtol != 0);
        }
        return;
    }
    double d = fabs(db - da);
#ifdef __CUDA_ARCH__
    /* a fixed trip count, unrolled: constant indices keep the counts in registers (a loop to
     * ntol would put the whole ScanCounts in local memory) */
#pragma unroll
    for (size_t k = 0; k < SCAN_MAX_TOL; k++)
        if (k < cfg->ntol)
            c->changed_tol[k] += (uint64_t)(d > cfg->tol[k]);
#else
    for (size_t k = 0; k < cfg->ntol; k++)
        c->changed_tol[k] += (uint64_t)(d > cfg->tol[k]);
#endif
    if (cfg->has_rtol)
        c->changed_rtol += (uint64_t)(d > cfg->rtol * fmax(fabs(da), fabs(db)));
    if (d > c->max_abs_delta)
        c->max_abs_delta = d;
    *sq_delta += d * d;
}

/* Magnitude bits of dt's storage word (all bits for integer and BOOL types). */
SS_HD uint64_t scan_elem_magnitude(DType dt)
{
    switch (dt) {
    case DT_F8_E4M3: case DT_F8_E5M2: return 0x7Full;
    case DT_F16: case DT_BF16: return 0x7FFFull;
    case DT_F32: return 0x7FFFFFFFull;
    case DT_F64: return 0x7FFFFFFFFFFFFFFFull;
    default: return ~0ull;
    }
}

/* The mask rule on stored bits alone (no decoding): 1 exactly when the pair changed, i.e. the bits
 * differ and they are not two float zeros of either sign. Equals scan_elem_changed for every pair.
 * The _mag form takes scan_elem_magnitude(dt), for loops that hoist it. */
SS_HD int scan_elem_mask_bit_mag(uint64_t mag, uint64_t bits_a, uint64_t bits_b)
{
    return bits_a != bits_b && ((bits_a | bits_b) & mag) != 0;
}

SS_HD int scan_elem_mask_bit(DType dt, uint64_t bits_a, uint64_t bits_b)
{
    return scan_elem_mask_bit_mag(scan_elem_magnitude(dt), bits_a, bits_b);
}

/* ---- the tolerance-curve bins of one changed pair (scan.h, "Tolerance curves") ---- */

#define SCAN_ELEM_SIG_ONE ((uint64_t)1 << 52)

/* What scan_elem_hist_bin found for a pair. */
enum { SCAN_BIN_OK, SCAN_BIN_NONFINITE, SCAN_BIN_ZERO };

typedef struct ScanElemBin {
    int32_t abs_e;    /* floor(log2 d) */
    int32_t rel_k;    /* 2^k m <= d < 2^(k+1) m */
    uint32_t abs_pow2; /* 1 when d == 2^abs_e */
    uint32_t rel_pow2; /* 1 when d == 2^rel_k m */
} ScanElemBin;

SS_HD int scan_elem_clz64(uint64_t x)
{
#if defined(__CUDA_ARCH__)
    return __clzll((long long)x);
#else
    return __builtin_clzll(x);
#endif
}

/* x > 0, finite: *e = floor(log2 x), returns the significand as an integer in [2^52, 2^53). */
SS_HD uint64_t scan_elem_split(double x, int32_t *e)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint64_t man = bits & (SCAN_ELEM_SIG_ONE - 1);
    int32_t be = (int32_t)(bits >> 52) & 0x7ff;
    if (be == 0) { /* subnormal: man * 2^-1074 */
        int s = scan_elem_clz64(man) - 11;
        *e = -1022 - s;
        return man << s;
    }
    *e = be - 1023;
    return man | SCAN_ELEM_SIG_ONE;
}

/* The bins of one changed pair of decoded values: SCAN_BIN_NONFINITE (a NaN or Inf),
 * SCAN_BIN_ZERO (the decoded difference is 0), or SCAN_BIN_OK with *bin filled. Exact: integer
 * work on the bits of d = |b - a| and m = max(|a|, |b|) (subnormals normalised); the rare cases
 * branch, the common one does not (one-ulp changes are exact powers of two: common). */
SS_HD int scan_elem_hist_bin(double da, double db, ScanElemBin *bin)
{
    if (__builtin_expect(!isfinite(da) || !isfinite(db), 0))
        return SCAN_BIN_NONFINITE;
    double d = fabs(db - da);
    int32_t up = 0;
    if (__builtin_expect(d == 0, 0))
        return SCAN_BIN_ZERO;
    if (__builtin_expect(isinf(d), 0)) { /* F64 near its limits: halves, exact scaling */
        d = fabs(db * 0.5 - da * 0.5);
        up = 1;
    }
    uint64_t ua, ub; /* magnitudes order like their bits: the max without a branch */
    memcpy(&ua, &da, 8);
    memcpy(&ub, &db, 8);
    ua &= ~(1ull << 63);
    ub &= ~(1ull << 63);
    uint64_t um = ua > ub ? ua : ub;
    double m;
    memcpy(&m, &um, 8);
    int32_t ed, em;
    uint64_t sd = scan_elem_split(d, &ed), sm = scan_elem_split(m, &em);
    ed += up;
    bin->abs_e = ed;
    bin->rel_k = ed - em - (int32_t)(sd < sm);
    bin->abs_pow2 = (uint32_t)(sd == SCAN_ELEM_SIG_ONE);
    bin->rel_pow2 = (uint32_t)(sd == sm);
    return SCAN_BIN_OK;
}

#endif
