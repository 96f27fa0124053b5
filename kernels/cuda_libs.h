/* cuBLAS and cuSOLVER, loaded on first use (dlopen) instead of when a program starts. Linked the
 * usual way, the two libraries and theirs (cuBLASLt, cuSPARSE, nvJitLink: about 700 MB) are
 * mapped, relocated and initialized at every start of every tool, GPU or not: about 0.1 s, a
 * fifth of a 2 GB scan. The CUDA runtime (small) stays linked.
 *
 * Use: call cuda_libs_load(err) before the first cuBLAS/cuSOLVER call (svd_cuda.cu's and
 * train_model_cuda.cu's set-up do); a .cu file that defines CUDA_LIBS_REDIRECT before including
 * this header then calls the functions by their usual names, which the macros at the end send
 * through the loaded table. */
#ifndef SS_CUDA_LIBS_H
#define SS_CUDA_LIBS_H

#include <cublas_v2.h>
#include <cusolverDn.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "formats/ss_error.h"

/* Every function the CUDA backend calls, by its exported name (cublas_v2.h maps cublasCreate to
 * cublasCreate_v2 and so on), but cublasGemmEx, which C++ overloads (below). */
#define CUDA_LIBS_FUNCTIONS(X)                                                                 \
    X(cublasCreate_v2) X(cublasDestroy_v2) X(cublasSetMathMode) X(cublasGetStatusString)       \
    X(cublasSgemm_v2) X(cublasSgeam)                                                           \
    X(cusolverDnCreate) X(cusolverDnDestroy)                                                   \
    X(cusolverDnSgesvd_bufferSize) X(cusolverDnSgesvd)                                         \
    X(cusolverDnSgeqrf_bufferSize) X(cusolverDnSgeqrf)                                         \
    X(cusolverDnSorgqr_bufferSize) X(cusolverDnSorgqr)                                         \
    X(cusolverDnCreateGesvdjInfo) X(cusolverDnDestroyGesvdjInfo)                               \
    X(cusolverDnSgesvdjBatched_bufferSize) X(cusolverDnSgesvdjBatched)

/* The exported cublasGemmEx (C++ also sees an inline overload taking a cudaDataType compute type). */
typedef cublasStatus_t (*CudaLibsGemmEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t,
                                         int, int, int, const void *, const void *, cudaDataType,
                                         int, const void *, cudaDataType, int, const void *,
                                         void *, cudaDataType, int, cublasComputeType_t,
                                         cublasGemmAlgo_t);

#define CUDA_LIBS_MEMBER(f) __typeof__(&f) f;
typedef struct CudaLibs {
    CUDA_LIBS_FUNCTIONS(CUDA_LIBS_MEMBER)
    CudaLibsGemmEx cublasGemmEx;
} CudaLibs;
#undef CUDA_LIBS_MEMBER

/* The table, once cuda_libs_load succeeded (NULL before). */
extern const CudaLibs *cuda_libs;

/* Loads libcublas.so.<major> and libcusolver.so.<major> (the versions of the headers built
 * against) once per process and fills the table. 0, or SS_EUSAGE saying which library or
 * function could not be loaded (then every later call says the same). Thread-safe. */
int cuda_libs_load(SsError *err);

#ifdef __cplusplus
}
#endif

#ifdef CUDA_LIBS_REDIRECT
#define cublasCreate_v2 (cuda_libs->cublasCreate_v2)
#define cublasDestroy_v2 (cuda_libs->cublasDestroy_v2)
#define cublasSetMathMode (cuda_libs->cublasSetMathMode)
#define cublasGetStatusString (cuda_libs->cublasGetStatusString)
#define cublasSgemm_v2 (cuda_libs->cublasSgemm_v2)
#define cublasSgeam (cuda_libs->cublasSgeam)
#define cublasGemmEx (cuda_libs->cublasGemmEx)
#define cusolverDnCreate (cuda_libs->cusolverDnCreate)
#define cusolverDnDestroy (cuda_libs->cusolverDnDestroy)
#define cusolverDnSgesvd_bufferSize (cuda_libs->cusolverDnSgesvd_bufferSize)
#define cusolverDnSgesvd (cuda_libs->cusolverDnSgesvd)
#define cusolverDnSgeqrf_bufferSize (cuda_libs->cusolverDnSgeqrf_bufferSize)
#define cusolverDnSgeqrf (cuda_libs->cusolverDnSgeqrf)
#define cusolverDnSorgqr_bufferSize (cuda_libs->cusolverDnSorgqr_bufferSize)
#define cusolverDnSorgqr (cuda_libs->cusolverDnSorgqr)
#define cusolverDnCreateGesvdjInfo (cuda_libs->cusolverDnCreateGesvdjInfo)
#define cusolverDnDestroyGesvdjInfo (cuda_libs->cusolverDnDestroyGesvdjInfo)
#define cusolverDnSgesvdjBatched_bufferSize (cuda_libs->cusolverDnSgesvdjBatched_bufferSize)
#define cusolverDnSgesvdjBatched (cuda_libs->cusolverDnSgesvdjBatched)
#endif

#endif
