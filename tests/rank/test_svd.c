/* Unit test of kernels/svd_cpu.c and the spectrum figures of analyze/rank.c: known spectra
 * (diagonal, rank 1, rank-r products, zero, tall and wide), left vectors, and the randomized
 * top-k on a decaying spectrum. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/rank.h"
#include "kernels/svd.h"

static int failures;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            failures++;                                                   \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                 \
            fprintf(stderr, "\n");                                        \
        }                                                                 \
    } while (0)

static uint64_t rng = 12345;
static double urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) * 0x1p-53;
}
static double nrand(void)
{
    double u1 = urand() + 1e-300, u2 = urand();
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* q (rows, cols) row-major with orthonormal columns (Gram-Schmidt twice, in double). */
static void orthonormal(double *q, size_t rows, size_t cols)
{
    for (size_t i = 0; i < rows * cols; i++)
        q[i] = nrand();
    for (size_t j = 0; j < cols; j++)
        for (int pass = 0; pass < 2; pass++) {
            for (size_t k = 0; k < j; k++) {
                double d = 0;
                for (size_t i = 0; i < rows; i++)
                    d += q[i * cols + j] * q[i * cols + k];
                for (size_t i = 0; i < rows; i++)
                    q[i * cols + j] -= d * q[i * cols + k];
            }
            double nn = 0;
            for (size_t i = 0; i < rows; i++)
                nn += q[i * cols + j] * q[i * cols + j];
            for (size_t i = 0; i < rows; i++)
                q[i * cols + j] /= sqrt(nn);
        }
}

/* a (m, n) = U diag(s) V^T with random orthonormal U (m, r), V (n, r); returns U in uo. */
static float *make_matrix(size_t m, size_t n, const double *s, size_t r, double **uo)
{
    double *u = malloc(m * r * sizeof *u), *v = malloc(n * r * sizeof *v);
    orthonormal(u, m, r);
    orthonormal(v, n, r);
    float *a = malloc(m * n * sizeof *a);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0;
            for (size_t k = 0; k < r; k++)
                acc += u[i * r + k] * s[k] * v[j * r + k];
            a[i * n + j] = (float)acc;
        }
    free(v);
    if (uo)
        *uo = u;
    else
        free(u);
    return a;
}

/* Checks svd_values on a built from s (r values, the rest 0) and its left vectors. */
static void check_spectrum(const char *what, size_t m, size_t n, const double *s, size_t r)
{
    double *u;
    float *a = make_matrix(m, n, s, r, &u);
    size_t mn = m < n ? m : n;
    float *sv = malloc(mn * sizeof *sv), *uu = malloc(m * mn * sizeof *uu);
    SsError err = {0};
    int rc = svd_values(a, m, n, sv, uu, &err);
    CHECK(rc == 0, "%s: %s", what, err.msg);
    double smax = s[0];
    for (size_t i = 0; i < mn; i++) {
        double want = i < r ? s[i] : 0;
        CHECK(fabs(sv[i] - want) <= 1e-5 * smax + 1e-5 * want, "%s: sigma %zu = %g, want %g",
              what, i, sv[i], want);
    }
    /* left vector j matches U's column j up to sign, where sigma_j is simple */
    for (size_t j = 0; j < r && j < 3; j++) {
        double d = 0;
        for (size_t i = 0; i < m; i++)
            d += uu[i * mn + j] * u[i * r + j];
        CHECK(fabs(fabs(d) - 1) < 1e-3, "%s: |<u_%zu, u_true>| = %g", what, j, fabs(d));
    }
    free(a);
    free(u);
    free(sv);
    free(uu);
}

static void test_diagonal(void)
{
    size_t m = 7, n = 5;
    float a[35] = {0}, s[5], u[35];
    float d[5] = {3, -9, 0.5f, 0, 2};
    for (int i = 0; i < 5; i++)
        a[i * n + i] = d[i];
    SsError err = {0};
    CHECK(svd_values(a, m, n, s, u, &err) == 0, "%s", err.msg);
    float want[5] = {9, 3, 2, 0.5f, 0};
    for (int i = 0; i < 5; i++)
        CHECK(fabsf(s[i] - want[i]) < 1e-6f, "diag sigma %d = %g", i, s[i]);
    CHECK(fabsf(fabsf(u[1 * n + 0]) - 1) < 1e-6f, "diag: u_0 = e_1");
}

