/* The shared per-element functions of kernels/scan_elem.h (SS_HD: the CPU paths and the CUDA
 * kernels call the very same code) against an independent oracle, exhaustively where the dtype is
 * small, and against the CPU paths that call them:
 *   decode    scan_elem_bits and ss_decode for every BF16, F16, F8_E4M3 and F8_E5M2 bit pattern
 *   rule      scan_elem_mask_bit == scan_elem_changed == the oracle's changed, for every F8 pair
 *             and every BF16/F16 pattern against 12 partners (itself, neighbours, sign flips,
 *             zeros, infinities, NaN, random)
 *   bins      scan_elem_hist_bin against a frexp oracle on the same pairs (and F32/F64 randoms)
 *   paths     scan_block (the active SIMD path), scan_mask_block and scan_hist_block against sums of
 *             the element functions, on special-value-rich pairs of every dtype
 *   hist      scan_hist_block against scan_elem_hist_bin pair by pair, for every BF16 and F16
 *             pattern against partners at the edges of the vector path (scan_hist_avx512.c):
 *             exponent gaps 11 to 17, around its float-exactness limits (F16 13, BF16 16),
 *             opposite signs, zeros, subnormals, the largest values (a float difference that
 *             overflows), Inf and NaN;
 *             spread with runs of unchanged pairs of random length (batches that straddle groups
 *             and pieces, pieces with none), with and without a mask, from unaligned starts;
 *             F32 randoms likewise */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/scan.h"
#include "kernels/scan_elem.h"
#include "kt_util.h"

static int failures;

#define EXPECT(cond, ...)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            if (failures++ < 20) {                                                            \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                          \
                fprintf(stderr, __VA_ARGS__);                                                 \
                fprintf(stderr, "\n");                                                        \
            }                                                                                 \
        }                                                                                     \
    } while (0)

static int same_double(double x, double y)
{
    return (isnan(x) && isnan(y)) || (x == y && signbit(x) == signbit(y));
}

/* ---- decode ---- */

static void check_decode(DType dt)
{
    int bits = kt_format(dt).bits;
    uint8_t buf[8];
    for (uint64_t x = 0; x < (1ull << bits); x++) {
        kt_put(dt, buf, 0, x);
        EXPECT(scan_elem_bits(dt, buf, 0) == x, "%s bits %llx", dtype_name(dt),
               (unsigned long long)x);
        EXPECT(same_double(ss_decode(dt, buf, 0), kt_decode(dt, x)), "%s decode %llx: %g vs %g",
               dtype_name(dt), (unsigned long long)x, ss_decode(dt, buf, 0), kt_decode(dt, x));
    }
}

/* ---- the bins' oracle: frexp, d = fd 2^ed, fd in [0.5, 1) ---- */

static int oracle_bin(double a, double b, ScanElemBin *o)
{
    if (!isfinite(a) || !isfinite(b))
        return SCAN_BIN_NONFINITE;
    double d = fabs(b - a); /* the difference in double, as the rule takes it */
    if (d == 0)
        return SCAN_BIN_ZERO;
    double m = fmax(fabs(a), fabs(b));
    int ed, em;
    double fd = frexp(d, &ed), fm = frexp(m, &em);
    o->abs_e = ed - 1;
    o->abs_pow2 = fd == 0.5;
    o->rel_k = ed - em - (fd < fm);
    o->rel_pow2 = fd == fm;
    return SCAN_BIN_OK;
}

/* One pair of stored bits through every element function, checked against the oracles. */
static void check_pair(DType dt, uint64_t xa, uint64_t xb)
{
    uint8_t ba[8], bb[8];
    kt_put(dt, ba, 0, xa);
    kt_put(dt, bb, 0, xb);
    double da = ss_decode(dt, ba, 0), db = ss_decode(dt, bb, 0);
    double oa = kt_decode(dt, xa), ob = kt_decode(dt, xb);
    int want = xa != xb && !(kt_format(dt).is_float && oa == 0.0 && ob == 0.0);
    int bit = scan_elem_mask_bit(dt, xa, xb);
    int ch = scan_elem_changed(dtype_is_float(dt), xa, xb, da, db);
    EXPECT(bit == want && ch == want, "%s rule %llx %llx: mask %d changed %d oracle %d",
           dtype_name(dt), (unsigned long long)xa, (unsigned long long)xb, bit, ch, want);
    if (!want)
        return;
    ScanElemBin got = {0, 0, 0, 0}, exp = {0, 0, 0, 0};
    int kg = scan_elem_hist_bin(da, db, &got), ke = oracle_bin(oa, ob, &exp);
    if (dt == DT_F64 && ke == SCAN_BIN_OK && isinf(ob - oa))
        return; /* the difference overflows: the rule halves it (tests/hist covers that) */
    EXPECT(kg == ke && (kg != SCAN_BIN_OK || (got.abs_e == exp.abs_e && got.rel_k == exp.rel_k &&
                                              got.abs_pow2 == exp.abs_pow2 &&
                                              got.rel_pow2 == exp.rel_pow2)),
           "%s bins %llx %llx: kind %d/%d abs %d/%d p%u/%u rel %d/%d p%u/%u", dtype_name(dt),
           (unsigned long long)xa, (unsigned long long)xb, kg, ke, got.abs_e, exp.abs_e,
           got.abs_pow2, exp.abs_pow2, got.rel_k, exp.rel_k, got.rel_pow2, exp.rel_pow2);
}

