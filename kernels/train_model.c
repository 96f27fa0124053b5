/* The training forward and backward pass composed from the trainer ops (kernels/train_model.h),
 * written once for both backends: OP() calls tops_<op>_cpu or tops_<op>_cuda, gemm() OpenBLAS or
 * cuBLAS, on buffers of the backend's memory. The sequence of operations per row is
 * train/model_forward.c and train/model_backward.c's, but every (sequence, position) row is
 * computed: the CPU trainer's sharing of identical prompts within a group and its skipping of
 * rows after the last target are not done here, so results agree with it to float32 rounding. */
#include "kernels/train_model.h"

#include <cblas.h> /* (its openblas_config.h includes complex.h: no identifier I below) */
#include <stdlib.h>
#include <string.h>

#include "kernels/device.h"
#include "kernels/train_model_cuda.h"
#include "kernels/train_ops.h"

/* Activations of one layer kept for the backward pass (train/model_internal.h's ModelLayerActs). */
typedef struct TmLayerActs {
    float *x;     /* (N, H) the layer's input */
    float *rstd1; /* (N) */
    float *qkv;   /* (N, QKV) projections (with biases) before the head norms */
    float *qrs;   /* (N, Q) */
    float *krs;   /* (N, K) */
    float *q;     /* (N, QD) normed and rotated */
    float *k;     /* (N, KD) */
    float *att;   /* (B, Q, T, T) */
    float *ctx;   /* (N, QD) */
    float *xmid;  /* (N, H) */
    float *rstd2; /* (N) */
    float *gu;    /* (N, 2I) */
} TmLayerActs;

struct TrainModel {
    TmLayout lay;
    TmLayer *layer;
    TmBackend be;
    TmCudaGemm *gemm;
    int Bmax, Tmax, B, T;
    TmLayerActs *la;
    float *xfin, *rstdf, *hfin, *logits, *lse; /* (N, H), (N), (N, H), (N, V), (N) */
    int32_t *tokens, *targets;                 /* (N) backend copies */
    float *rope_cos, *rope_sin;                /* (Tmax, D/2) */
    float *h, *dx, *dh, *dqkv, *dq, *dk, *dctx, *dgu, *mlp, *dmlp, *dlogits, *dS;
    float *rs;                                 /* (N * max(Q, 1)) scratch scales */
    float *dlogp, *logp, *entropy;             /* (N) */
    float *mem;                                /* the one buffer all of the above live in */
    float *host_tmp;                           /* (N) host staging (CUDA) */
};

#define TRY(call)                                                                           \
    do {                                                                                    \
        int rc_ = (call);                                                                   \
        if (rc_ != 0)                                                                       \
            return rc_;                                                                     \
    } while (0)

/* One op on the model's backend; returns from the caller on a CUDA error. */
#define OP(name, ...)                                                                       \
    do {                                                                                    \
        if (tm->be == TM_CUDA)                                                              \
            TRY(tops_##name##_cuda(__VA_ARGS__, err));                                      \
        else                                                                                \
            tops_##name##_cpu(__VA_ARGS__);                                                 \
    } while (0)

static int gemm(TrainModel *tm, int ta, int tb, size_t M, size_t N, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                size_t ldc, SsError *err)
{
    if (M == 0 || N == 0)
        return 0;
    if (tm->be == TM_CUDA)
        return tm_cuda_gemm(tm->gemm, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, err);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    return 0;
}

/* ---- memory ---- */

float *tm_alloc(TrainModel *tm, size_t n, SsError *err)
{
    if (tm->be == TM_CUDA)
        return tops_dev_alloc(n * sizeof(float), err);
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p)
        ss_err(err, SS_EOUTPUT, "train model: out of memory (%zu floats)", n);
    return p;
}

void tm_release(TrainModel *tm, float *p)
{
    if (tm->be == TM_CUDA)
        tops_dev_free(p);
    else
        free(p);
}

int tm_upload(TrainModel *tm, float *dst, const float *src, size_t n, SsError *err)
{
    if (tm->be == TM_CUDA)
        return tops_dev_upload(dst, src, n * sizeof(float), err);
    memcpy(dst, src, n * sizeof(float));
    return 0;
}

