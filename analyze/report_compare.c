/* The outputs of sparsity-compare (see compare.h): the readable table, the JSON document
 * "sparsity-compare/1" (docs/cli.md) and the HDF5 file with its /compare group
 * (docs/hdf5-schema.md). All three print the same CompareReport fields. */
#include "analyze/compare.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "analyze/json_writer.h"
#include "formats/h5_write.h"
#include "kernels/svd.h"

static const char *cmp_svd_method(const CompareReport *r)
{
    return r->opt.exact_svd ? "exact" : "randomized";
}

static const char *cmp_scale_rule(const LoraAdapter *ad)
{
    return ad->use_rslora ? "alpha/sqrt(r)" : "alpha/r";
}

/* ---- table ---- */

static void table_real(FILE *f, const char *fmt, int width, double v)
{
    if (isnan(v))
        fprintf(f, " %*s", width, "-");
    else
        fprintf(f, fmt, v);
}

void compare_write_table(FILE *f, const CompareReport *r)
{
    fprintf(f, "sparsity-compare: dW_X = X - BASE against dW_Y = Y - BASE\n");
    fprintf(f, "  BASE  %s\n", r->base);
    if (r->lora)
        fprintf(f, "  X     %s (LoRA adapter: r %llu, alpha %g, scale %g = %s; %zu pairs)\n",
                r->x, (unsigned long long)r->lora->r, r->lora->alpha, r->lora->scale,
                cmp_scale_rule(r->lora), r->lora->npairs);
    else
        fprintf(f, "  X     %s\n", r->x);
    fprintf(f, "  Y     %s\n", r->y);
    fprintf(f, "  subspaces: top %zu, %s SVD", r->opt.k, cmp_svd_method(r));
    if (!r->opt.exact_svd)
        fprintf(f, " (oversample %d, power iterations %d)", SVD_DEFAULT_OVERSAMPLE,
                SVD_DEFAULT_POWER_ITERS);
    fprintf(f, "; %.2f s\n\n", r->seconds);

    fprintf(f, "%-48s %6s %6s %11s %11s %8s %4s %7s %7s %7s %7s %7s\n", "tensor", "m", "n",
            "|dW_X|", "|dW_Y|", "cosine", "k", "left", "random", "right", "random", "cos1");
    for (size_t i = 0; i < r->ntensors; i++) {
        const CompareTensor *t = &r->t[i];
        fprintf(f, "%-48s %6llu %6llu %11.4e %11.4e", t->name, (unsigned long long)t->m,
                (unsigned long long)t->n, t->norm_x, t->norm_y);
        table_real(f, " %8.4f", 8, t->cosine);
        fprintf(f, " %4zu", t->k);
        table_real(f, " %7.4f", 7, t->left_overlap);
        table_real(f, " %7.4f", 7, t->left_random);
        table_real(f, " %7.4f", 7, t->right_overlap);
        table_real(f, " %7.4f", 7, t->right_random);
        table_real(f, " %7.4f", 7, t->k ? t->left_cos[0] : NAN);
        fputc('\n', f);
    }
    const CompareSummary *s = &r->model;
    if (s->nmatrices == 0) {
        fprintf(f, "model: no 2-D tensors to compare (%llu skipped)\n",
                (unsigned long long)s->nskipped);
    } else {
        fprintf(f, "model: %llu matrices (%llu tensors skipped), %llu parameters\n",
                (unsigned long long)s->nmatrices, (unsigned long long)s->nskipped,
                (unsigned long long)s->numel);
        fprintf(f, "  cosine (parameter-weighted) ");
        table_real(f, "%.6f", 0, s->cosine);
        fprintf(f, ", |dW_X| %.6e, |dW_Y| %.6e; dW_X = 0 in %llu, dW_Y = 0 in %llu\n", s->norm_x,
                s->norm_y, (unsigned long long)s->nzero_x, (unsigned long long)s->nzero_y);
        fprintf(f, "  mean subspace overlap over %llu matrices: left ",
                (unsigned long long)s->noverlap);
        table_real(f, "%.4f", 0, s->mean_left_overlap);
        fprintf(f, " (random ");
        table_real(f, "%.4f", 0, s->mean_left_random);
        fprintf(f, "), right ");
        table_real(f, "%.4f", 0, s->mean_right_overlap);
        fprintf(f, " (random ");
        table_real(f, "%.4f", 0, s->mean_right_random);
        fprintf(f, ")\n");
    }
    int head = 0;
    for (size_t i = 0; i < r->ntensors; i++) {
        const CompareTensor *t = &r->t[i];
        if (!t->cosine_note && !t->k_note)
            continue;
        if (!head++)
            fprintf(f, "notes:\n");
        if (t->cosine_note)
            fprintf(f, "  %s: %s (cosine and overlaps undefined)\n", t->name, t->cosine_note);
        else
            fprintf(f, "  %s: %s (k = %zu)\n", t->name, t->k_note, t->k);
    }
    if (r->nskipped)
        fprintf(f, "skipped:\n");
    for (size_t i = 0; i < r->nskipped; i++)
        fprintf(f, "  %s: %s\n", r->skipped[i].name, r->skipped[i].note);
    if (r->nabsent)
        fprintf(f, "not in every input:\n");
    for (size_t i = 0; i < r->nabsent; i++)
        fprintf(f, "  %s: %s\n", r->absent[i].name, r->absent[i].note);
    if (r->lora) {
        if (r->nno_lora)
            fprintf(f, "no LoRA pair (dW_X = 0):\n");
        for (size_t i = 0; i < r->nno_lora; i++)
            fprintf(f, "  %s\n", r->no_lora[i]);
        if (r->nunused_lora)
            fprintf(f, "LoRA pairs not compared (their matrix is skipped or not in Y):\n");
        for (size_t i = 0; i < r->nunused_lora; i++)
            fprintf(f, "  %s\n", r->unused_lora[i]);
        if (r->lora->nignored)
            fprintf(f, "adapter tensors ignored (not lora_A/lora_B):\n");
        for (size_t i = 0; i < r->lora->nignored; i++)
            fprintf(f, "  %s\n", r->lora->ignored[i]);
    }
}

