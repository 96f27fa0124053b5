/* The CPU twins of the trainer ops (kernels/train_ops.h): plain loops over the element and row
 * functions of kernels/train_elem.h, which the CUDA kernels call too. Built with
 * -ffp-contract=off (kernels/meson.build) so that no expression is fused behind our back. One
 * thread; they define what the CUDA kernels must compute. */
#include "kernels/train_ops.h"

#include <math.h>
#include <string.h>

#include "kernels/train_elem.h"

#define TOPS_NORM_BLOCK 4096 /* train/optim.c's blocks of the gradient norm's double sum */

/* sum of a[j] * b[j] in double in eight fixed lanes, the lanes summed pairwise: the order of
 * train/model_ops.c's row sums, so the twin's RMSNorm has the trainer's bits. */
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

/* ---- RMSNorm ---- */

void tops_rmsnorm_fwd_cpu(const float *x, size_t ldx, const float *w, size_t rows, size_t nh,
                          size_t D, double eps, float *y, size_t ldy, float *rstd)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < nh; h++) {
            const float *xr = x + r * ldx + h * D;
            float *yr = y + r * ldy + h * D;
            if (!w) {
                rstd[r * nh + h] = 1.0f;
                if (yr != xr)
                    memmove(yr, xr, D * sizeof(float));
                continue;
            }
            float s = te_rmsnorm_rstd(dot8(xr, xr, D), D, eps);
            rstd[r * nh + h] = s;
            for (size_t j = 0; j < D; j++)
                yr[j] = te_rmsnorm_y(xr[j], s, w[j]);
        }
}

void tops_rmsnorm_bwd_cpu(const float *dy, size_t lddy, const float *x, size_t ldx,
                          const float *w, const float *rstd, size_t rows, size_t nh, size_t D,
                          float *dx, size_t lddx, float *dw, int accumulate)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < nh; h++) {
            const float *g = dy + r * lddy + h * D, *xr = x + r * ldx + h * D;
            float *o = dx + r * lddx + h * D;
            float s = rstd[r * nh + h];
            double acc[8] = {0}, dot;
            size_t j = 0;
            for (; j + 8 <= D; j += 8)
                for (int u = 0; u < 8; u++)
                    acc[u] += te_rmsnorm_dot_term(g[j + u], w[j + u], xr[j + u]);
            dot = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            for (; j < D; j++)
                dot += te_rmsnorm_dot_term(g[j], w[j], xr[j]);
            float c = te_rmsnorm_c(s, dot, D);
            for (j = 0; j < D; j++) {
                float v = te_rmsnorm_dx(g[j], w[j], xr[j], s, c);
                o[j] = accumulate ? o[j] + v : v;
            }
            for (j = 0; j < D; j++)
                dw[j] += te_rmsnorm_dw(g[j], xr[j], s);
        }
}

/* ---- rotary embedding ---- */

void tops_rope_table(int T, int D, double theta, float *cos_t, float *sin_t)
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

static void rope_cpu(float *x, size_t ldx, size_t rows, size_t nh, size_t D, const float *cos_t,
                     const float *sin_t, const int32_t *pos, size_t T, int bwd)
{
    size_t half = D / 2;
    for (size_t r = 0; r < rows; r++) {
        size_t t = pos ? (size_t)pos[r] : r % T;
        const float *c = cos_t + t * half, *s = sin_t + t * half;
        for (size_t h = 0; h < nh; h++) {
            float *v = x + r * ldx + h * D;
            for (size_t i = 0; i < half; i++) {
                if (bwd)
                    te_rope_bwd(&v[i], &v[i + half], c[i], s[i]);
                else
                    te_rope_fwd(&v[i], &v[i + half], c[i], s[i]);
            }
        }
    }
}

void tops_rope_fwd_cpu(float *x, size_t ldx, size_t rows, size_t nh, size_t D,
                       const float *cos_t, const float *sin_t, const int32_t *pos, size_t T)
{
    rope_cpu(x, ldx, rows, nh, D, cos_t, sin_t, pos, T, 0);
}

void tops_rope_bwd_cpu(float *dx, size_t ldx, size_t rows, size_t nh, size_t D,
                       const float *cos_t, const float *sin_t, const int32_t *pos, size_t T)
{
    rope_cpu(dx, ldx, rows, nh, D, cos_t, sin_t, pos, T, 1);
}

/* ---- attention ---- */

void tops_attn_fwd_cpu(const TopsAttnShape *s, const float *q, const float *k, const float *v,
                       float *P, float *ctx)
{
    float scale = (float)(1.0 / sqrt((double)s->D));
    size_t group = s->Q / s->K, T = s->T, D = s->D;
    for (size_t b = 0; b < s->B; b++)
        for (size_t h = 0; h < s->Q; h++) {
            size_t g = h / group;
            const float *kb = k + b * T * s->ldk + g * D, *vb = v + b * T * s->ldv + g * D;
            for (size_t i = 0; i < T; i++)
                te_attn_fwd_row(q + (b * T + i) * s->ldq + h * D, kb, s->ldk, vb, s->ldv, i, T, D,
                                scale, P + ((b * s->Q + h) * T + i) * T,
                                ctx + (b * T + i) * s->ldc + h * D);
        }
}

