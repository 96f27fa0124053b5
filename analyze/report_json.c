/* The --json report of sparsity-scan (schema in docs/cli.md): per tensor, totals, and the
 * per-layer and per layer x module figures of a Grouping. */
#include "analyze/report.h"

#include "analyze/maps.h"
#include "analyze/rank.h"


void report_json_counts(JsonWriter *w, const ScanConfig *cfg, const ScanCounts *c, int deltas)
{
    char key[64];
    jw_key(w, "numel");
    jw_uint(w, c->numel);
    jw_key(w, "changed");
    jw_uint(w, c->changed);
    jw_key(w, "sparsity");
    jw_double(w, scan_sparsity(c));
    jw_key(w, "nonfinite");
    jw_uint(w, c->nonfinite);
    jw_key(w, "changed_tol");
    jw_object_begin(w);
    for (size_t k = 0; k < cfg->ntol; k++) {
        scan_tol_key(cfg->tol[k], key, sizeof key);
        jw_key(w, key);
        jw_uint(w, c->changed_tol[k]);
    }
    jw_object_end(w);
    if (cfg->has_rtol) {
        jw_key(w, "changed_rtol");
        jw_uint(w, c->changed_rtol);
    }
    if (!deltas)
        return;
    jw_key(w, "max_abs_delta");
    jw_double(w, c->max_abs_delta);
    jw_key(w, "l2_delta");
    jw_double(w, scan_l2_delta(c));
    jw_key(w, "rel_l2_delta");
    jw_double(w, scan_rel_l2_delta(c)); /* null when ||A|| = 0 */
}

/* One side of a tolerance curve: its nonzero bins (exponent, count, pow2), ascending. */
static void write_curve_side(JsonWriter *w, const char *key, const uint64_t *count,
                             const uint64_t *pow2, int32_t lo, int32_t hi)
{
    jw_key(w, key);
    jw_object_begin(w);
    const char *names[3] = {"exponent", "count", "pow2"};
    for (int f = 0; f < 3; f++) {
        jw_key(w, names[f]);
        jw_array_begin(w);
        for (int32_t e = lo; count && e <= hi; e++) {
            if (!count[e - lo])
                continue;
            if (f == 0)
                jw_double(w, (double)e); /* signed: prints in integer form */
            else
                jw_uint(w, (f == 1 ? count : pow2)[e - lo]);
        }
        jw_array_end(w);
    }
    jw_object_end(w);
}

/* "tolerance_curve" (docs/cli.md): the abs and rel histograms, nonfinite_changed, zero_delta and
 * changed_at_pow2 for every k from the smallest to the largest used abs bin. */
static void write_tolerance_curve(JsonWriter *w, const ScanHist *h)
{
    jw_key(w, "tolerance_curve");
    jw_object_begin(w);
    write_curve_side(w, "abs", h->abs_count, h->abs_pow2, h->range.abs_lo, h->range.abs_hi);
    write_curve_side(w, "rel", h->rel_count, h->rel_pow2, h->range.rel_lo, h->range.rel_hi);
    jw_key(w, "nonfinite_changed");
    jw_uint(w, h->nonfinite_changed);
    jw_key(w, "zero_delta");
    jw_uint(w, h->zero_delta);
    jw_key(w, "changed_at_pow2");
    jw_object_begin(w);
    int32_t lo, hi;
    if (scan_hist_abs_used(h, &lo, &hi)) {
        char key[16];
        for (int32_t k = lo; k <= hi; k++) {
            snprintf(key, sizeof key, "%d", (int)k);
            jw_key(w, key);
            jw_uint(w, scan_hist_changed_at_pow2(h, k));
        }
    }
    jw_object_end(w);
    jw_object_end(w);
}

static void write_names(JsonWriter *w, const char *key, const char *const *names, size_t n)
{
    jw_key(w, key);
    jw_array_begin(w);
    for (size_t i = 0; i < n; i++)
        jw_string(w, names[i]);
    jw_array_end(w);
}

/* A layer index: negative for the tensors outside the layers. jw_uint has no sign, and an integer
 * below 2^53 prints through jw_double in integer form ("-1", "27"). */
static void write_layer(JsonWriter *w, int64_t layer)
{
    jw_key(w, "layer");
    jw_double(w, (double)layer);
}

static void write_group_sizes(JsonWriter *w, size_t ntensors, size_t nmatrices)
{
    jw_key(w, "ntensors");
    jw_uint(w, ntensors);
    jw_key(w, "nmatrices");
    jw_uint(w, nmatrices);
}

/* "layers": one object per layer; "groups": one per layer x module cell that has tensors;
 * the mean over the matrices in layers >= 0. */
