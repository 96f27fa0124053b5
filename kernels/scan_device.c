/* Choosing the scan backend (kernels/scan_cuda.h): --device cpu|cuda|auto, and the CUDA options'
 * defaults and memory bound. Compiled in every build; the CUDA functions come from scan_cuda.cu,
 * or from scan_cuda_none.c in a build without CUDA. */
#include <string.h>

#include "kernels/device.h"
#include "kernels/scan_cuda.h"

ScanCudaOptions scan_cuda_options_default(void)
{
    return (ScanCudaOptions){0, SCAN_CUDA_DEFAULT_CHUNK_BYTES, SCAN_CUDA_DEFAULT_STREAMS, 0};
}

size_t scan_cuda_device_bytes(const ScanCudaOptions *opt)
{
    ScanCudaOptions o = opt ? *opt : scan_cuda_options_default();
    size_t chunk = o.chunk_bytes ? o.chunk_bytes : SCAN_CUDA_DEFAULT_CHUNK_BYTES;
    chunk -= chunk % 512;
    size_t streams = (size_t)(o.streams ? o.streams : SCAN_CUDA_DEFAULT_STREAMS);
    /* per slot: A, B, the mask (chunk / 8 for 1-byte elements), counters, partials, bins */
    return streams * (2 * chunk + chunk / 8 + ((size_t)256 << 10));
}

int scan_device_parse(const char *name, ScanDevice *out, SsError *err)
{
    static const char *const names[] = {"cpu", "cuda", "auto"};
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (ScanDevice)i;
            return 0;
        }
    return ss_err(err, SS_EUSAGE, "unknown device '%s' (cpu, cuda or auto)", name ? name : "");
}

ScanDevice scan_device_resolve(ScanDevice want)
{
    if (want != SCAN_DEVICE_AUTO)
        return want;
    return device_cuda_count() > 0 ? SCAN_DEVICE_CUDA : SCAN_DEVICE_CPU;
}

const char *scan_device_name(ScanDevice dev)
{
    return dev == SCAN_DEVICE_CUDA ? "cuda" : "cpu";
}

int scan_jobs_device(ScanDevice dev, const ScanConfig *cfg, const ScanJob *jobs,
                     uint8_t *const *masks, ScanHist *const *hists, size_t njobs, int threads,
                     ScanCounts *results, ScanProgressFn progress, void *progress_ctx,
                     SsError *err)
{
    dev = scan_device_resolve(dev);
    if (dev == SCAN_DEVICE_CUDA) {
        if (device_cuda_count() <= 0) {
            char why[256];
            return ss_err(err, SS_EUSAGE, "--device cuda: %s",
                          device_cuda_describe(0, why, sizeof why));
        }
        ScanCudaOptions opt = scan_cuda_options_default();
        opt.threads = threads;
        return scan_jobs_cuda(cfg, jobs, masks, hists, njobs, &opt, results, progress,
                              progress_ctx, err);
    }
    int rc = scan_jobs_cpu_ext(cfg, jobs, masks, hists, njobs, threads, results, progress,
                               progress_ctx);
    if (rc == SS_EUSAGE)
        return ss_err(err, rc, "scan: unknown dtype, or a histogram too small for its dtype");
    return rc ? ss_err(err, rc, "cannot start the scan: out of memory or threads") : 0;
}