static void check_rule_exhaustive(void)
{
    const DType f8[] = {DT_F8_E4M3, DT_F8_E5M2, DT_U8, DT_I8, DT_BOOL};
    for (size_t d = 0; d < sizeof f8 / sizeof *f8; d++)
        for (uint64_t x = 0; x < 256; x++)
            for (uint64_t y = 0; y < 256; y++)
                check_pair(f8[d], x, y);
    const DType h[] = {DT_BF16, DT_F16, DT_I16, DT_U16};
    uint64_t s = 12345;
    for (size_t d = 0; d < sizeof h / sizeof *h; d++) {
        uint64_t inf = h[d] == DT_BF16 ? 0x7f80 : 0x7c00, nan = inf | 1;
        for (uint64_t x = 0; x < 65536; x++) {
            uint64_t partners[] = {x,         (x + 1) & 0xffff, (x - 1) & 0xffff, x ^ 0x8000,
                                   0,         0x8000,           inf,              inf | 0x8000,
                                   nan,       kt_rand(&s) & 0xffff, (x + 7) & 0xffff,
                                   (x ^ 0x0400) & 0xffff};
            for (size_t p = 0; p < sizeof partners / sizeof *partners; p++)
                check_pair(h[d], x, partners[p]);
        }
    }
    /* F32 and F64: random pairs near each other, zeros and subnormals, with the same oracle */
    for (int i = 0; i < 400000; i++) {
        uint64_t x = kt_rand(&s), y = i % 3 ? x + kt_below(&s, 9) - 4 : kt_rand(&s);
        if (i % 17 == 0)
            x &= 0x80000000000fffffull, y &= 0x80000000000fffffull;
        check_pair(DT_F32, x & 0xffffffffu, y & 0xffffffffu);
        check_pair(DT_F64, x, y);
    }
}

/* ---- the CPU paths against sums of the element functions ---- */

static void check_paths(DType dt, uint64_t seed)
{
    const size_t n = 20000 + (size_t)(seed % 64);
    ScanConfig cfg = {4, {0.0, 1e-6, 1e-3, 0.5}, 1, 1e-3};
    size_t es = dtype_size(dt);
    uint8_t *a = malloc(n * es), *b = malloc(n * es);
    uint8_t *mask = malloc(n / 8 + 1), *want_mask = calloc(n / 8 + 1, 1);
    ScanHist hist, want_hist;
    if (!a || !b || !mask || !want_mask ||
        scan_hist_init(&hist, scan_hist_dtype_range(dt)) ||
        scan_hist_init(&want_hist, scan_hist_dtype_range(dt))) {
        fprintf(stderr, "out of memory\n");
        exit(KT_FAIL);
    }
    kt_fill(dt, seed, &cfg, a, b, n);

    ScanCounts got, want;
    scan_counts_init(&got);
    scan_counts_init(&want);
    double sq_d = 0, sq_a = 0;
    const int is_float = dtype_is_float(dt);
    ScanHistRange r = hist.range;
    for (size_t i = 0; i < n; i++) {
        uint64_t xa = scan_elem_bits(dt, a, i), xb = scan_elem_bits(dt, b, i);
        double da = ss_decode(dt, a, i), db = ss_decode(dt, b, i);
        int ch = scan_elem_changed(is_float, xa, xb, da, db);
        scan_elem_account(&cfg, ch, da, db, &want, &sq_d, &sq_a);
        want.numel++;
        want_mask[i / 8] |= (uint8_t)(scan_elem_mask_bit(dt, xa, xb) << (i % 8));
        if (!ch)
            continue;
        ScanElemBin bin;
        int kind = scan_elem_hist_bin(da, db, &bin);
        if (kind == SCAN_BIN_NONFINITE)
            want_hist.nonfinite_changed++;
        else if (kind == SCAN_BIN_ZERO)
            want_hist.zero_delta++;
        else {
            want_hist.abs_count[bin.abs_e - r.abs_lo]++;
            want_hist.abs_pow2[bin.abs_e - r.abs_lo] += bin.abs_pow2;
            want_hist.rel_count[bin.rel_k - r.rel_lo]++;
            want_hist.rel_pow2[bin.rel_k - r.rel_lo] += bin.rel_pow2;
        }
    }
    want.sum_sq_delta = sq_d;
    want.sum_sq_a = sq_a;

    scan_block(&cfg, dt, a, b, n, &got);
    char what[96];
    snprintf(what, sizeof what, "scan_block[%s] %s seed %llu", scan_isa_name(), dtype_name(dt),
             (unsigned long long)seed);
    if (!kt_same(what, &cfg, &got, &want, 1e-9))
        failures++;
    scan_mask_block(dt, a, b, n, mask);
    EXPECT(memcmp(mask, want_mask, (n + 7) / 8) == 0, "mask %s seed %llu", dtype_name(dt),
           (unsigned long long)seed);
    scan_hist_block(dt, a, b, n, NULL, &hist);
    size_t words = 2 * (size_t)(r.abs_hi - r.abs_lo + 1) + 2 * (size_t)(r.rel_hi - r.rel_lo + 1);
    EXPECT(memcmp(hist.buf, want_hist.buf, words * sizeof *hist.buf) == 0 &&
               hist.nonfinite_changed == want_hist.nonfinite_changed &&
               hist.zero_delta == want_hist.zero_delta,
           "hist %s seed %llu", dtype_name(dt), (unsigned long long)seed);
    scan_hist_free(&hist);
    scan_hist_free(&want_hist);
    free(a);
    free(b);
    free(mask);
    free(want_mask);
}

