/* CPU scan front door: ScanCounts helpers, the per-call thresholds of the SIMD paths, and the run
 * time choice of SIMD path (CPU features, overridable once per process with SS_SCAN_ISA). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/scan.h"
#include "kernels/scan_isa.h"

void scan_counts_init(ScanCounts *c)
{
    memset(c, 0, sizeof *c);
}

void scan_counts_merge(ScanCounts *dst, const ScanCounts *src)
{
    dst->numel += src->numel;
    dst->changed += src->changed;
    dst->nonfinite += src->nonfinite;
    for (size_t k = 0; k < SCAN_MAX_TOL; k++)
        dst->changed_tol[k] += src->changed_tol[k];
    dst->changed_rtol += src->changed_rtol;
    if (src->max_abs_delta > dst->max_abs_delta)
        dst->max_abs_delta = src->max_abs_delta;
    dst->sum_sq_delta += src->sum_sq_delta;
    dst->sum_sq_a += src->sum_sq_a;
}

/* Largest float <= x, for x >= 0 (FLT_MAX for finite x beyond it, +Inf for +Inf). */
static float prep_float_down(double x)
{
    float f = (float)x;
    if ((double)f > x)
        f = nextafterf(f, 0.0f);
    return f;
}

/* Smallest float >= x, for x >= 0. */
static float prep_float_up(double x)
{
    float f = (float)x;
    if ((double)f < x)
        f = nextafterf(f, INFINITY);
    return f;
}

int scan_half_rtol_mode(int kind, const ScanConfig *cfg)
{
    static const double limit[] = {[HALF_BF16] = 0x1p-9, [HALF_F16] = 0x1p-12,
                                   [HALF_E4M3] = 0x1p-5, [HALF_E5M2] = 0x1p-4};
    if (!cfg->has_rtol)
        return RTOL_NONE;
    return cfg->rtol <= limit[kind] ? RTOL_IS_CHANGED : RTOL_BOUNDS;
}

void scan_prep_init(ScanPrep *p, const ScanConfig *cfg)
{
    memset(p, 0, sizeof *p);
    p->cfg = cfg;
    p->simd_ok = cfg->ntol <= SCAN_MAX_TOL;
    for (size_t k = 0; k < cfg->ntol && p->simd_ok; k++) {
        if (!(cfg->tol[k] >= 0.0)) { /* negative or NaN: only the literal rule is right */
            p->simd_ok = 0;
            break;
        }
        float t = prep_float_down(cfg->tol[k]);
        memcpy(&p->tol_dn[k], &t, sizeof t);
    }
    if (cfg->has_rtol) {
        if (!(cfg->rtol >= 0.0))
            p->simd_ok = 0;
        p->rtol_dn = prep_float_down(cfg->rtol);
        p->rtol_up = prep_float_up(cfg->rtol);
        p->rtol_near = (float)cfg->rtol;
        p->rtol_near_ok = cfg->rtol >= 0x1p-100 && cfg->rtol <= 1.0;
    }
}

/* ---- choosing the path ---------------------------------------------------------------------- */

static ScanIsa isa_best = SCAN_ISA_PORTABLE, isa_active = SCAN_ISA_PORTABLE;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

static void isa_detect(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        isa_best = SCAN_ISA_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        isa_best = SCAN_ISA_AVX2;
    isa_active = isa_best;
    /* SS_SCAN_ISA forces a level this CPU has; an unknown or unsupported name is ignored. */
    const char *force = getenv("SS_SCAN_ISA");
    if (force) {
        ScanIsa want = isa_best;
        if (strcmp(force, "portable") == 0)
            want = SCAN_ISA_PORTABLE;
        else if (strcmp(force, "avx2") == 0)
            want = SCAN_ISA_AVX2;
        else if (strcmp(force, "avx512") == 0)
            want = SCAN_ISA_AVX512;
        if (want <= isa_best)
            isa_active = want;
    }
}

ScanIsa scan_isa_best(void)
{
    pthread_once(&isa_once, isa_detect);
    return isa_best;
}

ScanIsa scan_isa_active(void)
{
    pthread_once(&isa_once, isa_detect);
    return isa_active;
}

const char *scan_isa_name(void)
{
    switch (scan_isa_active()) {
    case SCAN_ISA_AVX512: return "avx512";
    case SCAN_ISA_AVX2: return "avx2";
    default: return "portable";
    }
}

void scan_block(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t n,
                ScanCounts *out)
{
    switch (scan_isa_active()) {
    case SCAN_ISA_AVX512: scan_block_avx512(cfg, dt, a, b, n, out); break;
    case SCAN_ISA_AVX2: scan_block_avx2(cfg, dt, a, b, n, out); break;
    default: scan_block_portable(cfg, dt, a, b, n, out); break;
    }
}
