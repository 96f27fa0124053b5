/* The trainer's per-row and per-element operations with one C API and two backends: the CPU
 * twins (`tops_*_cpu`, kernels/train_ops_cpu.c) and the CUDA kernels (`tops_*_cuda`,
 * kernels/train_ops.cu; in a build without CUDA, kernels/train_ops_none.c supplies stubs that
 * return SS_EUSAGE). The arithmetic of one element or one row lives once, in kernels/train_elem.h,
 * as SS_HD functions (__host__ __device__ under nvcc) that both backends call, so the CPU tests
 * (tests/kernels/test_train_ops.c, against train/'s own code) also test what the GPU runs.
 *
 * The ops are those of train/model.h's decoder and train/grpo_loss.h / train/optim.h, with the
 * trainer's definitions and, on the CPU, the trainer's order of operations:
 *   rmsnorm    y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) (sum of squares in double)
 *   rope       rotate-half, inv_freq = theta^(-2i/D): (a, b) -> (a c - b s, b c + a s)
 *   attention  causal softmax(q k^T / sqrt(D)) v per (sequence, head), grouped-query (query head
 *              h reads key-value head h / (Q / K))
 *   swiglu     y = silu(g) * u
 *   logits     log-softmax gather (logp), entropy and log-sum-exp per row of V logits
 *   grpo       the per-token clipped surrogate + beta * k3 KL, aggregated (token-mean,
 *              seq-mean-token-mean, seq-mean-token-sum-norm), and dL/dlogp
 *   sgd, adamw torch 1.13's single-tensor updates, bit for bit (train/optim.h)
 *
 * Layout: row-major float32. A "row" is one token position (N = B * T rows, sequence b's rows
 * b*T .. b*T+T-1); heads sit side by side inside a row, head h at h * D, and ld* are row strides
 * in floats. The CUDA functions take device pointers (tops_dev_* below moves data), run on the
 * default stream in issue order, and return 0 or a negative SS_E* code with err filled (a failed
 * launch or CUDA call: SS_EOUTPUT; no device: SS_EUSAGE). The CPU functions cannot fail.
 *
 * Numerics. CPU twins and CUDA kernels run the same element functions; compiled without fused
 * multiply-add (-ffp-contract=off, nvcc --fmad=false), float +, -, *, /, sqrtf and fmaf give the
 * same bits on both. What differs: expf/exp/log (CUDA's are within 1-2 ulp, glibc's correctly
 * rounded or nearly), and reductions that the GPU does as trees (the RMSNorm and log-sum-exp sums,
 * in double; the loss sums). The optimizers, rope, the RMSNorm weight gradients' row-order sums
 * and the embedding gradient are bit-exact across backends. */
#ifndef SS_KERNELS_TRAIN_OPS_H
#define SS_KERNELS_TRAIN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "formats/ss_error.h"

/* ---- device memory (the CUDA backend; stubs without CUDA) ---- */

/* cudaMalloc of bytes (zero-filled), or NULL with err filled. */
void *tops_dev_alloc(size_t bytes, SsError *err);
void tops_dev_free(void *d);
/* Copies host -> device and device -> host (synchronous). */
int tops_dev_upload(void *d, const void *h, size_t bytes, SsError *err);
int tops_dev_download(void *h, const void *d, size_t bytes, SsError *err);
/* Device -> device copy and zero fill (queued on the default stream). */
int tops_dev_copy(void *dst, const void *src, size_t bytes, SsError *err);
int tops_dev_zero(void *d, size_t bytes, SsError *err);
/* Waits for all queued work; reports an asynchronous kernel error. */
int tops_dev_sync(SsError *err);

/* ---- RMSNorm over vectors of D floats: rows of nh vectors (vector h of row r at
 * x + r * ldx + h * D; nh = 1, D = H for the hidden-state norms, nh heads for q_norm/k_norm) ---- */

/* y = x * rstd * w, rstd (rows, nh) written. w NULL: y = x and rstd = 1 (no norm). y may be x
 * (in place) when ldy == ldx. */
void tops_rmsnorm_fwd_cpu(const float *x, size_t ldx, const float *w, size_t rows, size_t nh,
                          size_t D, double eps, float *y, size_t ldy, float *rstd);
int tops_rmsnorm_fwd_cuda(const float *x, size_t ldx, const float *w, size_t rows, size_t nh,
                          size_t D, double eps, float *y, size_t ldy, float *rstd, SsError *err);

/* Given dy (same layout as y, stride lddy), writes dx (accumulate 0) or adds to it (accumulate 1)
 * and adds dL/dw to dw (D floats; summed over rows then heads in order, so bit-exact across
 * backends). w must not be NULL. */
void tops_rmsnorm_bwd_cpu(const float *dy, size_t lddy, const float *x, size_t ldx,
                          const float *w, const float *rstd, size_t rows, size_t nh, size_t D,
                          float *dx, size_t lddx, float *dw, int accumulate);
