/* Checkpoint-pair scan orchestration (see scan_report.h): pairs -> scan jobs -> counts. */
#include "analyze/scan_report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int scan_checkpoints(const StCheckpoint *a, const StCheckpoint *b, const ScanOptions *opt,
                     ScanReport *out, SsError *err)
{
    memset(out, 0, sizeof *out);
    out->path_a = a->path;
    out->path_b = b->path;
    out->cfg = opt->cfg;
    scan_counts_init(&out->total);
    int rc = pairs_match(a, b, opt->skip_mismatched, &out->pairs, err);
    if (rc)
        return rc;

    size_t n = out->pairs.npairs;
    ScanJob *jobs = calloc(n ? n : 1, sizeof *jobs);
    out->counts = calloc(n ? n : 1, sizeof *out->counts);
    if (!jobs || !out->counts) {
        free(jobs);
        scan_report_free(out);
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensor pairs", n);
    }
    for (size_t i = 0; i < n; i++) {
        const TensorPair *p = &out->pairs.pairs[i];
        jobs[i] = (ScanJob){p->a->dtype, p->a->data, p->b->data, p->a->numel};
        out->bytes_scanned += 2 * p->a->nbytes;
    }

    double t0 = now_seconds();
    rc = scan_jobs_cpu(&opt->cfg, jobs, n, opt->threads, out->counts, opt->progress,
                       opt->progress_ctx);
    out->seconds = now_seconds() - t0;
    free(jobs);
    if (rc) {
        scan_report_free(out);
        return ss_err(err, rc, "cannot start the scan: out of memory or threads");
    }
    for (size_t i = 0; i < n; i++)
        scan_counts_merge(&out->total, &out->counts[i]);
    return 0;
}

void scan_report_free(ScanReport *r)
{
    pairs_free(&r->pairs);
    free(r->counts);
    r->counts = NULL;
}

double scan_sparsity(const ScanCounts *c)
{
    return c->numel ? 1.0 - (double)c->changed / (double)c->numel : 1.0;
}

double scan_l2_delta(const ScanCounts *c)
{
    return sqrt(c->sum_sq_delta);
}

double scan_rel_l2_delta(const ScanCounts *c)
{
    return c->sum_sq_a > 0 ? sqrt(c->sum_sq_delta) / sqrt(c->sum_sq_a) : NAN;
}

void scan_tol_key(double tol, char *buf, size_t len)
{
    snprintf(buf, len, "%g", tol);
}
