/* The computation of sparsity-compare (see compare.h): match the names of BASE, X and Y, then per
 * 2-D float tensor form both updates (threads over fixed row chunks, sums reduced in chunk
 * order), their cosine and norms, and the overlap of their top-k singular subspaces. */
#include "analyze/compare.h"
#include "analyze/rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <lapacke.h>

#include "formats/dtype_convert.h"
#include "kernels/svd.h"
#include "kernels/threadpool.h"

#define CMP_CHUNK_ELEMS ((size_t)1 << 16) /* elements of a row chunk (whole rows) */
#define CMP_SVD_SEED 0x5eedu

enum { IN_BASE = 1, IN_X = 2, IN_Y = 4, IN_ALL = 7 };

/* A matrix to compare, before it is computed. */
typedef struct CmpJob {
    const StTensor *tb, *tx, *ty;  /* tx NULL for a LoRA X */
    const LoraPair *pair;          /* LoRA X: its pair, or NULL (dW_X = 0) */
} CmpJob;

/* ---- helpers ---- */

static const char *cmp_absent_note(int mask)
{
    switch (mask) {
    case IN_BASE | IN_X: return "absent from Y";
    case IN_BASE | IN_Y: return "absent from X";
    case IN_X | IN_Y: return "absent from BASE";
    case IN_BASE: return "absent from X and Y";
    case IN_X: return "absent from BASE and Y";
    default: return "absent from BASE and X";
    }
}

static int cmp_same_shape(const StTensor *a, const StTensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

/* SS_EINCOMPAT when t (of input which, at path) differs from BASE's tb in dtype or shape. */
static int cmp_check_match(const StTensor *tb, const StTensor *t, const char *which,
                           const char *path, const char *base_path, SsError *err)
{
    if (tb->dtype == t->dtype && cmp_same_shape(tb, t))
        return 0;
    char sb[256], st[256];
    return ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': %s has %s %s but BASE (%s) has %s %s", path,
                  t->name, which, dtype_name(t->dtype), st_format_shape(st, sizeof st, t->ndim,
                  t->shape), base_path, dtype_name(tb->dtype),
                  st_format_shape(sb, sizeof sb, tb->ndim, tb->shape));
}

/* Why a tensor present in every input is not compared, or NULL. */
static const char *cmp_skip_reason(const StTensor *t)
{
    if (t->ndim != 2)
        return t->ndim == 1 ? "skipped: 1-D (not a matrix)" : "skipped: not 2-D";
    if (!dtype_is_float(t->dtype))
        return "skipped: not a floating-point dtype";
    if (t->shape[0] == 0 || t->shape[1] == 0)
        return "skipped: empty matrix";
    return NULL;
}

static const char *cmp_name(const StCheckpoint *ck, size_t i)
{
    return ck && i < ck->ntensors ? ck->tensors[i]->name : NULL;
}

/* ---- matching the three listings ---- */

typedef struct CmpPlan {
    size_t njobs;
    CmpJob *jobs;
} CmpPlan;

