/* The training forward pass over a batch of B sequences of T tokens: the batch's rows are packed
 * (prompt sharing and the rows after each sequence's last target, ModelGroup in
 * model_internal.h), all packed rows go at once through each projection (one GEMM each),
 * attention runs per (group, head); and the storage of the activations that model_backward reads
 * (struct ModelActs). */
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
    a->lmax = carve(c, N);
    a->lsum = (double *)carve(c, 2 * N);
    a->ent = carve(c, N);
    a->dsum = carve(c, N);
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
    a->pos = (int *)carve(c, N);
    a->rowmap = (int32_t *)carve(c, N);
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
    if (a) {
        a->layer = calloc(d.L, sizeof *a->layer);
        a->groups = calloc((size_t)B, sizeof *a->groups);
        a->seqs = calloc((size_t)B, sizeof *a->seqs);
    }
    if (!a || !a->layer || !a->groups || !a->seqs) {
        if (a) {
            free(a->layer);
            free(a->groups);
            free(a->seqs);
        }
        free(a);
        return ss_err(err, SS_EOUTPUT, "model activations: out of memory");
    }
    Carve c = {NULL, 0};
    acts_layout(&d, N, BQTT, (size_t)T, a, &c);
    if (posix_memalign(&a->mem, 64, c.used * sizeof(float)) != 0) {
        free(a->layer);
        free(a->groups);
        free(a->seqs);
        free(a);
        return ss_err(err, SS_EOUTPUT, "model activations: out of memory (%zu MiB)",
                      c.used * sizeof(float) >> 20);
    }
    memset(a->mem, 0, c.used * sizeof(float));
    c = (Carve){a->mem, 0};
    acts_layout(&d, N, BQTT, (size_t)T, a, &c);
    a->Bmax = B;
    a->Tmax = T;
    a->V = m->cfg.vocab_size;
    model_rope_table(T, m->cfg.head_dim, m->cfg.rope_theta, a->rope_cos, a->rope_sin);
    *out = a;
    return SS_OK;
}

void model_acts_free(ModelActs *a)
{
    if (!a)
        return;
    free(a->mem);
    free(a->logits_bt);
    free(a->layer);
    free(a->groups);
    free(a->seqs);
    free(a);
}

const float *model_acts_logits(ModelActs *a)
{
    size_t V = (size_t)a->V;
    if (!a->logits_bt) { /* the training loops never ask: allocated on first use */
        a->logits_bt = malloc((size_t)a->Bmax * (size_t)a->Tmax * V * sizeof(float));
        if (!a->logits_bt)
            return NULL;
    }
    if (!a->logits_bt_ok) {
        size_t N = (size_t)a->B * (size_t)a->T;
        for (size_t n = 0; n < N; n++) {
            float *dst = a->logits_bt + n * V;
            if (a->rowmap[n] >= 0)
                memcpy(dst, a->logits + (size_t)a->rowmap[n] * V, V * sizeof(float));
            else
                memset(dst, 0, V * sizeof(float));
        }
        a->logits_bt_ok = 1;
    }
    return a->logits_bt;
}

/* ---- the forward pass ---- */

/* Softmax of each of rows rows of S (stride W) in place over its first off + i + 1 entries
 * (row i), zero beyond: causal attention whose first off keys precede every query. */
static void causal_softmax(float *S, size_t rows, size_t W, size_t off)
{
    for (size_t i = 0; i < rows; i++) {
        float *r = S + i * W;
        size_t lim = off + i + 1;
        float mx = r[0];
        for (size_t j = 1; j < lim; j++)
            mx = r[j] > mx ? r[j] : mx;
        float sum = 0;
        for (size_t j = 0; j < lim; j++) {
            r[j] = expf(r[j] - mx);
            sum += r[j];
        }
        float inv = 1.0f / sum;
        for (size_t j = 0; j < lim; j++)
            r[j] *= inv;
        for (size_t j = lim; j < W; j++)
            r[j] = 0;
    }
}

