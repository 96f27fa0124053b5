/* The scan pass: for pairs of equally typed and shaped tensors A and B, count what changed.
 *
 * One C API, two backends: scan_cpu.c (SIMD chosen at run time, threads) and, later, scan.cu.
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

#endif