static int cmp_plan(CkptSource *base, CkptSource *x, const LoraAdapter *lora, CkptSource *y,
                    const char *const paths[3], CompareReport *out, CmpPlan *plan, SsError *err)
{
    const StCheckpoint *lb = base->listing, *lx = x ? x->listing : NULL, *ly = y->listing;
    size_t nb = lb->ntensors, nx = lx ? lx->ntensors : 0, ny = ly->ntensors;
    size_t total = nb + nx + ny;
    plan->jobs = calloc(nb ? nb : 1, sizeof *plan->jobs);
    out->skipped = calloc(nb ? nb : 1, sizeof *out->skipped);
    out->absent = calloc(total ? total : 1, sizeof *out->absent);
    if (!plan->jobs || !out->skipped || !out->absent)
        return ss_err(err, SS_EOUTPUT, "out of memory matching the tensors");

    /* LoRA pairs first: each must update a 2-D tensor of BASE with a fitting shape. */
    for (size_t i = 0; lora && i < lora->npairs; i++) {
        const LoraPair *p = &lora->pairs[i];
        const StTensor *tb = st_find(lb, p->target);
        if (!tb)
            return ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': updates '%s', which BASE (%s) "
                          "does not have", lora->weights_path, p->a->name, p->target, paths[0]);
        if (tb->ndim != 2)
            return ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': updates '%s', which is not 2-D in "
                          "BASE (%s)", lora->weights_path, p->a->name, p->target, paths[0]);
        int rc = lora_pair_check(lora, p, tb->shape[0], tb->shape[1], err);
        if (rc)
            return rc;
    }

    size_t ib = 0, ix = 0, iy = 0;
    for (;;) {
        const char *nmb = cmp_name(lb, ib), *nmx = cmp_name(lx, ix), *nmy = cmp_name(ly, iy);
        const char *nm = nmb;
        if (nmx && (!nm || strcmp(nmx, nm) < 0))
            nm = nmx;
        if (nmy && (!nm || strcmp(nmy, nm) < 0))
            nm = nmy;
        if (!nm)
            break;
        const StTensor *tb = nmb && !strcmp(nmb, nm) ? lb->tensors[ib++] : NULL;
        const StTensor *tx = nmx && !strcmp(nmx, nm) ? lx->tensors[ix++] : NULL;
        const StTensor *ty = nmy && !strcmp(nmy, nm) ? ly->tensors[iy++] : NULL;
        int mask = (tb ? IN_BASE : 0) | (tx || (lora && tb) ? IN_X : 0) | (ty ? IN_Y : 0);
        if (mask != IN_ALL) {
            out->absent[out->nabsent++] = (CompareSkip){nm, cmp_absent_note(mask)};
            continue;
        }
        int rc = tx ? cmp_check_match(tb, tx, "X", paths[1], paths[0], err) : 0;
        if (!rc)
            rc = cmp_check_match(tb, ty, "Y", paths[2], paths[0], err);
        if (rc)
            return rc;
        const char *why = cmp_skip_reason(tb);
        if (why) {
            out->skipped[out->nskipped++] = (CompareSkip){tb->name, why};
            continue;
        }
        CmpJob *j = &plan->jobs[plan->njobs++];
        *j = (CmpJob){tb, tx, ty, lora ? lora_adapter_find(lora, tb->name) : NULL};
    }
    return 0;
}

/* ---- one matrix: the updates, their dot product and norms ---- */

typedef struct CmpPass {
    const StTensor *tb;
    const void *pb, *px, *py;    /* px NULL for a LoRA X */
    const double *la, *lb;       /* LoRA X with a pair: A (r, n), B (m, r) decoded */
    uint64_t r;
    double scale;
    size_t m, n, rows;           /* rows per chunk */
    float *fx, *fy;              /* (m, n) outputs */
    double *part;                /* (nchunks, 3): dot, |x|^2, |y|^2 */
    int *bad;                    /* (nchunks): a non-finite value */
    double *scratch;             /* (threads, n): a LoRA row */
} CmpPass;

static void cmp_pass_chunk(void *ctx, size_t c, int worker)
{
    CmpPass *p = ctx;
    size_t r0 = c * p->rows, r1 = r0 + p->rows < p->m ? r0 + p->rows : p->m;
    double dot = 0, sx = 0, sy = 0;
    int bad = 0;
    double *row = p->scratch ? p->scratch + (size_t)worker * p->n : NULL;
    DType dt = p->tb->dtype;
    for (size_t i = r0; i < r1; i++) {
        if (p->la)
            lora_delta_row(p->la, p->lb, p->r, p->n, p->scale, i, row);
        for (size_t j = 0; j < p->n; j++) {
            size_t e = i * p->n + j;
            double b = ss_decode(dt, p->pb, e), y = ss_decode(dt, p->py, e);
            double dy = y - b, dx;
            if (p->px)
                dx = ss_decode(dt, p->px, e) - b;
            else
                dx = p->la ? row[j] : 0.0;
            float fx = (float)dx, fy = (float)dy;
            if (!isfinite(fx) || !isfinite(fy) || !isfinite(dx) || !isfinite(dy))
                bad = 1;
            p->fx[e] = fx;
            p->fy[e] = fy;
            dot += dx * dy;
            sx += dx * dx;
            sy += dy * dy;
        }
    }
    p->part[3 * c] = dot;
    p->part[3 * c + 1] = sx;
    p->part[3 * c + 2] = sy;
    p->bad[c] = bad;
}

/* ---- one matrix: subspaces ---- */

int compare_subspaces(const float *ua, size_t lda, const float *ub, size_t ldb, size_t m,
                      size_t k, double *overlap, double *cosines, SsError *err)
{
    if (k == 0) {
        *overlap = NAN;
        return 0;
    }
    int rc = rank_principal_cosines(ua, lda, ub, ldb, m, k, cosines, err);
    double f2 = 0;
    for (size_t i = 0; !rc && i < k; i++)
        f2 += cosines[i] * cosines[i];
    *overlap = rc ? NAN : f2 / (double)k; /* ||ua^T ub||_F^2 / k */
    return rc;
}

