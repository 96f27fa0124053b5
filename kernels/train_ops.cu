/* The CUDA kernels of the trainer ops (kernels/train_ops.h). Each kernel calls the element or row
 * functions of kernels/train_elem.h that the CPU twins (train_ops_cpu.c) call, one thread per
 * element, per row or per sequence, or one block per row where a row is a long reduction (the
 * RMSNorm and log-sum-exp sums, in double, as a tree: the only place where the order differs from
 * the twins). Compiled with --fmad=false (kernels/meson.build): no fused multiply-add except the
 * explicit fmaf of the optimizers, so float arithmetic rounds as on the CPU.
 *
 * Everything runs on the default stream in issue order; each launch is checked with
 * cudaGetLastError (CUDA_TRY: the call, file, line and CUDA's error string in the SsError). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

extern "C" {
#include "formats/ss_error.h"
#include "kernels/train_ops.h"
}
#include "kernels/cuda_check.h"
#include "kernels/train_elem.h"

#define TOPS_BLOCK 256
#define TOPS_NORM_BLOCK 4096

/* Every CUDA runtime call is checked (kernels/cuda_check.h). */
#define CUDA_TRY(call) SS_CUDA_TRY("train ops", call)

/* Checks the launch just queued. */
#define LAUNCHED() CUDA_TRY(cudaGetLastError())

static unsigned grid_for(size_t n)
{
    size_t g = (n + TOPS_BLOCK - 1) / TOPS_BLOCK;
    if (g < 1)
        g = 1;
    return g > 65535u * 32u ? 65535u * 32u : (unsigned)g; /* kernels loop (grid-stride) */
}

#define GRID_STRIDE(i, n)                                                                   \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                 \
         i += (size_t)gridDim.x * blockDim.x)

/* Sum over the block (TOPS_BLOCK threads) of v, in a fixed tree order; the result in every
 * thread. sh holds TOPS_BLOCK doubles. */
