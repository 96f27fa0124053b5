/* scan_jobs_cuda against scan_jobs_cpu_ext (suite gpu; exit 77 without a CUDA device).
 *
 * Fresh random pairs of every dtype (the special-value-rich generator of tests/kernels: NaNs,
 * infinities, signed zeros, subnormals, tolerance and rtol edges, huge exponent gaps), scanned in
 * one call with masks and histograms, under several configs (tolerances, rtol, a negative
 * tolerance that turns off the equal-bits shortcut, no tolerances at all) and several pipeline
 * shapes (small chunks so that jobs split and chunks straddle, 2 and 3 streams): counts,
 * max_abs_delta, masks and histogram bins must be identical, the sums within 1e-6 relative.
 * Also scan_cuda_resident on device buffers, scan_jobs_device's dispatch, and bad options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kt_util.h"
#include "formats/ss_error.h"
#include "kernels/device.h"
#include "kernels/scan.h"
#include "kernels/scan_cuda.h"

#ifdef SS_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#include "tests/check.h"


typedef struct Pair {
    DType dt;
    size_t n;
    uint8_t *a, *b;
} Pair;

static uint64_t progress_last, progress_calls;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    EXPECT(done >= progress_last && done <= total, "progress %llu of %llu after %llu",
           (unsigned long long)done, (unsigned long long)total,
           (unsigned long long)progress_last);
    progress_last = done;
    progress_calls++;
}

/* Scans pairs on both backends with cfg and opt and compares everything. */
static void compare(const char *what, const ScanConfig *cfg, const Pair *pairs, size_t np,
                    const ScanCudaOptions *opt)
{
    ScanJob *jobs = calloc(np, sizeof *jobs);
    ScanCounts *cpu = calloc(np, sizeof *cpu), *gpu = calloc(np, sizeof *gpu);
    uint8_t **mc = calloc(np, sizeof *mc), **mg = calloc(np, sizeof *mg);
    ScanHist *hc = calloc(np, sizeof *hc), *hg = calloc(np, sizeof *hg);
    ScanHist **phc = calloc(np, sizeof *phc), **phg = calloc(np, sizeof *phg);
    for (size_t i = 0; i < np; i++) {
        jobs[i] = (ScanJob){pairs[i].dt, pairs[i].a, pairs[i].b, pairs[i].n};
        size_t mb = (pairs[i].n + 7) / 8;
        mc[i] = malloc(mb + 1);
        mg[i] = malloc(mb + 1);
        memset(mg[i], 0xA5, mb + 1); /* every byte must be written; the one past the end not */
        scan_hist_init(&hc[i], scan_hist_dtype_range(pairs[i].dt));
        scan_hist_init(&hg[i], scan_hist_dtype_range(pairs[i].dt));
        phc[i] = &hc[i];
        phg[i] = &hg[i];
    }
    int rc = scan_jobs_cpu_ext(cfg, jobs, mc, phc, np, 0, cpu, NULL, NULL);
    EXPECT(rc == 0, "%s: scan_jobs_cpu_ext %d", what, rc);
    SsError err = {0, ""};
    progress_last = progress_calls = 0;
    rc = scan_jobs_cuda(cfg, jobs, mg, phg, np, opt, gpu, on_progress, NULL, &err);
    EXPECT(rc == 0, "%s: scan_jobs_cuda %d: %s", what, rc, err.msg);
    EXPECT(progress_calls > 0, "%s: no progress reported", what);
    for (size_t i = 0; rc == 0 && i < np; i++) {
        char w[160];
        snprintf(w, sizeof w, "%s: job %zu %s n=%zu", what, i, dtype_name(pairs[i].dt),
                 pairs[i].n);
        if (!kt_same(w, cfg, &gpu[i], &cpu[i], 1e-6))
            failures++;
        size_t mb = (pairs[i].n + 7) / 8;
        EXPECT(memcmp(mc[i], mg[i], mb) == 0, "%s: mask differs", w);
        EXPECT(mg[i][mb] == 0xA5, "%s: mask written past its end", w);
        ScanHistRange r = hc[i].range;
        size_t words = 2 * (size_t)(r.abs_hi - r.abs_lo + 1) + 2 * (size_t)(r.rel_hi - r.rel_lo + 1);
        EXPECT(memcmp(hc[i].buf, hg[i].buf, words * sizeof(uint64_t)) == 0 &&
                   hc[i].nonfinite_changed == hg[i].nonfinite_changed &&
                   hc[i].zero_delta == hg[i].zero_delta,
               "%s: histogram differs", w);
    }
    for (size_t i = 0; i < np; i++) {
        free(mc[i]);
        free(mg[i]);
        scan_hist_free(&hc[i]);
        scan_hist_free(&hg[i]);
    }
    free(jobs), free(cpu), free(gpu), free(mc), free(mg), free(hc), free(hg), free(phc), free(phg);
}

