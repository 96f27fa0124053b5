/* The rank analysis of sparsity-scan --rank (analyze/rank.h): decode each 2-D pair, form dW in
 * double and hold it in float32, take spectra with kernels/svd.h, derive the figures. */
#include "analyze/rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lapacke.h>

#include "formats/dtype_convert.h"
#include "kernels/svd.h"
#include "kernels/svd_cuda.h"

/* ---- figures from a spectrum ---- */

void rank_metrics_from_spectrum(const float *sv, size_t nsv, int complete, double frob2,
                                uint64_t m, uint64_t n, RankTensor *t)
{
    uint64_t r = m < n ? m : n, big = m > n ? m : n;
    double s1 = nsv ? (double)sv[0] : 0.0;
    /* sum sigma^2: the spectrum's own when complete; ||dW||_F^2 (equal in exact arithmetic)
     * when only the top values are known. */
    double total2 = 0, total1 = 0;
    for (size_t i = 0; i < nsv; i++) {
        total2 += (double)sv[i] * sv[i];
        total1 += sv[i];
    }
    if (!complete)
        total2 = frob2;

    /* numerical rank: known when complete, or when the tolerance falls inside the top values */
    double tol = s1 * (double)big * RANK_EPS_F32;
    size_t above = 0;
    while (above < nsv && (double)sv[above] > tol)
        above++;
    t->numerical_rank = (complete || above < nsv || s1 == 0) ? (int64_t)above : -1;
    t->numerical_rank_fraction = t->numerical_rank < 0 ? NAN
                                 : r ? (double)t->numerical_rank / (double)r : 0.0;

    /* 99% energy: the first k reaching 0.99 of the total */
    t->effective_rank_99 = total2 == 0 ? 0 : -1;
    double cum = 0;
    for (size_t i = 0; total2 > 0 && i < nsv; i++) {
        cum += (double)sv[i] * sv[i];
        if (cum >= 0.99 * total2) {
            t->effective_rank_99 = (int64_t)(i + 1);
            break;
        }
    }
    if (t->effective_rank_99 < 0 && complete) /* rounding kept cum a hair below */
        t->effective_rank_99 = (int64_t)nsv;

    /* entropy effective rank (Roy & Vetterli 2007): needs every sigma */
    if (!complete && s1 > 0) {
        t->entropy_rank = NAN;
    } else if (total1 == 0) {
        t->entropy_rank = 0;
    } else {
        double h = 0;
        for (size_t i = 0; i < nsv; i++) {
            double p = sv[i] / total1;
            if (p > 0)
                h -= p * log(p);
        }
        t->entropy_rank = exp(h);
    }
    t->stable_rank = s1 > 0 ? frob2 / (s1 * s1) : 0.0;

    /* best rank-r approximations: energy kept and relative Frobenius error */
    for (int j = 0; j < RANK_NR; j++) {
        uint64_t rr = rank_r_at(j);
        if (total2 == 0) {
            t->energy_at_r[j] = 0;
            t->rel_frobenius_error_at_r[j] = 0;
            continue;
        }
        if (!complete && rr > nsv && rr < r) {
            t->energy_at_r[j] = NAN;
            t->rel_frobenius_error_at_r[j] = NAN;
            continue;
        }
        double head = 0, tail = 0;
        for (size_t i = 0; i < nsv; i++) {
            double s2 = (double)sv[i] * sv[i];
            if (i < rr)
                head += s2;
            else
                tail += s2;
        }
        if (!complete)
            tail = total2 - head > 0 ? total2 - head : 0;
        t->energy_at_r[j] = head / total2;
        t->rel_frobenius_error_at_r[j] = sqrt(tail / total2);
    }
}

