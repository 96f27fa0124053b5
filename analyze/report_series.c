/* The reports of sparsity-scan --series: the table, the JSON document (schema
 * "sparsity-series/1", docs/cli.md) and the HDF5 file (docs/hdf5-schema.md, "Series files"). */
#include "analyze/series.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/report.h"
#include "formats/h5_write.h"

#define SERIES_DEFINITIONS_VERSION 1

/* ---- table ---- */

/* "91.3299%", or ">99.9999%" when something changed but it would round to 100%. */
static void series_format_sparsity(const ScanCounts *c, char *buf, size_t len)
{
    double s = 100.0 * scan_sparsity(c);
    if (c->changed && s >= 99.99995)
        snprintf(buf, len, ">99.9999%%");
    else
        snprintf(buf, len, "%.4f%%", s);
}

static void series_table_split(FILE *f, const char *label, const SeriesSplit *s)
{
    fprintf(f, "%-24s %14" PRIu64 " %14" PRIu64 " %14" PRIu64 " %14" PRIu64
               " %9.4f%% %9.4f%% %9.4f%%\n",
            label, s->numel, s->never, s->restored, s->final,
            100.0 * series_fraction(s->never, s->numel),
            100.0 * series_fraction(s->restored, s->numel),
            100.0 * series_fraction(s->final, s->numel));
}

void series_write_table(FILE *f, const SeriesReport *r)
{
    fprintf(f, "run:        %s\n", r->run_dir);
    fprintf(f, "snapshots:  %zu (steps %" PRIu64 " to %" PRIu64 ")\n", r->nsteps,
            r->steps[0].step, r->steps[r->nsteps - 1].step);
    fprintf(f, "tensors:    %zu, %" PRIu64 " parameters; %.3f s\n", r->ntensors, r->total.numel,
            r->seconds);
    if (r->groups.pattern)
        fprintf(f, "grouping:   --group-regex %s\n", r->groups.pattern);
    fprintf(f, "\n%12s %14s %16s %16s %16s\n", "step", "sparsity(base)", "changed(base)",
            "sparsity(prev)", "changed(prev)");
    for (size_t i = 0; i < r->nsteps; i++) {
        const SeriesStep *s = &r->steps[i];
        char sb[32], sc[32];
        series_format_sparsity(&s->vs_base, sb, sizeof sb);
        series_format_sparsity(&s->consecutive, sc, sizeof sc);
        fprintf(f, "%12" PRIu64 " %14s %16" PRIu64 " %16s %16" PRIu64 "\n", s->step, sb,
                s->vs_base.changed, sc, s->consecutive.changed);
    }
    fprintf(f, "\nelements over the %zu snapshots: never changed / changed then restored to the "
               "base bits / changed at the last step\n", r->nsteps);
    fprintf(f, "%-24s %14s %14s %14s %14s %10s %10s %10s\n", "module", "numel", "never",
            "restored", "final", "never%", "restored%", "final%");
    for (size_t m = 0; m < r->groups.nmodules; m++)
        series_table_split(f, r->groups.modules[m], &r->module_split[m]);
    series_table_split(f, "TOTAL", &r->total);
}

/* ---- JSON ---- */

/* One side of a step as an object of counts (no Δ norms in a series). */
static void series_json_counts(JsonWriter *w, const SeriesReport *r, const ScanCounts *c)
{
    jw_object_begin(w);
    report_json_counts(w, &r->cfg, c, 0);
    jw_object_end(w);
}

/* The members of a split (inside an object the caller opened). */
static void series_json_split(JsonWriter *w, const SeriesSplit *s)
{
    jw_key(w, "numel");
    jw_uint(w, s->numel);
    jw_key(w, "never");
    jw_uint(w, s->never);
    jw_key(w, "restored");
    jw_uint(w, s->restored);
    jw_key(w, "final");
    jw_uint(w, s->final);
    jw_key(w, "never_fraction");
    jw_double(w, series_fraction(s->never, s->numel));
    jw_key(w, "restored_fraction");
    jw_double(w, series_fraction(s->restored, s->numel));
    jw_key(w, "final_fraction");
    jw_double(w, series_fraction(s->final, s->numel));
}

static void series_json_layer(JsonWriter *w, int64_t layer)
{
    jw_key(w, "layer");
    jw_double(w, (double)layer); /* integral, below 2^53: prints as an integer */
}

