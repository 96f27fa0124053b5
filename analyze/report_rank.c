/* The reports of sparsity-scan --rank: a table section, the JSON key "rank", and the HDF5 group
 * /rank (columnar per-tensor datasets plus singular_values/<tensor>). Schema: docs/cli.md and
 * docs/hdf5-schema.md; definitions: docs/metrics.md, "Rank of the update". */
#include "analyze/rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "analyze/json_writer.h"
#include "formats/h5_write.h"
#include "kernels/svd.h"

/* ---- table ---- */

static const char *rank_method(const RankReport *rr)
{
    return rr->opt.topk ? "randomized" : "full";
}

void report_rank_write_table(FILE *f, const RankReport *rr)
{
    fprintf(f, "\nrank of the update dW = B - A (%s spectra", rank_method(rr));
    if (rr->opt.topk)
        fprintf(f, ", top %zu", rr->opt.topk);
    fprintf(f, "; principal angles of the top %zu; %.2f s)\n", rr->opt.angles_k, rr->seconds);
    fprintf(f, "%-48s %6s %6s %8s %7s %6s %9s %8s %7s %7s %12s %9s %8s %8s\n", "tensor", "m", "n",
            "num.rank", "frac", "eff99", "entropy", "stable", "E@r1", "E@r16", "nnz", "lora_r*",
            "angle1", "shift");
    for (size_t i = 0; i < rr->ntensors; i++) {
        const RankTensor *t = &rr->t[i];
        if (t->note)
            continue;
        char nr[32] = "-", e99[32] = "-";
        if (t->numerical_rank >= 0)
            snprintf(nr, sizeof nr, "%lld", (long long)t->numerical_rank);
        if (t->effective_rank_99 >= 0)
            snprintf(e99, sizeof e99, "%lld", (long long)t->effective_rank_99);
        fprintf(f, "%-48s %6llu %6llu %8s %7.4f %6s %9.2f %8.2f %7.4f %7.4f %12llu %9.2f %8.4f "
                "%8.4f\n", t->name, (unsigned long long)t->m, (unsigned long long)t->n, nr,
                t->numerical_rank_fraction, e99, t->entropy_rank, t->stable_rank,
                t->energy_at_r[0], t->energy_at_r[4], (unsigned long long)t->nnz,
                t->lora_r_star, rr->opt.angles_k ? t->principal_angles[0] : NAN,
                t->spectral_shift);
    }
    const RankSummary *s = &rr->model;
    if (s->nmatrices == 0)
        fprintf(f, "model: no 2-D tensor pairs to analyse (%llu tensors skipped)\n",
                (unsigned long long)s->nskipped);
    else
        fprintf(f, "model: %llu matrices (%llu tensors skipped), nnz %llu, sum(m+n) %llu, "
                "lora r* %.3f, mean numerical rank fraction %.4f, mean eff99 %.2f\n",
                (unsigned long long)s->nmatrices, (unsigned long long)s->nskipped,
                (unsigned long long)s->nnz, (unsigned long long)s->sum_m_plus_n, s->lora_r_star,
                s->mean_numerical_rank_fraction, s->mean_effective_rank_99);
    for (size_t i = 0; i < rr->ntensors; i++)
        if (rr->t[i].note)
            fprintf(f, "  %s: %s\n", rr->t[i].name, rr->t[i].note);
}

/* ---- JSON ---- */

static void jw_rank_int(JsonWriter *w, int64_t v)
{
    if (v < 0)
        jw_null(w);
    else
        jw_uint(w, (uint64_t)v);
}

static void jw_doubles(JsonWriter *w, const double *v, size_t n)
{
    jw_array_begin(w);
    for (size_t i = 0; i < n; i++)
        jw_double(w, v[i]);
    jw_array_end(w);
}

