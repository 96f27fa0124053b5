/* The CUDA runtime's checked call for the .cu files of kernels/: a failed call becomes an SS_E*
 * code with "<who>: CUDA: <call> failed at <file>:<line>: <reason>" in the SsError `err` of the
 * calling function (SS_EUSAGE when there is no usable device, SS_EOUTPUT otherwise). */
#ifndef SS_CUDA_CHECK_H
#define SS_CUDA_CHECK_H

#include <cuda_runtime.h>

extern "C" {
#include "formats/ss_error.h"
}

static inline int ss_cuda_fail(SsError *err, const char *who, cudaError_t e, const char *expr,
                               const char *file, int line)
{
    int code = SS_EOUTPUT;
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInvalidDevice)
        code = SS_EUSAGE;
    (void)cudaGetLastError(); /* clear a non-sticky error */
    return ss_err(err, code, "%s: CUDA: %s failed at %s:%d: %s", who, expr, file, line,
                  cudaGetErrorString(e));
}

/* Evaluates a CUDA runtime call; on failure returns from the calling function with the code. */
#define SS_CUDA_TRY(who, call)                                                         \
    do {                                                                               \
        cudaError_t e_ = (call);                                                       \
        if (e_ != cudaSuccess)                                                         \
            return ss_cuda_fail(err, who, e_, #call, __FILE__, __LINE__);              \
    } while (0)

#endif