void series_write_json(FILE *f, const SeriesReport *r)
{
    JsonWriter w;
    const Grouping *g = &r->groups;
    jw_init(&w, f, 1);
    jw_object_begin(&w);
    jw_key(&w, "schema");
    jw_string(&w, SERIES_SCHEMA);
    jw_key(&w, "run");
    jw_string(&w, r->run_dir);
    jw_key(&w, "tolerances");
    jw_array_begin(&w);
    for (size_t k = 0; k < r->cfg.ntol; k++)
        jw_double(&w, r->cfg.tol[k]);
    jw_array_end(&w);
    if (r->cfg.has_rtol) {
        jw_key(&w, "rtol");
        jw_double(&w, r->cfg.rtol);
    }
    if (g->pattern) {
        jw_key(&w, "group_regex");
        jw_string(&w, g->pattern);
    }
    jw_key(&w, "steps");
    jw_array_begin(&w);
    for (size_t i = 0; i < r->nsteps; i++) {
        jw_object_begin(&w);
        jw_key(&w, "step");
        jw_uint(&w, r->steps[i].step);
        jw_key(&w, "vs_base");
        series_json_counts(&w, r, &r->steps[i].vs_base);
        jw_key(&w, "consecutive");
        series_json_counts(&w, r, &r->steps[i].consecutive);
        jw_object_end(&w);
    }
    jw_array_end(&w);
    jw_key(&w, "split");
    jw_object_begin(&w);
    series_json_split(&w, &r->total);
    jw_object_end(&w);
    jw_key(&w, "modules");
    jw_array_begin(&w);
    for (size_t m = 0; m < g->nmodules; m++) {
        jw_object_begin(&w);
        jw_key(&w, "module");
        jw_string(&w, g->modules[m]);
        series_json_split(&w, &r->module_split[m]);
        jw_object_end(&w);
    }
    jw_array_end(&w);
    jw_key(&w, "groups");
    jw_array_begin(&w);
    for (size_t j = 0; j < g->ncells; j++) {
        jw_object_begin(&w);
        series_json_layer(&w, g->layers[g->cells[j].layer_index].layer);
        jw_key(&w, "module");
        jw_string(&w, g->modules[g->cells[j].module_index]);
        jw_key(&w, "ntensors");
        jw_uint(&w, g->cells[j].ntensors);
        series_json_split(&w, &r->cell_split[j]);
        jw_object_end(&w);
    }
    jw_array_end(&w);
    jw_key(&w, "tensors");
    jw_array_begin(&w);
    for (size_t i = 0; i < r->ntensors; i++) {
        jw_object_begin(&w);
        jw_key(&w, "name");
        jw_string(&w, r->names[i]);
        jw_key(&w, "dtype");
        jw_string(&w, dtype_name(r->dtypes[i]));
        series_json_layer(&w, g->tensor_layer[i]);
        jw_key(&w, "module");
        jw_string(&w, g->modules[g->tensor_module[i]]);
        series_json_split(&w, &r->tensor_split[i]);
        jw_object_end(&w);
    }
    jw_array_end(&w);
    jw_object_end(&w);
    fputc('\n', f);
}

/* ---- HDF5 ---- */

typedef struct SeriesH5 {
    H5Out *w;
    const SeriesReport *r;
    SsError *err;
    void *buf;   /* scratch: at least cap 8-byte elements */
} SeriesH5;

static int series_h5_root(SeriesH5 *x, const char *command_line)
{
    const SeriesReport *r = x->r;
    hid_t root = h5w_root(x->w);
    int rc = report_h5_common_attrs(x->w, SERIES_SCHEMA, SERIES_DEFINITIONS_VERSION, command_line,
                                    &r->cfg, r->groups.pattern, x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, root, "run", r->run_dir, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, root, "input_bytes", r->file_bytes, x->err);
    return rc;
}

typedef enum StepField { SF_CHANGED, SF_NONFINITE, SF_RTOL } StepField;

