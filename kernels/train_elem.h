/* The trainer ops' arithmetic for one element, one row or one sequence, written once: the CPU
 * twins (kernels/train_ops_cpu.c) and the CUDA kernels (kernels/train_ops.cu) call these, so
 * tests/kernels/test_train_ops.c, which checks the twins against train/'s own code, also checks
 * what the GPU computes. SS_HD (formats/dtype_convert.h): __host__ __device__ static inline under
 * nvcc, static inline under gcc. Both sides are compiled without fused multiply-add
 * (-ffp-contract=off, nvcc --fmad=false), so the float expressions below round the same way; the
 * order of operations is the trainer's (train/model_*.c, train/grpo_loss.c, train/optim.c). */
#ifndef SS_KERNELS_TRAIN_ELEM_H
#define SS_KERNELS_TRAIN_ELEM_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype_convert.h" /* SS_HD */

/* ---- RMSNorm ---- */

/* rstd from the row's sum of squares (in double). */
SS_HD float te_rmsnorm_rstd(double sumsq, size_t D, double eps)
{
    return (float)(1.0 / sqrt(sumsq / (double)D + eps));
}

SS_HD float te_rmsnorm_y(float x, float rstd, float w)
{
    return x * rstd * w;
}

/* The backward pass's per-element term of sum_j dy_j w_j x_j (double). */
SS_HD double te_rmsnorm_dot_term(float dy, float w, float x)
{
    return (double)dy * w * x;
}

/* c = rstd^3 * dot / D, rounded to float once. */
SS_HD float te_rmsnorm_c(float rstd, double dot, size_t D)
{
    return (float)((double)rstd * rstd * rstd * dot / (double)D);
}

/* dx_k = rstd (dy_k w_k) - c x_k. */
SS_HD float te_rmsnorm_dx(float dy, float w, float x, float rstd, float c)
{
    return rstd * (dy * w) - c * x;
}

/* dw_j's term of one row: dy_j (x_j rstd). */
SS_HD float te_rmsnorm_dw(float dy, float x, float rstd)
{
    return dy * (x * rstd);
}

/* ---- rotary embedding (rotate-half): element i pairs with i + D/2 ---- */

SS_HD void te_rope_fwd(float *a, float *b, float c, float s)
{
    float x = *a, y = *b;
    *a = x * c - y * s;
    *b = y * c + x * s;
}

SS_HD void te_rope_bwd(float *a, float *b, float c, float s)
{
    float x = *a, y = *b;
    *a = x * c + y * s;
    *b = y * c - x * s;
}

/* ---- attention, one query row ---- */

/* Query row i of one (sequence, head): q (D), the sequence's keys and values from row 0 (strides
 * ldk, ldv), scale 1/sqrt(D). Writes p (T): softmax of the scaled scores over j <= i, 0 after;
 * ctx (D) = sum_j p_j v_j. The softmax is train/model_forward.c's (float max, expf, float sum,
 * one reciprocal). */
SS_HD void te_attn_fwd_row(const float *q, const float *k, size_t ldk, const float *v, size_t ldv,
                           size_t i, size_t T, size_t D, float scale, float *p, float *ctx)
{
    float mx = 0.0f;
    for (size_t j = 0; j <= i; j++) {
        const float *kj = k + j * ldk;
        float s = 0.0f;
        for (size_t d = 0; d < D; d++)
            s += q[d] * kj[d];
        s *= scale;
        p[j] = s;
        mx = j == 0 || s > mx ? s : mx;
    }
    float sum = 0.0f;
    for (size_t j = 0; j <= i; j++) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    float inv = 1.0f / sum;
    for (size_t j = 0; j <= i; j++)
        p[j] *= inv;
    for (size_t j = i + 1; j < T; j++)
        p[j] = 0.0f;
    for (size_t d = 0; d < D; d++) {
        float acc = 0.0f;
        for (size_t j = 0; j <= i; j++)
            acc += p[j] * v[j * ldv + d];
        ctx[d] = acc;
    }
}

/* Backward, first pass, query row i of one (sequence, head): from p (T, the forward's row) and
 * dctx (D), writes ds (T): dS_ij = p_ij (dP_ij - sum_j p_ij dP_ij) * scale with dP_ij =
 * dctx . v_j (0 for j > i), and dq (D) = sum_j dS_ij k_j. */
