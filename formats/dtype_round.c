/* Single rounding of doubles to the float dtypes (see dtype_round.h): scale by the spacing of the
 * dtype at x's exponent, round to an integer with the default (half-to-even) mode, scale back.
 * Both scalings are by powers of two, so only the one rounding happens. */
#include "formats/dtype_round.h"

#include <math.h>

typedef struct FloatFormat {
    int digits;     /* significand bits, including the implicit one */
    int emin;       /* exponent of the smallest normal value, as in 2^emin */
    double max;     /* largest finite value */
    int has_inf;    /* overflow gives Inf (else NaN) */
} FloatFormat;

static int format_of(DType dt, FloatFormat *f)
{
    switch (dt) {
    case DT_BF16: *f = (FloatFormat){8, -126, 0x1.fep127, 1}; return 1;
    case DT_F16: *f = (FloatFormat){11, -14, 65504.0, 1}; return 1;
    case DT_F32: *f = (FloatFormat){24, -126, 0x1.fffffep127, 1}; return 1;
    case DT_F8_E5M2: *f = (FloatFormat){3, -14, 57344.0, 1}; return 1;
    case DT_F8_E4M3: *f = (FloatFormat){4, -6, 448.0, 0}; return 1;
    default: return 0;
    }
}

double dtype_round(DType dt, double x)
{
    FloatFormat f;
    if (!format_of(dt, &f) || x == 0 || !isfinite(x))
        return x;
    int e;
    frexp(fabs(x), &e);           /* |x| in [2^(e-1), 2^e) */
    int exp = e - 1 < f.emin ? f.emin : e - 1;
    int shift = exp - (f.digits - 1); /* spacing of the format at |x| is 2^shift */
    double r = ldexp(nearbyint(ldexp(x, -shift)), shift);
    if (fabs(r) > f.max)
        return f.has_inf ? copysign(INFINITY, x) : NAN;
    return r;
}
