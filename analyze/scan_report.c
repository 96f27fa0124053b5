/* Checkpoint-pair scan orchestration (see scan_report.h): pairs -> scan jobs -> counts (and, with
 * --masks, the changed-element masks the scan pass writes). */
#include "analyze/scan_report.h"
#include "kernels/scan_cuda.h"

#include "analyze/delta_dtype.h"
#include "analyze/scan_mpi.h"

#include <math.h>
#include <stdint.h>
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

/* Offsets a batch's progress by the bytes of earlier batches. */
typedef struct BatchProgress {
    const ScanOptions *opt;
    uint64_t offset, total;
} BatchProgress;

static void batch_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)total;
    BatchProgress *bp = ctx;
    bp->opt->progress(bp->opt->progress_ctx, bp->offset + done, bp->total);
}

/* The dtype Δ is rounded to for a tensor of dtype dt under --delta-dtype (DT_COUNT: none). */
static DType delta_round_dtype(const ScanOptions *opt, DType dt)
{
    if (opt->delta_dtype == 0)
        return DT_COUNT;
    return opt->delta_dtype == 1 ? dt : (DType)(opt->delta_dtype - 2);
}

/* The scan of jobs on opt's device (CPU or CUDA) with opt's tolerances; under --delta-dtype, once
 * per dtype present with the thresholds for that dtype (see delta_dtype.h). hists: n pointers or
 * NULL. Fills err. */
static int scan_run_jobs(const ScanOptions *opt, const ScanJob *jobs, uint8_t *const *masks,
                         ScanHist *const *hists, size_t n, ScanCounts *counts,
                         ScanProgressFn progress, void *ctx, SsError *err)
{
    ScanDevice dev = (ScanDevice)opt->device;
    if (opt->delta_dtype == 0)
        return scan_jobs_device(dev, &opt->cfg, jobs, masks, hists, n, opt->threads, counts,
                                progress, ctx, err);
    ScanJob *sub = malloc((n ? n : 1) * sizeof *sub);
    ScanHist **sub_hists = calloc(n ? n : 1, sizeof *sub_hists);
    uint8_t **sub_masks = calloc(n ? n : 1, sizeof *sub_masks);
    ScanCounts *sub_counts = malloc((n ? n : 1) * sizeof *sub_counts);
    size_t *index = malloc((n ? n : 1) * sizeof *index);
    int rc = sub && sub_hists && sub_masks && sub_counts && index
                 ? 0 : ss_err(err, SS_EOUTPUT, "out of memory for %zu tensor pairs", n);
    for (int dt = 0; dt < DT_COUNT && rc == 0; dt++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (jobs[i].dtype != (DType)dt)
                continue;
            index[m] = i;
            sub[m] = jobs[i];
            sub_masks[m] = masks ? masks[i] : NULL;
            sub_hists[m] = hists ? hists[i] : NULL;
            m++;
        }
        if (m == 0)
            continue;
        DType round_to = delta_round_dtype(opt, (DType)dt);
        ScanConfig cfg = round_to == DT_COUNT ? opt->cfg : delta_dtype_config(&opt->cfg, round_to);
        rc = scan_jobs_device(dev, &cfg, sub, masks ? sub_masks : NULL, hists ? sub_hists : NULL,
                              m, opt->threads, sub_counts, NULL, NULL, err);
        for (size_t k = 0; k < m && rc == 0; k++)
            counts[index[k]] = sub_counts[k];
    }
    if (rc == 0 && progress) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += 2 * jobs[i].numel * dtype_size(jobs[i].dtype);
        progress(ctx, bytes, bytes);
    }
    free(sub);
    free(sub_hists);
    free(sub_masks);
    free(sub_counts);
    free(index);
    return rc;
}

/* Pointers to hists[first, first + n) as scan_jobs_cpu_ext takes them; NULL when out of memory
 * (free the result). */
static ScanHist **scan_hist_pointers(ScanHist *hists, size_t first, size_t n)
{
    ScanHist **p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; p && i < n; i++)
        p[i] = &hists[first + i];
    return p;
}

/* Both sides mapped: one multi-threaded pass over every pair this rank owns (owner[i] ==
 * scan_mpi_rank(); the others are scanned as empty). */