SS_HD void te_attn_bwd_row_q(const float *p, const float *dctx, const float *k, size_t ldk,
                             const float *v, size_t ldv, size_t i, size_t T, size_t D,
                             float scale, float *ds, float *dq)
{
    float dot = 0.0f;
    for (size_t j = 0; j <= i; j++) {
        const float *vj = v + j * ldv;
        float dp = 0.0f;
        for (size_t d = 0; d < D; d++)
            dp += dctx[d] * vj[d];
        ds[j] = dp;
        dot += p[j] * dp;
    }
    for (size_t j = 0; j <= i; j++)
        ds[j] = p[j] * (ds[j] - dot) * scale;
    for (size_t j = i + 1; j < T; j++)
        ds[j] = 0.0f;
    for (size_t d = 0; d < D; d++) {
        float acc = 0.0f;
        for (size_t j = 0; j <= i; j++)
            acc += ds[j] * k[j * ldk + d];
        dq[d] = acc;
    }
}

/* Backward, second pass, key row j of one (sequence, key-value head g) with group query heads:
 * dk_j = sum over the group's heads r, then rows i >= j, of dS^r_ij q^r_i; dv_j likewise of
 * P^r_ij dctx^r_i. P and dS point at the group's first head's (T, T) block (heads T*T apart); q
 * and dctx at the group's first head in row 0 (heads D apart, rows ldq / ldc apart). */
SS_HD void te_attn_bwd_row_kv(const float *P, const float *dS, const float *q, size_t ldq,
                              const float *dctx, size_t ldc, size_t group, size_t j, size_t T,
                              size_t D, float *dk, float *dv)
{
    for (size_t d = 0; d < D; d++) {
        float ak = 0.0f, av = 0.0f;
        for (size_t r = 0; r < group; r++) {
            const float *Pr = P + r * T * T, *Sr = dS + r * T * T;
            const float *qr = q + r * D, *cr = dctx + r * D;
            for (size_t i = j; i < T; i++) {
                ak += Sr[i * T + j] * qr[i * ldq + d];
                av += Pr[i * T + j] * cr[i * ldc + d];
            }
        }
        dk[d] = ak;
        dv[d] = av;
    }
}

/* ---- SwiGLU ---- */

SS_HD float te_sigmoid(float g)
{
    return 1.0f / (1.0f + expf(-g));
}

SS_HD float te_swiglu_y(float g, float u)
{
    return g * te_sigmoid(g) * u;
}

/* d/dg and d/du of silu(g) * u, given dy. */
SS_HD void te_swiglu_bwd(float g, float u, float dy, float *dg, float *du)
{
    float sg = te_sigmoid(g);
    *du = dy * (g * sg);
    *dg = dy * u * (sg * (1.0f + g * (1.0f - sg)));
}

/* ---- logits: log-sum-exp, logp, entropy ---- */

/* The terms a row's sums gather for logit z against the row maximum mx: exp(z - mx) and
 * exp(z - mx) * (z - mx), in double. */
SS_HD void te_lse_terms(float z, float mx, double *e, double *we)
{
    double dz = (double)z - mx;
    double ex = exp(dz);
    *e = ex;
    *we = ex * dz;
}

/* From the row's max, sum and weighted sum: lse, and (target zt valid) logp and entropy. */
SS_HD void te_lse_finish(float mx, double sum, double wsum, int has_target, float zt, float *lse,
                         float *logp, float *entropy)
{
    double l = log(sum);
    *lse = (float)(mx + l);
    *logp = has_target ? (float)((double)zt - mx - l) : 0.0f;
    *entropy = has_target ? (float)(l - wsum / sum) : 0.0f;
}

/* dlogit of one element: -s * exp(z - lse), plus s at the target. */
SS_HD float te_dlogit(float z, float lse, float s, int is_target)
{
    float g = -s * expf(z - lse);
    return is_target ? g + s : g;
}

/* ---- GRPO ---- */

/* The weight of each response token of a sequence with nb response tokens in L (ntok response
 * tokens and nseq sequences with one in the batch). */
