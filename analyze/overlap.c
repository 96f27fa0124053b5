/* The overlap computation (see overlap.h): open k sparsity-scan reports, check that they come
 * from the same base, settle the tensors they share, then stream one tensor's masks at a time
 * and count pairwise intersections (popcount over 64-bit words) and, for k >= 3, the consensus
 * histogram (a bit-sliced counter of how many runs changed each element). */
#include "analyze/overlap.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/h5_read.h"

#define OV_PLANES 7 /* bits of a per-element count up to OVERLAP_MAX_RUNS */

/* One input report while the overlap is computed. */
typedef struct OvInput {
    H5In *h;
    size_t nnames;
    char **names;       /* /tensors/name */
    int64_t *layer;     /* /tensors/layer */
    size_t nmod;
    char **module;      /* /tensors/module */
    size_t *sorted;     /* indices into names, by strcmp */
} OvInput;

/* ---- small helpers ---- */

static int ov_oom(SsError *err)
{
    return ss_err(err, SS_EOUTPUT, "out of memory");
}

/* calloc of a*b elements of size s, checked; NULL on overflow or no memory. */
static void *ov_calloc(size_t a, size_t b, size_t s)
{
    size_t n;
    if (__builtin_mul_overflow(a, b, &n))
        return NULL;
    return calloc(n ? n : 1, s);
}

static int ov_add(uint64_t *acc, uint64_t v, const char *path, SsError *err)
{
    if (__builtin_add_overflow(*acc, v, acc))
        return ss_err(err, SS_EINPUT, "%s: element counts overflow 64 bits", path);
    return 0;
}

static const char *const *ov_sort_names; /* for ov_cmp_index (qsort has no context argument) */

static int ov_cmp_index(const void *a, const void *b)
{
    return strcmp(ov_sort_names[*(const size_t *)a], ov_sort_names[*(const size_t *)b]);
}