__device__ static double block_sum(double v, double *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = TOPS_BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

__device__ static float block_max(float v, float *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = TOPS_BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
            sh[threadIdx.x] = sh[threadIdx.x + s] > sh[threadIdx.x] ? sh[threadIdx.x + s]
                                                                    : sh[threadIdx.x];
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

/* ---- device memory ---- */

extern "C" void *tops_dev_alloc(size_t bytes, SsError *err)
{
    void *d = NULL;
    cudaError_t e = cudaMalloc(&d, bytes ? bytes : 1);
    if (e == cudaSuccess)
        e = cudaMemset(d, 0, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        if (d)
            cudaFree(d);
        ss_cuda_fail(err, "train ops", e, "cudaMalloc", __FILE__, __LINE__);
        return NULL;
    }
    return d;
}

extern "C" void tops_dev_free(void *d)
{
    if (d)
        cudaFree(d);
}

extern "C" int tops_dev_upload(void *d, const void *h, size_t bytes, SsError *err)
{
    CUDA_TRY(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return SS_OK;
}

extern "C" int tops_dev_download(void *h, const void *d, size_t bytes, SsError *err)
{
    CUDA_TRY(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
    return SS_OK;
}

extern "C" int tops_dev_copy(void *dst, const void *src, size_t bytes, SsError *err)
{
    if (bytes)
        CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
    return SS_OK;
}

extern "C" int tops_dev_zero(void *d, size_t bytes, SsError *err)
{
    if (bytes)
        CUDA_TRY(cudaMemsetAsync(d, 0, bytes, 0));
    return SS_OK;
}

extern "C" int tops_dev_sync(SsError *err)
{
    CUDA_TRY(cudaDeviceSynchronize());
    return SS_OK;
}

/* ---- RMSNorm: one block per vector ---- */

__global__ static void rmsnorm_fwd_kernel(const float *x, size_t ldx, const float *w, size_t nh,
                                          size_t D, double eps, float *y, size_t ldy, float *rstd)
{
    __shared__ double sh[TOPS_BLOCK];
    size_t r = blockIdx.x / nh, h = blockIdx.x % nh;
    const float *xr = x + r * ldx + h * D;
    float *yr = y + r * ldy + h * D;
    if (!w) {
        for (size_t j = threadIdx.x; j < D; j += TOPS_BLOCK)
            yr[j] = xr[j];
        if (threadIdx.x == 0)
            rstd[blockIdx.x] = 1.0f;
        return;
    }
    double acc = 0.0;
    for (size_t j = threadIdx.x; j < D; j += TOPS_BLOCK)
        acc += (double)xr[j] * xr[j];
    float s = te_rmsnorm_rstd(block_sum(acc, sh), D, eps);
    for (size_t j = threadIdx.x; j < D; j += TOPS_BLOCK)
        yr[j] = te_rmsnorm_y(xr[j], s, w[j]);
    if (threadIdx.x == 0)
        rstd[blockIdx.x] = s;
}

extern "C" int tops_rmsnorm_fwd_cuda(const float *x, size_t ldx, const float *w, size_t rows,
                                     size_t nh, size_t D, double eps, float *y, size_t ldy,
                                     float *rstd, SsError *err)
{
    if (rows * nh == 0)
        return SS_OK;
    rmsnorm_fwd_kernel<<<(unsigned)(rows * nh), TOPS_BLOCK>>>(x, ldx, w, nh, D, eps, y, ldy, rstd);
    LAUNCHED();
    return SS_OK;
}

__global__ static void rmsnorm_dx_kernel(const float *dy, size_t lddy, const float *x, size_t ldx,
                                         const float *w, const float *rstd, size_t nh, size_t D,
                                         float *dx, size_t lddx, int accumulate)
{
    __shared__ double sh[TOPS_BLOCK];
    size_t r = blockIdx.x / nh, h = blockIdx.x % nh;
    const float *g = dy + r * lddy + h * D, *xr = x + r * ldx + h * D;
    float *o = dx + r * lddx + h * D;
    float s = rstd[blockIdx.x];
    double acc = 0.0;
    for (size_t j = threadIdx.x; j < D; j += TOPS_BLOCK)
        acc += te_rmsnorm_dot_term(g[j], w[j], xr[j]);
    float c = te_rmsnorm_c(s, block_sum(acc, sh), D);
    for (size_t j = threadIdx.x; j < D; j += TOPS_BLOCK) {
        float v = te_rmsnorm_dx(g[j], w[j], xr[j], s, c);
        o[j] = accumulate ? o[j] + v : v;
    }
}

/* dw_j += rows, then heads, in order: the twin's order, so the same bits. */
__global__ static void rmsnorm_dw_kernel(const float *dy, size_t lddy, const float *x, size_t ldx,
                                         const float *rstd, size_t rows, size_t nh, size_t D,
                                         float *dw)
{
    GRID_STRIDE(j, D) {
        float a = dw[j];
        for (size_t r = 0; r < rows; r++)
            for (size_t h = 0; h < nh; h++)
                a += te_rmsnorm_dw(dy[r * lddy + h * D + j], x[r * ldx + h * D + j],
                                   rstd[r * nh + h]);
        dw[j] = a;
    }
}

extern "C" int tops_rmsnorm_bwd_cuda(const float *dy, size_t lddy, const float *x, size_t ldx,
                                     const float *w, const float *rstd, size_t rows, size_t nh,
                                     size_t D, float *dx, size_t lddx, float *dw, int accumulate,
                                     SsError *err)
{
    if (rows * nh == 0)
        return SS_OK;
    /* dw first: it reads dy, which may share memory with dx */
    rmsnorm_dw_kernel<<<grid_for(D), TOPS_BLOCK>>>(dy, lddy, x, ldx, rstd, rows, nh, D, dw);
    LAUNCHED();
    rmsnorm_dx_kernel<<<(unsigned)(rows * nh), TOPS_BLOCK>>>(dy, lddy, x, ldx, w, rstd, nh, D, dx,
                                                             lddx, accumulate);
    LAUNCHED();
    return SS_OK;
}

/* ---- rotary embedding: one thread per pair ---- */

__global__ static void rope_kernel(float *x, size_t ldx, size_t rows, size_t nh, size_t D,
                                   const float *cos_t, const float *sin_t, const int32_t *pos,
                                   size_t T, int bwd)
{
    size_t half = D / 2;
    GRID_STRIDE(e, rows * nh * half) {
        size_t i = e % half, h = (e / half) % nh, r = e / half / nh;
        size_t t = pos ? (size_t)pos[r] : r % T;
        float *v = x + r * ldx + h * D;
        float c = cos_t[t * half + i], s = sin_t[t * half + i];
        if (bwd)
            te_rope_bwd(&v[i], &v[i + half], c, s);
        else
            te_rope_fwd(&v[i], &v[i + half], c, s);
    }
}

extern "C" int tops_rope_fwd_cuda(float *x, size_t ldx, size_t rows, size_t nh, size_t D,
                                  const float *cos_t, const float *sin_t, const int32_t *pos,
                                  size_t T, SsError *err)
{
    size_t n = rows * nh * (D / 2);
    if (n == 0)
        return SS_OK;
    rope_kernel<<<grid_for(n), TOPS_BLOCK>>>(x, ldx, rows, nh, D, cos_t, sin_t, pos, T, 0);
    LAUNCHED();
    return SS_OK;
}

extern "C" int tops_rope_bwd_cuda(float *dx, size_t ldx, size_t rows, size_t nh, size_t D,
                                  const float *cos_t, const float *sin_t, const int32_t *pos,
                                  size_t T, SsError *err)
{
    size_t n = rows * nh * (D / 2);
    if (n == 0)
        return SS_OK;
    rope_kernel<<<grid_for(n), TOPS_BLOCK>>>(dx, ldx, rows, nh, D, cos_t, sin_t, pos, T, 1);
    LAUNCHED();
    return SS_OK;
}

/* ---- attention: one thread per query row (forward, dq) or key row (dk, dv) ---- */

__global__ static void attn_fwd_kernel(TopsAttnShape s, float scale, const float *q,
                                       const float *k, const float *v, float *P, float *ctx)
{
    size_t T = s.T, D = s.D, group = s.Q / s.K;
    GRID_STRIDE(e, s.B * s.Q * T) {
        size_t i = e % T, h = (e / T) % s.Q, b = e / T / s.Q;
        size_t g = h / group;
        te_attn_fwd_row(q + (b * T + i) * s.ldq + h * D, k + b * T * s.ldk + g * D, s.ldk,
                        v + b * T * s.ldv + g * D, s.ldv, i, T, D, scale, P + e * T,
                        ctx + (b * T + i) * s.ldc + h * D);
    }
}

extern "C" int tops_attn_fwd_cuda(const TopsAttnShape *s, const float *q, const float *k,
                                  const float *v, float *P, float *ctx, SsError *err)
{
    size_t n = s->B * s->Q * s->T;
    if (n == 0)
        return SS_OK;
    float scale = (float)(1.0 / sqrt((double)s->D));
    attn_fwd_kernel<<<grid_for(n), TOPS_BLOCK>>>(*s, scale, q, k, v, P, ctx);
    LAUNCHED();
    return SS_OK;
}

__global__ static void attn_bwd_q_kernel(TopsAttnShape s, float scale, const float *k,
                                         const float *v, const float *P, const float *dctx,
                                         float *dS, float *dq)
{
    size_t T = s.T, D = s.D, group = s.Q / s.K;
    GRID_STRIDE(e, s.B * s.Q * T) {
        size_t i = e % T, h = (e / T) % s.Q, b = e / T / s.Q;
        size_t g = h / group;
        te_attn_bwd_row_q(P + e * T, dctx + (b * T + i) * s.ldc + h * D,
                          k + b * T * s.ldk + g * D, s.ldk, v + b * T * s.ldv + g * D, s.ldv, i,
                          T, D, scale, dS + e * T, dq + (b * T + i) * s.ldq + h * D);
    }
}

__global__ static void attn_bwd_kv_kernel(TopsAttnShape s, const float *q, const float *P,
                                          const float *dctx, const float *dS, float *dk,
                                          float *dv)
{
    size_t T = s.T, D = s.D, group = s.Q / s.K;
    GRID_STRIDE(e, s.B * s.K * T) {
        size_t j = e % T, g = (e / T) % s.K, b = e / T / s.K;
        size_t h0 = g * group, blk = (b * s.Q + h0) * T * T;
        te_attn_bwd_row_kv(P + blk, dS + blk, q + b * T * s.ldq + h0 * D, s.ldq,
                           dctx + b * T * s.ldc + h0 * D, s.ldc, group, j, T, D,
                           dk + (b * T + j) * s.ldk + g * D, dv + (b * T + j) * s.ldv + g * D);
    }
}

extern "C" int tops_attn_bwd_cuda(const TopsAttnShape *s, const float *q, const float *k,
                                  const float *v, const float *P, const float *dctx, float *dS,
                                  float *dq, float *dk, float *dv, SsError *err)
{
    size_t nq = s->B * s->Q * s->T, nk = s->B * s->K * s->T;
    if (nq == 0)
        return SS_OK;
    float scale = (float)(1.0 / sqrt((double)s->D));
    attn_bwd_q_kernel<<<grid_for(nq), TOPS_BLOCK>>>(*s, scale, k, v, P, dctx, dS, dq);
    LAUNCHED();
    attn_bwd_kv_kernel<<<grid_for(nk), TOPS_BLOCK>>>(*s, q, P, dctx, dS, dk, dv);
    LAUNCHED();
    return SS_OK;
}

/* ---- SwiGLU, embedding, column sums ---- */

__global__ static void swiglu_fwd_kernel(const float *gu, size_t rows, size_t ni, float *y)
{
    GRID_STRIDE(e, rows * ni) {
        size_t r = e / ni, i = e % ni;
        y[e] = te_swiglu_y(gu[r * 2 * ni + i], gu[r * 2 * ni + ni + i]);
    }
}

extern "C" int tops_swiglu_fwd_cuda(const float *gu, size_t rows, size_t ni, float *y,
                                    SsError *err)
{
    if (rows * ni == 0)
        return SS_OK;
    swiglu_fwd_kernel<<<grid_for(rows * ni), TOPS_BLOCK>>>(gu, rows, ni, y);
    LAUNCHED();
    return SS_OK;
}

__global__ static void swiglu_bwd_kernel(const float *gu, const float *dy, size_t rows, size_t ni,
                                         float *dgu)
{
    GRID_STRIDE(e, rows * ni) {
        size_t r = e / ni, i = e % ni;
        te_swiglu_bwd(gu[r * 2 * ni + i], gu[r * 2 * ni + ni + i], dy[e], &dgu[r * 2 * ni + i],
                      &dgu[r * 2 * ni + ni + i]);
    }
}

extern "C" int tops_swiglu_bwd_cuda(const float *gu, const float *dy, size_t rows, size_t ni,
                                    float *dgu, SsError *err)
{
    if (rows * ni == 0)
        return SS_OK;
    swiglu_bwd_kernel<<<grid_for(rows * ni), TOPS_BLOCK>>>(gu, dy, rows, ni, dgu);
    LAUNCHED();
    return SS_OK;
}

__global__ static void embed_fwd_kernel(const float *emb, const int32_t *tokens, size_t N,
                                        size_t V, size_t H, float *x)
{
    GRID_STRIDE(e, N * H) {
        int32_t t = tokens[e / H];
        x[e] = t >= 0 && (size_t)t < V ? emb[(size_t)t * H + e % H] : 0.0f;
    }
}

extern "C" int tops_embed_fwd_cuda(const float *emb, const int32_t *tokens, size_t N, size_t V,
                                   size_t H, float *x, SsError *err)
{
    if (N * H == 0)
        return SS_OK;
    embed_fwd_kernel<<<grid_for(N * H), TOPS_BLOCK>>>(emb, tokens, N, V, H, x);
    LAUNCHED();
    return SS_OK;
}

/* One thread per column: rows added in order (several rows may share a token). */
__global__ static void embed_bwd_kernel(const float *dx, const int32_t *tokens, size_t N,
                                        size_t V, size_t H, float *demb)
{
    GRID_STRIDE(j, H) {
        for (size_t n = 0; n < N; n++) {
            int32_t t = tokens[n];
            if (t >= 0 && (size_t)t < V)
                demb[(size_t)t * H + j] += dx[n * H + j];
        }
    }
}

extern "C" int tops_embed_bwd_cuda(const float *dx, const int32_t *tokens, size_t N, size_t V,
                                   size_t H, float *demb, SsError *err)
{
    if (N * H == 0)
        return SS_OK;
    embed_bwd_kernel<<<grid_for(H), TOPS_BLOCK>>>(dx, tokens, N, V, H, demb);
    LAUNCHED();
    return SS_OK;
}

__global__ static void add_bias_kernel(float *x, size_t ldx, const float *b, size_t rows,
                                       size_t w)
{
    GRID_STRIDE(e, rows * w) {
        x[(e / w) * ldx + e % w] += b[e % w];
    }
}

extern "C" int tops_add_bias_cuda(float *x, size_t ldx, const float *b, size_t rows, size_t w,
                                  SsError *err)
{
    if (rows * w == 0)
        return SS_OK;
    add_bias_kernel<<<grid_for(rows * w), TOPS_BLOCK>>>(x, ldx, b, rows, w);
    LAUNCHED();
    return SS_OK;
}

__global__ static void colsum_kernel(const float *x, size_t ldx, size_t rows, size_t w,
                                     float *out)
{
    GRID_STRIDE(j, w) {
        float a = out[j];
        for (size_t r = 0; r < rows; r++)
            a += x[r * ldx + j];
        out[j] = a;
    }
}

extern "C" int tops_colsum_add_cuda(const float *x, size_t ldx, size_t rows, size_t w,
                                    float *out, SsError *err)
{
    if (w == 0)
        return SS_OK;
    colsum_kernel<<<grid_for(w), TOPS_BLOCK>>>(x, ldx, rows, w, out);
    LAUNCHED();
    return SS_OK;
}

/* ---- logits: one block per row ---- */

__global__ static void logits_fwd_kernel(const float *logits, const int32_t *targets, size_t V,
                                         float *lse, float *logp, float *entropy)
{
    __shared__ double sh[TOPS_BLOCK];
    __shared__ float shf[TOPS_BLOCK];
    size_t n = blockIdx.x;
    const float *z = logits + n * V;
    float mx = z[0];
    for (size_t v = threadIdx.x; v < V; v += TOPS_BLOCK)
        mx = z[v] > mx ? z[v] : mx;
    mx = block_max(mx, shf);
    double sum = 0.0, wsum = 0.0;
    for (size_t v = threadIdx.x; v < V; v += TOPS_BLOCK) {
        double e, we;
        te_lse_terms(z[v], mx, &e, &we);
        sum += e;
        wsum += we;
    }
    sum = block_sum(sum, sh);
    wsum = block_sum(wsum, sh);
    if (threadIdx.x == 0) {
        int32_t t = targets[n];
        int has = t >= 0 && (size_t)t < V;
        float ent;
        te_lse_finish(mx, sum, wsum, has, has ? z[t] : 0.0f, &lse[n], &logp[n], &ent);
        if (entropy)
            entropy[n] = ent;
    }
}

extern "C" int tops_logits_fwd_cuda(const float *logits, const int32_t *targets, size_t N,
                                    size_t V, float *lse, float *logp, float *entropy,
                                    SsError *err)
{
    if (N == 0)
        return SS_OK;
    logits_fwd_kernel<<<(unsigned)N, TOPS_BLOCK>>>(logits, targets, V, lse, logp, entropy);
    LAUNCHED();
    return SS_OK;
}

__global__ static void logits_bwd_kernel(const float *logits, const float *lse,
                                         const int32_t *targets, const float *dlogp, size_t N,
                                         size_t V, float *dlogits)
{
    GRID_STRIDE(e, N * V) {
        size_t n = e / V, v = e % V;
        int32_t t = targets[n];
        float s = dlogp[n];
        if (t < 0 || (size_t)t >= V || s == 0.0f)
            dlogits[e] = 0.0f;
        else
            dlogits[e] = te_dlogit(logits[e], lse[n], s, v == (size_t)t);
    }
}

extern "C" int tops_logits_bwd_cuda(const float *logits, const float *lse, const int32_t *targets,
                                    const float *dlogp, size_t N, size_t V, float *dlogits,
                                    SsError *err)
{
    if (N * V == 0)
        return SS_OK;
    logits_bwd_kernel<<<grid_for(N * V), TOPS_BLOCK>>>(logits, lse, targets, dlogp, N, V,
                                                       dlogits);
    LAUNCHED();
    return SS_OK;
}

/* ---- GRPO: one thread per sequence; the per-sequence sums are added on the host in order ---- */

__global__ static void grpo_count_kernel(const uint8_t *mask, int B, int T, long *nb)
{
    GRID_STRIDE(b, (size_t)B) {
        long c = 0;
        for (int t = 0; t < T; t++)
            c += mask[b * (size_t)T + t] != 0;
        nb[b] = c;
    }
}

/* part (B, 4): w * l, w * pg and kl summed over the sequence, clipped tokens. */
__global__ static void grpo_seq_kernel(TopsGrpoConfig cfg, int B, int T, const float *logp,
                                       const float *logp_old, const float *logp_ref,
                                       const uint8_t *mask, const float *adv, const long *nb,
                                       float *dlogp, double *part)
{
    GRID_STRIDE(b, (size_t)B) {
        long ntok = 0, nseq = 0;
        for (int i = 0; i < B; i++) {
            ntok += nb[i];
            nseq += nb[i] > 0;
        }
        const double lo = 1.0 - (double)cfg.clip_low, hi = 1.0 + (double)cfg.clip_high;
        const int use_kl = cfg.beta != 0.0f && logp_ref != NULL;
        double w = te_grpo_weight(cfg.agg, ntok, nseq, nb[b], B, T);
        size_t row = b * (size_t)T;
        double sl, sp, sk;
        long nc;
        te_grpo_seq(logp + row, logp_old + row, use_kl ? logp_ref + row : NULL, mask + row,
                    adv[b], T, w, lo, hi, cfg.beta, use_kl, dlogp + row, &sl, &sp, &sk, &nc);
        part[4 * b] = sl;
        part[4 * b + 1] = sp;
        part[4 * b + 2] = sk;
        part[4 * b + 3] = (double)nc;
    }
}

extern "C" int tops_grpo_loss_cuda(const TopsGrpoConfig *cfg, int B, int T, const float *logp,
                                   const float *logp_old, const float *logp_ref,
                                   const uint8_t *mask, const float *adv, float *dlogp,
                                   TopsGrpoStats *st, SsError *err)
{
    st->loss = st->pg_loss = st->kl = st->clip_frac = 0.0;
    st->tokens = 0;
    if (B <= 0 || T <= 0)
        return SS_OK;
    long *d_nb = NULL;
    double *d_part = NULL;
    long *nb = (long *)malloc((size_t)B * sizeof *nb);
    double *part = (double *)malloc((size_t)B * 4 * sizeof *part);
    int rc = SS_OK;
    cudaError_t e = cudaSuccess;
    if (!nb || !part) {
        rc = ss_err(err, SS_EOUTPUT, "train ops: out of memory");
        goto done;
    }
    if ((e = cudaMalloc((void **)&d_nb, (size_t)B * sizeof *d_nb)) != cudaSuccess ||
        (e = cudaMalloc((void **)&d_part, (size_t)B * 4 * sizeof *d_part)) != cudaSuccess) {
        rc = ss_cuda_fail(err, "train ops", e, "cudaMalloc", __FILE__, __LINE__);
        goto done;
    }
    grpo_count_kernel<<<grid_for((size_t)B), TOPS_BLOCK>>>(mask, B, T, d_nb);
    grpo_seq_kernel<<<grid_for((size_t)B), TOPS_BLOCK>>>(*cfg, B, T, logp, logp_old, logp_ref,
                                                         mask, adv, d_nb, dlogp, d_part);
    if ((e = cudaGetLastError()) != cudaSuccess ||
        (e = cudaMemcpy(nb, d_nb, (size_t)B * sizeof *nb, cudaMemcpyDeviceToHost)) !=
            cudaSuccess ||
        (e = cudaMemcpy(part, d_part, (size_t)B * 4 * sizeof *part, cudaMemcpyDeviceToHost)) !=
            cudaSuccess) {
        rc = ss_cuda_fail(err, "train ops", e, "grpo loss kernels", __FILE__, __LINE__);
        goto done;
    }
    {
        long ntok = 0, nclip = 0;
        double kl_sum = 0.0;
        for (int b = 0; b < B; b++) {
            ntok += nb[b];
            st->loss += part[4 * b];
            st->pg_loss += part[4 * b + 1];
            kl_sum += part[4 * b + 2];
            nclip += (long)part[4 * b + 3];
        }
        st->kl = ntok > 0 ? kl_sum / (double)ntok : 0.0;
        st->clip_frac = ntok > 0 ? (double)nclip / (double)ntok : 0.0;
        st->tokens = ntok;
    }
done:
    cudaFree(d_nb);
    cudaFree(d_part);
    free(nb);
    free(part);
    return rc;
}

/* ---- optimizers ---- */

/* One block per 4096-element chunk: its sum of squares (tree order within the chunk). */
__global__ static void sumsq_kernel(const float *g, const uint8_t *mask, size_t n, double *part)
{
    __shared__ double sh[TOPS_BLOCK];
    size_t b0 = (size_t)blockIdx.x * TOPS_NORM_BLOCK;
    size_t b1 = n - b0 < TOPS_NORM_BLOCK ? n : b0 + TOPS_NORM_BLOCK;
    double s = 0.0;
    for (size_t i = b0 + threadIdx.x; i < b1; i += TOPS_BLOCK)
        if (!mask || mask[i])
            s += (double)g[i] * (double)g[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s;
}

extern "C" int tops_sumsq_cuda(const float *g, const uint8_t *mask, size_t n, double *out,
                               SsError *err)
{
    *out = 0.0;
    if (n == 0)
        return SS_OK;
    size_t nb = (n + TOPS_NORM_BLOCK - 1) / TOPS_NORM_BLOCK;
    double *d_part = NULL;
    double *part = (double *)malloc(nb * sizeof *part);
    if (!part)
        return ss_err(err, SS_EOUTPUT, "train ops: out of memory");
    cudaError_t e = cudaMalloc((void **)&d_part, nb * sizeof *d_part);
    if (e == cudaSuccess) {
        for (size_t b = 0; b < nb && e == cudaSuccess; b += 65535) {
            size_t k = nb - b < 65535 ? nb - b : 65535;
            sumsq_kernel<<<(unsigned)k, TOPS_BLOCK>>>(g + b * TOPS_NORM_BLOCK,
                                                      mask ? mask + b * TOPS_NORM_BLOCK : NULL,
                                                      n - b * TOPS_NORM_BLOCK, d_part + b);
            e = cudaGetLastError();
        }
    }
    if (e == cudaSuccess)
        e = cudaMemcpy(part, d_part, nb * sizeof *part, cudaMemcpyDeviceToHost);
    cudaFree(d_part);
    if (e != cudaSuccess) {
        free(part);
        return ss_cuda_fail(err, "train ops", e, "sumsq kernel", __FILE__, __LINE__);
    }
    double total = 0.0;
    for (size_t b = 0; b < nb; b++)
        total += part[b];
    free(part);
    *out = total;
    return SS_OK;
}

__global__ static void scale_kernel(float *g, const uint8_t *mask, size_t n, float c)
{
    GRID_STRIDE(i, n) {
        if (!mask || mask[i])
            g[i] = g[i] * c;
    }
}

extern "C" int tops_scale_cuda(float *g, const uint8_t *mask, size_t n, float c, SsError *err)
{
    if (n == 0)
        return SS_OK;
    scale_kernel<<<grid_for(n), TOPS_BLOCK>>>(g, mask, n, c);
    LAUNCHED();
    return SS_OK;
}

__global__ static void sgd_kernel(float *p, const float *g, float *buf, const uint8_t *mask,
                                  size_t n, float neg_lr, float wd, float mom, int first)
{
    GRID_STRIDE(i, n) {
        te_sgd(&p[i], g[i], buf ? &buf[i] : NULL, !mask || mask[i], neg_lr, wd, mom, first);
    }
}

extern "C" int tops_sgd_cuda(float *p, const float *g, float *buf, const uint8_t *mask, size_t n,
                             float neg_lr, float wd, float mom, int first, SsError *err)
{
    if (n == 0)
        return SS_OK;
    sgd_kernel<<<grid_for(n), TOPS_BLOCK>>>(p, g, buf, mask, n, neg_lr, wd, mom, first);
    LAUNCHED();
    return SS_OK;
}

__global__ static void adamw_kernel(float *p, const float *g, float *m, float *v,
                                    const uint8_t *mask, size_t n, TopsAdamw a)
{
    GRID_STRIDE(i, n) {
        te_adamw(&p[i], g[i], &m[i], &v[i], !mask || mask[i], a.decay, a.b1, a.c1, a.b2, a.c2,
                 a.bc2_sqrt, a.eps, a.neg_step);
    }
}

extern "C" int tops_adamw_cuda(float *p, const float *g, float *m, float *v, const uint8_t *mask,
                               size_t n, const TopsAdamw *a, SsError *err)
{
    if (n == 0)
        return SS_OK;
    adamw_kernel<<<grid_for(n), TOPS_BLOCK>>>(p, g, m, v, mask, n, *a);
    LAUNCHED();
    return SS_OK;
}
