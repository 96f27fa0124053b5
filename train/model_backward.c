/* The hand-written backward pass: from dL/dlogp of the last model_forward back through lm_head,
 * the final norm, each layer's MLP and attention (in reverse), to the embedding, adding every
 * parameter's gradient into one buffer laid out as the parameters. Norm outputs and the MLP's
 * silu(gate) * up are recomputed from what the forward kept.
 *
 * Only the rows that can carry a gradient are computed: in each sequence, positions up to its
 * last target. The rows after it (the last token and the padding) feed only their own logits,
 * whose dlogp is 0 by contract, and causal attention sends no gradient backwards from them, so
 * their every gradient is exactly 0. The kept rows are packed to the front of the activations
 * once per forward (acts_pack), and every GEMM runs over them alone. */
#include "train/model_internal.h"

#include <math.h>
#include <string.h>

/* The rows of sequence b that can carry a gradient: 1 + its last position with a target. */
static size_t seq_rows(const ModelActs *a, size_t b)
{
    const int32_t *tg = a->targets + b * (size_t)a->T;
    size_t n = (size_t)a->T;
    while (n > 0 && tg[n - 1] < 0)
        n--;
    return n;
}

/* Rows rows[i] of x (rows of width w) to row i, in order (rows[i] >= i, increasing). */
static void pack_rows(float *x, size_t w, const int32_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((size_t)rows[i] != i)
            memmove(x + i * w, x + (size_t)rows[i] * w, w * sizeof(float));
}

/* Packs the kept rows of the activations the backward pass reads (once per forward). */
static void acts_pack(const ModelDims *d, ModelActs *a)
{
    if (a->packed)
        return;
    size_t n = 0, T = (size_t)a->T;
    for (size_t b = 0; b < (size_t)a->B; b++)
        for (size_t t = 0, nb = seq_rows(a, b); t < nb; t++)
            a->rows[n++] = (int32_t)(b * T + t);
    a->nrows = n;
    for (size_t l = 0; l < d->L; l++) {
        ModelLayerActs *la = &a->layer[l];
        pack_rows(la->x, d->H, a->rows, n);
        pack_rows(la->rstd1, 1, a->rows, n);
        pack_rows(la->qkv, d->QKV, a->rows, n);
        pack_rows(la->qrs, d->Q, a->rows, n);
        pack_rows(la->krs, d->K, a->rows, n);
        pack_rows(la->q, d->QD, a->rows, n);
        pack_rows(la->k, d->KD, a->rows, n);
        pack_rows(la->ctx, d->QD, a->rows, n);
        pack_rows(la->xmid, d->H, a->rows, n);
        pack_rows(la->rstd2, 1, a->rows, n);
        pack_rows(la->gu, 2 * d->I, a->rows, n);
    }
    pack_rows(a->xfin, d->H, a->rows, n);
    pack_rows(a->rstdf, 1, a->rows, n);
    pack_rows(a->hfin, d->H, a->rows, n);
    a->packed = 1;
}

/* dlogits = dlogp * (onehot(target) - softmax(logits)) for the kept rows, zero where target is
 * -1. */
static void logits_bwd(const ModelActs *a, const float *dlogp, size_t N, size_t V, float *dz)
{
    for (size_t n = 0; n < N; n++) {
        float *g = dz + n * V;
        size_t src = (size_t)a->rows[n];
        int32_t t = a->targets[src];
        if (t < 0 || dlogp[src] == 0) {
            memset(g, 0, V * sizeof(float));
            continue;
        }
        const float *z = a->logits + src * V;
        float lse = a->lse[src], s = dlogp[src];
        for (size_t v = 0; v < V; v++)
            g[v] = -s * expf(z[v] - lse);
        g[t] += s;
    }
}

/* dx (accumulated) and dw of an RMSNorm over rows of width H. */
static void rmsnorm_bwd(const float *dy, const float *x, const float *w, const float *rstd,
                        size_t rows, size_t H, float *dx, float *dw, int accumulate)
{
    for (size_t r = 0; r < rows; r++)
        model_rmsnorm_bwd_row(dy + r * H, x + r * H, w, rstd[r], H, dx + r * H, dw, accumulate);
}

/* Attention backward for one layer: from dctx to dq, dk (rotated, normed space) and dv (written
 * into the v part of dqkv), over the kept rows (sequence b's n_b rows follow sequence b-1's; its
 * probabilities are the top-left n_b x n_b corner of its (T, T) block). Per (sequence, key-value
 * head), the query heads of its group in order, so dk and dv are summed in a fixed order. */