static int ov_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Index of name in in->names, or SIZE_MAX. */
static size_t ov_find(const OvInput *in, const char *name)
{
    size_t lo = 0, hi = in->nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(in->names[in->sorted[mid]], name);
        if (c == 0)
            return in->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

/* The /masks dataset name of a tensor: '%' as "%25", '/' as "%2F" (docs/hdf5-schema.md). */
static char *ov_mask_path(const char *tensor)
{
    size_t len = strlen(tensor), extra = 0;
    for (const char *c = tensor; *c; c++)
        extra += (*c == '%' || *c == '/') ? 2 : 0;
    char *out = malloc(len + extra + sizeof "masks/"), *p = out;
    if (!out)
        return NULL;
    p = stpcpy(p, "masks/");
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

/* ---- figures ---- */

void overlap_figures(const OverlapCounts *c, OverlapFigures *f)
{
    double n = (double)c->numel, a = (double)c->n1, b = (double)c->n2, i = (double)c->inter;
    double u = a + b - i;
    f->p = c->numel ? a / n : NAN;
    f->q = c->numel ? b / n : NAN;
    f->o1 = c->n1 ? i / a : NAN;
    f->o2 = c->n2 ? i / b : NAN;
    f->o1_random = f->q;
    f->o2_random = f->p;
    f->jaccard = (c->n1 || c->n2) ? i / u : NAN;
    double denom = f->p + f->q - f->p * f->q;
    f->jaccard_random = (c->numel && (c->n1 || c->n2)) ? f->p * f->q / denom : NAN;
}

OverlapCounts overlap_tensor_counts(const OverlapReport *r, size_t p, size_t t)
{
    OverlapCounts c = {r->numel[t], r->changed[t * r->k + r->pair_i[p]],
                       r->changed[t * r->k + r->pair_j[p]], r->inter[p * r->ntensors + t]};
    return c;
}

OverlapCounts overlap_module_counts(const OverlapReport *r, size_t p, size_t m)
{
    OverlapCounts c = {r->module_numel[m], r->module_changed[m * r->k + r->pair_i[p]],
                       r->module_changed[m * r->k + r->pair_j[p]],
                       r->module_inter[p * r->nmodules + m]};
    return c;
}

OverlapCounts overlap_total_counts(const OverlapReport *r, size_t p)
{
    OverlapCounts c = {r->total_numel, r->runs[r->pair_i[p]].changed,
                       r->runs[r->pair_j[p]].changed, r->total_inter[p]};
    return c;
}

void overlap_poisson_binomial(size_t k, const double *prob, double *out)
{
    out[0] = 1.0;
    for (size_t j = 1; j <= k; j++)
        out[j] = 0.0;
    for (size_t r = 0; r < k; r++) {
        double p = prob[r];
        for (size_t j = r + 1; j >= 1; j--)
            out[j] = out[j] * (1.0 - p) + out[j - 1] * p;
        out[0] *= 1.0 - p;
    }
}

void overlap_expected_shares(size_t k, uint64_t numel, const uint64_t *changed, double *out)
{
    double prob[OVERLAP_MAX_RUNS];
    if (!numel || k > OVERLAP_MAX_RUNS) {
        for (size_t j = 0; j <= k; j++)
            out[j] = NAN;
        return;
    }
    for (size_t r = 0; r < k; r++)
        prob[r] = (double)changed[r] / (double)numel;
    overlap_poisson_binomial(k, prob, out);
}

/* ---- reading the reports ---- */

static void ov_input_free(OvInput *in)
{
    h5r_free_strings(in->nnames, in->names);
    h5r_free_strings(in->nmod, in->module);
    free(in->layer);
    free(in->sorted);
    h5r_close(in->h);
    memset(in, 0, sizeof *in);
}

/* Opens one report: schema, /masks, inputs, input_bytes, /tensors/{name,layer,module}. */
static int ov_input_open(const char *path, OvInput *in, OverlapRun *run, SsError *err)
{
    int rc = h5r_open(path, &in->h, err);
    if (rc)
        return rc;
    char *schema = NULL;
    if (!h5r_attr_exists(in->h, "/", "schema") ||
        (rc = h5r_attr_string(in->h, "/", "schema", &schema, err)) != 0 ||
        strcmp(schema, "sparsity-scan/1") != 0) {
        free(schema);
        return ss_err(err, SS_EINPUT, "%s: not a sparsity-scan report (no schema "
                      "\"sparsity-scan/1\")", path);
    }
    free(schema);
    if (!h5r_exists(in->h, "masks"))
        return ss_err(err, SS_EINPUT, "%s: no /masks group: rerun sparsity-scan with --masks "
                      "(sparsity-scan A B --h5 %s --masks)", path, path);
    size_t n = 0, nl = 0;
    char **inputs = NULL;
    uint64_t *bytes = NULL;
    if ((rc = h5r_attr_strings(in->h, "/", "inputs", &n, &inputs, err)) != 0)
        return rc;
    if (n != 2) {
        h5r_free_strings(n, inputs);
        return ss_err(err, SS_EINPUT, "%s: root attribute 'inputs' holds %zu strings, want 2",
                      path, n);
    }
    run->base = inputs[0];
    run->b = inputs[1];
    free(inputs);
    if ((rc = h5r_attr_u64s(in->h, "/", "input_bytes", &n, &bytes, err)) != 0)
        return rc;
    if (n != 2) {
        free(bytes);
        return ss_err(err, SS_EINPUT, "%s: root attribute 'input_bytes' holds %zu values, "
                      "want 2", path, n);
    }
    run->base_bytes = bytes[0];
    free(bytes);
    if ((rc = h5r_strings(in->h, "tensors/name", &in->nnames, &in->names, err)) != 0 ||
        (rc = h5r_i64s(in->h, "tensors/layer", &nl, &in->layer, err)) != 0 ||
        (rc = h5r_strings(in->h, "tensors/module", &in->nmod, &in->module, err)) != 0)
        return rc;
    if (nl != in->nnames || in->nmod != in->nnames)
        return ss_err(err, SS_EINPUT, "%s: /tensors/name, layer and module differ in length",
                      path);
    if (!(in->sorted = ov_calloc(in->nnames, 1, sizeof *in->sorted)))
        return ov_oom(err);
    for (size_t i = 0; i < in->nnames; i++)
        in->sorted[i] = i;
    ov_sort_names = (const char *const *)in->names;
    qsort(in->sorted, in->nnames, sizeof *in->sorted, ov_cmp_index);
    for (size_t i = 1; i < in->nnames; i++)
        if (strcmp(in->names[in->sorted[i - 1]], in->names[in->sorted[i]]) == 0)
            return ss_err(err, SS_EINPUT, "%s: tensor '%s' listed twice in /tensors/name", path,
                          in->names[in->sorted[i]]);
    return 0;
}

/* Same base: equal base sizes, and equal base paths (or the same file by realpath) unless
 * any_base. */
static int ov_check_bases(const OverlapReport *r, const OverlapOptions *opt, SsError *err)
{
    const OverlapRun *x = &r->runs[0];
    for (size_t i = 1; i < r->k; i++) {
        const OverlapRun *y = &r->runs[i];
        if (x->base_bytes != y->base_bytes)
            return ss_err(err, SS_EINCOMPAT, "%s and %s come from different bases: '%s' was "
                          "%llu bytes, '%s' %llu bytes", x->path, y->path, x->base,
                          (unsigned long long)x->base_bytes, y->base,
                          (unsigned long long)y->base_bytes);
        if (opt->any_base || strcmp(x->base, y->base) == 0)
            continue;
        char *rx = realpath(x->base, NULL), *ry = realpath(y->base, NULL);
        int same = rx && ry && strcmp(rx, ry) == 0;
        free(rx);
        free(ry);
        if (!same)
            return ss_err(err, SS_EINCOMPAT, "%s and %s come from different bases ('%s' and "
                          "'%s'); pass --any-base if they are the same checkpoint", x->path,
                          y->path, x->base, y->base);
    }
    return 0;
}

/* The tensors every report holds (in name order) and the sorted list of the others. */
static int ov_settle_tensors(OverlapReport *r, OvInput *in, SsError *err)
{
    size_t total = 0;
    for (size_t i = 0; i < r->k; i++)
        if (__builtin_add_overflow(total, in[i].nnames, &total))
            return ov_oom(err);
    char **all = ov_calloc(total, 1, sizeof *all);
    if (!all)
        return ov_oom(err);
    size_t m = 0;
    for (size_t i = 0; i < r->k; i++)
        for (size_t t = 0; t < in[i].nnames; t++)
            all[m++] = in[i].names[t];
    qsort(all, m, sizeof *all, ov_cmp_str);
    size_t u = 0;
    for (size_t t = 0; t < m; t++)
        if (u == 0 || strcmp(all[u - 1], all[t]) != 0)
            all[u++] = all[t];
    r->names = ov_calloc(u, 1, sizeof *r->names);
    r->missing = ov_calloc(u, 1, sizeof *r->missing);
    int rc = 0;
    if (!r->names || !r->missing)
        rc = ov_oom(err);
    for (size_t t = 0; t < u && !rc; t++) {
        size_t have = 0;
        for (size_t i = 0; i < r->k; i++)
            have += ov_find(&in[i], all[t]) != SIZE_MAX;
        char **slot = have == r->k ? &r->names[r->ntensors++] : &r->missing[r->nmissing++];
        if (!(*slot = strdup(all[t])))
            rc = ov_oom(err);
    }
    free(all);
    return rc;
}

/* Layer and module of each compared tensor, from the first report; module order from its
 * /layers/module. */
static int ov_classify(OverlapReport *r, OvInput *in0, SsError *err)
{
    int rc = h5r_strings(in0->h, "layers/module", &r->nmodules, &r->modules, err);
    if (rc)
        return rc;
    r->layer = ov_calloc(r->ntensors, 1, sizeof *r->layer);
    r->module = ov_calloc(r->ntensors, 1, sizeof *r->module);
    if (!r->layer || !r->module)
        return ov_oom(err);
    for (size_t t = 0; t < r->ntensors; t++) {
        size_t i = ov_find(in0, r->names[t]);
        r->layer[t] = in0->layer[i];
        size_t m = 0;
        while (m < r->nmodules && strcmp(r->modules[m], in0->module[i]) != 0)
            m++;
        if (m == r->nmodules)
            return ss_err(err, SS_EINPUT, "%s: tensor '%s': module '%s' is not in "
                          "/layers/module", h5r_path(in0->h), r->names[t], in0->module[i]);
        r->module[t] = m;
    }
    return 0;
}

static int ov_cmp_cell(const OverlapReport *r, int64_t la, size_t ma, int64_t lb, size_t mb)
{
    (void)r;
    if (la != lb)
        return la < lb ? -1 : 1;
    return ma < mb ? -1 : ma > mb;
}

/* The layer x module cells that have tensors, by layer then module order. */
static int ov_build_cells(OverlapReport *r, SsError *err)
{
    r->cell_layer = ov_calloc(r->ntensors, 1, sizeof *r->cell_layer);
    r->cell_module = ov_calloc(r->ntensors, 1, sizeof *r->cell_module);
    r->tensor_cell = ov_calloc(r->ntensors, 1, sizeof *r->tensor_cell);
    if (!r->cell_layer || !r->cell_module || !r->tensor_cell)
        return ov_oom(err);
    for (size_t t = 0; t < r->ntensors; t++) {
        /* insertion into the sorted cell list (few cells: layers x modules) */
        size_t c = 0;
        while (c < r->ncells &&
               ov_cmp_cell(r, r->cell_layer[c], r->cell_module[c], r->layer[t], r->module[t]) < 0)
            c++;
        if (c == r->ncells || r->cell_layer[c] != r->layer[t] ||
            r->cell_module[c] != r->module[t]) {
            memmove(r->cell_layer + c + 1, r->cell_layer + c,
                    (r->ncells - c) * sizeof *r->cell_layer);
            memmove(r->cell_module + c + 1, r->cell_module + c,
                    (r->ncells - c) * sizeof *r->cell_module);
            r->cell_layer[c] = r->layer[t];
            r->cell_module[c] = r->module[t];
            r->ncells++;
        }
    }
    for (size_t t = 0; t < r->ntensors; t++) {
        size_t lo = 0, hi = r->ncells;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ov_cmp_cell(r, r->cell_layer[mid], r->cell_module[mid], r->layer[t],
                            r->module[t]) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        r->tensor_cell[t] = lo;
    }
    size_t k1 = r->k + 1;
    r->cell_numel = ov_calloc(r->ncells, 1, sizeof *r->cell_numel);
    r->cell_changed = ov_calloc(r->ncells, r->k, sizeof *r->cell_changed);
    r->cell_hist = ov_calloc(r->ncells, k1, sizeof *r->cell_hist);
    r->hist = ov_calloc(r->ntensors, k1, sizeof *r->hist);
    r->total_hist = ov_calloc(k1, 1, sizeof *r->total_hist);
    if (!r->cell_numel || !r->cell_changed || !r->cell_hist || !r->hist || !r->total_hist)
        return ov_oom(err);
    return 0;
}

/* ---- one tensor ---- */

/* Checks that tensor t has the same numel, shape and dtype in every report; fills *numel. */
static int ov_check_tensor(OverlapReport *r, OvInput *in, const char *mpath, size_t t,
                           uint64_t *numel, SsError *err)
{
    uint64_t n0 = 0, *shape0 = NULL;
    size_t nd0 = 0;
    char *dt0 = NULL;
    int rc = 0;
    for (size_t i = 0; i < r->k && !rc; i++) {
        H5In *h = in[i].h;
        if (!h5r_exists(h, mpath)) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': no /%s: rerun sparsity-scan with "
                        "--masks", r->runs[i].path, r->names[t], mpath);
            break;
        }
        uint64_t n, *shape = NULL;
        size_t nd;
        char *dt = NULL;
        if ((rc = h5r_attr_u64(h, mpath, "numel", &n, err)) != 0 ||
            (rc = h5r_attr_u64s(h, mpath, "shape", &nd, &shape, err)) != 0 ||
            (rc = h5r_attr_string(h, mpath, "dtype", &dt, err)) != 0) {
            free(shape);
            free(dt);
            break;
        }
        if (i == 0) {
            n0 = n;
            shape0 = shape;
            nd0 = nd;
            dt0 = dt;
            continue;
        }
        if (n != n0 || nd != nd0 || (nd && memcmp(shape, shape0, nd * sizeof *shape) != 0))
            rc = ss_err(err, SS_EINCOMPAT, "%s and %s: tensor '%s': shape or numel differ "
                        "(%llu and %llu elements)", r->runs[0].path, r->runs[i].path,
                        r->names[t], (unsigned long long)n0, (unsigned long long)n);
        else if (strcmp(dt, dt0) != 0)
            rc = ss_err(err, SS_EINCOMPAT, "%s and %s: tensor '%s': dtype %s and %s",
                        r->runs[0].path, r->runs[i].path, r->names[t], dt0, dt);
        free(shape);
        free(dt);
    }
    free(shape0);
    free(dt0);
    *numel = n0;
    return rc;
}

