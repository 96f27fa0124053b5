/* GRPO's math on per-token log-probabilities: group-normalized advantages, the clipped surrogate,
 * the k3 estimate of the KL divergence to a reference policy, and the aggregation of per-token
 * terms into one loss, with its gradient with respect to each token's log-probability.
 *
 * Definitions (as verl computes them; see docs/grpo-train.md):
 *   advantage   A_i = (r_i - mean_g(r)) / (std_g(r) + eps)   (GRPO; std is the unbiased sample
 *               standard deviation over the group, as torch.std) or A_i = r_i - mean_g(r) (Dr.GRPO)
 *   ratio       rho = exp(logp - logp_old)
 *   surrogate   pg = max(-A * rho, -A * clip(rho, 1 - clip_low, 1 + clip_high))
 *   k3 KL       kl = exp(logp_ref - logp) - (logp_ref - logp) - 1, with logp_ref - logp clamped
 *               to [-20, 20] before exp
 *   per token   l = pg + beta * kl, on response tokens (mask 1)
 *   token-mean  L = sum over all response tokens of l / (number of response tokens)
 *   seq-mean-token-mean  L = mean over sequences with a response token of
 *               (sum of l over that sequence's response tokens / their count)
 *   seq-mean-token-sum-norm (Dr.GRPO)  L = sum of l / (B * T)
 * Gradients are those torch autograd gives for these formulas (tests/train_grpo checks): the
 * clipped branch (pg2 > pg1 strictly) has gradient 0, otherwise dpg/dlogp = -A * rho; the KL term
 * adds beta * (1 - exp(logp_ref - logp)), or 0 where the clamp bites (|x| > 20). Per-token terms
 * and sums are computed in double; dlogp is rounded to float once. With no response tokens at all
 * the loss, the stats and dlogp are 0. */
#ifndef SS_TRAIN_GRPO_LOSS_H
#define SS_TRAIN_GRPO_LOSS_H

#include <stdint.h>

typedef enum GrpoAdvMode { GRPO_ADV_STD, GRPO_ADV_NO_STD } GrpoAdvMode;

typedef enum GrpoAgg {
    GRPO_AGG_TOKEN_MEAN,
    GRPO_AGG_SEQ_MEAN_TOKEN_MEAN,
    GRPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM
} GrpoAgg;

/* "token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm" -> 0 and *out, or -1. */
int grpo_agg_parse(const char *name, GrpoAgg *out);
const char *grpo_agg_name(GrpoAgg agg);

/* rewards (ngroups * G), group g at [g*G, (g+1)*G). Writes adv (ngroups * G) and returns how many
 * groups have zero reward spread (all rewards equal, or G == 1: their advantages are exactly 0).
 * Mean and std in double; eps (1e-6 as verl) is added to the std. */
int grpo_advantages(const float *rewards, int ngroups, int G, GrpoAdvMode mode, float eps,
                    float *adv);

typedef struct GrpoLossConfig {
    float clip_low;  /* 0.2 */
    float clip_high; /* 0.2; larger for "clip-higher" (DAPO) */
    float beta;      /* KL coefficient; 0 disables the KL term (logp_ref may then be NULL) */
    GrpoAgg agg;
} GrpoLossConfig;

typedef struct GrpoLossStats {
    double loss;       /* L */
    double pg_loss;    /* L with beta = 0 */
    double kl;         /* mean k3 over response tokens (0 when the KL term is off) */
    double clip_frac;  /* share of response tokens where the clipped branch is taken (pg2 > pg1) */
    long tokens;       /* response tokens */
} GrpoLossStats;

/* B sequences of T positions. logp, logp_old, logp_ref (B, T): log-probabilities of the tokens
 * under the current, the sampling and the reference policy; mask (B, T): 1 on response tokens;
 * adv (B). Writes dlogp (B, T) = dL/dlogp (0 off the mask) and the stats. */
void grpo_loss(const GrpoLossConfig *cfg, int B, int T, const float *logp, const float *logp_old,
               const float *logp_ref, const uint8_t *mask, const float *adv, float *dlogp,
               GrpoLossStats *st);

#endif