static void attention_bwd(const ModelDims *d, const ModelLayerActs *la, ModelActs *a, size_t B,
                          size_t T)
{
    float scale = (float)(1.0 / sqrt((double)d->D));
    size_t group = d->Q / d->K;
    float *dS = a->datt;
    for (size_t b = 0, r0 = 0; b < B; r0 += seq_rows(a, b), b++) {
        size_t n = seq_rows(a, b);
        if (n == 0)
            continue;
        for (size_t g = 0; g < d->K; g++) {
            const float *k = la->k + r0 * d->KD + g * d->D;
            const float *v = la->qkv + r0 * d->QKV + d->QD + d->KD + g * d->D;
            float *dk = a->dk + r0 * d->KD + g * d->D;
            float *dv = a->dqkv + r0 * d->QKV + d->QD + d->KD + g * d->D;
            for (size_t r = 0; r < group; r++) {
                size_t h = g * group + r;
                float beta = r == 0 ? 0.0f : 1.0f;
                const float *q = la->q + r0 * d->QD + h * d->D;
                const float *dctx = a->dctx + r0 * d->QD + h * d->D;
                const float *P = la->att + (b * d->Q + h) * T * T;
                /* dv += P^T dctx; dP = dctx v^T */
                model_gemm(1, 0, n, d->D, n, 1, P, T, dctx, d->QD, beta, dv, d->QKV);
                model_gemm(0, 1, n, n, d->D, 1, dctx, d->QD, v, d->QKV, 0, dS, n);
                /* dS = P * (dP - sum_j P dP) * scale, causal */
                for (size_t i = 0; i < n; i++) {
                    const float *p = P + i * T;
                    float *s = dS + i * n;
                    float dot = 0;
                    for (size_t j = 0; j <= i; j++)
                        dot += p[j] * s[j];
                    for (size_t j = 0; j <= i; j++)
                        s[j] = p[j] * (s[j] - dot) * scale;
                    for (size_t j = i + 1; j < n; j++)
                        s[j] = 0;
                }
                /* dq = dS k; dk += dS^T q */
                model_gemm(0, 0, n, d->D, n, 1, dS, n, k, d->KD, 0, a->dq + r0 * d->QD + h * d->D,
                           d->QD);
                model_gemm(1, 0, n, d->D, n, 1, dS, n, q, d->QD, beta, dk, d->KD);
            }
        }
    }
}

/* From gradients of the rotated, normed heads (dsrc, rows of nh heads of D, stride ldsrc) to the
 * projections' gradients (ddst, stride lddst), adding the norm weight's gradient to dw (w and dw
 * NULL: no per-head norm). */
static void qk_norm_rope_bwd(float *dsrc, size_t ldsrc, const float *x, size_t ldx,
                             const float *w, const float *rstd, size_t rows, size_t nh, size_t D,
                             const ModelActs *a, size_t T, float *ddst, size_t lddst, float *dw)
{
    size_t half = D / 2;
    for (size_t r = 0; r < rows; r++) {
        size_t t = (size_t)a->rows[r] % T;
        for (size_t h = 0; h < nh; h++) {
            float *dy = dsrc + r * ldsrc + h * D;
            model_rope_row_bwd(dy, a->rope_cos + t * half, a->rope_sin + t * half, D);
            if (!w) { /* no per-head norm: the rotation was all */
                memcpy(ddst + r * lddst + h * D, dy, D * sizeof(float));
                continue;
            }
            model_rmsnorm_bwd_row(dy, x + r * ldx + h * D, w, rstd[r * nh + h], D,
                                  ddst + r * lddst + h * D, dw, 0);
        }
    }
}

