/* The outputs of sparsity-overlap (see overlap.h): the readable table, the JSON document
 * "sparsity-overlap/1" (docs/cli.md) and the HDF5 file (docs/hdf5-schema.md). Every figure comes
 * from overlap_figures and overlap_expected_shares, so the three agree. */
#include "analyze/overlap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/json_writer.h"
#include "formats/h5_write.h"

/* ---- table ---- */

static void table_pct(FILE *f, double v)
{
    if (isnan(v))
        fprintf(f, " %8s", "-");
    else
        fprintf(f, " %7.3f%%", 100.0 * v);
}

static void table_row(FILE *f, const char *label, const OverlapCounts *c)
{
    OverlapFigures x;
    overlap_figures(c, &x);
    fprintf(f, "  %-26s %14llu", label, (unsigned long long)c->inter);
    table_pct(f, x.o1);
    table_pct(f, x.o1_random);
    table_pct(f, x.o2);
    table_pct(f, x.o2_random);
    table_pct(f, x.jaccard);
    table_pct(f, x.jaccard_random);
    fputc('\n', f);
}

static void table_hist(FILE *f, const char *label, size_t k, uint64_t numel,
                       const uint64_t *counts, const uint64_t *changed)
{
    double exp[OVERLAP_MAX_RUNS + 1];
    overlap_expected_shares(k, numel, changed, exp);
    fprintf(f, "  %-26s share ", label);
    for (size_t j = 0; j <= k; j++)
        table_pct(f, numel ? (double)counts[j] / (double)numel : NAN);
    fprintf(f, "\n  %-26s expect", "");
    for (size_t j = 0; j <= k; j++)
        table_pct(f, exp[j]);
    fputc('\n', f);
}

void overlap_write_table(FILE *f, const OverlapReport *r)
{
    fprintf(f, "base: %s\n", r->runs[0].base);
    for (size_t i = 0; i < r->k; i++) {
        const OverlapRun *u = &r->runs[i];
        fprintf(f, "run %zu: %s (B = %s): %llu of %llu changed (%.4f%%)\n", i, u->path, u->b,
                (unsigned long long)u->changed, (unsigned long long)r->total_numel,
                r->total_numel ? 100.0 * (double)u->changed / (double)r->total_numel : 0.0);
    }
    fprintf(f, "compared %zu tensors, %llu elements each\n", r->ntensors,
            (unsigned long long)r->total_numel);
    if (r->nmissing) {
        fprintf(f, "not in every report (skipped): %zu:", r->nmissing);
        for (size_t i = 0; i < r->nmissing && i < 10; i++)
            fprintf(f, " %s", r->missing[i]);
        fprintf(f, "%s\n", r->nmissing > 10 ? " ..." : "");
    }
    for (size_t p = 0; p < r->npairs; p++) {
        fprintf(f, "\npair %zu-%zu: o1 = |X&Y|/|X| (random: density of Y), o2 = |X&Y|/|Y| "
                "(random: density of X), J = Jaccard (random: pq/(p+q-pq))\n",
                r->pair_i[p], r->pair_j[p]);
        fprintf(f, "  %-26s %14s %8s %8s %8s %8s %8s %8s\n", "module", "|X&Y|", "o1", "random",
                "o2", "random", "J", "random");
        for (size_t m = 0; m < r->nmodules; m++) {
            OverlapCounts c = overlap_module_counts(r, p, m);
            if (c.numel || c.n1 || c.n2)
                table_row(f, r->modules[m], &c);
        }
        OverlapCounts c = overlap_total_counts(r, p);
        table_row(f, "TOTAL", &c);
    }
    if (r->k < 3)
        return;
    fprintf(f, "\nconsensus: share of elements changed by exactly j of %zu runs, and the "
            "expectation for independent runs\n  %-26s       ", r->k, "j =");
    for (size_t j = 0; j <= r->k; j++)
        fprintf(f, " %8zu", j);
    fputc('\n', f);
    for (size_t m = 0; m < r->nmodules; m++) {
        /* per module: sums over its cells */
        uint64_t numel = 0, counts[OVERLAP_MAX_RUNS + 1] = {0}, changed[OVERLAP_MAX_RUNS] = {0};
        for (size_t c = 0; c < r->ncells; c++) {
            if (r->cell_module[c] != m)
                continue;
            numel += r->cell_numel[c];
            for (size_t j = 0; j <= r->k; j++)
                counts[j] += r->cell_hist[c * (r->k + 1) + j];
            for (size_t i = 0; i < r->k; i++)
                changed[i] += r->cell_changed[c * r->k + i];
        }
        if (numel)
            table_hist(f, r->modules[m], r->k, numel, counts, changed);
    }
    uint64_t changed[OVERLAP_MAX_RUNS] = {0};
    for (size_t i = 0; i < r->k; i++)
        changed[i] = r->runs[i].changed;
    table_hist(f, "TOTAL", r->k, r->total_numel, r->total_hist, changed);
}

