/* The CUDA backend of kernels/svd_cuda.h: cusolverDnSgesvd for full spectra, gesvdjBatched for
 * batches of small matrices, and the randomized top-k SVD of svd_cpu.c with its GEMMs on cuBLAS and
 * its QR on cuSOLVER (geqrf + orgqr).
 *
 * Layout as in svd_cpu.c: a row-major (m, n) matrix is, column-major, its transpose A^T (n, m) with
 * leading dimension n, and the left singular vectors of A are the right ones of A^T. cuSOLVER's
 * gesvd wants rows >= columns: for n >= m it runs on A^T as stored and its V^T (m, m) column-major
 * is U_A row-major; for n < m a cublasSgeam transpose gives A (m, n) column-major first, and U_A
 * (m, n) column-major is transposed back into row-major. */
#include <cuda_runtime.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CUDA_LIBS_REDIRECT /* cuBLAS and cuSOLVER calls go through the table loaded on first use */
#include "kernels/cuda_libs.h"

extern "C" {
#include "formats/ss_error.h"
#include "kernels/svd.h"
#include "kernels/svd_cuda.h"
}

/* ---- checked calls ---- */

static const char *cusolver_str(cusolverStatus_t s)
{
    switch (s) {
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUSOLVER_STATUS_INVALID_VALUE: return "invalid value";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "internal error";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "cuSOLVER error";
    }
}

static int svd_fail(SsError *err, const char *lib, const char *what, const char *expr,
                    const char *file, int line, int code)
{
    (void)cudaGetLastError();
    return ss_err(err, code, "svd: %s: %s failed at %s:%d: %s", lib, expr, file, line, what);
}

#define CUDA_TRY(call)                                                                        \
    do {                                                                                      \
        cudaError_t e_ = (call);                                                              \
        if (e_ != cudaSuccess)                                                                \
            return svd_fail(err, "CUDA", cudaGetErrorString(e_), #call, __FILE__, __LINE__,   \
                            e_ == cudaErrorNoDevice || e_ == cudaErrorInsufficientDriver      \
                                ? SS_EUSAGE : SS_EOUTPUT);                                    \
    } while (0)

#define CUBLAS_TRY(call)                                                                      \
    do {                                                                                      \
        cublasStatus_t e_ = (call);                                                           \
        if (e_ != CUBLAS_STATUS_SUCCESS)                                                      \
            return svd_fail(err, "cuBLAS", cublasGetStatusString(e_), #call, __FILE__,        \
                            __LINE__, SS_EOUTPUT);                                            \
    } while (0)

#define CUSOLVER_TRY(call)                                                                    \
    do {                                                                                      \
        cusolverStatus_t e_ = (call);                                                         \
        if (e_ != CUSOLVER_STATUS_SUCCESS)                                                    \
            return svd_fail(err, "cuSOLVER", cusolver_str(e_), #call, __FILE__, __LINE__,     \
                            SS_EOUTPUT);                                                      \
    } while (0)

/* The info a cuSOLVER routine left on the device: 0, or the error. */
#define INFO_CHECK(d_info, what)                                                              \
    do {                                                                                      \
        int info_ = 0;                                                                        \
        CUDA_TRY(cudaMemcpy(&info_, (d_info), sizeof info_, cudaMemcpyDeviceToHost));         \
        if (info_ < 0)                                                                        \
            return ss_err(err, SS_EINPUT, "svd: %s: argument %d is invalid", what, -info_);   \
        if (info_ > 0)                                                                        \
            return ss_err(err, SS_EINPUT, "svd: %s: did not converge (info %d; non-finite "   \
                          "input?)", what, info_);                                            \
    } while (0)

/* Device resources of one call, freed by svd_ctx_free whatever happened. */
typedef struct SvdCtx {
    cublasHandle_t blas;
    cusolverDnHandle_t solver;
    void *dev[12];
    int ndev;
    gesvdjInfo_t jparams;
} SvdCtx;

static void svd_ctx_free(SvdCtx *c)
{
    for (int i = 0; i < c->ndev; i++)
        cudaFree(c->dev[i]);
    if (c->jparams)
        cusolverDnDestroyGesvdjInfo(c->jparams);
    if (c->solver)
        cusolverDnDestroy(c->solver);
    if (c->blas)
        cublasDestroy(c->blas);
    (void)cudaGetLastError();
}

