/* The --h5 report of sparsity-scan (schema in docs/hdf5-schema.md): root attributes, a columnar
 * "tensors" group, the one-sided name lists, a "layers" group of layer x module matrices and
 * per-layer vectors, "totals" as attributes, with --masks a "masks" group of packed
 * changed-element bitmaps, and with --hist a "hist" group of tolerance curves. Written atomically
 * through formats/h5_write. */
#include "analyze/report.h"

#include "analyze/h5_chunks.h"
#include "analyze/maps.h"
#include "analyze/rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/h5_write.h"

#define REPORT_H5_DEFINITIONS_VERSION 1
/* Masks: deflate level 1 (twice as fast as 4 on bitmaps, within 2% in size), on the thread pool,
 * and only for chunks sparse enough to gain (h5_chunks_sparse_bits); dense chunks are stored raw. */
#define REPORT_H5_MASK_DEFLATE 1

typedef struct H5Ctx {
    H5Out *w;
    const ScanReport *r;
    SsError *err;
    void *buf;        /* scratch for one column: at least cap 8-byte elements */
    size_t cap;
    ThreadPool *pool; /* for the masks' chunks; NULL: filtered on this thread */
} H5Ctx;

/* NaN where the JSON report prints null (NaN or an infinite value). */
static double finite_or_nan(double x)
{
    return isfinite(x) ? x : NAN;
}

/* ---- counts blocks: the same columns for tensors, layers and layer x module cells ---- */

typedef enum CountField { F_NUMEL, F_CHANGED, F_NONFINITE, F_RTOL } CountField;
typedef enum RealField { F_SPARSITY, F_MAX_ABS, F_L2, F_REL_L2 } RealField;

static uint64_t count_field(const ScanCounts *c, CountField f)
{
    switch (f) {
    case F_NUMEL: return c->numel;
    case F_CHANGED: return c->changed;
    case F_NONFINITE: return c->nonfinite;
    case F_RTOL: return c->changed_rtol;
    }
    return 0;
}

static double real_field(const ScanCounts *c, RealField f)
{
    switch (f) {
    case F_SPARSITY: return scan_sparsity(c);
    case F_MAX_ABS: return finite_or_nan(c->max_abs_delta);
    case F_L2: return finite_or_nan(scan_l2_delta(c));
    case F_REL_L2: return finite_or_nan(scan_rel_l2_delta(c));
    }
    return NAN;
}

/* Dataset prefix+name from cells[0..n) (NULL: an absent cell, 0 or NaN), shaped dims[0..rank). */
typedef struct Block {
    hid_t loc;
    const char *prefix;
    const ScanCounts *const *cells;
    size_t n;
    int rank;
    hsize_t dims[H5W_MAX_RANK];
} Block;

static void block_name(const Block *b, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", b->prefix, name);
}

static int block_count(H5Ctx *x, const Block *b, const char *name, CountField f)
{
    uint64_t *v = x->buf;
    char full[128];
    for (size_t i = 0; i < b->n; i++)
        v[i] = b->cells[i] ? count_field(b->cells[i], f) : 0;
    block_name(b, name, full, sizeof full);
    return h5w_dataset(x->w, b->loc, full, H5W_U64, b->rank, b->dims, v, x->err);
}

static int block_real(H5Ctx *x, const Block *b, const char *name, RealField f)
{
    double *v = x->buf;
    char full[128];
    for (size_t i = 0; i < b->n; i++)
        v[i] = b->cells[i] ? real_field(b->cells[i], f) : NAN;
    block_name(b, name, full, sizeof full);
    return h5w_dataset(x->w, b->loc, full, H5W_F64, b->rank, b->dims, v, x->err);
}