int tm_download(TrainModel *tm, float *dst, const float *src, size_t n, SsError *err)
{
    if (tm->be == TM_CUDA)
        return tops_dev_download(dst, src, n * sizeof(float), err);
    memcpy(dst, src, n * sizeof(float));
    return 0;
}

int tm_zero(TrainModel *tm, float *p, size_t n, SsError *err)
{
    if (tm->be == TM_CUDA)
        return tops_dev_zero(p, n * sizeof(float), err);
    memset(p, 0, n * sizeof(float));
    return 0;
}

typedef struct Carve {
    float *base;
    size_t used;
} Carve;

static float *carve(Carve *c, size_t n)
{
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 63) & ~(size_t)63; /* 256-byte aligned pieces */
    return p;
}

static void layout(TrainModel *tm, size_t N, size_t BQTT, Carve *c)
{
    const TmLayout *d = &tm->lay;
    size_t QD = d->Q * d->D, KD = d->K * d->D, QKV = QD + 2 * KD;
    for (size_t l = 0; l < d->L; l++) {
        TmLayerActs *a = &tm->la[l];
        a->x = carve(c, N * d->H);
        a->rstd1 = carve(c, N);
        a->qkv = carve(c, N * QKV);
        a->qrs = carve(c, N * d->Q);
        a->krs = carve(c, N * d->K);
        a->q = carve(c, N * QD);
        a->k = carve(c, N * KD);
        a->att = carve(c, BQTT);
        a->ctx = carve(c, N * QD);
        a->xmid = carve(c, N * d->H);
        a->rstd2 = carve(c, N);
        a->gu = carve(c, N * 2 * d->inter);
    }
    tm->xfin = carve(c, N * d->H);
    tm->rstdf = carve(c, N);
    tm->hfin = carve(c, N * d->H);
    tm->logits = carve(c, N * d->V);
    tm->lse = carve(c, N);
    tm->tokens = (int32_t *)carve(c, N);
    tm->targets = (int32_t *)carve(c, N);
    tm->rope_cos = carve(c, (size_t)tm->Tmax * (d->D / 2));
    tm->rope_sin = carve(c, (size_t)tm->Tmax * (d->D / 2));
    tm->h = carve(c, N * d->H);
    tm->dx = carve(c, N * d->H);
    tm->dh = carve(c, N * d->H);
    tm->dqkv = carve(c, N * QKV);
    tm->dq = carve(c, N * QD);
    tm->dk = carve(c, N * KD);
    tm->dctx = carve(c, N * QD);
    tm->dgu = carve(c, N * 2 * d->inter);
    tm->mlp = carve(c, N * d->inter);
    tm->dmlp = carve(c, N * d->inter);
    tm->dlogits = carve(c, N * d->V);
    tm->dS = carve(c, BQTT);
    tm->rs = carve(c, N * (d->Q > d->K ? d->Q : d->K));
    tm->dlogp = carve(c, N);
    tm->logp = carve(c, N);
    tm->entropy = carve(c, N);
}

