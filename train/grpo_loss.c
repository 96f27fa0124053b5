/* GRPO's math on per-token log-probabilities (train/grpo_loss.h). Per-token terms are computed in
 * double from the float inputs and summed in double in index order; dlogp is rounded to float
 * once at the end. */
#include "train/grpo_loss.h"

#include "kernels/train_elem.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* te_grpo_weight numbers the aggregation modes as GrpoAgg does. */
_Static_assert(GRPO_AGG_TOKEN_MEAN == 0 && GRPO_AGG_SEQ_MEAN_TOKEN_MEAN == 1 &&
                   GRPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM == 2,
               "GrpoAgg must match kernels/train_elem.h's aggregation numbers");

static const char *const agg_names[] = {"token-mean", "seq-mean-token-mean",
                                        "seq-mean-token-sum-norm"};

int grpo_agg_parse(const char *name, GrpoAgg *out)
{
    if (!name)
        return -1;
    for (int i = 0; i < 3; i++) {
        if (strcmp(name, agg_names[i]) == 0) {
            *out = (GrpoAgg)i;
            return 0;
        }
    }
    return -1;
}

const char *grpo_agg_name(GrpoAgg agg)
{
    return (agg >= GRPO_AGG_TOKEN_MEAN && agg <= GRPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM) ? agg_names[agg]
                                                                                   : "unknown";
}

int grpo_advantages(const float *rewards, int ngroups, int G, GrpoAdvMode mode, float eps,
                    float *adv)
{
    int zero_spread = 0;
    for (int g = 0; g < ngroups; g++) {
        const float *r = rewards + (size_t)g * (size_t)G;
        float *a = adv + (size_t)g * (size_t)G;
        int all_equal = 1;
        for (int i = 1; i < G; i++)
            if (r[i] != r[0])
                all_equal = 0;
        if (all_equal) {
            /* No learning signal: exactly 0 (not (r - mean) / eps of rounding noise). */
            for (int i = 0; i < G; i++)
                a[i] = 0.0f;
            zero_spread++;
            continue;
        }
        double mean = 0.0;
        for (int i = 0; i < G; i++)
            mean += r[i];
        mean /= G;
        double ss = 0.0;
        for (int i = 0; i < G; i++)
            ss += ((double)r[i] - mean) * ((double)r[i] - mean);
        double std = sqrt(ss / (G - 1)); /* G >= 2 here: a group of one is all-equal */
        for (int i = 0; i < G; i++) {
            double d = (double)r[i] - mean;
            a[i] = (float)(mode == GRPO_ADV_STD ? d / (std + (double)eps) : d);
        }
    }
    return zero_spread;
}

void grpo_loss(const GrpoLossConfig *cfg, int B, int T, const float *logp, const float *logp_old,
               const float *logp_ref, const uint8_t *mask, const float *adv, float *dlogp,
               GrpoLossStats *st)
{
    const double lo = 1.0 - (double)cfg->clip_low, hi = 1.0 + (double)cfg->clip_high;
    const double beta = cfg->beta;
    const int use_kl = beta != 0.0 && logp_ref != NULL;

    /* Counts: response tokens in all, sequences that have one. */
    long ntok = 0, nseq = 0;
    for (int b = 0; b < B; b++) {
        long nb = 0;
        for (int t = 0; t < T; t++)
            nb += mask[(size_t)b * T + t] != 0;
        ntok += nb;
        nseq += nb > 0;
    }

    double loss = 0.0, pg_loss = 0.0, kl_sum = 0.0;
    long nclip = 0;
    for (int b = 0; b < B; b++) {
        const size_t row = (size_t)b * (size_t)T;
        long nb = 0;
        for (int t = 0; t < T; t++)
            nb += mask[row + t] != 0;
        /* The weight of each response token of this sequence in L, and each token's terms:
         * the element functions the trainer's CUDA kernels share (kernels/train_elem.h). */
        const double w = te_grpo_weight((int)cfg->agg, ntok, nseq, nb, B, T);
        const double A = adv[b];
        for (int t = 0; t < T; t++) {
            const size_t i = row + t;
            if (!mask[i]) {
                dlogp[i] = 0.0f;
                continue;
            }
            double l, pg, kl, g;
            int clipped;
            te_grpo_token(logp[i], logp_old[i], use_kl ? (double)logp_ref[i] : 0.0, A, lo, hi,
                          beta, use_kl, &l, &pg, &kl, &g, &clipped);
            nclip += clipped;
            kl_sum += kl;
            loss += w * l;
            pg_loss += w * pg;
            dlogp[i] = (float)(w * g);
        }
    }
    st->loss = loss;
    st->pg_loss = pg_loss;
    st->kl = ntok > 0 ? kl_sum / (double)ntok : 0.0;
    st->clip_frac = ntok > 0 ? (double)nclip / (double)ntok : 0.0;
    st->tokens = ntok;
}