/* cudaMalloc of count elements of size es, remembered in c. */
static int svd_dalloc(SvdCtx *c, void **p, size_t count, size_t es, SsError *err)
{
    CUDA_TRY(cudaMalloc(p, (count ? count : 1) * es));
    c->dev[c->ndev++] = *p;
    return 0;
}

static int svd_init(SvdCtx *c, SsError *err)
{
    int count = 0;
    CUDA_TRY(cudaGetDeviceCount(&count));
    if (count == 0)
        return ss_err(err, SS_EUSAGE, "svd: no CUDA device");
    int rc = cuda_libs_load(err);
    if (rc)
        return rc;
    CUSOLVER_TRY(cusolverDnCreate(&c->solver));
    CUBLAS_TRY(cublasCreate(&c->blas));
    return 0;
}

/* ---- exact spectra ---- */

/* The spectrum of the (m, n) row-major matrix already at d_a (destroyed), into the device arrays
 * d_s (min(m, n)) and, with d_u, U_A row-major (m, min(m, n)). d_t: scratch of m * n floats. */
static int svd_gesvd_device(SvdCtx *c, float *d_a, float *d_t, size_t m, size_t n, float *d_s,
                            float *d_u, float *d_uc, float **d_work, int *lwork_have, int *d_info,
                            SsError *err)
{
    int im = (int)m, in = (int)n, r = im < in ? im : in;
    int rows = in >= im ? in : im, cols = in >= im ? im : in;
    float *mat = d_a;
    if (in < im) { /* A (m, n) column-major from A^T (n, m) column-major */
        const float one = 1.0f, zero = 0.0f;
        CUBLAS_TRY(cublasSgeam(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, im, in, &one, d_a, in, &zero,
                               d_a, im, d_t, im));
        mat = d_t;
    }
    int lwork = 0;
    CUSOLVER_TRY(cusolverDnSgesvd_bufferSize(c->solver, rows, cols, &lwork));
    if (lwork > *lwork_have) {
        cudaFree(*d_work);
        *d_work = NULL;
        CUDA_TRY(cudaMalloc((void **)d_work, (size_t)lwork * sizeof(float)));
        *lwork_have = lwork;
    }
    signed char jobu = 'N', jobvt = 'N';
    float *uu = NULL, *vt = NULL;
    int ldu = rows, ldvt = cols;
    if (d_u && in >= im) { /* V^T of A^T (m, m) column-major is U_A row-major */
        jobvt = 'S';
        vt = d_u;
        ldvt = cols;
    } else if (d_u) { /* U of A (m, n) column-major, transposed below */
        jobu = 'S';
        uu = d_uc;
        ldu = rows;
    }
    CUSOLVER_TRY(cusolverDnSgesvd(c->solver, jobu, jobvt, rows, cols, mat, rows, d_s, uu, ldu, vt,
                                  ldvt, *d_work, lwork, NULL, d_info));
    INFO_CHECK(d_info, "cusolverDnSgesvd");
    if (d_u && in < im) { /* (m, r) column-major -> row-major: (r, m) column-major */
        const float one = 1.0f, zero = 0.0f;
        CUBLAS_TRY(cublasSgeam(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, r, im, &one, d_uc, im, &zero,
                               d_uc, r, d_u, r));
    }
    return 0;
}

static int svd_values_run(SvdCtx *c, float *a, size_t m, size_t n, float *s, float *u,
                          SsError *err)
{
    int rc = svd_init(c, err);
    if (rc)
        return rc;
    size_t r = m < n ? m : n;
    float *d_a, *d_t = NULL, *d_s, *d_u = NULL, *d_uc = NULL, *d_work = NULL;
    int *d_info, lwork = 0;
    if ((rc = svd_dalloc(c, (void **)&d_a, m * n, sizeof(float), err)) ||
        (rc = svd_dalloc(c, (void **)&d_s, r, sizeof(float), err)) ||
        (rc = svd_dalloc(c, (void **)&d_info, 1, sizeof(int), err)) ||
        (n < m && (rc = svd_dalloc(c, (void **)&d_t, m * n, sizeof(float), err))) ||
        (u && (rc = svd_dalloc(c, (void **)&d_u, m * r, sizeof(float), err))) ||
        (u && n < m && (rc = svd_dalloc(c, (void **)&d_uc, m * r, sizeof(float), err))))
        return rc;
    CUDA_TRY(cudaMemcpy(d_a, a, m * n * sizeof(float), cudaMemcpyHostToDevice));
    rc = svd_gesvd_device(c, d_a, d_t, m, n, d_s, d_u, d_uc, &d_work, &lwork, d_info, err);
    if (d_work)
        c->dev[c->ndev++] = d_work;
    if (rc)
        return rc;
    CUDA_TRY(cudaMemcpy(s, d_s, r * sizeof(float), cudaMemcpyDeviceToHost));
    if (u)
        CUDA_TRY(cudaMemcpy(u, d_u, m * r * sizeof(float), cudaMemcpyDeviceToHost));
    return 0;
}

