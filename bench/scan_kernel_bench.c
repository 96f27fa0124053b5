/* Micro-benchmark of the CPU scan against memory bandwidth.
 *
 * Generates in memory a pair of buffers (A, B) of one dtype, SGD-like (~0.01% of elements changed),
 * AdamW-like (~90% changed, by a few ulps) or "sparse" (~9% changed, what ckpt-synth's AdamW-like
 * bf16 checkpoints show: most updates round away in bf16), then times
 *   read    every 64-bit word of A and B summed, on all threads (the bandwidth ceiling),
 *   scan    scan_jobs_cpu with 3 tolerances + rtol + sums, on all threads,
 *   1t:ISA  scan_block single-threaded per SIMD path on the first 64 MiB of each buffer,
 * and prints GB/s (bytes of A plus B per second) and scan/read. Best of --reps runs.
 *
 * usage: scan_kernel_bench [--mib N] [--threads T] [--reps R] [--dtype bf16|f16|f32|all]
 *                          [--pattern sgd|adamw|sparse|all] [--no-isa] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/dtype.h"
#include "kernels/scan.h"
#include "kernels/scan_isa.h"
#include "kernels/threadpool.h"

typedef struct BenchOpts {
    size_t mib;
    int threads, reps, per_isa;
    const char *dtype, *pattern;
} BenchOpts;

static double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t bench_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A roughly N(0, 0.02)-shaped weight: sum of 4 uniforms, scaled. */
static float bench_weight(uint64_t *s)
{
    uint64_t r = bench_rand(s);
    double u = (double)(r & 0xFFFF) + (double)((r >> 16) & 0xFFFF) + (double)((r >> 32) & 0xFFFF) +
               (double)(r >> 48);
    return (float)((u / 65536.0 - 2.0) * 0.035);
}

static uint16_t bench_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    return (uint16_t)((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

static uint16_t bench_f32_to_f16(float f) /* |f| < 1, round toward zero is enough here */
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    int e = (int)((x >> 23) & 0xFF) - 127 + 15;
    if (e <= 0)
        return sign;
    return (uint16_t)(sign | (e << 10) | ((x >> 13) & 0x3FF));
}

typedef struct GenTask {
    DType dt;
    int pattern; /* 0 sgd, 1 adamw, 2 sparse */
    uint8_t *a, *b;
    size_t n, per_task;
} GenTask;

/* Fills elements of one slice: a is a weight, b = a with a few-ulp step where changed. */
static void bench_gen_slice(void *ctx, size_t t, int worker)
{
    (void)worker;
    GenTask *g = ctx;
    uint64_t s = 0x9E3779B97F4A7C15ull * (t + 1);
    size_t i0 = t * g->per_task, i1 = i0 + g->per_task < g->n ? i0 + g->per_task : g->n;
    for (size_t i = i0; i < i1; i++) {
        float w = bench_weight(&s);
        uint64_t r = bench_rand(&s);
        int change = g->pattern == 1 ? (r % 10) != 0 : g->pattern == 2 ? (r % 100) < 9 : (r % 10000) == 0;
        int step = (int)((r >> 32) % 3) + 1;
        if ((r >> 40) & 1)
            step = -step;
        if (g->dt == DT_F32) {
            uint32_t x;
            memcpy(&x, &w, 4);
            uint32_t y = change ? x + (uint32_t)(step * 37) : x;
            memcpy(g->a + 4 * i, &x, 4);
            memcpy(g->b + 4 * i, &y, 4);
        } else {
            uint16_t x = g->dt == DT_BF16 ? bench_f32_to_bf16(w) : bench_f32_to_f16(w);
            if ((x & 0x7FFF) == 0 && step < 0) /* from a zero, step up: never into NaN */
                step = -step;
            uint16_t y = change ? (uint16_t)(x + step) : x;
            memcpy(g->a + 2 * i, &x, 2);
            memcpy(g->b + 2 * i, &y, 2);
        }
    }
}

typedef struct ReadTask {
    const uint64_t *a, *b;
    size_t words, per_task;
    uint64_t sums[256];
} ReadTask;

static void bench_read_slice(void *ctx, size_t t, int worker)
{
    ReadTask *r = ctx;
    size_t i0 = t * r->per_task, i1 = i0 + r->per_task < r->words ? i0 + r->per_task : r->words;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = i0; i + 2 <= i1; i += 2) {
        s0 += r->a[i];
        s1 += r->a[i + 1];
        s2 += r->b[i];
        s3 += r->b[i + 1];
    }
    r->sums[worker & 255] += s0 + s1 + s2 + s3;
}

static double bench_read(ThreadPool *pool, const uint8_t *a, const uint8_t *b, size_t bytes, int reps)
{
    ReadTask r = {(const uint64_t *)a, (const uint64_t *)b, bytes / 8, (4u << 20) / 8, {0}};
    size_t ntask = (r.words + r.per_task - 1) / r.per_task;
    double best = 1e30;
    for (int k = 0; k <= reps; k++) {
        double t = bench_now();
        pool_run(pool, ntask, bench_read_slice, &r);
        t = bench_now() - t;
        if (k > 0 && t < best) /* run 0 warms up */
            best = t;
    }
    uint64_t total = 0;
    for (int i = 0; i < 256; i++)
        total += r.sums[i];
    if (total == 42) /* keep the reads */
        printf("#");
    return 2.0 * (double)bytes / best / 1e9;
}