static void write_rank_tensor(JsonWriter *w, const RankReport *rr, const RankTensor *t)
{
    jw_object_begin(w);
    jw_key(w, "name");
    jw_string(w, t->name);
    if (t->note) {
        jw_key(w, "note");
        jw_string(w, t->note);
        jw_object_end(w);
        return;
    }
    jw_key(w, "m");
    jw_uint(w, t->m);
    jw_key(w, "n");
    jw_uint(w, t->n);
    jw_key(w, "numerical_rank");
    jw_rank_int(w, t->numerical_rank);
    jw_key(w, "numerical_rank_fraction");
    jw_double(w, t->numerical_rank_fraction);
    jw_key(w, "effective_rank_99");
    jw_rank_int(w, t->effective_rank_99);
    jw_key(w, "entropy_rank");
    jw_double(w, t->entropy_rank);
    jw_key(w, "stable_rank");
    jw_double(w, t->stable_rank);
    jw_key(w, "energy_at_r");
    jw_doubles(w, t->energy_at_r, RANK_NR);
    jw_key(w, "rel_frobenius_error_at_r");
    jw_doubles(w, t->rel_frobenius_error_at_r, RANK_NR);
    jw_key(w, "frobenius");
    jw_double(w, t->frobenius);
    jw_key(w, "sigma_max");
    jw_double(w, t->nsv ? t->sv[0] : 0.0);
    jw_key(w, "nnz");
    jw_uint(w, t->nnz);
    jw_key(w, "lora_r_star");
    jw_double(w, t->lora_r_star);
    jw_key(w, "principal_angles");
    jw_doubles(w, t->principal_angles, rr->opt.angles_k);
    jw_key(w, "spectral_shift");
    jw_double(w, t->spectral_shift);
    jw_object_end(w);
}

void report_rank_json(JsonWriter *w, const RankReport *rr)
{
    jw_object_begin(w);
    jw_key(w, "method");
    jw_string(w, rank_method(rr));
    jw_key(w, "k");
    if (rr->opt.topk)
        jw_uint(w, rr->opt.topk);
    else
        jw_null(w);
    if (rr->opt.topk) {
        jw_key(w, "oversample");
        jw_uint(w, SVD_DEFAULT_OVERSAMPLE);
        jw_key(w, "power_iters");
        jw_uint(w, SVD_DEFAULT_POWER_ITERS);
    }
    jw_key(w, "angles_k");
    jw_uint(w, rr->opt.angles_k);
    jw_key(w, "eps");
    jw_double(w, RANK_EPS_F32);
    jw_key(w, "r");
    jw_array_begin(w);
    for (int j = 0; j < RANK_NR; j++)
        jw_uint(w, rank_r_at(j));
    jw_array_end(w);
    jw_key(w, "seconds");
    jw_double(w, rr->seconds);
    jw_key(w, "tensors");
    jw_array_begin(w);
    for (size_t i = 0; i < rr->ntensors; i++)
        write_rank_tensor(w, rr, &rr->t[i]);
    jw_array_end(w);
    const RankSummary *s = &rr->model;
    jw_key(w, "model");
    jw_object_begin(w);
    jw_key(w, "nmatrices");
    jw_uint(w, s->nmatrices);
    jw_key(w, "nskipped");
    jw_uint(w, s->nskipped);
    jw_key(w, "nnz");
    jw_uint(w, s->nnz);
    jw_key(w, "sum_m_plus_n");
    jw_uint(w, s->sum_m_plus_n);
    jw_key(w, "lora_r_star");
    jw_double(w, s->lora_r_star);
    jw_key(w, "lora_params_at_r");
    jw_array_begin(w);
    for (int j = 0; j < RANK_NR; j++)
        jw_uint(w, rank_r_at(j) * s->sum_m_plus_n);
    jw_array_end(w);
    jw_key(w, "mean_numerical_rank_fraction");
    jw_double(w, s->mean_numerical_rank_fraction);
    jw_key(w, "mean_effective_rank_99");
    jw_double(w, s->mean_effective_rank_99);
    jw_object_end(w);
    jw_object_end(w);
}

/* ---- HDF5 ---- */

typedef struct RankH5 {
    H5Out *w;
    SsError *err;
    const RankReport *rr;
    size_t n;            /* analysed tensors */
    size_t *idx;         /* their indexes in rr->t */
} RankH5;

static int h5_u64_col(RankH5 *x, hid_t g, const char *name, size_t width,
                      uint64_t (*get)(const RankTensor *, size_t))
{
    uint64_t *v = malloc((x->n * width + 1) * sizeof *v);
    if (!v)
        return ss_err(x->err, SS_EOUTPUT, "out of memory for /rank/%s", name);
    for (size_t i = 0; i < x->n; i++)
        for (size_t k = 0; k < width; k++)
            v[i * width + k] = get(&x->rr->t[x->idx[i]], k);
    hsize_t dims[2] = {x->n, width};
    int rc = h5w_dataset(x->w, g, name, H5W_U64, width > 1 ? 2 : 1, dims, v, x->err);
    free(v);
    return rc;
}