/* The top kq singular values s (kq) and left vectors u (m, kq) of a (m, n); a may be destroyed. */
static int cmp_svd(float *a, size_t m, size_t n, size_t kq, int exact, float *s, float *u,
                   SsError *err)
{
    if (!exact) {
        SvdRandOptions ro = {SVD_DEFAULT_OVERSAMPLE, SVD_DEFAULT_POWER_ITERS, CMP_SVD_SEED};
        return svd_topk(a, m, n, kq, &ro, s, u, err);
    }
    size_t p = m < n ? m : n;
    float *sall = malloc(p * sizeof *sall), *uall = malloc(m * p * sizeof *uall);
    int rc = (!sall || !uall) ? ss_err(err, SS_EOUTPUT, "svd: out of memory") : 0;
    if (!rc)
        rc = svd_values(a, m, n, sall, uall, err);
    if (!rc) {
        memcpy(s, sall, kq * sizeof *s);
        for (size_t i = 0; i < m; i++)
            memcpy(u + i * kq, uall + i * p, kq * sizeof *u);
    }
    free(sall);
    free(uall);
    return rc;
}

static void cmp_transpose(const float *a, size_t m, size_t n, float *at)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            at[j * m + i] = a[i * n + j];
}

static int64_t cmp_rank_in_top(const float *s, size_t kq, size_t m, size_t n)
{
    size_t big = m > n ? m : n;
    double tol = (double)s[0] * (double)big * COMPARE_EPS_F32;
    int64_t r = 0;
    while ((size_t)r < kq && (double)s[r] > tol)
        r++;
    return s[0] > 0 ? r : 0;
}

typedef struct CmpSvdBufs {
    float *s_x, *s_y, *s_r;     /* (kq) */
    float *u_x, *u_y;           /* (m, kq) */
    float *v_x, *v_y;           /* (n, kq) */
} CmpSvdBufs;

/* Subspace figures of t from fx, fy (destroyed) with scratch (m, n). */
static int cmp_subspace_figures(float *fx, float *fy, float *scratch, const CompareOptions *opt,
                                CompareTensor *t, SsError *err)
{
    size_t m = (size_t)t->m, n = (size_t)t->n, p = m < n ? m : n, K = opt->k;
    size_t kq = K < p ? K : p;
    CmpSvdBufs b = {0};
    b.s_x = malloc(kq * sizeof(float));
    b.s_y = malloc(kq * sizeof(float));
    b.s_r = malloc(kq * sizeof(float));
    b.u_x = malloc(m * kq * sizeof(float));
    b.u_y = malloc(m * kq * sizeof(float));
    b.v_x = malloc(n * kq * sizeof(float));
    b.v_y = malloc(n * kq * sizeof(float));
    int rc = 0;
    if (!b.s_x || !b.s_y || !b.s_r || !b.u_x || !b.u_y || !b.v_x || !b.v_y)
        rc = ss_err(err, SS_EOUTPUT, "out of memory for the SVDs of a (%zu, %zu) matrix", m, n);
    /* right vectors first (from the transpose), since a full SVD destroys its input */
    if (!rc) {
        cmp_transpose(fx, m, n, scratch);
        rc = cmp_svd(scratch, n, m, kq, opt->exact_svd, b.s_r, b.v_x, err);
    }
    if (!rc)
        rc = cmp_svd(fx, m, n, kq, opt->exact_svd, b.s_x, b.u_x, err);
    if (!rc) {
        cmp_transpose(fy, m, n, scratch);
        rc = cmp_svd(scratch, n, m, kq, opt->exact_svd, b.s_r, b.v_y, err);
    }
    if (!rc)
        rc = cmp_svd(fy, m, n, kq, opt->exact_svd, b.s_y, b.u_y, err);
    if (!rc) {
        t->sigma1_x = b.s_x[0];
        t->sigma1_y = b.s_y[0];
        t->rank_x = cmp_rank_in_top(b.s_x, kq, m, n);
        t->rank_y = cmp_rank_in_top(b.s_y, kq, m, n);
        size_t k = kq;
        if ((size_t)t->rank_x < k)
            k = (size_t)t->rank_x;
        if ((size_t)t->rank_y < k)
            k = (size_t)t->rank_y;
        t->k = k;
        if (k < K) {
            if (k == kq)
                t->k_note = "k clamped to min(m, n)";
            else if ((size_t)t->rank_x == k && (size_t)t->rank_y == k)
                t->k_note = "k clamped to the numerical rank of dW_X and dW_Y";
            else if ((size_t)t->rank_x == k)
                t->k_note = "k clamped to the numerical rank of dW_X";
            else
                t->k_note = "k clamped to the numerical rank of dW_Y";
        }
        if (k) {
            t->left_random = (double)k / (double)m;
            t->right_random = (double)k / (double)n;
        }
        rc = compare_subspaces(b.u_x, kq, b.u_y, kq, m, k, &t->left_overlap, t->left_cos, err);
    }
    if (!rc)
        rc = compare_subspaces(b.v_x, kq, b.v_y, kq, n, t->k, &t->right_overlap, t->right_cos,
                               err);
    free(b.s_x);
    free(b.s_y);
    free(b.s_r);
    free(b.u_x);
    free(b.u_y);
    free(b.v_x);
    free(b.v_y);
    return rc;
}