SS_HD double te_grpo_weight(int agg, long ntok, long nseq, long nb, int B, int T)
{
    if (agg == 0) /* token-mean */
        return ntok > 0 ? 1.0 / (double)ntok : 0.0;
    if (agg == 1) /* seq-mean-token-mean */
        return nb > 0 ? 1.0 / ((double)nseq * (double)nb) : 0.0;
    return 1.0 / ((double)B * (double)T); /* seq-mean-token-sum-norm */
}

/* One response token: the loss term l, its policy-gradient part pg, the k3 KL, the gradient g of
 * l with respect to logp, and whether the clipped branch was taken (train/grpo_loss.c). */
SS_HD void te_grpo_token(double lp, double lp_old, double lp_ref, double A, double lo, double hi,
                         double beta, int use_kl, double *l, double *pg, double *kl, double *g,
                         int *clipped)
{
    const double rho = exp(lp - lp_old);
    const double rc = rho < lo ? lo : (rho > hi ? hi : rho);
    const double pg1 = -A * rho, pg2 = -A * rc;
    if (pg2 > pg1) {
        *pg = pg2;
        *g = 0.0;
        *clipped = 1;
    } else {
        *pg = pg1;
        *g = -A * rho;
        *clipped = 0;
    }
    *l = *pg;
    *kl = 0.0;
    if (use_kl) {
        const double x = lp_ref - lp;
        const double xc = x < -20.0 ? -20.0 : (x > 20.0 ? 20.0 : x);
        const double ex = exp(xc);
        *kl = ex - xc - 1.0;
        *l += beta * *kl;
        if (x >= -20.0 && x <= 20.0)
            *g += beta * (1.0 - ex);
    }
}

/* One sequence of T positions (arrays at its row): writes dlogp (0 off the mask) and its sums of
 * w * l, w * pg and kl (in index order) and clipped-token count. */
SS_HD void te_grpo_seq(const float *logp, const float *logp_old, const float *logp_ref,
                       const uint8_t *mask, double A, int T, double w, double lo, double hi,
                       double beta, int use_kl, float *dlogp, double *loss, double *pg_loss,
                       double *kl_sum, long *nclip)
{
    double sl = 0.0, sp = 0.0, sk = 0.0;
    long nc = 0;
    for (int t = 0; t < T; t++) {
        if (!mask[t]) {
            dlogp[t] = 0.0f;
            continue;
        }
        double l, pg, kl, g;
        int clipped;
        te_grpo_token(logp[t], logp_old[t], use_kl ? (double)logp_ref[t] : 0.0, A, lo, hi, beta,
                      use_kl, &l, &pg, &kl, &g, &clipped);
        nc += clipped;
        sk += kl;
        sl += w * l;
        sp += w * pg;
        dlogp[t] = (float)(w * g);
    }
    *loss = sl;
    *pg_loss = sp;
    *kl_sum = sk;
    *nclip = nc;
}

/* ---- optimizers (train/optim.c, torch 1.13's single-tensor kernels) ---- */

/* SGD, one element: d = g (+ coupled L2), buf (momentum, may be NULL), p. on: the mask bit. */
SS_HD void te_sgd(float *p, float g, float *buf, int on, float neg_lr, float wd, float mom,
                  int first)
{
    float d = wd != 0.0f ? fmaf(*p, wd, g) : g;
    if (buf) {
        float b = first ? d : *buf * mom + d;
        float np = fmaf(b, neg_lr, *p);
        *buf = on ? b : *buf;
        *p = on ? np : *p;
    } else {
        float np = fmaf(d, neg_lr, *p);
        *p = on ? np : *p;
    }
}

/* AdamW, one element. */
SS_HD void te_adamw(float *p, float g, float *m, float *v, int on, float decay, float b1,
                    float c1, float b2, float c2, float bc2_sqrt, float eps, float neg_step)
{
    float pi = *p * decay;
    float mi = fmaf(g, c1, *m * b1);
    float vi = fmaf(c2 * g, g, *v * b2);
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    float np = pi + (neg_step * mi) / denom;
    *m = on ? mi : *m;
    *v = on ? vi : *v;
    *p = on ? np : *p;
}

#endif