/* ---- JSON ---- */

static void jw_doubles(JsonWriter *w, const double *v, size_t n)
{
    jw_array_begin(w);
    for (size_t i = 0; i < n; i++)
        jw_double(w, v[i]);
    jw_array_end(w);
}

static void jw_strings(JsonWriter *w, const char *const *v, size_t n)
{
    jw_array_begin(w);
    for (size_t i = 0; i < n; i++)
        jw_string(w, v[i]);
    jw_array_end(w);
}

static void jw_rank(JsonWriter *w, int64_t v)
{
    if (v < 0)
        jw_null(w);
    else
        jw_uint(w, (uint64_t)v);
}

static void jw_skips(JsonWriter *w, const CompareSkip *v, size_t n)
{
    jw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        jw_object_begin(w);
        jw_key(w, "name");
        jw_string(w, v[i].name);
        jw_key(w, "note");
        jw_string(w, v[i].note);
        jw_object_end(w);
    }
    jw_array_end(w);
}

static void json_tensor(JsonWriter *w, const CompareReport *r, const CompareTensor *t)
{
    jw_object_begin(w);
    jw_key(w, "name");
    jw_string(w, t->name);
    jw_key(w, "dtype");
    jw_string(w, t->dtype);
    jw_key(w, "m");
    jw_uint(w, t->m);
    jw_key(w, "n");
    jw_uint(w, t->n);
    if (r->lora) {
        jw_key(w, "x_source");
        jw_string(w, t->x_lora ? "lora" : "zero");
    }
    jw_key(w, "dot");
    jw_double(w, t->dot);
    jw_key(w, "norm_x");
    jw_double(w, t->norm_x);
    jw_key(w, "norm_y");
    jw_double(w, t->norm_y);
    jw_key(w, "cosine");
    jw_double(w, t->cosine);
    if (t->cosine_note) {
        jw_key(w, "cosine_note");
        jw_string(w, t->cosine_note);
    }
    jw_key(w, "k");
    jw_uint(w, t->k);
    if (t->k_note) {
        jw_key(w, "k_note");
        jw_string(w, t->k_note);
    }
    jw_key(w, "rank_x");
    jw_rank(w, t->rank_x);
    jw_key(w, "rank_y");
    jw_rank(w, t->rank_y);
    jw_key(w, "sigma1_x");
    jw_double(w, t->sigma1_x);
    jw_key(w, "sigma1_y");
    jw_double(w, t->sigma1_y);
    jw_key(w, "left_overlap");
    jw_double(w, t->left_overlap);
    jw_key(w, "left_random");
    jw_double(w, t->left_random);
    jw_key(w, "right_overlap");
    jw_double(w, t->right_overlap);
    jw_key(w, "right_random");
    jw_double(w, t->right_random);
    jw_key(w, "left_cosines");
    jw_doubles(w, t->left_cos, t->k);
    jw_key(w, "right_cosines");
    jw_doubles(w, t->right_cos, t->k);
    jw_object_end(w);
}