extern "C" int svd_values_cuda(float *a, size_t m, size_t n, float *s, float *u, SsError *err)
{
    int rc = svd_check_dims(m, n, "cuSOLVER", err);
    if (rc || m == 0 || n == 0)
        return rc;
    SvdCtx c;
    memset(&c, 0, sizeof c);
    rc = svd_values_run(&c, a, m, n, s, u, err);
    svd_ctx_free(&c);
    return rc;
}

/* ---- batches ---- */

static int svd_desc(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a < b) - (a > b);
}

static int svd_batched_run(SvdCtx *c, const float *a, size_t batch, size_t m, size_t n, float *s,
                           SsError *err)
{
    int rc = svd_init(c, err);
    if (rc)
        return rc;
    size_t r = m < n ? m : n;
    int im = (int)m, in = (int)n;
    if (m <= 32 && n <= 32 && batch <= INT_MAX) {
        /* gesvdjBatched on A^T (n, m) column-major, all matrices in one call */
        float *d_a, *d_s, *d_u, *d_v, *d_work;
        int *d_info, lwork = 0;
        if ((rc = svd_dalloc(c, (void **)&d_a, batch * m * n, sizeof(float), err)) ||
            (rc = svd_dalloc(c, (void **)&d_s, batch * r, sizeof(float), err)) ||
            (rc = svd_dalloc(c, (void **)&d_u, batch * n * n, sizeof(float), err)) ||
            (rc = svd_dalloc(c, (void **)&d_v, batch * m * m, sizeof(float), err)) ||
            (rc = svd_dalloc(c, (void **)&d_info, batch, sizeof(int), err)))
            return rc;
        CUSOLVER_TRY(cusolverDnCreateGesvdjInfo(&c->jparams));
        CUDA_TRY(cudaMemcpy(d_a, a, batch * m * n * sizeof(float), cudaMemcpyHostToDevice));
        CUSOLVER_TRY(cusolverDnSgesvdjBatched_bufferSize(c->solver, CUSOLVER_EIG_MODE_NOVECTOR, in,
                                                         im, d_a, in, d_s, d_u, in, d_v, im,
                                                         &lwork, c->jparams, (int)batch));
        if ((rc = svd_dalloc(c, (void **)&d_work, (size_t)lwork, sizeof(float), err)))
            return rc;
        CUSOLVER_TRY(cusolverDnSgesvdjBatched(c->solver, CUSOLVER_EIG_MODE_NOVECTOR, in, im, d_a,
                                              in, d_s, d_u, in, d_v, im, d_work, lwork, d_info,
                                              c->jparams, (int)batch));
        int *info = (int *)malloc(batch * sizeof(int));
        if (!info)
            return ss_err(err, SS_EOUTPUT, "svd: out of memory");
        cudaError_t e = cudaMemcpy(info, d_info, batch * sizeof(int), cudaMemcpyDeviceToHost);
        size_t bad = batch;
        for (size_t i = 0; e == cudaSuccess && i < batch && bad == batch; i++)
            if (info[i])
                bad = i;
        int code = bad < batch ? info[bad] : 0;
        free(info);
        CUDA_TRY(e);
        if (bad < batch)
            return ss_err(err, SS_EINPUT, "svd: gesvdjBatched: matrix %zu: info %d", bad, code);
        CUDA_TRY(cudaMemcpy(s, d_s, batch * r * sizeof(float), cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < batch; i++) /* descending, whatever the sorting option */
            qsort(s + i * r, r, sizeof *s, svd_desc);
        return 0;
    }
    /* one after another with one workspace */
    float *d_a, *d_t = NULL, *d_s, *d_work = NULL;
    int *d_info, lwork = 0;
    if ((rc = svd_dalloc(c, (void **)&d_a, m * n, sizeof(float), err)) ||
        (rc = svd_dalloc(c, (void **)&d_s, r, sizeof(float), err)) ||
        (rc = svd_dalloc(c, (void **)&d_info, 1, sizeof(int), err)) ||
        (n < m && (rc = svd_dalloc(c, (void **)&d_t, m * n, sizeof(float), err))))
        return rc;
    for (size_t i = 0; i < batch && rc == 0; i++) {
        cudaError_t e = cudaMemcpy(d_a, a + i * m * n, m * n * sizeof(float),
                                   cudaMemcpyHostToDevice);
        if (e != cudaSuccess) {
            rc = svd_fail(err, "CUDA", cudaGetErrorString(e), "cudaMemcpy", __FILE__, __LINE__,
                          SS_EOUTPUT);
            break;
        }
        rc = svd_gesvd_device(c, d_a, d_t, m, n, d_s, NULL, NULL, &d_work, &lwork, d_info, err);
        if (rc == 0 && (e = cudaMemcpy(s + i * r, d_s, r * sizeof(float),
                                       cudaMemcpyDeviceToHost)) != cudaSuccess)
            rc = svd_fail(err, "CUDA", cudaGetErrorString(e), "cudaMemcpy", __FILE__, __LINE__,
                          SS_EOUTPUT);
    }
    if (d_work)
        c->dev[c->ndev++] = d_work;
    return rc;
}

extern "C" int svd_values_batched_cuda(const float *a, size_t batch, size_t m, size_t n, float *s,
                                       SsError *err)
{
    int rc = svd_check_dims(m, n, "cuSOLVER", err);
    if (rc || m == 0 || n == 0 || batch == 0)
        return rc;
    SvdCtx c;
    memset(&c, 0, sizeof c);
    rc = svd_batched_run(&c, a, batch, m, n, s, err);
    svd_ctx_free(&c);
    return rc;
}

/* ---- randomized top k ---- */

/* The Gaussian test matrix is svd_cpu.c's svd_fill_gaussian: one seed, the same sketch on both
 * backends. */

/* y (rows, cols) column-major on the device -> an orthonormal basis of its columns. */
static int svd_orth(SvdCtx *c, float *y, int rows, int cols, float *tau, float *work, int lwork,
                    int *d_info, SsError *err)
{
    CUSOLVER_TRY(cusolverDnSgeqrf(c->solver, rows, cols, y, rows, tau, work, lwork, d_info));
    INFO_CHECK(d_info, "cusolverDnSgeqrf");
    CUSOLVER_TRY(cusolverDnSorgqr(c->solver, rows, cols, cols, y, rows, tau, work, lwork, d_info));
    INFO_CHECK(d_info, "cusolverDnSorgqr");
    return 0;
}

static int svd_topk_run(SvdCtx *c, const float *a, size_t m, size_t n, size_t k, size_t l,
                        const SvdRandOptions *opt, float *s, float *u, SsError *err)
{
    int rc = svd_init(c, err);
    if (rc)
        return rc;
    int im = (int)m, in = (int)n, il = (int)l, ik = (int)k;
    float *omega = (float *)malloc(n * l * sizeof(float));
    if (!omega)
        return ss_err(err, SS_EOUTPUT, "svd: out of memory for %zu floats", n * l);
    svd_fill_gaussian(omega, n * l, opt->seed);
    float *d_a, *d_om, *d_q, *d_tau, *d_sl, *d_vt, *d_work, *d_u = NULL;
    int *d_info;
    if ((rc = svd_dalloc(c, (void **)&d_a, m * n, sizeof(float), err)) ||
        (rc = svd_dalloc(c, (void **)&d_om, n * l, sizeof(float), err)) ||
        (rc = svd_dalloc(c, (void **)&d_q, m * l, sizeof(float), err)) ||
        (rc = svd_dalloc(c, (void **)&d_tau, l, sizeof(float), err)) ||
        (rc = svd_dalloc(c, (void **)&d_sl, l, sizeof(float), err)) ||
        (rc = svd_dalloc(c, (void **)&d_vt, l * l, sizeof(float), err)) ||
        (rc = svd_dalloc(c, (void **)&d_info, 1, sizeof(int), err)) ||
        (u && (rc = svd_dalloc(c, (void **)&d_u, m * k, sizeof(float), err)))) {
        free(omega);
        return rc;
    }
    cudaError_t e = cudaMemcpy(d_om, omega, n * l * sizeof(float), cudaMemcpyHostToDevice);
    free(omega);
    CUDA_TRY(e);
    CUDA_TRY(cudaMemcpy(d_a, a, m * n * sizeof(float), cudaMemcpyHostToDevice));
    /* one workspace for geqrf/orgqr on (m, l) and (n, l), and gesvd on (n, l) */
    int lw = 0, x = 0;
    CUSOLVER_TRY(cusolverDnSgeqrf_bufferSize(c->solver, im, il, d_q, im, &x));
    lw = x > lw ? x : lw;
    CUSOLVER_TRY(cusolverDnSgeqrf_bufferSize(c->solver, in, il, d_om, in, &x));
    lw = x > lw ? x : lw;
    CUSOLVER_TRY(cusolverDnSorgqr_bufferSize(c->solver, im, il, il, d_q, im, d_tau, &x));
    lw = x > lw ? x : lw;
    CUSOLVER_TRY(cusolverDnSorgqr_bufferSize(c->solver, in, il, il, d_om, in, d_tau, &x));
    lw = x > lw ? x : lw;
    CUSOLVER_TRY(cusolverDnSgesvd_bufferSize(c->solver, in, il, &x));
    lw = x > lw ? x : lw;
    if ((rc = svd_dalloc(c, (void **)&d_work, (size_t)lw, sizeof(float), err)))
        return rc;
    const float one = 1.0f, zero = 0.0f;
    /* Y = A Omega: A is A^T (n, m) column-major, so op = transpose */
    CUBLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, im, il, in, &one, d_a, in, d_om, in,
                           &zero, d_q, im));
    if ((rc = svd_orth(c, d_q, im, il, d_tau, d_work, lw, d_info, err)))
        return rc;
    for (size_t it = 0; it < opt->power_iters; it++) {
        CUBLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, in, il, im, &one, d_a, in, d_q,
                               im, &zero, d_om, in));
        if ((rc = svd_orth(c, d_om, in, il, d_tau, d_work, lw, d_info, err)))
            return rc;
        CUBLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, im, il, in, &one, d_a, in,
                               d_om, in, &zero, d_q, im));
        if ((rc = svd_orth(c, d_q, im, il, d_tau, d_work, lw, d_info, err)))
            return rc;
    }
    /* B^T = A^T Q (n, l); its V^T (l, l) column-major holds the left vectors of B */
    CUBLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, in, il, im, &one, d_a, in, d_q, im,
                           &zero, d_om, in));
    CUSOLVER_TRY(cusolverDnSgesvd(c->solver, 'N', u ? 'S' : 'N', in, il, d_om, in, d_sl, NULL, in,
                                  d_vt, il, d_work, lw, NULL, d_info));
    INFO_CHECK(d_info, "cusolverDnSgesvd");
    CUDA_TRY(cudaMemcpy(s, d_sl, k * sizeof(float), cudaMemcpyDeviceToHost));
    if (u) {
        /* u (m, k) row-major = (k, m) column-major = V_b[:, :k]^T Q^T: the first k rows of vt
         * (column-major, leading dimension l) times Q^T */
        CUBLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, ik, im, il, &one, d_vt, il, d_q,
                               im, &zero, d_u, ik));
        CUDA_TRY(cudaMemcpy(u, d_u, m * k * sizeof(float), cudaMemcpyDeviceToHost));
    }
    return 0;
}