int tm_create(const TmLayout *lay, TmBackend be, TmGemm gm, int B, int T, TrainModel **out,
              SsError *err)
{
    *out = NULL;
    if (B <= 0 || T <= 0 || lay->L == 0 || lay->K == 0 || lay->Q % lay->K != 0 ||
        lay->D % 2 != 0 || lay->V == 0 || lay->H == 0)
        return ss_err(err, SS_EUSAGE, "train model: bad sizes (B %d, T %d)", B, T);
    if (be == TM_CPU && gm != TM_GEMM_F32)
        return ss_err(err, SS_EUSAGE, "train model: bf16 GEMMs need the CUDA backend");
    if (be == TM_CUDA && device_cuda_count() == 0) {
        char why[256];
        return ss_err(err, SS_EUSAGE, "train model: no CUDA device: %s",
                      device_cuda_describe(0, why, sizeof why));
    }
    size_t N = (size_t)B * (size_t)T, BQTT = N * lay->Q * (size_t)T;
    TrainModel *tm = calloc(1, sizeof *tm);
    if (!tm)
        return ss_err(err, SS_EOUTPUT, "train model: out of memory");
    tm->lay = *lay;
    tm->be = be;
    tm->Bmax = B;
    tm->Tmax = T;
    tm->layer = malloc(lay->L * sizeof *tm->layer);
    tm->la = calloc(lay->L, sizeof *tm->la);
    tm->host_tmp = malloc(N * sizeof(float) * 2);
    if (!tm->layer || !tm->la || !tm->host_tmp) {
        tm_free(tm);
        return ss_err(err, SS_EOUTPUT, "train model: out of memory");
    }
    memcpy(tm->layer, lay->layer, lay->L * sizeof *tm->layer);
    tm->lay.layer = tm->layer;
    if (be == TM_CUDA) {
        int rc = tm_cuda_gemm_create(gm == TM_GEMM_BF16, &tm->gemm, err);
        if (rc != 0) {
            tm_free(tm);
            return rc;
        }
    }
    Carve c = {NULL, 0};
    layout(tm, N, BQTT, &c);
    tm->mem = tm_alloc(tm, c.used, err);
    if (!tm->mem) {
        tm_free(tm);
        return SS_EOUTPUT;
    }
    c = (Carve){tm->mem, 0};
    layout(tm, N, BQTT, &c);
    size_t nt = (size_t)T * (lay->D / 2);
    float *tab = malloc(2 * nt * sizeof(float));
    if (!tab) {
        tm_free(tm);
        return ss_err(err, SS_EOUTPUT, "train model: out of memory");
    }
    tops_rope_table(T, (int)lay->D, lay->rope_theta, tab, tab + nt);
    int rc = tm_upload(tm, tm->rope_cos, tab, nt, err);
    if (rc == 0)
        rc = tm_upload(tm, tm->rope_sin, tab + nt, nt, err);
    free(tab);
    if (rc != 0) {
        tm_free(tm);
        return rc;
    }
    *out = tm;
    return 0;
}

void tm_free(TrainModel *tm)
{
    if (!tm)
        return;
    if (tm->mem)
        tm_release(tm, tm->mem);
    if (tm->gemm)
        tm_cuda_gemm_free(tm->gemm);
    free(tm->layer);
    free(tm->la);
    free(tm->host_tmp);
    free(tm);
}

/* ---- the forward pass ---- */

