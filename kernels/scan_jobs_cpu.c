/* scan_jobs_cpu: the multi-threaded scan of many tensor pairs.
 *
 * Every job is cut into chunks of SCAN_CHUNK_ELEMS elements (the last one shorter). The flattened
 * (job, chunk) sequence is walked in windows of at most 64 chunks per thread: the pool scans the
 * window's chunks into per-chunk ScanCounts, then this thread merges them into results[job] in
 * chunk order and reports progress. Sums therefore depend only on the chunking, never on the thread
 * count, and memory is O(threads) whatever the model size. With masks (scan_jobs_cpu_masks), the
 * worker that scanned a chunk writes its mask bytes, [off/8, (off+len+7)/8) of the job's mask:
 * chunks start at multiples of SCAN_CHUNK_ELEMS (a multiple of 8), so no two share a byte. With
 * histograms (scan_jobs_cpu_ext), the worker bins the chunk's changed elements (through the
 * mask it just wrote, or one it computes into its scratch) into its scratch ScanHist and adds the
 * used bins into hists[job] atomically (integer adds: the sum does not depend on the order).
 * Masks and bins are made segment by segment from the scan's hook (scan_block_seg), while the
 * scan still has the segment in cache: one pass over memory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ss_error.h"
#include "kernels/scan.h"
#include "kernels/scan_isa.h"
#include "kernels/threadpool.h"

#define JOBS_WINDOW_PER_THREAD 64

/* One chunk of the window: elements [off, off + len) of jobs[job]. */
typedef struct ChunkRef {
    size_t job;
    uint64_t off, len;
} ChunkRef;

/* Per-worker scratch for histograms: one chunk's bins, on cache lines of its own (the workers
 * write their ScanHist totals). */
typedef struct __attribute__((aligned(64))) JobsScratch {
    ScanHist hist;  /* the widest range (F64's), zero between chunks */
} JobsScratch;

typedef struct JobsWindow {
    const ScanConfig *cfg;
    const ScanJob *jobs;
    uint8_t *const *masks; /* (njobs) or NULL */
    ChunkRef *refs;     /* (capacity) */
    ScanCounts *counts; /* (capacity) one result per chunk */
    ScanHist *const *hists; /* (njobs) or NULL */
    JobsScratch *scratch;   /* (threads) with hists, else NULL */
} JobsWindow;

/* dst[i] += src[i] atomically and src[i] = 0, for the nonzero src[i] of n. */
static void jobs_flush_bins(uint64_t *dst, uint64_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (src[i]) {
            __atomic_fetch_add(&dst[i], src[i], __ATOMIC_RELAXED);
            src[i] = 0;
        }
}

/* Adds the scratch bins of dtype dt's range into dst (whose range contains it) and clears them. */
static void jobs_flush_hist(ScanHist *dst, ScanHist *s, DType dt)
{
    ScanHistRange r = scan_hist_dtype_range(dt);
    size_t na = (size_t)(r.abs_hi - r.abs_lo + 1), nr = (size_t)(r.rel_hi - r.rel_lo + 1);
    size_t da = (size_t)(r.abs_lo - dst->range.abs_lo), sa = (size_t)(r.abs_lo - s->range.abs_lo);
    size_t dr = (size_t)(r.rel_lo - dst->range.rel_lo), sr = (size_t)(r.rel_lo - s->range.rel_lo);
    jobs_flush_bins(dst->abs_count + da, s->abs_count + sa, na);
    jobs_flush_bins(dst->abs_pow2 + da, s->abs_pow2 + sa, na);
    jobs_flush_bins(dst->rel_count + dr, s->rel_count + sr, nr);
    jobs_flush_bins(dst->rel_pow2 + dr, s->rel_pow2 + sr, nr);
    jobs_flush_bins(&dst->nonfinite_changed, &s->nonfinite_changed, 1);
    jobs_flush_bins(&dst->zero_delta, &s->zero_delta, 1);
}