/* ---- JSON ---- */

static void json_counts(JsonWriter *w, const OverlapCounts *c)
{
    OverlapFigures x;
    overlap_figures(c, &x);
    const char *ukeys[] = {"numel", "n1", "n2", "intersection", "union"};
    uint64_t uv[] = {c->numel, c->n1, c->n2, c->inter, c->n1 + c->n2 - c->inter};
    for (size_t i = 0; i < 5; i++) {
        jw_key(w, ukeys[i]);
        jw_uint(w, uv[i]);
    }
    const char *dkeys[] = {"p", "q", "o1", "o1_random", "o2", "o2_random", "jaccard",
                           "jaccard_random"};
    double dv[] = {x.p, x.q, x.o1, x.o1_random, x.o2, x.o2_random, x.jaccard, x.jaccard_random};
    for (size_t i = 0; i < 8; i++) {
        jw_key(w, dkeys[i]);
        jw_double(w, dv[i]);
    }
}

static void json_tensor_id(JsonWriter *w, const OverlapReport *r, size_t t)
{
    jw_key(w, "name");
    jw_string(w, r->names[t]);
    jw_key(w, "layer");
    jw_double(w, (double)r->layer[t]);
    jw_key(w, "module");
    jw_string(w, r->modules[r->module[t]]);
}

static void json_hist(JsonWriter *w, size_t k, uint64_t numel, const uint64_t *counts,
                      const uint64_t *changed)
{
    double exp[OVERLAP_MAX_RUNS + 1];
    overlap_expected_shares(k, numel, changed, exp);
    jw_key(w, "numel");
    jw_uint(w, numel);
    jw_key(w, "changed");
    jw_array_begin(w);
    for (size_t i = 0; i < k; i++)
        jw_uint(w, changed[i]);
    jw_array_end(w);
    jw_key(w, "counts");
    jw_array_begin(w);
    for (size_t j = 0; j <= k; j++)
        jw_uint(w, counts[j]);
    jw_array_end(w);
    jw_key(w, "share");
    jw_array_begin(w);
    for (size_t j = 0; j <= k; j++)
        jw_double(w, numel ? (double)counts[j] / (double)numel : NAN);
    jw_array_end(w);
    jw_key(w, "expected");
    jw_array_begin(w);
    for (size_t j = 0; j <= k; j++)
        jw_double(w, exp[j]);
    jw_array_end(w);
}

static void json_pair(JsonWriter *w, const OverlapReport *r, size_t p)
{
    jw_object_begin(w);
    jw_key(w, "i");
    jw_uint(w, r->pair_i[p]);
    jw_key(w, "j");
    jw_uint(w, r->pair_j[p]);
    jw_key(w, "overall");
    jw_object_begin(w);
    OverlapCounts c = overlap_total_counts(r, p);
    json_counts(w, &c);
    jw_object_end(w);
    jw_key(w, "modules");
    jw_array_begin(w);
    for (size_t m = 0; m < r->nmodules; m++) {
        if (!r->module_numel[m])
            continue;
        jw_object_begin(w);
        jw_key(w, "module");
        jw_string(w, r->modules[m]);
        c = overlap_module_counts(r, p, m);
        json_counts(w, &c);
        jw_object_end(w);
    }
    jw_array_end(w);
    jw_key(w, "tensors");
    jw_array_begin(w);
    for (size_t t = 0; t < r->ntensors; t++) {
        jw_object_begin(w);
        json_tensor_id(w, r, t);
        c = overlap_tensor_counts(r, p, t);
        json_counts(w, &c);
        jw_object_end(w);
    }
    jw_array_end(w);
    jw_object_end(w);
}

