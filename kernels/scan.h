/* The scan pass: for pairs of equally typed and shaped tensors A and B, count what changed.
 *
 * One C API, two backends: scan_cpu.c (SIMD chosen at run time, threads) and scan_cuda.cu
 * (kernels/scan_cuda.h: the same integer results; compiled, not yet run on a GPU).
 * The definitions (docs/metrics.md) for a pair of elements a, b:
 *   changed       stored bits differ, except that +0 and -0 of a float type are equal;
 *   nonfinite     a or b is NaN or +-Inf;
 *   changed_tol   finite pair with |b - a| > tol (difference of the decoded values, in double),
 *                 or nonfinite pair whose bits differ;
 *   changed_rtol  finite pair with |b - a| > rtol * max(|a|, |b|), or nonfinite with bits differing.
 * Integer and BOOL elements are always finite and decode to their value.
 *
 * Counts are exact and the same on every backend, SIMD level and thread count. Floating-point
 * sums are accumulated per fixed chunk of SCAN_CHUNK_ELEMS elements and merged in chunk order, so
 * they do not depend on the thread count either. */
#ifndef SS_SCAN_H
#define SS_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"

#define SCAN_MAX_TOL 16
#define SCAN_CHUNK_ELEMS ((size_t)1 << 20)

typedef struct ScanConfig {
    size_t ntol;
    double tol[SCAN_MAX_TOL]; /* absolute tolerances, each >= 0 */
    int has_rtol;
    double rtol;              /* relative probe eta >= 0, used when has_rtol */
} ScanConfig;

typedef struct ScanCounts {
    uint64_t numel;
    uint64_t changed;
    uint64_t nonfinite;
    uint64_t changed_tol[SCAN_MAX_TOL];
    uint64_t changed_rtol;
    double max_abs_delta; /* max |b - a| over finite pairs; 0 when there are none */
    double sum_sq_delta;  /* sum of (b - a)^2 over finite pairs */
    double sum_sq_a;      /* sum of a^2 over finite elements of A */
} ScanCounts;

/* One tensor pair to scan: numel elements of dtype at a and at b (may be 0). */
typedef struct ScanJob {
    DType dtype;
    const void *a;
    const void *b;
    uint64_t numel;
} ScanJob;

/* Called on the calling thread between batches: bytes of A and B scanned so far, and in all. */
typedef void (*ScanProgressFn)(void *ctx, uint64_t bytes_done, uint64_t bytes_total);

void scan_counts_init(ScanCounts *c);
/* dst += src: counts add, max takes the larger, sums add (in this order: dst then src). */
void scan_counts_merge(ScanCounts *dst, const ScanCounts *src);

/* Scans n elements single-threaded with the best SIMD path for this CPU; adds into *out
 * (which the caller initialised). n must be <= SCAN_CHUNK_ELEMS for sums to match scan_jobs_cpu.
 * The SIMD paths run with the default MXCSR (round to nearest, no flush-to-zero or
 * denormals-are-zero) and restore the caller's afterwards. */
void scan_block(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t n,
                ScanCounts *out);

/* scan_block that also calls seg_fn(seg_ctx, off, len) (seg_fn may be NULL) for consecutive
 * segments [off, off + len) that together cover [0, n) in order, each right after the scan has
 * read it, so that the hook finds the segment's bytes in cache. Every off is a multiple of 64.
 * The AVX-512 path hands on segments of about 32768 elements; the others, one segment of n.
 * The hook runs on the calling thread with the scan's MXCSR (round to nearest, no FTZ/DAZ) and
 * must not depend on the flags it leaves (they are restored). Counts and sums are exactly
 * scan_block's. */
typedef void (*ScanSegmentFn)(void *ctx, size_t off, size_t len);
void scan_block_seg(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t n,
                    ScanCounts *out, ScanSegmentFn seg_fn, void *seg_ctx);

/* The portable element-by-element reference path, same contract as scan_block. */
void scan_block_portable(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t n,
                         ScanCounts *out);

/* Name of the SIMD path scan_block uses here: "avx512", "avx2" or "portable". Setting the
 * environment variable SS_SCAN_ISA to one of these (a level this CPU has) forces it; it is read
 * once per process, and an unknown or unsupported name is ignored. */
