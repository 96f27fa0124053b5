/* Every SIMD path this CPU has (scan_block_avx2, scan_block_avx512) against scan_block_portable,
 * for every dtype and several configurations, on pairs rich in special values (+0/-0, NaNs with
 * equal and different bits, infinities, subnormals, the largest magnitudes, huge exponent gaps,
 * differences at and one step around each tolerance and rtol, exponent gaps around the largest
 * exact one), once dense in hard cases and once mostly made of what the vector code computes
 * itself (so that it, not the portable fallback, is what gets compared), at odd lengths and
 * unaligned addresses: counts must be equal, sums within 1e-12 relative, max |b - a| identical.
 * Also checks scan_block and scan_isa_name against SS_SCAN_ISA when the test runner sets it
 * (then only the short lengths run: the long ones are the same work again). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/scan.h"
#include "kernels/scan_isa.h"
#include "tests/kernels/kt_util.h"

typedef void (*BlockFn)(const ScanConfig *, DType, const void *, const void *, size_t, ScanCounts *);

static ScanConfig test_configs[7];
static const char *test_config_names[7] = {
    "3 tol + rtol 1e-3", "5 tol incl. 0, 2^-12, 1e300 + rtol 0.01", "no tol, no rtol",
    "16 tol incl. tiny and inf + rtol 1e-30", "2 tol + rtol 2", "rtol 1/3 + tol 1e-3",
    "negative tol (portable rule)"};

static void test_configs_init(void)
{
    ScanConfig *c = test_configs;
    c[0] = (ScanConfig){.ntol = 3, .tol = {1e-6, 1e-5, 1e-4}, .has_rtol = 1, .rtol = 1e-3};
    c[1] = (ScanConfig){.ntol = 5, .tol = {0.0, 0x1p-12, 1e-5, 0.5, 1e300}, .has_rtol = 1, .rtol = 0.01};
    c[2] = (ScanConfig){.ntol = 0};
    c[3] = (ScanConfig){.ntol = 16, .has_rtol = 1, .rtol = 1e-30};
    const double t16[16] = {1e-40, 1e-310, 0.0, 1e-7, 3e-5, 1.0 / 3.0, 1.0, 2.0, 100.0, 65504.0,
                            1e10, 3.4e38, 3.5e38, 1e308, INFINITY, 5e-324};
    memcpy(c[3].tol, t16, sizeof t16);
    c[4] = (ScanConfig){.ntol = 2, .tol = {3e-39, 65504.0}, .has_rtol = 1, .rtol = 2.0};
    c[5] = (ScanConfig){.ntol = 1, .tol = {1e-3}, .has_rtol = 1, .rtol = 0.0123456789};
    c[6] = (ScanConfig){.ntol = 2, .tol = {-1.0, 1e-5}, .has_rtol = 1, .rtol = 1e-3};
}

/* Scans [0, n) in one call and also in blocks of 37 (to localise errors); compares with portable. */
static int test_one(const char *isa, BlockFn fn, int ci, DType dt, const uint8_t *a,
                    const uint8_t *b, size_t n)
{
    const ScanConfig *cfg = &test_configs[ci];
    size_t w = dtype_size(dt);
    ScanCounts ref, got;
    scan_counts_init(&ref);
    scan_counts_init(&got);
    scan_block_portable(cfg, dt, a, b, n, &ref);
    fn(cfg, dt, a, b, n, &got);
    char what[200];
    snprintf(what, sizeof what, "%s %s n=%zu config '%s'", isa, dtype_name(dt), n, test_config_names[ci]);
    if (!kt_same(what, cfg, &got, &ref, 1e-12))
        return 0;
    if (n > 5000)
        return 1;
    for (size_t i = 0; i < n && i < 700; i++) { /* element by element: nothing can hide */
        scan_counts_init(&ref);
        scan_counts_init(&got);
        scan_block_portable(cfg, dt, a + i * w, b + i * w, 1, &ref);
        fn(cfg, dt, a + i * w, b + i * w, 1, &got);
        snprintf(what, sizeof what, "%s %s element %zu a %llx b %llx config '%s'", isa, dtype_name(dt), i,
                 (unsigned long long)kt_get(dt, a, i), (unsigned long long)kt_get(dt, b, i),
                 test_config_names[ci]);
        if (!kt_same(what, cfg, &got, &ref, 0.0))
            return 0;
    }
    for (size_t i = 0; i < n; i += 37) { /* small blocks: every group starts at a new offset */
        size_t len = n - i < 37 ? n - i : 37;
        scan_counts_init(&ref);
        scan_counts_init(&got);
        scan_block_portable(cfg, dt, a + i * w, b + i * w, len, &ref);
        fn(cfg, dt, a + i * w, b + i * w, len, &got);
        snprintf(what, sizeof what, "%s %s block [%zu, %zu) config '%s'", isa, dtype_name(dt), i,
                 i + len, test_config_names[ci]);
        if (!kt_same(what, cfg, &got, &ref, 1e-12)) {
            for (size_t j = i; j < i + len; j++)
                fprintf(stderr, "  [%zu] a %llx b %llx\n", j, (unsigned long long)kt_get(dt, a, j),
                        (unsigned long long)kt_get(dt, b, j));
            return 0;
        }
    }
    return 1;
}