int rank_principal_cosines(const float *ua, size_t lda, const float *ub, size_t ldb, size_t m,
                           size_t k, double *cosines, SsError *err)
{
    if (k == 0)
        return 0;
    double *mm = calloc(k * k, sizeof *mm); /* (k, k) column-major: ua^T ub, summed in double */
    double *sv = malloc(k * sizeof *sv);
    if (!mm || !sv) {
        free(mm);
        free(sv);
        return ss_err(err, SS_EOUTPUT, "out of memory for the principal angles");
    }
    for (size_t row = 0; row < m; row++)
        for (size_t j = 0; j < k; j++) {
            double bj = ub[row * ldb + j];
            for (size_t i = 0; i < k; i++)
                mm[i + j * k] += (double)ua[row * lda + i] * bj;
        }
    double dummy = 0;
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', (lapack_int)k, (lapack_int)k, mm,
                                     (lapack_int)k, sv, &dummy, 1, &dummy, 1);
    int rc = 0;
    if (info)
        rc = ss_err(err, SS_EINPUT, "principal angles: dgesdd failed (info %d)", (int)info);
    /* Clamped to [0, 1]: float32 vectors orthonormal only to ~1e-7 can give a value above 1. */
    for (size_t i = 0; !rc && i < k; i++)
        cosines[i] = sv[i] > 1 ? 1 : sv[i] < 0 ? 0 : sv[i];
    free(mm);
    free(sv);
    return rc;
}

int rank_principal_angles(const float *ua, const float *ub, size_t m, size_t k, double *angles,
                          SsError *err)
{
    int rc = rank_principal_cosines(ua, k, ub, k, m, k, angles, err);
    for (size_t i = 0; !rc && i < k; i++)
        angles[i] = acos(angles[i]);
    return rc;
}

/* ---- one pair ---- */

typedef struct RankBufs {
    float *dw, *fa, *fb;     /* (m, n) each */
    float *sa, *sb;          /* spectra of A and B */
    float *ua, *ub;          /* (m, kk) left vectors */
} RankBufs;

static void rank_bufs_free(RankBufs *b)
{
    free(b->dw);
    free(b->fa);
    free(b->fb);
    free(b->sa);
    free(b->sb);
    free(b->ua);
    free(b->ub);
    memset(b, 0, sizeof *b);
}

/* Decodes A and B into b->fa, b->fb and dW into b->dw; counts nnz and ||dW||_F^2. Returns 1
 * when a value (or dW) is not finite in float32. */
static int rank_decode(const StTensor *ta, const void *pa, const void *pb, RankBufs *b,
                       uint64_t *nnz, double *frob2)
{
    size_t count = (size_t)ta->numel;
    uint64_t nz = 0;
    double f2 = 0;
    for (size_t i = 0; i < count; i++) {
        double a = ss_decode(ta->dtype, pa, i), bb = ss_decode(ta->dtype, pb, i);
        double d = bb - a;
        float fd = (float)d, fa = (float)a, fb = (float)bb;
        if (!isfinite(fd) || !isfinite(fa) || !isfinite(fb))
            return 1;
        nz += d != 0;
        f2 += (double)fd * fd;
        b->dw[i] = fd;
        b->fa[i] = fa;
        b->fb[i] = fb;
    }
    *nnz = nz;
    *frob2 = f2;
    return 0;
}

/* Keeps the first k of the cols columns of u (m, cols) row-major, as (m, k). */
static void rank_keep_columns(float *u, size_t m, size_t cols, size_t k)
{
    for (size_t i = 1; i < m; i++)
        memmove(u + i * k, u + i * cols, k * sizeof *u);
}

