/* Thresholds for --delta-dtype (see delta_dtype.h): a bisection over the ordered bit patterns of
 * non-negative doubles finds the smallest d whose rounding exceeds t; tau is the double below it. */
#include "analyze/delta_dtype.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "formats/dtype_round.h"

static double double_of_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static uint64_t bits_of_double(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* Whether the rounded difference exceeds t (a NaN from an E4M3 overflow counts as exceeding). */
static int rounded_exceeds(DType dt, double d, double t)
{
    double r = fabs(dtype_round(dt, d));
    return isnan(r) || r > t;
}

double delta_dtype_threshold(DType dt, double t)
{
    if (dtype_round(dt, 0x1.123456789abcdp-3) == 0x1.123456789abcdp-3)
        return t; /* no rounding for this dtype */
    /* Non-negative doubles order like their bit patterns: bisect on [0, bits(DBL_MAX)]. */
    uint64_t lo = 0, hi = bits_of_double(0x1.fffffffffffffp1023);
    if (!rounded_exceeds(dt, double_of_bits(hi), t))
        return double_of_bits(hi); /* nothing finite exceeds t */
    if (rounded_exceeds(dt, 0.0, t))
        return -1.0;               /* everything exceeds t (t < 0 cannot be given, kept total) */
    while (hi - lo > 1) {          /* invariant: lo does not exceed, hi does */
        uint64_t mid = lo + (hi - lo) / 2;
        if (rounded_exceeds(dt, double_of_bits(mid), t))
            hi = mid;
        else
            lo = mid;
    }
    return double_of_bits(lo);
}

ScanConfig delta_dtype_config(const ScanConfig *cfg, DType dt)
{
    ScanConfig c = *cfg;
    for (size_t k = 0; k < c.ntol; k++)
        c.tol[k] = delta_dtype_threshold(dt, c.tol[k]);
    return c;
}
