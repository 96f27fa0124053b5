/* The scan pass on a CUDA device (kernels/scan_cuda.h; the design in docs/cuda.md).
 *
 * Kernels, one instantiation per dtype (DT a template constant, so decoding specialises as the
 * portable CPU loop's does):
 *   scan_kernel<DT>  each thread takes units of 16 (1-byte dtypes) or 8 elements, loaded with
 *                    16-byte vector loads, classifies every pair with the shared SS_HD rule of
 *                    kernels/scan_elem.h (the very functions scan_portable.c calls), writes the
 *                    unit's whole mask bytes, and keeps its counts in registers; each block then
 *                    reduces with warp shuffles, adds its integer counts with 64-bit atomicAdd
 *                    (atomicMax on the bits of the nonnegative max) and stores its two double sums
 *                    as a partial of its own;
 *   sums_kernel      one block adds the per-block partials in a fixed order: the sums never
 *                    depend on scheduling;
 *   hist_kernel<DT>  walks the chunk's mask words, bins each changed pair with scan_elem_hist_bin
 *                    into 32-bit shared-memory bins, and flushes them with 64-bit atomicAdd.
 *
 * Host side: a pipeline of `streams` slots. A slot owns a stream, an event, device buffers for one
 * chunk (A, B, mask, counters, partials, bins) and pinned twins. For each chunk in job order the
 * host takes the next slot (waiting for its event and harvesting its previous chunk: counts merged
 * into results[job] in chunk order, mask bytes and bins copied out), copies the chunk from the
 * caller's memory into the slot's pinned buffers on the thread pool, and enqueues
 * H2D -> scan -> sums -> [hist] -> D2H on the slot's stream; meanwhile the other slots' copies and
 * kernels run. Every CUDA call goes through CUDA_TRY (file, line, cudaGetErrorString). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "formats/dtype.h"
#include "formats/ss_error.h"
#include "kernels/scan.h"
#include "kernels/scan_cuda.h"
#include "kernels/threadpool.h"
}
#include "kernels/cuda_check.h"
#include "kernels/scan_elem.h"

#define SCAN_CUDA_BLOCK 256
#define SCAN_CUDA_WARPS (SCAN_CUDA_BLOCK / 32)
#define SCAN_CUDA_BLOCKS_PER_SM 4
#define SCAN_CUDA_COPY_PIECE ((size_t)4 << 20) /* bytes one pool task copies into pinned memory */

/* ---- errors ---------------------------------------------------------------------------------- */

/* Every CUDA runtime call is checked (kernels/cuda_check.h). */
#define CUDA_TRY(call) SS_CUDA_TRY("scan", call)

/* ---- per-dtype constants ----------------------------------------------------------------------- */

__host__ __device__ constexpr int dt_size(DType dt)
{
    return dt == DT_I16 || dt == DT_U16 || dt == DT_F16 || dt == DT_BF16 ? 2
           : dt == DT_I32 || dt == DT_U32 || dt == DT_F32               ? 4
           : dt == DT_I64 || dt == DT_U64 || dt == DT_F64               ? 8
                                                                          : 1;
}

__host__ __device__ constexpr int dt_is_float(DType dt)
{
    return dt == DT_F16 || dt == DT_BF16 || dt == DT_F32 || dt == DT_F64 || dt == DT_F8_E4M3 ||
           dt == DT_F8_E5M2;
}

/* Elements a thread takes at once: whole mask bytes, and whole 16-byte loads. */
__host__ __device__ constexpr int dt_unit(DType dt)
{
    return dt_size(dt) == 1 ? 16 : 8;
}

/* ---- device-side counters ------------------------------------------------------------------- */

/* What a chunk's kernels leave on the device (and copy back). */
typedef struct DevCounts {
    unsigned long long changed, nonfinite, rtol, max_bits; /* max: bits of a double >= 0 */
    unsigned long long tol[SCAN_MAX_TOL];
    double sq_d, sq_a;
} DevCounts;

typedef struct ScanParams {
    ScanConfig cfg;
    int quiet;       /* every tol and rtol >= 0: equal bits count only a^2 (or nonfinite) */
    uint64_t n;
    const uint8_t *a, *b;
    uint8_t *mask;   /* ceil(n/8) bytes or NULL */
    DevCounts *counts;
    double *partials; /* (gridDim.x, 2) */
} ScanParams;

/* One pair: the portable loop's body (kernels/scan_portable.c), on stored bits held in registers
 * (ra, rb: the unit's bytes) or in memory. Returns the mask bit. */
