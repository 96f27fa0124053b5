/* The CUDA trainer ops (kernels/train_ops.h) in a build without CUDA: they exist so that callers
 * and the gpu tests link everywhere, and say why they cannot run (SS_EUSAGE). */
#include "kernels/train_ops.h"

#define NONE_MSG "train ops: built without CUDA (meson -Dcuda=enabled needs nvcc and cuBLAS)"

void *tops_dev_alloc(size_t bytes, SsError *err)
{
    (void)bytes;
    ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
    return NULL;
}

void tops_dev_free(void *d)
{
    (void)d;
}

int tops_dev_upload(void *d, const void *h, size_t bytes, SsError *err)
{
    (void)d, (void)h, (void)bytes;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_dev_download(void *h, const void *d, size_t bytes, SsError *err)
{
    (void)h, (void)d, (void)bytes;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_dev_sync(SsError *err)
{
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_dev_copy(void *dst, const void *src, size_t bytes, SsError *err)
{
    (void)dst, (void)src, (void)bytes;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_dev_zero(void *d, size_t bytes, SsError *err)
{
    (void)d, (void)bytes;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_add_bias_cuda(float *x, size_t ldx, const float *b, size_t rows, size_t w, SsError *err)
{
    (void)x, (void)ldx, (void)b, (void)rows, (void)w;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_rmsnorm_fwd_cuda(const float *x, size_t ldx, const float *w, size_t rows, size_t nh,
                          size_t D, double eps, float *y, size_t ldy, float *rstd, SsError *err)
{
    (void)x, (void)ldx, (void)w, (void)rows, (void)nh, (void)D, (void)eps, (void)y, (void)ldy;
    (void)rstd;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_rmsnorm_bwd_cuda(const float *dy, size_t lddy, const float *x, size_t ldx,
                          const float *w, const float *rstd, size_t rows, size_t nh, size_t D,
                          float *dx, size_t lddx, float *dw, int accumulate, SsError *err)
{
    (void)dy, (void)lddy, (void)x, (void)ldx, (void)w, (void)rstd, (void)rows, (void)nh, (void)D;
    (void)dx, (void)lddx, (void)dw, (void)accumulate;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_rope_fwd_cuda(float *x, size_t ldx, size_t rows, size_t nh, size_t D,
                       const float *cos_t, const float *sin_t, const int32_t *pos, size_t T,
                       SsError *err)
{
    (void)x, (void)ldx, (void)rows, (void)nh, (void)D, (void)cos_t, (void)sin_t, (void)pos, (void)T;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_rope_bwd_cuda(float *dx, size_t ldx, size_t rows, size_t nh, size_t D,
                       const float *cos_t, const float *sin_t, const int32_t *pos, size_t T,
                       SsError *err)
{
    (void)dx, (void)ldx, (void)rows, (void)nh, (void)D, (void)cos_t, (void)sin_t, (void)pos;
    (void)T;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_attn_fwd_cuda(const TopsAttnShape *s, const float *q, const float *k, const float *v,
                       float *P, float *ctx, SsError *err)
{
    (void)s, (void)q, (void)k, (void)v, (void)P, (void)ctx;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_attn_bwd_cuda(const TopsAttnShape *s, const float *q, const float *k, const float *v,
                       const float *P, const float *dctx, float *dS, float *dq, float *dk,
                       float *dv, SsError *err)
{
    (void)s, (void)q, (void)k, (void)v, (void)P, (void)dctx, (void)dS, (void)dq, (void)dk, (void)dv;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_swiglu_fwd_cuda(const float *gu, size_t rows, size_t ni, float *y, SsError *err)
{
    (void)gu, (void)rows, (void)ni, (void)y;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_swiglu_bwd_cuda(const float *gu, const float *dy, size_t rows, size_t ni, float *dgu,
                         SsError *err)
{
    (void)gu, (void)dy, (void)rows, (void)ni, (void)dgu;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_embed_fwd_cuda(const float *emb, const int32_t *tokens, size_t N, size_t V, size_t H,
                        float *x, SsError *err)
{
    (void)emb, (void)tokens, (void)N, (void)V, (void)H, (void)x;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_embed_bwd_cuda(const float *dx, const int32_t *tokens, size_t N, size_t V, size_t H,
                        float *demb, SsError *err)
{
    (void)dx, (void)tokens, (void)N, (void)V, (void)H, (void)demb;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_colsum_add_cuda(const float *x, size_t ldx, size_t rows, size_t w, float *out,
                         SsError *err)
{
    (void)x, (void)ldx, (void)rows, (void)w, (void)out;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_logits_fwd_cuda(const float *logits, const int32_t *targets, size_t N, size_t V,
                         float *lse, float *logp, float *entropy, SsError *err)
{
    (void)logits, (void)targets, (void)N, (void)V, (void)lse, (void)logp, (void)entropy;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_logits_bwd_cuda(const float *logits, const float *lse, const int32_t *targets,
                         const float *dlogp, size_t N, size_t V, float *dlogits, SsError *err)
{
    (void)logits, (void)lse, (void)targets, (void)dlogp, (void)N, (void)V, (void)dlogits;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_grpo_loss_cuda(const TopsGrpoConfig *cfg, int B, int T, const float *logp,
                        const float *logp_old, const float *logp_ref, const uint8_t *mask,
                        const float *adv, float *dlogp, TopsGrpoStats *st, SsError *err)
{
    (void)cfg, (void)B, (void)T, (void)logp, (void)logp_old, (void)logp_ref, (void)mask, (void)adv;
    (void)dlogp, (void)st;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_sumsq_cuda(const float *g, const uint8_t *mask, size_t n, double *out, SsError *err)
{
    (void)g, (void)mask, (void)n;
    *out = 0.0;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_scale_cuda(float *g, const uint8_t *mask, size_t n, float c, SsError *err)
{
    (void)g, (void)mask, (void)n, (void)c;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_sgd_cuda(float *p, const float *g, float *buf, const uint8_t *mask, size_t n,
                  float neg_lr, float wd, float mom, int first, SsError *err)
{
    (void)p, (void)g, (void)buf, (void)mask, (void)n, (void)neg_lr, (void)wd, (void)mom, (void)first;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

int tops_adamw_cuda(float *p, const float *g, float *m, float *v, const uint8_t *mask, size_t n,
                    const TopsAdamw *a, SsError *err)
{
    (void)p, (void)g, (void)m, (void)v, (void)mask, (void)n, (void)a;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

/* kernels/train_model_cuda.h */
#include "kernels/train_model_cuda.h"

int tm_cuda_gemm_create(int bf16, TmCudaGemm **out, SsError *err)
{
    (void)bf16;
    *out = NULL;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}

void tm_cuda_gemm_free(TmCudaGemm *g)
{
    (void)g;
}

int tm_cuda_gemm(TmCudaGemm *g, int transa, int transb, size_t M, size_t N, size_t K, float alpha,
                 const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                 size_t ldc, SsError *err)
{
    (void)g, (void)transa, (void)transb, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda;
    (void)B, (void)ldb, (void)beta, (void)C, (void)ldc;
    return ss_err(err, SS_EUSAGE, "%s", NONE_MSG);
}