#ifdef SS_HAVE_CUDA
/* scan_cuda_resident on one pair against scan_jobs_cpu_masks. */
static void check_resident(const ScanConfig *cfg, const Pair *p)
{
    size_t bytes = p->n * dtype_size(p->dt), mb = (p->n + 7) / 8;
    void *da = NULL, *db = NULL, *dm = NULL;
    if (cudaMalloc(&da, bytes ? bytes : 1) || cudaMalloc(&db, bytes ? bytes : 1) ||
        cudaMalloc(&dm, mb ? mb : 1)) {
        EXPECT(0, "cudaMalloc");
        return;
    }
    cudaMemcpy(da, p->a, bytes, cudaMemcpyHostToDevice);
    cudaMemcpy(db, p->b, bytes, cudaMemcpyHostToDevice);
    ScanJob job = {p->dt, p->a, p->b, p->n};
    uint8_t *mc = malloc(mb + 1), *mg = malloc(mb + 1);
    uint8_t *const masks[1] = {mc};
    ScanCounts cpu, gpu;
    scan_jobs_cpu_masks(cfg, &job, masks, 1, 0, &cpu, NULL, NULL);
    SsError err = {0, ""};
    double secs = -1;
    int rc = scan_cuda_resident(cfg, p->dt, da, db, p->n, dm, &gpu, &secs, &err);
    EXPECT(rc == 0 && secs >= 0, "scan_cuda_resident %s: %d %s", dtype_name(p->dt), rc, err.msg);
    cudaMemcpy(mg, dm, mb, cudaMemcpyDeviceToHost);
    if (rc == 0) {
        char w[64];
        snprintf(w, sizeof w, "resident %s", dtype_name(p->dt));
        if (!kt_same(w, cfg, &gpu, &cpu, 1e-6))
            failures++;
        EXPECT(memcmp(mc, mg, mb) == 0, "resident %s: mask differs", dtype_name(p->dt));
    }
    free(mc);
    free(mg);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dm);
}
#endif

