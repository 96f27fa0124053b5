/* The portable rule against an independent oracle (kt_util.h: its own decoders built from the
 * format definitions, the contract written out element by element):
 *   BF16 and F16: every one of the 65536 bit patterns against 8 partners (itself, sign flipped,
 *   +-1 ulp, random, same exponent, a few ulps, a special value), including the +0/-0 rule;
 *   F8_E4M3 and F8_E5M2: all 256 x 256 pairs.
 * Each pair is checked on its own (counts and sums exactly equal), and whole arrays are checked
 * in totals, for scan_block_portable and for every SIMD path here (counts exact, sums 1e-12). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/scan.h"
#include "kernels/scan_isa.h"
#include "tests/kernels/kt_util.h"

#define PARTNERS 8

typedef void (*BlockFn)(const ScanConfig *, DType, const void *, const void *, size_t, ScanCounts *);

/* Partner j of pattern x (16-bit formats). */
static uint16_t oracle_partner(DType dt, uint16_t x, int j, uint64_t *s)
{
    KtFormat f = kt_format(dt);
    const uint16_t specials[] = {0x0000, 0x8000, (uint16_t)kt_make(dt, 0, (1u << f.ebits) - 1, 0),
                                 (uint16_t)kt_make(dt, 1, (1u << f.ebits) - 1, 0),
                                 (uint16_t)kt_make(dt, 0, (1u << f.ebits) - 1, 1),
                                 (uint16_t)kt_make(dt, 1, (1u << f.ebits) - 1, 3),
                                 (uint16_t)kt_max_finite(dt), 0x0001, 0x8001};
    switch (j) {
    case 0: return x;
    case 1: return x ^ 0x8000;
    case 2: return (uint16_t)(x + 1);
    case 3: return (uint16_t)(x - 1);
    case 4: return (uint16_t)kt_rand(s);
    case 5: return (uint16_t)((x & (((1u << f.ebits) - 1) << f.mbits)) |
                              (kt_rand(s) & ((1u << f.mbits) - 1)) | (kt_rand(s) & 0x8000));
    case 6: return (uint16_t)(x + 2 + kt_below(s, 19));
    default: return specials[kt_below(s, sizeof specials / sizeof specials[0])];
    }
}

/* Scans n pairs in chunk-sized calls of fn. */
static void oracle_scan(BlockFn fn, const ScanConfig *cfg, DType dt, const uint8_t *a,
                        const uint8_t *b, size_t n, ScanCounts *out)
{
    size_t w = dtype_size(dt);
    scan_counts_init(out);
    for (size_t i = 0; i < n; i += SCAN_CHUNK_ELEMS) {
        size_t len = n - i < SCAN_CHUNK_ELEMS ? n - i : SCAN_CHUNK_ELEMS;
        fn(cfg, dt, a + i * w, b + i * w, len, out);
    }
}

static int oracle_check(DType dt, const ScanConfig *cfg, const char *cfg_name, const uint8_t *a,
                        const uint8_t *b, size_t n)
{
    char what[160];
    ScanCounts total;
    scan_counts_init(&total);
    for (size_t i = 0; i < n; i++) { /* pair by pair */
        uint64_t xa = kt_get(dt, a, i), xb = kt_get(dt, b, i);
        ScanCounts want, got;
        scan_counts_init(&want);
        scan_counts_init(&got);
        kt_oracle_pair(cfg, dt, xa, xb, &want);
        kt_oracle_pair(cfg, dt, xa, xb, &total);
        scan_block_portable(cfg, dt, a + i * dtype_size(dt), b + i * dtype_size(dt), 1, &got);
        snprintf(what, sizeof what, "portable %s pair a=%llx b=%llx (%s)", dtype_name(dt),
                 (unsigned long long)xa, (unsigned long long)xb, cfg_name);
        if (!kt_same(what, cfg, &got, &want, 0.0))
            return 0;
    }
    const char *names[3] = {"portable", "avx2", "avx512"};
    BlockFn fns[3] = {scan_block_portable, scan_block_avx2, scan_block_avx512};
    for (int k = 0; k <= (int)scan_isa_best(); k++) {
        ScanCounts got;
        oracle_scan(fns[k], cfg, dt, a, b, n, &got);
        snprintf(what, sizeof what, "%s %s totals over %zu pairs (%s)", names[k], dtype_name(dt), n, cfg_name);
        if (!kt_same(what, cfg, &got, &total, 1e-12))
            return 0;
    }
    return 1;
}

int main(void)
{
    const ScanConfig cfgs[2] = {
        {.ntol = 1, .tol = {1e-5}, .has_rtol = 1, .rtol = 1e-3},
        {.ntol = 4, .tol = {0.0, 0x1p-10, 1e-3, 1.0}, .has_rtol = 1, .rtol = 0.01},
    };
    const char *cfg_names[2] = {"tol 1e-5, rtol 1e-3", "tol 0, 2^-10, 1e-3, 1; rtol 0.01"};
    size_t n16 = 65536u * PARTNERS;
    uint8_t *a = malloc(n16 * 2), *b = malloc(n16 * 2);
    if (!a || !b)
        return KT_FAIL;
    int ok = 1;
    const DType d16[2] = {DT_BF16, DT_F16};
    for (int d = 0; d < 2 && ok; d++) {
        uint64_t s = 99 + (uint64_t)d;
        for (uint32_t x = 0; x < 65536; x++)
            for (int j = 0; j < PARTNERS; j++) {
                size_t i = (size_t)x * PARTNERS + (size_t)j;
                kt_put(d16[d], a, i, x);
                kt_put(d16[d], b, i, oracle_partner(d16[d], (uint16_t)x, j, &s));
            }
        for (int c = 0; c < 2 && ok; c++)
            ok = oracle_check(d16[d], &cfgs[c], cfg_names[c], a, b, n16);
        if (ok)
            printf("%s: 65536 x %d pairs agree\n", dtype_name(d16[d]), PARTNERS);
    }
    const DType d8[2] = {DT_F8_E4M3, DT_F8_E5M2};
    for (int d = 0; d < 2 && ok; d++) {
        for (uint32_t x = 0; x < 65536; x++) {
            a[x] = (uint8_t)(x >> 8);
            b[x] = (uint8_t)x;
        }
        for (int c = 0; c < 2 && ok; c++)
            ok = oracle_check(d8[d], &cfgs[c], cfg_names[c], a, b, 65536);
        if (ok)
            printf("%s: all 256 x 256 pairs agree\n", dtype_name(d8[d]));
    }
    free(a);
    free(b);
    return ok ? KT_PASS : KT_FAIL;
}