/* ---- scan_hist_block pair by pair, at the vector path's edges ---- */

/* The histogram of the changed pairs of [0, n) by the rule, pair by pair. */
static void hist_by_rule(DType dt, const uint8_t *a, const uint8_t *b, size_t n, ScanHist *h)
{
    ScanHistRange r = h->range;
    for (size_t i = 0; i < n; i++) {
        if (!scan_elem_mask_bit(dt, scan_elem_bits(dt, a, i), scan_elem_bits(dt, b, i)))
            continue;
        ScanElemBin bin;
        int kind = scan_elem_hist_bin(ss_decode(dt, a, i), ss_decode(dt, b, i), &bin);
        if (kind == SCAN_BIN_NONFINITE) {
            h->nonfinite_changed++;
        } else if (kind == SCAN_BIN_ZERO) {
            h->zero_delta++;
        } else {
            h->abs_count[bin.abs_e - r.abs_lo]++;
            h->abs_pow2[bin.abs_e - r.abs_lo] += bin.abs_pow2;
            h->rel_count[bin.rel_k - r.rel_lo]++;
            h->rel_pow2[bin.rel_k - r.rel_lo] += bin.rel_pow2;
        }
    }
}

static int hist_same(const ScanHist *x, const ScanHist *y)
{
    ScanHistRange r = x->range;
    size_t words = 2 * (size_t)(r.abs_hi - r.abs_lo + 1) + 2 * (size_t)(r.rel_hi - r.rel_lo + 1);
    return memcmp(x->buf, y->buf, words * sizeof *x->buf) == 0 &&
           x->nonfinite_changed == y->nonfinite_changed && x->zero_delta == y->zero_delta;
}

/* scan_hist_block over [off, off + len) of a, b (NULL mask, and the mask of that range when off
 * is a multiple of 8) against hist_by_rule. */
static void check_hist_range(DType dt, const uint8_t *a, const uint8_t *b, size_t off, size_t len,
                             const char *what)
{
    size_t es = dtype_size(dt);
    const uint8_t *pa = a + off * es, *pb = b + off * es;
    ScanHist got, want, masked;
    uint8_t *mask = malloc(len / 8 + 8);
    if (!mask || scan_hist_init(&got, scan_hist_dtype_range(dt)) ||
        scan_hist_init(&want, scan_hist_dtype_range(dt)) ||
        scan_hist_init(&masked, scan_hist_dtype_range(dt))) {
        fprintf(stderr, "out of memory\n");
        exit(KT_FAIL);
    }
    hist_by_rule(dt, pa, pb, len, &want);
    scan_hist_block(dt, pa, pb, len, NULL, &got);
    EXPECT(hist_same(&got, &want), "hist %s %s off %zu len %zu, no mask", dtype_name(dt), what,
           off, len);
    scan_mask_block(dt, pa, pb, len, mask);
    scan_hist_block(dt, pa, pb, len, mask, &masked);
    EXPECT(hist_same(&masked, &want), "hist %s %s off %zu len %zu, mask", dtype_name(dt), what,
           off, len);
    scan_hist_free(&got);
    scan_hist_free(&want);
    scan_hist_free(&masked);
    free(mask);
}

/* Every 16-bit pattern x of dt against partners at the vector path's edges, each changed pair
 * followed by 0 to maxrun - 1 unchanged ones. */
