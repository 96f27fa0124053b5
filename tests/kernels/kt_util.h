/* Helpers shared by the kernels tests: a seeded RNG, an independent decoder of every dtype (written
 * from the format definitions with ldexp, not from formats/dtype_convert.h), pair generators rich
 * in special values, and ScanCounts comparison. Header-only: each test is one program. */
#ifndef SS_KT_UTIL_H
#define SS_KT_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dtype.h"
#include "kernels/scan.h"

#define KT_PASS 0
#define KT_FAIL 1
#define KT_SKIP 77

/* ---- random numbers --------------------------------------------------------------------------- */

static inline uint64_t kt_rand(uint64_t *s) /* xorshift64* */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static inline uint64_t kt_below(uint64_t *s, uint64_t n)
{
    return kt_rand(s) % n;
}

/* ---- an independent decoder ---------------------------------------------------------------- */

typedef struct KtFormat {
    int bits;     /* storage width: 8, 16, 32, 64 */
    int is_float;
    int ebits;    /* exponent bits (floats) */
    int mbits;    /* stored mantissa bits (floats) */
    int has_inf;  /* F8_E4M3 has none */
} KtFormat;

static inline KtFormat kt_format(DType dt)
{
    switch (dt) {
    case DT_F16: return (KtFormat){16, 1, 5, 10, 1};
    case DT_BF16: return (KtFormat){16, 1, 8, 7, 1};
    case DT_F32: return (KtFormat){32, 1, 8, 23, 1};
    case DT_F64: return (KtFormat){64, 1, 11, 52, 1};
    case DT_F8_E4M3: return (KtFormat){8, 1, 4, 3, 0};
    case DT_F8_E5M2: return (KtFormat){8, 1, 5, 2, 1};
    case DT_BOOL: case DT_U8: case DT_I8: return (KtFormat){8, 0, 0, 0, 0};
    case DT_I16: case DT_U16: return (KtFormat){16, 0, 0, 0, 0};
    case DT_I32: case DT_U32: return (KtFormat){32, 0, 0, 0, 0};
    default: return (KtFormat){64, 0, 0, 0, 0};
    }
}

/* Value of stored bits x of dtype dt, from the format definition. */
static inline double kt_decode(DType dt, uint64_t x)
{
    KtFormat f = kt_format(dt);
    if (!f.is_float) {
        switch (dt) {
        case DT_BOOL: return x ? 1.0 : 0.0;
        case DT_I8: return (double)(int8_t)x;
        case DT_I16: return (double)(int16_t)x;
        case DT_I32: return (double)(int32_t)x;
        case DT_I64: return (double)(int64_t)x;
        default: return (double)x;
        }
    }
    if (dt == DT_F64) {
        double v;
        memcpy(&v, &x, 8);
        return v;
    }
    int sign = (int)((x >> (f.bits - 1)) & 1);
    int emax = (1 << f.ebits) - 1, bias = (1 << (f.ebits - 1)) - 1;
    int e = (int)((x >> f.mbits) & (uint64_t)emax);
    uint64_t m = x & ((1ull << f.mbits) - 1);
    double v;
    if (!f.has_inf && e == emax && m == (1ull << f.mbits) - 1)
        v = NAN;
    else if (f.has_inf && e == emax)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp((double)m, 1 - bias - f.mbits);
    else
        v = ldexp((double)(m | (1ull << f.mbits)), e - bias - f.mbits);
    return sign ? -v : v;
}

static inline uint64_t kt_get(DType dt, const uint8_t *buf, size_t i)
{
    uint64_t x = 0;
    size_t w = (size_t)kt_format(dt).bits / 8;
    memcpy(&x, buf + i * w, w); /* little-endian */
    return x;
}

static inline void kt_put(DType dt, uint8_t *buf, size_t i, uint64_t x)
{
    size_t w = (size_t)kt_format(dt).bits / 8;
    memcpy(buf + i * w, &x, w);
}

/* Largest finite magnitude bits of a float dtype. */
static inline uint64_t kt_max_finite(DType dt)
{
    KtFormat f = kt_format(dt);
    uint64_t emax = (1ull << f.ebits) - 1;
    if (!f.has_inf)
        return (emax << f.mbits) | ((1ull << f.mbits) - 2);
    return ((emax - 1) << f.mbits) | ((1ull << f.mbits) - 1);
}

/* Magnitude bits of the largest value <= v (down) or smallest >= v (up), v >= 0, clamped to the
 * finite range; magnitudes order like their bits. */