void tops_attn_bwd_cpu(const TopsAttnShape *s, const float *q, const float *k, const float *v,
                       const float *P, const float *dctx, float *dS, float *dq, float *dk,
                       float *dv)
{
    float scale = (float)(1.0 / sqrt((double)s->D));
    size_t group = s->Q / s->K, T = s->T, D = s->D;
    for (size_t b = 0; b < s->B; b++)
        for (size_t h = 0; h < s->Q; h++) {
            size_t g = h / group;
            const float *kb = k + b * T * s->ldk + g * D, *vb = v + b * T * s->ldv + g * D;
            for (size_t i = 0; i < T; i++) {
                size_t prow = ((b * s->Q + h) * T + i) * T;
                te_attn_bwd_row_q(P + prow, dctx + (b * T + i) * s->ldc + h * D, kb, s->ldk, vb,
                                  s->ldv, i, T, D, scale, dS + prow,
                                  dq + (b * T + i) * s->ldq + h * D);
            }
        }
    for (size_t b = 0; b < s->B; b++)
        for (size_t g = 0; g < s->K; g++) {
            size_t h0 = g * group, blk = (b * s->Q + h0) * T * T;
            for (size_t j = 0; j < T; j++)
                te_attn_bwd_row_kv(P + blk, dS + blk, q + b * T * s->ldq + h0 * D, s->ldq,
                                   dctx + b * T * s->ldc + h0 * D, s->ldc, group, j, T, D,
                                   dk + (b * T + j) * s->ldk + g * D,
                                   dv + (b * T + j) * s->ldv + g * D);
        }
}

/* ---- SwiGLU, embedding, column sums ---- */

void tops_swiglu_fwd_cpu(const float *gu, size_t rows, size_t ni, float *y)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < ni; i++)
            y[r * ni + i] = te_swiglu_y(gu[r * 2 * ni + i], gu[r * 2 * ni + ni + i]);
}

void tops_swiglu_bwd_cpu(const float *gu, const float *dy, size_t rows, size_t ni, float *dgu)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < ni; i++)
            te_swiglu_bwd(gu[r * 2 * ni + i], gu[r * 2 * ni + ni + i], dy[r * ni + i],
                          &dgu[r * 2 * ni + i], &dgu[r * 2 * ni + ni + i]);
}

void tops_embed_fwd_cpu(const float *emb, const int32_t *tokens, size_t N, size_t V, size_t H,
                        float *x)
{
    for (size_t n = 0; n < N; n++) {
        int32_t t = tokens[n];
        if (t >= 0 && (size_t)t < V)
            memcpy(x + n * H, emb + (size_t)t * H, H * sizeof(float));
        else
            memset(x + n * H, 0, H * sizeof(float));
    }
}

void tops_embed_bwd_cpu(const float *dx, const int32_t *tokens, size_t N, size_t V, size_t H,
                        float *demb)
{
    for (size_t n = 0; n < N; n++) {
        int32_t t = tokens[n];
        if (t < 0 || (size_t)t >= V)
            continue;
        for (size_t j = 0; j < H; j++)
            demb[(size_t)t * H + j] += dx[n * H + j];
    }
}

void tops_add_bias_cpu(float *x, size_t ldx, const float *b, size_t rows, size_t w)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < w; j++)
            x[r * ldx + j] += b[j];
}

void tops_colsum_add_cpu(const float *x, size_t ldx, size_t rows, size_t w, float *out)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < w; j++)
            out[j] += x[r * ldx + j];
}

/* ---- logits ---- */

void tops_logits_fwd_cpu(const float *logits, const int32_t *targets, size_t N, size_t V,
                         float *lse, float *logp, float *entropy)
{
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * V;
        float mx = z[0];
        for (size_t v = 1; v < V; v++)
            mx = z[v] > mx ? z[v] : mx;
        double sum = 0, wsum = 0;
        for (size_t v = 0; v < V; v++) {
            double e, we;
            te_lse_terms(z[v], mx, &e, &we);
            sum += e;
            wsum += we;
        }
        int32_t t = targets[n];
        int has = t >= 0 && (size_t)t < V;
        float ent;
        te_lse_finish(mx, sum, wsum, has, has ? z[t] : 0.0f, &lse[n], &logp[n], &ent);
        if (entropy)
            entropy[n] = ent;
    }
}