extern "C" int svd_topk_cuda(const float *a, size_t m, size_t n, size_t k,
                             const SvdRandOptions *opt, float *s, float *u, SsError *err)
{
    SvdRandOptions o;
    int rc = svd_topk_begin(m, n, k, opt, "cuSOLVER", &o, err);
    if (rc)
        return rc < 0 ? rc : 0;
    opt = &o;
    size_t r = m < n ? m : n;
    size_t l = k + opt->oversample;
    if (l >= r) { /* as svd_topk: the exact spectrum, truncated */
        float *copy = (float *)malloc(m * n * sizeof(float)), *sall = (float *)malloc(r * sizeof(float));
        float *uall = u ? (float *)malloc(m * r * sizeof(float)) : NULL;
        rc = (!copy || !sall || (u && !uall)) ? ss_err(err, SS_EOUTPUT, "svd: out of memory") : 0;
        if (!rc) {
            memcpy(copy, a, m * n * sizeof(float));
            rc = svd_values_cuda(copy, m, n, sall, uall, err);
        }
        if (!rc) {
            memcpy(s, sall, k * sizeof *s);
            for (size_t i = 0; u && i < m; i++)
                memcpy(u + i * k, uall + i * r, k * sizeof *u);
        }
        free(copy);
        free(sall);
        free(uall);
        return rc;
    }
    SvdCtx c;
    memset(&c, 0, sizeof c);
    rc = svd_topk_run(&c, a, m, n, k, l, opt, s, u, err);
    svd_ctx_free(&c);
    return rc;
}