/* Spectrum (and the first kvec left vectors into u, (m, kvec)) of x: exact or top nvals. */
static int rank_spectrum(float *x, size_t m, size_t n, size_t nvals, size_t kvec, float *s,
                         float *u, const RankOptions *opt, SsError *err)
{
    size_t r = m < n ? m : n;
    if (!opt->topk) {
        int rc = opt->cuda ? svd_values_cuda(x, m, n, s, kvec ? u : NULL, err)
                           : svd_values(x, m, n, s, kvec ? u : NULL, err);
        if (!rc && kvec)
            rank_keep_columns(u, m, r, kvec);
        return rc;
    }
    SvdRandOptions ro = {SVD_DEFAULT_OVERSAMPLE, SVD_DEFAULT_POWER_ITERS, 0x5eed};
    int rc = opt->cuda ? svd_topk_cuda(x, m, n, nvals, &ro, s, kvec ? u : NULL, err)
                       : svd_topk(x, m, n, nvals, &ro, s, kvec ? u : NULL, err);
    if (!rc && kvec)
        rank_keep_columns(u, m, nvals, kvec);
    return rc;
}

static int rank_pair(CkptSource *a, CkptSource *b, const TensorPair *p, const RankOptions *opt,
                     RankTensor *t, SsError *err)
{
    const StTensor *ta = p->a;
    t->name = ta->name;
    t->numerical_rank = t->effective_rank_99 = -1;
    t->numerical_rank_fraction = t->entropy_rank = t->stable_rank = NAN;
    t->lora_r_star = t->spectral_shift = t->frobenius = NAN;
    for (int j = 0; j < RANK_NR; j++)
        t->energy_at_r[j] = t->rel_frobenius_error_at_r[j] = NAN;
    t->principal_angles = malloc((opt->angles_k ? opt->angles_k : 1) * sizeof(double));
    if (!t->principal_angles)
        return ss_err(err, SS_EOUTPUT, "tensor '%s': out of memory", ta->name);
    for (size_t i = 0; i < opt->angles_k; i++)
        t->principal_angles[i] = NAN;
    if (ta->ndim != 2) {
        t->note = ta->ndim == 1 ? "skipped: 1-D (not a matrix)" : "skipped: not 2-D";
        return 0;
    }
    t->m = ta->shape[0];
    t->n = ta->shape[1];
    if (t->m == 0 || t->n == 0) {
        t->note = "skipped: empty matrix";
        return 0;
    }
    size_t m = (size_t)t->m, n = (size_t)t->n, r = m < n ? m : n;
    size_t nvals = opt->topk ? (opt->topk < r ? opt->topk : r) : r;
    size_t kang = opt->angles_k < r ? opt->angles_k : r;
    size_t nab = opt->topk ? (nvals > kang ? nvals : kang) : r; /* values of A and B */

    RankBufs bufs = {0};
    const void *pa = NULL, *pb = NULL;
    void *owned_a = NULL, *owned_b = NULL;
    int rc = ckpt_source_bytes(a, ta, &pa, &owned_a, err);
    if (!rc)
        rc = ckpt_source_bytes(b, p->b, &pb, &owned_b, err);
    if (!rc) {
        bufs.dw = malloc(m * n * sizeof(float));
        bufs.fa = malloc(m * n * sizeof(float));
        bufs.fb = malloc(m * n * sizeof(float));
        bufs.sa = malloc(nab * sizeof(float));
        bufs.sb = malloc(nab * sizeof(float));
        bufs.ua = malloc(m * (kang ? nab : 1) * sizeof(float));
        bufs.ub = malloc(m * (kang ? nab : 1) * sizeof(float));
        t->sv = malloc(nvals * sizeof(float));
        if (!bufs.dw || !bufs.fa || !bufs.fb || !bufs.sa || !bufs.sb || !bufs.ua || !bufs.ub ||
            !t->sv)
            rc = ss_err(err, SS_EOUTPUT, "tensor '%s': out of memory for the rank analysis "
                        "of a (%zu, %zu) matrix", ta->name, m, n);
    }
    double frob2 = 0;
    if (!rc && rank_decode(ta, pa, pb, &bufs, &t->nnz, &frob2)) {
        t->note = "skipped: non-finite values in A, B or B - A (as float32)";
        free(t->sv);
        t->sv = NULL;
        goto done;
    }
    free(owned_a);
    free(owned_b);
    owned_a = owned_b = NULL;
    if (!rc) {
        t->nsv = nvals;
        t->frobenius = sqrt(frob2);
        t->lora_r_star = (double)t->nnz / (double)(m + n);
        rc = rank_spectrum(bufs.dw, m, n, nvals, 0, t->sv, NULL, opt, err);
    }
    if (!rc) {
        rank_metrics_from_spectrum(t->sv, nvals, !opt->topk || nvals == r, frob2, t->m, t->n, t);
        rc = rank_spectrum(bufs.fa, m, n, nab, kang, bufs.sa, bufs.ua, opt, err);
    }
    if (!rc)
        rc = rank_spectrum(bufs.fb, m, n, nab, kang, bufs.sb, bufs.ub, opt, err);
    if (!rc) {
        double d2 = 0, a2 = 0;
        for (size_t i = 0; i < nab; i++) {
            double d = (double)bufs.sb[i] - bufs.sa[i];
            d2 += d * d;
            a2 += (double)bufs.sa[i] * bufs.sa[i];
        }
        t->spectral_shift = a2 > 0 ? sqrt(d2 / a2) : NAN;
        if (kang && bufs.sa[0] > 0 && bufs.sb[0] > 0)
            rc = rank_principal_angles(bufs.ua, bufs.ub, m, kang, t->principal_angles, err);
    }
    if (rc && err->msg[0] && strncmp(err->msg, "tensor '", 8) != 0)
        ss_err_prefix(err, "tensor '%s'", ta->name);
done:
    free(owned_a);
    free(owned_b);
    rank_bufs_free(&bufs);
    return rc;
}