/* Adds the 64-bit word w of each run (words[i]) into the per-element counters and the
 * histogram bins 1..k. */
static void ov_count_word(size_t k, const uint64_t *words, uint64_t *hist)
{
    uint64_t plane[OV_PLANES] = {0};
    uint64_t any = 0;
    for (size_t i = 0; i < k; i++) {
        uint64_t carry = words[i];
        any |= carry;
        for (int b = 0; b < OV_PLANES && carry; b++) {
            uint64_t t = plane[b] & carry;
            plane[b] ^= carry;
            carry = t;
        }
    }
    if (!any)
        return;
    for (size_t j = 1; j <= k; j++) {
        uint64_t m = any;
        for (int b = 0; b < OV_PLANES; b++)
            m &= ((j >> b) & 1) ? plane[b] : ~plane[b];
        hist[j] += (uint64_t)__builtin_popcountll(m);
    }
}

/* Reads tensor t's mask from every report and counts it. buf holds k buffers of cap_words
 * 64-bit words each (grown here). */
static int ov_count_tensor(OverlapReport *r, OvInput *in, size_t t, uint64_t **buf,
                           size_t *cap_words, SsError *err)
{
    char *mpath = ov_mask_path(r->names[t]);
    if (!mpath)
        return ov_oom(err);
    uint64_t numel = 0;
    int rc = ov_check_tensor(r, in, mpath, t, &numel, err);
    if (rc)
        goto done;
    if (numel > SIZE_MAX - 63) {
        rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': numel %llu too large", r->runs[0].path,
                    r->names[t], (unsigned long long)numel);
        goto done;
    }
    size_t nbytes = (size_t)((numel + 7) / 8), nwords = (size_t)((numel + 63) / 64);
    if (nwords > *cap_words) {
        uint64_t *nb = ov_calloc(nwords, r->k, sizeof(uint64_t));
        if (!nb) {
            rc = ov_oom(err);
            goto done;
        }
        free(*buf);
        *buf = nb;
        *cap_words = nwords;
    }
    r->numel[t] = numel;
    uint64_t *changed = &r->changed[t * r->k];
    for (size_t i = 0; i < r->k; i++) {
        uint64_t *w = *buf + i * *cap_words;
        if (nwords)
            w[nwords - 1] = 0; /* the bytes after nbytes stay 0 */
        if ((rc = h5r_u8_into(in[i].h, mpath, nbytes, (uint8_t *)w, err)) != 0)
            goto done;
        if (numel % 8) {
            uint8_t last = ((uint8_t *)w)[nbytes - 1];
            if (last >> (numel % 8)) {
                rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': mask bits set past numel",
                            r->runs[i].path, r->names[t]);
                goto done;
            }
        }
        uint64_t pc = 0, attr;
        for (size_t x = 0; x < nwords; x++)
            pc += (uint64_t)__builtin_popcountll(w[x]);
        if ((rc = h5r_attr_u64(in[i].h, mpath, "changed", &attr, err)) != 0)
            goto done;
        if (pc != attr) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': mask has %llu bits set, attribute "
                        "changed says %llu", r->runs[i].path, r->names[t],
                        (unsigned long long)pc, (unsigned long long)attr);
            goto done;
        }
        changed[i] = pc;
    }
    for (size_t p = 0; p < r->npairs; p++) {
        const uint64_t *a = *buf + r->pair_i[p] * *cap_words;
        const uint64_t *b = *buf + r->pair_j[p] * *cap_words;
        uint64_t pc = 0;
        for (size_t x = 0; x < nwords; x++)
            pc += (uint64_t)__builtin_popcountll(a[x] & b[x]);
        r->inter[p * r->ntensors + t] = pc;
    }
    if (r->k >= 3) {
        uint64_t *h = &r->hist[t * (r->k + 1)];
        uint64_t words[OVERLAP_MAX_RUNS], nonzero = 0;
        for (size_t x = 0; x < nwords; x++) {
            for (size_t i = 0; i < r->k; i++)
                words[i] = (*buf)[i * *cap_words + x];
            ov_count_word(r->k, words, h);
        }
        for (size_t j = 1; j <= r->k; j++)
            nonzero += h[j];
        h[0] = numel - nonzero;
    }