static void write_groups(JsonWriter *w, const ScanReport *r, const Grouping *g)
{
    if (g->pattern) {
        jw_key(w, "group_regex");
        jw_string(w, g->pattern);
    }
    jw_key(w, "layers_nmatrices");
    jw_uint(w, g->layers_nmatrices);
    jw_key(w, "layers_mean_matrix_sparsity");
    jw_double(w, g->layers_mean_matrix_sparsity); /* null when there are no matrices */

    jw_key(w, "layers");
    jw_array_begin(w);
    for (size_t l = 0; l < g->nlayers; l++) {
        const GroupLayer *L = &g->layers[l];
        jw_object_begin(w);
        write_layer(w, L->layer);
        write_group_sizes(w, L->ntensors, L->nmatrices);
        report_json_counts(w, &r->cfg, &L->counts, 1);
        jw_key(w, "mean_matrix_sparsity");
        jw_double(w, L->mean_matrix_sparsity);
        jw_key(w, "least_sparse_module");
        jw_string(w, g->modules[g->cells[L->least_sparse_cell].module_index]);
        jw_object_end(w);
    }
    jw_array_end(w);

    jw_key(w, "groups");
    jw_array_begin(w);
    for (size_t k = 0; k < g->ncells; k++) {
        const GroupCell *c = &g->cells[k];
        jw_object_begin(w);
        write_layer(w, g->layers[c->layer_index].layer);
        jw_key(w, "module");
        jw_string(w, g->modules[c->module_index]);
        write_group_sizes(w, c->ntensors, c->nmatrices);
        report_json_counts(w, &r->cfg, &c->counts, 1);
        jw_key(w, "mean_matrix_sparsity");
        jw_double(w, c->mean_matrix_sparsity);
        jw_object_end(w);
    }
    jw_array_end(w);
}

void report_write_json(FILE *f, const ScanReport *r, const Grouping *g, const RankReport *rank,
                       const MapsReport *maps)
{
    JsonWriter w;
    jw_init(&w, f, 1);
    jw_object_begin(&w);
    jw_key(&w, "schema");
    jw_string(&w, REPORT_JSON_SCHEMA);
    jw_key(&w, "a");
    jw_string(&w, r->path_a);
    jw_key(&w, "b");
    jw_string(&w, r->path_b);
    jw_key(&w, "tolerances");
    jw_array_begin(&w);
    for (size_t k = 0; k < r->cfg.ntol; k++)
        jw_double(&w, r->cfg.tol[k]);
    jw_array_end(&w);
    if (r->delta_dtype) {
        jw_key(&w, "delta_dtype");
        jw_string(&w, scan_delta_dtype_name(r->delta_dtype));
    }
    if (r->cfg.has_rtol) {
        jw_key(&w, "rtol");
        jw_double(&w, r->cfg.rtol);
    }
    jw_key(&w, "totals");
    jw_object_begin(&w);
    report_json_counts(&w, &r->cfg, &r->total, 1);
    if (r->hists)
        write_tolerance_curve(&w, &r->hist_total);
    jw_object_end(&w);

    jw_key(&w, "tensors");
    jw_array_begin(&w);
    for (size_t i = 0; i < r->pairs.npairs; i++) {
        const StTensor *t = r->pairs.pairs[i].a;
        jw_object_begin(&w);
        jw_key(&w, "name");
        jw_string(&w, t->name);
        jw_key(&w, "dtype");
        jw_string(&w, dtype_name(t->dtype));
        jw_key(&w, "shape");
        jw_array_begin(&w);
        for (int d = 0; d < t->ndim; d++)
            jw_uint(&w, t->shape[d]);
        jw_array_end(&w);
        report_json_counts(&w, &r->cfg, &r->counts[i], 1);
        if (r->hists)
            write_tolerance_curve(&w, &r->hists[i]);
        if (g) {
            write_layer(&w, g->tensor_layer[i]);
            jw_key(&w, "module");
            jw_string(&w, g->modules[g->tensor_module[i]]);
        }
        if (maps && maps->t[i].rows) {
            jw_key(&w, "maps");
            report_maps_json(&w, &maps->t[i]);
        }
        jw_object_end(&w);
    }
    jw_array_end(&w);

    write_names(&w, "only_in_a", r->pairs.only_a, r->pairs.nonly_a);
    write_names(&w, "only_in_b", r->pairs.only_b, r->pairs.nonly_b);
    write_names(&w, "mismatched", r->pairs.mismatched, r->pairs.nmismatched);
    if (g)
        write_groups(&w, r, g);
    if (rank) {
        jw_key(&w, "rank");
        report_rank_json(&w, rank);
    }
    jw_object_end(&w);
    fputc('\n', f);
}
