/* The hand-written backward pass: from dL/dlogp of the last model_forward back through lm_head,
 * the final norm, each layer's MLP and attention (in reverse), to the embedding, adding every
 * parameter's gradient into one buffer laid out as the parameters. Norm outputs and the MLP's
 * silu(gate) * up are recomputed from what the forward kept.
 *
 * It works on model_forward's packed rows (ModelGroup in model_internal.h): in each sequence only
 * the positions up to its last target (the rows after it feed only their own logits, whose dlogp
 * is 0 by contract, and causal attention sends no gradient backwards from them, so their every
 * gradient is exactly 0), and a group's shared prompt rows once: they receive the sum of the
 * gradients of every member (their keys and values from every member's queries, and their
 * logits from every member's targets). */
#include "train/model_internal.h"

#include <math.h>
#include <string.h>

/* dlogits = sum over the positions (b, t) a packed row serves of dlogp[b,t] * (onehot(target) -
 * softmax(logits)), i.e. -(sum of their dlogp) * softmax + each one's dlogp at its target; zero
 * where none has a target and a nonzero dlogp. Positions in (b, t) order. */
static void logits_bwd(ModelActs *a, const float *dlogp, size_t N, size_t V, float *dz)
{
    size_t BT = (size_t)a->B * (size_t)a->T;
    float *sum = a->dsum;
    memset(sum, 0, N * sizeof *sum);
    for (size_t n = 0; n < BT; n++) {
        int32_t r = a->rowmap[n];
        if (r >= 0 && a->targets[n] >= 0 && dlogp[n] != 0)
            sum[r] += dlogp[n];
    }
    for (size_t n = 0; n < N; n++) {
        float *g = dz + n * V;
        const float *z = a->logits + n * V;
        float lse = a->lse[n], s = sum[n];
        for (size_t v = 0; v < V; v++)
            g[v] = -s * expf(z[v] - lse);
    }
    for (size_t n = 0; n < BT; n++) {
        int32_t r = a->rowmap[n], t = a->targets[n];
        if (r >= 0 && t >= 0 && dlogp[n] != 0)
            dz[(size_t)r * V + (size_t)t] += dlogp[n];
    }
}

/* dx (accumulated) and dw of an RMSNorm over rows of width H. */
static void rmsnorm_bwd(const float *dy, const float *x, const float *w, const float *rstd,
                        size_t rows, size_t H, float *dx, float *dw, int accumulate)
{
    for (size_t r = 0; r < rows; r++)
        model_rmsnorm_bwd_row(dy + r * H, x + r * H, w, rstd[r], H, dx + r * H, dw, accumulate);
}

/* dS = P * (dP - sum_j P dP) * scale over rows rows of stride W, row i's first off + i + 1
 * entries (causal_softmax's), zero beyond. */
static void softmax_bwd(const float *Pr, float *dS, size_t rows, size_t W, size_t off, float scale)
{
    for (size_t i = 0; i < rows; i++) {
        const float *p = Pr + i * W;
        float *s = dS + i * W;
        size_t lim = off + i + 1;
        float dot = 0;
        for (size_t j = 0; j < lim; j++)
            dot += p[j] * s[j];
        for (size_t j = 0; j < lim; j++)
            s[j] = p[j] * (s[j] - dot) * scale;
        for (size_t j = lim; j < W; j++)
            s[j] = 0;
    }
}

/* Attention backward for one layer: from dctx to dq, dk (rotated, normed space) and dv (written
 * into the v part of dqkv), per (group, key-value head), the query heads of its group in order,
 * each over the prefix rows then every member's suffix rows (attention_fwd's blocks), so the
 * prefix's dk and dv sum the gradients of every member in a fixed order. */
