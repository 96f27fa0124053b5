/* The tolerance-curve histograms (kernels/scan_hist.c) against a brute-force reference written
 * from the definition with long double arithmetic and the independent decoder of
 * tests/kernels/kt_util.h, for every dtype, on pairs rich in the cases that matter: powers of two
 * exactly (b = 2a, b = 0, sign flips, one-ulp steps), subnormals, +0/-0, NaN and Inf (excluded
 * from the bins, counted in nonfinite_changed), the largest values (F64 differences that overflow),
 * huge exponent gaps, 64-bit integers that decode to one double (zero_delta).
 * Then: changed_at_pow2(k) equals scan_block's changed_tol at tol = 2^k for every k of the range,
 * and the rel curve equals changed_rtol at rtol = 2^k (dtypes where 2^k * max(|a|,|b|) cannot be
 * subnormal); every changed pair is in exactly one of bins, nonfinite_changed, zero_delta; and
 * scan_jobs_cpu_ext over several 2^20-element chunks, with and without masks, 1, 2 and 3 threads,
 * equals the single-block histogram, with counts equal to scan_jobs_cpu's. A NULL mask (found
 * inside) and a sub-mask (only its elements binned) work on every path; run with SS_SCAN_ISA
 * forced to each level by meson.
 * Exit 0 pass, 1 fail. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ss_error.h"
#include "kernels/scan.h"
#include "tests/kernels/kt_util.h"

static int fails;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            fails++;                                       \
            if (fails < 30) {                              \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                fprintf(stderr, __VA_ARGS__);              \
                fputc('\n', stderr);                       \
            }                                              \
        }                                                  \
    } while (0)

/* ---- reference ---- */

static int ref_changed(DType dt, uint64_t xa, uint64_t xb)
{
    if (xa == xb)
        return 0;
    return !(kt_format(dt).is_float && kt_decode(dt, xa) == 0.0 && kt_decode(dt, xb) == 0.0);
}

/* Bins one changed pair into h (range big enough), from the definition. */
static void ref_pair(DType dt, uint64_t xa, uint64_t xb, ScanHist *h)
{
    double da = kt_decode(dt, xa), db = kt_decode(dt, xb);
    if (!isfinite(da) || !isfinite(db)) {
        h->nonfinite_changed++;
        return;
    }
    double dd = fabs(db - da);
    long double d = dd;
    if (isinf(dd)) /* the double difference with an unbounded exponent */
        d = 2.0L * (long double)fabs(db * 0.5 - da * 0.5);
    if (d == 0) {
        h->zero_delta++;
        return;
    }
    long double m = fmaxl(fabsl((long double)da), fabsl((long double)db));
    int e = ilogbl(d);
    while (ldexpl(1.0L, e) > d)
        e--;
    while (ldexpl(1.0L, e + 1) <= d)
        e++;
    h->abs_count[e - h->range.abs_lo]++;
    h->abs_pow2[e - h->range.abs_lo] += d == ldexpl(1.0L, e);
    int k = ilogbl(d) - ilogbl(m);
    while (ldexpl(m, k) > d)
        k--;
    while (ldexpl(m, k + 1) <= d)
        k++;
    h->rel_count[k - h->range.rel_lo]++;
    h->rel_pow2[k - h->range.rel_lo] += d == ldexpl(m, k);
}

static int hist_equal(const ScanHist *x, const ScanHist *y)
{
    if (x->nonfinite_changed != y->nonfinite_changed || x->zero_delta != y->zero_delta)
        return 0;
    ScanHistRange r = scan_hist_range_union(x->range, y->range);
    for (int32_t e = r.abs_lo; e <= r.abs_hi; e++)
        if (scan_hist_abs_count(x, e) != scan_hist_abs_count(y, e) ||
            scan_hist_abs_pow2(x, e) != scan_hist_abs_pow2(y, e))
            return 0;
    for (int32_t k = r.rel_lo; k <= r.rel_hi; k++)
        if (scan_hist_rel_count(x, k) != scan_hist_rel_count(y, k) ||
            scan_hist_rel_pow2(x, k) != scan_hist_rel_pow2(y, k))
            return 0;
    return 1;
}

/* ---- generators ---- */

