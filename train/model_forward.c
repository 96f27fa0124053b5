/* The training forward pass over a batch of B sequences of T tokens, all B*T rows at once
 * through each projection (one GEMM each), attention per (sequence, head), and the storage of
 * the activations that model_backward reads (struct ModelActs in model_internal.h). */
#include "train/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- activation storage ---- */

typedef struct Carve {
    float *base;
    size_t used;
} Carve;

static float *carve(Carve *c, size_t n)
{
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(size_t)15; /* 64-byte aligned pieces */
    return p;
}

/* Assigns every pointer of a from c (a dry run when c->base is NULL, to size it). */
static void acts_layout(const ModelDims *d, size_t N, size_t BQTT, size_t T, ModelActs *a,
                        Carve *c)
{
    for (size_t l = 0; l < d->L; l++) {
        ModelLayerActs *la = &a->layer[l];
        la->x = carve(c, N * d->H);
        la->rstd1 = carve(c, N);
        la->qkv = carve(c, N * d->QKV);
        la->qrs = carve(c, N * d->Q);
        la->krs = carve(c, N * d->K);
        la->q = carve(c, N * d->QD);
        la->k = carve(c, N * d->KD);
        la->att = carve(c, BQTT);
        la->ctx = carve(c, N * d->QD);
        la->xmid = carve(c, N * d->H);
        la->rstd2 = carve(c, N);
        la->gu = carve(c, N * 2 * d->I);
    }
    a->xfin = carve(c, N * d->H);
    a->rstdf = carve(c, N);
    a->hfin = carve(c, N * d->H);
    a->logits = carve(c, N * d->V);
    a->lse = carve(c, N);
    a->tokens = (int32_t *)carve(c, N);
    a->targets = (int32_t *)carve(c, N);
    a->rope_cos = carve(c, T * (d->D / 2));
    a->rope_sin = carve(c, T * (d->D / 2));
    a->h = carve(c, N * d->H);
    a->dx = carve(c, N * d->H);
    a->dh = carve(c, N * d->H);
    a->dqkv = carve(c, N * d->QKV);
    a->dq = carve(c, N * d->QD);
    a->dk = carve(c, N * d->KD);
    a->dctx = carve(c, N * d->QD);
    a->dgu = carve(c, N * 2 * d->I);
    a->mlp = carve(c, N * d->I);
    a->dmlp = carve(c, N * d->I);
    a->dlogits = carve(c, N * d->V);
    a->datt = carve(c, T * T);
    a->rows = (int32_t *)carve(c, N);
}

int model_acts_create(const Model *m, int B, int T, ModelActs **out, SsError *err)
{
    *out = NULL;
    if (B <= 0 || T <= 0 || T > m->cfg.max_position_embeddings)
        return ss_err(err, SS_EUSAGE,
                      "model activations: need B > 0 and 0 < T <= max_position_embeddings %d "
                      "(B %d, T %d)",
                      m->cfg.max_position_embeddings, B, T);
    ModelDims d = model_dims(&m->cfg);
    size_t N = (size_t)B * (size_t)T;
    size_t BQTT = N * d.Q * (size_t)T;
    /* The largest per-layer piece bounds the rest; each is a few of these. */
    size_t widest = d.QKV > 2 * d.I ? d.QKV : 2 * d.I;
    if (widest < d.V)
        widest = d.V;
    if (N > (size_t)INT32_MAX || N > SIZE_MAX / 64 / widest / (d.L + 2) ||
        BQTT / N / d.Q != (size_t)T || BQTT > SIZE_MAX / 64 / (d.L + 1))
        return ss_err(err, SS_EUSAGE, "model activations: B %d x T %d is too large", B, T);
    ModelActs *a = calloc(1, sizeof *a);
    if (a)
        a->layer = calloc(d.L, sizeof *a->layer);
    if (!a || !a->layer) {
        free(a);
        return ss_err(err, SS_EOUTPUT, "model activations: out of memory");
    }
    Carve c = {NULL, 0};
    acts_layout(&d, N, BQTT, (size_t)T, a, &c);
    if (posix_memalign(&a->mem, 64, c.used * sizeof(float)) != 0) {
        free(a->layer);
        free(a);
        return ss_err(err, SS_EOUTPUT, "model activations: out of memory (%zu MiB)",
                      c.used * sizeof(float) >> 20);
    }
    memset(a->mem, 0, c.used * sizeof(float));
    c = (Carve){a->mem, 0};
    acts_layout(&d, N, BQTT, (size_t)T, a, &c);
    a->Bmax = B;
    a->Tmax = T;
    model_rope_table(T, m->cfg.head_dim, m->cfg.rope_theta, a->rope_cos, a->rope_sin);
    *out = a;
    return SS_OK;
}