template <DType DT>
__device__ __forceinline__ int scan_pair(const ScanConfig *cfg, int quiet, const void *ra,
                                         const void *rb, size_t k, ScanCounts *c, double *sq_d,
                                         double *sq_a)
{
    uint64_t xa = scan_elem_bits(DT, ra, k), xb = scan_elem_bits(DT, rb, k);
    double da = ss_decode(DT, ra, k);
    if (xa == xb && quiet) {
        if (isfinite(da))
            *sq_a += da * da;
        else
            c->nonfinite++;
        return 0;
    }
    double db = ss_decode(DT, rb, k);
    int changed = scan_elem_changed(dt_is_float(DT), xa, xb, da, db);
    scan_elem_account(cfg, changed, da, db, c, sq_d, sq_a);
    return changed;
}

__device__ __forceinline__ unsigned long long warp_sum_u64(unsigned long long v)
{
    for (int o = 16; o; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ unsigned long long warp_max_u64(unsigned long long v)
{
    for (int o = 16; o; o >>= 1) {
        unsigned long long w = __shfl_down_sync(0xffffffffu, v, o);
        v = w > v ? w : v;
    }
    return v;
}

__device__ __forceinline__ double warp_sum_f64(double v)
{
    for (int o = 16; o; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* Field f of the block reduction: 0 changed, 1 nonfinite, 2 rtol, 3 max bits, 4 + k tol[k]. */
#define RED_FIELDS (4 + SCAN_MAX_TOL)

template <DType DT>
__global__ void __launch_bounds__(SCAN_CUDA_BLOCK) scan_kernel(ScanParams p)
{
    constexpr int ES = dt_size(DT), U = dt_unit(DT), NV = U * ES / 16;
    __shared__ ScanConfig cfg;
    __shared__ unsigned long long s_u[SCAN_CUDA_WARPS][RED_FIELDS];
    __shared__ double s_d[SCAN_CUDA_WARPS][2];
    if (threadIdx.x == 0)
        cfg = p.cfg;
    __syncthreads();

    ScanCounts c = {};
    double sq_d = 0.0, sq_a = 0.0;
    /* Pairs whose bits differ (and, unless quiet, every pair) go through a per-warp stage and are
     * accounted 32 at a time, one per lane, so that the full rule (scan_elem_account) runs with
     * every lane busy; equal pairs, the common case, only add a^2 (or count a non-finite a), in
     * the thread that loaded them. Before, each thread ran the rule on its own changed elements:
     * 6 of 32 lanes busy on average (measured on an H200). */
    __shared__ double s_stage[SCAN_CUDA_WARPS][2][64];
    __shared__ unsigned char s_changed[SCAN_CUDA_WARPS][64];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    double *st_a = s_stage[warp][0], *st_b = s_stage[warp][1];
    unsigned char *st_c = s_changed[warp];
    const unsigned below = (1u << lane) - 1u; /* lanes before this one */
    int fill = 0;                             /* staged pairs, the same in every lane */
    const uint64_t units = p.n / U, stride = (uint64_t)gridDim.x * blockDim.x;
    /* the loop runs while any lane of the warp has a unit, so that ballots see every lane */
    for (uint64_t u = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
         __any_sync(0xffffffffu, u < units); u += stride) {
        const bool active = u < units;
        uint4 ra[NV], rb[NV]; /* the unit's bytes of A and B */
#pragma unroll
        for (int v = 0; v < NV; v++)
            ra[v] = rb[v] = make_uint4(0, 0, 0, 0);
        if (active) {
            const uint4 *pa = (const uint4 *)(p.a + u * U * ES);
            const uint4 *pb = (const uint4 *)(p.b + u * U * ES);
#pragma unroll
            for (int v = 0; v < NV; v++) {
                ra[v] = __ldcs(pa + v);
                rb[v] = __ldcs(pb + v);
            }
        }
        unsigned bits = 0;
#pragma unroll
        for (int k = 0; k < U; k++) {
            uint64_t xa = scan_elem_bits(DT, ra, (size_t)k), xb = scan_elem_bits(DT, rb, (size_t)k);
            double da = ss_decode(DT, ra, (size_t)k);
            const bool stage = active && (xa != xb || !p.quiet);
            if (active && !stage) {
                if (isfinite(da))
                    sq_a += da * da;
                else
                    c.nonfinite++;
            }
            const unsigned ball = __ballot_sync(0xffffffffu, stage);
            if (stage) {
                double db = ss_decode(DT, rb, (size_t)k);
                int changed = scan_elem_changed(dt_is_float(DT), xa, xb, da, db);
                int pos = fill + __popc(ball & below);
                st_a[pos] = da;
                st_b[pos] = db;
                st_c[pos] = (unsigned char)changed;
                bits |= (unsigned)changed << k;
            }
            fill += __popc(ball);
            if (fill >= 32) { /* a full batch: one pair a lane, then the rest moves down */
                __syncwarp();
                scan_elem_account(&cfg, st_c[lane], st_a[lane], st_b[lane], &c, &sq_d, &sq_a);
                if (lane < fill - 32) {
                    st_a[lane] = st_a[32 + lane];
                    st_b[lane] = st_b[32 + lane];
                    st_c[lane] = st_c[32 + lane];
                }
                fill -= 32;
                __syncwarp();
            }
        }
        if (active && p.mask) {
            p.mask[u * (U / 8)] = (uint8_t)bits;
            if (U == 16)
                p.mask[u * 2 + 1] = (uint8_t)(bits >> 8);
        }
    }
    __syncwarp();
    if (lane < fill) /* the last, partial batch */
        scan_elem_account(&cfg, st_c[lane], st_a[lane], st_b[lane], &c, &sq_d, &sq_a);
    /* the last partial unit (fewer than U elements), element by element from memory */
    if (blockIdx.x == gridDim.x - 1 && threadIdx.x == 0 && units * U < p.n) {
        unsigned bits = 0;
        for (uint64_t i = units * U; i < p.n; i++)
            bits |= (unsigned)scan_pair<DT>(&cfg, p.quiet, p.a, p.b, (size_t)i, &c, &sq_d, &sq_a)
                    << (i - units * U);
        if (p.mask)
            for (uint64_t i = units * U; i < p.n; i += 8)
                p.mask[i / 8] = (uint8_t)(bits >> (i - units * U));
    }

    /* block reduction: warps, then warp 0 over the warps */
    unsigned long long f[RED_FIELDS];
    f[0] = c.changed;
    f[1] = c.nonfinite;
    f[2] = c.changed_rtol;
    f[3] = __double_as_longlong(c.max_abs_delta);
#pragma unroll
    for (int k = 0; k < SCAN_MAX_TOL; k++)
        f[4 + k] = c.changed_tol[k];
#pragma unroll
    for (int i = 0; i < RED_FIELDS; i++)
        f[i] = i == 3 ? warp_max_u64(f[i]) : warp_sum_u64(f[i]);
    sq_d = warp_sum_f64(sq_d);
    sq_a = warp_sum_f64(sq_a);
    if (lane == 0) {
        for (int i = 0; i < RED_FIELDS; i++)
            s_u[warp][i] = f[i];
        s_d[warp][0] = sq_d;
        s_d[warp][1] = sq_a;
    }
    __syncthreads();
    if (warp == 0) {
#pragma unroll
        for (int i = 0; i < RED_FIELDS; i++) {
            unsigned long long v = lane < SCAN_CUDA_WARPS ? s_u[lane][i] : 0ull;
            f[i] = i == 3 ? warp_max_u64(v) : warp_sum_u64(v);
        }
        sq_d = warp_sum_f64(lane < SCAN_CUDA_WARPS ? s_d[lane][0] : 0.0);
        sq_a = warp_sum_f64(lane < SCAN_CUDA_WARPS ? s_d[lane][1] : 0.0);
        if (lane == 0) {
            if (f[0]) atomicAdd(&p.counts->changed, f[0]);
            if (f[1]) atomicAdd(&p.counts->nonfinite, f[1]);
            if (f[2]) atomicAdd(&p.counts->rtol, f[2]);
            if (f[3]) atomicMax(&p.counts->max_bits, f[3]);
            for (int k = 0; k < SCAN_MAX_TOL; k++)
                if (f[4 + k])
                    atomicAdd(&p.counts->tol[k], f[4 + k]);
            p.partials[2 * blockIdx.x] = sq_d;
            p.partials[2 * blockIdx.x + 1] = sq_a;
        }
    }
}

/* One block: counts->sq_d, sq_a = the partials' sums, in an order fixed by nblocks alone. */
__global__ void __launch_bounds__(SCAN_CUDA_BLOCK) sums_kernel(const double *partials, int nblocks,
                                                               DevCounts *counts)
{
    __shared__ double s[2][SCAN_CUDA_BLOCK];
    double d = 0.0, a = 0.0;
    for (int i = threadIdx.x; i < nblocks; i += SCAN_CUDA_BLOCK) {
        d += partials[2 * i];
        a += partials[2 * i + 1];
    }
    s[0][threadIdx.x] = d;
    s[1][threadIdx.x] = a;
    __syncthreads();
    for (int w = SCAN_CUDA_BLOCK / 2; w; w >>= 1) {
        if ((int)threadIdx.x < w) {
            s[0][threadIdx.x] += s[0][threadIdx.x + w];
            s[1][threadIdx.x] += s[1][threadIdx.x + w];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        counts->sq_d = s[0][0];
        counts->sq_a = s[1][0];
    }
}

/* ---- histograms ---------------------------------------------------------------------------- */

/* Device bins of one dtype's range: [abs na | abs_pow2 na | rel nr | rel_pow2 nr | nonfinite |
 * zero], 64-bit in global memory, 32-bit in shared memory. */
typedef struct HistParams {
    const uint8_t *a, *b, *mask;
    uint64_t n;
    int32_t abs_lo, rel_lo;
    int na, nr;
    unsigned long long *bins;
} HistParams;

__host__ __device__ static size_t hist_words(int na, int nr)
{
    return 2 * (size_t)na + 2 * (size_t)nr + 2;
}

/* Element i of dtype DT at p, decoded, with one typed load. */
template <DType DT>
__device__ __forceinline__ double load_decode(const uint8_t *p, uint64_t i)
{
    constexpr int ES = dt_size(DT);
    if (ES == 1) { uint8_t v = p[i]; return ss_decode(DT, &v, 0); }
    if (ES == 2) { uint16_t v = ((const uint16_t *)p)[i]; return ss_decode(DT, &v, 0); }
    if (ES == 4) { uint32_t v = ((const uint32_t *)p)[i]; return ss_decode(DT, &v, 0); }
    uint64_t v = ((const uint64_t *)p)[i];
    return ss_decode(DT, &v, 0);
}

template <DType DT>
__global__ void __launch_bounds__(SCAN_CUDA_BLOCK) hist_kernel(HistParams h)
{
    extern __shared__ unsigned int s_bins[];
    const int words = (int)hist_words(h.na, h.nr);
    for (int i = threadIdx.x; i < words; i += blockDim.x)
        s_bins[i] = 0;
    __syncthreads();
    unsigned int *abs_c = s_bins - h.abs_lo, *abs_p = s_bins + h.na - h.abs_lo;
    unsigned int *rel_c = s_bins + 2 * h.na - h.rel_lo, *rel_p = s_bins + 2 * h.na + h.nr - h.rel_lo;
    unsigned int *rare = s_bins + 2 * h.na + 2 * h.nr;
    const uint64_t nwords = (h.n + 31) / 32, stride = (uint64_t)gridDim.x * blockDim.x;
    const uint32_t *mw = (const uint32_t *)h.mask;
    for (uint64_t w = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; w < nwords; w += stride) {
        uint32_t bits = mw[w];
        if (w * 32 + 32 > h.n) /* bytes past the chunk's mask hold an older chunk's bits */
            bits &= (1u << (h.n - w * 32)) - 1u;
        for (; bits; bits &= bits - 1) {
            uint64_t i = w * 32 + (uint64_t)(__ffs((int)bits) - 1);
            ScanElemBin bin;
            int kind = scan_elem_hist_bin(load_decode<DT>(h.a, i), load_decode<DT>(h.b, i), &bin);
            if (kind != SCAN_BIN_OK) {
                atomicAdd(&rare[kind == SCAN_BIN_NONFINITE ? 0 : 1], 1u);
                continue;
            }
            atomicAdd(&abs_c[bin.abs_e], 1u);
            if (bin.abs_pow2)
                atomicAdd(&abs_p[bin.abs_e], 1u);
            atomicAdd(&rel_c[bin.rel_k], 1u);
            if (bin.rel_pow2)
                atomicAdd(&rel_p[bin.rel_k], 1u);
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < words; i += blockDim.x)
        if (s_bins[i])
            atomicAdd(&h.bins[i], (unsigned long long)s_bins[i]);
}

/* ---- launching per dtype ------------------------------------------------------------------- */

static int scan_quiet(const ScanConfig *cfg)
{
    for (size_t k = 0; k < cfg->ntol; k++)
        if (!(cfg->tol[k] >= 0.0))
            return 0;
    return !cfg->has_rtol || cfg->rtol >= 0.0;
}

static int scan_grid(uint64_t n, int dt_unit_elems, int sms)
{
    uint64_t units = n / (uint64_t)dt_unit_elems + 1;
    uint64_t want = (units + SCAN_CUDA_BLOCK - 1) / SCAN_CUDA_BLOCK;
    uint64_t cap = (uint64_t)sms * SCAN_CUDA_BLOCKS_PER_SM;
    return (int)(want < cap ? want : cap);
}

static int dtype_unit(DType dt)
{
    return dtype_size(dt) == 1 ? 16 : 8;
}

#define SCAN_DTYPES(X)                                                                        \
    X(DT_BOOL) X(DT_U8) X(DT_I8) X(DT_I16) X(DT_U16) X(DT_I32) X(DT_U32) X(DT_I64) X(DT_U64)   \
    X(DT_F16) X(DT_BF16) X(DT_F32) X(DT_F64) X(DT_F8_E4M3) X(DT_F8_E5M2)

/* Enqueues the scan and sums kernels of p on st (p.counts zeroed by the caller). */
static cudaError_t launch_scan(DType dt, const ScanParams &p, int grid, cudaStream_t st)
{
    switch (dt) {
#define X(D) case D: scan_kernel<D><<<grid, SCAN_CUDA_BLOCK, 0, st>>>(p); break;
        SCAN_DTYPES(X)
#undef X
    default: return cudaErrorInvalidValue;
    }
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return e;
    sums_kernel<<<1, SCAN_CUDA_BLOCK, 0, st>>>(p.partials, grid, p.counts);
    return cudaGetLastError();
}

static cudaError_t launch_hist(DType dt, const HistParams &h, int grid, cudaStream_t st)
{
    size_t shmem = hist_words(h.na, h.nr) * sizeof(unsigned int);
    switch (dt) {
#define X(D)                                                                                  \
    case D: {                                                                                 \
        cudaError_t e = cudaFuncSetAttribute(hist_kernel<D>,                                  \
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,     \
                                             (int)shmem);                                     \
        if (e != cudaSuccess)                                                                 \
            return e;                                                                         \
        hist_kernel<D><<<grid, SCAN_CUDA_BLOCK, shmem, st>>>(h);                              \
        break;                                                                                \
    }
        SCAN_DTYPES(X)
#undef X
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

/* A chunk's ScanCounts from the device counters. */
static ScanCounts counts_from_dev(const DevCounts *d, uint64_t numel)
{
    ScanCounts c;
    scan_counts_init(&c);
    c.numel = numel;
    c.changed = d->changed;
    c.nonfinite = d->nonfinite;
    c.changed_rtol = d->rtol;
    for (int k = 0; k < SCAN_MAX_TOL; k++)
        c.changed_tol[k] = d->tol[k];
    unsigned long long mb = d->max_bits;
    memcpy(&c.max_abs_delta, &mb, sizeof mb);
    c.sum_sq_delta = d->sq_d;
    c.sum_sq_a = d->sq_a;
    return c;
}

/* ---- the pipeline -------------------------------------------------------------------------- */

typedef struct Slot {
    cudaStream_t stream;
    cudaEvent_t done;
    uint8_t *d_a, *d_b, *d_mask;
    DevCounts *d_counts;
    double *d_partials;
    unsigned long long *d_bins;
    uint8_t *h_a, *h_b, *h_mask; /* pinned */
    DevCounts *h_counts;         /* pinned */
    unsigned long long *h_bins;  /* pinned */
    int busy, want_mask, want_hist;
    size_t job;
    uint64_t off, len;
} Slot;

typedef struct Pipe {
    int nslots, sms, device_set;
    size_t chunk_bytes, max_bins;
    Slot slot[SCAN_CUDA_MAX_STREAMS];
    ThreadPool *pool;
    /* the call */
    const ScanConfig *cfg;
    const ScanJob *jobs;
    uint8_t *const *masks;
    ScanHist *const *hists;
    ScanCounts *results;
    ScanProgressFn progress;
    void *progress_ctx;
    uint64_t bytes_done, bytes_total;
} Pipe;

static void pipe_free(Pipe *p)
{
    for (int i = 0; i < p->nslots; i++) {
        Slot *s = &p->slot[i];
        if (s->stream)
            cudaStreamSynchronize(s->stream);
        cudaFree(s->d_a);
        cudaFree(s->d_b);
        cudaFree(s->d_mask);
        cudaFree(s->d_counts);
        cudaFree(s->d_partials);
        cudaFree(s->d_bins);
        cudaFreeHost(s->h_a);
        cudaFreeHost(s->h_b);
        cudaFreeHost(s->h_mask);
        cudaFreeHost(s->h_counts);
        cudaFreeHost(s->h_bins);
        if (s->done)
            cudaEventDestroy(s->done);
        if (s->stream)
            cudaStreamDestroy(s->stream);
    }
    if (p->pool)
        pool_destroy(p->pool);
    (void)cudaGetLastError();
}

/* The widest bins any dtype needs. */
static size_t pipe_max_bins(void)
{
    size_t w = 0;
    for (int dt = 0; dt < DT_COUNT; dt++) {
        ScanHistRange r = scan_hist_dtype_range((DType)dt);
        size_t x = hist_words(r.abs_hi - r.abs_lo + 1, r.rel_hi - r.rel_lo + 1);
        w = x > w ? x : w;
    }
    return w;
}

static int pipe_init(Pipe *p, const ScanCudaOptions *opt, int want_masks, int want_hists,
                     SsError *err)
{
    int count = 0;
    CUDA_TRY(cudaGetDeviceCount(&count));
    if (opt->device < 0 || opt->device >= count)
        return ss_err(err, SS_EUSAGE, "scan: no CUDA device %d (%d present)", opt->device, count);
    CUDA_TRY(cudaSetDevice(opt->device));
    CUDA_TRY(cudaDeviceGetAttribute(&p->sms, cudaDevAttrMultiProcessorCount, opt->device));
    p->pool = pool_create(opt->threads);
    if (!p->pool)
        return ss_err(err, SS_EOUTPUT, "scan: cannot start %d host threads", opt->threads);
    p->max_bins = pipe_max_bins();
    size_t cb = p->chunk_bytes, mask_bytes = cb / 8 + 64;
    int grid_max = p->sms * SCAN_CUDA_BLOCKS_PER_SM;
    for (int i = 0; i < p->nslots; i++) {
        Slot *s = &p->slot[i];
        CUDA_TRY(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
        CUDA_TRY(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming));
        CUDA_TRY(cudaMalloc((void **)&s->d_a, cb));
        CUDA_TRY(cudaMalloc((void **)&s->d_b, cb));
        CUDA_TRY(cudaMalloc((void **)&s->d_counts, sizeof(DevCounts)));
        CUDA_TRY(cudaMalloc((void **)&s->d_partials, 2 * (size_t)grid_max * sizeof(double)));
        CUDA_TRY(cudaMallocHost((void **)&s->h_a, cb));
        CUDA_TRY(cudaMallocHost((void **)&s->h_b, cb));
        CUDA_TRY(cudaMallocHost((void **)&s->h_counts, sizeof(DevCounts)));
        if (want_masks || want_hists)
            CUDA_TRY(cudaMalloc((void **)&s->d_mask, mask_bytes));
        if (want_masks)
            CUDA_TRY(cudaMallocHost((void **)&s->h_mask, mask_bytes));
        if (want_hists) {
            CUDA_TRY(cudaMalloc((void **)&s->d_bins, p->max_bins * sizeof(unsigned long long)));
            CUDA_TRY(cudaMallocHost((void **)&s->h_bins,
                                    p->max_bins * sizeof(unsigned long long)));
        }
    }
    return 0;
}

/* Host -> pinned copies of a chunk, in pieces on the pool. */
typedef struct CopyTask {
    uint8_t *dst[2];
    const uint8_t *src[2];
    size_t bytes, pieces;
} CopyTask;

static void copy_piece(void *ctx, size_t i, int worker)
{
    (void)worker;
    CopyTask *t = (CopyTask *)ctx;
    int side = i >= t->pieces;
    size_t k = side ? i - t->pieces : i, off = k * SCAN_CUDA_COPY_PIECE;
    size_t len = t->bytes - off < SCAN_CUDA_COPY_PIECE ? t->bytes - off : SCAN_CUDA_COPY_PIECE;
    memcpy(t->dst[side] + off, t->src[side] + off, len);
}

/* Waits for slot s's chunk and folds it into the results. */
static int pipe_harvest(Pipe *p, Slot *s, SsError *err)
{
    if (!s->busy)
        return 0;
    s->busy = 0;
    CUDA_TRY(cudaEventSynchronize(s->done));
    const ScanJob *j = &p->jobs[s->job];
    ScanCounts c = counts_from_dev(s->h_counts, s->len);
    scan_counts_merge(&p->results[s->job], &c);
    if (s->want_mask)
        memcpy(p->masks[s->job] + s->off / 8, s->h_mask, (size_t)((s->len + 7) / 8));
    if (s->want_hist) {
        ScanHist *h = p->hists[s->job];
        ScanHistRange r = scan_hist_dtype_range(j->dtype);
        size_t na = (size_t)(r.abs_hi - r.abs_lo + 1), nr = (size_t)(r.rel_hi - r.rel_lo + 1);
        size_t oa = (size_t)(r.abs_lo - h->range.abs_lo), orl = (size_t)(r.rel_lo - h->range.rel_lo);
        const unsigned long long *b = s->h_bins;
        for (size_t i = 0; i < na; i++) {
            h->abs_count[oa + i] += b[i];
            h->abs_pow2[oa + i] += b[na + i];
        }
        for (size_t i = 0; i < nr; i++) {
            h->rel_count[orl + i] += b[2 * na + i];
            h->rel_pow2[orl + i] += b[2 * na + nr + i];
        }
        h->nonfinite_changed += b[2 * na + 2 * nr];
        h->zero_delta += b[2 * na + 2 * nr + 1];
    }
    p->bytes_done += 2 * s->len * dtype_size(j->dtype);
    if (p->progress)
        p->progress(p->progress_ctx, p->bytes_done, p->bytes_total);
    return 0;
}

/* Stages elements [off, off + len) of job `job` into slot s and enqueues its work. */
static int pipe_submit(Pipe *p, Slot *s, size_t job, uint64_t off, uint64_t len, SsError *err)
{
    const ScanJob *j = &p->jobs[job];
    size_t es = dtype_size(j->dtype), bytes = (size_t)len * es;
    s->job = job;
    s->off = off;
    s->len = len;
    s->want_mask = p->masks && p->masks[job];
    s->want_hist = p->hists && p->hists[job];
    CopyTask t = {{s->h_a, s->h_b},
                  {(const uint8_t *)j->a + off * es, (const uint8_t *)j->b + off * es},
                  bytes, (bytes + SCAN_CUDA_COPY_PIECE - 1) / SCAN_CUDA_COPY_PIECE};
    pool_run(p->pool, 2 * t.pieces, copy_piece, &t);

    cudaStream_t st = s->stream;
    CUDA_TRY(cudaMemsetAsync(s->d_counts, 0, sizeof(DevCounts), st));
    CUDA_TRY(cudaMemcpyAsync(s->d_a, s->h_a, bytes, cudaMemcpyHostToDevice, st));
    CUDA_TRY(cudaMemcpyAsync(s->d_b, s->h_b, bytes, cudaMemcpyHostToDevice, st));
    int grid = scan_grid(len, dtype_unit(j->dtype), p->sms);
    ScanParams sp = {*p->cfg, scan_quiet(p->cfg), len, s->d_a, s->d_b,
                     s->want_mask || s->want_hist ? s->d_mask : NULL, s->d_counts, s->d_partials};
    CUDA_TRY(launch_scan(j->dtype, sp, grid, st));
    if (s->want_mask)
        CUDA_TRY(cudaMemcpyAsync(s->h_mask, s->d_mask, (size_t)((len + 7) / 8),
                                 cudaMemcpyDeviceToHost, st));
    if (s->want_hist) {
        ScanHistRange r = scan_hist_dtype_range(j->dtype);
        HistParams hp = {s->d_a, s->d_b, s->d_mask, len, r.abs_lo, r.rel_lo,
                         r.abs_hi - r.abs_lo + 1, r.rel_hi - r.rel_lo + 1, s->d_bins};
        size_t words = hist_words(hp.na, hp.nr);
        CUDA_TRY(cudaMemsetAsync(s->d_bins, 0, words * sizeof(unsigned long long), st));
        CUDA_TRY(launch_hist(j->dtype, hp, grid, st));
        CUDA_TRY(cudaMemcpyAsync(s->h_bins, s->d_bins, words * sizeof(unsigned long long),
                                 cudaMemcpyDeviceToHost, st));
    }
    CUDA_TRY(cudaMemcpyAsync(s->h_counts, s->d_counts, sizeof(DevCounts), cudaMemcpyDeviceToHost,
                             st));
    CUDA_TRY(cudaEventRecord(s->done, st));
    s->busy = 1;
    return 0;
}

static int pipe_run(Pipe *p, size_t njobs, SsError *err)
{
    size_t next = 0;
    int rc = 0;
    for (size_t job = 0; job < njobs && rc == 0; job++) {
        const ScanJob *j = &p->jobs[job];
        size_t es = dtype_size(j->dtype);
        uint64_t chunk = (uint64_t)((p->chunk_bytes / es) & ~(size_t)63);
        for (uint64_t off = 0; off < j->numel && rc == 0; off += chunk) {
            Slot *s = &p->slot[next];
            next = (next + 1) % (size_t)p->nslots;
            uint64_t len = j->numel - off < chunk ? j->numel - off : chunk;
            rc = pipe_harvest(p, s, err);
            if (rc == 0)
                rc = pipe_submit(p, s, job, off, len, err);
        }
    }
    for (int i = 0; i < p->nslots && rc == 0; i++) /* the rest, in submission order */
        rc = pipe_harvest(p, &p->slot[(next + (size_t)i) % (size_t)p->nslots], err);
    return rc;
}

/* ---- public ------------------------------------------------------------------------------ */

static int hist_fits(const ScanHist *h, DType dt)
{
    ScanHistRange r = scan_hist_dtype_range(dt);
    return h->buf && h->range.abs_lo <= r.abs_lo && h->range.abs_hi >= r.abs_hi &&
           h->range.rel_lo <= r.rel_lo && h->range.rel_hi >= r.rel_hi;
}

extern "C" int scan_jobs_cuda(const ScanConfig *cfg, const ScanJob *jobs, uint8_t *const *masks,
                              ScanHist *const *hists, size_t njobs, const ScanCudaOptions *opt,
                              ScanCounts *results, ScanProgressFn progress, void *progress_ctx,
                              SsError *err)
{
    ScanCudaOptions o = opt ? *opt : scan_cuda_options_default();
    if (o.chunk_bytes == 0)
        o.chunk_bytes = SCAN_CUDA_DEFAULT_CHUNK_BYTES;
    o.chunk_bytes -= o.chunk_bytes % 512;
    if (o.streams == 0)
        o.streams = SCAN_CUDA_DEFAULT_STREAMS;
    if (o.chunk_bytes < 4096 || o.streams < 2 || o.streams > SCAN_CUDA_MAX_STREAMS)
        return ss_err(err, SS_EUSAGE, "scan: CUDA options: chunk of %zu bytes, %d streams "
                      "(need >= 4096 bytes and 2..%d streams)", o.chunk_bytes, o.streams,
                      SCAN_CUDA_MAX_STREAMS);
    if (cfg->ntol > SCAN_MAX_TOL)
        return ss_err(err, SS_EUSAGE, "scan: %zu tolerances (at most %d)", cfg->ntol,
                      SCAN_MAX_TOL);
    Pipe p;
    memset(&p, 0, sizeof p);
    p.nslots = o.streams;
    p.chunk_bytes = o.chunk_bytes;
    p.cfg = cfg;
    p.jobs = jobs;
    p.masks = masks;
    p.hists = hists;
    p.results = results;
    p.progress = progress;
    p.progress_ctx = progress_ctx;
    int want_masks = 0, want_hists = 0;
    for (size_t j = 0; j < njobs; j++) {
        if ((unsigned)jobs[j].dtype >= DT_COUNT)
            return ss_err(err, SS_EUSAGE, "scan: job %zu: unknown dtype %d", j, (int)jobs[j].dtype);
        if (hists && hists[j]) {
            if (!hist_fits(hists[j], jobs[j].dtype))
                return ss_err(err, SS_EUSAGE, "scan: job %zu: histogram range too small for %s", j,
                              dtype_name(jobs[j].dtype));
            want_hists = 1;
        }
        want_masks |= masks && masks[j];
        scan_counts_init(&results[j]);
        p.bytes_total += 2 * jobs[j].numel * dtype_size(jobs[j].dtype);
    }
    int rc = pipe_init(&p, &o, want_masks, want_hists, err);
    if (rc == 0)
        rc = pipe_run(&p, njobs, err);
    if (rc == 0 && progress && p.bytes_done == 0)
        progress(progress_ctx, 0, p.bytes_total);
    pipe_free(&p);
    return rc;
}

extern "C" int scan_cuda_resident(const ScanConfig *cfg, DType dt, const void *d_a,
                                  const void *d_b, uint64_t n, uint8_t *d_mask, ScanCounts *out,
                                  double *seconds, SsError *err)
{
    if ((unsigned)dt >= DT_COUNT || cfg->ntol > SCAN_MAX_TOL)
        return ss_err(err, SS_EUSAGE, "scan: unknown dtype %d or too many tolerances", (int)dt);
    if (((uintptr_t)d_a | (uintptr_t)d_b) % 16)
        return ss_err(err, SS_EUSAGE, "scan: device buffers must be 16-byte aligned");
    int dev = 0, sms = 0;
    CUDA_TRY(cudaGetDevice(&dev));
    CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    int grid = scan_grid(n, dtype_unit(dt), sms);
    DevCounts *d_counts = NULL, h;
    double *d_partials = NULL;
    cudaEvent_t ev[2] = {NULL, NULL};
    int rc = 0;
    /* allocate, run, free; CUDA_TRY returns, so the work sits in a lambda-free block */
    do {
        cudaError_t e;
#define RES_TRY(call)                                                                         \
    if ((e = (call)) != cudaSuccess) {                                                        \
        rc = ss_cuda_fail(err, "scan", e, #call, __FILE__, __LINE__);                         \
        break;                                                                                \
    }
        RES_TRY(cudaMalloc((void **)&d_counts, sizeof(DevCounts)));
        RES_TRY(cudaMalloc((void **)&d_partials, 2 * (size_t)grid * sizeof(double)));
        RES_TRY(cudaEventCreate(&ev[0]));
        RES_TRY(cudaEventCreate(&ev[1]));
        RES_TRY(cudaMemset(d_counts, 0, sizeof(DevCounts)));
        ScanParams sp = {*cfg, scan_quiet(cfg), n, (const uint8_t *)d_a, (const uint8_t *)d_b,
                         d_mask, d_counts, d_partials};
        RES_TRY(cudaEventRecord(ev[0], 0));
        RES_TRY(launch_scan(dt, sp, grid, 0));
        RES_TRY(cudaEventRecord(ev[1], 0));
        RES_TRY(cudaMemcpy(&h, d_counts, sizeof h, cudaMemcpyDeviceToHost));
        float ms = 0;
        RES_TRY(cudaEventElapsedTime(&ms, ev[0], ev[1]));
        if (seconds)
            *seconds = ms * 1e-3;
        *out = counts_from_dev(&h, n);
#undef RES_TRY
    } while (0);
    cudaFree(d_counts);
    cudaFree(d_partials);
    if (ev[0])
        cudaEventDestroy(ev[0]);
    if (ev[1])
        cudaEventDestroy(ev[1]);
    return rc;
}