const char *scan_isa_name(void);

/* Scans every job on `threads` threads (0: all cores), writing results[i] for jobs[i]. Anonymous
 * memory used is O(threads), independent of the tensor sizes. progress may be NULL.
 * Returns 0, SS_EUSAGE for a job with an unknown dtype, or SS_EOUTPUT if threads or memory could
 * not be had. Counts never depend on the SIMD path; sums may differ between paths in the last bits
 * (lane structure, FMA), but for one path they do not depend on the thread count. */
int scan_jobs_cpu(const ScanConfig *cfg, const ScanJob *jobs, size_t njobs, int threads,
                  ScanCounts *results, ScanProgressFn progress, void *progress_ctx);

/* The changed-element mask of n elements of dtype dt at a and b, written to mask[0, ceil(n/8)):
 * bit i (LSB-first within each byte: numpy.packbits(changed, bitorder='little')) is 1 exactly when
 * element i changed (the `changed` rule above: bits differ, +0 and -0 equal). The unused high bits
 * of a final partial byte are 0. Single-threaded, on the SIMD path scan_block uses (SS_SCAN_ISA
 * obeyed); every path writes the same bytes. The popcount of the mask equals the changed count. */
void scan_mask_block(DType dt, const void *a, const void *b, size_t n, uint8_t *mask);

/* scan_jobs_cpu that also writes changed-element masks: masks (may be NULL: no masks at all) holds
 * one pointer per job, NULL for a job without a mask, else ceil(jobs[i].numel / 8) bytes that
 * receive the job's mask as scan_mask_block writes it (caller-owned). Each chunk's mask is written
 * right after its counts, while the chunk is still in cache; chunks are whole bytes of the mask
 * (SCAN_CHUNK_ELEMS is a multiple of 8), so threads write disjoint bytes. Counts and sums are
 * exactly those of scan_jobs_cpu; the masks do not depend on the thread count or SIMD path. */
int scan_jobs_cpu_masks(const ScanConfig *cfg, const ScanJob *jobs, uint8_t *const *masks,
                        size_t njobs, int threads, ScanCounts *results, ScanProgressFn progress,
                        void *progress_ctx);

/* ---- Tolerance curves (--hist): exponent histograms of the changed elements ----
 *
 * For a changed pair (mask bit set) of finite values a, b with d = |b - a| > 0 (in double, as the
 * tolerance rule computes it) and m = max(|a|, |b|):
 *   abs bin e = floor(log2 d)           (2^e <= d < 2^(e+1)), and abs_pow2[e] too when d == 2^e;
 *   rel bin k: 2^k * m <= d < 2^(k+1) * m, and rel_pow2[k] too when d == 2^k * m.
 * Both are computed exactly from the binary exponents and significands (no log, no division),
 * subnormals included. A changed pair with a NaN or Inf counts in nonfinite_changed; a changed
 * pair whose decoded difference is 0 (64-bit integers beyond 2^53 that decode to one double)
 * counts in zero_delta and in no bin. Then, exactly, for every integer k:
 *   changed_tol(2^k) = sum_{e > k} abs_count[e] + abs_count[k] - abs_pow2[k] + nonfinite_changed
 * (scan_hist_changed_at_pow2), and the same with the rel bins gives the pairs with
 * d > 2^k * max(|a|, |b|) evaluated exactly (changed_rtol of eta = 2^k wherever 2^k * m does not
 * underflow to a subnormal double). Every changed pair is in exactly one of: an abs bin,
 * nonfinite_changed, zero_delta; the abs and rel bins hold the same pairs.
 *
 * A ScanHist holds bins for a range of exponents: abs_count[i] is exponent abs_lo + i. Ranges per
 * dtype (scan_hist_dtype_range) cover every possible difference of that dtype:
 *   abs: F64 [-1074, 1024], BF16/F32 [-149, 128], F16 [-24, 16], F8_E5M2 [-16, 16],
 *        F8_E4M3 [-9, 9], integers and BOOL [0, 64];
 *   rel: [lo, 1] with lo = abs lo - (largest exponent of a value) - 1. */
