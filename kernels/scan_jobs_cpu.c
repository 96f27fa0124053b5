/* scan_jobs_cpu: the multi-threaded scan of many tensor pairs.
 *
 * Every job is cut into chunks of SCAN_CHUNK_ELEMS elements (the last one shorter). The flattened
 * (job, chunk) sequence is walked in windows of at most 64 chunks per thread: the pool scans the
 * window's chunks into per-chunk ScanCounts, then this thread merges them into results[job] in
 * chunk order and reports progress. Sums therefore depend only on the chunking, never on the thread
 * count, and memory is O(threads) whatever the model size. With masks (scan_jobs_cpu_masks), the
 * worker that scanned a chunk then writes its mask bytes, [off/8, (off+len+7)/8) of the job's mask:
 * chunks start at multiples of SCAN_CHUNK_ELEMS (a multiple of 8), so no two share a byte. */
#include <stdint.h>
#include <stdlib.h>

#include "formats/ss_error.h"
#include "kernels/scan.h"
#include "kernels/threadpool.h"

#define JOBS_WINDOW_PER_THREAD 64

/* One chunk of the window: elements [off, off + len) of jobs[job]. */
typedef struct ChunkRef {
    size_t job;
    uint64_t off, len;
} ChunkRef;

typedef struct JobsWindow {
    const ScanConfig *cfg;
    const ScanJob *jobs;
    uint8_t *const *masks; /* (njobs) or NULL */
    ChunkRef *refs;     /* (capacity) */
    ScanCounts *counts; /* (capacity) one result per chunk */
} JobsWindow;

static void jobs_scan_chunk(void *ctx, size_t i, int worker)
{
    (void)worker;
    JobsWindow *w = ctx;
    const ChunkRef *c = &w->refs[i];
    const ScanJob *j = &w->jobs[c->job];
    size_t es = dtype_size(j->dtype);
    scan_counts_init(&w->counts[i]);
    scan_block(w->cfg, j->dtype, (const uint8_t *)j->a + c->off * es,
               (const uint8_t *)j->b + c->off * es, (size_t)c->len, &w->counts[i]);
    if (w->masks && w->masks[c->job])
        scan_mask_block(j->dtype, (const uint8_t *)j->a + c->off * es,
                        (const uint8_t *)j->b + c->off * es, (size_t)c->len,
                        w->masks[c->job] + c->off / 8);
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
    uint64_t bytes_total = 0;
    for (size_t j = 0; j < njobs; j++) {
        if ((unsigned)jobs[j].dtype >= DT_COUNT)
            return SS_EUSAGE;
        scan_counts_init(&results[j]);
        bytes_total += 2 * jobs[j].numel * dtype_size(jobs[j].dtype);
    }

    ThreadPool *pool = pool_create(threads);
    if (!pool)
        return SS_EOUTPUT;
    size_t cap = (size_t)JOBS_WINDOW_PER_THREAD * (size_t)pool_size(pool);
    JobsWindow w = {cfg, jobs, masks, malloc(cap * sizeof *w.refs),
                    malloc(cap * sizeof *w.counts)};
    if (!w.refs || !w.counts) {
        free(w.refs);
        free(w.counts);
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
    pool_destroy(pool);
    return 0;
}
