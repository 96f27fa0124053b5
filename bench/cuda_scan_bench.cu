/* The CUDA scan and SVD against their ceilings and against the CPU (run by tests/gpu/run.sh).
 *
 * Scan: a BF16 pair of --gib GiB in all (A plus B), generated in host memory on all cores, ~9% of
 * the elements changed by one or two ulps (what AdamW-like bf16 updates look like), then
 *   kernel     scan_cuda_resident on the pair in device memory (3 tolerances + rtol + sums, and
 *              with the mask), best of 3, as GB/s of A plus B read; against the measured D2D
 *              bandwidth (bytes read + written per second)
 *   e2e        scan_jobs_cuda from the host pair (pinned staging, the default 4 streams of 32 MiB
 *              chunks; then 256/2, 64/3 and 16/6 once each, with their set-up time),
 *              wall time, against the measured pinned H2D bandwidth
 *   cpu        scan_jobs_cpu on all cores, the same pair (and its counts must equal the GPU's)
 * SVD: --svd-gpu matrices of --svd-n x --svd-n (random uniform) through svd_values_batched_cuda,
 * and --svd-cpu of them through svd_values (LAPACK sgesdd on OpenBLAS), seconds per matrix; the
 * first matrix's spectra compared.
 * Prints "RESULT name value unit" lines; exit 77 without a CUDA device.
 *
 * usage: cuda_scan_bench [--gib G] [--svd-n N] [--svd-gpu K] [--svd-cpu K] [--no-scan]
 *                        [--no-svd] [--threads T] */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "formats/ss_error.h"
#include "kernels/scan.h"
#include "kernels/scan_cuda.h"
#include "kernels/svd.h"
#include "kernels/svd_cuda.h"
#include "kernels/threadpool.h"
}