void compare_write_json(FILE *f, const CompareReport *r)
{
    JsonWriter w;
    jw_init(&w, f, 1);
    jw_object_begin(&w);
    jw_key(&w, "schema");
    jw_string(&w, COMPARE_SCHEMA);
    jw_key(&w, "base");
    jw_string(&w, r->base);
    jw_key(&w, "x");
    jw_string(&w, r->x);
    jw_key(&w, "y");
    jw_string(&w, r->y);
    jw_key(&w, "x_kind");
    jw_string(&w, r->lora ? "lora" : "checkpoint");
    if (r->lora) {
        const LoraAdapter *ad = r->lora;
        jw_key(&w, "lora");
        jw_object_begin(&w);
        jw_key(&w, "r");
        jw_uint(&w, ad->r);
        jw_key(&w, "lora_alpha");
        jw_double(&w, ad->alpha);
        jw_key(&w, "scale_rule");
        jw_string(&w, cmp_scale_rule(ad));
        jw_key(&w, "scale");
        jw_double(&w, ad->scale);
        jw_key(&w, "npairs");
        jw_uint(&w, ad->npairs);
        jw_key(&w, "no_lora");
        jw_strings(&w, r->no_lora, r->nno_lora);
        jw_key(&w, "unused");
        jw_strings(&w, r->unused_lora, r->nunused_lora);
        jw_key(&w, "ignored");
        jw_strings(&w, ad->ignored, ad->nignored);
        jw_object_end(&w);
    }
    jw_key(&w, "subspace_k");
    jw_uint(&w, r->opt.k);
    jw_key(&w, "svd");
    jw_string(&w, cmp_svd_method(r));
    if (!r->opt.exact_svd) {
        jw_key(&w, "oversample");
        jw_uint(&w, SVD_DEFAULT_OVERSAMPLE);
        jw_key(&w, "power_iters");
        jw_uint(&w, SVD_DEFAULT_POWER_ITERS);
    }
    jw_key(&w, "eps");
    jw_double(&w, COMPARE_EPS_F32);
    jw_key(&w, "seconds");
    jw_double(&w, r->seconds);
    jw_key(&w, "tensors");
    jw_array_begin(&w);
    for (size_t i = 0; i < r->ntensors; i++)
        json_tensor(&w, r, &r->t[i]);
    jw_array_end(&w);
    jw_key(&w, "skipped");
    jw_skips(&w, r->skipped, r->nskipped);
    jw_key(&w, "absent");
    jw_skips(&w, r->absent, r->nabsent);
    const CompareSummary *s = &r->model;
    jw_key(&w, "model");
    jw_object_begin(&w);
    const char *ukeys[] = {"nmatrices", "nskipped", "numel", "nzero_x", "nzero_y", "noverlap"};
    uint64_t uv[] = {s->nmatrices, s->nskipped, s->numel, s->nzero_x, s->nzero_y, s->noverlap};
    for (size_t i = 0; i < 6; i++) {
        jw_key(&w, ukeys[i]);
        jw_uint(&w, uv[i]);
    }
    const char *dkeys[] = {"dot", "norm_x", "norm_y", "cosine", "mean_left_overlap",
                           "mean_left_random", "mean_right_overlap", "mean_right_random"};
    double dv[] = {s->dot, s->norm_x, s->norm_y, s->cosine, s->mean_left_overlap,
                   s->mean_left_random, s->mean_right_overlap, s->mean_right_random};
    for (size_t i = 0; i < 8; i++) {
        jw_key(&w, dkeys[i]);
        jw_double(&w, dv[i]);
    }
    jw_object_end(&w);
    jw_object_end(&w);
    fputc('\n', f);
}

