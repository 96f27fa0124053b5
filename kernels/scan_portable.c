/* The portable scan path: element by element with the shared rule of scan_elem.h. It is the
 * reference every SIMD path is tested against, and the fallback for rare lanes (non-finite values,
 * inexact float differences) inside those paths. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "formats/dtype_convert.h"
#include "kernels/scan.h"
#include "kernels/scan_elem.h"
#include "kernels/scan_isa.h"

#define PORTABLE_LANES 8

/* 1 when every tolerance and rtol is >= 0: then a pair with equal bits counts nothing but a^2
 * (or a non-finite value), and the loop can skip the rest. */
static int portable_equal_is_quiet(const ScanConfig *cfg)
{
    for (size_t k = 0; k < cfg->ntol; k++)
        if (!(cfg->tol[k] >= 0.0))
            return 0;
    return !cfg->has_rtol || cfg->rtol >= 0.0;
}

/* One loop per dtype: dt is a constant after inlining, so decode and bit loads specialise. */
static inline __attribute__((always_inline)) void
portable_loop(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t i0, size_t i1,
              ScanCounts *c, double sq_d[PORTABLE_LANES], double sq_a[PORTABLE_LANES])
{
    const int is_float = dtype_is_float(dt), quiet = portable_equal_is_quiet(cfg);
    for (size_t i = i0; i < i1; i++) {
        uint64_t xa = scan_elem_bits(dt, a, i), xb = scan_elem_bits(dt, b, i);
        double da = ss_decode(dt, a, i);
        size_t lane = i % PORTABLE_LANES;
        if (xa == xb && quiet) { /* what scan_elem_account does for d = 0, unchanged */
            if (isfinite(da))
                sq_a[lane] += da * da;
            else
                c->nonfinite++;
            continue;
        }
        double db = ss_decode(dt, b, i);
        int changed = scan_elem_changed(is_float, xa, xb, da, db);
        scan_elem_account(cfg, changed, da, db, c, &sq_d[lane], &sq_a[lane]);
    }
}

/* Pairwise sum of the lane partials, always in this order. */
static double portable_sum_lanes(const double s[PORTABLE_LANES])
{
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

void scan_portable_range(const ScanConfig *cfg, DType dt, const void *a, const void *b,
                         size_t i0, size_t i1, ScanCounts *c)
{
    double sq_d[PORTABLE_LANES] = {0}, sq_a[PORTABLE_LANES] = {0};
    switch (dt) {
#define PORTABLE_CASE(DT) \
    case DT: portable_loop(cfg, DT, a, b, i0, i1, c, sq_d, sq_a); break;
    PORTABLE_CASE(DT_BOOL)
    PORTABLE_CASE(DT_U8)
    PORTABLE_CASE(DT_I8)
    PORTABLE_CASE(DT_I16)
    PORTABLE_CASE(DT_U16)
    PORTABLE_CASE(DT_I32)
    PORTABLE_CASE(DT_U32)
    PORTABLE_CASE(DT_I64)
    PORTABLE_CASE(DT_U64)
    PORTABLE_CASE(DT_F16)
    PORTABLE_CASE(DT_BF16)
    PORTABLE_CASE(DT_F32)
    PORTABLE_CASE(DT_F64)
    PORTABLE_CASE(DT_F8_E4M3)
    PORTABLE_CASE(DT_F8_E5M2)
#undef PORTABLE_CASE
    default: return; /* unknown dtype: nothing to count */
    }
    c->numel += i1 - i0;
    c->sum_sq_delta += portable_sum_lanes(sq_d);
    c->sum_sq_a += portable_sum_lanes(sq_a);
}

void scan_block_portable(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t n,
                         ScanCounts *out)
{
    scan_portable_range(cfg, dt, a, b, 0, n, out);
}
