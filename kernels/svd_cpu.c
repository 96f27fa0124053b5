/* The CPU backend of kernels/svd.h: LAPACKE_sgesdd for exact spectra, and the randomized top-k
 * SVD built from cblas_sgemm and LAPACKE_sgeqrf/sorgqr.
 *
 * A row-major (m, n) matrix is, to LAPACK's column-major eyes, its transpose (n, m) with leading
 * dimension n; singular values are unchanged and the left singular vectors of A are the right
 * singular vectors of A^T. So no transposing copy is ever made: gesdd runs on A^T, and its V^T
 * (r, m) column-major (leading dimension r) is exactly U_A (m, r) row-major. */
#include "kernels/svd.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

/* ---- helpers ---- */

int svd_check_dims(size_t m, size_t n, const char *lib, SsError *err)
{
    /* LAPACK's (32-bit) Fortran indexes a(i + j*lda), as cuSOLVER does: keep m*n within int. */
    if (m > INT_MAX || n > INT_MAX || (m && n > (size_t)INT_MAX / m))
        return ss_err(err, SS_EUSAGE, "svd: matrix (%zu, %zu) too large for %s's int", m, n, lib);
    return 0;
}

int svd_topk_begin(size_t m, size_t n, size_t k, const SvdRandOptions *opt, const char *lib,
                   SvdRandOptions *o, SsError *err)
{
    *o = opt ? *opt : (SvdRandOptions){SVD_DEFAULT_OVERSAMPLE, SVD_DEFAULT_POWER_ITERS, 0};
    int rc = svd_check_dims(m, n, lib, err);
    if (rc)
        return rc;
    size_t r = m < n ? m : n;
    if (k > r)
        return ss_err(err, SS_EUSAGE, "svd: top %zu asked of a (%zu, %zu) matrix", k, m, n);
    return k == 0;
}

static int svd_lapack_fail(SsError *err, const char *what, lapack_int info)
{
    if (info < 0)
        return ss_err(err, SS_EINPUT, "svd: %s: argument %d is invalid (info %d)", what,
                      (int)-info, (int)info);
    if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR)
        return ss_err(err, SS_EOUTPUT, "svd: %s: out of memory", what);
    return ss_err(err, SS_EINPUT, "svd: %s: did not converge (info %d; non-finite input?)", what,
                  (int)info);
}

static float *svd_alloc(size_t count, SsError *err)
{
    float *p = malloc((count ? count : 1) * sizeof *p);
    if (!p)
        ss_err(err, SS_EOUTPUT, "svd: out of memory for %zu floats", count);
    return p;
}

/* splitmix64: a small, fast, well-mixed generator for the Gaussian test matrix. */
static uint64_t svd_next_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void svd_fill_gaussian(float *g, size_t count, uint64_t seed)
{
    uint64_t st = seed;
    for (size_t i = 0; i < count; i += 2) {
        double u1 = ((double)(svd_next_u64(&st) >> 11) + 0.5) * 0x1p-53;
        double u2 = (double)(svd_next_u64(&st) >> 11) * 0x1p-53;
        double r = sqrt(-2.0 * log(u1));
        g[i] = (float)(r * cos(2.0 * M_PI * u2));
        if (i + 1 < count)
            g[i + 1] = (float)(r * sin(2.0 * M_PI * u2));
    }
}

/* Replaces y (rows, cols) column-major by an orthonormal basis of its columns (rows >= cols).
 * tau has cols entries. */
static int svd_orthonormalize(float *y, size_t rows, size_t cols, float *tau, SsError *err)
{
    lapack_int info = LAPACKE_sgeqrf(LAPACK_COL_MAJOR, (lapack_int)rows, (lapack_int)cols, y,
                                     (lapack_int)rows, tau);
    if (info)
        return svd_lapack_fail(err, "sgeqrf", info);
    info = LAPACKE_sorgqr(LAPACK_COL_MAJOR, (lapack_int)rows, (lapack_int)cols, (lapack_int)cols, y,
                          (lapack_int)rows, tau);
    if (info)
        return svd_lapack_fail(err, "sorgqr", info);
    return 0;
}

/* ---- exact spectra ---- */