static int scan_mapped(const ScanOptions *opt, const int *owner, ScanReport *out, SsError *err)
{
    size_t n = out->pairs.npairs;
    ScanJob *jobs = calloc(n ? n : 1, sizeof *jobs);
    if (!jobs)
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensor pairs", n);
    for (size_t i = 0; i < n; i++) {
        const TensorPair *p = &out->pairs.pairs[i];
        jobs[i] = (ScanJob){p->a->dtype, p->a->data, p->b->data, p->a->numel};
        if (owner[i] != scan_mpi_rank())
            jobs[i] = (ScanJob){p->a->dtype, NULL, NULL, 0};
    }
    ScanHist **hists = out->hists ? scan_hist_pointers(out->hists, 0, n) : NULL;
    if (out->hists && !hists) {
        free(jobs);
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensor pairs", n);
    }
    int rc = scan_run_jobs(opt, jobs, out->masks, hists, n, out->counts, opt->progress,
                           opt->progress_ctx, err);
    free(hists);
    free(jobs);
    return rc;
}

/* A side is decoded (a run snapshot): materialize pairs into memory in batches of about
 * SCAN_BATCH_BYTES (or one pair, when larger) and scan each batch. */
static int scan_batched(CkptSource *a, CkptSource *b, const ScanOptions *opt, const int *owner,
                        ScanReport *out, SsError *err)
{
    size_t n = out->pairs.npairs;
    ScanJob *jobs = calloc(n ? n : 1, sizeof *jobs);
    void **owned = calloc(2 * (n ? n : 1), sizeof *owned);
    if (!jobs || !owned) {
        free(jobs);
        free(owned);
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensor pairs", n);
    }
    BatchProgress bp = {opt, 0, out->bytes_scanned};
    int rc = 0;
    size_t first = 0;
    uint64_t held = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const TensorPair *p = &out->pairs.pairs[i];
        const void *da = NULL, *db = NULL;
        int mine = owner[i] == scan_mpi_rank(); /* others' pairs: scanned as empty */
        if (mine)
            rc = ckpt_source_bytes(a, p->a, &da, &owned[2 * i], err);
        if (rc == 0 && mine)
            rc = ckpt_source_bytes(b, p->b, &db, &owned[2 * i + 1], err);
        jobs[i] = (ScanJob){p->a->dtype, da, db, mine ? p->a->numel : 0};
        held += (owned[2 * i] ? p->a->nbytes : 0) + (owned[2 * i + 1] ? p->b->nbytes : 0);
        if (rc == 0 && (held >= SCAN_BATCH_BYTES || i + 1 == n)) {
            ScanHist **hists = out->hists ? scan_hist_pointers(out->hists, first, i + 1 - first)
                                          : NULL;
            rc = out->hists && !hists ? ss_err(err, SS_EOUTPUT, "out of memory") : 0;
            if (rc == 0)
                rc = scan_run_jobs(opt, jobs + first, out->masks ? out->masks + first : NULL,
                                   hists, i + 1 - first, out->counts + first,
                                   opt->progress ? batch_progress : NULL, &bp, err);
            free(hists);
            for (size_t k = first; k <= i; k++) {
                bp.offset += 2 * out->pairs.pairs[k].a->nbytes;
                free(owned[2 * k]);
                free(owned[2 * k + 1]);
                owned[2 * k] = owned[2 * k + 1] = NULL;
            }
            first = i + 1;
            held = 0;
        }
    }
    for (size_t k = first; k < n; k++) {
        free(owned[2 * k]);
        free(owned[2 * k + 1]);
    }
    free(owned);
    free(jobs);
    return rc;
}

uint64_t scan_mask_bytes(uint64_t numel)
{
    return numel / 8 + (numel % 8 != 0);
}

/* With opt->masks: out->masks[i], ceil(numel/8) bytes for each pair (NULL for an empty one); on an
 * MPI rank other than 0 only for the pairs it owns. */
static int scan_alloc_masks(ScanReport *out, const int *owner, SsError *err)
{
    size_t n = out->pairs.npairs;
    out->masks = calloc(n ? n : 1, sizeof *out->masks);
    if (!out->masks)
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensor masks", n);
    for (size_t i = 0; i < n; i++) {
        const StTensor *t = out->pairs.pairs[i].a;
        uint64_t bytes = scan_mask_bytes(t->numel);
        if (bytes == 0 || (scan_mpi_rank() != 0 && owner[i] != scan_mpi_rank()))
            continue;
        if (bytes > SIZE_MAX || !(out->masks[i] = malloc((size_t)bytes)))
            return ss_err(err, SS_EOUTPUT, "tensor '%s': out of memory for its %llu-byte mask",
                          t->name, (unsigned long long)bytes);
    }
    return 0;
}

