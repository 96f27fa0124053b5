/* The changed-element masks (kernels/scan_mask.c): every mask path (portable, AVX2, AVX-512 where
 * this CPU has them, and the dispatched scan_mask_block) against a bit-by-bit reference written
 * from the definition with the independent decoder of tests/kernels/kt_util.h, for every dtype:
 * special values (+0/-0, NaNs with equal and different bits, Inf, single-bit flips incl. the sign
 * bit), runs of equal elements, odd lengths, unaligned data; the unused high bits of a last partial
 * byte are 0 and no byte past the mask is written; popcount == the portable scan's changed count.
 * Then scan_jobs_cpu_masks: masks across several 2^20-element chunks equal the reference for 1, 2
 * and 3 threads, each chunk's popcount equals that chunk's changed count, counts and sums equal
 * scan_jobs_cpu's bit for bit, and NULL masks (all, or per job) are skipped.
 * Exit 0 pass, 1 fail. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/scan.h"
#include "kernels/scan_isa.h"
#include "tests/kernels/kt_util.h"

#define GUARD 0x5Au

typedef void (*MaskFn)(DType, const void *, const void *, size_t, uint8_t *);

/* changed per the definition: bits differ, except two float zeros (of either sign). */
static int ref_changed(DType dt, uint64_t xa, uint64_t xb)
{
    if (xa == xb)
        return 0;
    if (kt_format(dt).is_float && kt_decode(dt, xa) == 0.0 && kt_decode(dt, xb) == 0.0)
        return 0;
    return 1;
}

static void ref_mask(DType dt, const uint8_t *a, const uint8_t *b, size_t n, uint8_t *mask)
{
    memset(mask, 0, (n + 7) / 8);
    for (size_t i = 0; i < n; i++)
        if (ref_changed(dt, kt_get(dt, a, i), kt_get(dt, b, i)))
            mask[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* Stored bits of a quiet NaN (with payload bits p) of a float dtype, or a random word otherwise. */
static uint64_t gen_nan(DType dt, uint64_t p)
{
    KtFormat f = kt_format(dt);
    if (!f.has_inf) /* F8_E4M3: S.1111.111 only */
        return 0x7Full | ((p & 1) << 7);
    uint64_t e = ((1ull << f.ebits) - 1) << f.mbits;
    uint64_t m = ((1ull << (f.mbits - 1)) | (p & ((1ull << (f.mbits - 1)) - 1)));
    return e | m | ((p >> 10 & 1) << (f.bits - 1));
}

/* A pair rich in the cases that matter for a bit compare. */
static void gen_pair(DType dt, uint64_t *s, uint64_t *xa, uint64_t *xb)
{
    KtFormat f = kt_format(dt);
    uint64_t all = f.bits == 64 ? ~0ull : (1ull << f.bits) - 1;
    uint64_t sign = 1ull << (f.bits - 1);
    uint64_t a = kt_rand(s) & all, b;
    switch (kt_below(s, 10)) {
    case 0: case 1: case 2: b = a; break;                                  /* runs of equal */
    case 3: b = a ^ (1ull << kt_below(s, (uint64_t)f.bits)); break;         /* one bit flip */
    case 4: b = a ^ sign; break;                                            /* sign flip */
    case 5: a = kt_below(s, 2) ? sign : 0; b = kt_below(s, 2) ? sign : 0; break; /* +-0 pairs */
    case 6:                                                                 /* NaNs */
        if (f.is_float) {
            uint64_t p = kt_rand(s);
            a = gen_nan(dt, p);
            b = kt_below(s, 2) ? a : gen_nan(dt, kt_rand(s));
        } else {
            b = a;
        }
        break;
    case 7: b = kt_below(s, 2) ? 0 : sign; break;                           /* x vs a zero */
    default: b = kt_rand(s) & all; break;
    }
    *xa = a;
    *xb = b;
}

static void gen_fill(DType dt, uint64_t seed, size_t n, uint8_t *a, uint8_t *b)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    int runs = (int)(seed % 3 == 0); /* long runs of equal pairs, as in sparse updates */
    for (size_t i = 0; i < n; i++) {
        uint64_t xa, xb;
        gen_pair(dt, &s, &xa, &xb);
        if (runs && kt_below(&s, 16) != 0)
            xb = xa;
        kt_put(dt, a, i, xa);
        kt_put(dt, b, i, xb);
    }
}

static uint64_t popcount_bytes(const uint8_t *m, size_t nbytes)
{
    uint64_t c = 0;
    for (size_t i = 0; i < nbytes; i++)
        c += (uint64_t)__builtin_popcount(m[i]);
    return c;
}

static int fails;

static void check(int ok, const char *msg, const char *what, DType dt, size_t n)
{
    if (!ok && fails++ < 20) {
        fprintf(stderr, "FAIL: %s %s n=%zu: ", what, dtype_name(dt), n);
        fprintf(stderr, "%s\n", msg);
    }
}

/* One dtype, one length, one path: mask vs reference, guard byte, popcount vs changed. */
static void check_block(const char *what, MaskFn fn, DType dt, size_t n, uint64_t seed, int skew)
{
    size_t es = dtype_size(dt), nb = (n + 7) / 8;
    uint8_t *ba = malloc(n * es + 1), *bb = malloc(n * es + 1);
    uint8_t *want = malloc(nb + 1), *got = malloc(nb + 1);
    if (!ba || !bb || !want || !got) {
        check(0, "out of memory", what, dt, n);
        goto done;
    }
    uint8_t *a = ba + skew, *b = bb + skew; /* skew 1: unaligned data, as in safetensors files */
    gen_fill(dt, seed, n, a, b);
    ref_mask(dt, a, b, n, want);
    memset(got, 0xA5, nb);
    got[nb] = GUARD;
    fn(dt, a, b, n, got);
    check(memcmp(got, want, nb) == 0, "mask differs from the reference", what, dt, n);
    check(got[nb] == GUARD, "wrote past the mask", what, dt, n);
    ScanConfig cfg = {.ntol = 1, .tol = {1e-5}};
    ScanCounts c;
    scan_counts_init(&c);
    scan_block_portable(&cfg, dt, a, b, n, &c);
    check(popcount_bytes(got, nb) == c.changed, "popcount != changed", what, dt, n);
done:
    free(ba);
    free(bb);
    free(want);
    free(got);
}

static void check_paths(void)
{
    static const size_t lens[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100,
                                  127, 128, 129, 255, 1000, 4099};
    struct { const char *name; MaskFn fn; ScanIsa need; } paths[] = {
        {"portable", scan_mask_block_portable, SCAN_ISA_PORTABLE},
        {"avx2", scan_mask_block_avx2, SCAN_ISA_AVX2},
        {"avx512", scan_mask_block_avx512, SCAN_ISA_AVX512},
        {"dispatched", scan_mask_block, SCAN_ISA_PORTABLE},
    };
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        if (paths[p].need > scan_isa_best()) {
            printf("skip %s: not on this CPU\n", paths[p].name);
            continue;
        }
        for (int dt = 0; dt < DT_COUNT; dt++)
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
                for (int skew = 0; skew < 2; skew++)
                    check_block(paths[p].name, paths[p].fn, (DType)dt, lens[l],
                                (uint64_t)(dt * 131 + (int)l * 7 + skew), skew);
    }
}

