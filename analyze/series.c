/* The series loop (see series.h): base -> each snapshot with masks folded into per-tensor `ever`
 * bitmaps, each consecutive pair without masks, then the never / restored / final split. */
#include "analyze/series.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "formats/sdelta/run.h"

static double series_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double series_fraction(uint64_t part, uint64_t numel)
{
    return numel ? (double)part / (double)numel : 0.0;
}

/* Set bits among the first numel bits of a packed LSB-first bitmap. */
static uint64_t series_popcount_bits(const uint8_t *bits, uint64_t numel)
{
    uint64_t full = numel / 8, count = 0, i = 0;
    for (; i + 8 <= full; i += 8) {
        uint64_t w;
        memcpy(&w, bits + i, 8);
        count += (uint64_t)__builtin_popcountll(w);
    }
    for (; i < full; i++)
        count += (uint64_t)__builtin_popcount(bits[i]);
    if (numel % 8)
        count += (uint64_t)__builtin_popcount(bits[full] & ((1u << (numel % 8)) - 1u));
    return count;
}

static void series_split_add(SeriesSplit *dst, const SeriesSplit *src)
{
    /* Sums of disjoint element counts of one checkpoint: bounded by its element count. */
    dst->numel += src->numel;
    dst->never += src->never;
    dst->restored += src->restored;
    dst->final += src->final;
}

/* The tensors of step_spec's base scan must be exactly the base's. */
static int series_check_pairs(const ScanReport *rep, const char *spec, SsError *err)
{
    if (rep->pairs.nonly_a)
        return ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': in the base but not in this snapshot",
                      spec, rep->pairs.only_a[0]);
    if (rep->pairs.nonly_b)
        return ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': in this snapshot but not in the base",
                      spec, rep->pairs.only_b[0]);
    return 0;
}

/* After the first base scan: the tensor list and zeroed `ever` bitmaps. */
static int series_init_tensors(SeriesReport *out, const ScanReport *rep, uint8_t ***ever,
                               SsError *err)
{
    size_t n = rep->pairs.npairs;
    out->ntensors = n;
    out->names = calloc(n ? n : 1, sizeof *out->names);
    out->dtypes = calloc(n ? n : 1, sizeof *out->dtypes);
    out->tensor_split = calloc(n ? n : 1, sizeof *out->tensor_split);
    *ever = calloc(n ? n : 1, sizeof **ever);
    if (!out->names || !out->dtypes || !out->tensor_split || !*ever)
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensors", n);
    for (size_t i = 0; i < n; i++) {
        const StTensor *t = rep->pairs.pairs[i].a;
        out->dtypes[i] = t->dtype;
        out->tensor_split[i].numel = t->numel;
        if (!(out->names[i] = strdup(t->name)))
            return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensors", n);
        uint64_t bytes = scan_mask_bytes(t->numel);
        if (bytes == 0)
            continue;
        if (bytes > SIZE_MAX || !((*ever)[i] = calloc((size_t)bytes, 1)))
            return ss_err(err, SS_EOUTPUT,
                          "tensor '%s': out of memory for its %" PRIu64 "-byte series bitmap",
                          t->name, bytes);
    }
    return 0;
}

/* ever |= this step's masks. */
static void series_fold_masks(const SeriesReport *out, const ScanReport *rep, uint8_t **ever)
{
    for (size_t i = 0; i < out->ntensors; i++) {
        uint64_t bytes = scan_mask_bytes(out->tensor_split[i].numel);
        for (uint64_t k = 0; k < bytes; k++)
            ever[i][k] |= rep->masks[i][k];
    }
}

/* Per tensor: never / restored / final from `ever` and the last step's masks (final). */
static void series_split_tensors(SeriesReport *out, const ScanReport *last, uint8_t **ever)
{
    for (size_t i = 0; i < out->ntensors; i++) {
        SeriesSplit *s = &out->tensor_split[i];
        uint64_t n_ever = ever[i] ? series_popcount_bits(ever[i], s->numel) : 0;
        uint64_t n_final = last->masks[i] ? series_popcount_bits(last->masks[i], s->numel) : 0;
        /* final is a subset of ever: the last masks were folded into ever. */
        s->final = n_final;
        s->restored = n_ever - n_final;
        s->never = s->numel - n_ever;
    }
}

/* Per layer x module cell, per module and overall, in tensor (name) order. */
static int series_split_groups(SeriesReport *out, SsError *err)
{
    const Grouping *g = &out->groups;
    out->cell_split = calloc(g->ncells ? g->ncells : 1, sizeof *out->cell_split);
    out->module_split = calloc(g->nmodules ? g->nmodules : 1, sizeof *out->module_split);
    if (!out->cell_split || !out->module_split)
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu groups", g->ncells);
    for (size_t i = 0; i < out->ntensors; i++) {
        const SeriesSplit *s = &out->tensor_split[i];
        series_split_add(&out->total, s);
        series_split_add(&out->module_split[g->tensor_module[i]], s);
        for (size_t j = 0; j < g->ncells; j++) {
            const GroupCell *c = &g->cells[j];
            if (c->module_index == g->tensor_module[i] &&
                g->layers[c->layer_index].layer == g->tensor_layer[i]) {
                series_split_add(&out->cell_split[j], s);
                break;
            }
        }
    }
    return 0;
}

