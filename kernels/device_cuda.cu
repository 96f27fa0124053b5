/* CUDA device discovery for the CUDA build (see device.h). Compiled by nvcc as CUDA C. */
#include <cuda_runtime.h>
#include <stdio.h>

extern "C" {
#include "kernels/device.h"
}

extern "C" int device_cuda_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" error */
        return 0;
    }
    return n;
}

extern "C" const char *device_cuda_describe(int i, char *buf, size_t len)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(buf, len, "no usable CUDA device: %s", cudaGetErrorString(e));
        cudaGetLastError();
        return buf;
    }
    cudaDeviceProp prop;
    if (i < 0 || i >= n || cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
        snprintf(buf, len, "no CUDA device %d (%d present)", i, n);
        return buf;
    }
    snprintf(buf, len, "%s, %.1f GiB, sm_%d%d", prop.name,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.major, prop.minor);
    return buf;
}