/* changed_tol: the block's shape with one more dimension, the tolerance. */
static int block_changed_tol(H5Ctx *x, const Block *b)
{
    size_t ntol = x->r->cfg.ntol;
    uint64_t *v = x->buf;
    char full[128];
    for (size_t i = 0; i < b->n; i++)
        for (size_t k = 0; k < ntol; k++)
            v[i * ntol + k] = b->cells[i] ? b->cells[i]->changed_tol[k] : 0;
    hsize_t dims[H5W_MAX_RANK];
    memcpy(dims, b->dims, sizeof dims);
    dims[b->rank] = ntol;
    block_name(b, "changed_tol", full, sizeof full);
    return h5w_dataset(x->w, b->loc, full, H5W_U64, b->rank + 1, dims, v, x->err);
}

static int write_block(H5Ctx *x, const Block *b)
{
    int rc = block_count(x, b, "numel", F_NUMEL);
    if (!rc)
        rc = block_count(x, b, "changed", F_CHANGED);
    if (!rc)
        rc = block_real(x, b, "sparsity", F_SPARSITY);
    if (!rc)
        rc = block_count(x, b, "nonfinite", F_NONFINITE);
    if (!rc)
        rc = block_changed_tol(x, b);
    if (!rc && x->r->cfg.has_rtol)
        rc = block_count(x, b, "changed_rtol", F_RTOL);
    if (!rc)
        rc = block_real(x, b, "max_abs_delta", F_MAX_ABS);
    if (!rc)
        rc = block_real(x, b, "l2_delta", F_L2);
    if (!rc)
        rc = block_real(x, b, "rel_l2_delta", F_REL_L2);
    return rc;
}

/* ---- the parts of the file ---- */

int report_h5_common_attrs(H5Out *w, const char *schema, int64_t definitions_version,
                           const char *command_line, const ScanConfig *cfg, const char *pattern,
                           SsError *err)
{
    hid_t root = h5w_root(w);
    char keys[SCAN_MAX_TOL][64];
    const char *keyp[SCAN_MAX_TOL];
    for (size_t k = 0; k < cfg->ntol; k++) {
        scan_tol_key(cfg->tol[k], keys[k], sizeof keys[k]);
        keyp[k] = keys[k];
    }
    int rc = h5w_attr_string(w, root, "schema", schema, err);
    if (!rc)
        rc = h5w_attr_string(w, root, "tool", "sparsity-scan", err);
    if (!rc)
        rc = h5w_attr_string(w, root, "tool_version", SS_VERSION, err);
    if (!rc)
        rc = h5w_attr_i64(w, root, "definitions_version", definitions_version, err);
    if (!rc)
        rc = h5w_attr_string(w, root, "command_line", command_line, err);
    if (!rc)
        rc = h5w_attr_array(w, root, "tolerances", H5W_F64, cfg->ntol, cfg->tol, err);
    if (!rc)
        rc = h5w_attr_strings(w, root, "tolerance_keys", cfg->ntol, keyp, err);
    if (!rc && cfg->has_rtol)
        rc = h5w_attr_f64(w, root, "rtol", cfg->rtol, err);
    if (!rc && pattern)
        rc = h5w_attr_string(w, root, "group_regex", pattern, err);
    return rc;
}

static int write_root_attrs(H5Ctx *x, const Grouping *g, const ReportH5Meta *meta)
{
    const ScanReport *r = x->r;
    hid_t root = h5w_root(x->w);
    const char *inputs[2] = {r->path_a, r->path_b};
    int rc = report_h5_common_attrs(x->w, REPORT_JSON_SCHEMA, REPORT_H5_DEFINITIONS_VERSION,
                                    meta->command_line, &r->cfg, g->pattern, x->err);
    if (!rc)
        rc = h5w_attr_strings(x->w, root, "inputs", 2, inputs, x->err);
    if (!rc)
        rc = h5w_attr_array(x->w, root, "input_bytes", H5W_U64, 2, meta->input_bytes, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, root, "scanned_bytes", r->bytes_scanned, x->err);
    if (!rc && r->delta_dtype)
        rc = h5w_attr_string(x->w, root, "delta_dtype", scan_delta_dtype_name(r->delta_dtype),
                             x->err);
    return rc;
}

