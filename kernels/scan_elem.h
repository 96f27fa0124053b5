/* The scan contract for one element pair, written once: the portable CPU path, the SIMD paths'
 * fallbacks and (later) the CUDA kernels all call these, so the rule lives in one place.
 * Header-only and SS_HD like formats/dtype_convert.h. */
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
            for (size_t k = 0; k < cfg->ntol; k++)
                c->changed_tol[k]++;
            c->changed_rtol += (uint64_t)(cfg->has_rtol != 0);
        }
        return;
    }
    double d = fabs(db - da);
    for (size_t k = 0; k < cfg->ntol; k++)
        c->changed_tol[k] += (uint64_t)(d > cfg->tol[k]);
    if (cfg->has_rtol)
        c->changed_rtol += (uint64_t)(d > cfg->rtol * fmax(fabs(da), fabs(db)));
    if (d > c->max_abs_delta)
        c->max_abs_delta = d;
    *sq_delta += d * d;
}

#endif