int tops_rmsnorm_bwd_cuda(const float *dy, size_t lddy, const float *x, size_t ldx,
                          const float *w, const float *rstd, size_t rows, size_t nh, size_t D,
                          float *dx, size_t lddx, float *dw, int accumulate, SsError *err);

/* ---- rotary embedding, in place on rows of nh heads of D (D even) ---- */

/* cos and sin tables (T, D/2) of position t times theta^(-2i/D), computed in double on the host
 * (upload them for the CUDA functions): the bits of train/'s model_rope_table. */
void tops_rope_table(int T, int D, double theta, float *cos_t, float *sin_t);

/* Row r is at position pos[r] (pos NULL: r % T); tables (T or more rows, D/2). */
void tops_rope_fwd_cpu(float *x, size_t ldx, size_t rows, size_t nh, size_t D,
                       const float *cos_t, const float *sin_t, const int32_t *pos, size_t T);
int tops_rope_fwd_cuda(float *x, size_t ldx, size_t rows, size_t nh, size_t D,
                       const float *cos_t, const float *sin_t, const int32_t *pos, size_t T,
                       SsError *err);
/* The transpose (gradient) of the rotation, in place. */
void tops_rope_bwd_cpu(float *dx, size_t ldx, size_t rows, size_t nh, size_t D,
                       const float *cos_t, const float *sin_t, const int32_t *pos, size_t T);
int tops_rope_bwd_cuda(float *dx, size_t ldx, size_t rows, size_t nh, size_t D,
                       const float *cos_t, const float *sin_t, const int32_t *pos, size_t T,
                       SsError *err);

/* ---- causal attention per (sequence, head), grouped-query ---- */

typedef struct TopsAttnShape {
    size_t B, T;             /* sequences, positions per sequence (rows B * T) */
    size_t Q, K, D;          /* query heads, key-value heads (Q % K == 0), head size */
    size_t ldq, ldk, ldv, ldc; /* row strides of q, k, v and ctx (and of their gradients) */
} TopsAttnShape;

/* P (B, Q, T, T) = causal softmax(q k^T / sqrt(D)) (0 above the diagonal), ctx = P v. */
void tops_attn_fwd_cpu(const TopsAttnShape *s, const float *q, const float *k, const float *v,
                       float *P, float *ctx);
int tops_attn_fwd_cuda(const TopsAttnShape *s, const float *q, const float *k, const float *v,
                       float *P, float *ctx, SsError *err);

/* From dctx, writes dq, dk and dv (same strides as q, k, v; dk and dv summed over a group's
 * query heads in order, then query rows in order). dS (B, Q, T, T) is scratch (it gets the
 * gradient of the scaled scores). */
void tops_attn_bwd_cpu(const TopsAttnShape *s, const float *q, const float *k, const float *v,
                       const float *P, const float *dctx, float *dS, float *dq, float *dk,
                       float *dv);
int tops_attn_bwd_cuda(const TopsAttnShape *s, const float *q, const float *k, const float *v,
                       const float *P, const float *dctx, float *dS, float *dq, float *dk,
                       float *dv, SsError *err);

/* ---- SwiGLU: gu rows of 2 ni (gate, then up, as the fused gate/up projection writes them) ---- */

/* y (rows, ni) = silu(gate) * up. */
void tops_swiglu_fwd_cpu(const float *gu, size_t rows, size_t ni, float *y);
int tops_swiglu_fwd_cuda(const float *gu, size_t rows, size_t ni, float *y, SsError *err);
/* dgu (rows, 2 ni) from dy (rows, ni). */
void tops_swiglu_bwd_cpu(const float *gu, const float *dy, size_t rows, size_t ni, float *dgu);
int tops_swiglu_bwd_cuda(const float *gu, const float *dy, size_t rows, size_t ni, float *dgu,
                         SsError *err);

/* ---- embedding and column sums ---- */

/* x (N, H) = rows of emb (V, H) at tokens (an id outside [0, V): zeros). */
void tops_embed_fwd_cpu(const float *emb, const int32_t *tokens, size_t N, size_t V, size_t H,
                        float *x);
int tops_embed_fwd_cuda(const float *emb, const int32_t *tokens, size_t N, size_t V, size_t H,
                        float *x, SsError *err);
/* demb[tokens[n]] += dx[n] for n in order (ids outside [0, V) skipped). */
void tops_embed_bwd_cpu(const float *dx, const int32_t *tokens, size_t N, size_t V, size_t H,
                        float *demb);
int tops_embed_bwd_cuda(const float *dx, const int32_t *tokens, size_t N, size_t V, size_t H,
                        float *demb, SsError *err);
/* x[r * ldx + j] += b[j] for rows r, j < w (the q/k/v biases). */
void tops_add_bias_cpu(float *x, size_t ldx, const float *b, size_t rows, size_t w);
int tops_add_bias_cuda(float *x, size_t ldx, const float *b, size_t rows, size_t w, SsError *err);
/* out[j] += sum over rows r in order of x[r * ldx + j], j < w (bias gradients). */
void tops_colsum_add_cpu(const float *x, size_t ldx, size_t rows, size_t w, float *out);
int tops_colsum_add_cuda(const float *x, size_t ldx, size_t rows, size_t w, float *out,
                         SsError *err);