/* What the segment hook of one chunk writes: the chunk's A and B, its mask bytes (or NULL) and
 * the worker's scratch histogram (or NULL). */
typedef struct ChunkHook {
    DType dt;
    const uint8_t *a, *b;
    uint8_t *mask;
    ScanHist *hist;
} ChunkHook;

/* The mask and histogram of one segment of a chunk, while the scan has it in cache. */
static void jobs_segment(void *ctx, size_t off, size_t len)
{
    const ChunkHook *h = ctx;
    size_t es = dtype_size(h->dt);
    const uint8_t *pa = h->a + off * es, *pb = h->b + off * es;
    uint8_t *m = h->mask ? h->mask + off / 8 : NULL;
    if (m)
        scan_mask_block(h->dt, pa, pb, len, m);
    if (h->hist)
        scan_hist_block(h->dt, pa, pb, len, m, h->hist);
}

static void jobs_scan_chunk(void *ctx, size_t i, int worker)
{
    JobsWindow *w = ctx;
    const ChunkRef *c = &w->refs[i];
    const ScanJob *j = &w->jobs[c->job];
    size_t es = dtype_size(j->dtype);
    ChunkHook h = {j->dtype, (const uint8_t *)j->a + c->off * es,
                   (const uint8_t *)j->b + c->off * es,
                   w->masks && w->masks[c->job] ? w->masks[c->job] + c->off / 8 : NULL,
                   w->hists && w->hists[c->job] ? &w->scratch[worker].hist : NULL};
    scan_counts_init(&w->counts[i]);
    scan_block_seg(w->cfg, j->dtype, h.a, h.b, (size_t)c->len, &w->counts[i],
                   h.mask || h.hist ? jobs_segment : NULL, &h);
    if (h.hist)
        jobs_flush_hist(w->hists[c->job], h.hist, j->dtype);
}

void scan_block_seg(const ScanConfig *cfg, DType dt, const void *a, const void *b, size_t n,
                    ScanCounts *out, ScanSegmentFn seg_fn, void *seg_ctx)
{
    if (seg_fn && scan_isa_active() == SCAN_ISA_AVX512) {
        scan_block_avx512_seg(cfg, dt, a, b, n, out, seg_fn, seg_ctx);
        return;
    }
    scan_block(cfg, dt, a, b, n, out);
    if (seg_fn && n)
        seg_fn(seg_ctx, 0, n);
}

/* Whether h's range holds every bin of dtype dt. */
static int jobs_hist_fits(const ScanHist *h, DType dt)
{
    ScanHistRange r = scan_hist_dtype_range(dt);
    return h->buf && h->range.abs_lo <= r.abs_lo && h->range.abs_hi >= r.abs_hi &&
           h->range.rel_lo <= r.rel_lo && h->range.rel_hi >= r.rel_hi;
}

static void jobs_scratch_free(JobsScratch *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        scan_hist_free(&s[i].hist);
    free(s);
}

/* One JobsScratch per worker, or NULL when out of memory. */
static JobsScratch *jobs_scratch_alloc(size_t n)
{
    JobsScratch *s = aligned_alloc(64, n * sizeof *s); /* sizeof is a multiple of 64 */
    if (!s)
        return NULL;
    memset(s, 0, n * sizeof *s);
    ScanHistRange wide = scan_hist_dtype_range(DT_F64);
    for (DType dt = 0; dt < DT_COUNT; dt++)
        wide = scan_hist_range_union(wide, scan_hist_dtype_range(dt));
    for (size_t i = 0; i < n; i++)
        if (scan_hist_init(&s[i].hist, wide)) {
            jobs_scratch_free(s, n);
            return NULL;
        }
    return s;
}

