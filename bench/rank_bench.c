/* The rank benchmark's driver (run by bench/rank_bench.sh): generates a float32 dW (m, n)
 * row-major = a sparse update (1% of elements, N(0, 1e-3)) plus a rank-64 part with decaying
 * singular values (0.9^i), writes it raw to a file for numpy, then times our full spectrum
 * (svd_values, LAPACKE_sgesdd 'N') and the randomized top 16 (svd_topk) and prints one JSON line:
 * seconds of each and both top-16 lists. Usage: rank_bench M N OUT.f32 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "kernels/svd.h"

#define BENCH_RANK 64
#define BENCH_TOPK 16

static uint64_t state = 0x12345678;
static double bench_uniform(void)
{
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(state >> 11) + 0.5) * 0x1p-53;
}
static float bench_normal(void)
{
    return (float)(sqrt(-2 * log(bench_uniform())) * cos(2 * M_PI * bench_uniform()));
}

static double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: rank_bench M N OUT.f32\n");
        return 1;
    }
    size_t m = strtoul(argv[1], NULL, 10), n = strtoul(argv[2], NULL, 10);
    size_t mn = m < n ? m : n;
    float *a = malloc(m * n * sizeof *a), *copy = malloc(m * n * sizeof *a);
    float *u = malloc(m * BENCH_RANK * sizeof *u), *v = malloc(n * BENCH_RANK * sizeof *v);
    float *s = malloc(mn * sizeof *s), sk[BENCH_TOPK];
    if (!a || !copy || !u || !v || !s) {
        fprintf(stderr, "rank_bench: out of memory\n");
        return 4;
    }
    /* low-rank part: U diag(0.9^i) V^T, U and V Gaussian scaled to unit columns on average */
    for (size_t i = 0; i < m * BENCH_RANK; i++)
        u[i] = bench_normal() / (float)sqrt((double)m);
    for (size_t j = 0; j < n; j++)
        for (size_t k = 0; k < BENCH_RANK; k++)
            v[j * BENCH_RANK + k] = bench_normal() / (float)sqrt((double)n) * (float)pow(0.9, k);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, BENCH_RANK, 1.0f, u,
                BENCH_RANK, v, BENCH_RANK, 0.0f, a, (int)n);
    for (size_t i = 0; i < m * n; i++)
        if (bench_uniform() < 0.01)
            a[i] += 1e-3f * bench_normal();
    FILE *f = fopen(argv[3], "wb");
    if (!f || fwrite(a, sizeof *a, m * n, f) != m * n || fclose(f) != 0) {
        fprintf(stderr, "rank_bench: cannot write %s\n", argv[3]);
        return 4;
    }
    SsError err = {0};
    memcpy(copy, a, m * n * sizeof *a);
    double t0 = bench_now();
    int rc = svd_values(copy, m, n, s, NULL, &err);
    double t_full = bench_now() - t0;
    t0 = bench_now();
    if (!rc)
        rc = svd_topk(a, m, n, BENCH_TOPK, NULL, sk, NULL, &err);
    double t_topk = bench_now() - t0;
    if (rc) {
        fprintf(stderr, "rank_bench: %s\n", err.msg);
        return 2;
    }
    printf("{\"m\": %zu, \"n\": %zu, \"full_s\": %.4f, \"topk_s\": %.4f, \"full\": [", m, n,
           t_full, t_topk);
    for (int i = 0; i < BENCH_TOPK; i++)
        printf("%s%.9g", i ? ", " : "", s[i]);
    printf("], \"topk\": [");
    for (int i = 0; i < BENCH_TOPK; i++)
        printf("%s%.9g", i ? ", " : "", sk[i]);
    printf("]}\n");
    free(a);
    free(copy);
    free(u);
    free(v);
    free(s);
    return 0;
}