done:
    free(mpath);
    return rc;
}

/* Sums tensor t into its module, its cell and the totals. */
static int ov_accumulate(OverlapReport *r, size_t t, SsError *err)
{
    const char *path = r->runs[0].path;
    size_t k = r->k, m = r->module[t];
    int rc = ov_add(&r->module_numel[m], r->numel[t], path, err);
    if (!rc)
        rc = ov_add(&r->total_numel, r->numel[t], path, err);
    for (size_t i = 0; i < k && !rc; i++) {
        rc = ov_add(&r->module_changed[m * k + i], r->changed[t * k + i], path, err);
        if (!rc)
            rc = ov_add(&r->runs[i].changed, r->changed[t * k + i], path, err);
    }
    for (size_t p = 0; p < r->npairs && !rc; p++) {
        uint64_t v = r->inter[p * r->ntensors + t];
        rc = ov_add(&r->module_inter[p * r->nmodules + m], v, path, err);
        if (!rc)
            rc = ov_add(&r->total_inter[p], v, path, err);
    }
    if (rc || k < 3)
        return rc;
    size_t c = r->tensor_cell[t];
    rc = ov_add(&r->cell_numel[c], r->numel[t], path, err);
    for (size_t i = 0; i < k && !rc; i++)
        rc = ov_add(&r->cell_changed[c * k + i], r->changed[t * k + i], path, err);
    for (size_t j = 0; j <= k && !rc; j++) {
        rc = ov_add(&r->cell_hist[c * (k + 1) + j], r->hist[t * (k + 1) + j], path, err);
        if (!rc)
            rc = ov_add(&r->total_hist[j], r->hist[t * (k + 1) + j], path, err);
    }
    return rc;
}