static void test_zero_and_rank1(void)
{
    size_t m = 40, n = 60;
    float *a = calloc(m * n, sizeof *a), s[40];
    SsError err = {0};
    CHECK(svd_values(a, m, n, s, NULL, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < m; i++)
        CHECK(s[i] == 0, "zero: sigma %zu = %g", i, s[i]);
    RankTensor t = {0};
    rank_metrics_from_spectrum(s, m, 1, 0.0, m, n, &t);
    CHECK(t.numerical_rank == 0 && t.numerical_rank_fraction == 0, "zero: rank");
    CHECK(t.effective_rank_99 == 0 && t.entropy_rank == 0 && t.stable_rank == 0, "zero: ranks");
    for (int j = 0; j < RANK_NR; j++)
        CHECK(t.energy_at_r[j] == 0 && t.rel_frobenius_error_at_r[j] == 0, "zero: energy");
    /* rank 1: x y^T */
    double s1[1] = {7.5};
    check_spectrum("rank 1", m, n, s1, 1);
    free(a);
    a = make_matrix(m, n, s1, 1, NULL);
    double f2 = 0;
    for (size_t i = 0; i < m * n; i++)
        f2 += (double)a[i] * a[i];
    CHECK(svd_values(a, m, n, s, NULL, &err) == 0, "%s", err.msg);
    rank_metrics_from_spectrum(s, m, 1, f2, m, n, &t);
    CHECK(t.numerical_rank == 1, "rank 1: numerical rank %lld", (long long)t.numerical_rank);
    CHECK(t.effective_rank_99 == 1, "rank 1: eff99 %lld", (long long)t.effective_rank_99);
    CHECK(fabs(t.stable_rank - 1) < 1e-5 && fabs(t.entropy_rank - 1) < 1e-5, "rank 1: %g %g",
          t.stable_rank, t.entropy_rank);
    CHECK(fabs(t.energy_at_r[0] - 1) < 1e-6, "rank 1: energy %g", t.energy_at_r[0]);
    free(a);
}

static void test_rank_r_shapes(void)
{
    double s[12];
    for (int i = 0; i < 12; i++)
        s[i] = 10.0 / (1 + i);
    check_spectrum("rank 12 square", 50, 50, s, 12);
    check_spectrum("rank 12 tall", 120, 30, s, 12);
    check_spectrum("rank 12 wide", 30, 120, s, 12);
    double full[30];
    for (int i = 0; i < 30; i++)
        full[i] = 5.0 - 0.1 * i;
    check_spectrum("full tall", 90, 30, full, 30);
    check_spectrum("full wide", 30, 90, full, 30);
}

static void test_randomized(void)
{
    size_t m = 300, n = 500, k = 16, r = 300;
    double *s = malloc(r * sizeof *s);
    for (size_t i = 0; i < r; i++)
        s[i] = pow(0.8, (double)i); /* decaying */
    double *uref;
    float *a = make_matrix(m, n, s, r, &uref);
    float sk[16], *uk = malloc(m * k * sizeof *uk);
    SsError err = {0};
    CHECK(svd_topk(a, m, n, k, NULL, sk, uk, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < k; i++)
        CHECK(fabs(sk[i] - s[i]) <= 1e-3 * s[i], "topk sigma %zu = %g, want %g", i, sk[i], s[i]);
    for (size_t j = 0; j < 4; j++) {
        double d = 0;
        for (size_t i = 0; i < m; i++)
            d += uk[i * k + j] * uref[i * r + j];
        CHECK(fabs(fabs(d) - 1) < 1e-3, "topk: |<u_%zu, u_true>| = %g", j, fabs(d));
    }
    /* wide and tall give the same values as the exact spectrum's top k */
    float *at = malloc(m * n * sizeof *at);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            at[j * m + i] = a[i * n + j];
    float skt[16];
    CHECK(svd_topk(at, n, m, k, NULL, skt, NULL, &err) == 0, "%s", err.msg);
    for (size_t i = 0; i < k; i++)
        CHECK(fabs(skt[i] - s[i]) <= 1e-3 * s[i], "topk tall sigma %zu = %g", i, skt[i]);
    /* k + p >= min(m, n): falls back to the exact spectrum */
    float sfull[300];
    CHECK(svd_topk(a, m, n, 295, NULL, sfull, NULL, &err) == 0, "%s", err.msg);
    CHECK(fabs(sfull[100] - s[100]) < 1e-5, "fallback sigma 100 = %g", sfull[100]);
    CHECK(svd_topk(a, m, n, 301, NULL, sfull, NULL, &err) == SS_EUSAGE, "k > min(m, n)");
    free(a);
    free(at);
    free(uk);
    free(uref);
    free(s);
}

static void test_angles(void)
{
    /* two 2-D subspaces of R^3 sharing e1, the second rotated by 0.3 rad about e1 */
    float ua[6] = {1, 0, 0, 1, 0, 0};
    float ub[6] = {1, 0, 0, (float)cos(0.3), 0, (float)sin(0.3)};
    double ang[2];
    SsError err = {0};
    CHECK(rank_principal_angles(ua, ub, 3, 2, ang, &err) == 0, "%s", err.msg);
    CHECK(fabs(ang[0]) < 1e-3 && fabs(ang[1] - 0.3) < 1e-6, "angles %g %g", ang[0], ang[1]);
}

static void test_nonfinite(void)
{
    float a[4] = {1, NAN, 0, 1}, s[2];
    SsError err = {0};
    int rc = svd_values(a, 2, 2, s, NULL, &err);
    /* LAPACK may or may not notice: it must not crash, and a failure is an SsError */
    CHECK(rc == 0 || (rc == SS_EINPUT && strncmp(err.msg, "svd: ", 5) == 0), "rc %d %s", rc,
          err.msg);
}

int main(void)
{
    test_diagonal();
    test_zero_and_rank1();
    test_rank_r_shapes();
    test_randomized();
    test_angles();
    test_nonfinite();
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("test_svd: all checks passed\n");
    return 0;
}