static int write_tensors(H5Ctx *x, const Grouping *g)
{
    const ScanReport *r = x->r;
    size_t n = r->pairs.npairs;
    hid_t grp;
    int rc = h5w_group(x->w, h5w_root(x->w), "tensors", &grp, x->err);
    if (rc)
        return rc;
    const char **strs = malloc((n ? n : 1) * sizeof *strs);
    const ScanCounts **cells = malloc((n ? n : 1) * sizeof *cells);
    if (!strs || !cells) {
        rc = ss_err(x->err, SS_EOUTPUT, "out of memory writing the HDF5 report");
        goto done;
    }
    hsize_t dims1[1] = {n};
    for (size_t i = 0; i < n; i++)
        strs[i] = r->pairs.pairs[i].a->name;
    rc = h5w_dataset_strings(x->w, grp, "name", n, strs, x->err);
    for (size_t i = 0; i < n; i++)
        strs[i] = dtype_name(r->pairs.pairs[i].a->dtype);
    if (!rc)
        rc = h5w_dataset_strings(x->w, grp, "dtype", n, strs, x->err);

    int max_ndim = 0;
    uint32_t *nd = x->buf;
    for (size_t i = 0; i < n; i++) {
        nd[i] = (uint32_t)r->pairs.pairs[i].a->ndim;
        if (r->pairs.pairs[i].a->ndim > max_ndim)
            max_ndim = r->pairs.pairs[i].a->ndim;
    }
    if (!rc)
        rc = h5w_dataset(x->w, grp, "ndim", H5W_U32, 1, dims1, nd, x->err);
    if (!rc) {
        /* shape: n x max_ndim, padded with 0 (ndim says how many are real) */
        size_t cols = (size_t)max_ndim;
        uint64_t *sh = calloc(n && cols ? n * cols : 1, sizeof *sh);
        if (!sh) {
            rc = ss_err(x->err, SS_EOUTPUT, "out of memory writing the HDF5 report");
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            for (int d = 0; d < r->pairs.pairs[i].a->ndim; d++)
                sh[i * cols + (size_t)d] = r->pairs.pairs[i].a->shape[d];
        hsize_t dims2[2] = {n, cols};
        rc = h5w_dataset(x->w, grp, "shape", H5W_U64, 2, dims2, sh, x->err);
        free(sh);
    }
    for (size_t i = 0; i < n; i++)
        cells[i] = &r->counts[i];
    Block b = {grp, "", cells, n, 1, {n}};
    if (!rc)
        rc = write_block(x, &b);
    if (!rc) {
        int64_t *lay = x->buf;
        for (size_t i = 0; i < n; i++)
            lay[i] = g->tensor_layer[i];
        rc = h5w_dataset(x->w, grp, "layer", H5W_I64, 1, dims1, lay, x->err);
    }
    for (size_t i = 0; i < n; i++)
        strs[i] = g->modules[g->tensor_module[i]];
    if (!rc)
        rc = h5w_dataset_strings(x->w, grp, "module", n, strs, x->err);
done:
    free(strs);
    free(cells);
    int rc2 = h5w_close_group(x->w, grp, x->err);
    return rc ? rc : rc2;
}

static int write_name_lists(H5Ctx *x)
{
    const PairList *pl = &x->r->pairs;
    hid_t root = h5w_root(x->w);
    int rc = h5w_dataset_strings(x->w, root, "only_in_a", pl->nonly_a, pl->only_a, x->err);
    if (!rc)
        rc = h5w_dataset_strings(x->w, root, "only_in_b", pl->nonly_b, pl->only_b, x->err);
    if (!rc)
        rc = h5w_dataset_strings(x->w, root, "mismatched", pl->nmismatched, pl->mismatched,
                                 x->err);
    return rc;
}

/* ntensors, nmatrices (u64) and mean_matrix_sparsity (f64) over n groups, shaped dims. */
static int write_group_extras(H5Ctx *x, hid_t loc, const char *prefix, size_t n, int rank,
                              const hsize_t *dims, const size_t *ntensors, const size_t *nmatrices,
                              const double *mean)
{
    char name[128];
    uint64_t *v = x->buf;
    for (size_t i = 0; i < n; i++)
        v[i] = ntensors[i];
    snprintf(name, sizeof name, "%sntensors", prefix);
    int rc = h5w_dataset(x->w, loc, name, H5W_U64, rank, dims, v, x->err);
    for (size_t i = 0; i < n; i++)
        v[i] = nmatrices[i];
    snprintf(name, sizeof name, "%snmatrices", prefix);
    if (!rc)
        rc = h5w_dataset(x->w, loc, name, H5W_U64, rank, dims, v, x->err);
    snprintf(name, sizeof name, "%smean_matrix_sparsity", prefix);
    if (!rc)
        rc = h5w_dataset(x->w, loc, name, H5W_F64, rank, dims, mean, x->err);
    return rc;
}

static int write_layers(H5Ctx *x, const Grouping *g)
{
    size_t L = g->nlayers, M = g->nmodules, LM = L * M; /* checked by the caller */
    hid_t grp;
    int rc = h5w_group(x->w, h5w_root(x->w), "layers", &grp, x->err);
    if (rc)
        return rc;
    const ScanCounts **cells = calloc(LM > L ? LM : (L ? L : 1), sizeof *cells);
    size_t *nt = calloc(LM > L ? LM : (L ? L : 1), sizeof *nt);
    size_t *nm = calloc(LM > L ? LM : (L ? L : 1), sizeof *nm);
    double *mean = malloc((LM > L ? LM : (L ? L : 1)) * sizeof *mean);
    const char **strs = malloc((L > M ? L : (M ? M : 1)) * sizeof *strs);
    if (!cells || !nt || !nm || !mean || !strs) {
        rc = ss_err(x->err, SS_EOUTPUT, "out of memory writing the HDF5 report");
        goto done;
    }
    hsize_t dl[1] = {L};
    int64_t *lay = x->buf;
    for (size_t l = 0; l < L; l++)
        lay[l] = g->layers[l].layer;
    rc = h5w_dataset(x->w, grp, "layer", H5W_I64, 1, dl, lay, x->err);
    if (!rc)
        rc = h5w_dataset_strings(x->w, grp, "module", M, (const char *const *)g->modules, x->err);

    /* layer x module matrices */
    for (size_t i = 0; i < LM; i++)
        mean[i] = NAN;
    for (size_t k = 0; k < g->ncells; k++) {
        const GroupCell *c = &g->cells[k];
        size_t i = c->layer_index * M + c->module_index;
        cells[i] = &c->counts;
        nt[i] = c->ntensors;
        nm[i] = c->nmatrices;
        mean[i] = c->mean_matrix_sparsity;
    }
    Block b = {grp, "", cells, LM, 2, {L, M}};
    if (!rc)
        rc = write_block(x, &b);
    if (!rc)
        rc = write_group_extras(x, grp, "", LM, 2, b.dims, nt, nm, mean);

    /* per layer */
    for (size_t l = 0; l < L; l++) {
        cells[l] = &g->layers[l].counts;
        nt[l] = g->layers[l].ntensors;
        nm[l] = g->layers[l].nmatrices;
        mean[l] = g->layers[l].mean_matrix_sparsity;
        strs[l] = g->modules[g->cells[g->layers[l].least_sparse_cell].module_index];
    }
    Block bl = {grp, "layer_", cells, L, 1, {L}};
    if (!rc)
        rc = write_block(x, &bl);
    if (!rc)
        rc = write_group_extras(x, grp, "layer_", L, 1, dl, nt, nm, mean);
    if (!rc)
        rc = h5w_dataset_strings(x->w, grp, "layer_least_sparse_module", L, strs, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, grp, "layers_nmatrices", g->layers_nmatrices, x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, grp, "layers_mean_matrix_sparsity",
                          g->layers_mean_matrix_sparsity, x->err);
done:
    free(cells);
    free(nt);
    free(nm);
    free(mean);
    free(strs);
    int rc2 = h5w_close_group(x->w, grp, x->err);
    return rc ? rc : rc2;
}

static int write_totals(H5Ctx *x)
{
    const ScanReport *r = x->r;
    const ScanCounts *t = &r->total;
    hid_t grp;
    int rc = h5w_group(x->w, h5w_root(x->w), "totals", &grp, x->err);
    if (rc)
        return rc;
    rc = h5w_attr_u64(x->w, grp, "ntensors", r->pairs.npairs, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, grp, "numel", t->numel, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, grp, "changed", t->changed, x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, grp, "sparsity", scan_sparsity(t), x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, grp, "nonfinite", t->nonfinite, x->err);
    if (!rc)
        rc = h5w_attr_array(x->w, grp, "changed_tol", H5W_U64, r->cfg.ntol, t->changed_tol,
                            x->err);
    if (!rc && r->cfg.has_rtol)
        rc = h5w_attr_u64(x->w, grp, "changed_rtol", t->changed_rtol, x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, grp, "max_abs_delta", real_field(t, F_MAX_ABS), x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, grp, "l2_delta", real_field(t, F_L2), x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, grp, "rel_l2_delta", real_field(t, F_REL_L2), x->err);
    int rc2 = h5w_close_group(x->w, grp, x->err);
    return rc ? rc : rc2;
}

/* The name of a tensor's dataset in /masks (and group in /maps): the tensor name, with '%' written "%25" and '/'
 * (which HDF5 names cannot hold) written "%2F"; names without either are kept as they are.
 * NULL when out of memory (free the result). */
char *report_h5_tensor_name(const char *tensor)
{
    size_t len = strlen(tensor), extra = 0;
    for (const char *c = tensor; *c; c++)
        extra += (*c == '%' || *c == '/') ? 2 : 0;
    char *out = malloc(len + extra + 1), *p = out;
    if (!out)
        return NULL;
    for (const char *c = tensor; *c; c++) {
        if (*c == '%' || *c == '/') {
            *p++ = '%';
            *p++ = '2';
            *p++ = *c == '%' ? '5' : 'F';
        } else {
            *p++ = *c;
        }
    }
    *p = '\0';
    return out;
}

/* masks/<name>: u8 (ceil(numel/8)), with its attributes. */
static int write_mask(H5Ctx *x, hid_t grp, size_t i)
{
    const StTensor *t = x->r->pairs.pairs[i].a;
    char *name = report_h5_tensor_name(t->name);
    if (!name)
        return ss_err(x->err, SS_EOUTPUT, "out of memory writing the HDF5 report");
    hsize_t dims[1] = {scan_mask_bytes(t->numel)};
    hid_t dset = H5I_INVALID_HID;
    int rc = h5_chunks_write(x->w, x->pool, grp, name, H5W_U8, 1, dims, 0, x->r->masks[i],
                             REPORT_H5_MASK_DEFLATE, h5_chunks_sparse_bits, &dset, x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, dset, "tensor", t->name, x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, dset, "dtype", dtype_name(t->dtype), x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, dset, "numel", t->numel, x->err);
    if (!rc)
        rc = h5w_attr_array(x->w, dset, "shape", H5W_U64, (size_t)t->ndim, t->shape, x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, dset, "bitorder", "little", x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, dset, "changed", x->r->counts[i].changed, x->err);
    if (dset != H5I_INVALID_HID) {
        int rc2 = h5w_close_dataset(x->w, dset, x->err);
        rc = rc ? rc : rc2;
    }
    free(name);
    return rc;
}

static int write_masks(H5Ctx *x)
{
    hid_t grp;
    int rc = h5w_group(x->w, h5w_root(x->w), "masks", &grp, x->err);
    if (rc)
        return rc;
    rc = h5w_attr_string(x->w, grp, "bitorder", "little", x->err);
    for (size_t i = 0; i < x->r->pairs.npairs && !rc; i++)
        rc = write_mask(x, grp, i);
    int rc2 = h5w_close_group(x->w, grp, x->err);
    return rc ? rc : rc2;
}

/* ---- /hist: tolerance curves over one common exponent range ---- */

typedef enum HistField { H_ABS, H_ABS_POW2, H_REL, H_REL_POW2, H_AT_POW2 } HistField;

static uint64_t hist_field(const ScanHist *h, HistField f, int32_t e)
{
    switch (f) {
    case H_ABS: return scan_hist_abs_count(h, e);
    case H_ABS_POW2: return scan_hist_abs_pow2(h, e);
    case H_REL: return scan_hist_rel_count(h, e);
    case H_REL_POW2: return scan_hist_rel_pow2(h, e);
    case H_AT_POW2: return scan_hist_changed_at_pow2(h, e);
    }
    return 0;
}

/* One row of field f: row[b] for exponent lo + b, b < nb. changed_at_pow2 by a running sum from
 * the top (O(nb), not O(nb^2)). */
static void hist_row(const ScanHist *h, HistField f, int32_t lo, size_t nb, uint64_t *row)
{
    if (f != H_AT_POW2) {
        for (size_t b = 0; b < nb; b++)
            row[b] = hist_field(h, f, lo + (int32_t)b);
        return;
    }
    uint64_t above = h->nonfinite_changed; /* nonfinite + sum of counts at exponents >= e */
    for (int32_t e = h->buf ? h->range.abs_hi : lo; e >= lo + (int32_t)nb; e--)
        above += scan_hist_abs_count(h, e);
    for (size_t b = nb; b-- > 0;) {
        int32_t e = lo + (int32_t)b;
        above += scan_hist_abs_count(h, e);
        row[b] = above - scan_hist_abs_pow2(h, e);
    }
}

/* hist/<name> (n x nb) and hist/total_<name> (nb) for exponents lo .. lo + nb - 1. */
static int write_hist_field(H5Ctx *x, hid_t grp, const char *name, HistField f, int32_t lo,
                            size_t nb, uint64_t *v)
{
    const ScanReport *r = x->r;
    size_t n = r->pairs.npairs;
    char full[64];
    for (size_t i = 0; i < n; i++)
        hist_row(&r->hists[i], f, lo, nb, v + i * nb);
    hsize_t dims[2] = {n, nb};
    int rc = h5w_dataset(x->w, grp, name, H5W_U64, 2, dims, v, x->err);
    hist_row(&r->hist_total, f, lo, nb, v);
    snprintf(full, sizeof full, "total_%s", name);
    if (!rc)
        rc = h5w_dataset(x->w, grp, full, H5W_U64, 1, dims + 1, v, x->err);
    return rc;
}

static int write_hist(H5Ctx *x)
{
    const ScanReport *r = x->r;
    const ScanHistRange *t = &r->hist_total.range;
    size_t n = r->pairs.npairs, nb, cells;
    int32_t lo = t->abs_lo < t->rel_lo ? t->abs_lo : t->rel_lo;
    int32_t hi = t->abs_hi > t->rel_hi ? t->abs_hi : t->rel_hi;
    nb = (size_t)((int64_t)hi - lo + 1);
    if (__builtin_mul_overflow(n, nb, &cells) || cells > ((size_t)1 << 30))
        return ss_err(x->err, SS_EOUTPUT, "%zu tensors x %zu bins are too many for /hist", n, nb);
    uint64_t *v = malloc((cells > nb ? cells : nb) * sizeof *v);
    int64_t *ex = malloc(nb * sizeof *ex);
    hid_t grp = H5I_INVALID_HID;
    int rc = v && ex ? 0 : ss_err(x->err, SS_EOUTPUT, "out of memory writing the HDF5 report");
    if (!rc)
        rc = h5w_group(x->w, h5w_root(x->w), "hist", &grp, x->err);
    for (size_t b = 0; ex && b < nb; b++)
        ex[b] = lo + (int64_t)b;
    hsize_t dn[1] = {n}, db[1] = {nb};
    if (!rc)
        rc = h5w_dataset(x->w, grp, "exponent", H5W_I64, 1, db, ex, x->err);
    static const struct { const char *name; HistField f; } fields[] = {
        {"abs_count", H_ABS}, {"abs_pow2", H_ABS_POW2}, {"rel_count", H_REL},
        {"rel_pow2", H_REL_POW2}, {"changed_at_pow2", H_AT_POW2}};
    for (size_t k = 0; k < sizeof fields / sizeof fields[0] && !rc; k++)
        rc = write_hist_field(x, grp, fields[k].name, fields[k].f, lo, nb, v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = r->hists[i].nonfinite_changed;
    if (!rc)
        rc = h5w_dataset(x->w, grp, "nonfinite_changed", H5W_U64, 1, dn, v, x->err);
    for (size_t i = 0; v && i < n; i++)
        v[i] = r->hists[i].zero_delta;
    if (!rc)
        rc = h5w_dataset(x->w, grp, "zero_delta", H5W_U64, 1, dn, v, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, grp, "total_nonfinite_changed", r->hist_total.nonfinite_changed,
                          x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, grp, "total_zero_delta", r->hist_total.zero_delta, x->err);
    if (grp != H5I_INVALID_HID) {
        int rc2 = h5w_close_group(x->w, grp, x->err);
        rc = rc ? rc : rc2;
    }
    free(v);
    free(ex);
    return rc;
}

int report_write_h5(const char *path, const ScanReport *r, const Grouping *g,
                    const ReportH5Meta *meta, const RankReport *rank, const MapsReport *maps,
                    SsError *err)
{
    /* The scratch column holds the largest dataset: n tensors x ntol, L x M x ntol cells. */
    size_t n = r->pairs.npairs, ntol = r->cfg.ntol ? r->cfg.ntol : 1, lm, cap;
    if (__builtin_mul_overflow(g->nlayers, g->nmodules, &lm) ||
        __builtin_mul_overflow(lm > n ? lm : n, ntol, &cap) || cap > ((size_t)1 << 28))
        return ss_err(err, SS_EOUTPUT,
                      "%s: %zu layers x %zu modules are too many for the HDF5 report", path,
                      g->nlayers, g->nmodules);
    H5Ctx x = {NULL, r, err, malloc((cap ? cap : 1) * sizeof(uint64_t)), cap, NULL};
    if (!x.buf)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory for the HDF5 report", path);
    if (r->masks || maps)
        x.pool = pool_create(r->threads); /* NULL (no threads): the chunks go one by one */
    int rc = h5w_open(path, &x.w, err);
    if (!rc)
        rc = write_root_attrs(&x, g, meta);
    if (!rc)
        rc = write_tensors(&x, g);
    if (!rc)
        rc = write_name_lists(&x);
    if (!rc)
        rc = write_layers(&x, g);
    if (!rc)
        rc = write_totals(&x);
    if (!rc && r->masks)
        rc = write_masks(&x);
    if (!rc && r->hists && r->hist_total.buf)
        rc = write_hist(&x);
    if (!rc && rank)
        rc = report_rank_h5(x.w, rank, err);
    if (!rc && maps)
        rc = report_maps_h5(x.w, x.pool, maps, err);
    if (!rc)
        rc = h5w_close(x.w, err);
    else
        h5w_abort(x.w);
    if (x.pool)
        pool_destroy(x.pool);
    free(x.buf);
    return rc;
}