/* Tolerances just below and above a float T = H + L that is the exact difference of two values
 * of the dtype (H = 1, L = 2^-g at the largest exact gap g): rounding tol to the nearest float
 * instead of down would count d = T wrongly. Checked against the oracle and the portable rule. */
static int test_tol_rounding(int nisa, const char *const *isa_names, const BlockFn *isa_fns)
{
    const DType dts[4] = {DT_BF16, DT_F16, DT_F8_E5M2, DT_F8_E4M3};
    const int gaps[4] = {15, 12, 20, 6};
    int ok = 1;
    for (int d = 0; d < 4; d++) {
        DType dt = dts[d];
        double t = 1.0 + ldexp(1.0, -gaps[d]);
        ScanConfig cfg = {.ntol = 4, .tol = {t * (1 - 0x1p-40), t * (1 + 0x1p-40), t, t * (1 - 0x1p-30)},
                          .has_rtol = 1, .rtol = ldexp(1.0, -gaps[d]) * (1 - 0x1p-40)};
        uint8_t a[64], b[64];
        size_t n = 0;
        for (int scale = -2; scale <= 2; scale++)
            for (int v = 0; v < 6; v++) {
                double h = ldexp(1.0, scale), l = ldexp(1.0, scale - gaps[d]);
                double va = v == 0 ? -l : v == 1 ? l : v == 2 ? 0.0 : v == 3 ? -2 * l : v == 4 ? h : -h;
                double vb = v < 4 ? h : (v == 4 ? -l : l);
                uint64_t xa = kt_encode(dt, fabs(va), 0), xb = kt_encode(dt, fabs(vb), 0);
                if (va < 0)
                    xa |= 1ull << (kt_format(dt).bits - 1);
                if (vb < 0)
                    xb |= 1ull << (kt_format(dt).bits - 1);
                kt_put(dt, a, n, xa);
                kt_put(dt, b, n, xb);
                n++;
            }
        ScanCounts want, got;
        scan_counts_init(&want);
        for (size_t i = 0; i < n; i++)
            kt_oracle_pair(&cfg, dt, kt_get(dt, a, i), kt_get(dt, b, i), &want);
        for (int k = -1; k < nisa; k++) {
            scan_counts_init(&got);
            (k < 0 ? scan_block_portable : isa_fns[k])(&cfg, dt, a, b, n, &got);
            char what[100];
            snprintf(what, sizeof what, "tolerance rounding %s %s", k < 0 ? "portable" : isa_names[k],
                     dtype_name(dt));
            ok &= kt_same(what, &cfg, &got, &want, 1e-12);
        }
    }
    return ok;
}