#define SB_TRY(call)                                                                          \
    do {                                                                                      \
        cudaError_t e_ = (call);                                                              \
        if (e_ != cudaSuccess) {                                                              \
            fprintf(stderr, "cuda_scan_bench: %s failed at %s:%d: %s\n", #call, __FILE__,     \
                    __LINE__, cudaGetErrorString(e_));                                        \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

static double sb_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t sb_hash(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ---- the pair, generated in pieces on the pool ---- */

typedef struct Gen {
    uint16_t *a, *b;
    size_t n, piece;
} Gen;

static void sb_gen(void *ctx, size_t p, int worker)
{
    (void)worker;
    Gen *g = (Gen *)ctx;
    size_t end = (p + 1) * g->piece < g->n ? (p + 1) * g->piece : g->n;
    for (size_t i = p * g->piece; i < end; i++) {
        uint64_t h = sb_hash(i);
        /* |w| in [2^-8, 2^-4): exponents 119..122, random mantissa and sign */
        uint16_t w = (uint16_t)(((h & 1) << 15) | ((119 + ((h >> 1) & 3)) << 7) | ((h >> 3) & 0x7f));
        g->a[i] = w;
        uint32_t r = (uint32_t)(h >> 32) % 1000;
        g->b[i] = r < 60 ? (uint16_t)(w + 1) : r < 90 ? (uint16_t)(w - 1) : r < 91 ? (uint16_t)(w + 2) : w;
    }
}

/* ---- SVD ---- */

static void sb_svd(size_t n, int ngpu, int ncpu)
{
    size_t per = n * n;
    int nmat = ngpu > ncpu ? ngpu : ncpu;
    float *a = (float *)malloc((size_t)nmat * per * sizeof(float));
    float *sg = (float *)malloc((size_t)(ngpu ? ngpu : 1) * n * sizeof(float));
    float *sc = (float *)malloc(n * sizeof(float)), *copy = (float *)malloc(per * sizeof(float));
    if (!a || !sg || !sc || !copy) {
        fprintf(stderr, "cuda_scan_bench: out of memory for the SVD matrices\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)nmat * per; i++)
        a[i] = (float)((double)(sb_hash(i) >> 11) * 0x1p-53 * 2.0 - 1.0);
    SsError err = {0, ""};
    double tg = 0, tc = 0;
    if (ngpu) {
        /* warm-up: handles, cuSOLVER's lazy loading, on a small matrix */
        float tiny[64 * 64], ts[64];
        memcpy(tiny, a, sizeof tiny);
        svd_values_batched_cuda(tiny, 1, 64, 64, ts, &err);
        double t0 = sb_now();
        if (svd_values_batched_cuda(a, (size_t)ngpu, n, n, sg, &err)) {
            fprintf(stderr, "cuda_scan_bench: %s\n", err.msg);
            exit(1);
        }
        tg = (sb_now() - t0) / ngpu;
        printf("RESULT svd_gpu_%zu %.3f s/matrix (%d matrices, cuSOLVER gesvd)\n", n, tg, ngpu);
    }
    for (int k = 0; k < ncpu; k++) {
        memcpy(copy, a + (size_t)k * per, per * sizeof(float));
        double t0 = sb_now();
        if (svd_values(copy, n, n, sc, NULL, &err)) {
            fprintf(stderr, "cuda_scan_bench: %s\n", err.msg);
            exit(1);
        }
        tc += sb_now() - t0;
    }
    if (ncpu) {
        tc /= ncpu;
        printf("RESULT svd_cpu_%zu %.3f s/matrix (%d matrices, LAPACKE_sgesdd)\n", n, tc, ncpu);
    }
    if (ngpu && ncpu) {
        double worst = 0;
        for (size_t j = 0; j < n; j++)
            worst = fmax(worst, fabs((double)sg[j] - sc[j]) / sc[0]);
        printf("RESULT svd_max_rel_diff %.2e (relative to the largest value)\n", worst);
        printf("RESULT svd_speedup %.1f x\n", tc / tg);
    }
    free(a), free(sg), free(sc), free(copy);
}

/* ---- scan ---- */

static int sb_counts_equal(const ScanCounts *x, const ScanCounts *y)
{
    int ok = x->numel == y->numel && x->changed == y->changed && x->nonfinite == y->nonfinite &&
             x->changed_rtol == y->changed_rtol && x->max_abs_delta == y->max_abs_delta;
    for (int k = 0; k < SCAN_MAX_TOL; k++)
        ok = ok && x->changed_tol[k] == y->changed_tol[k];
    return ok && fabs(x->sum_sq_delta - y->sum_sq_delta) <= 1e-6 * fabs(y->sum_sq_delta) &&
           fabs(x->sum_sq_a - y->sum_sq_a) <= 1e-6 * fabs(y->sum_sq_a);
}

static double sb_copy_gbps(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                           double factor)
{
    cudaEvent_t t0, t1;
    SB_TRY(cudaEventCreate(&t0));
    SB_TRY(cudaEventCreate(&t1));
    SB_TRY(cudaMemcpy(dst, src, bytes, kind));
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        SB_TRY(cudaEventRecord(t0, 0));
        SB_TRY(cudaMemcpy(dst, src, bytes, kind));
        SB_TRY(cudaEventRecord(t1, 0));
        SB_TRY(cudaEventSynchronize(t1));
        float ms;
        SB_TRY(cudaEventElapsedTime(&ms, t0, t1));
        best = fmin(best, ms * 1e-3);
    }
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    return factor * (double)bytes / 1e9 / best;
}

static void sb_scan(double gib, int threads)
{
    size_t n = (size_t)(gib * 1073741824.0 / 4.0); /* two sides of 2 bytes */
    n -= n % 64;
    size_t bytes = n * 2;
    uint16_t *a = (uint16_t *)malloc(bytes), *b = (uint16_t *)malloc(bytes);
    if (!a || !b) {
        fprintf(stderr, "cuda_scan_bench: out of host memory for a %.1f GiB pair\n", gib);
        exit(1);
    }
    ThreadPool *pool = pool_create(threads);
    Gen g = {a, b, n, (size_t)1 << 22};
    double t0 = sb_now();
    pool_run(pool, (n + g.piece - 1) / g.piece, sb_gen, &g);
    pool_destroy(pool);
    printf("pair: %zu BF16 elements a side, %.2f GB in all, generated in %.1f s\n", n,
           2.0 * bytes / 1e9, sb_now() - t0);
    ScanConfig cfg = {3, {1e-6, 1e-4, 1e-2}, 1, 1e-3};
    SsError err = {0, ""};

    /* ceilings: D2D (read + write) and pinned H2D, on 1 GiB */
    size_t probe = (size_t)1 << 30;
    void *d0, *d1, *hp;
    SB_TRY(cudaMalloc(&d0, probe));
    SB_TRY(cudaMalloc(&d1, probe));
    SB_TRY(cudaMallocHost(&hp, probe));
    memset(hp, 1, probe);
    SB_TRY(cudaMemset(d0, 0, probe));
    double d2d = sb_copy_gbps(d1, d0, probe, cudaMemcpyDeviceToDevice, 2.0);
    double h2d = sb_copy_gbps(d0, hp, probe, cudaMemcpyHostToDevice, 1.0);
    SB_TRY(cudaFree(d0));
    SB_TRY(cudaFree(d1));
    SB_TRY(cudaFreeHost(hp));
    printf("RESULT d2d_read_write %.1f GB/s\n", d2d);
    printf("RESULT h2d_pinned %.1f GB/s\n", h2d);

    /* kernel alone, on device-resident copies */
    void *da, *db, *dm;
    SB_TRY(cudaMalloc(&da, bytes));
    SB_TRY(cudaMalloc(&db, bytes));
    SB_TRY(cudaMalloc(&dm, n / 8));
    SB_TRY(cudaMemcpy(da, a, bytes, cudaMemcpyHostToDevice));
    SB_TRY(cudaMemcpy(db, b, bytes, cudaMemcpyHostToDevice));
    ScanCounts kc, kc_mask, gc, cc;
    double best = 1e30, best_mask = 1e30;
    for (int r = 0; r < 4; r++) { /* the first is a warm-up, kept only if it is the best */
        double s;
        if (scan_cuda_resident(&cfg, DT_BF16, da, db, n, NULL, &kc, &s, &err)) {
            fprintf(stderr, "cuda_scan_bench: %s\n", err.msg);
            exit(1);
        }
        best = fmin(best, s);
        if (scan_cuda_resident(&cfg, DT_BF16, da, db, n, (uint8_t *)dm, &kc_mask, &s, &err)) {
            fprintf(stderr, "cuda_scan_bench: %s\n", err.msg);
            exit(1);
        }
        best_mask = fmin(best_mask, s);
    }
    SB_TRY(cudaFree(da));
    SB_TRY(cudaFree(db));
    SB_TRY(cudaFree(dm));
    double kgbps = 2.0 * bytes / 1e9 / best, kmgbps = 2.0 * bytes / 1e9 / best_mask;
    printf("RESULT scan_kernel %.1f GB/s (%.0f%% of D2D read+write)\n", kgbps, 100 * kgbps / d2d);
    printf("RESULT scan_kernel_mask %.1f GB/s (%.0f%% of D2D read+write)\n", kmgbps,
           100 * kmgbps / d2d);

    /* end to end from host memory */
    ScanJob job = {DT_BF16, a, b, n};
    ScanCudaOptions opt = scan_cuda_options_default();
    opt.threads = threads;
    double e2e = 1e30;
    for (int r = 0; r < 2; r++) {
        t0 = sb_now();
        if (scan_jobs_cuda(&cfg, &job, NULL, NULL, 1, &opt, &gc, NULL, NULL, &err)) {
            fprintf(stderr, "cuda_scan_bench: %s\n", err.msg);
            exit(1);
        }
        e2e = fmin(e2e, sb_now() - t0);
    }
    double egbps = 2.0 * bytes / 1e9 / e2e;
    printf("RESULT scan_e2e %.1f GB/s (%.0f%% of pinned H2D; %.2f s, device memory bound %.2f GiB)\n",
           egbps, 100 * egbps / h2d, e2e, scan_cuda_device_bytes(&opt) / 1073741824.0);
    /* other pipeline shapes (chunk MiB, streams), for choosing the defaults; one run each after
     * the default's two, and the set-up alone (a one-element job: pinned and device buffers) */
    static const int shapes[][2] = {{256, 2}, {64, 3}, {16, 6}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        ScanCudaOptions o = opt;
        o.chunk_bytes = (size_t)shapes[k][0] << 20;
        o.streams = shapes[k][1];
        ScanJob one = {DT_BF16, a, b, 1};
        ScanCounts c1[1];
        t0 = sb_now();
        if (scan_jobs_cuda(&cfg, &one, NULL, NULL, 1, &o, c1, NULL, NULL, &err)) {
            fprintf(stderr, "cuda_scan_bench: %s\n", err.msg);
            exit(1);
        }
        double setup = sb_now() - t0;
        t0 = sb_now();
        if (scan_jobs_cuda(&cfg, &job, NULL, NULL, 1, &o, &gc, NULL, NULL, &err)) {
            fprintf(stderr, "cuda_scan_bench: %s\n", err.msg);
            exit(1);
        }
        double t = sb_now() - t0, g = 2.0 * bytes / 1e9 / t;
        printf("RESULT scan_e2e_%dmib_%ds %.1f GB/s (%.0f%% of pinned H2D; %.2f s, of which set-up "
               "about %.2f s)\n", shapes[k][0], shapes[k][1], g, 100 * g / h2d, t, setup);
    }

    /* the CPU on the same pair */
    t0 = sb_now();
    if (scan_jobs_cpu(&cfg, &job, 1, threads, &cc, NULL, NULL)) {
        fprintf(stderr, "cuda_scan_bench: scan_jobs_cpu failed\n");
        exit(1);
    }
    double tcpu = sb_now() - t0;
    printf("RESULT scan_cpu %.1f GB/s (%d threads, %s; %.2f s)\n", 2.0 * bytes / 1e9 / tcpu,
           threads ? threads : pool_default_threads(), scan_isa_name(), tcpu);
    int same = sb_counts_equal(&kc, &cc) && sb_counts_equal(&kc_mask, &cc) &&
               sb_counts_equal(&gc, &cc);
    printf("RESULT counts_match %s (changed %llu of %llu)\n", same ? "yes" : "NO",
           (unsigned long long)cc.changed, (unsigned long long)cc.numel);
    free(a);
    free(b);
    if (!same)
        exit(1);
}

int main(int argc, char **argv)
{
    double gib = 8;
    size_t svd_n = 4096;
    int svd_gpu = 4, svd_cpu = 1, do_scan = 1, do_svd = 1, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--gib") == 0 && i + 1 < argc)
            gib = atof(argv[++i]);
        else if (strcmp(argv[i], "--svd-n") == 0 && i + 1 < argc)
            svd_n = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--svd-gpu") == 0 && i + 1 < argc)
            svd_gpu = atoi(argv[++i]);
        else if (strcmp(argv[i], "--svd-cpu") == 0 && i + 1 < argc)
            svd_cpu = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-scan") == 0)
            do_scan = 0;
        else if (strcmp(argv[i], "--no-svd") == 0)
            do_svd = 0;
        else {
            fprintf(stderr, "usage: cuda_scan_bench [--gib G] [--svd-n N] [--svd-gpu K] "
                            "[--svd-cpu K] [--no-scan] [--no-svd] [--threads T]\n");
            return 1;
        }
    }
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    if (do_scan)
        sb_scan(gib, threads);
    if (do_svd)
        sb_svd(svd_n, svd_gpu, svd_cpu);
    return 0;
}
