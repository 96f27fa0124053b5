/* Private to kernels/train_model.c: the cuBLAS GEMM of the CUDA backend (train_model_cuda.cu; in
 * a build without CUDA, stubs in train_ops_none.c that return SS_EUSAGE). */
#ifndef SS_KERNELS_TRAIN_MODEL_CUDA_H
#define SS_KERNELS_TRAIN_MODEL_CUDA_H

#include <stddef.h>

#include "formats/ss_error.h"

typedef struct TmCudaGemm TmCudaGemm;

/* A cuBLAS handle on the default stream; bf16: convert A and B to bf16 (round to nearest even)
 * and multiply with cublasGemmEx at float32 accumulation, else cublasSgemm. */
int tm_cuda_gemm_create(int bf16, TmCudaGemm **out, SsError *err);
void tm_cuda_gemm_free(TmCudaGemm *g);

/* Row-major C (M, N) = alpha op(A) op(B) + beta C on device pointers, as model_gemm: A is (M, K)
 * (stored (K, M) when transa), B is (K, N) (stored (N, K) when transb). */
int tm_cuda_gemm(TmCudaGemm *g, int transa, int transb, size_t M, size_t N, size_t K, float alpha,
                 const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                 size_t ldc, SsError *err);

#endif