void model_acts_free(ModelActs *a)
{
    if (!a)
        return;
    free(a->mem);
    free(a->layer);
    free(a);
}

const float *model_acts_logits(const ModelActs *a)
{
    return a->logits;
}

/* ---- the forward pass ---- */

/* Causal softmax of each row of S (T, T) in place, zero above the diagonal. */
static void causal_softmax(float *S, size_t T)
{
    for (size_t i = 0; i < T; i++) {
        float *r = S + i * T;
        float mx = r[0];
        for (size_t j = 1; j <= i; j++)
            mx = r[j] > mx ? r[j] : mx;
        float sum = 0;
        for (size_t j = 0; j <= i; j++) {
            r[j] = expf(r[j] - mx);
            sum += r[j];
        }
        float inv = 1.0f / sum;
        for (size_t j = 0; j <= i; j++)
            r[j] *= inv;
        for (size_t j = i + 1; j < T; j++)
            r[j] = 0;
    }
}

/* Self-attention of one layer: ctx = softmax(q k^T / sqrt(D), causal) v per (sequence, head). */
static void attention_fwd(const ModelDims *d, ModelLayerActs *la, size_t B, size_t T)
{
    float scale = (float)(1.0 / sqrt((double)d->D));
    size_t group = d->Q / d->K;
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < d->Q; h++) {
            size_t g = h / group;
            const float *q = la->q + b * T * d->QD + h * d->D;
            const float *k = la->k + b * T * d->KD + g * d->D;
            const float *v = la->qkv + b * T * d->QKV + d->QD + d->KD + g * d->D;
            float *P = la->att + (b * d->Q + h) * T * T;
            model_gemm(0, 1, T, T, d->D, scale, q, d->QD, k, d->KD, 0, P, T);
            causal_softmax(P, T);
            model_gemm(0, 0, T, d->D, T, 1, P, T, v, d->QKV, 0,
                       la->ctx + b * T * d->QD + h * d->D, d->QD);
        }
}

/* logp, entropy and the log-sum-exp of each logits row (in double: V is small). */
static void logits_stats(const float *logits, const int32_t *targets, size_t N, size_t V,
                         float *lse, float *logp, float *entropy)
{
    for (size_t n = 0; n < N; n++) {
        const float *z = logits + n * V;
        float mx = z[0];
        for (size_t v = 1; v < V; v++)
            mx = z[v] > mx ? z[v] : mx;
        double sum = 0, wsum = 0;
        for (size_t v = 0; v < V; v++) {
            double e = exp((double)z[v] - mx);
            sum += e;
            wsum += e * ((double)z[v] - mx);
        }
        double l = log(sum);
        lse[n] = (float)(mx + l);
        int32_t t = targets[n];
        if (t < 0) {
            logp[n] = 0;
            if (entropy)
                entropy[n] = 0;
            continue;
        }
        logp[n] = (float)((double)z[t] - mx - l);
        if (entropy)
            entropy[n] = (float)(l - wsum / sum);
    }
}