/* ---- HDF5 ---- */

typedef struct CmpH5 {
    H5Out *w;
    const CompareReport *r;
    SsError *err;
} CmpH5;

/* A per-tensor f64 column (n) from offset off of CompareTensor. */
static int h5_f64_col(CmpH5 *x, hid_t g, const char *name, size_t off)
{
    size_t n = x->r->ntensors;
    double *v = malloc((n + 1) * sizeof *v);
    if (!v)
        return ss_err(x->err, SS_EOUTPUT, "out of memory for /compare/%s", name);
    for (size_t i = 0; i < n; i++)
        memcpy(&v[i], (const char *)&x->r->t[i] + off, sizeof(double));
    hsize_t dims[1] = {n};
    int rc = h5w_dataset(x->w, g, name, H5W_F64, 1, dims, v, x->err);
    free(v);
    return rc;
}

/* u64 (kind 0: m, 1: n, 2: k), i64 (3: rank_x, 4: rank_y) or u8 (5: x_lora) columns. */
static int h5_int_col(CmpH5 *x, hid_t g, const char *name, int kind)
{
    size_t n = x->r->ntensors;
    uint64_t *v = malloc((n + 1) * sizeof *v);
    uint8_t *b = malloc(n + 1);
    if (!v || !b) {
        free(v);
        free(b);
        return ss_err(x->err, SS_EOUTPUT, "out of memory for /compare/%s", name);
    }
    for (size_t i = 0; i < n; i++) {
        const CompareTensor *t = &x->r->t[i];
        int64_t iv = kind == 3 ? t->rank_x : t->rank_y;
        v[i] = kind == 0 ? t->m : kind == 1 ? t->n : kind == 2 ? (uint64_t)t->k : (uint64_t)iv;
        b[i] = (uint8_t)t->x_lora;
    }
    hsize_t dims[1] = {n};
    H5wType type = kind <= 2 ? H5W_U64 : kind <= 4 ? H5W_I64 : H5W_U8;
    int rc = h5w_dataset(x->w, g, name, type, 1, dims, kind == 5 ? (const void *)b : v, x->err);
    free(v);
    free(b);
    return rc;
}

/* The (n, K) principal cosines, NaN past each tensor's k. */
static int h5_cosines(CmpH5 *x, hid_t g, const char *name, int right)
{
    size_t n = x->r->ntensors, K = x->r->opt.k;
    double *v = malloc((n * K + 1) * sizeof *v);
    if (!v)
        return ss_err(x->err, SS_EOUTPUT, "out of memory for /compare/%s", name);
    for (size_t i = 0; i < n; i++)
        memcpy(v + i * K, right ? x->r->t[i].right_cos : x->r->t[i].left_cos, K * sizeof *v);
    hsize_t dims[2] = {n, K};
    int rc = h5w_dataset(x->w, g, name, H5W_F64, 2, dims, v, x->err);
    free(v);
    return rc;
}