static uint64_t gen_float(DType dt, uint64_t *s)
{
    KtFormat f = kt_format(dt);
    uint64_t emax = (1ull << f.ebits) - 1, all = f.bits == 64 ? ~0ull : (1ull << f.bits) - 1;
    int sign = (int)(kt_rand(s) & 1);
    switch (kt_below(s, 8)) {
    case 0: return kt_rand(s) & all;                                   /* anything */
    case 1: return kt_make(dt, sign, 0, kt_rand(s));                   /* subnormal or zero */
    case 2: return kt_make(dt, sign, 1 + kt_below(s, emax - 1), 0);    /* a power of two */
    case 3: return kt_make(dt, sign, emax - 1 - kt_below(s, 2), kt_rand(s)); /* huge */
    case 4: return kt_make(dt, sign, 0, 0);                             /* +-0 */
    default: return kt_make(dt, sign, 1 + kt_below(s, emax - 1), kt_rand(s));
    }
}

/* b from a: the same, a step, a sign flip, 2a, 0, or independent. */
static uint64_t gen_partner(DType dt, uint64_t *s, uint64_t a)
{
    KtFormat f = kt_format(dt);
    uint64_t all = f.bits == 64 ? ~0ull : (1ull << f.bits) - 1;
    uint64_t sign = 1ull << (f.bits - 1);
    switch (kt_below(s, 9)) {
    case 0: return a;
    case 1: return (a + 1) & all;
    case 2: return (a - 1) & all;
    case 3: return a ^ sign;
    case 4: return f.is_float ? (a + (1ull << f.mbits)) & all : (a << 1) & all; /* 2a */
    case 5: return 0;
    case 6: return a ^ (1ull << kt_below(s, (uint64_t)f.bits));
    default: return f.is_float ? gen_float(dt, s) : kt_rand(s) & all;
    }
}

static void fill(DType dt, uint64_t seed, uint8_t *a, uint8_t *b, size_t n)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 12345;
    KtFormat f = kt_format(dt);
    uint64_t all = f.bits == 64 ? ~0ull : (1ull << f.bits) - 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t xa;
        if (f.is_float)
            xa = gen_float(dt, &s);
        else if (dt == DT_BOOL)
            xa = kt_below(&s, 2);
        else
            xa = kt_below(&s, 3) ? kt_rand(&s) & all : (1ull << kt_below(&s, (uint64_t)f.bits));
        uint64_t xb = gen_partner(dt, &s, xa);
        if (dt == DT_BOOL)
            xb &= 1;
        kt_put(dt, a, i, xa);
        kt_put(dt, b, i, xb);
    }
    if (dt == DT_I64 && n >= 2) { /* 2^60 and 2^60 + 1 decode to one double */
        kt_put(dt, a, 0, 1ull << 60);
        kt_put(dt, b, 0, (1ull << 60) + 1);
    }
    if (dt == DT_F64 && n >= 4) { /* -max vs max: the difference overflows; and 2^1023 vs -2^1023 */
        kt_put(dt, a, 1, kt_max_finite(dt) | (1ull << 63));
        kt_put(dt, b, 1, kt_max_finite(dt));
        kt_put(dt, a, 2, kt_make(dt, 1, 2046, 0));
        kt_put(dt, b, 2, kt_make(dt, 0, 2046, 0));
        kt_put(dt, a, 3, 1); /* the smallest subnormal vs the largest value */
        kt_put(dt, b, 3, kt_max_finite(dt));
    }
}

/* ---- checks ---- */