/* ---- one matrix ---- */

typedef struct CmpBytes {
    const void *pb, *px, *py;
    void *ob, *ox, *oy;          /* owned copies (run snapshots) */
    double *la, *lb;             /* LoRA factors, decoded */
    float *fx, *fy, *scratch;
    double *part, *rowbuf;
    int *bad;
} CmpBytes;

static void cmp_bytes_free(CmpBytes *b)
{
    free(b->ob);
    free(b->ox);
    free(b->oy);
    free(b->la);
    free(b->lb);
    free(b->fx);
    free(b->fy);
    free(b->scratch);
    free(b->part);
    free(b->rowbuf);
    free(b->bad);
    memset(b, 0, sizeof *b);
}

/* Computes t from job; *skip gets a note when the matrix turns out not comparable. */
static int cmp_matrix(CkptSource *base, CkptSource *x, const LoraAdapter *lora, CkptSource *y,
                      const CmpJob *job, const CompareOptions *opt, ThreadPool *pool,
                      CompareTensor *t, const char **skip, SsError *err)
{
    const StTensor *tb = job->tb;
    size_t m = (size_t)tb->shape[0], n = (size_t)tb->shape[1];
    t->name = tb->name;
    t->dtype = dtype_name(tb->dtype);
    t->m = m;
    t->n = n;
    t->x_lora = job->pair != NULL;
    t->left_cos = malloc(opt->k * sizeof(double));
    t->right_cos = malloc(opt->k * sizeof(double));
    if (!t->left_cos || !t->right_cos)
        return ss_err(err, SS_EOUTPUT, "tensor '%s': out of memory", tb->name);
    for (size_t i = 0; i < opt->k; i++)
        t->left_cos[i] = t->right_cos[i] = NAN;
    t->cosine = t->left_overlap = t->right_overlap = t->left_random = t->right_random = NAN;
    t->sigma1_x = t->sigma1_y = NAN;
    t->rank_x = t->rank_y = -1;

    CmpBytes b = {0};
    size_t rows = CMP_CHUNK_ELEMS / n ? CMP_CHUNK_ELEMS / n : 1;
    size_t nchunks = (m + rows - 1) / rows, nthreads = (size_t)pool_size(pool);
    int rc = ckpt_source_bytes(base, tb, &b.pb, &b.ob, err);
    if (!rc && job->tx)
        rc = ckpt_source_bytes(x, job->tx, &b.px, &b.ox, err);
    if (!rc)
        rc = ckpt_source_bytes(y, job->ty, &b.py, &b.oy, err);
    if (!rc && job->pair)
        rc = lora_pair_decode(lora, job->pair, &b.la, &b.lb, err);
    if (!rc) {
        b.fx = malloc(m * n * sizeof(float));
        b.fy = malloc(m * n * sizeof(float));
        b.part = calloc(3 * nchunks, sizeof(double));
        b.bad = calloc(nchunks, sizeof(int));
        if (job->pair)
            b.rowbuf = malloc(nthreads * n * sizeof(double));
        if (!b.fx || !b.fy || !b.part || !b.bad || (job->pair && !b.rowbuf))
            rc = ss_err(err, SS_EOUTPUT, "out of memory for a (%zu, %zu) matrix", m, n);
    }
    if (!rc) {
        CmpPass pass = {tb, b.pb, job->tx ? b.px : NULL, b.py, b.la, b.lb,
                        lora ? lora->r : 0, lora ? lora->scale : 0, m, n, rows, b.fx, b.fy,
                        b.part, b.bad, b.rowbuf};
        pool_run(pool, nchunks, cmp_pass_chunk, &pass);
        double dot = 0, sx = 0, sy = 0;
        int bad = 0;
        for (size_t c = 0; c < nchunks; c++) {
            dot += b.part[3 * c];
            sx += b.part[3 * c + 1];
            sy += b.part[3 * c + 2];
            bad |= b.bad[c];
        }
        if (bad || !isfinite(dot) || !isfinite(sx) || !isfinite(sy)) {
            *skip = "skipped: non-finite values in BASE, X, Y or an update (as float32), or "
                    "sums that overflow";
            goto done;
        }
        t->dot = dot;
        t->norm_x = sqrt(sx);
        t->norm_y = sqrt(sy);
        if (sx == 0 || sy == 0) {
            t->cosine_note = sx == 0 && sy == 0 ? "dW_X = dW_Y = 0"
                             : sx == 0          ? "dW_X = 0"
                                                : "dW_Y = 0";
            t->k_note = t->cosine_note;
            goto done;
        }
        double den = sx * sy;
        /* sqrt(x * x) == x exactly, so identical updates give exactly 1 (and opposite -1) */
        double c = isfinite(den) && den >= 0x1p-1000 ? dot / sqrt(den)
                                                     : dot / (t->norm_x * t->norm_y);
        t->cosine = c > 1 ? 1 : c < -1 ? -1 : c;
        /* the input bytes are no longer needed: drop the owned copies before the SVDs */
        free(b.ob);
        free(b.ox);
        free(b.oy);
        b.ob = b.ox = b.oy = NULL;
        b.scratch = malloc(m * n * sizeof(float));
        rc = b.scratch ? 0 : ss_err(err, SS_EOUTPUT, "out of memory for a (%zu, %zu) matrix", m, n);
        if (!rc)
            rc = cmp_subspace_figures(b.fx, b.fy, b.scratch, opt, t, err);
    }
done:
    if (rc && err->msg[0] && !strstr(err->msg, "tensor '"))
        ss_err_prefix(err, "tensor '%s'", tb->name);
    cmp_bytes_free(&b);
    return rc;
}

