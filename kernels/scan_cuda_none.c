/* The CUDA scan and SVD entry points in a build without CUDA (kernels/scan_cuda.h,
 * kernels/svd_cuda.h): they exist so that callers and the gpu tests link everywhere, and say why
 * they cannot run. */
#include "kernels/scan_cuda.h"
#include "kernels/svd_cuda.h"

#define NONE_MSG "built without CUDA (meson -Dcuda=enabled needs nvcc, cuBLAS and cuSOLVER)"

int scan_jobs_cuda(const ScanConfig *cfg, const ScanJob *jobs, uint8_t *const *masks,
                   ScanHist *const *hists, size_t njobs, const ScanCudaOptions *opt,
                   ScanCounts *results, ScanProgressFn progress, void *progress_ctx, SsError *err)
{
    (void)cfg, (void)jobs, (void)masks, (void)hists, (void)njobs, (void)opt, (void)results;
    (void)progress, (void)progress_ctx;
    return ss_err(err, SS_EUSAGE, "scan: %s", NONE_MSG);
}

int scan_cuda_resident(const ScanConfig *cfg, DType dt, const void *d_a, const void *d_b,
                       uint64_t n, uint8_t *d_mask, ScanCounts *out, double *seconds,
                       SsError *err)
{
    (void)cfg, (void)dt, (void)d_a, (void)d_b, (void)n, (void)d_mask, (void)out, (void)seconds;
    return ss_err(err, SS_EUSAGE, "scan: %s", NONE_MSG);
}

int svd_values_cuda(float *a, size_t m, size_t n, float *s, float *u, SsError *err)
{
    (void)a, (void)m, (void)n, (void)s, (void)u;
    return ss_err(err, SS_EUSAGE, "svd: %s", NONE_MSG);
}

int svd_values_batched_cuda(const float *a, size_t batch, size_t m, size_t n, float *s,
                            SsError *err)
{
    (void)a, (void)batch, (void)m, (void)n, (void)s;
    return ss_err(err, SS_EUSAGE, "svd: %s", NONE_MSG);
}

int svd_topk_cuda(const float *a, size_t m, size_t n, size_t k, const SvdRandOptions *opt,
                  float *s, float *u, SsError *err)
{
    (void)a, (void)m, (void)n, (void)k, (void)opt, (void)s, (void)u;
    return ss_err(err, SS_EUSAGE, "svd: %s", NONE_MSG);
}