static void json_consensus(JsonWriter *w, const OverlapReport *r)
{
    size_t k = r->k;
    uint64_t changed[OVERLAP_MAX_RUNS] = {0};
    for (size_t i = 0; i < k; i++)
        changed[i] = r->runs[i].changed;
    jw_object_begin(w);
    jw_key(w, "k");
    jw_uint(w, k);
    jw_key(w, "overall");
    jw_object_begin(w);
    json_hist(w, k, r->total_numel, r->total_hist, changed);
    jw_object_end(w);
    jw_key(w, "groups");
    jw_array_begin(w);
    for (size_t c = 0; c < r->ncells; c++) {
        jw_object_begin(w);
        jw_key(w, "layer");
        jw_double(w, (double)r->cell_layer[c]);
        jw_key(w, "module");
        jw_string(w, r->modules[r->cell_module[c]]);
        json_hist(w, k, r->cell_numel[c], &r->cell_hist[c * (k + 1)], &r->cell_changed[c * k]);
        jw_object_end(w);
    }
    jw_array_end(w);
    jw_key(w, "tensors");
    jw_array_begin(w);
    for (size_t t = 0; t < r->ntensors; t++) {
        jw_object_begin(w);
        json_tensor_id(w, r, t);
        json_hist(w, k, r->numel[t], &r->hist[t * (k + 1)], &r->changed[t * k]);
        jw_object_end(w);
    }
    jw_array_end(w);
    jw_object_end(w);
}

void overlap_write_json(FILE *f, const OverlapReport *r)
{
    JsonWriter w;
    jw_init(&w, f, 1);
    jw_object_begin(&w);
    jw_key(&w, "schema");
    jw_string(&w, "sparsity-overlap/1");
    jw_key(&w, "runs");
    jw_array_begin(&w);
    for (size_t i = 0; i < r->k; i++) {
        const OverlapRun *u = &r->runs[i];
        jw_object_begin(&w);
        jw_key(&w, "report");
        jw_string(&w, u->path);
        jw_key(&w, "a");
        jw_string(&w, u->base);
        jw_key(&w, "b");
        jw_string(&w, u->b);
        jw_key(&w, "numel");
        jw_uint(&w, r->total_numel);
        jw_key(&w, "changed");
        jw_uint(&w, u->changed);
        jw_key(&w, "density");
        jw_double(&w, r->total_numel ? (double)u->changed / (double)r->total_numel : NAN);
        jw_object_end(&w);
    }
    jw_array_end(&w);
    jw_key(&w, "ntensors");
    jw_uint(&w, r->ntensors);
    jw_key(&w, "missing");
    jw_array_begin(&w);
    for (size_t i = 0; i < r->nmissing; i++)
        jw_string(&w, r->missing[i]);
    jw_array_end(&w);
    jw_key(&w, "pairs");
    jw_array_begin(&w);
    for (size_t p = 0; p < r->npairs; p++)
        json_pair(&w, r, p);
    jw_array_end(&w);
    if (r->k >= 3) {
        jw_key(&w, "consensus");
        json_consensus(&w, r);
    }
    jw_object_end(&w);
    fputc('\n', f);
}

/* ---- HDF5 ---- */

typedef struct OvH5 {
    H5Out *w;
    const OverlapReport *r;
    SsError *err;
} OvH5;

/* The per-row columns of rows[0..n) under grp: u64 counts, f64 figures (NaN for null). */
static int h5_counts_columns(OvH5 *x, hid_t grp, size_t n, const OverlapCounts *rows)
{
    uint64_t *u = calloc(n ? n : 1, sizeof *u);
    double *d = calloc(n ? n : 1, sizeof *d);
    int rc = (!u || !d) ? ss_err(x->err, SS_EOUTPUT, "out of memory writing HDF5") : 0;
    hsize_t dims[1] = {n};
    static const char *ukeys[] = {"numel", "n1", "n2", "intersection", "union"};
    for (size_t key = 0; key < 5 && !rc; key++) {
        for (size_t i = 0; i < n; i++) {
            const OverlapCounts *c = &rows[i];
            uint64_t v[] = {c->numel, c->n1, c->n2, c->inter, c->n1 + c->n2 - c->inter};
            u[i] = v[key];
        }
        rc = h5w_dataset(x->w, grp, ukeys[key], H5W_U64, 1, dims, u, x->err);
    }
    static const char *dkeys[] = {"p", "q", "o1", "o1_random", "o2", "o2_random", "jaccard",
                                  "jaccard_random"};
    for (size_t key = 0; key < 8 && !rc; key++) {
        for (size_t i = 0; i < n; i++) {
            OverlapFigures f;
            overlap_figures(&rows[i], &f);
            double v[] = {f.p, f.q, f.o1, f.o1_random, f.o2, f.o2_random, f.jaccard,
                          f.jaccard_random};
            d[i] = v[key];
        }
        rc = h5w_dataset(x->w, grp, dkeys[key], H5W_F64, 1, dims, d, x->err);
    }
    free(u);
    free(d);
    return rc;
}

