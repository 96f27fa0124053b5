/* Copy bandwidth of the CUDA device, the ceilings the CUDA scan is measured against:
 *   h2d_pinned    host (cudaMallocHost) -> device, cudaMemcpy
 *   h2d_pageable  host (malloc) -> device, cudaMemcpy (what an unstaged copy of an mmap would see)
 *   d2h_pinned    device -> pinned host
 *   d2d           device -> device; reported as bytes read + written per second (a scan reads,
 *                 so its GB/s compares with this figure)
 * Best of --reps timed copies of --mib MiB each (CUDA events). Prints one "RESULT name value GB/s"
 * line per figure; exit 77 without a CUDA device. Changes no device setting.
 *
 * usage: cuda_bandwidth [--mib N] [--reps R] */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BW_TRY(call)                                                                          \
    do {                                                                                      \
        cudaError_t e_ = (call);                                                              \
        if (e_ != cudaSuccess) {                                                              \
            fprintf(stderr, "cuda_bandwidth: %s failed at %s:%d: %s\n", #call, __FILE__,      \
                    __LINE__, cudaGetErrorString(e_));                                        \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

/* Best seconds of reps copies of bytes from src to dst. */
static double bw_time(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, int reps)
{
    cudaEvent_t t0, t1;
    BW_TRY(cudaEventCreate(&t0));
    BW_TRY(cudaEventCreate(&t1));
    BW_TRY(cudaMemcpy(dst, src, bytes, kind)); /* warm-up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        BW_TRY(cudaEventRecord(t0, 0));
        BW_TRY(cudaMemcpy(dst, src, bytes, kind));
        BW_TRY(cudaEventRecord(t1, 0));
        BW_TRY(cudaEventSynchronize(t1));
        float ms = 0;
        BW_TRY(cudaEventElapsedTime(&ms, t0, t1));
        if (ms * 1e-3 < best)
            best = ms * 1e-3;
    }
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    return best;
}

int main(int argc, char **argv)
{
    size_t mib = 1024;
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc)
            mib = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: cuda_bandwidth [--mib N] [--reps R]\n");
            return 1;
        }
    }
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    cudaDeviceProp prop;
    BW_TRY(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s, %.1f GiB, sm_%d%d, %d SMs\n", prop.name,
           prop.totalGlobalMem / 1073741824.0, prop.major, prop.minor, prop.multiProcessorCount);
    size_t bytes = mib << 20;
    void *pinned, *pageable, *d0, *d1;
    BW_TRY(cudaMallocHost(&pinned, bytes));
    pageable = malloc(bytes);
    if (!pageable) {
        fprintf(stderr, "cuda_bandwidth: out of host memory\n");
        return 1;
    }
    memset(pinned, 1, bytes);
    memset(pageable, 1, bytes);
    BW_TRY(cudaMalloc(&d0, bytes));
    BW_TRY(cudaMalloc(&d1, bytes));
    BW_TRY(cudaMemset(d0, 0, bytes));
    const double gb = (double)bytes / 1e9;
    double h2d = gb / bw_time(d0, pinned, bytes, cudaMemcpyHostToDevice, reps);
    double h2dp = gb / bw_time(d0, pageable, bytes, cudaMemcpyHostToDevice, reps);
    double d2h = gb / bw_time(pinned, d0, bytes, cudaMemcpyDeviceToHost, reps);
    double d2d = 2 * gb / bw_time(d1, d0, bytes, cudaMemcpyDeviceToDevice, reps);
    printf("RESULT h2d_pinned %.1f GB/s\n", h2d);
    printf("RESULT h2d_pageable %.1f GB/s\n", h2dp);
    printf("RESULT d2h_pinned %.1f GB/s\n", d2h);
    printf("RESULT d2d_read_write %.1f GB/s\n", d2d);
    cudaFree(d0);
    cudaFree(d1);
    cudaFreeHost(pinned);
    free(pageable);
    return 0;
}
