/* The scan pass on a CUDA device: the same contract as scan_jobs_cpu_ext (kernels/scan.h), with the
 * per-element rule shared with the CPU through kernels/scan_elem.h (SS_HD functions compiled by
 * both gcc and nvcc). Same inputs give the same integer counts, masks and histogram bins as the
 * CPU; max_abs_delta is exact too (a max of exactly computed differences); the two sums agree with
 * the CPU's up to rounding (another summation order; the tests allow 1e-6 relative), and for one
 * device and one ScanCudaOptions they do not vary from run to run (per-block partials reduced in a
 * fixed order).
 *
 * Streaming (docs/cuda.md): the jobs' host memory is cut into chunks of at most chunk_bytes a side,
 * copied by a pool of host threads into pinned staging buffers, and sent with cudaMemcpyAsync on
 * `streams` CUDA streams in turn, so that one chunk's copy overlaps another's kernels. Device
 * memory is bounded whatever the model size: streams * (2 + 1/8) * chunk_bytes plus a few hundred
 * KiB (4 * 2 * 32 MiB of inputs with the defaults), and as much pinned host memory.
 *
 * In a build without CUDA (meson -Dcuda=disabled, or no toolkit) these functions exist and return
 * SS_EUSAGE ("built without CUDA"); scan_device_resolve never picks CUDA there. */
#ifndef SS_SCAN_CUDA_H
#define SS_SCAN_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "formats/ss_error.h"
#include "kernels/scan.h"

/* 32 MiB a side on 4 streams: measured on an H200 (2026-11-28) against 64/3, 128/2 and 256/2;
 * smaller chunks pin less host memory up front (cudaMallocHost of 2 x 2 x 256 MiB took ~0.3 s)
 * and overlap sooner. */
#define SCAN_CUDA_DEFAULT_CHUNK_BYTES ((size_t)32 << 20)
#define SCAN_CUDA_DEFAULT_STREAMS 4
#define SCAN_CUDA_MAX_STREAMS 8

typedef struct ScanCudaOptions {
    int device;         /* CUDA device ordinal (default 0) */
    size_t chunk_bytes; /* bytes of one side of a chunk (0: SCAN_CUDA_DEFAULT_CHUNK_BYTES); rounded
                           down to a multiple of 512; at least 4096 */
    int streams;        /* streams and staging slots, 2..SCAN_CUDA_MAX_STREAMS (0: 2) */
    int threads;        /* host threads copying into pinned memory (0: all cores) */
} ScanCudaOptions;

/* opt with every field at its default (device 0). */
ScanCudaOptions scan_cuda_options_default(void);

/* The device memory scan_jobs_cuda allocates with these options, in bytes (the bound above). */
size_t scan_cuda_device_bytes(const ScanCudaOptions *opt);

/* scan_jobs_cpu_ext on a CUDA device: jobs[i].a and .b are host memory (any kind: malloc, mmap);
 * masks and hists as there (masks: NULL or njobs pointers, each NULL or ceil(numel/8) bytes;
 * hists: NULL or njobs pointers to ScanHists whose range holds the job's dtype range, added into).
 * results[i] is overwritten. progress (may be NULL) is called on the calling thread after each
 * chunk. opt NULL: the defaults. Returns 0; SS_EUSAGE for an unknown dtype, a histogram too small
 * for its job, bad options, no CUDA device or a build without CUDA; SS_EOUTPUT when device or
 * pinned memory or host threads cannot be had, or a CUDA call fails (the message names the call,
 * file and line, and cudaGetErrorString's text). err may be NULL. */
int scan_jobs_cuda(const ScanConfig *cfg, const ScanJob *jobs, uint8_t *const *masks,
                   ScanHist *const *hists, size_t njobs, const ScanCudaOptions *opt,
                   ScanCounts *results, ScanProgressFn progress, void *progress_ctx, SsError *err);

/* One pair already in device memory (d_a, d_b: n elements of dt on the current device), for
 * benchmarks and tests: *out is overwritten with its counts; d_mask, when not NULL, is device
 * memory of ceil(n/8) bytes receiving the mask. Synchronous; seconds (may be NULL) receives the
 * time of the kernels alone, measured with CUDA events. Returns as scan_jobs_cuda. */
int scan_cuda_resident(const ScanConfig *cfg, DType dt, const void *d_a, const void *d_b,
                       uint64_t n, uint8_t *d_mask, ScanCounts *out, double *seconds,
                       SsError *err);

/* ---- choosing the backend (--device cpu|cuda|auto) ---- */

typedef enum ScanDevice { SCAN_DEVICE_CPU, SCAN_DEVICE_CUDA, SCAN_DEVICE_AUTO } ScanDevice;

/* Parses "cpu", "cuda" or "auto"; returns 0, or SS_EUSAGE (message in err) for another name. */
int scan_device_parse(const char *name, ScanDevice *out, SsError *err);

/* AUTO becomes CUDA exactly when device_cuda_count() > 0, else CPU; CPU and CUDA stay. */
ScanDevice scan_device_resolve(ScanDevice want);

/* "cpu" or "cuda". */
const char *scan_device_name(ScanDevice dev);

/* The one entry point for callers: scan_jobs_cpu_ext (threads: host threads, 0 all cores) for
 * SCAN_DEVICE_CPU, scan_jobs_cuda with the default options (threads copying) for SCAN_DEVICE_CUDA,
 * resolved first for SCAN_DEVICE_AUTO. CUDA asked for where there is none: SS_EUSAGE with the
 * reason from device_cuda_describe. Errors of the CPU path get the message "cannot start the
 * scan: out of memory or threads" (or the usage reason). */
int scan_jobs_device(ScanDevice dev, const ScanConfig *cfg, const ScanJob *jobs,
                     uint8_t *const *masks, ScanHist *const *hists, size_t njobs, int threads,
                     ScanCounts *results, ScanProgressFn progress, void *progress_ctx,
                     SsError *err);

#endif