int tm_forward(TrainModel *tm, const float *params, const int32_t *tokens,
               const int32_t *targets, int B_, int T_, float *logp, float *entropy, SsError *err)
{
    const TmLayout *d = &tm->lay;
    if (B_ <= 0 || T_ <= 0 || B_ > tm->Bmax || T_ > tm->Tmax)
        return ss_err(err, SS_EUSAGE, "train model: batch %d x %d exceeds %d x %d", B_, T_,
                      tm->Bmax, tm->Tmax);
    size_t B = (size_t)B_, T = (size_t)T_, N = B * T;
    size_t H = d->H, ni = d->inter, QD = d->Q * d->D, KD = d->K * d->D, QKV = QD + 2 * KD;
    double eps = d->eps;
    tm->B = B_;
    tm->T = T_;
    int32_t *tg = (int32_t *)tm->host_tmp;
    for (size_t n = 0; n < N; n++)
        tg[n] = targets[n] >= 0 && (size_t)targets[n] < d->V ? targets[n] : -1;
    /* int32 ids travel as 4-byte words */
    TRY(tm_upload(tm, (float *)tm->tokens, (const float *)tokens, N, err));
    TRY(tm_upload(tm, (float *)tm->targets, (const float *)tg, N, err));
    OP(embed_fwd, params + d->embed, tm->tokens, N, d->V, H, tm->la[0].x);
    TopsAttnShape as = {.B = B, .T = T, .Q = d->Q, .K = d->K, .D = d->D,
                        .ldq = QD, .ldk = KD, .ldv = QKV, .ldc = QD};
    for (size_t l = 0; l < d->L; l++) {
        const TmLayer *lo = &tm->layer[l];
        TmLayerActs *a = &tm->la[l];
        const float *qn = d->qk_norm ? params + lo->q_norm : NULL;
        const float *kn = d->qk_norm ? params + lo->k_norm : NULL;
        /* attention block */
        OP(rmsnorm_fwd, a->x, H, params + lo->in_norm, N, 1, H, eps, tm->h, H, a->rstd1);
        TRY(gemm(tm, 0, 1, N, QKV, H, 1, tm->h, H, params + lo->wqkv, H, 0, a->qkv, QKV, err));
        if (d->qkv_bias)
            OP(add_bias, a->qkv, QKV, params + lo->bqkv, N, QKV);
        OP(rmsnorm_fwd, a->qkv, QKV, qn, N, d->Q, d->D, eps, a->q, QD, a->qrs);
        OP(rope_fwd, a->q, QD, N, d->Q, d->D, tm->rope_cos, tm->rope_sin, NULL, T);
        OP(rmsnorm_fwd, a->qkv + QD, QKV, kn, N, d->K, d->D, eps, a->k, KD, a->krs);
        OP(rope_fwd, a->k, KD, N, d->K, d->D, tm->rope_cos, tm->rope_sin, NULL, T);
        OP(attn_fwd, &as, a->q, a->k, a->qkv + QD + KD, a->att, a->ctx);
        TRY(tm->be == TM_CUDA ? tops_dev_copy(a->xmid, a->x, N * H * sizeof(float), err)
                              : (memcpy(a->xmid, a->x, N * H * sizeof(float)), 0));
        TRY(gemm(tm, 0, 1, N, H, QD, 1, a->ctx, QD, params + lo->wo, QD, 1, a->xmid, H, err));
        /* MLP block */
        OP(rmsnorm_fwd, a->xmid, H, params + lo->post_norm, N, 1, H, eps, tm->h, H, a->rstd2);
        TRY(gemm(tm, 0, 1, N, 2 * ni, H, 1, tm->h, H, params + lo->wgu, H, 0, a->gu, 2 * ni, err));
        OP(swiglu_fwd, a->gu, N, ni, tm->mlp);
        float *xnext = l + 1 < d->L ? tm->la[l + 1].x : tm->xfin;
        TRY(tm->be == TM_CUDA ? tops_dev_copy(xnext, a->xmid, N * H * sizeof(float), err)
                              : (memcpy(xnext, a->xmid, N * H * sizeof(float)), 0));
        TRY(gemm(tm, 0, 1, N, H, ni, 1, tm->mlp, ni, params + lo->wd, ni, 1, xnext, H, err));
    }
    OP(rmsnorm_fwd, tm->xfin, H, params + d->norm, N, 1, H, eps, tm->hfin, H, tm->rstdf);
    TRY(gemm(tm, 0, 1, N, d->V, H, 1, tm->hfin, H, params + d->lm_head, H, 0, tm->logits, d->V,
             err));
    OP(logits_fwd, tm->logits, tm->targets, N, d->V, tm->lse, tm->logp, tm->entropy);
    TRY(tm_download(tm, logp, tm->logp, N, err));
    if (entropy)
        TRY(tm_download(tm, entropy, tm->entropy, N, err));
    return 0;
}

/* ---- the backward pass ---- */

/* dsrc (rows of nh heads of D, stride ldsrc: gradients of the normed, rotated heads) to the
 * projections' gradients (ddst, stride lddst): the rotation's transpose, then the per-head norm's
 * backward (w NULL: a strided copy). */
static int qk_bwd(TrainModel *tm, float *dsrc, size_t ldsrc, const float *x, size_t ldx,
                  const float *w, const float *rstd, size_t N, size_t nh, float *ddst,
                  size_t lddst, float *dw, SsError *err)
{
    const TmLayout *d = &tm->lay;
    OP(rope_bwd, dsrc, ldsrc, N, nh, d->D, tm->rope_cos, tm->rope_sin, NULL, (size_t)tm->T);
    if (w)
        OP(rmsnorm_bwd, dsrc, ldsrc, x, ldx, w, rstd, N, nh, d->D, ddst, lddst, dw, 0);
    else
        OP(rmsnorm_fwd, dsrc, ldsrc, NULL, N, nh, d->D, d->eps, ddst, lddst, tm->rs);
    return 0;
}