int svd_values(float *a, size_t m, size_t n, float *s, float *u, SsError *err)
{
    int rc = svd_check_dims(m, n, "LAPACK", err);
    if (rc || m == 0 || n == 0)
        return rc;
    size_t r = m < n ? m : n;
    lapack_int info;
    if (!u) {
        float dummy = 0;
        info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'N', (lapack_int)n, (lapack_int)m, a,
                              (lapack_int)n, s, &dummy, 1, &dummy, 1);
    } else {
        float *ut = svd_alloc(n * r, err); /* (n, r) column-major: A's right vectors, unused */
        if (!ut)
            return SS_EOUTPUT;
        info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'S', (lapack_int)n, (lapack_int)m, a,
                              (lapack_int)n, s, ut, (lapack_int)n, u, (lapack_int)r);
        free(ut);
    }
    return info ? svd_lapack_fail(err, "sgesdd", info) : 0;
}

/* ---- randomized top k ---- */

int svd_topk(const float *a, size_t m, size_t n, size_t k, const SvdRandOptions *opt, float *s,
             float *u, SsError *err)
{
    SvdRandOptions o;
    int rc = svd_topk_begin(m, n, k, opt, "LAPACK", &o, err);
    if (rc)
        return rc < 0 ? rc : 0;
    opt = &o;
    size_t r = m < n ? m : n;
    size_t l = k + opt->oversample;
    if (l >= r) { /* the sketch would be as large as the matrix: the exact spectrum is cheaper */
        float *copy = svd_alloc(m * n, err), *sall = svd_alloc(r, err);
        float *uall = u ? svd_alloc(m * r, err) : NULL;
        rc = (!copy || !sall || (u && !uall)) ? SS_EOUTPUT : 0;
        if (!rc) {
            memcpy(copy, a, m * n * sizeof *copy);
            rc = svd_values(copy, m, n, sall, uall, err);
        }
        if (!rc) {
            memcpy(s, sall, k * sizeof *s);
            for (size_t i = 0; u && i < m; i++)
                memcpy(u + i * k, uall + i * r, k * sizeof *u);
        }
        free(copy);
        free(sall);
        free(uall);
        return rc;
    }
    lapack_int lm = (lapack_int)m, ln = (lapack_int)n, ll = (lapack_int)l;
    float *omega = svd_alloc(n * l, err);  /* (n, l) column-major; later Z = A^T Q */
    float *q = svd_alloc(m * l, err);      /* (m, l) column-major */
    float *tau = svd_alloc(l, err);
    float *sl = svd_alloc(l, err);
    float *ub = svd_alloc(n * l, err);     /* left vectors of B^T (n, l): unused */
    float *vt = svd_alloc(l * l, err);     /* (l, l) column-major: U_B^T, B = Q^T A */
    if (!omega || !q || !tau || !sl || !ub || !vt) {
        rc = SS_EOUTPUT;
        goto done;
    }
    svd_fill_gaussian(omega, n * l, opt->seed);
    /* Y = A Omega: A is A^T (n, m) column-major, so op = transpose. */
    cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, lm, ll, ln, 1.0f, a, ln, omega, ln, 0.0f,
                q, lm);
    if ((rc = svd_orthonormalize(q, m, l, tau, err)))
        goto done;
    for (size_t it = 0; it < opt->power_iters; it++) {
        /* Z = A^T Q (n, l), orthonormalized; then Q = orth(A Z). */
        cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, ln, ll, lm, 1.0f, a, ln, q, lm,
                    0.0f, omega, ln);
        if ((rc = svd_orthonormalize(omega, n, l, tau, err)))
            goto done;
        cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, lm, ll, ln, 1.0f, a, ln, omega, ln,
                    0.0f, q, lm);
        if ((rc = svd_orthonormalize(q, m, l, tau, err)))
            goto done;
    }
    /* B^T = A^T Q (n, l) column-major; B^T = U_b S V_b^T, so B = V_b S U_b^T and the left
     * vectors of B are V_b: vt (l, l) column-major holds V_b^T. */
    cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, ln, ll, lm, 1.0f, a, ln, q, lm, 0.0f,
                omega, ln);
    lapack_int info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'S', ln, ll, omega, ln, sl, ub, ln, vt, ll);
    if (info) {
        rc = svd_lapack_fail(err, "sgesdd", info);
        goto done;
    }
    memcpy(s, sl, k * sizeof *s);
    if (u) {
        /* U = Q V_b[:, :k]: u (m, k) row-major. Q column-major (m, l) is row-major (l, m) with
         * leading dimension m; vt's buffer read row-major (l, l) is V_b. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, lm, (lapack_int)k, ll, 1.0f, q, lm,
                    vt, ll, 0.0f, u, (lapack_int)k);
    }
done:
    free(omega);
    free(q);
    free(tau);
    free(sl);
    free(ub);
    free(vt);
    return rc;
}