int main(void)
{
    char desc[256];
    if (device_cuda_count() == 0) {
        printf("SKIP: %s\n", device_cuda_describe(0, desc, sizeof desc));
        return KT_SKIP;
    }
    printf("device 0: %s\n", device_cuda_describe(0, desc, sizeof desc));

    /* every dtype, sizes that are not multiples of anything, a 0 and a tiny job, and one large
     * enough to span many chunks */
    Pair pairs[DT_COUNT + 3];
    size_t np = 0;
    uint64_t seed = 0x5eed;
    ScanConfig gen = {3, {1e-6, 1e-3, 0.5}, 1, 1e-3};
    for (int dt = 0; dt < DT_COUNT; dt++) {
        size_t n = 100000 + (size_t)kt_below(&seed, 50000);
        if (dt == DT_BF16)
            n = 3000001; /* several chunks of 1 MiB */
        pairs[np++] = (Pair){(DType)dt, n, NULL, NULL};
    }
    pairs[np++] = (Pair){DT_F32, 0, NULL, NULL};
    pairs[np++] = (Pair){DT_F16, 5, NULL, NULL};
    pairs[np++] = (Pair){DT_F8_E4M3, 77, NULL, NULL};
    for (size_t i = 0; i < np; i++) {
        size_t bytes = pairs[i].n * dtype_size(pairs[i].dt);
        pairs[i].a = malloc(bytes + 1);
        pairs[i].b = malloc(bytes + 1);
        kt_fill(pairs[i].dt, kt_rand(&seed), &gen, pairs[i].a, pairs[i].b, pairs[i].n);
    }

    const ScanConfig cfgs[] = {
        {3, {1e-6, 1e-3, 0.5}, 1, 1e-3},
        {SCAN_MAX_TOL, {0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 1, 2, 10, 100, 1e4, 1e30},
         1, 0.25},
        {2, {-1.0, 0.0}, 1, 0.0}, /* negative tolerance: no equal-bits shortcut */
        {0, {0}, 0, 0.0},
    };
    ScanCudaOptions small = scan_cuda_options_default();
    small.chunk_bytes = (size_t)1 << 20;
    ScanCudaOptions three = small;
    three.streams = 3;
    three.chunk_bytes = 4096 * 3 + 512; /* many tiny chunks, odd size */
    for (size_t c = 0; c < sizeof cfgs / sizeof *cfgs; c++) {
        char what[64];
        snprintf(what, sizeof what, "cfg %zu, 1 MiB chunks", c);
        compare(what, &cfgs[c], pairs, np, &small);
    }
    compare("cfg 0, default options", &cfgs[0], pairs, np, NULL);
    compare("cfg 0, 3 streams, 12.5 KiB chunks", &cfgs[0], pairs + DT_F16, 4, &three);

#ifdef SS_HAVE_CUDA
    for (size_t i = 0; i < DT_COUNT; i++)
        check_resident(&cfgs[0], &pairs[i]);
#endif

    /* the dispatcher: cuda and auto (a device is present) give the CPU's counts */
    {
        ScanJob job = {pairs[DT_BF16].dt, pairs[DT_BF16].a, pairs[DT_BF16].b, pairs[DT_BF16].n};
        ScanCounts x, y;
        SsError err = {0, ""};
        ScanDevice dev;
        EXPECT(scan_device_parse("auto", &dev, &err) == 0 && dev == SCAN_DEVICE_AUTO, "parse");
        EXPECT(scan_device_parse("gpu", &dev, &err) == SS_EUSAGE, "parse gpu");
        EXPECT(scan_device_resolve(SCAN_DEVICE_AUTO) == SCAN_DEVICE_CUDA, "auto with a device");
        EXPECT(scan_jobs_device(SCAN_DEVICE_AUTO, &cfgs[0], &job, NULL, NULL, 1, 0, &x, NULL, NULL,
                                &err) == 0, "device auto: %s", err.msg);
        EXPECT(scan_jobs_device(SCAN_DEVICE_CPU, &cfgs[0], &job, NULL, NULL, 1, 0, &y, NULL, NULL,
                                &err) == 0, "device cpu: %s", err.msg);
        if (!kt_same("dispatch", &cfgs[0], &x, &y, 1e-6))
            failures++;
        /* bad options and dtypes are usage errors with a message */
        ScanCudaOptions bad = scan_cuda_options_default();
        bad.streams = 1;
        err.msg[0] = 0;
        EXPECT(scan_jobs_cuda(&cfgs[0], &job, NULL, NULL, 1, &bad, &x, NULL, NULL, &err) ==
                   SS_EUSAGE && err.msg[0], "1 stream accepted");
        bad = scan_cuda_options_default();
        bad.device = 1000;
        EXPECT(scan_jobs_cuda(&cfgs[0], &job, NULL, NULL, 1, &bad, &x, NULL, NULL, &err) ==
                   SS_EUSAGE, "device 1000 accepted");
        job.dtype = DT_COUNT;
        EXPECT(scan_jobs_cuda(&cfgs[0], &job, NULL, NULL, 1, NULL, &x, NULL, NULL, &err) ==
                   SS_EUSAGE, "unknown dtype accepted");
    }

    for (size_t i = 0; i < np; i++) {
        free(pairs[i].a);
        free(pairs[i].b);
    }
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return KT_FAIL;
    }
    printf("scan_cuda: CUDA scan equals the CPU scan on every dtype, config and pipeline shape\n");
    return KT_PASS;
}