static int h5_i64_col(RankH5 *x, hid_t g, const char *name, int64_t (*get)(const RankTensor *))
{
    int64_t *v = malloc((x->n + 1) * sizeof *v);
    if (!v)
        return ss_err(x->err, SS_EOUTPUT, "out of memory for /rank/%s", name);
    for (size_t i = 0; i < x->n; i++)
        v[i] = get(&x->rr->t[x->idx[i]]);
    hsize_t dims[1] = {x->n};
    int rc = h5w_dataset(x->w, g, name, H5W_I64, 1, dims, v, x->err);
    free(v);
    return rc;
}

/* An (n) column, or (n, width) when width > 1 (then 2-D even for width 1 when force2d). */
static int h5_f64_col(RankH5 *x, hid_t g, const char *name, size_t width, int force2d,
                      double (*get)(const RankTensor *, size_t))
{
    double *v = malloc((x->n * width + 1) * sizeof *v);
    if (!v)
        return ss_err(x->err, SS_EOUTPUT, "out of memory for /rank/%s", name);
    for (size_t i = 0; i < x->n; i++)
        for (size_t k = 0; k < width; k++)
            v[i * width + k] = get(&x->rr->t[x->idx[i]], k);
    hsize_t dims[2] = {x->n, width};
    int rc = h5w_dataset(x->w, g, name, H5W_F64, (width > 1 || force2d) ? 2 : 1, dims, v,
                         x->err);
    free(v);
    return rc;
}

static uint64_t get_m(const RankTensor *t, size_t k) { (void)k; return t->m; }
static uint64_t get_n(const RankTensor *t, size_t k) { (void)k; return t->n; }
static uint64_t get_nnz(const RankTensor *t, size_t k) { (void)k; return t->nnz; }
static int64_t get_nr(const RankTensor *t) { return t->numerical_rank; }
static int64_t get_e99(const RankTensor *t) { return t->effective_rank_99; }
static double get_nrf(const RankTensor *t, size_t k) { (void)k; return t->numerical_rank_fraction; }
static double get_ent(const RankTensor *t, size_t k) { (void)k; return t->entropy_rank; }
static double get_stable(const RankTensor *t, size_t k) { (void)k; return t->stable_rank; }
static double get_rstar(const RankTensor *t, size_t k) { (void)k; return t->lora_r_star; }
static double get_shift(const RankTensor *t, size_t k) { (void)k; return t->spectral_shift; }
static double get_frob(const RankTensor *t, size_t k) { (void)k; return t->frobenius; }
static double get_energy(const RankTensor *t, size_t k) { return t->energy_at_r[k]; }
static double get_err(const RankTensor *t, size_t k) { return t->rel_frobenius_error_at_r[k]; }
static double get_angle(const RankTensor *t, size_t k) { return t->principal_angles[k]; }

static int h5_singular_values(RankH5 *x, hid_t rank_grp)
{
    hid_t g;
    int rc = h5w_group(x->w, rank_grp, "singular_values", &g, x->err);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < x->n; i++) {
        const RankTensor *t = &x->rr->t[x->idx[i]];
        double *v = malloc((t->nsv + 1) * sizeof *v);
        char *name = report_h5_tensor_name(t->name);
        if (!v || !name) {
            rc = ss_err(x->err, SS_EOUTPUT, "out of memory for /rank/singular_values");
        } else {
            for (size_t k = 0; k < t->nsv; k++)
                v[k] = t->sv[k];
            hsize_t dims[1] = {t->nsv};
            rc = h5w_dataset(x->w, g, name, H5W_F64, 1, dims, v, x->err);
        }
        free(v);
        free(name);
    }
    int rc2 = h5w_close_group(x->w, g, x->err);
    return rc ? rc : rc2;
}