void tops_logits_bwd_cpu(const float *logits, const float *lse, const int32_t *targets,
                         const float *dlogp, size_t N, size_t V, float *dlogits)
{
    for (size_t n = 0; n < N; n++) {
        float *g = dlogits + n * V;
        int32_t t = targets[n];
        if (t < 0 || (size_t)t >= V || dlogp[n] == 0) {
            memset(g, 0, V * sizeof(float));
            continue;
        }
        const float *z = logits + n * V;
        for (size_t v = 0; v < V; v++)
            g[v] = te_dlogit(z[v], lse[n], dlogp[n], v == (size_t)t);
    }
}

/* ---- GRPO ---- */

void tops_grpo_loss_cpu(const TopsGrpoConfig *cfg, int B, int T, const float *logp,
                        const float *logp_old, const float *logp_ref, const uint8_t *mask,
                        const float *adv, float *dlogp, TopsGrpoStats *st)
{
    const double lo = 1.0 - (double)cfg->clip_low, hi = 1.0 + (double)cfg->clip_high;
    const int use_kl = cfg->beta != 0.0f && logp_ref != NULL;
    long ntok = 0, nseq = 0;
    for (int b = 0; b < B; b++) {
        long nb = 0;
        for (int t = 0; t < T; t++)
            nb += mask[(size_t)b * T + t] != 0;
        ntok += nb;
        nseq += nb > 0;
    }
    double loss = 0, pg_loss = 0, kl_sum = 0;
    long nclip = 0;
    for (int b = 0; b < B; b++) {
        size_t row = (size_t)b * (size_t)T;
        long nb = 0;
        for (int t = 0; t < T; t++)
            nb += mask[row + t] != 0;
        double w = te_grpo_weight(cfg->agg, ntok, nseq, nb, B, T);
        double sl, sp, sk;
        long nc;
        te_grpo_seq(logp + row, logp_old + row, use_kl ? logp_ref + row : NULL, mask + row,
                    adv[b], T, w, lo, hi, cfg->beta, use_kl, dlogp + row, &sl, &sp, &sk, &nc);
        loss += sl;
        pg_loss += sp;
        kl_sum += sk;
        nclip += nc;
    }
    st->loss = loss;
    st->pg_loss = pg_loss;
    st->kl = ntok > 0 ? kl_sum / (double)ntok : 0.0;
    st->clip_frac = ntok > 0 ? (double)nclip / (double)ntok : 0.0;
    st->tokens = ntok;
}

/* ---- optimizers ---- */

double tops_sumsq_cpu(const float *g, const uint8_t *mask, size_t n)
{
    double total = 0.0;
    for (size_t b0 = 0; b0 < n; b0 += TOPS_NORM_BLOCK) {
        size_t b1 = n - b0 < TOPS_NORM_BLOCK ? n : b0 + TOPS_NORM_BLOCK;
        double s = 0.0;
        for (size_t i = b0; i < b1; i++)
            if (!mask || mask[i])
                s += (double)g[i] * (double)g[i];
        total += s;
    }
    return total;
}

float tops_clip_coef(double norm, double max_norm)
{
    if (max_norm <= 0.0)
        return 1.0f;
    float tn = (float)norm;
    float c;
    if (isinf(tn))
        c = (float)(max_norm / (norm + 1e-6));
    else
        c = (1.0f / (tn + (float)1e-6)) * (float)max_norm;
    return c < 1.0f ? c : 1.0f;
}

void tops_scale_cpu(float *g, const uint8_t *mask, size_t n, float c)
{
    for (size_t i = 0; i < n; i++)
        g[i] = !mask || mask[i] ? g[i] * c : g[i];
}

void tops_sgd_cpu(float *p, const float *g, float *buf, const uint8_t *mask, size_t n,
                  float neg_lr, float wd, float mom, int first)
{
    for (size_t i = 0; i < n; i++)
        te_sgd(&p[i], g[i], buf ? &buf[i] : NULL, !mask || mask[i], neg_lr, wd, mom, first);
}

TopsAdamw tops_adamw_scalars(double lr, double weight_decay, double beta1, double beta2,
                             double eps, long step)
{
    const double bc1 = 1.0 - pow(beta1, (double)step);
    const double bc2 = 1.0 - pow(beta2, (double)step);
    TopsAdamw a;
    a.decay = (float)(1.0 - lr * weight_decay);
    a.b1 = (float)beta1;
    a.c1 = (float)(1.0 - beta1);
    a.b2 = (float)beta2;
    a.c2 = (float)(1.0 - beta2);
    a.bc2_sqrt = (float)sqrt(bc2);
    a.eps = (float)eps;
    a.neg_step = (float)-(lr / bc1);
    return a;
}

void tops_adamw_cpu(float *p, const float *g, float *m, float *v, const uint8_t *mask, size_t n,
                    const TopsAdamw *a)
{
    for (size_t i = 0; i < n; i++)
        te_adamw(&p[i], g[i], &m[i], &v[i], !mask || mask[i], a->decay, a->b1, a->c1, a->b2,
                 a->c2, a->bc2_sqrt, a->eps, a->neg_step);
}
