/* The C side of test_grpo_oracle.py: runs grpo_advantages + grpo_loss, or a run of opt_step, on
 * inputs the script writes, and writes the results back. Binary files, host byte order.
 *
 *   grpo_driver loss IN OUT
 *     IN:  i32 ngroups, G, adv_mode, agg, has_ref; f32 adv_eps, clip_low, clip_high, beta;
 *          f32 rewards (ngroups*G); then with B = ngroups*G sequences of T positions (i32 T first):
 *          f32 logp, logp_old, logp_ref (B*T each); u8 mask (B*T)
 *     OUT: f32 adv (B); f32 dlogp (B*T); f64 loss, pg_loss, kl, clip_frac, tokens
 *   grpo_driver optim IN OUT
 *     IN:  f64 kind, n, steps, lr, momentum, weight_decay, warmup, max_grad_norm, beta1, beta2,
 *          eps; f32 params (n); f32 grads (steps*n)
 *     OUT: f32 params after each step (steps*n); f64 grad norm and lr of each step (2*steps) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/grpo_loss.h"
#include "train/optim.h"

static void rd(void *p, size_t size, size_t n, FILE *f)
{
    if (n && fread(p, size, n, f) != n) {
        fprintf(stderr, "grpo_driver: short input\n");
        exit(2);
    }
}

static void wr(const void *p, size_t size, size_t n, FILE *f)
{
    if (n && fwrite(p, size, n, f) != n) {
        fprintf(stderr, "grpo_driver: write failed\n");
        exit(4);
    }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "grpo_driver: out of memory\n");
        exit(4);
    }
    return p;
}

static int run_loss(FILE *in, FILE *out)
{
    int32_t hi[5], T;
    float hf[4];
    rd(hi, 4, 5, in);
    rd(hf, 4, 4, in);
    const int ngroups = hi[0], G = hi[1];
    const size_t B = (size_t)ngroups * (size_t)G;
    float *rewards = xmalloc(B * 4), *adv = xmalloc(B * 4);
    rd(rewards, 4, B, in);
    rd(&T, 4, 1, in);
    const size_t BT = B * (size_t)T;
    float *lp = xmalloc(BT * 4), *old = xmalloc(BT * 4), *ref = xmalloc(BT * 4),
          *dl = xmalloc(BT * 4);
    uint8_t *mask = xmalloc(BT);
    rd(lp, 4, BT, in);
    rd(old, 4, BT, in);
    rd(ref, 4, BT, in);
    rd(mask, 1, BT, in);
    grpo_advantages(rewards, ngroups, G, (GrpoAdvMode)hi[2], hf[0], adv);
    GrpoLossConfig cfg = {hf[1], hf[2], hf[3], (GrpoAgg)hi[3]};
    GrpoLossStats st;
    grpo_loss(&cfg, (int)B, T, lp, old, hi[4] ? ref : NULL, mask, adv, dl, &st);
    double s[5] = {st.loss, st.pg_loss, st.kl, st.clip_frac, (double)st.tokens};
    wr(adv, 4, B, out);
    wr(dl, 4, BT, out);
    wr(s, 8, 5, out);
    free(rewards);
    free(adv);
    free(lp);
    free(old);
    free(ref);
    free(dl);
    free(mask);
    return 0;
}

static int run_optim(FILE *in, FILE *out)
{
    double h[11];
    rd(h, 8, 11, in);
    OptConfig cfg;
    opt_config_default(h[0] == 0 ? OPT_SGD : OPT_ADAMW, &cfg);
    const size_t n = (size_t)h[1];
    const long steps = (long)h[2];
    cfg.lr = h[3];
    cfg.momentum = h[4];
    cfg.weight_decay = h[5];
    cfg.warmup_steps = (long)h[6];
    cfg.max_grad_norm = h[7];
    cfg.beta1 = h[8];
    cfg.beta2 = h[9];
    cfg.eps = h[10];
    Optimizer *o = NULL;
    SsError err = {0};
    if (opt_create(&cfg, n, &o, &err) != 0) {
        fprintf(stderr, "grpo_driver: %s\n", err.msg);
        return 1;
    }
    float *p = xmalloc(n * 4), *g = xmalloc(n * 4);
    double *stats = xmalloc((size_t)steps * 2 * sizeof(double));
    rd(p, 4, n, in);
    for (long s = 0; s < steps; s++) {
        rd(g, 4, n, in);
        if (opt_step(o, p, g, NULL, &stats[2 * s], &stats[2 * s + 1]) != 0) {
            fprintf(stderr, "grpo_driver: step %ld skipped\n", s);
            return 1;
        }
        wr(p, 4, n, out);
    }
    wr(stats, 8, (size_t)steps * 2, out);
    opt_free(o);
    free(p);
    free(g);
    free(stats);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: grpo_driver loss|optim IN OUT\n");
        return 1;
    }
    FILE *in = fopen(argv[2], "rb"), *out = fopen(argv[3], "wb");
    if (!in || !out) {
        fprintf(stderr, "grpo_driver: cannot open files\n");
        return 2;
    }
    int rc = strcmp(argv[1], "loss") == 0    ? run_loss(in, out)
             : strcmp(argv[1], "optim") == 0 ? run_optim(in, out)
                                             : 1;
    fclose(in);
    if (fclose(out) != 0)
        return 4;
    return rc;
}