static int series_file_bytes(const char *run_dir, uint64_t step, uint64_t *sum, SsError *err)
{
    char *path = run_snapshot_path(run_dir, step);
    if (!path)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0)
        rc = ss_err(err, SS_EINPUT, "%s: cannot stat it", path);
    else
        *sum += (uint64_t)st.st_size;
    free(path);
    return rc;
}

/* One step: base -> s (masks, folded), and prev -> s (prev NULL: the base scan serves). */
static int series_scan_step(SeriesReport *out, size_t i, CkptSource *base, CkptSource *prev,
                            CkptSource *cur, const GroupRules *rules, const ScanOptions *opt,
                            uint8_t ***ever, SsError *err)
{
    ScanOptions o = *opt;
    o.masks = 1;
    o.skip_mismatched = 0;
    ScanReport rep;
    int rc = scan_sources(base, cur, &o, &rep, err);
    if (rc)
        return rc;
    const char *spec = cur->listing->path;
    rc = series_check_pairs(&rep, spec, err);
    if (!rc && i == 0)
        rc = series_init_tensors(out, &rep, ever, err);
    if (!rc && rep.pairs.npairs != out->ntensors)
        rc = ss_err(err, SS_EINCOMPAT, "%s: %zu tensors, the first snapshot has %zu", spec,
                    rep.pairs.npairs, out->ntensors);
    if (!rc) {
        out->steps[i].vs_base = rep.total;
        out->steps[i].consecutive = rep.total;
        series_fold_masks(out, &rep, *ever);
    }
    if (!rc && i + 1 == out->nsteps) {
        series_split_tensors(out, &rep, *ever);
        rc = grouping_build(rules, &rep, &out->groups, err);
        if (!rc)
            rc = series_split_groups(out, err);
    }
    scan_report_free(&rep);
    if (rc || !prev)
        return rc;
    o.masks = 0;
    rc = scan_sources(prev, cur, &o, &rep, err);
    if (rc)
        return rc;
    rc = series_check_pairs(&rep, spec, err);
    if (!rc)
        out->steps[i].consecutive = rep.total;
    scan_report_free(&rep);
    return rc;
}

static int series_open_base(const char *run_dir, const ScanOptions *opt, CkptSource **base,
                            SsError *err)
{
    struct stat st;
    if (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ss_err(err, SS_EINPUT, "%s: not a run folder (no such folder)", run_dir);
    size_t len = strlen(run_dir) + sizeof "/" RUN_BASE_NAME;
    char *path = malloc(len);
    if (!path)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    snprintf(path, len, "%s/%s", run_dir, RUN_BASE_NAME);
    int rc = 0;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        rc = ss_err(err, SS_EINPUT, "%s: not a run folder (no %s)", run_dir, RUN_BASE_NAME);
    if (!rc)
        rc = ckpt_source_open(path, opt->threads, base, err);
    free(path);
    return rc;
}

int series_scan_run(const char *run_dir, const GroupRules *rules, const ScanOptions *opt,
                    SeriesReport *out, SsError *err)
{
    memset(out, 0, sizeof *out);
    out->cfg = opt->cfg;
    out->run_dir = strdup(run_dir);
    if (!out->run_dir)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    CkptSource *base = NULL, *prev = NULL, *cur = NULL;
    uint64_t *steps = NULL;
    uint8_t **ever = NULL;
    double t0 = series_now();
    int rc = series_open_base(run_dir, opt, &base, err);
    if (!rc)
        rc = run_list_steps(run_dir, &steps, &out->nsteps, err);
    if (!rc && out->nsteps == 0)
        rc = ss_err(err, SS_EINPUT, "%s: the run has no snapshots (%s/step-*.sdelta)", run_dir,
                    RUN_SNAPSHOT_DIR);
    if (!rc && !(out->steps = calloc(out->nsteps, sizeof *out->steps)))
        rc = ss_err(err, SS_EOUTPUT, "out of memory for %zu steps", out->nsteps);
    if (!rc)
        out->file_bytes = ckpt_source_file_bytes(base);
    for (size_t i = 0; !rc && i < out->nsteps; i++) {
        out->steps[i].step = steps[i];
        char spec[64 + 4096];
        if ((size_t)snprintf(spec, sizeof spec, "%s@%" PRIu64, run_dir, steps[i]) >= sizeof spec) {
            rc = ss_err(err, SS_EUSAGE, "%s: path too long", run_dir);
            break;
        }
        rc = series_file_bytes(run_dir, steps[i], &out->file_bytes, err);
        if (!rc)
            rc = ckpt_source_open(spec, opt->threads, &cur, err);
        if (!rc)
            rc = series_scan_step(out, i, base, prev, cur, rules, opt, &ever, err);
        ckpt_source_close(prev);
        prev = cur;
        cur = NULL;
    }
    out->seconds = series_now() - t0;
    ckpt_source_close(prev);
    ckpt_source_close(base);
    if (ever)
        for (size_t i = 0; i < out->ntensors; i++)
            free(ever[i]);
    free(ever);
    free(steps);
    if (rc)
        series_report_free(out);
    return rc;
}

void series_report_free(SeriesReport *r)
{
    if (r->names)
        for (size_t i = 0; i < r->ntensors; i++)
            free(r->names[i]);
    free(r->names);
    free(r->dtypes);
    free(r->tensor_split);
    free(r->cell_split);
    free(r->module_split);
    free(r->steps);
    free(r->run_dir);
    grouping_free(&r->groups);
    memset(r, 0, sizeof *r);
}
