/* The model's shared compute helpers: a row-major GEMM wrapper over OpenBLAS, RMSNorm forward
 * and backward, the rotary embedding and the per-head norm + rotation used by both the training
 * forward and the sampler. */
#include "train/model_internal.h"

#include <cblas.h>
#include <math.h>

void model_gemm(int transa, int transb, size_t M, size_t N, size_t K, float alpha, const float *A,
                size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    cblas_sgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans,
                transb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A, (int)lda, B,
                (int)ldb, beta, C, (int)ldc);
}

void model_add_bias(float *x, size_t ldx, const float *b, size_t rows, size_t w)
{
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ldx;
        for (size_t j = 0; j < w; j++)
            xr[j] += b[j];
    }
}

/* sum of a[j] * b[j] in double, in eight fixed lanes (vectorizable, the same order on every
 * call), the lanes then summed pairwise. */
static double dot8(const float *a, const float *b, size_t n)
{
    double acc[8] = {0};
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++)
            acc[u] += (double)a[j + u] * b[j + u];
    double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; j < n; j++)
        s += (double)a[j] * b[j];
    return s;
}

static float row_rstd(const float *x, size_t H, double eps)
{
    return (float)(1.0 / sqrt(dot8(x, x, H) / (double)H + eps));
}

void model_rmsnorm_fwd(const float *x, const float *w, size_t rows, size_t H, double eps,
                       float *y, float *rstd)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * H;
        float *yr = y + r * H;
        float s = row_rstd(xr, H, eps);
        rstd[r] = s;
        for (size_t j = 0; j < H; j++)
            yr[j] = xr[j] * s * w[j];
    }
}

void model_rmsnorm_apply(const float *x, const float *w, const float *rstd, size_t rows, size_t H,
                         float *y)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * H;
        float *yr = y + r * H;
        float s = rstd[r];
        for (size_t j = 0; j < H; j++)
            yr[j] = xr[j] * s * w[j];
    }
}

/* y_j = w_j x_j r with r = (mean(x^2) + eps)^(-1/2):
 * dx_k = r g_k - r^3 x_k (sum_j g_j x_j) / H where g = dy * w; dw_j += dy_j x_j r. */
void model_rmsnorm_bwd_row(const float *dy, const float *x, const float *w, float rstd, size_t H,
                           float *dx, float *dw, int accumulate)
{
    double acc[8] = {0}, dot;
    size_t j = 0;
    for (; j + 8 <= H; j += 8)
        for (int u = 0; u < 8; u++)
            acc[u] += (double)dy[j + u] * w[j + u] * x[j + u];
    dot = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; j < H; j++)
        dot += (double)dy[j] * w[j] * x[j];
    float c = (float)((double)rstd * rstd * rstd * dot / (double)H);
    if (accumulate)
        for (size_t j = 0; j < H; j++)
            dx[j] += rstd * (dy[j] * w[j]) - c * x[j];
    else
        for (size_t j = 0; j < H; j++)
            dx[j] = rstd * (dy[j] * w[j]) - c * x[j];
    for (size_t j = 0; j < H; j++)
        dw[j] += dy[j] * (x[j] * rstd);
}

void model_rope_table(int T, int D, double theta, float *cos_t, float *sin_t)
{
    size_t half = (size_t)D / 2;
    for (size_t i = 0; i < half; i++) {
        double inv_freq = pow(theta, -2.0 * (double)i / (double)D);
        for (size_t t = 0; t < (size_t)T; t++) {
            double a = (double)t * inv_freq;
            cos_t[t * half + i] = (float)cos(a);
            sin_t[t * half + i] = (float)sin(a);
        }
    }
}

/* out = x cos + rotate_half(x) sin, rotate_half(x) = (-x2, x1); cos and sin repeat per half. */
void model_rope_row(float *x, const float *c, const float *s, size_t D)
{
    size_t h = D / 2;
    for (size_t i = 0; i < h; i++) {
        float a = x[i], b = x[i + h];
        x[i] = a * c[i] - b * s[i];
        x[i + h] = b * c[i] + a * s[i];
    }
}

void model_rope_row_bwd(float *dx, const float *c, const float *s, size_t D)
{
    size_t h = D / 2;
    for (size_t i = 0; i < h; i++) {
        float a = dx[i], b = dx[i + h];
        dx[i] = a * c[i] + b * s[i];
        dx[i + h] = b * c[i] - a * s[i];
    }
}

void model_qk_norm_rope(const float *src, size_t lds, const float *w, size_t rows, size_t nh,
                        size_t D, double eps, const float *cos_t, const float *sin_t,
                        const int *pos, size_t T, float *dst, size_t ldd, float *rstd)
{
    size_t half = D / 2;
    for (size_t r = 0; r < rows; r++) {
        size_t t = pos ? (size_t)pos[r] : r % T;
        for (size_t h = 0; h < nh; h++) {
            const float *x = src + r * lds + h * D;
            float *y = dst + r * ldd + h * D;
            if (!w) {
                rstd[r * nh + h] = 1.0f;
                for (size_t j = 0; j < D; j++)
                    y[j] = x[j];
                model_rope_row(y, cos_t + t * half, sin_t + t * half, D);
                continue;
            }
            float s = row_rstd(x, D, eps);
            rstd[r * nh + h] = s;
            for (size_t j = 0; j < D; j++)
                y[j] = x[j] * s * w[j];
            model_rope_row(y, cos_t + t * half, sin_t + t * half, D);
        }
    }
}