static double bench_scan(const BenchOpts *o, const ScanConfig *cfg, DType dt, const uint8_t *a,
                         const uint8_t *b, size_t n, ScanCounts *res)
{
    ScanJob job = {dt, a, b, n};
    double best = 1e30;
    for (int k = 0; k <= o->reps; k++) {
        double t = bench_now();
        if (scan_jobs_cpu(cfg, &job, 1, o->threads, res, NULL, NULL) != 0) {
            fprintf(stderr, "scan_jobs_cpu failed\n");
            exit(1);
        }
        t = bench_now() - t;
        if (k > 0 && t < best)
            best = t;
    }
    return 2.0 * (double)(n * dtype_size(dt)) / best / 1e9;
}

typedef void (*BlockFn)(const ScanConfig *, DType, const void *, const void *, size_t, ScanCounts *);

/* Single-threaded GB/s of one path over the first `bytes` of each buffer. */
static double bench_isa(BlockFn fn, const ScanConfig *cfg, DType dt, const uint8_t *a,
                        const uint8_t *b, size_t bytes, int reps)
{
    size_t es = dtype_size(dt), n = bytes / es;
    double best = 1e30;
    for (int k = 0; k <= reps; k++) {
        ScanCounts c;
        scan_counts_init(&c);
        double t = bench_now();
        for (size_t i = 0; i < n; i += SCAN_CHUNK_ELEMS)
            fn(cfg, dt, a + i * es, b + i * es, n - i < SCAN_CHUNK_ELEMS ? n - i : SCAN_CHUNK_ELEMS, &c);
        t = bench_now() - t;
        if (k > 0 && t < best)
            best = t;
    }
    return 2.0 * (double)bytes / best / 1e9;
}

static const char *const bench_patterns[3] = {"sgd", "adamw", "sparse"};

static void bench_one(const BenchOpts *o, ThreadPool *pool, DType dt, int pattern)
{
    size_t bytes = o->mib << 20, es = dtype_size(dt), n = bytes / es;
    uint8_t *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    GenTask g = {dt, pattern, a, b, n, (size_t)1 << 20};
    pool_run(pool, (n + g.per_task - 1) / g.per_task, bench_gen_slice, &g);

    ScanConfig cfg = {.ntol = 3, .tol = {1e-6, 1e-5, 1e-4}, .has_rtol = 1, .rtol = 1e-3};
    ScanCounts res;
    double read = bench_read(pool, a, b, bytes, o->reps);
    double scan = bench_scan(o, &cfg, dt, a, b, n, &res);
    printf("%-5s %-6s %5zu MiB x2  changed %6.3f%%  read %6.2f GB/s  scan[%s] %6.2f GB/s  ratio %.2f",
           dtype_name(dt), bench_patterns[pattern], o->mib, 100.0 * (double)res.changed / (double)n,
           read, scan_isa_name(), scan, scan / read);
    if (o->per_isa) {
        size_t sub = bytes < ((size_t)64 << 20) ? bytes : (size_t)64 << 20;
        printf("  1t:");
        printf(" portable %.2f", bench_isa(scan_block_portable, &cfg, dt, a, b, sub, 1));
        if (scan_isa_best() >= SCAN_ISA_AVX2)
            printf(" avx2 %.2f", bench_isa(scan_block_avx2, &cfg, dt, a, b, sub, o->reps));
        if (scan_isa_best() >= SCAN_ISA_AVX512)
            printf(" avx512 %.2f", bench_isa(scan_block_avx512, &cfg, dt, a, b, sub, o->reps));
        printf(" GB/s");
    }
    printf("\n");
    fflush(stdout);
    free(a);
    free(b);
}

int main(int argc, char **argv)
{
    BenchOpts o = {512, 0, 3, 1, "all", "all"};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc)
            o.mib = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            o.threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            o.reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc)
            o.dtype = argv[++i];
        else if (strcmp(argv[i], "--pattern") == 0 && i + 1 < argc)
            o.pattern = argv[++i];
        else if (strcmp(argv[i], "--no-isa") == 0)
            o.per_isa = 0;
        else {
            fprintf(stderr, "usage: %s [--mib N] [--threads T] [--reps R] [--dtype bf16|f16|f32|all] "
                            "[--pattern sgd|adamw|sparse|all] [--no-isa]\n", argv[0]);
            return 1;
        }
    }
    if (o.mib == 0 || o.reps < 1)
        return 1;
    ThreadPool *pool = pool_create(o.threads);
    if (!pool)
        return 1;
    printf("threads %d, best of %d; GB/s = bytes of A and B per second\n", pool_size(pool), o.reps);
    const DType dts[] = {DT_BF16, DT_F16, DT_F32};
    const char *names[] = {"bf16", "f16", "f32"};
    for (int d = 0; d < 3; d++) {
        if (strcmp(o.dtype, "all") != 0 && strcmp(o.dtype, names[d]) != 0)
            continue;
        for (int pat = 0; pat < 3; pat++)
            if (strcmp(o.pattern, "all") == 0 || strcmp(o.pattern, bench_patterns[pat]) == 0)
                bench_one(&o, pool, dts[d], pat);
    }
    pool_destroy(pool);
    return 0;
}
