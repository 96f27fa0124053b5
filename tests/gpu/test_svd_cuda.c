/* The cuSOLVER/cuBLAS SVD (kernels/svd_cuda.h) against the LAPACK path (kernels/svd.h); suite gpu,
 * exit 77 without a CUDA device.
 *   values   svd_values_cuda vs svd_values on wide, tall and square matrices: within 1e-4 of the
 *            largest value; left vectors checked by |A^T u_j| = s_j and orthonormality (no sign)
 *   batched  svd_values_batched_cuda: a batch of 20x30 (gesvdjBatched) and of 70x50 (gesvd loop)
 *   topk     svd_topk_cuda vs svd_topk (same seed: same sketch) on a decaying spectrum: top values
 *            within 1e-3 relative, and within 1e-3 of the exact ones */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/device.h"
#include "kernels/svd.h"
#include "kernels/svd_cuda.h"

#include "tests/check.h"


static uint64_t rng = 0x12345678abcdefull;

static double uniform(void)
{
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (double)((rng * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-53;
}

static float *random_matrix(size_t m, size_t n)
{
    float *a = malloc(m * n * sizeof *a);
    for (size_t i = 0; i < m * n; i++)
        a[i] = (float)(2.0 * uniform() - 1.0);
    return a;
}

/* A matrix with decaying spectrum: sum_j 0.7^j x_j y_j^T plus small noise. */
static float *decaying_matrix(size_t m, size_t n, size_t rank)
{
    float *a = calloc(m * n, sizeof *a);
    for (size_t j = 0; j < rank; j++) {
        double w = pow(0.7, (double)j) * 10.0;
        float *x = random_matrix(m, 1), *y = random_matrix(n, 1);
        for (size_t i = 0; i < m; i++)
            for (size_t k = 0; k < n; k++)
                a[i * n + k] += (float)(w * x[i] * y[k]);
        free(x);
        free(y);
    }
    for (size_t i = 0; i < m * n; i++)
        a[i] += (float)(1e-3 * (2.0 * uniform() - 1.0));
    return a;
}

static void check_values(size_t m, size_t n)
{
    size_t r = m < n ? m : n;
    float *a = random_matrix(m, n), *a1 = malloc(m * n * sizeof *a), *a2 = malloc(m * n * sizeof *a);
    float *s1 = malloc(r * sizeof *s1), *s2 = malloc(r * sizeof *s2), *u = malloc(m * r * sizeof *u);
    memcpy(a1, a, m * n * sizeof *a);
    memcpy(a2, a, m * n * sizeof *a);
    SsError err = {0, ""};
    int rc1 = svd_values(a1, m, n, s1, NULL, &err);
    int rc2 = svd_values_cuda(a2, m, n, s2, u, &err);
    EXPECT(rc1 == 0 && rc2 == 0, "(%zu, %zu): %d %d %s", m, n, rc1, rc2, err.msg);
    if (rc1 == 0 && rc2 == 0) {
        for (size_t j = 0; j < r; j++)
            EXPECT(fabsf(s1[j] - s2[j]) <= 1e-4f * s1[0], "(%zu, %zu) s[%zu] %g vs %g", m, n, j,
                   s1[j], s2[j]);
        for (size_t j = 0; j < r; j++) {
            /* |A^T u_j| = s_j and |u_j| = 1, u_j . u_0 = 0 */
            double norm = 0, dot0 = 0, at2 = 0;
            for (size_t i = 0; i < m; i++) {
                norm += (double)u[i * r + j] * u[i * r + j];
                dot0 += (double)u[i * r + j] * u[i * r];
            }
            for (size_t k = 0; k < n; k++) {
                double t = 0;
                for (size_t i = 0; i < m; i++)
                    t += (double)a[i * n + k] * u[i * r + j];
                at2 += t * t;
            }
            EXPECT(fabs(sqrt(norm) - 1) < 1e-3 && (j == 0 || fabs(dot0) < 1e-3) &&
                       fabs(sqrt(at2) - s1[j]) < 1e-3 * s1[0],
                   "(%zu, %zu) u[:, %zu]: norm %g dot0 %g |A^T u| %g s %g", m, n, j, sqrt(norm),
                   dot0, sqrt(at2), s1[j]);
        }
    }
    free(a), free(a1), free(a2), free(s1), free(s2), free(u);
}

static void check_batched(size_t batch, size_t m, size_t n)
{
    size_t r = m < n ? m : n;
    float *a = random_matrix(batch * m, n), *s = malloc(batch * r * sizeof *s);
    float *copy = malloc(m * n * sizeof *copy), *s1 = malloc(r * sizeof *s1);
    SsError err = {0, ""};
    int rc = svd_values_batched_cuda(a, batch, m, n, s, &err);
    EXPECT(rc == 0, "batched %zu x (%zu, %zu): %d %s", batch, m, n, rc, err.msg);
    for (size_t b = 0; rc == 0 && b < batch; b++) {
        memcpy(copy, a + b * m * n, m * n * sizeof *copy);
        EXPECT(svd_values(copy, m, n, s1, NULL, &err) == 0, "lapack: %s", err.msg);
        for (size_t j = 0; j < r; j++)
            EXPECT(fabsf(s1[j] - s[b * r + j]) <= 1e-4f * s1[0],
                   "batched (%zu, %zu) #%zu s[%zu] %g vs %g", m, n, b, j, s1[j], s[b * r + j]);
    }
    free(a), free(s), free(copy), free(s1);
}

static void check_topk(size_t m, size_t n, size_t k)
{
    size_t r = m < n ? m : n;
    float *a = decaying_matrix(m, n, 30), *copy = malloc(m * n * sizeof *copy);
    float *s_all = malloc(r * sizeof *s_all), *s1 = malloc(k * sizeof *s1), *s2 = malloc(k * sizeof *s2);
    float *u = malloc(m * k * sizeof *u);
    SvdRandOptions opt = {SVD_DEFAULT_OVERSAMPLE, SVD_DEFAULT_POWER_ITERS, 42};
    SsError err = {0, ""};
    memcpy(copy, a, m * n * sizeof *copy);
    int rc = svd_values(copy, m, n, s_all, NULL, &err);
    rc = rc ? rc : svd_topk(a, m, n, k, &opt, s1, NULL, &err);
    rc = rc ? rc : svd_topk_cuda(a, m, n, k, &opt, s2, u, &err);
    EXPECT(rc == 0, "topk (%zu, %zu) k %zu: %d %s", m, n, k, rc, err.msg);
    for (size_t j = 0; rc == 0 && j < k; j++) {
        EXPECT(fabsf(s1[j] - s2[j]) <= 1e-3f * s1[j], "topk s[%zu] cpu %g cuda %g", j, s1[j],
               s2[j]);
        EXPECT(fabsf(s_all[j] - s2[j]) <= 1e-3f * s_all[0], "topk s[%zu] exact %g cuda %g", j,
               s_all[j], s2[j]);
        double norm = 0;
        for (size_t i = 0; i < m; i++)
            norm += (double)u[i * k + j] * u[i * k + j];
        EXPECT(fabs(sqrt(norm) - 1) < 1e-3, "topk u[:, %zu] norm %g", j, sqrt(norm));
    }
    free(a), free(copy), free(s_all), free(s1), free(s2), free(u);
}

int main(void)
{
    char desc[256];
    if (device_cuda_count() == 0) {
        printf("SKIP: %s\n", device_cuda_describe(0, desc, sizeof desc));
        return 77;
    }
    check_values(64, 48);
    check_values(48, 64);
    check_values(129, 129);
    check_values(300, 17);
    check_batched(50, 20, 30);
    check_batched(6, 70, 50);
    check_topk(400, 300, 8);
    check_topk(200, 500, 5);
    check_topk(60, 40, 35); /* k + oversample >= min: the exact path */
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("svd_cuda: cuSOLVER spectra and randomized top-k agree with LAPACK\n");
    return 0;
}