static void check_hist_edges16(DType dt, uint64_t maxrun)
{
    const int mb = dt == DT_BF16 ? 7 : 10; /* significand bits */
    const uint64_t top = dt == DT_BF16 ? 0x7f7f : 0x7bff, sub = 1;
    const uint64_t inf = dt == DT_BF16 ? 0x7f80 : 0x7c00;
    uint64_t gaps[] = {11, 12, 13, 14, 15, 16, 17};
    size_t cap = 65536 * 32 * maxrun + 5064, n = 0;
    uint8_t *a = malloc(cap * 2), *b = malloc(cap * 2);
    if (!a || !b) {
        fprintf(stderr, "out of memory\n");
        exit(KT_FAIL);
    }
    uint64_t s = 777 + (uint64_t)dt;
    for (uint64_t x = 0; x < 65536; x++) {
        uint64_t p[32];
        size_t np = 0;
        for (size_t g = 0; g < sizeof gaps / sizeof *gaps; g++) {
            uint64_t e = gaps[g] << mb, pick = kt_rand(&s);
            p[np++] = (x + e + (pick & ((1u << mb) - 1))) & 0xffff; /* same sign, gap g */
            p[np++] = ((x - e) ^ 0x8000) & 0xffff;                  /* opposite sign, gap g */
        }
        uint64_t more[] = {x ^ 0x8000, (x + 1) & 0xffff, top, top | 0x8000, sub, sub | 0x8000,
                           0, 0x8000, inf, inf | 1, kt_rand(&s) & 0xffff};
        for (size_t j = 0; j < sizeof more / sizeof *more; j++)
            p[np++] = more[j];
        for (size_t j = 0; j < np; j++) {
            kt_put(dt, a, n, x);
            kt_put(dt, b, n, p[j]);
            n++;
            for (uint64_t run = kt_below(&s, maxrun); run; run--, n++) {
                uint64_t y = kt_rand(&s) & 0xffff;
                kt_put(dt, a, n, y);
                kt_put(dt, b, n, y);
            }
        }
    }
    for (uint64_t run = 0; run < 5000; run++, n++) /* a long unchanged tail: empty pieces */
        kt_put(dt, a, n, 0x3f80), kt_put(dt, b, n, 0x3f80);
    char what[32];
    snprintf(what, sizeof what, "edges run<%llu", (unsigned long long)maxrun);
    check_hist_range(dt, a, b, 0, n, what);
    check_hist_range(dt, a, b, 3, n - 3 - 17, what); /* unaligned, partial groups at both ends */
    for (size_t len = 1; len < 200; len += 7) /* short: partial batches only */
        check_hist_range(dt, a, b, 8 * len, len, what);
    free(a);
    free(b);
}

/* F32 randoms: near pairs, far pairs, zeros, subnormals, Inf and NaN, spread out likewise. */
static void check_hist_f32(void)
{
    const size_t n = 300000;
    uint8_t *a = malloc(n * 4), *b = malloc(n * 4);
    if (!a || !b) {
        fprintf(stderr, "out of memory\n");
        exit(KT_FAIL);
    }
    uint64_t s = 4242;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = kt_rand(&s) & 0xffffffffu, y;
        switch (kt_below(&s, 8)) {
        case 0: y = kt_rand(&s) & 0xffffffffu; break;
        case 1: y = (x + kt_below(&s, 9) - 4) & 0xffffffffu; break;
        case 2: x &= 0x807fffffu, y = kt_rand(&s) & 0x807fffffu; break; /* subnormals, zeros */
        case 3: y = x ^ 0x80000000u; break;
        case 4: y = 0x7f800000u | (kt_rand(&s) & 1); break;            /* Inf, NaN */
        default: y = x; break;
        }
        kt_put(DT_F32, a, i, x);
        kt_put(DT_F32, b, i, y);
    }
    check_hist_range(DT_F32, a, b, 0, n, "random");
    check_hist_range(DT_F32, a, b, 5, n - 5 - 9, "random");
    free(a);
    free(b);
}

int main(void)
{
    const DType small[] = {DT_BF16, DT_F16, DT_F8_E4M3, DT_F8_E5M2};
    for (size_t i = 0; i < sizeof small / sizeof *small; i++)
        check_decode(small[i]);
    check_rule_exhaustive();
    for (int dt = 0; dt < DT_COUNT; dt++)
        for (uint64_t seed = 1; seed <= 3; seed++)
            check_paths((DType)dt, seed * 101 + (uint64_t)dt);
    for (uint64_t maxrun = 1; maxrun <= 64; maxrun *= 8) {
        check_hist_edges16(DT_BF16, maxrun);
        check_hist_edges16(DT_F16, maxrun);
    }
    check_hist_f32();
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return KT_FAIL;
    }
    printf("scan_elem: shared element functions agree with the oracle and the CPU paths (%s)\n",
           scan_isa_name());
    return KT_PASS;
}
