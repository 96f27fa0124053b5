/* scan_jobs_cpu: the same results, sums bit for bit, with 1, 2, 3 and 7 threads (and 0: all
 * cores) on jobs of 0, 1, 5, CHUNK-1, CHUNK+1 and 3*CHUNK+17 elements of several dtypes; equal to
 * scan_block over the fixed chunks merged in order; progress never goes back and ends at
 * bytes_total (the bytes of A and B); an unknown dtype is refused. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ss_error.h"
#include "kernels/scan.h"
#include "tests/kernels/kt_util.h"

#define CH SCAN_CHUNK_ELEMS
#define NJOBS 9

typedef struct ProgressLog {
    uint64_t last, total, calls;
    int backwards, total_changed;
} ProgressLog;

static void jobs_progress(void *ctx, uint64_t done, uint64_t total)
{
    ProgressLog *p = ctx;
    if (done < p->last)
        p->backwards = 1;
    if (p->calls && total != p->total)
        p->total_changed = 1;
    p->last = done;
    p->total = total;
    p->calls++;
}

/* scan_block over fixed chunks, merged in chunk order: what scan_jobs_cpu must produce. */
static void jobs_reference(const ScanConfig *cfg, const ScanJob *j, ScanCounts *out)
{
    size_t w = dtype_size(j->dtype);
    scan_counts_init(out);
    for (uint64_t off = 0; off < j->numel; off += CH) {
        uint64_t len = j->numel - off < CH ? j->numel - off : CH;
        ScanCounts c;
        scan_counts_init(&c);
        scan_block(cfg, j->dtype, (const uint8_t *)j->a + off * w, (const uint8_t *)j->b + off * w,
                   (size_t)len, &c);
        scan_counts_merge(out, &c);
    }
}

int main(void)
{
    const ScanConfig cfg = {.ntol = 3, .tol = {1e-6, 1e-5, 1e-4}, .has_rtol = 1, .rtol = 1e-3};
    const uint64_t sizes[NJOBS] = {0, 1, 5, CH - 1, CH + 1, 3 * CH + 17, 1000, 0, 77};
    const DType types[NJOBS] = {DT_BF16, DT_BF16, DT_F32, DT_BF16, DT_F16, DT_BF16, DT_F64, DT_F32, DT_I32};
    ScanJob jobs[NJOBS];
    uint64_t bytes_total = 0;
    for (int j = 0; j < NJOBS; j++) {
        size_t bytes = (size_t)sizes[j] * dtype_size(types[j]);
        uint8_t *a = malloc(bytes + 1), *b = malloc(bytes + 1);
        if (!a || !b)
            return KT_FAIL;
        kt_fill(types[j], 500 + (uint64_t)j, &cfg, a, b, (size_t)sizes[j]);
        jobs[j] = (ScanJob){types[j], a, b, sizes[j]};
        bytes_total += 2 * bytes;
    }

    ScanCounts ref[NJOBS];
    for (int j = 0; j < NJOBS; j++)
        jobs_reference(&cfg, &jobs[j], &ref[j]);
    int ok = 1;
    const int thread_counts[] = {1, 2, 3, 7, 0};
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0] && ok; t++) {
        ScanCounts res[NJOBS];
        memset(res, 0xAB, sizeof res); /* every field must be written */
        ProgressLog log = {0};
        int rc = scan_jobs_cpu(&cfg, jobs, NJOBS, thread_counts[t], res, jobs_progress, &log);
        if (rc != 0) {
            fprintf(stderr, "threads %d: rc %d\n", thread_counts[t], rc);
            ok = 0;
            break;
        }
        for (int j = 0; j < NJOBS; j++) {
            if (memcmp(&res[j], &ref[j], sizeof res[j]) != 0) { /* bit for bit, sums included */
                char what[80];
                snprintf(what, sizeof what, "threads %d job %d (%s, %llu elements)", thread_counts[t], j,
                         dtype_name(types[j]), (unsigned long long)sizes[j]);
                kt_same(what, &cfg, &res[j], &ref[j], 0.0);
                fprintf(stderr, "%s: not bit-identical\n", what);
                ok = 0;
            }
            if (res[j].numel != sizes[j]) {
                fprintf(stderr, "threads %d job %d: numel %llu\n", thread_counts[t], j,
                        (unsigned long long)res[j].numel);
                ok = 0;
            }
        }
        if (log.calls == 0 || log.backwards || log.total_changed || log.last != bytes_total ||
            log.total != bytes_total) {
            fprintf(stderr, "threads %d: progress calls %llu last %llu total %llu want %llu%s%s\n",
                    thread_counts[t], (unsigned long long)log.calls, (unsigned long long)log.last,
                    (unsigned long long)log.total, (unsigned long long)bytes_total,
                    log.backwards ? " (went backwards)" : "", log.total_changed ? " (total changed)" : "");
            ok = 0;
        }
    }

    /* zero-element jobs only, no progress callback; then an unknown dtype */
    {
        ScanJob empty[2] = {{DT_BF16, NULL, NULL, 0}, {DT_F32, NULL, NULL, 0}};
        ScanCounts res[2];
        memset(res, 0xAB, sizeof res);
        ScanCounts zero;
        scan_counts_init(&zero);
        if (scan_jobs_cpu(&cfg, empty, 2, 2, res, NULL, NULL) != 0 || memcmp(&res[0], &zero, sizeof zero) != 0 ||
            memcmp(&res[1], &zero, sizeof zero) != 0) {
            fprintf(stderr, "zero-element jobs: not zero counts\n");
            ok = 0;
        }
        ProgressLog log = {0};
        if (scan_jobs_cpu(&cfg, empty, 2, 1, res, jobs_progress, &log) != 0 || log.calls != 1 || log.last != 0) {
            fprintf(stderr, "zero-element jobs: progress calls %llu\n", (unsigned long long)log.calls);
            ok = 0;
        }
        ScanJob bad = {(DType)DT_COUNT, jobs[1].a, jobs[1].b, 1};
        if (scan_jobs_cpu(&cfg, &bad, 1, 1, res, NULL, NULL) != SS_EUSAGE) {
            fprintf(stderr, "unknown dtype accepted\n");
            ok = 0;
        }
    }

    for (int j = 0; j < NJOBS; j++) {
        free((void *)jobs[j].a);
        free((void *)jobs[j].b);
    }
    if (ok)
        printf("scan_jobs_cpu: identical with 1, 2, 3, 7 and all threads\n");
    return ok ? KT_PASS : KT_FAIL;
}