/* ---- public ---- */

int overlap_compute(size_t k, const char *const *paths, const OverlapOptions *opt,
                    OverlapReport *out, SsError *err)
{
    OverlapReport *r = out;
    memset(r, 0, sizeof *r);
    if (k < 2 || k > OVERLAP_MAX_RUNS)
        return ss_err(err, SS_EUSAGE, "needs from 2 to %d reports, got %zu", OVERLAP_MAX_RUNS,
                      k);
    OvInput in[OVERLAP_MAX_RUNS];
    memset(in, 0, sizeof in);
    uint64_t *buf = NULL;
    size_t cap_words = 0;
    r->k = k;
    r->runs = ov_calloc(k, 1, sizeof *r->runs);
    if (!r->runs)
        return ov_oom(err);
    int rc = 0;
    for (size_t i = 0; i < k && !rc; i++) {
        if (!(r->runs[i].path = strdup(paths[i])))
            rc = ov_oom(err);
        else
            rc = ov_input_open(paths[i], &in[i], &r->runs[i], err);
    }
    if (!rc)
        rc = ov_check_bases(r, opt, err);
    if (!rc)
        rc = ov_settle_tensors(r, in, err);
    if (!rc)
        rc = ov_classify(r, &in[0], err);
    if (!rc) {
        r->npairs = k * (k - 1) / 2;
        r->pair_i = ov_calloc(r->npairs, 1, sizeof *r->pair_i);
        r->pair_j = ov_calloc(r->npairs, 1, sizeof *r->pair_j);
        r->numel = ov_calloc(r->ntensors, 1, sizeof *r->numel);
        r->changed = ov_calloc(r->ntensors, k, sizeof *r->changed);
        r->inter = ov_calloc(r->npairs, r->ntensors, sizeof *r->inter);
        r->module_numel = ov_calloc(r->nmodules, 1, sizeof *r->module_numel);
        r->module_changed = ov_calloc(r->nmodules, k, sizeof *r->module_changed);
        r->module_inter = ov_calloc(r->npairs, r->nmodules, sizeof *r->module_inter);
        r->total_inter = ov_calloc(r->npairs, 1, sizeof *r->total_inter);
        if (!r->pair_i || !r->pair_j || !r->numel || !r->changed || !r->inter ||
            !r->module_numel || !r->module_changed || !r->module_inter || !r->total_inter)
            rc = ov_oom(err);
        for (size_t i = 0, p = 0; !rc && i < k; i++)
            for (size_t j = i + 1; j < k; j++, p++) {
                r->pair_i[p] = i;
                r->pair_j[p] = j;
            }
    }
    if (!rc && k >= 3)
        rc = ov_build_cells(r, err);
    if (!rc && !(buf = ov_calloc(k, 1, sizeof *buf)))
        rc = ov_oom(err);
    cap_words = 1;
    for (size_t t = 0; t < r->ntensors && !rc; t++) {
        rc = ov_count_tensor(r, in, t, &buf, &cap_words, err);
        if (!rc)
            rc = ov_accumulate(r, t, err);
    }
    free(buf);
    for (size_t i = k; i-- > 0;)
        ov_input_free(&in[i]);
    return rc;
}

void overlap_report_free(OverlapReport *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->runs && i < r->k; i++) {
        free(r->runs[i].path);
        free(r->runs[i].base);
        free(r->runs[i].b);
    }
    free(r->runs);
    h5r_free_strings(r->nmissing, r->missing);
    h5r_free_strings(r->ntensors, r->names);
    h5r_free_strings(r->nmodules, r->modules);
    void *arrays[] = {r->layer, r->module, r->numel, r->changed, r->module_numel,
                      r->module_changed, r->pair_i, r->pair_j, r->inter, r->module_inter,
                      r->total_inter, r->hist, r->cell_layer, r->cell_module, r->tensor_cell,
                      r->cell_numel, r->cell_changed, r->cell_hist, r->total_hist};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        free(arrays[i]);
    memset(r, 0, sizeof *r);
}