void model_backward(const Model *m, const float *params, ModelActs *a, const float *dlogp,
                    float *grads)
{
    const ModelImpl *im = model_impl(m);
    ModelDims d = model_dims(&m->cfg);
    size_t B = (size_t)a->B, T = (size_t)a->T;
    acts_pack(&d, a);
    size_t N = a->nrows; /* the kept rows, packed */
    /* lm_head and the final norm */
    logits_bwd(a, dlogp, N, d.V, a->dlogits);
    model_gemm(1, 0, d.V, d.H, N, 1, a->dlogits, d.V, a->hfin, d.H, 1, grads + im->lm_head, d.H);
    model_gemm(0, 0, N, d.H, d.V, 1, a->dlogits, d.V, params + im->lm_head, d.H, 0, a->dh, d.H);
    rmsnorm_bwd(a->dh, a->xfin, params + im->norm, a->rstdf, N, d.H, a->dx, grads + im->norm, 0);
    for (size_t l = d.L; l-- > 0;) {
        const ModelLayerOff *lo = &im->layer[l];
        const ModelLayerActs *la = &a->layer[l];
        /* MLP: x_next = xmid + down(silu(g) * u), dx holds dL/dx_next */
        for (size_t n = 0; n < N; n++) { /* sigmoid(gate) kept in dgu's gate half for below */
            const float *g = la->gu + n * 2 * d.I, *u = g + d.I;
            float *y = a->mlp + n * d.I, *sig = a->dgu + n * 2 * d.I;
            for (size_t i = 0; i < d.I; i++) {
                sig[i] = 1.0f / (1.0f + expf(-g[i]));
                y[i] = g[i] * sig[i] * u[i];
            }
        }
        model_gemm(1, 0, d.H, d.I, N, 1, a->dx, d.H, a->mlp, d.I, 1, grads + lo->wd, d.I);
        model_gemm(0, 0, N, d.I, d.H, 1, a->dx, d.H, params + lo->wd, d.I, 0, a->dmlp, d.I);
        for (size_t n = 0; n < N; n++) {
            const float *g = la->gu + n * 2 * d.I, *u = g + d.I, *dy = a->dmlp + n * d.I;
            float *dg = a->dgu + n * 2 * d.I, *du = dg + d.I;
            for (size_t i = 0; i < d.I; i++) {
                float sg = dg[i];
                du[i] = dy[i] * (g[i] * sg);
                dg[i] = dy[i] * u[i] * (sg * (1.0f + g[i] * (1.0f - sg)));
            }
        }
        model_rmsnorm_apply(la->xmid, params + lo->post_norm, la->rstd2, N, d.H, a->h);
        model_gemm(1, 0, 2 * d.I, d.H, N, 1, a->dgu, 2 * d.I, a->h, d.H, 1, grads + lo->wgu, d.H);
        model_gemm(0, 0, N, d.H, 2 * d.I, 1, a->dgu, 2 * d.I, params + lo->wgu, d.H, 0, a->dh,
                   d.H);
        rmsnorm_bwd(a->dh, la->xmid, params + lo->post_norm, la->rstd2, N, d.H, a->dx,
                    grads + lo->post_norm, 1);
        /* attention: xmid = x + o(ctx), dx now holds dL/dxmid */
        model_gemm(1, 0, d.H, d.QD, N, 1, a->dx, d.H, la->ctx, d.QD, 1, grads + lo->wo, d.QD);
        model_gemm(0, 0, N, d.QD, d.H, 1, a->dx, d.H, params + lo->wo, d.QD, 0, a->dctx, d.QD);
        attention_bwd(&d, la, a, B, T);
        qk_norm_rope_bwd(a->dq, d.QD, la->qkv, d.QKV, model_qnorm(im, params, l), la->qrs, N,
                         d.Q, d.D, a, T, a->dqkv, d.QKV,
                         im->qk_norm ? grads + lo->q_norm : NULL);
        qk_norm_rope_bwd(a->dk, d.KD, la->qkv + d.QD, d.QKV, model_knorm(im, params, l), la->krs,
                         N, d.K, d.D, a, T, a->dqkv + d.QD, d.QKV,
                         im->qk_norm ? grads + lo->k_norm : NULL);
        if (im->qkv_bias) { /* the q/k/v biases: column sums of dqkv, rows in order */
            float *gb = grads + lo->bqkv;
            for (size_t n = 0; n < N; n++) {
                const float *dr = a->dqkv + n * d.QKV;
                for (size_t j = 0; j < d.QKV; j++)
                    gb[j] += dr[j];
            }
        }
        model_rmsnorm_apply(la->x, params + lo->in_norm, la->rstd1, N, d.H, a->h);
        model_gemm(1, 0, d.QKV, d.H, N, 1, a->dqkv, d.QKV, a->h, d.H, 1, grads + lo->wqkv, d.H);
        model_gemm(0, 0, N, d.H, d.QKV, 1, a->dqkv, d.QKV, params + lo->wqkv, d.H, 0, a->dh, d.H);
        rmsnorm_bwd(a->dh, la->x, params + lo->in_norm, la->rstd1, N, d.H, a->dx,
                    grads + lo->in_norm, 1);
    }
    /* the embedding lookup, rows in order */
    float *gemb = grads + im->embed;
    for (size_t n = 0; n < N; n++) {
        int32_t t = a->tokens[a->rows[n]];
        if (t < 0 || (size_t)t >= d.V)
            continue;
        float *g = gemb + (size_t)t * d.H;
        const float *dx = a->dx + n * d.H;
        for (size_t j = 0; j < d.H; j++)
            g[j] += dx[j];
    }
}