/* Every pair of 16-bit patterns against a few partners, and all F8 pairs: exhaustive where cheap. */
static void check_exhaustive(void)
{
    const DType f8[] = {DT_F8_E4M3, DT_F8_E5M2, DT_U8};
    enum { N8 = 256 * 256 };
    uint8_t *a = malloc(N8 * 2), *b = malloc(N8 * 2), *want = malloc(N8 / 8 * 2),
            *got = malloc(N8 / 8 * 2);
    if (!a || !b || !want || !got) {
        check(0, "out of memory", "exhaustive", DT_U8, 0);
        goto done;
    }
    for (size_t t = 0; t < 3; t++) {
        for (size_t i = 0; i < N8; i++) {
            a[i] = (uint8_t)(i >> 8);
            b[i] = (uint8_t)i;
        }
        ref_mask(f8[t], a, b, N8, want);
        scan_mask_block(f8[t], a, b, N8, got);
        check(memcmp(got, want, N8 / 8) == 0, "all byte pairs", "exhaustive", f8[t], N8);
    }
    const DType h[] = {DT_BF16, DT_F16, DT_I16};
    const uint16_t partner[] = {0x0000, 0x8000, 0x7FC0, 0x7E00, 0x3F80};
    for (size_t t = 0; t < 3; t++)
        for (size_t q = 0; q < sizeof partner / sizeof partner[0]; q++) {
            for (size_t i = 0; i < 65536; i++) {
                uint16_t x = (uint16_t)i;
                memcpy(a + 2 * i, &x, 2);
                memcpy(b + 2 * i, &partner[q], 2);
            }
            ref_mask(h[t], a, b, 65536, want);
            scan_mask_block(h[t], a, b, 65536, got);
            check(memcmp(got, want, 65536 / 8) == 0, "all 16-bit patterns", "exhaustive", h[t],
                  65536);
        }
done:
    free(a);
    free(b);
    free(want);
    free(got);
}