/* series/<prefix>_<suffix> for one side (vs_base or consecutive) of every step. */
static int series_h5_side(SeriesH5 *x, hid_t grp, int consecutive, const char *suffix)
{
    const SeriesReport *r = x->r;
    size_t n = r->nsteps, ntol = r->cfg.ntol;
    hsize_t d1[1] = {n}, d2[2] = {n, ntol};
    char name[64];
#define SIDE(i) (consecutive ? &r->steps[i].consecutive : &r->steps[i].vs_base)
    uint64_t *u = x->buf;
    double *v = x->buf;
    for (size_t i = 0; i < n; i++)
        v[i] = scan_sparsity(SIDE(i));
    snprintf(name, sizeof name, "sparsity_%s", suffix);
    int rc = h5w_dataset(x->w, grp, name, H5W_F64, 1, d1, v, x->err);
    for (size_t i = 0; i < n; i++)
        u[i] = SIDE(i)->changed;
    snprintf(name, sizeof name, "changed_%s", suffix);
    if (!rc)
        rc = h5w_dataset(x->w, grp, name, H5W_U64, 1, d1, u, x->err);
    for (size_t i = 0; i < n; i++)
        u[i] = SIDE(i)->nonfinite;
    snprintf(name, sizeof name, "nonfinite_%s", suffix);
    if (!rc)
        rc = h5w_dataset(x->w, grp, name, H5W_U64, 1, d1, u, x->err);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < ntol; k++)
            u[i * ntol + k] = SIDE(i)->changed_tol[k];
    snprintf(name, sizeof name, "changed_tol_%s", suffix);
    if (!rc)
        rc = h5w_dataset(x->w, grp, name, H5W_U64, 2, d2, u, x->err);
    if (r->cfg.has_rtol) {
        for (size_t i = 0; i < n; i++)
            u[i] = SIDE(i)->changed_rtol;
        snprintf(name, sizeof name, "changed_rtol_%s", suffix);
        if (!rc)
            rc = h5w_dataset(x->w, grp, name, H5W_U64, 1, d1, u, x->err);
    }
#undef SIDE
    return rc;
}

static int series_h5_steps(SeriesH5 *x)
{
    const SeriesReport *r = x->r;
    hid_t grp;
    int rc = h5w_group(x->w, h5w_root(x->w), "series", &grp, x->err);
    if (rc)
        return rc;
    hsize_t d1[1] = {r->nsteps};
    uint64_t *u = x->buf;
    for (size_t i = 0; i < r->nsteps; i++)
        u[i] = r->steps[i].step;
    rc = h5w_dataset(x->w, grp, "step", H5W_U64, 1, d1, u, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, grp, "numel", r->total.numel, x->err);
    if (!rc)
        rc = series_h5_side(x, grp, 0, "vs_base");
    if (!rc)
        rc = series_h5_side(x, grp, 1, "consecutive");
    int rc2 = h5w_close_group(x->w, grp, x->err);
    return rc ? rc : rc2;
}

/* numel, never, restored, final (u64) from splits[0..n) (NULL entries: 0), shaped dims. */
static int series_h5_splits(SeriesH5 *x, hid_t grp, const SeriesSplit *const *splits, size_t n,
                            int rank, const hsize_t *dims)
{
    static const char *const names[4] = {"numel", "never", "restored", "final"};
    uint64_t *u = x->buf;
    int rc = 0;
    for (int f = 0; f < 4 && !rc; f++) {
        for (size_t i = 0; i < n; i++) {
            const SeriesSplit *s = splits[i];
            u[i] = !s ? 0 : f == 0 ? s->numel : f == 1 ? s->never : f == 2 ? s->restored
                                                                          : s->final;
        }
        rc = h5w_dataset(x->w, grp, names[f], H5W_U64, rank, dims, u, x->err);
    }
    return rc;
}

static int series_h5_split_attrs(SeriesH5 *x, hid_t grp, const SeriesSplit *s)
{
    int rc = h5w_attr_u64(x->w, grp, "numel", s->numel, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, grp, "never", s->never, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, grp, "restored", s->restored, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, grp, "final", s->final, x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, grp, "never_fraction", series_fraction(s->never, s->numel),
                          x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, grp, "restored_fraction",
                          series_fraction(s->restored, s->numel), x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, grp, "final_fraction", series_fraction(s->final, s->numel),
                          x->err);
    return rc;
}

/* split/layers: layer (L), module (M), and L x M split matrices. */
static int series_h5_layers(SeriesH5 *x, hid_t split, const SeriesSplit **ptrs)
{
    const Grouping *g = &x->r->groups;
    size_t L = g->nlayers, M = g->nmodules;
    hid_t grp;
    int rc = h5w_group(x->w, split, "layers", &grp, x->err);
    if (rc)
        return rc;
    hsize_t dl[1] = {L}, dlm[2] = {L, M};
    int64_t *lay = x->buf;
    for (size_t l = 0; l < L; l++)
        lay[l] = g->layers[l].layer;
    rc = h5w_dataset(x->w, grp, "layer", H5W_I64, 1, dl, lay, x->err);
    if (!rc)
        rc = h5w_dataset_strings(x->w, grp, "module", M, (const char *const *)g->modules, x->err);
    for (size_t i = 0; i < L * M; i++)
        ptrs[i] = NULL;
    for (size_t j = 0; j < g->ncells; j++)
        ptrs[g->cells[j].layer_index * M + g->cells[j].module_index] = &x->r->cell_split[j];
    if (!rc)
        rc = series_h5_splits(x, grp, ptrs, L * M, 2, dlm);
    int rc2 = h5w_close_group(x->w, grp, x->err);
    return rc ? rc : rc2;
}