static int h5_rank_attrs(RankH5 *x, hid_t g)
{
    const RankReport *rr = x->rr;
    const RankSummary *s = &rr->model;
    uint64_t rs[RANK_NR];
    for (int j = 0; j < RANK_NR; j++)
        rs[j] = rank_r_at(j);
    int rc = h5w_attr_string(x->w, g, "method", rank_method(rr), x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "k", rr->opt.topk, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "oversample", rr->opt.topk ? SVD_DEFAULT_OVERSAMPLE : 0,
                          x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "power_iters", rr->opt.topk ? SVD_DEFAULT_POWER_ITERS : 0,
                          x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "angles_k", rr->opt.angles_k, x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, g, "eps", RANK_EPS_F32, x->err);
    if (!rc)
        rc = h5w_attr_array(x->w, g, "r", H5W_U64, RANK_NR, rs, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "nmatrices", s->nmatrices, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "nskipped", s->nskipped, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "nnz", s->nnz, x->err);
    if (!rc)
        rc = h5w_attr_u64(x->w, g, "sum_m_plus_n", s->sum_m_plus_n, x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, g, "lora_r_star", s->lora_r_star, x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, g, "mean_numerical_rank_fraction",
                          s->mean_numerical_rank_fraction, x->err);
    if (!rc)
        rc = h5w_attr_f64(x->w, g, "mean_effective_rank_99", s->mean_effective_rank_99, x->err);
    return rc;
}

int report_rank_h5(H5Out *w, const RankReport *rr, SsError *err)
{
    RankH5 x = {.w = w, .err = err, .rr = rr};
    x.idx = malloc((rr->ntensors + 1) * sizeof *x.idx);
    const char **names = malloc((rr->ntensors + 1) * sizeof *names);
    const char **skipped = malloc((rr->ntensors + 1) * sizeof *skipped);
    const char **notes = malloc((rr->ntensors + 1) * sizeof *notes);
    if (!x.idx || !names || !skipped || !notes) {
        free(x.idx);
        free(names);
        free(skipped);
        free(notes);
        return ss_err(err, SS_EOUTPUT, "out of memory for /rank");
    }
    size_t nskip = 0;
    for (size_t i = 0; i < rr->ntensors; i++) {
        if (rr->t[i].note) {
            skipped[nskip] = rr->t[i].name;
            notes[nskip++] = rr->t[i].note;
        } else {
            names[x.n] = rr->t[i].name;
            x.idx[x.n++] = i;
        }
    }
    hid_t g = H5I_INVALID_HID;
    int rc = h5w_group(x.w, h5w_root(x.w), "rank", &g, err), open_g = 0;
    open_g = !rc;
    if (!rc)
        rc = h5_rank_attrs(&x, g);
    if (!rc)
        rc = h5w_dataset_strings(x.w, g, "name", x.n, names, err);
    if (!rc)
        rc = h5_u64_col(&x, g, "m", 1, get_m);
    if (!rc)
        rc = h5_u64_col(&x, g, "n", 1, get_n);
    if (!rc)
        rc = h5_i64_col(&x, g, "numerical_rank", get_nr);
    if (!rc)
        rc = h5_f64_col(&x, g, "numerical_rank_fraction", 1, 0, get_nrf);
    if (!rc)
        rc = h5_i64_col(&x, g, "effective_rank_99", get_e99);
    if (!rc)
        rc = h5_f64_col(&x, g, "entropy_rank", 1, 0, get_ent);
    if (!rc)
        rc = h5_f64_col(&x, g, "stable_rank", 1, 0, get_stable);
    if (!rc)
        rc = h5_f64_col(&x, g, "energy_at_r", RANK_NR, 1, get_energy);
    if (!rc)
        rc = h5_f64_col(&x, g, "rel_frobenius_error_at_r", RANK_NR, 1, get_err);
    if (!rc)
        rc = h5_u64_col(&x, g, "nnz", 1, get_nnz);
    if (!rc)
        rc = h5_f64_col(&x, g, "lora_r_star", 1, 0, get_rstar);
    if (!rc && rr->opt.angles_k)
        rc = h5_f64_col(&x, g, "principal_angles", rr->opt.angles_k, 1, get_angle);
    if (!rc)
        rc = h5_f64_col(&x, g, "spectral_shift", 1, 0, get_shift);
    if (!rc)
        rc = h5_f64_col(&x, g, "frobenius", 1, 0, get_frob);
    if (!rc)
        rc = h5w_dataset_strings(x.w, g, "skipped", nskip, skipped, err);
    if (!rc)
        rc = h5w_dataset_strings(x.w, g, "skipped_note", nskip, notes, err);
    if (!rc)
        rc = h5_singular_values(&x, g);
    if (open_g) {
        int rc2 = h5w_close_group(x.w, g, err);
        rc = rc ? rc : rc2;
    }
    free(x.idx);
    free(names);
    free(skipped);
    free(notes);
    return rc;
}