/* Number of equal leading ids of sequences a and b (rows of T). */
static size_t common_prefix(const int32_t *a, const int32_t *b, size_t T)
{
    size_t n = 0;
    while (n < T && a[n] == b[n])
        n++;
    return n;
}

/* The packing of the batch (ModelGroup): groups, the rows of each sequence, the packed rows'
 * sources and positions, and the (B, T) -> packed row map. A sequence joins the group before it
 * when its first P' = min(P, common prefix with the group's first sequence) ids are shared,
 * P' >= MODEL_SHARE_MIN, and shrinking the prefix from P to P' costs the group's nb members no
 * more rows than the P it saves: nb * (P - P') <= P. */
static void acts_plan(ModelActs *a, const ModelDims *d)
{
    size_t B = (size_t)a->B, T = (size_t)a->T;
    for (size_t b = 0; b < B; b++) {
        const int32_t *tg = a->targets + b * T;
        size_t n = T;
        while (n > 0 && tg[n - 1] < 0)
            n--;
        a->seqs[b].n = (int)n;
    }
    int ng = 0;
    for (size_t b = 0; b < B;) {
        ModelGroup *g = &a->groups[ng++];
        g->b0 = (int)b;
        g->nb = 1;
        size_t P = (size_t)a->seqs[b].n;
        for (b++; b < B; b++) {
            size_t l = common_prefix(a->tokens + (size_t)g->b0 * T, a->tokens + b * T, T);
            size_t P2 = l < P ? l : P;
            if (P2 < MODEL_SHARE_MIN || (size_t)g->nb * (P - P2) > P)
                break;
            P = P2;
            g->nb++;
        }
        g->P = (int)P;
    }
    a->ngroups = ng;
    size_t row = 0, att = 0;
    for (int gi = 0; gi < ng; gi++) {
        ModelGroup *g = &a->groups[gi];
        size_t P = (size_t)g->P;
        g->row0 = (int)row;
        for (size_t t = 0; t < P; t++) {
            a->rows[row + t] = (int32_t)((size_t)g->b0 * T + t);
            a->pos[row + t] = (int)t;
        }
        row += P;
        size_t ah = P * P;
        for (int b = g->b0; b < g->b0 + g->nb; b++) {
            ModelSeq *sq = &a->seqs[b];
            size_t n = (size_t)sq->n, S = n > P ? n - P : 0;
            sq->S = (int)S;
            sq->row = (int)row;
            for (size_t t = 0; t < T; t++)
                a->rowmap[(size_t)b * T + t] =
                    t >= n ? -1 : t < P ? (int32_t)(g->row0 + t) : (int32_t)(row + t - P);
            for (size_t j = 0; j < S; j++) {
                a->rows[row + j] = (int32_t)((size_t)b * T + P + j);
                a->pos[row + j] = (int)(P + j);
            }
            row += S;
            ah += S * (P + S);
        }
        g->att = att;
        g->att_h = ah;
        att += ah * d->Q;
    }
    a->nrows = row;
}

/* Self-attention of one layer over the packed rows, per (group, head): the prefix rows causal
 * among themselves; each member's suffix rows over the prefix keys, then their own, causal. */