void model_forward(const Model *m, const float *params, const int32_t *tokens,
                   const int32_t *targets, int B_, int T_, ModelActs *a, float *logp,
                   float *entropy)
{
    const ModelImpl *im = model_impl(m);
    ModelDims d = model_dims(&m->cfg);
    size_t B = (size_t)B_, T = (size_t)T_, N = B * T;
    double eps = m->cfg.rms_norm_eps;
    a->B = B_;
    a->T = T_;
    a->packed = 0;
    memcpy(a->tokens, tokens, N * sizeof *tokens);
    for (size_t n = 0; n < N; n++) {
        int32_t t = targets[n];
        a->targets[n] = t >= 0 && (size_t)t < d.V ? t : -1;
    }
    /* The rope table was built for Tmax rows; the rows for 0..T-1 are its first T. */
    const float *emb = params + im->embed;
    float *x0 = a->layer[0].x;
    for (size_t n = 0; n < N; n++) {
        int32_t t = tokens[n];
        if (t >= 0 && (size_t)t < d.V)
            memcpy(x0 + n * d.H, emb + (size_t)t * d.H, d.H * sizeof(float));
        else
            memset(x0 + n * d.H, 0, d.H * sizeof(float));
    }
    for (size_t l = 0; l < d.L; l++) {
        const ModelLayerOff *lo = &im->layer[l];
        ModelLayerActs *la = &a->layer[l];
        /* attention block */
        model_rmsnorm_fwd(la->x, params + lo->in_norm, N, d.H, eps, a->h, la->rstd1);
        model_gemm(0, 1, N, d.QKV, d.H, 1, a->h, d.H, params + lo->wqkv, d.H, 0, la->qkv, d.QKV);
        if (im->qkv_bias)
            model_add_bias(la->qkv, d.QKV, model_bqkv(im, params, l), N, d.QKV);
        model_qk_norm_rope(la->qkv, d.QKV, model_qnorm(im, params, l), N, d.Q, d.D, eps,
                           a->rope_cos, a->rope_sin, NULL, T, la->q, d.QD, la->qrs);
        model_qk_norm_rope(la->qkv + d.QD, d.QKV, model_knorm(im, params, l), N, d.K, d.D, eps,
                           a->rope_cos, a->rope_sin, NULL, T, la->k, d.KD, la->krs);
        attention_fwd(&d, la, B, T);
        memcpy(la->xmid, la->x, N * d.H * sizeof(float));
        model_gemm(0, 1, N, d.H, d.QD, 1, la->ctx, d.QD, params + lo->wo, d.QD, 1, la->xmid, d.H);
        /* MLP block: down(silu(gate) * up) */
        model_rmsnorm_fwd(la->xmid, params + lo->post_norm, N, d.H, eps, a->h, la->rstd2);
        model_gemm(0, 1, N, 2 * d.I, d.H, 1, a->h, d.H, params + lo->wgu, d.H, 0, la->gu,
                   2 * d.I);
        for (size_t n = 0; n < N; n++) {
            const float *g = la->gu + n * 2 * d.I, *u = g + d.I;
            float *y = a->mlp + n * d.I;
            for (size_t i = 0; i < d.I; i++)
                y[i] = g[i] * (1.0f / (1.0f + expf(-g[i]))) * u[i];
        }
        float *xnext = l + 1 < d.L ? a->layer[l + 1].x : a->xfin;
        memcpy(xnext, la->xmid, N * d.H * sizeof(float));
        model_gemm(0, 1, N, d.H, d.I, 1, a->mlp, d.I, params + lo->wd, d.I, 1, xnext, d.H);
    }
    model_rmsnorm_fwd(a->xfin, params + im->norm, N, d.H, eps, a->hfin, a->rstdf);
    model_gemm(0, 1, N, d.V, d.H, 1, a->hfin, d.H, params + im->lm_head, d.H, 0, a->logits, d.V);
    logits_stats(a->logits, a->targets, N, d.V, a->lse, logp, entropy);
}