/* A per-tensor string column: which 0 name, 1 dtype, 2 cosine_note, 3 k_note ("" for none). */
static int h5_str_col(CmpH5 *x, hid_t g, const char *name, int which)
{
    size_t n = x->r->ntensors;
    const char **v = malloc((n + 1) * sizeof *v);
    if (!v)
        return ss_err(x->err, SS_EOUTPUT, "out of memory for /compare/%s", name);
    for (size_t i = 0; i < n; i++) {
        const CompareTensor *t = &x->r->t[i];
        const char *s = which == 0 ? t->name : which == 1 ? t->dtype
                        : which == 2 ? t->cosine_note : t->k_note;
        v[i] = s ? s : "";
    }
    int rc = h5w_dataset_strings(x->w, g, name, n, v, x->err);
    free(v);
    return rc;
}

static int h5_skips(CmpH5 *x, hid_t g, const char *name, const char *note_name,
                    const CompareSkip *s, size_t n)
{
    const char **v = malloc((2 * n + 1) * sizeof *v);
    if (!v)
        return ss_err(x->err, SS_EOUTPUT, "out of memory for /compare/%s", name);
    for (size_t i = 0; i < n; i++) {
        v[i] = s[i].name;
        v[n + i] = s[i].note;
    }
    int rc = h5w_dataset_strings(x->w, g, name, n, v, x->err);
    if (!rc)
        rc = h5w_dataset_strings(x->w, g, note_name, n, v + n, x->err);
    free(v);
    return rc;
}

static int h5_root_attrs(CmpH5 *x, const char *command_line)
{
    const CompareReport *r = x->r;
    hid_t root = h5w_root(x->w);
    const char *inputs[3] = {r->base, r->x, r->y};
    int rc = h5w_attr_string(x->w, root, "schema", COMPARE_SCHEMA, x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, root, "tool", "sparsity-compare", x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, root, "tool_version", SS_VERSION, x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, root, "command_line", command_line ? command_line : "",
                             x->err);
    if (!rc)
        rc = h5w_attr_strings(x->w, root, "inputs", 3, inputs, x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, root, "x_kind", r->lora ? "lora" : "checkpoint", x->err);
    return rc;
}

static int h5_compare_attrs(CmpH5 *x, hid_t g)
{
    const CompareReport *r = x->r;
    const CompareSummary *s = &r->model;
    int rc = h5w_attr_u64(x->w, g, "subspace_k", r->opt.k, x->err);
    if (!rc)
        rc = h5w_attr_string(x->w, g, "svd", cmp_svd_method(r), x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "oversample", r->opt.exact_svd ? 0 : SVD_DEFAULT_OVERSAMPLE,
                          x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "power_iters", r->opt.exact_svd ? 0 : SVD_DEFAULT_POWER_ITERS,
                          x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, g, "eps", COMPARE_EPS_F32, x->err);
    const char *ukeys[] = {"nmatrices", "nskipped", "numel", "nzero_x", "nzero_y", "noverlap"};
    uint64_t uv[] = {s->nmatrices, s->nskipped, s->numel, s->nzero_x, s->nzero_y, s->noverlap};
    for (size_t i = 0; !rc && i < 6; i++)
        rc = h5w_attr_u64(x->w, g, ukeys[i], uv[i], x->err);
    const char *dkeys[] = {"dot", "norm_x", "norm_y", "cosine", "mean_left_overlap",
                           "mean_left_random", "mean_right_overlap", "mean_right_random"};
    double dv[] = {s->dot, s->norm_x, s->norm_y, s->cosine, s->mean_left_overlap,
                   s->mean_left_random, s->mean_right_overlap, s->mean_right_random};
    for (size_t i = 0; !rc && i < 8; i++)
        rc = h5w_attr_f64(x->w, g, dkeys[i], dv[i], x->err);
    if (!rc && r->lora) {
        const LoraAdapter *ad = r->lora;
        rc = h5w_attr_u64(x->w, g, "lora_r", ad->r, x->err);
        if (!rc)
            rc = h5w_attr_f64(x->w, g, "lora_alpha", ad->alpha, x->err);
        if (!rc)
            rc = h5w_attr_string(x->w, g, "lora_scale_rule", cmp_scale_rule(ad), x->err);
        if (!rc)
            rc = h5w_attr_f64(x->w, g, "lora_scale", ad->scale, x->err);
        if (!rc)
            rc = h5w_attr_u64(x->w, g, "lora_npairs", ad->npairs, x->err);
    }
    return rc;
}