static void check_block(DType dt, size_t n, uint64_t seed)
{
    size_t es = dtype_size(dt);
    uint8_t *a = malloc(n * es + 1), *b = malloc(n * es + 1), *mask = malloc(n / 8 + 2);
    fill(dt, seed, a, b, n);
    scan_mask_block(dt, a, b, n, mask);
    ScanHistRange r = scan_hist_dtype_range(dt);
    ScanHist got, want, wide;
    CHECK(scan_hist_init(&got, r) == 0, "init");
    CHECK(scan_hist_init(&want, r) == 0, "init");
    scan_hist_block(dt, a, b, n, mask, &got);
    uint64_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t xa = kt_get(dt, a, i), xb = kt_get(dt, b, i);
        if (ref_changed(dt, xa, xb)) {
            changed++;
            ref_pair(dt, xa, xb, &want);
        }
    }
    CHECK(hist_equal(&got, &want), "%s n=%zu seed=%llu: histogram differs from the reference",
          dtype_name(dt), n, (unsigned long long)seed);
    ScanHist nomask; /* mask NULL: the changed elements found by scan_hist_block itself */
    CHECK(scan_hist_init(&nomask, r) == 0, "init");
    scan_hist_block(dt, a, b, n, NULL, &nomask);
    CHECK(hist_equal(&nomask, &want), "%s n=%zu: histogram without a mask differs", dtype_name(dt),
          n);
    scan_hist_free(&nomask);
    if (n > 40) { /* a sub-mask: only the elements of the even mask bytes */
        uint8_t *half = malloc(n / 8 + 2);
        ScanHist hs, hr;
        memcpy(half, mask, (n + 7) / 8);
        for (size_t i = 1; i < (n + 7) / 8; i += 2)
            half[i] = 0;
        scan_hist_init(&hs, r);
        scan_hist_init(&hr, r);
        scan_hist_block(dt, a, b, n, half, &hs);
        for (size_t i = 0; i < n; i++)
            if (half[i / 8] >> (i % 8) & 1)
                ref_pair(dt, kt_get(dt, a, i), kt_get(dt, b, i), &hr);
        CHECK(hist_equal(&hs, &hr), "%s n=%zu: histogram of a sub-mask differs", dtype_name(dt), n);
        scan_hist_free(&hs);
        scan_hist_free(&hr);
        free(half);
    }
    uint64_t binned = 0, rel_binned = 0;
    for (int32_t e = r.abs_lo; e <= r.abs_hi; e++)
        binned += scan_hist_abs_count(&got, e);
    for (int32_t k = r.rel_lo; k <= r.rel_hi; k++)
        rel_binned += scan_hist_rel_count(&got, k);
    CHECK(binned + got.nonfinite_changed + got.zero_delta == changed && rel_binned == binned,
          "%s: bins %llu + nonfinite %llu + zero %llu != changed %llu", dtype_name(dt),
          (unsigned long long)binned, (unsigned long long)got.nonfinite_changed,
          (unsigned long long)got.zero_delta, (unsigned long long)changed);

    /* a wider histogram gives the same bins; merge adds them */
    ScanHistRange rw = scan_hist_range_union(r, scan_hist_dtype_range(DT_F64));
    CHECK(scan_hist_init(&wide, rw) == 0, "init");
    CHECK(scan_hist_merge(&wide, &got) == 0 && hist_equal(&wide, &got), "%s: merge", dtype_name(dt));
    CHECK(dt == DT_F64 || scan_hist_merge(&got, &wide) != 0, "%s: merge into a narrower range",
          dtype_name(dt));

    /* changed_at_pow2 and the rel curve against the scan's own tolerance rule */
    int rel_ok = dt != DT_F64; /* F64: 2^k * m can be subnormal, the scan's product then rounds */
    for (int32_t k0 = r.abs_lo - 1; k0 <= r.abs_hi + 1; k0 += SCAN_MAX_TOL) {
        ScanConfig cfg = {0};
        for (int32_t k = k0; k < k0 + SCAN_MAX_TOL && k <= r.abs_hi + 1 && k < 1024; k++)
            cfg.tol[cfg.ntol++] = ldexp(1.0, k); /* 2^1024 is no double */
        ScanCounts c;
        scan_counts_init(&c);
        scan_block(&cfg, dt, a, b, n, &c);
        CHECK(c.changed == changed, "%s: changed %llu vs reference %llu", dtype_name(dt),
              (unsigned long long)c.changed, (unsigned long long)changed);
        for (size_t t = 0; t < cfg.ntol; t++)
            CHECK(scan_hist_changed_at_pow2(&got, k0 + (int32_t)t) == c.changed_tol[t],
                  "%s: changed_at_pow2(%d) = %llu, scan says %llu", dtype_name(dt),
                  k0 + (int)t, (unsigned long long)scan_hist_changed_at_pow2(&got, k0 + (int32_t)t),
                  (unsigned long long)c.changed_tol[t]);
    }
    for (int32_t k = r.rel_lo - 1; rel_ok && k <= r.rel_hi + 1; k++) {
        ScanConfig cfg = {.has_rtol = 1, .rtol = ldexp(1.0, k)};
        ScanCounts c;
        scan_counts_init(&c);
        scan_block(&cfg, dt, a, b, n, &c);
        uint64_t from_hist = got.nonfinite_changed - scan_hist_rel_pow2(&got, k);
        for (int32_t j = k; j <= r.rel_hi; j++)
            from_hist += scan_hist_rel_count(&got, j);
        CHECK(from_hist == c.changed_rtol, "%s: rel curve at 2^%d = %llu, scan says %llu",
              dtype_name(dt), k, (unsigned long long)from_hist,
              (unsigned long long)c.changed_rtol);
    }
    scan_hist_free(&got);
    scan_hist_free(&want);
    scan_hist_free(&wide);
    free(a);
    free(b);
    free(mask);
}