/* Fills refs with up to cap chunks from the cursor (*job, *off); returns how many. */
static size_t jobs_fill_window(const ScanJob *jobs, size_t njobs, size_t *job, uint64_t *off,
                               ChunkRef *refs, size_t cap)
{
    size_t k = 0;
    while (k < cap && *job < njobs) {
        uint64_t numel = jobs[*job].numel;
        if (*off >= numel) {
            (*job)++;
            *off = 0;
            continue;
        }
        uint64_t len = numel - *off < SCAN_CHUNK_ELEMS ? numel - *off : SCAN_CHUNK_ELEMS;
        refs[k++] = (ChunkRef){*job, *off, len};
        *off += len;
    }
    return k;
}

int scan_jobs_cpu(const ScanConfig *cfg, const ScanJob *jobs, size_t njobs, int threads,
                  ScanCounts *results, ScanProgressFn progress, void *progress_ctx)
{
    return scan_jobs_cpu_masks(cfg, jobs, NULL, njobs, threads, results, progress, progress_ctx);
}

int scan_jobs_cpu_masks(const ScanConfig *cfg, const ScanJob *jobs, uint8_t *const *masks,
                        size_t njobs, int threads, ScanCounts *results, ScanProgressFn progress,
                        void *progress_ctx)
{
    return scan_jobs_cpu_ext(cfg, jobs, masks, NULL, njobs, threads, results, progress,
                             progress_ctx);
}

int scan_jobs_cpu_ext(const ScanConfig *cfg, const ScanJob *jobs, uint8_t *const *masks,
                      ScanHist *const *hists, size_t njobs, int threads, ScanCounts *results,
                      ScanProgressFn progress, void *progress_ctx)
{
    uint64_t bytes_total = 0;
    int want_hists = 0;
    for (size_t j = 0; j < njobs; j++) {
        if ((unsigned)jobs[j].dtype >= DT_COUNT)
            return SS_EUSAGE;
        if (hists && hists[j]) {
            if (!jobs_hist_fits(hists[j], jobs[j].dtype))
                return SS_EUSAGE;
            want_hists = 1;
        }
        scan_counts_init(&results[j]);
        bytes_total += 2 * jobs[j].numel * dtype_size(jobs[j].dtype);
    }

    ThreadPool *pool = pool_create(threads);
    if (!pool)
        return SS_EOUTPUT;
    size_t cap = (size_t)JOBS_WINDOW_PER_THREAD * (size_t)pool_size(pool);
    JobsWindow w = {cfg, jobs, masks, malloc(cap * sizeof *w.refs),
                    malloc(cap * sizeof *w.counts), want_hists ? hists : NULL, NULL};
    if (want_hists)
        w.scratch = jobs_scratch_alloc((size_t)pool_size(pool));
    if (!w.refs || !w.counts || (want_hists && !w.scratch)) {
        free(w.refs);
        free(w.counts);
        jobs_scratch_free(w.scratch, (size_t)pool_size(pool));
        pool_destroy(pool);
        return SS_EOUTPUT;
    }

    size_t job = 0;
    uint64_t off = 0, bytes_done = 0;
    int reported = 0;
    for (;;) {
        size_t k = jobs_fill_window(jobs, njobs, &job, &off, w.refs, cap);
        if (k == 0)
            break;
        pool_run(pool, k, jobs_scan_chunk, &w);
        for (size_t i = 0; i < k; i++) {
            const ScanJob *j = &jobs[w.refs[i].job];
            scan_counts_merge(&results[w.refs[i].job], &w.counts[i]);
            bytes_done += 2 * w.refs[i].len * dtype_size(j->dtype);
        }
        if (progress) {
            progress(progress_ctx, bytes_done, bytes_total);
            reported = 1;
        }
    }
    if (progress && !reported)
        progress(progress_ctx, bytes_done, bytes_total);

    free(w.refs);
    free(w.counts);
    jobs_scratch_free(w.scratch, (size_t)pool_size(pool));
    pool_destroy(pool);
    return 0;
}