static void attention_bwd(const ModelDims *d, const ModelLayerActs *la, ModelActs *a)
{
    float scale = (float)(1.0 / sqrt((double)d->D));
    size_t group = d->Q / d->K, voff = d->QD + d->KD;
    float *dS = a->datt;
    for (int gi = 0; gi < a->ngroups; gi++) {
        const ModelGroup *gr = &a->groups[gi];
        size_t P = (size_t)gr->P, r0 = (size_t)gr->row0;
        if (P == 0)
            continue; /* no rows (members join only a prefix of MODEL_SHARE_MIN or more) */
        for (size_t kh = 0; kh < d->K; kh++) {
            const float *kp = la->k + r0 * d->KD + kh * d->D;
            const float *vp = la->qkv + r0 * d->QKV + voff + kh * d->D;
            float *dkp = a->dk + r0 * d->KD + kh * d->D;
            float *dvp = a->dqkv + r0 * d->QKV + voff + kh * d->D;
            for (size_t rr = 0; rr < group; rr++) {
                size_t h = kh * group + rr;
                float beta = rr == 0 ? 0.0f : 1.0f;
                const float *qp = la->q + r0 * d->QD + h * d->D;
                const float *dcp = a->dctx + r0 * d->QD + h * d->D;
                const float *A = la->att + gr->att + h * gr->att_h;
                /* the prefix: dv = P^T dctx; dP = dctx v^T; dq = dS k; dk = dS^T q */
                model_gemm(1, 0, P, d->D, P, 1, A, P, dcp, d->QD, beta, dvp, d->QKV);
                model_gemm(0, 1, P, P, d->D, 1, dcp, d->QD, vp, d->QKV, 0, dS, P);
                softmax_bwd(A, dS, P, P, 0, scale);
                model_gemm(0, 0, P, d->D, P, 1, dS, P, kp, d->KD, 0,
                           a->dq + r0 * d->QD + h * d->D, d->QD);
                model_gemm(1, 0, P, d->D, P, 1, dS, P, qp, d->QD, beta, dkp, d->KD);
                A += P * P;
                for (int b = gr->b0; b < gr->b0 + gr->nb; b++) {
                    size_t S = (size_t)a->seqs[b].S, r = (size_t)a->seqs[b].row, W = P + S;
                    if (S == 0)
                        continue;
                    const float *qs = la->q + r * d->QD + h * d->D;
                    const float *ks = la->k + r * d->KD + kh * d->D;
                    const float *vs = la->qkv + r * d->QKV + voff + kh * d->D;
                    const float *dcs = a->dctx + r * d->QD + h * d->D;
                    float *dks = a->dk + r * d->KD + kh * d->D;
                    float *dvs = a->dqkv + r * d->QKV + voff + kh * d->D;
                    float *dqs = a->dq + r * d->QD + h * d->D;
                    model_gemm(1, 0, P, d->D, S, 1, A, W, dcs, d->QD, 1, dvp, d->QKV);
                    model_gemm(1, 0, S, d->D, S, 1, A + P, W, dcs, d->QD, beta, dvs, d->QKV);
                    model_gemm(0, 1, S, P, d->D, 1, dcs, d->QD, vp, d->QKV, 0, dS, W);
                    model_gemm(0, 1, S, S, d->D, 1, dcs, d->QD, vs, d->QKV, 0, dS + P, W);
                    softmax_bwd(A, dS, S, W, P, scale);
                    model_gemm(0, 0, S, d->D, S, 1, dS + P, W, ks, d->KD, 0, dqs, d->QD);
                    model_gemm(0, 0, S, d->D, P, 1, dS, W, kp, d->KD, 1, dqs, d->QD);
                    model_gemm(1, 0, P, d->D, S, 1, dS, W, qs, d->QD, 1, dkp, d->KD);
                    model_gemm(1, 0, S, d->D, S, 1, dS + P, W, qs, d->QD, beta, dks, d->KD);
                    A += S * W;
                }
            }
        }
    }
}

/* From gradients of the rotated, normed heads (dsrc, rows of nh heads of D, stride ldsrc) to the
 * projections' gradients (ddst, stride lddst), adding the norm weight's gradient to dw (w and dw
 * NULL: no per-head norm). */
static void qk_norm_rope_bwd(float *dsrc, size_t ldsrc, const float *x, size_t ldx,
                             const float *w, const float *rstd, size_t rows, size_t nh, size_t D,
                             const ModelActs *a, float *ddst, size_t lddst, float *dw)
{
    size_t half = D / 2;
    for (size_t r = 0; r < rows; r++) {
        size_t t = (size_t)a->pos[r];
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
    size_t N = a->nrows; /* the packed rows */
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
        attention_bwd(&d, la, a);
        qk_norm_rope_bwd(a->dq, d.QD, la->qkv, d.QKV, model_qnorm(im, params, l), la->qrs, N,
                         d.Q, d.D, a, a->dqkv, d.QKV,
                         im->qk_norm ? grads + lo->q_norm : NULL);
        qk_norm_rope_bwd(a->dk, d.KD, la->qkv + d.QD, d.QKV, model_knorm(im, params, l), la->krs,
                         N, d.K, d.D, a, a->dqkv + d.QD, d.QKV,
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