static void attention_fwd(const ModelDims *d, ModelLayerActs *la, const ModelActs *a)
{
    float scale = (float)(1.0 / sqrt((double)d->D));
    size_t group = d->Q / d->K, voff = d->QD + d->KD;
    for (int gi = 0; gi < a->ngroups; gi++) {
        const ModelGroup *gr = &a->groups[gi];
        size_t P = (size_t)gr->P, r0 = (size_t)gr->row0;
        for (size_t h = 0; h < d->Q; h++) {
            size_t kh = h / group;
            const float *qp = la->q + r0 * d->QD + h * d->D;
            const float *kp = la->k + r0 * d->KD + kh * d->D;
            const float *vp = la->qkv + r0 * d->QKV + voff + kh * d->D;
            float *A = la->att + gr->att + h * gr->att_h;
            if (P > 0) {
                model_gemm(0, 1, P, P, d->D, scale, qp, d->QD, kp, d->KD, 0, A, P);
                causal_softmax(A, P, P, 0);
                model_gemm(0, 0, P, d->D, P, 1, A, P, vp, d->QKV, 0,
                           la->ctx + r0 * d->QD + h * d->D, d->QD);
                A += P * P;
            }
            for (int b = gr->b0; b < gr->b0 + gr->nb; b++) {
                size_t S = (size_t)a->seqs[b].S, r = (size_t)a->seqs[b].row, W = P + S;
                if (S == 0)
                    continue;
                const float *qs = la->q + r * d->QD + h * d->D;
                const float *ks = la->k + r * d->KD + kh * d->D;
                const float *vs = la->qkv + r * d->QKV + voff + kh * d->D;
                float *ctx = la->ctx + r * d->QD + h * d->D;
                model_gemm(0, 1, S, P, d->D, scale, qs, d->QD, kp, d->KD, 0, A, W);
                model_gemm(0, 1, S, S, d->D, scale, qs, d->QD, ks, d->KD, 0, A + P, W);
                causal_softmax(A, S, W, P);
                model_gemm(0, 0, S, d->D, S, 1, A + P, W, vs, d->QKV, 0, ctx, d->QD);
                model_gemm(0, 0, S, d->D, P, 1, A, W, vp, d->QKV, 1, ctx, d->QD);
                A += S * W;
            }
        }
    }
}

/* The max, log(sum exp(z - max)), log-sum-exp and entropy of each logits row (in double: V is
 * small). */
static void logits_stats(ModelActs *a, size_t N, size_t V)
{
    for (size_t n = 0; n < N; n++) {
        const float *z = a->logits + n * V;
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
        a->lmax[n] = mx;
        a->lsum[n] = l;
        a->lse[n] = (float)(mx + l);
        a->ent[n] = (float)(l - wsum / sum);
    }
}

void model_forward(const Model *m, const float *params, const int32_t *tokens,
                   const int32_t *targets, int B_, int T_, ModelActs *a, float *logp,
                   float *entropy)
{
    const ModelImpl *im = model_impl(m);
    ModelDims d = model_dims(&m->cfg);
    size_t B = (size_t)B_, T = (size_t)T_, BT = B * T;
    double eps = m->cfg.rms_norm_eps;
    a->B = B_;
    a->T = T_;
    a->logits_bt_ok = 0;
    memcpy(a->tokens, tokens, BT * sizeof *tokens);
    for (size_t n = 0; n < BT; n++) {
        int32_t t = targets[n];
        a->targets[n] = t >= 0 && (size_t)t < d.V ? t : -1;
    }
    acts_plan(a, &d);
    size_t N = a->nrows; /* packed rows */
    /* The rope table was built for Tmax rows; positions are below T. */
    const float *emb = params + im->embed;
    float *x0 = a->layer[0].x;
    for (size_t n = 0; n < N; n++) {
        int32_t t = tokens[a->rows[n]];
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
                           a->rope_cos, a->rope_sin, a->pos, T, la->q, d.QD, la->qrs);
        model_qk_norm_rope(la->qkv + d.QD, d.QKV, model_knorm(im, params, l), N, d.K, d.D, eps,
                           a->rope_cos, a->rope_sin, a->pos, T, la->k, d.KD, la->krs);
        attention_fwd(&d, la, a);
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
    logits_stats(a, N, d.V);
    /* each position's target from the row that computed it */
    for (size_t n = 0; n < BT; n++) {
        int32_t t = a->targets[n], r = a->rowmap[n];
        if (t < 0 || r < 0) {
            logp[n] = 0;
            if (entropy)
                entropy[n] = 0;
            continue;
        }
        logp[n] = (float)((double)a->logits[(size_t)r * d.V + (size_t)t] - a->lmax[r] -
                          a->lsum[r]);
        if (entropy)
            entropy[n] = a->ent[r];
    }
}