int main(void)
{
    test_configs_init();
    const char *isa_names[2] = {"avx2", "avx512"};
    BlockFn isa_fns[2] = {scan_block_avx2, scan_block_avx512};
    int nisa = scan_isa_best() == SCAN_ISA_AVX512 ? 2 : scan_isa_best() == SCAN_ISA_AVX2 ? 1 : 0;
    printf("best ISA here: %s paths tested: %d; scan_block uses %s\n",
           nisa == 2 ? "avx512" : nisa == 1 ? "avx2" : "portable", nisa, scan_isa_name());

    /* SS_SCAN_ISA, when the runner sets it, must be honoured (the CPU has the level) */
    const char *force = getenv("SS_SCAN_ISA");
    if (force && strcmp(force, scan_isa_name()) != 0 &&
        !(strcmp(force, "avx512") == 0 && nisa < 2) && !(strcmp(force, "avx2") == 0 && nisa < 1)) {
        fprintf(stderr, "SS_SCAN_ISA=%s but scan_isa_name() = %s\n", force, scan_isa_name());
        return KT_FAIL;
    }

    int failures = !test_tol_rounding(nisa, isa_names, isa_fns);

    const size_t lengths[] = {1, 7, 31, 33, 100, 1000, 1000003};
    const size_t max_n = 1000003;
    uint8_t *abuf = malloc(max_n * 8 + 16), *bbuf = malloc(max_n * 8 + 16);
    if (!abuf || !bbuf)
        return KT_FAIL;
    for (int d = 0; d < DT_COUNT; d++) {
        DType dt = (DType)d;
        for (int ci = 0; ci < 7; ci++) {
            for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                size_t n = lengths[li];
                if (n == max_n && (force || ci > 1 || !(dtype_is_float(dt) || dt == DT_I16) ||
                                   (ci == 1 && dt != DT_BF16 && dt != DT_F16)))
                    continue; /* the long runs: float dtypes, the main configs, not when forced */
                uint8_t *a = abuf + 1 + (li % 3), *b = bbuf + 3; /* unaligned on purpose */
                for (int friendly = 0; friendly < 2 && !failures; friendly++) {
                    kt_fill_mode(dt, 1000u * (unsigned)d + 10u * (unsigned)ci + li + 7u * (unsigned)friendly,
                                 &test_configs[ci], friendly, a, b, n);
                    for (int k = 0; k < nisa && !failures; k++)
                        failures += !test_one(isa_names[k], isa_fns[k], ci, dt, a, b, n);
                    if (!failures)
                        failures += !test_one("scan_block", scan_block, ci, dt, a, b, n);
                }
            }
        }
    }

    /* long bf16 and f16 runs that are mostly weight-like, so that the fast SIMD runs dominate:
     * the few special pairs among them force the careful re-runs */
    size_t n = max_n;
    for (int d = 0; d < 2 && !failures && !force; d++) {
        DType dt = d ? DT_F16 : DT_BF16;
        uint64_t s = 42 + (uint64_t)d;
        kt_fill(dt, 7, &test_configs[0], abuf, bbuf, n);
        for (size_t i = 0; i < n; i++) { /* keep every 5000th pair special, make the rest plain */
            if (i % 5000 == 17)
                continue;
            uint64_t x = kt_make(dt, (int)(kt_rand(&s) & 1), (uint64_t)(d ? 10 : 118) + kt_below(&s, 4), kt_rand(&s));
            kt_put(dt, abuf, i, x);
            kt_put(dt, bbuf, i, kt_below(&s, 10) ? x + kt_below(&s, 5) - 2 : x);
        }
        for (int ci = 0; ci < 2; ci++)
            for (int k = 0; k < nisa; k++)
                failures += !test_one(isa_names[k], isa_fns[k], ci, dt, abuf, bbuf, n);
    }

    free(abuf);
    free(bbuf);
    if (failures) {
        fprintf(stderr, "%d mismatches\n", failures);
        return KT_FAIL;
    }
    printf("all SIMD paths agree with the portable rule\n");
    return KT_PASS;
}