typedef struct ScanHistRange {
    int32_t abs_lo, abs_hi; /* inclusive */
    int32_t rel_lo, rel_hi;
} ScanHistRange;

typedef struct ScanHist {
    ScanHistRange range;
    uint64_t nonfinite_changed; /* changed pairs with a NaN or Inf */
    uint64_t zero_delta;        /* changed pairs whose decoded difference is 0 */
    uint64_t *abs_count, *abs_pow2; /* (abs_hi - abs_lo + 1) views into buf */
    uint64_t *rel_count, *rel_pow2; /* (rel_hi - rel_lo + 1) views into buf */
    uint64_t *buf;                  /* the one allocation, owned; NULL: no histogram */
} ScanHist;

/* The bin range scan_hist_block needs for dtype dt (an unknown dtype gets the F64 range). */
ScanHistRange scan_hist_dtype_range(DType dt);
/* The smallest range containing both x and y. */
ScanHistRange scan_hist_range_union(ScanHistRange x, ScanHistRange y);

/* Allocates zeroed bins for range r (lo <= hi on both sides). Returns 0, SS_EUSAGE for an empty
 * or reversed range, or SS_EOUTPUT when out of memory (h is then empty: buf NULL). */
int scan_hist_init(ScanHist *h, ScanHistRange r);
/* Frees h's bins (an empty or zeroed ScanHist is fine). */
void scan_hist_free(ScanHist *h);
/* dst += src, bin by bin. Returns 0, or SS_EUSAGE (dst unchanged) when dst's range does not
 * contain src's on both sides. */
int scan_hist_merge(ScanHist *dst, const ScanHist *src);
/* Count of abs bin e, pow2 count of abs bin e (0 outside the range); the same for rel bins. */
uint64_t scan_hist_abs_count(const ScanHist *h, int32_t e);
uint64_t scan_hist_abs_pow2(const ScanHist *h, int32_t e);
uint64_t scan_hist_rel_count(const ScanHist *h, int32_t k);
uint64_t scan_hist_rel_pow2(const ScanHist *h, int32_t k);
/* changed_tol(2^k) from the histogram, as above, for any k. */
uint64_t scan_hist_changed_at_pow2(const ScanHist *h, int32_t k);
/* The smallest and largest abs (rel) exponent with a nonzero count; returns 0 when there is
 * none (then *lo and *hi are untouched), else 1. */
int scan_hist_abs_used(const ScanHist *h, int32_t *lo, int32_t *hi);
int scan_hist_rel_used(const ScanHist *h, int32_t *lo, int32_t *hi);

/* Adds the bins of the changed elements of n elements of dtype dt at a and b into *out: only the
 * elements whose bit is set in mask (as scan_mask_block writes it; ceil(n/8) bytes, LSB-first)
 * are looked at; mask NULL: the changed elements, found here (the same result as passing
 * scan_mask_block's mask, without writing one). out's range must contain
 * scan_hist_dtype_range(dt) (not checked here: the caller sized it). Single-threaded; with
 * AVX-512 and VBMI2 (SS_SCAN_ISA obeyed) BF16, F16 and F32 take a vector path; every path gives
 * the same bins. */
void scan_hist_block(DType dt, const void *a, const void *b, size_t n, const uint8_t *mask,
                     ScanHist *out);

/* scan_jobs_cpu_masks that also fills histograms: hists (may be NULL: none) holds one pointer per
 * job, NULL for a job without one, else a ScanHist whose range contains the job's dtype range and
 * which the call adds into (caller-initialised with scan_hist_init, usually zero). For each chunk
 * the worker bins the chunk (through the mask it wrote into masks[job], if any) into per-worker
 * scratch, added into hists[job] with atomic integer adds: the result does not depend on the
 * thread count. Extra memory: about 70 KiB per thread. Counts, sums and
 * masks are exactly those of scan_jobs_cpu_masks. Returns what scan_jobs_cpu_masks returns, and
 * SS_EUSAGE when a histogram's range is too small for its job's dtype. */
int scan_jobs_cpu_ext(const ScanConfig *cfg, const ScanJob *jobs, uint8_t *const *masks,
                      ScanHist *const *hists, size_t njobs, int threads, ScanCounts *results,
                      ScanProgressFn progress, void *progress_ctx);

#endif