/* split/modules: module (M) and its split over all layers. */
static int series_h5_modules(SeriesH5 *x, hid_t split, const SeriesSplit **ptrs)
{
    const Grouping *g = &x->r->groups;
    hid_t grp;
    int rc = h5w_group(x->w, split, "modules", &grp, x->err);
    if (rc)
        return rc;
    hsize_t dm[1] = {g->nmodules};
    rc = h5w_dataset_strings(x->w, grp, "module", g->nmodules,
                             (const char *const *)g->modules, x->err);
    for (size_t m = 0; m < g->nmodules; m++)
        ptrs[m] = &x->r->module_split[m];
    if (!rc)
        rc = series_h5_splits(x, grp, ptrs, g->nmodules, 1, dm);
    int rc2 = h5w_close_group(x->w, grp, x->err);
    return rc ? rc : rc2;
}

static int series_h5_split(SeriesH5 *x, const SeriesSplit **ptrs)
{
    const SeriesReport *r = x->r;
    const Grouping *g = &r->groups;
    size_t n = r->ntensors;
    hid_t grp;
    int rc = h5w_group(x->w, h5w_root(x->w), "split", &grp, x->err);
    if (rc)
        return rc;
    hsize_t d1[1] = {n};
    rc = series_h5_split_attrs(x, grp, &r->total);
    if (!rc)
        rc = h5w_dataset_strings(x->w, grp, "name", n, (const char *const *)r->names, x->err);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &r->tensor_split[i];
    if (!rc)
        rc = series_h5_splits(x, grp, ptrs, n, 1, d1);
    int64_t *lay = x->buf;
    for (size_t i = 0; i < n; i++)
        lay[i] = g->tensor_layer[i];
    if (!rc)
        rc = h5w_dataset(x->w, grp, "layer", H5W_I64, 1, d1, lay, x->err);
    const char **strs = (const char **)ptrs;
    for (size_t i = 0; i < n; i++)
        strs[i] = g->modules[g->tensor_module[i]];
    if (!rc)
        rc = h5w_dataset_strings(x->w, grp, "module", n, strs, x->err);
    if (!rc)
        rc = series_h5_layers(x, grp, ptrs);
    if (!rc)
        rc = series_h5_modules(x, grp, ptrs);
    int rc2 = h5w_close_group(x->w, grp, x->err);
    return rc ? rc : rc2;
}

int series_write_h5(const char *path, const SeriesReport *r, const char *command_line,
                    SsError *err)
{
    /* Scratch: the largest column is steps x ntol, tensors, or layers x modules. */
    size_t ntol = r->cfg.ntol ? r->cfg.ntol : 1, lm, st, cap;
    if (__builtin_mul_overflow(r->groups.nlayers, r->groups.nmodules, &lm) ||
        __builtin_mul_overflow(r->nsteps, ntol, &st) || lm > ((size_t)1 << 28) ||
        st > ((size_t)1 << 28))
        return ss_err(err, SS_EOUTPUT, "%s: too many layers x modules or steps for the HDF5 file",
                      path);
    cap = lm > st ? lm : st;
    cap = cap > r->ntensors ? cap : r->ntensors;
    cap = cap > r->groups.nmodules ? cap : r->groups.nmodules;
    SeriesH5 x = {NULL, r, err, malloc((cap ? cap : 1) * sizeof(uint64_t))};
    const SeriesSplit **ptrs = malloc((cap ? cap : 1) * sizeof *ptrs);
    if (!x.buf || !ptrs) {
        free(x.buf);
        free(ptrs);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory for the HDF5 file", path);
    }
    int rc = h5w_open(path, &x.w, err);
    if (!rc)
        rc = series_h5_root(&x, command_line);
    if (!rc)
        rc = series_h5_steps(&x);
    if (!rc)
        rc = series_h5_split(&x, ptrs);
    if (!rc)
        rc = h5w_close(x.w, err);
    else
        h5w_abort(x.w);
    free(x.buf);
    free(ptrs);
    return rc;
}
