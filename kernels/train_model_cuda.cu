/* The CUDA backend's GEMM for kernels/train_model.c (kernels/train_model_cuda.h): row-major
 * products on cuBLAS, either cublasSgemm (float32 throughout) or, in bf16 mode, both operands
 * rounded to bf16 (nearest even) into scratch buffers and multiplied with cublasGemmEx at float32
 * accumulation (CUBLAS_COMPUTE_32F) into a float32 C, on the default stream.
 *
 * Row-major C (M, N) = op(A) op(B) is column-major C^T (N, M) = op(B)^T op(A)^T, and a row-major
 * matrix with leading dimension ld is its transpose column-major with the same ld: so each call
 * passes B before A and swaps M and N. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdlib.h>

#define CUDA_LIBS_REDIRECT /* cuBLAS calls go through the table loaded on first use */
#include "kernels/cuda_libs.h"

extern "C" {
#include "formats/ss_error.h"
#include "kernels/train_model_cuda.h"
}

struct TmCudaGemm {
    cublasHandle_t handle;
    int bf16;
    __nv_bfloat16 *a16, *b16; /* scratch for the bf16 operands */
    size_t a_cap, b_cap;      /* elements */
};

static int cuda_fail(SsError *err, cudaError_t e, const char *what, int line)
{
    (void)cudaGetLastError();
    return ss_err(err, SS_EOUTPUT, "train model: CUDA: %s failed at %s:%d: %s", what, __FILE__,
                  line, cudaGetErrorString(e));
}

static int cublas_fail(SsError *err, cublasStatus_t s, const char *what, int line)
{
    return ss_err(err, SS_EOUTPUT, "train model: cuBLAS: %s failed at %s:%d: %s (%d)", what,
                  __FILE__, line, cublasGetStatusString(s), (int)s);
}

#define CUDA_TRY(call)                                                                 \
    do {                                                                               \
        cudaError_t e_ = (call);                                                       \
        if (e_ != cudaSuccess)                                                         \
            return cuda_fail(err, e_, #call, __LINE__);                                \
    } while (0)

#define CUBLAS_TRY(call)                                                               \
    do {                                                                               \
        cublasStatus_t s_ = (call);                                                    \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                               \
            return cublas_fail(err, s_, #call, __LINE__);                              \
    } while (0)

extern "C" int tm_cuda_gemm_create(int bf16, TmCudaGemm **out, SsError *err)
{
    *out = NULL;
    int rc = cuda_libs_load(err);
    if (rc)
        return rc;
    TmCudaGemm *g = (TmCudaGemm *)calloc(1, sizeof *g);
    if (!g)
        return ss_err(err, SS_EOUTPUT, "train model: out of memory");
    cublasStatus_t s = cublasCreate(&g->handle);
    if (s != CUBLAS_STATUS_SUCCESS) {
        free(g);
        return cublas_fail(err, s, "cublasCreate", __LINE__);
    }
    /* float32 GEMMs stay float32 (no TF32 tensor-op shortcut) */
    cublasSetMathMode(g->handle, CUBLAS_DEFAULT_MATH);
    g->bf16 = bf16;
    *out = g;
    return SS_OK;
}

extern "C" void tm_cuda_gemm_free(TmCudaGemm *g)
{
    if (!g)
        return;
    cublasDestroy(g->handle);
    cudaFree(g->a16);
    cudaFree(g->b16);
    free(g);
}

/* dst[r * ld + c] = bf16(src[r * ld + c]) for r < rows, c < cols. */
__global__ static void to_bf16_kernel(const float *src, size_t rows, size_t cols, size_t ld,
                                      __nv_bfloat16 *dst)
{
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < rows * cols;
         e += (size_t)gridDim.x * blockDim.x) {
        size_t i = (e / cols) * ld + e % cols;
        dst[i] = __float2bfloat16_rn(src[i]);
    }
}

static int to_bf16(const float *src, size_t rows, size_t cols, size_t ld, __nv_bfloat16 **buf,
                   size_t *cap, SsError *err)
{
    size_t need = rows ? (rows - 1) * ld + cols : 0;
    if (need > *cap) {
        cudaFree(*buf);
        *buf = NULL;
        *cap = 0;
        CUDA_TRY(cudaMalloc((void **)buf, need * sizeof **buf));
        *cap = need;
    }
    size_t n = rows * cols;
    if (n == 0)
        return SS_OK;
    size_t grid = (n + 255) / 256;
    to_bf16_kernel<<<(unsigned)(grid > 65535 * 16 ? 65535 * 16 : grid), 256>>>(src, rows, cols,
                                                                               ld, *buf);
    CUDA_TRY(cudaGetLastError());
    return SS_OK;
}

extern "C" int tm_cuda_gemm(TmCudaGemm *g, int transa, int transb, size_t M, size_t N, size_t K,
                            float alpha, const float *A, size_t lda, const float *B, size_t ldb,
                            float beta, float *C, size_t ldc, SsError *err)
{
    if (M == 0 || N == 0)
        return SS_OK;
    cublasOperation_t opA = transa ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opB = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (!g->bf16) {
        CUBLAS_TRY(cublasSgemm(g->handle, opB, opA, (int)N, (int)M, (int)K, &alpha, B, (int)ldb, A,
                               (int)lda, &beta, C, (int)ldc));
        return SS_OK;
    }
    /* stored shapes (row-major): A (M, K) or (K, M); B (K, N) or (N, K) */
    int rc = to_bf16(A, transa ? K : M, transa ? M : K, lda, &g->a16, &g->a_cap, err);
    if (rc == 0)
        rc = to_bf16(B, transb ? N : K, transb ? K : N, ldb, &g->b16, &g->b_cap, err);
    if (rc != 0)
        return rc;
    CUBLAS_TRY(cublasGemmEx(g->handle, opB, opA, (int)N, (int)M, (int)K, &alpha, g->b16,
                            CUDA_R_16BF, (int)ldb, g->a16, CUDA_R_16BF, (int)lda, &beta, C,
                            CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return SS_OK;
}