/* The overall counts as attributes of grp. */
static int h5_counts_attrs(OvH5 *x, hid_t grp, const OverlapCounts *c)
{
    OverlapFigures f;
    overlap_figures(c, &f);
    static const char *ukeys[] = {"numel", "n1", "n2", "intersection", "union"};
    uint64_t uv[] = {c->numel, c->n1, c->n2, c->inter, c->n1 + c->n2 - c->inter};
    static const char *dkeys[] = {"p", "q", "o1", "o1_random", "o2", "o2_random", "jaccard",
                                  "jaccard_random"};
    double dv[] = {f.p, f.q, f.o1, f.o1_random, f.o2, f.o2_random, f.jaccard, f.jaccard_random};
    int rc = 0;
    for (size_t i = 0; i < 5 && !rc; i++)
        rc = h5w_attr_u64(x->w, grp, ukeys[i], uv[i], x->err);
    for (size_t i = 0; i < 8 && !rc; i++)
        rc = h5w_attr_f64(x->w, grp, dkeys[i], dv[i], x->err);
    return rc;
}

/* /pairs/<i>_<j>: per tensor columns, attributes overall, /modules subgroup. */
static int h5_pair(OvH5 *x, hid_t pairs, size_t p)
{
    const OverlapReport *r = x->r;
    char name[64];
    snprintf(name, sizeof name, "%zu_%zu", r->pair_i[p], r->pair_j[p]);
    size_t rows = r->ntensors > r->nmodules ? r->ntensors : r->nmodules;
    OverlapCounts *c = calloc(rows ? rows : 1, sizeof *c);
    if (!c)
        return ss_err(x->err, SS_EOUTPUT, "out of memory writing HDF5");
    hid_t g = H5I_INVALID_HID, gm = H5I_INVALID_HID;
    int rc = h5w_group(x->w, pairs, name, &g, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "i", r->pair_i[p], x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "j", r->pair_j[p], x->err);
    OverlapCounts tot = overlap_total_counts(r, p);
    if (!rc)
        rc = h5_counts_attrs(x, g, &tot);
    for (size_t t = 0; t < r->ntensors; t++)
        c[t] = overlap_tensor_counts(r, p, t);
    if (!rc)
        rc = h5_counts_columns(x, g, r->ntensors, c);
    if (!rc)
        rc = h5w_group(x->w, g, "modules", &gm, x->err);
    if (!rc) {
        for (size_t m = 0; m < r->nmodules; m++)
            c[m] = overlap_module_counts(r, p, m);
        rc = h5w_dataset_strings(x->w, gm, "module", r->nmodules,
                                 (const char *const *)r->modules, x->err);
        if (!rc)
            rc = h5_counts_columns(x, gm, r->nmodules, c);
    }
    if (gm != H5I_INVALID_HID) {
        int rc2 = h5w_close_group(x->w, gm, x->err);
        rc = rc ? rc : rc2;
    }
    if (g != H5I_INVALID_HID) {
        int rc2 = h5w_close_group(x->w, g, x->err);
        rc = rc ? rc : rc2;
    }
    free(c);
    return rc;
}