/* ---- the whole model ---- */

static void rank_summarize(RankReport *r)
{
    RankSummary *s = &r->model;
    double fsum = 0, esum = 0;
    uint64_t fcount = 0, ecount = 0;
    for (size_t i = 0; i < r->ntensors; i++) {
        const RankTensor *t = &r->t[i];
        if (t->note) {
            s->nskipped++;
            continue;
        }
        s->nmatrices++;
        s->nnz += t->nnz;
        s->sum_m_plus_n += t->m + t->n;
        if (t->numerical_rank >= 0) {
            fsum += t->numerical_rank_fraction;
            fcount++;
        }
        if (t->effective_rank_99 >= 0) {
            esum += (double)t->effective_rank_99;
            ecount++;
        }
    }
    s->lora_r_star = s->sum_m_plus_n ? (double)s->nnz / (double)s->sum_m_plus_n : NAN;
    s->mean_numerical_rank_fraction = fcount ? fsum / (double)fcount : NAN;
    s->mean_effective_rank_99 = ecount ? esum / (double)ecount : NAN;
}

int rank_sources(CkptSource *a, CkptSource *b, const PairList *pl, const RankOptions *opt,
                 RankReport *out, SsError *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(out, 0, sizeof *out);
    out->opt = *opt;
    if (opt->topk > RANK_MAX_K || opt->angles_k > RANK_MAX_K)
        return ss_err(err, SS_EUSAGE, "--rank-k and --rank-angles are at most %d", RANK_MAX_K);
    out->t = calloc(pl->npairs ? pl->npairs : 1, sizeof *out->t);
    if (!out->t)
        return ss_err(err, SS_EOUTPUT, "out of memory for the rank report");
    int rc = 0;
    for (size_t i = 0; !rc && i < pl->npairs; i++) {
        out->ntensors = i + 1;
        rc = rank_pair(a, b, &pl->pairs[i], opt, &out->t[i], err);
    }
    if (rc) {
        rank_report_free(out);
        return rc;
    }
    rank_summarize(out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return 0;
}

void rank_report_free(RankReport *r)
{
    for (size_t i = 0; r->t && i < r->ntensors; i++) {
        free(r->t[i].principal_angles);
        free(r->t[i].sv);
    }
    free(r->t);
    memset(r, 0, sizeof *r);
}