/* ---- the whole model ---- */

static void cmp_summarize(CompareReport *r)
{
    CompareSummary *s = &r->model;
    double sx = 0, sy = 0, lo = 0, ro = 0, lr = 0, rr = 0;
    for (size_t i = 0; i < r->ntensors; i++) {
        const CompareTensor *t = &r->t[i];
        s->nmatrices++;
        s->numel += t->m * t->n;
        s->dot += t->dot;
        sx += t->norm_x * t->norm_x;
        sy += t->norm_y * t->norm_y;
        s->nzero_x += t->norm_x == 0;
        s->nzero_y += t->norm_y == 0;
        if (t->k) {
            s->noverlap++;
            lo += t->left_overlap;
            ro += t->right_overlap;
            lr += t->left_random;
            rr += t->right_random;
        }
    }
    s->nskipped = r->nskipped;
    s->norm_x = sqrt(sx);
    s->norm_y = sqrt(sy);
    double c = sx > 0 && sy > 0 ? s->dot / (s->norm_x * s->norm_y) : NAN;
    s->cosine = isnan(c) ? c : c > 1 ? 1 : c < -1 ? -1 : c;
    double nv = (double)s->noverlap;
    s->mean_left_overlap = s->noverlap ? lo / nv : NAN;
    s->mean_right_overlap = s->noverlap ? ro / nv : NAN;
    s->mean_left_random = s->noverlap ? lr / nv : NAN;
    s->mean_right_random = s->noverlap ? rr / nv : NAN;
}