/* scan_jobs_cpu_masks over jobs crossing chunk boundaries. */
static void check_jobs(void)
{
    enum { NJ = 5 };
    const uint64_t sizes[NJ] = {2 * SCAN_CHUNK_ELEMS + SCAN_CHUNK_ELEMS / 2 + 3, 13, 0,
                                SCAN_CHUNK_ELEMS + 9, 1000};
    const DType types[NJ] = {DT_BF16, DT_F32, DT_F16, DT_F8_E4M3, DT_F64};
    const ScanConfig cfg = {.ntol = 2, .tol = {1e-6, 1e-5}, .has_rtol = 1, .rtol = 1e-3};
    ScanJob jobs[NJ];
    uint8_t *want[NJ] = {0}, *got[NJ] = {0};
    void *bufs[2 * NJ] = {0};
    for (int j = 0; j < NJ; j++) {
        size_t es = dtype_size(types[j]), n = (size_t)sizes[j], nb = (n + 7) / 8;
        bufs[2 * j] = malloc(n * es + 1);
        bufs[2 * j + 1] = malloc(n * es + 1);
        want[j] = malloc(nb + 1);
        got[j] = malloc(nb + 1);
        if (!bufs[2 * j] || !bufs[2 * j + 1] || !want[j] || !got[j]) {
            check(0, "out of memory", "jobs", types[j], n);
            goto done;
        }
        gen_fill(types[j], 1000 + (uint64_t)j, n, bufs[2 * j], bufs[2 * j + 1]);
        ref_mask(types[j], bufs[2 * j], bufs[2 * j + 1], n, want[j]);
        jobs[j] = (ScanJob){types[j], bufs[2 * j], bufs[2 * j + 1], sizes[j]};
    }
    ScanCounts plain[NJ], masked[NJ];
    if (scan_jobs_cpu(&cfg, jobs, NJ, 2, plain, NULL, NULL) != 0)
        check(0, "scan_jobs_cpu failed", "jobs", DT_BF16, 0);
    const int threads[] = {1, 2, 3};
    for (size_t t = 0; t < 3; t++) {
        for (int j = 0; j < NJ; j++) {
            size_t nb = ((size_t)sizes[j] + 7) / 8;
            memset(got[j], 0xA5, nb);
            got[j][nb] = GUARD;
        }
        uint8_t *masks[NJ];
        memcpy(masks, got, sizeof masks);
        masks[1] = NULL; /* a job without a mask */
        if (scan_jobs_cpu_masks(&cfg, jobs, masks, NJ, threads[t], masked, NULL, NULL) != 0)
            check(0, "scan_jobs_cpu_masks failed", "jobs", DT_BF16, 0);
        for (int j = 0; j < NJ; j++) {
            size_t n = (size_t)sizes[j], nb = (n + 7) / 8;
            check(memcmp(&plain[j], &masked[j], sizeof plain[j]) == 0,
                  "counts differ from scan_jobs_cpu", "jobs", types[j], n);
            check(got[j][nb] == GUARD, "wrote past the mask", "jobs", types[j], n);
            if (j == 1) {
                check(nb == 0 || got[j][0] == 0xA5, "wrote a NULL job's mask", "jobs", types[j], n);
                continue;
            }
            check(memcmp(got[j], want[j], nb) == 0, "mask differs from the reference", "jobs",
                  types[j], n);
            check(popcount_bytes(got[j], nb) == masked[j].changed, "popcount != changed", "jobs",
                  types[j], n);
            /* per chunk: popcount of the chunk's bytes == scan_block's changed for the chunk */
            size_t es = dtype_size(types[j]);
            for (size_t off = 0; off < n; off += SCAN_CHUNK_ELEMS) {
                size_t len = n - off < SCAN_CHUNK_ELEMS ? n - off : SCAN_CHUNK_ELEMS;
                ScanCounts c;
                scan_counts_init(&c);
                scan_block(&cfg, types[j], (const uint8_t *)jobs[j].a + off * es,
                           (const uint8_t *)jobs[j].b + off * es, len, &c);
                check(popcount_bytes(got[j] + off / 8, (len + 7) / 8) == c.changed,
                      "chunk popcount != chunk changed", "jobs", types[j], n);
            }
        }
    }
    /* masks == NULL: plain scan */
    if (scan_jobs_cpu_masks(&cfg, jobs, NULL, NJ, 2, masked, NULL, NULL) != 0 ||
        memcmp(plain, masked, sizeof plain) != 0)
        check(0, "masks == NULL differs from scan_jobs_cpu", "jobs", DT_BF16, 0);
done:
    for (int j = 0; j < NJ; j++) {
        free(bufs[2 * j]);
        free(bufs[2 * j + 1]);
        free(want[j]);
        free(got[j]);
    }
}

int main(void)
{
    const char *force = getenv("SS_SCAN_ISA");
    printf("mask path: %s (best here: %d)\n", scan_isa_name(), (int)scan_isa_best());
    if (force && ((strcmp(force, "avx2") == 0 && scan_isa_best() >= SCAN_ISA_AVX2) ||
                  (strcmp(force, "avx512") == 0 && scan_isa_best() >= SCAN_ISA_AVX512) ||
                  strcmp(force, "portable") == 0) &&
        strcmp(scan_isa_name(), force) != 0) {
        fprintf(stderr, "FAIL: SS_SCAN_ISA=%s not obeyed (%s)\n", force, scan_isa_name());
        return KT_FAIL;
    }
    check_paths();
    check_exhaustive();
    check_jobs();
    if (fails) {
        fprintf(stderr, "%d failures\n", fails);
        return KT_FAIL;
    }
    printf("ok\n");
    return KT_PASS;
}