/* With opt->hist: out->hists[i] in its dtype's range, and hist_total in their union. */
static int scan_alloc_hists(ScanReport *out, SsError *err)
{
    size_t n = out->pairs.npairs;
    out->hists = calloc(n ? n : 1, sizeof *out->hists);
    if (!out->hists)
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensor histograms", n);
    ScanHistRange all = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        const StTensor *t = out->pairs.pairs[i].a;
        ScanHistRange r = scan_hist_dtype_range(t->dtype);
        all = i ? scan_hist_range_union(all, r) : r;
        if (scan_hist_init(&out->hists[i], r))
            return ss_err(err, SS_EOUTPUT, "tensor '%s': out of memory for its histogram",
                          t->name);
    }
    if (n && scan_hist_init(&out->hist_total, all))
        return ss_err(err, SS_EOUTPUT, "out of memory for the total histogram");
    return 0;
}

/* Allocates out's per-pair arrays and plans which MPI rank scans which pair (*owner: npairs
 * ints, all 0 in one process). */
static int scan_prepare(const ScanOptions *opt, ScanReport *out, int **owner, SsError *err)
{
    size_t n = out->pairs.npairs;
    out->counts = calloc(n ? n : 1, sizeof *out->counts);
    uint64_t *bytes = malloc((n ? n : 1) * sizeof *bytes);
    *owner = malloc((n ? n : 1) * sizeof **owner);
    if (!out->counts || !bytes || !*owner) {
        free(bytes);
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensor pairs", n);
    }
    for (size_t i = 0; i < n; i++) {
        bytes[i] = 2 * out->pairs.pairs[i].a->nbytes;
        out->bytes_scanned += bytes[i];
    }
    scan_mpi_partition(bytes, n, scan_mpi_size(), *owner);
    free(bytes);
    int rc = 0;
    if (opt->masks)
        rc = scan_alloc_masks(out, *owner, err);
    if (rc == 0 && opt->hist)
        rc = scan_alloc_hists(out, err);
    return rc;
}

int scan_sources(CkptSource *a, CkptSource *b, const ScanOptions *opt, ScanReport *out,
                 SsError *err)
{
    memset(out, 0, sizeof *out);
    out->path_a = a->listing->path;
    out->path_b = b->listing->path;
    out->cfg = opt->cfg;
    out->delta_dtype = opt->delta_dtype;
    out->threads = opt->threads;
    scan_counts_init(&out->total);
    int rc = pairs_match(a->listing, b->listing, opt->skip_mismatched, &out->pairs, err);
    if (rc)
        return scan_mpi_agree(rc, err);
    int *owner = NULL;
    rc = scan_prepare(opt, out, &owner, err);

    double t0 = now_seconds();
    if (rc == 0 && ckpt_source_is_mapped(a) && ckpt_source_is_mapped(b))
        rc = scan_mapped(opt, owner, out, err);
    else if (rc == 0)
        rc = scan_batched(a, b, opt, owner, out, err);
    /* under MPI: every rank's status, then each pair's results to rank 0 */
    rc = scan_mpi_agree(rc, err);
    if (rc == 0)
        rc = scan_mpi_agree(scan_mpi_gather(out, owner, err), err);
    out->seconds = now_seconds() - t0;
    free(owner);
    if (rc) {
        scan_report_free(out);
        return rc;
    }
    size_t n = out->pairs.npairs;
    for (size_t i = 0; i < n; i++) {
        scan_counts_merge(&out->total, &out->counts[i]);
        if (out->hists)
            scan_hist_merge(&out->hist_total, &out->hists[i]); /* total's range holds each */
    }
    return 0;
}

int scan_checkpoints(const StCheckpoint *a, const StCheckpoint *b, const ScanOptions *opt,
                     ScanReport *out, SsError *err)
{
    CkptSource sa = {.st = (StCheckpoint *)a, .listing = a};
    CkptSource sb = {.st = (StCheckpoint *)b, .listing = b};
    return scan_sources(&sa, &sb, opt, out, err);
}

void scan_report_free(ScanReport *r)
{
    if (r->masks)
        for (size_t i = 0; i < r->pairs.npairs; i++)
            free(r->masks[i]);
    free(r->masks);
    r->masks = NULL;
    if (r->hists)
        for (size_t i = 0; i < r->pairs.npairs; i++)
            scan_hist_free(&r->hists[i]);
    free(r->hists);
    r->hists = NULL;
    scan_hist_free(&r->hist_total);
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

const char *scan_delta_dtype_name(int delta_dtype)
{
    if (delta_dtype == 0)
        return NULL;
    return delta_dtype == 1 ? "same" : dtype_name((DType)(delta_dtype - 2));
}