int tm_backward(TrainModel *tm, const float *params, const float *dlogp, float *grads,
                SsError *err)
{
    const TmLayout *d = &tm->lay;
    size_t B = (size_t)tm->B, T = (size_t)tm->T, N = B * T;
    size_t H = d->H, ni = d->inter, V = d->V, QD = d->Q * d->D, KD = d->K * d->D, QKV = QD + 2 * KD;
    double eps = d->eps;
    TRY(tm_upload(tm, tm->dlogp, dlogp, N, err));
    OP(logits_bwd, tm->logits, tm->lse, tm->targets, tm->dlogp, N, V, tm->dlogits);
    TRY(gemm(tm, 1, 0, V, H, N, 1, tm->dlogits, V, tm->hfin, H, 1, grads + d->lm_head, H, err));
    TRY(gemm(tm, 0, 0, N, H, V, 1, tm->dlogits, V, params + d->lm_head, H, 0, tm->dh, H, err));
    OP(rmsnorm_bwd, tm->dh, H, tm->xfin, H, params + d->norm, tm->rstdf, N, 1, H, tm->dx, H,
       grads + d->norm, 0);
    TopsAttnShape as = {.B = B, .T = T, .Q = d->Q, .K = d->K, .D = d->D,
                        .ldq = QD, .ldk = KD, .ldv = QKV, .ldc = QD};
    for (size_t l = d->L; l-- > 0;) {
        const TmLayer *lo = &tm->layer[l];
        const TmLayerActs *a = &tm->la[l];
        /* MLP: x_next = xmid + down(silu(g) * u); dx holds dL/dx_next */
        OP(swiglu_fwd, a->gu, N, ni, tm->mlp);
        TRY(gemm(tm, 1, 0, H, ni, N, 1, tm->dx, H, tm->mlp, ni, 1, grads + lo->wd, ni, err));
        TRY(gemm(tm, 0, 0, N, ni, H, 1, tm->dx, H, params + lo->wd, ni, 0, tm->dmlp, ni, err));
        OP(swiglu_bwd, a->gu, tm->dmlp, N, ni, tm->dgu);
        OP(rmsnorm_fwd, a->xmid, H, params + lo->post_norm, N, 1, H, eps, tm->h, H, tm->rs);
        TRY(gemm(tm, 1, 0, 2 * ni, H, N, 1, tm->dgu, 2 * ni, tm->h, H, 1, grads + lo->wgu, H,
                 err));
        TRY(gemm(tm, 0, 0, N, H, 2 * ni, 1, tm->dgu, 2 * ni, params + lo->wgu, H, 0, tm->dh, H,
                 err));
        OP(rmsnorm_bwd, tm->dh, H, a->xmid, H, params + lo->post_norm, a->rstd2, N, 1, H, tm->dx,
           H, grads + lo->post_norm, 1);
        /* attention: xmid = x + o(ctx); dx holds dL/dxmid */
        TRY(gemm(tm, 1, 0, H, QD, N, 1, tm->dx, H, a->ctx, QD, 1, grads + lo->wo, QD, err));
        TRY(gemm(tm, 0, 0, N, QD, H, 1, tm->dx, H, params + lo->wo, QD, 0, tm->dctx, QD, err));
        OP(attn_bwd, &as, a->q, a->k, a->qkv + QD + KD, a->att, tm->dctx, tm->dS, tm->dq, tm->dk,
           tm->dqkv + QD + KD);
        TRY(qk_bwd(tm, tm->dq, QD, a->qkv, QKV, d->qk_norm ? params + lo->q_norm : NULL, a->qrs,
                   N, d->Q, tm->dqkv, QKV, d->qk_norm ? grads + lo->q_norm : NULL, err));
        TRY(qk_bwd(tm, tm->dk, KD, a->qkv + QD, QKV, d->qk_norm ? params + lo->k_norm : NULL,
                   a->krs, N, d->K, tm->dqkv + QD, QKV, d->qk_norm ? grads + lo->k_norm : NULL,
                   err));
        if (d->qkv_bias)
            OP(colsum_add, tm->dqkv, QKV, N, QKV, grads + lo->bqkv);
        OP(rmsnorm_fwd, a->x, H, params + lo->in_norm, N, 1, H, eps, tm->h, H, tm->rs);
        TRY(gemm(tm, 1, 0, QKV, H, N, 1, tm->dqkv, QKV, tm->h, H, 1, grads + lo->wqkv, H, err));
        TRY(gemm(tm, 0, 0, N, H, QKV, 1, tm->dqkv, QKV, params + lo->wqkv, H, 0, tm->dh, H, err));
        OP(rmsnorm_bwd, tm->dh, H, a->x, H, params + lo->in_norm, a->rstd1, N, 1, H, tm->dx, H,
           grads + lo->in_norm, 1);
    }
    OP(embed_bwd, tm->dx, tm->tokens, N, V, H, grads + d->embed);
    if (tm->be == TM_CUDA)
        TRY(tops_dev_sync(err));
    return 0;
}