/* counts (n, k+1) u64, share and expected (n, k+1) f64, changed (n, k) u64, numel (n). */
static int h5_hist_block(OvH5 *x, hid_t g, size_t n, const uint64_t *numel,
                         const uint64_t *counts, const uint64_t *changed)
{
    size_t k = x->r->k, k1 = k + 1, cells;
    if (__builtin_mul_overflow(n ? n : 1, k1, &cells))
        return ss_err(x->err, SS_EOUTPUT, "consensus table too large");
    double *share = calloc(cells, sizeof *share), *exp = calloc(cells, sizeof *exp);
    int rc = (!share || !exp) ? ss_err(x->err, SS_EOUTPUT, "out of memory writing HDF5") : 0;
    for (size_t i = 0; i < n && !rc; i++) {
        overlap_expected_shares(k, numel[i], &changed[i * k], &exp[i * k1]);
        for (size_t j = 0; j < k1; j++)
            share[i * k1 + j] = numel[i] ? (double)counts[i * k1 + j] / (double)numel[i] : NAN;
    }
    hsize_t d1[1] = {n}, dh[2] = {n, k1}, dk[2] = {n, k};
    if (!rc)
        rc = h5w_dataset(x->w, g, "numel", H5W_U64, 1, d1, numel, x->err);
    if (!rc)
        rc = h5w_dataset(x->w, g, "changed", H5W_U64, 2, dk, changed, x->err);
    if (!rc)
        rc = h5w_dataset(x->w, g, "counts", H5W_U64, 2, dh, counts, x->err);
    if (!rc)
        rc = h5w_dataset(x->w, g, "share", H5W_F64, 2, dh, share, x->err);
    if (!rc)
        rc = h5w_dataset(x->w, g, "expected", H5W_F64, 2, dh, exp, x->err);
    free(share);
    free(exp);
    return rc;
}

/* /consensus: attributes overall, /consensus/tensors and /consensus/groups. */
static int h5_consensus(OvH5 *x)
{
    const OverlapReport *r = x->r;
    size_t k = r->k;
    hid_t g = H5I_INVALID_HID, gt = H5I_INVALID_HID, gg = H5I_INVALID_HID;
    uint64_t changed[OVERLAP_MAX_RUNS] = {0};
    double share[OVERLAP_MAX_RUNS + 1], exp[OVERLAP_MAX_RUNS + 1];
    for (size_t i = 0; i < k; i++)
        changed[i] = r->runs[i].changed;
    overlap_expected_shares(k, r->total_numel, changed, exp);
    for (size_t j = 0; j <= k; j++)
        share[j] = r->total_numel ? (double)r->total_hist[j] / (double)r->total_numel : NAN;
    int rc = h5w_group(x->w, h5w_root(x->w), "consensus", &g, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "k", k, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "numel", r->total_numel, x->err);
    if (!rc)
        rc = h5w_attr_array(x->w, g, "changed", H5W_U64, k, changed, x->err);
    if (!rc)
        rc = h5w_attr_array(x->w, g, "counts", H5W_U64, k + 1, r->total_hist, x->err);
    if (!rc)
        rc = h5w_attr_array(x->w, g, "share", H5W_F64, k + 1, share, x->err);
    if (!rc)
        rc = h5w_attr_array(x->w, g, "expected", H5W_F64, k + 1, exp, x->err);
    if (!rc)
        rc = h5w_group(x->w, g, "tensors", &gt, x->err);
    if (!rc)
        rc = h5_hist_block(x, gt, r->ntensors, r->numel, r->hist, r->changed);
    if (!rc)
        rc = h5w_group(x->w, g, "groups", &gg, x->err);
    if (!rc) {
        hsize_t d1[1] = {r->ncells};
        rc = h5w_dataset(x->w, gg, "layer", H5W_I64, 1, d1, r->cell_layer, x->err);
        const char **mods = calloc(r->ncells ? r->ncells : 1, sizeof *mods);
        if (!rc && !mods)
            rc = ss_err(x->err, SS_EOUTPUT, "out of memory writing HDF5");
        for (size_t c = 0; c < r->ncells && !rc; c++)
            mods[c] = r->modules[r->cell_module[c]];
        if (!rc)
            rc = h5w_dataset_strings(x->w, gg, "module", r->ncells, mods, x->err);
        free(mods);
    }
    if (!rc)
        rc = h5_hist_block(x, gg, r->ncells, r->cell_numel, r->cell_hist, r->cell_changed);
    hid_t groups[] = {gg, gt, g};
    for (size_t i = 0; i < 3; i++)
        if (groups[i] != H5I_INVALID_HID) {
            int rc2 = h5w_close_group(x->w, groups[i], x->err);
            rc = rc ? rc : rc2;
        }
    return rc;
}

