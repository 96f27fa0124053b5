/* GRPO's math on per-token log-probabilities (train/grpo_loss.h). Per-token terms are computed in
 * double from the float inputs and summed in double in index order; dlogp is rounded to float
 * once at the end. */
#include "train/grpo_loss.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

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
        /* The weight of each response token of this sequence in L. */
        double w = 0.0;
        if (cfg->agg == GRPO_AGG_TOKEN_MEAN)
            w = ntok > 0 ? 1.0 / (double)ntok : 0.0;
        else if (cfg->agg == GRPO_AGG_SEQ_MEAN_TOKEN_MEAN)
            w = nb > 0 ? 1.0 / ((double)nseq * (double)nb) : 0.0;
        else
            w = 1.0 / ((double)B * (double)T);
        const double A = adv[b];
        for (int t = 0; t < T; t++) {
            const size_t i = row + t;
            if (!mask[i]) {
                dlogp[i] = 0.0f;
                continue;
            }
            const double lp = logp[i];
            const double rho = exp(lp - (double)logp_old[i]);
            const double rc = rho < lo ? lo : (rho > hi ? hi : rho);
            const double pg1 = -A * rho, pg2 = -A * rc;
            double pg, g;
            if (pg2 > pg1) { /* clipped branch: constant in logp */
                pg = pg2;
                g = 0.0;
                nclip++;
            } else {
                pg = pg1;
                g = -A * rho; /* d(-A * exp(logp - old)) / dlogp */
            }
            double l = pg;
            if (use_kl) {
                const double x = (double)logp_ref[i] - lp;
                const double xc = x < -20.0 ? -20.0 : (x > 20.0 ? 20.0 : x);
                const double ex = exp(xc);
                const double kl = ex - xc - 1.0;
                kl_sum += kl;
                l += beta * kl;
                /* d kl / dlogp = (exp(x) - 1) * dx/dlogp = 1 - exp(x); 0 where the clamp bites
                 * (the boundary itself passes the gradient, as torch.clamp does). */
                if (x >= -20.0 && x <= 20.0)
                    g += beta * (1.0 - ex);
            }
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