/* ---- log-softmax gather and entropy over rows of V logits ---- */

/* For each of N rows: lse = log sum exp(z); logp = z[target] - lse and entropy of softmax(z) in
 * nats, both 0 where target is outside [0, V). entropy may be NULL. Sums in double, as
 * train/model_forward.c. */
void tops_logits_fwd_cpu(const float *logits, const int32_t *targets, size_t N, size_t V,
                         float *lse, float *logp, float *entropy);
int tops_logits_fwd_cuda(const float *logits, const int32_t *targets, size_t N, size_t V,
                         float *lse, float *logp, float *entropy, SsError *err);
/* dlogits (N, V) = dlogp * (onehot(target) - softmax(z)), 0 rows where target is outside [0, V)
 * or dlogp is 0. */
void tops_logits_bwd_cpu(const float *logits, const float *lse, const int32_t *targets,
                         const float *dlogp, size_t N, size_t V, float *dlogits);
int tops_logits_bwd_cuda(const float *logits, const float *lse, const int32_t *targets,
                         const float *dlogp, size_t N, size_t V, float *dlogits, SsError *err);

/* ---- the GRPO loss (train/grpo_loss.h's definitions) ---- */

/* The values of train/grpo_loss.h's GrpoAgg. */
enum { TOPS_AGG_TOKEN_MEAN = 0, TOPS_AGG_SEQ_MEAN_TOKEN_MEAN = 1,
       TOPS_AGG_SEQ_MEAN_TOKEN_SUM_NORM = 2 };

typedef struct TopsGrpoConfig {
    float clip_low, clip_high, beta;
    int agg; /* TOPS_AGG_* */
} TopsGrpoConfig;

typedef struct TopsGrpoStats {
    double loss, pg_loss, kl, clip_frac; /* as GrpoLossStats */
    long tokens;
} TopsGrpoStats;

/* logp, logp_old, logp_ref (B, T), mask (B, T) bytes, adv (B) -> dlogp (B, T) and the stats.
 * logp_ref may be NULL when beta is 0. Per-token terms in double, dlogp rounded once; the loss is
 * summed per sequence, then over sequences in order (train/grpo_loss.c sums all tokens in one
 * running sum: the same within double rounding). */
void tops_grpo_loss_cpu(const TopsGrpoConfig *cfg, int B, int T, const float *logp,
                        const float *logp_old, const float *logp_ref, const uint8_t *mask,
                        const float *adv, float *dlogp, TopsGrpoStats *st);
/* The same on device arrays; the stats come back to the host. */
int tops_grpo_loss_cuda(const TopsGrpoConfig *cfg, int B, int T, const float *logp,
                        const float *logp_old, const float *logp_ref, const uint8_t *mask,
                        const float *adv, float *dlogp, TopsGrpoStats *st, SsError *err);

/* ---- optimizers (train/optim.h's update rules, bit for bit) ---- */

/* Sum of g[i]^2 (mask NULL or mask[i] != 0) in double over blocks of 4096 in index order (the
 * CUDA sum differs only within a block's rounding). */
double tops_sumsq_cpu(const float *g, const uint8_t *mask, size_t n);
int tops_sumsq_cuda(const float *g, const uint8_t *mask, size_t n, double *out, SsError *err);
/* clip_grad_norm_'s coefficient from the norm (1 when max_norm <= 0 or no clipping applies). */
float tops_clip_coef(double norm, double max_norm);
/* g[i] *= c where mask is NULL or mask[i] != 0. */
void tops_scale_cpu(float *g, const uint8_t *mask, size_t n, float c);
int tops_scale_cuda(float *g, const uint8_t *mask, size_t n, float c, SsError *err);

/* SGD: buf NULL: plain (no state); else momentum (first: the first update, buf = d). The scalars
 * as train/optim.c rounds them: neg_lr = (float)-lr, wd = (float)weight_decay,
 * mom = (float)momentum. */
void tops_sgd_cpu(float *p, const float *g, float *buf, const uint8_t *mask, size_t n,
                  float neg_lr, float wd, float mom, int first);
int tops_sgd_cuda(float *p, const float *g, float *buf, const uint8_t *mask, size_t n,
                  float neg_lr, float wd, float mom, int first, SsError *err);

/* AdamW's float scalars for update number step (1-based) at learning rate lr, computed in double
 * and rounded once as train/optim.c does. */
typedef struct TopsAdamw {
    float decay, b1, c1, b2, c2, bc2_sqrt, eps, neg_step;
} TopsAdamw;
TopsAdamw tops_adamw_scalars(double lr, double weight_decay, double beta1, double beta2,
                             double eps, long step);
void tops_adamw_cpu(float *p, const float *g, float *m, float *v, const uint8_t *mask, size_t n,
                    const TopsAdamw *a);
int tops_adamw_cuda(float *p, const float *g, float *m, float *v, const uint8_t *mask, size_t n,
                    const TopsAdamw *a, SsError *err);

#endif