static inline uint64_t kt_encode(DType dt, double v, int up)
{
    if (dt == DT_F64) { /* v itself (clamped) */
        double c = v < 1.7976931348623157e308 ? v : 1.7976931348623157e308;
        uint64_t x;
        memcpy(&x, &c, 8);
        return x;
    }
    if (dt == DT_F32) {
        float f = (float)v;
        if (isinf(f))
            f = 3.4028234663852886e38f;
        if (up && (double)f < v)
            f = nextafterf(f, INFINITY);
        if (!up && (double)f > v)
            f = nextafterf(f, 0.0f);
        uint32_t x;
        memcpy(&x, &f, 4);
        return x;
    }
    uint64_t lo = 0, hi = kt_max_finite(dt);
    if (v >= kt_decode(dt, hi))
        return hi;
    while (lo < hi) { /* smallest bits with value >= v */
        uint64_t mid = lo + (hi - lo) / 2;
        if (kt_decode(dt, mid) >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (!up && kt_decode(dt, lo) > v && lo > 0)
        lo--;
    return lo;
}

/* ---- the rule, element by element (the oracle) --------------------------------------------- */

/* Adds one pair into c the obvious way; sums in plain sequential order. */
static inline void kt_oracle_pair(const ScanConfig *cfg, DType dt, uint64_t xa, uint64_t xb,
                                  ScanCounts *c)
{
    KtFormat f = kt_format(dt);
    double a = kt_decode(dt, xa), b = kt_decode(dt, xb);
    int changed = xa != xb;
    if (f.is_float && a == 0.0 && b == 0.0)
        changed = 0; /* +0 and -0 */
    int finite = isfinite(a) && isfinite(b);
    c->numel++;
    c->changed += (uint64_t)changed;
    if (isfinite(a))
        c->sum_sq_a += a * a;
    if (!finite) {
        c->nonfinite++;
        for (size_t k = 0; k < cfg->ntol; k++)
            c->changed_tol[k] += (uint64_t)changed;
        if (cfg->has_rtol)
            c->changed_rtol += (uint64_t)changed;
        return;
    }
    double d = fabs(b - a);
    for (size_t k = 0; k < cfg->ntol; k++)
        c->changed_tol[k] += (uint64_t)(d > cfg->tol[k]);
    if (cfg->has_rtol) {
        double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
        c->changed_rtol += (uint64_t)(d > cfg->rtol * m);
    }
    if (d > c->max_abs_delta)
        c->max_abs_delta = d;
    c->sum_sq_delta += d * d;
}

/* ---- comparison ------------------------------------------------------------------------------ */

static inline int kt_close(double x, double y, double rel)
{
    if (isnan(x) || isnan(y))
        return isnan(x) && isnan(y);
    if (isinf(x) || isinf(y))
        return x == y;
    double m = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
    return fabs(x - y) <= rel * m;
}

/* 1 when counts are equal and sums within rel (max_abs_delta exactly equal); prints otherwise. */
static inline int kt_same(const char *what, const ScanConfig *cfg, const ScanCounts *x,
                          const ScanCounts *y, double rel)
{
    int ok = x->numel == y->numel && x->changed == y->changed && x->nonfinite == y->nonfinite &&
             (!cfg->has_rtol || x->changed_rtol == y->changed_rtol) &&
             x->max_abs_delta == y->max_abs_delta && kt_close(x->sum_sq_delta, y->sum_sq_delta, rel) &&
             kt_close(x->sum_sq_a, y->sum_sq_a, rel);
    for (size_t k = 0; k < cfg->ntol; k++)
        ok = ok && x->changed_tol[k] == y->changed_tol[k];
    if (!ok) {
        fprintf(stderr, "MISMATCH %s\n", what);
        const ScanCounts *v[2] = {x, y};
        for (int j = 0; j < 2; j++) {
            fprintf(stderr, "  numel %llu changed %llu nonfinite %llu rtol %llu max %.17g sq_d %.17g sq_a %.17g tol",
                    (unsigned long long)v[j]->numel, (unsigned long long)v[j]->changed,
                    (unsigned long long)v[j]->nonfinite, (unsigned long long)v[j]->changed_rtol,
                    v[j]->max_abs_delta, v[j]->sum_sq_delta, v[j]->sum_sq_a);
            for (size_t k = 0; k < cfg->ntol; k++)
                fprintf(stderr, " %llu", (unsigned long long)v[j]->changed_tol[k]);
            fprintf(stderr, "\n");
        }
    }
    return ok;
}

/* ---- pair generators ------------------------------------------------------------------------ */

/* A float dtype's bits from sign, biased exponent and mantissa. */
static inline uint64_t kt_make(DType dt, int sign, uint64_t e, uint64_t m)
{
    KtFormat f = kt_format(dt);
    return ((uint64_t)sign << (f.bits - 1)) | (e << f.mbits) | (m & ((1ull << f.mbits) - 1));
}

/* A nonzero finite value near 'around' (magnitude bits of the dtype nearest to it), random sign. */
static inline uint64_t kt_near(DType dt, uint64_t *s, double around)
{
    KtFormat f = kt_format(dt);
    uint64_t x = kt_encode(dt, around * (0.5 + (double)kt_below(s, 1000) / 1000.0), 1);
    if (x == 0)
        x = 1;
    return x | ((kt_rand(s) & 1) << (f.bits - 1));
}

/* One pair (xa, xb) of a float dtype, drawn from many kinds of special cases; tol lists the
 * tolerances whose edges to visit (ntol of them), rtol the relative one (0: none). */
static inline void kt_float_pair(DType dt, uint64_t *s, const double *tol, size_t ntol, double rtol,
                                 int friendly, uint64_t *xa, uint64_t *xb)
{
    KtFormat f = kt_format(dt);
    const uint64_t emax = (1ull << f.ebits) - 1, bias = emax / 2;
    const uint64_t signbit = 1ull << (f.bits - 1), maxfin = kt_max_finite(dt);
    const uint64_t nan_bits = f.has_inf ? kt_make(dt, 0, emax, 1) : kt_make(dt, 0, emax, ~0ull);
    const uint64_t inf_bits = f.has_inf ? kt_make(dt, 0, emax, 0) : maxfin;
    uint64_t a, b;
    int kind = (int)kt_below(s, 21);
    /* friendly: the kinds a SIMD path computes itself (zeros, subnormals, edges, gaps near the
     * limit, weights); NaN, infinities, random bits and huge gaps only once in 4000 pairs */
    static const int friendly_kinds[] = {2, 5, 8, 9, 10, 11, 12, 13, 13, 14, 15, 16};
    if (friendly)
        kind = kt_below(s, 4000) == 0 ? (int)kt_below(s, 8) : friendly_kinds[kt_below(s, 12)];
    switch (kind) {
    case 0: /* random bits, anything goes */
        a = kt_rand(s), b = kt_rand(s);
        break;
    case 1: /* identical random bits (NaN bits included) */
        a = b = kt_rand(s);
        break;
    case 2: /* +0 / -0 and tiny partners */
        a = (kt_rand(s) & 1) ? signbit : 0;
        b = kt_below(s, 3) == 0 ? (kt_rand(s) & 3) : ((kt_rand(s) & 1) ? signbit : 0);
        break;
    case 3: { /* NaNs: equal bits, other payloads, against finite */
        uint64_t payload = 1 + kt_below(s, (1ull << f.mbits) - 1);
        a = f.has_inf ? kt_make(dt, (int)(kt_rand(s) & 1), emax, payload) : (nan_bits | ((kt_rand(s) & 1) ? signbit : 0));
        int w = (int)kt_below(s, 3);
        b = w == 0 ? a : w == 1 ? (f.has_inf ? kt_make(dt, 0, emax, 1 + kt_below(s, (1ull << f.mbits) - 1)) : nan_bits) : kt_rand(s);
        if (kt_rand(s) & 1) {
            uint64_t t = a;
            a = b, b = t;
        }
        break;
    }
    case 4: /* infinities */
        a = inf_bits | ((kt_rand(s) & 1) ? signbit : 0);
        b = kt_below(s, 2) ? a ^ (kt_rand(s) & 1 ? signbit : 0) : kt_rand(s);
        break;
    case 5: /* subnormals (and the smallest normals) */
        a = kt_below(s, 1ull << f.mbits) | ((kt_rand(s) & 1) ? signbit : 0);
        b = kt_below(s, 2) ? (a + kt_below(s, 5)) : kt_below(s, 2ull << f.mbits);
        break;
    case 6: /* huge exponent gaps */
        a = kt_make(dt, (int)(kt_rand(s) & 1), 1 + kt_below(s, 4), kt_rand(s));
        b = kt_make(dt, (int)(kt_rand(s) & 1), emax - 1 - kt_below(s, 4), kt_rand(s));
        if (kt_rand(s) & 1) {
            uint64_t t = a;
            a = b, b = t;
        }
        break;
    case 7: /* the largest magnitudes, opposite signs: b - a can overflow narrow floats */
        a = (maxfin - kt_below(s, 3)) | ((kt_rand(s) & 1) ? signbit : 0);
        b = (maxfin - kt_below(s, 3)) | ((kt_rand(s) & 1) ? signbit : 0);
        break;
    case 8: case 9: case 10: { /* a tolerance edge: |b - a| at, just below or just above tol */
        double t = ntol ? tol[kt_below(s, ntol)] : 1e-5;
        if (!(t > 0) || !isfinite(t))
            t = 1e-5;
        int w = (int)kt_below(s, 3);
        double va = w == 0 ? 0.0 : w == 1 ? t * ldexp(1.0, -(int)kt_below(s, 8)) : t * (double)(1 + kt_below(s, 200));
        a = kt_encode(dt, va, (int)(kt_rand(s) & 1));
        double vb = kt_decode(dt, a) + t;
        b = kt_encode(dt, vb, (int)(kt_rand(s) & 1));
        b += (uint64_t)kt_below(s, 3) - 1; /* one step either side, sometimes */
        if (b > maxfin)
            b = maxfin;
        if (kt_rand(s) & 1) {
            a |= signbit, b |= signbit;
        }
        if (kt_rand(s) & 1) {
            uint64_t x = a;
            a = b, b = x;
        }
        break;
    }
    case 11: case 12: { /* a relative edge: (k u, (k + j) u) with j/(k+j) near rtol */
        double r = rtol > 0 && rtol < 0.5 ? rtol : 1e-3;
        double k = floor(1.0 / r) + (double)kt_below(s, 9) - 4.0;
        if (k < 1)
            k = 1;
        double j = 1 + (double)kt_below(s, 2);
        int e = (int)kt_below(s, 2 * bias) - (int)bias - f.mbits;
        a = kt_encode(dt, ldexp(k, e), 0);
        b = kt_encode(dt, ldexp(k + j, e), (int)(kt_rand(s) & 1));
        if (kt_rand(s) & 1) {
            uint64_t x = a;
            a = b, b = x;
        }
        break;
    }
    case 13: { /* exponent gaps around the largest gap whose float difference is exact */
        int p = f.mbits + 1, g = 24 - p - 3 + (int)kt_below(s, 7);
        uint64_t e = (kt_rand(s) & 1) ? bias - 2 - kt_below(s, 4) : emax - 2 - kt_below(s, 4);
        if (g < 0 || (uint64_t)g >= e)
            g = (int)(e / 2);
        a = kt_make(dt, (int)(kt_rand(s) & 1), e, kt_rand(s));
        b = kt_make(dt, (int)(kt_rand(s) & 1), e - (uint64_t)g, kt_rand(s));
        if (kt_rand(s) & 1) {
            uint64_t x = a;
            a = b, b = x;
        }
        break;
    }
    default: { /* weight-like: moderate exponents, equal or a few ulps apart */
        uint64_t e = bias - 1 - kt_below(s, bias < 12 ? bias : 12);
        a = kt_make(dt, (int)(kt_rand(s) & 1), e, kt_rand(s));
        int w = (int)kt_below(s, 10);
        b = w < 3 ? a : w < 9 ? a + kt_below(s, 7) - 3 : kt_make(dt, (int)(kt_rand(s) & 1), e, kt_rand(s));
        break;
    }
    }
    uint64_t mask = f.bits == 64 ? ~0ull : (1ull << f.bits) - 1;
    *xa = a & mask;
    *xb = b & mask;
}

/* n pairs of dtype dt into a and b (buffers of n elements); friendly: see kt_float_pair. */
static inline void kt_fill_mode(DType dt, uint64_t seed, const ScanConfig *cfg, int friendly,
                                uint8_t *a, uint8_t *b, size_t n)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    KtFormat f = kt_format(dt);
    for (size_t i = 0; i < n; i++) {
        uint64_t xa, xb;
        if (f.is_float) {
            kt_float_pair(dt, &s, cfg->tol, cfg->ntol, cfg->has_rtol ? cfg->rtol : 0.0, friendly, &xa, &xb);
        } else {
            xa = kt_rand(&s);
            int w = (int)kt_below(&s, 4);
            xb = w == 0 ? xa : w == 1 ? xa + kt_below(&s, 5) - 2 : kt_rand(&s);
            if (dt == DT_BOOL)
                xa &= 1, xb = kt_below(&s, 8) == 0 ? 2 : (xb & 1);
        }
        kt_put(dt, a, i, xa);
        kt_put(dt, b, i, xb);
    }
}

static inline void kt_fill(DType dt, uint64_t seed, const ScanConfig *cfg, uint8_t *a, uint8_t *b,
                           size_t n)
{
    kt_fill_mode(dt, seed, cfg, 0, a, b, n);
}

#endif