/* Root attributes, /runs, /tensors and the missing list. */
static int h5_root(OvH5 *x)
{
    const OverlapReport *r = x->r;
    hid_t root = h5w_root(x->w), g = H5I_INVALID_HID;
    const char **s = calloc(r->k * 3, sizeof *s);
    uint64_t *changed = calloc(r->k, sizeof *changed);
    double *density = calloc(r->k, sizeof *density);
    int rc = (!s || !changed || !density) ? ss_err(x->err, SS_EOUTPUT, "out of memory writing HDF5") : 0;
    for (size_t i = 0; i < r->k && !rc; i++) {
        s[i] = r->runs[i].path;
        s[r->k + i] = r->runs[i].base;
        s[2 * r->k + i] = r->runs[i].b;
        changed[i] = r->runs[i].changed;
        density[i] = r->total_numel ? (double)changed[i] / (double)r->total_numel : NAN;
    }
    if (!rc)
        rc = h5w_attr_string(x->w, root, "schema", "sparsity-overlap/1", x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, root, "tool", "sparsity-overlap", x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, root, "tool_version", SS_VERSION, x->err);
    if (!rc)
        rc = h5w_attr_strings(x->w, root, "inputs", r->k, s, x->err);
    if (!rc)
        rc = h5w_attr_strings(x->w, root, "run_a", r->k, s + r->k, x->err);
    if (!rc)
        rc = h5w_attr_strings(x->w, root, "run_b", r->k, s + 2 * r->k, x->err);
    if (!rc)
        rc = h5w_attr_array(x->w, root, "run_changed", H5W_U64, r->k, changed, x->err);
    if (!rc)
        rc = h5w_attr_array(x->w, root, "run_density", H5W_F64, r->k, density, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, root, "numel", r->total_numel, x->err);
    if (!rc)
        rc = h5w_dataset_strings(x->w, root, "missing", r->nmissing,
                                 (const char *const *)r->missing, x->err);
    if (!rc)
        rc = h5w_group(x->w, root, "tensors", &g, x->err);
    hsize_t d1[1] = {r->ntensors}, dk[2] = {r->ntensors, r->k};
    if (!rc)
        rc = h5w_dataset_strings(x->w, g, "name", r->ntensors, (const char *const *)r->names,
                                 x->err);
    if (!rc)
        rc = h5w_dataset(x->w, g, "layer", H5W_I64, 1, d1, r->layer, x->err);
    const char **mods = rc ? NULL : calloc(r->ntensors ? r->ntensors : 1, sizeof *mods);
    if (!rc && !mods)
        rc = ss_err(x->err, SS_EOUTPUT, "out of memory writing HDF5");
    for (size_t t = 0; t < r->ntensors && !rc; t++)
        mods[t] = r->modules[r->module[t]];
    if (!rc)
        rc = h5w_dataset_strings(x->w, g, "module", r->ntensors, mods, x->err);
    if (!rc)
        rc = h5w_dataset(x->w, g, "numel", H5W_U64, 1, d1, r->numel, x->err);
    if (!rc)
        rc = h5w_dataset(x->w, g, "changed", H5W_U64, 2, dk, r->changed, x->err);
    if (g != H5I_INVALID_HID) {
        int rc2 = h5w_close_group(x->w, g, x->err);
        rc = rc ? rc : rc2;
    }
    free(mods);
    free(s);
    free(changed);
    free(density);
    return rc;
}

int overlap_write_h5(const char *path, const OverlapReport *r, SsError *err)
{
    OvH5 x = {NULL, r, err};
    int rc = h5w_open(path, &x.w, err);
    if (rc)
        return rc;
    rc = h5_root(&x);
    hid_t pairs = H5I_INVALID_HID;
    if (!rc)
        rc = h5w_group(x.w, h5w_root(x.w), "pairs", &pairs, err);
    for (size_t p = 0; p < r->npairs && !rc; p++)
        rc = h5_pair(&x, pairs, p);
    if (pairs != H5I_INVALID_HID) {
        int rc2 = h5w_close_group(x.w, pairs, err);
        rc = rc ? rc : rc2;
    }
    if (!rc && r->k >= 3)
        rc = h5_consensus(&x);
    if (!rc)
        return h5w_close(x.w, err);
    h5w_abort(x.w);
    return rc;
}