/* Moves the matrices skipped while computing (skip[i] set) to r->skipped, keeping name order. */
static void cmp_move_skipped(CompareReport *r, const char **skip)
{
    size_t keep = 0, ns = r->nskipped, nold = r->nskipped;
    CompareSkip *merged = r->skipped; /* capacity: BASE's tensor count */
    for (size_t i = 0; i < r->ntensors; i++) {
        if (skip[i]) {
            merged[ns++] = (CompareSkip){r->t[i].name, skip[i]};
            free(r->t[i].left_cos);
            free(r->t[i].right_cos);
        } else {
            r->t[keep++] = r->t[i];
        }
    }
    r->ntensors = keep;
    r->nskipped = ns;
    if (ns > nold) { /* both runs are name-sorted: merge them in place from the back */
        CompareSkip *tmp = malloc((ns - nold) * sizeof *tmp);
        if (tmp) {
            memcpy(tmp, merged + nold, (ns - nold) * sizeof *tmp);
            size_t i = nold, j = ns - nold, o = ns;
            while (j > 0) {
                if (i > 0 && strcmp(merged[i - 1].name, tmp[j - 1].name) > 0)
                    merged[--o] = merged[--i];
                else
                    merged[--o] = tmp[--j];
            }
            free(tmp);
        }
    }
}

int compare_sources(CkptSource *base, CkptSource *x, const LoraAdapter *lora, CkptSource *y,
                    const char *const paths[3], const CompareOptions *opt, CompareReport *out,
                    SsError *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(out, 0, sizeof *out);
    out->opt = *opt;
    out->base = paths[0];
    out->x = paths[1];
    out->y = paths[2];
    out->lora = lora;
    if (opt->k < 1 || opt->k > COMPARE_MAX_K)
        return ss_err(err, SS_EUSAGE, "--subspace-k must be from 1 to %d", COMPARE_MAX_K);
    if ((x == NULL) == (lora == NULL))
        return ss_err(err, SS_EUSAGE, "compare: exactly one of X and a LoRA adapter is needed");
    if (opt->threads > 0)
        openblas_set_num_threads(opt->threads);

    CmpPlan plan = {0};
    int rc = cmp_plan(base, x, lora, y, paths, out, &plan, err);
    const char **skip = NULL;
    ThreadPool *pool = NULL;
    if (!rc) {
        out->t = calloc(plan.njobs ? plan.njobs : 1, sizeof *out->t);
        skip = calloc(plan.njobs ? plan.njobs : 1, sizeof *skip);
        size_t nl = lora ? lora->npairs + plan.njobs : 0;
        out->no_lora = calloc(nl ? nl : 1, sizeof *out->no_lora);
        out->unused_lora = calloc(nl ? nl : 1, sizeof *out->unused_lora);
        pool = pool_create(opt->threads);
        if (!out->t || !skip || !out->no_lora || !out->unused_lora)
            rc = ss_err(err, SS_EOUTPUT, "out of memory for the report");
        else if (!pool)
            rc = ss_err(err, SS_EOUTPUT, "cannot create %d worker threads", opt->threads);
    }
    uint64_t total = 0, done = 0;
    for (size_t i = 0; !rc && i < plan.njobs; i++)
        total += plan.jobs[i].tb->numel;
    for (size_t i = 0; !rc && i < plan.njobs; i++) {
        out->ntensors = i + 1;
        rc = cmp_matrix(base, x, lora, y, &plan.jobs[i], opt, pool, &out->t[i], &skip[i], err);
        done += plan.jobs[i].tb->numel;
        if (!rc && opt->progress)
            opt->progress(opt->progress_ctx, done, total);
    }
    if (!rc) {
        if (lora) {
            for (size_t i = 0; i < plan.njobs; i++)
                if (!plan.jobs[i].pair && !skip[i])
                    out->no_lora[out->nno_lora++] = plan.jobs[i].tb->name;
            for (size_t i = 0; i < lora->npairs; i++) {
                size_t lo = 0, hi = plan.njobs; /* jobs are in name order */
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (strcmp(plan.jobs[mid].tb->name, lora->pairs[i].target) < 0)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                int used = lo < plan.njobs && !strcmp(plan.jobs[lo].tb->name,
                                                      lora->pairs[i].target) && !skip[lo];
                if (!used)
                    out->unused_lora[out->nunused_lora++] = lora->pairs[i].target;
            }
        }
        cmp_move_skipped(out, skip);
        cmp_summarize(out);
    }
    pool_destroy(pool);
    free(skip);
    free(plan.jobs);
    if (rc) {
        compare_report_free(out);
        return rc;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return 0;
}

void compare_report_free(CompareReport *r)
{
    for (size_t i = 0; r->t && i < r->ntensors; i++) {
        free(r->t[i].left_cos);
        free(r->t[i].right_cos);
    }
    free(r->t);
    free(r->skipped);
    free(r->absent);
    free(r->no_lora);
    free(r->unused_lora);
    memset(r, 0, sizeof *r);
}