static int h5_compare_group(CmpH5 *x, hid_t g)
{
    const CompareReport *r = x->r;
    int rc = h5_compare_attrs(x, g);
    if (!rc)
        rc = h5_str_col(x, g, "name", 0);
    if (!rc)
        rc = h5_str_col(x, g, "dtype", 1);
    if (!rc)
        rc = h5_int_col(x, g, "m", 0);
    if (!rc)
        rc = h5_int_col(x, g, "n", 1);
    static const struct { const char *name; size_t off; } cols[] = {
        {"dot", offsetof(CompareTensor, dot)},
        {"norm_x", offsetof(CompareTensor, norm_x)},
        {"norm_y", offsetof(CompareTensor, norm_y)},
        {"cosine", offsetof(CompareTensor, cosine)},
        {"sigma1_x", offsetof(CompareTensor, sigma1_x)},
        {"sigma1_y", offsetof(CompareTensor, sigma1_y)},
        {"left_overlap", offsetof(CompareTensor, left_overlap)},
        {"left_random", offsetof(CompareTensor, left_random)},
        {"right_overlap", offsetof(CompareTensor, right_overlap)},
        {"right_random", offsetof(CompareTensor, right_random)},
    };
    for (size_t i = 0; !rc && i < sizeof cols / sizeof cols[0]; i++)
        rc = h5_f64_col(x, g, cols[i].name, cols[i].off);
    if (!rc)
        rc = h5_str_col(x, g, "cosine_note", 2);
    if (!rc)
        rc = h5_int_col(x, g, "k", 2);
    if (!rc)
        rc = h5_str_col(x, g, "k_note", 3);
    if (!rc)
        rc = h5_int_col(x, g, "rank_x", 3);
    if (!rc)
        rc = h5_int_col(x, g, "rank_y", 4);
    if (!rc)
        rc = h5_cosines(x, g, "left_cosines", 0);
    if (!rc)
        rc = h5_cosines(x, g, "right_cosines", 1);
    if (!rc)
        rc = h5_skips(x, g, "skipped", "skipped_note", r->skipped, r->nskipped);
    if (!rc)
        rc = h5_skips(x, g, "absent", "absent_note", r->absent, r->nabsent);
    if (!rc && r->lora) {
        rc = h5_int_col(x, g, "x_lora", 5);
        if (!rc)
            rc = h5w_dataset_strings(x->w, g, "no_lora", r->nno_lora, r->no_lora, x->err);
        if (!rc)
            rc = h5w_dataset_strings(x->w, g, "unused_lora", r->nunused_lora,
                                     (const char *const *)r->unused_lora, x->err);
        if (!rc)
            rc = h5w_dataset_strings(x->w, g, "lora_ignored", r->lora->nignored,
                                     r->lora->ignored, x->err);
    }
    return rc;
}

int compare_write_h5(const char *path, const CompareReport *r, const char *command_line,
                     SsError *err)
{
    CmpH5 x = {NULL, r, err};
    int rc = h5w_open(path, &x.w, err);
    if (rc)
        return rc;
    rc = h5_root_attrs(&x, command_line);
    hid_t g = H5I_INVALID_HID;
    if (!rc)
        rc = h5w_group(x.w, h5w_root(x.w), "compare", &g, err);
    if (!rc) {
        rc = h5_compare_group(&x, g);
        int rc2 = h5w_close_group(x.w, g, err);
        rc = rc ? rc : rc2;
    }
    if (!rc)
        return h5w_close(x.w, err);
    h5w_abort(x.w);
    return rc;
}