/* scan_jobs_cpu_ext over chunks and threads equals one scan_hist_block over each whole job. */
static void check_jobs(void)
{
    const DType dts[3] = {DT_BF16, DT_F32, DT_F64};
    const size_t ns[3] = {3 * SCAN_CHUNK_ELEMS + 77, SCAN_CHUNK_ELEMS + 5, 1000};
    ScanJob jobs[3];
    uint8_t *bufs[6], *masks[3];
    ScanHist ref[3];
    for (int j = 0; j < 3; j++) {
        size_t es = dtype_size(dts[j]);
        bufs[2 * j] = malloc(ns[j] * es);
        bufs[2 * j + 1] = malloc(ns[j] * es);
        masks[j] = malloc(ns[j] / 8 + 1);
        fill(dts[j], 100 + (uint64_t)j, bufs[2 * j], bufs[2 * j + 1], ns[j]);
        jobs[j] = (ScanJob){dts[j], bufs[2 * j], bufs[2 * j + 1], ns[j]};
        uint8_t *m = malloc(ns[j] / 8 + 1);
        scan_mask_block(dts[j], bufs[2 * j], bufs[2 * j + 1], ns[j], m);
        scan_hist_init(&ref[j], scan_hist_dtype_range(dts[j]));
        scan_hist_block(dts[j], bufs[2 * j], bufs[2 * j + 1], ns[j], m, &ref[j]);
        free(m);
    }
    ScanConfig cfg = {.ntol = 2, .tol = {1e-5, 0}, .has_rtol = 1, .rtol = 1e-3};
    ScanCounts base[3], got[3];
    CHECK(scan_jobs_cpu(&cfg, jobs, 3, 1, base, NULL, NULL) == 0, "scan_jobs_cpu");
    for (int threads = 1; threads <= 3; threads++)
        for (int with_masks = 0; with_masks < 2; with_masks++) {
            ScanHist h[3];
            ScanHist *hp[3] = {&h[0], NULL, &h[2]}; /* job 1 without a histogram */
            for (int j = 0; j < 3; j++) /* job 2 in a wider range than it needs */
                scan_hist_init(&h[j], j == 2 ? scan_hist_range_union(scan_hist_dtype_range(DT_F64),
                                                                    scan_hist_dtype_range(DT_U8))
                                             : scan_hist_dtype_range(dts[j]));
            int rc = scan_jobs_cpu_ext(&cfg, jobs, with_masks ? masks : NULL, hp, 3, threads, got,
                                       NULL, NULL);
            CHECK(rc == 0, "scan_jobs_cpu_ext rc %d", rc);
            CHECK(hist_equal(&h[0], &ref[0]) && hist_equal(&h[2], &ref[2]),
                  "threads %d masks %d: job histograms differ from scan_hist_block", threads,
                  with_masks);
            CHECK(h[1].nonfinite_changed == 0 && scan_hist_abs_used(&h[1], &(int32_t){0},
                                                                    &(int32_t){0}) == 0,
                  "a job without a histogram pointer was filled");
            CHECK(memcmp(got, base, sizeof got) == 0, "threads %d: counts differ", threads);
            for (int j = 0; j < 3; j++)
                scan_hist_free(&h[j]);
        }
    /* a histogram too narrow for its job's dtype is refused */
    ScanHist narrow;
    scan_hist_init(&narrow, scan_hist_dtype_range(DT_BF16));
    ScanHist *np[3] = {NULL, NULL, &narrow};
    CHECK(scan_jobs_cpu_ext(&cfg, jobs, NULL, np, 3, 2, got, NULL, NULL) == SS_EUSAGE,
          "narrow range accepted");
    scan_hist_free(&narrow);
    for (int j = 0; j < 3; j++) {
        free(bufs[2 * j]);
        free(bufs[2 * j + 1]);
        free(masks[j]);
        scan_hist_free(&ref[j]);
    }
}

int main(void)
{
    for (DType dt = 0; dt < DT_COUNT; dt++) {
        check_block(dt, 4099, 1 + (uint64_t)dt);
        check_block(dt, 64, 50 + (uint64_t)dt);
        check_block(dt, 7, 90 + (uint64_t)dt);
    }
    ScanHist bad;
    CHECK(scan_hist_init(&bad, (ScanHistRange){5, 4, 0, 1}) == SS_EUSAGE && !bad.buf,
          "reversed range accepted");
    check_jobs();
    if (fails) {
        fprintf(stderr, "test_scan_hist: %d failure(s)\n", fails);
        return KT_FAIL;
    }
    printf("test_scan_hist: ok\n");
    return KT_PASS;
}
