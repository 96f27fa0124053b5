/* Unit tests of train/grpo_loss.h and train/optim.h with hand-computed cases. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/grpo_loss.h"
#include "train/optim.h"
#include "tests/check.h"


#define CLOSE(a, b, tol)                                                                           \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %.9g (tol %g)\n", __FILE__, __LINE__, #a,  \
                    a_, b_, (double)(tol));                                                        \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static uint64_t rng_state = 0x1234567887654321ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

/* ---- advantages ---- */

static void test_advantages(void)
{
    /* Group 0: r = (1, 0, 0): mean 1/3, deviations (2/3, -1/3, -1/3), sum of squares 2/3,
     *   unbiased variance (2/3) / 2 = 1/3, std = 1/sqrt(3).
     *   GRPO:    A = dev / (1/sqrt(3) + eps) = (1.1546985, -0.5773492, -0.5773492) with eps 1e-6
     *            (without eps: dev * sqrt(3) = (1.1547005, -0.5773503, -0.5773503))
     *   Dr.GRPO: A = dev = (0.6666667, -0.3333333, -0.3333333)
     * Group 1: r = (0.5, 0.5, 0.5): zero spread, A = 0 exactly in both modes.
     * Group 2: r = (1, 1, 0) : mean 2/3, dev (1/3, 1/3, -2/3), sum sq 2/3, std 1/sqrt(3):
     *   GRPO (0.5773503, 0.5773503, -1.1547005); Dr.GRPO (1/3, 1/3, -2/3). */
    const float r[9] = {1, 0, 0, 0.5f, 0.5f, 0.5f, 1, 1, 0};
    float a[9];
    const double s3 = 1.0 / (1.0 / sqrt(3.0) + (double)1e-6f); /* 1 / (std + eps) */
    int z = grpo_advantages(r, 3, 3, GRPO_ADV_STD, 1e-6f, a);
    CHECK(z == 1);
    CLOSE(a[0], 2.0 / 3.0 * s3, 2e-7);
    CLOSE(a[0], 1.1546985, 1e-6);
    CLOSE(a[1], -1.0 / 3.0 * s3, 2e-7);
    CLOSE(a[2], -1.0 / 3.0 * s3, 2e-7);
    for (int i = 3; i < 6; i++)
        CHECK(a[i] == 0.0f && !signbit(a[i]));
    CLOSE(a[6], 1.0 / 3.0 * s3, 2e-7);
    CLOSE(a[8], -2.0 / 3.0 * s3, 2e-7);
    z = grpo_advantages(r, 3, 3, GRPO_ADV_NO_STD, 1e-6f, a);
    CHECK(z == 1);
    CLOSE(a[0], 2.0 / 3.0, 1e-7);
    CLOSE(a[1], -1.0 / 3.0, 1e-7);
    CLOSE(a[7], 1.0 / 3.0, 1e-7);
    CLOSE(a[8], -2.0 / 3.0, 1e-7);
    for (int i = 3; i < 6; i++)
        CHECK(a[i] == 0.0f);
    /* Values whose mean is not exact in float still give exact zeros when all equal. */
    const float r2[5] = {0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
    float a2[5];
    CHECK(grpo_advantages(r2, 1, 5, GRPO_ADV_STD, 1e-6f, a2) == 1);
    for (int i = 0; i < 5; i++)
        CHECK(a2[i] == 0.0f);
    /* A group of one has no spread. */
    CHECK(grpo_advantages(r, 2, 1, GRPO_ADV_STD, 1e-6f, a2) == 2);
    CHECK(a2[0] == 0.0f && a2[1] == 0.0f);
}

/* ---- loss ---- */

static GrpoLossConfig cfg_of(float lo, float hi, float beta, GrpoAgg agg)
{
    GrpoLossConfig c = {lo, hi, beta, agg};
    return c;
}

/* One response token: returns dlogp, fills *st. */
static float one_token(const GrpoLossConfig *c, float logp, float old, float ref, float A,
                       GrpoLossStats *st)
{
    uint8_t m = 1;
    float g = 12345.0f;
    grpo_loss(c, 1, 1, &logp, &old, &ref, &m, &A, &g, st);
    return g;
}

static void test_clip(void)
{
    GrpoLossConfig c = cfg_of(0.2f, 0.28f, 0.0f, GRPO_AGG_TOKEN_MEAN);
    GrpoLossStats st;
    const float l15 = (float)log(1.5), l05 = (float)log(0.5), l11 = (float)log(1.1);
    const double r15 = exp((double)l15), r05 = exp((double)l05), r11 = exp((double)l11);
    /* A = 1, rho = 1.5 > 1 + 0.28: pg = max(-1.5, -1.28) = -1.28, the clipped branch: grad 0. */
    float g = one_token(&c, l15, 0.0f, 0.0f, 1.0f, &st);
    CHECK(g == 0.0f);
    CLOSE(st.loss, -1.28, 1e-6);
    CHECK(st.clip_frac == 1.0);
    /* A = -1, rho = 0.5 < 1 - 0.2: pg = max(0.5, 0.8) = 0.8, clipped: grad 0. */
    g = one_token(&c, l05, 0.0f, 0.0f, -1.0f, &st);
    CHECK(g == 0.0f);
    CLOSE(st.loss, 0.8, 1e-6);
    CHECK(st.clip_frac == 1.0);
    /* A = 1, rho = 0.5 (below the range, but pessimistic): pg = max(-0.5, -0.8) = -0.5,
     * unclipped branch: grad = -A * rho = -0.5. */
    g = one_token(&c, l05, 0.0f, 0.0f, 1.0f, &st);
    CLOSE(g, -r05, 1e-7);
    CLOSE(st.loss, -r05, 1e-7);
    CHECK(st.clip_frac == 0.0);
    /* A = -1, rho = 1.5: pg = max(1.5, 1.28) = 1.5, grad = -A * rho = 1.5. */
    g = one_token(&c, l15, 0.0f, 0.0f, -1.0f, &st);
    CLOSE(g, r15, 1e-6);
    CHECK(st.clip_frac == 0.0);
    /* Inside the range: A = 2, rho = 1.1: grad = -A * rho = -2.2. Shifted logp and old (the ratio
     * only depends on the difference). */
    g = one_token(&c, l11 - 3.0f, -3.0f, 0.0f, 2.0f, &st);
    CLOSE(g, -2.0 * r11, 1e-5);
    CLOSE(st.loss, -2.0 * r11, 1e-5);
    /* clip-higher: with clip_high 0.6 the ratio 1.5 is inside for A = 1: grad -1.5. */
    GrpoLossConfig c2 = cfg_of(0.2f, 0.6f, 0.0f, GRPO_AGG_TOKEN_MEAN);
    g = one_token(&c2, l15, 0.0f, 0.0f, 1.0f, &st);
    CLOSE(g, -r15, 1e-6);
}

static void test_k3(void)
{
    /* A = 0 leaves only beta * k3; kl = exp(x) - x - 1 with x = ref - logp, grad 1 - exp(x). */
    GrpoLossConfig c = cfg_of(0.2f, 0.2f, 1.0f, GRPO_AGG_TOKEN_MEAN);
    GrpoLossStats st;
    const float ln2 = (float)log(2.0);
    const double x = ln2; /* the float value, exactly */
    /* x = ln 2: kl = 2 - ln 2 - 1 = 0.30685282, grad = 1 - 2 = -1. */
    float g = one_token(&c, 0.0f, 0.0f, ln2, 0.0f, &st);
    CLOSE(st.kl, exp(x) - x - 1.0, 1e-12);
    CLOSE(st.kl, 0.30685282, 1e-7);
    CLOSE(g, -1.0, 1e-7);
    CLOSE(st.loss, 0.30685282, 1e-7);
    CHECK(st.pg_loss == 0.0);
    /* x = -ln 2: kl = 0.5 + ln 2 - 1 = 0.19314718, grad = 1 - 0.5 = 0.5. */
    g = one_token(&c, 0.0f, 0.0f, -ln2, 0.0f, &st);
    CLOSE(st.kl, 0.19314718, 1e-7);
    CLOSE(g, 0.5, 1e-7);
    /* x = 0: kl 0, grad 0. */
    g = one_token(&c, -1.5f, -1.5f, -1.5f, 0.0f, &st);
    CHECK(st.kl == 0.0 && g == 0.0f);
    /* beta = 0.1 scales both. */
    GrpoLossConfig c01 = cfg_of(0.2f, 0.2f, 0.1f, GRPO_AGG_TOKEN_MEAN);
    g = one_token(&c01, 0.0f, 0.0f, ln2, 0.0f, &st);
    CLOSE(st.loss, 0.1 * 0.30685282, 1e-7);
    CLOSE(g, -0.1, 1e-7);
    /* x = 25 is clamped to 20: kl = e^20 - 21, grad 0. */
    g = one_token(&c, -25.0f, -25.0f, 0.0f, 0.0f, &st);
    CLOSE(st.kl, exp(20.0) - 21.0, 1e-3);
    CHECK(g == 0.0f);
    /* beta 0 with no reference at all. */
    GrpoLossConfig c0 = cfg_of(0.2f, 0.2f, 0.0f, GRPO_AGG_TOKEN_MEAN);
    float lp = 0.0f, old = 0.0f, A = 1.0f;
    uint8_t m = 1;
    grpo_loss(&c0, 1, 1, &lp, &old, NULL, &m, &A, &g, &st);
    CHECK(g == -1.0f && st.kl == 0.0);
}

static void test_agg(void)
{
    /* B = 2, T = 3, mask ((1, 1, 0), (1, 0, 0)), logp = old (rho = 1), A = (1, -3), beta 0:
     * per-token l = -A: (-1, -1, .) and (3, ., .); per-token dl/dlogp = -A likewise.
     *   token-mean:  L = (-1 - 1 + 3) / 3 = 1/3; dlogp = l / 3: (-1/3, -1/3, 0), (1, 0, 0)
     *   seq-mean-token-mean: L = ((-2) / 2 + 3 / 1) / 2 = 1; dlogp (-1/4, -1/4, 0), (3/2, 0, 0)
     *   seq-mean-token-sum-norm: L = 1 / (2 * 3) = 1/6; dlogp (-1/6, -1/6, 0), (1/2, 0, 0) */
    const float lp[6] = {-1, -2, -3, -0.5f, -4, -5};
    const uint8_t mask[6] = {1, 1, 0, 1, 0, 0};
    const float A[2] = {1, -3};
    const double want_L[3] = {1.0 / 3.0, 1.0, 1.0 / 6.0};
    const double want_g[3][6] = {{-1.0 / 3, -1.0 / 3, 0, 1, 0, 0},
                                 {-0.25, -0.25, 0, 1.5, 0, 0},
                                 {-1.0 / 6, -1.0 / 6, 0, 0.5, 0, 0}};
    for (int k = 0; k < 3; k++) {
        GrpoLossConfig c = cfg_of(0.2f, 0.2f, 0.0f, (GrpoAgg)k);
        float g[6];
        for (int i = 0; i < 6; i++)
            g[i] = NAN;
        GrpoLossStats st;
        grpo_loss(&c, 2, 3, lp, lp, NULL, mask, A, g, &st);
        CLOSE(st.loss, want_L[k], 1e-12);
        CLOSE(st.pg_loss, want_L[k], 1e-12);
        CHECK(st.tokens == 3);
        CHECK(st.clip_frac == 0.0);
        for (int i = 0; i < 6; i++)
            CLOSE(g[i], want_g[k][i], 1e-7);
        CHECK(g[2] == 0.0f && g[4] == 0.0f && g[5] == 0.0f); /* masked: exactly 0 */
    }
    /* A sequence without response tokens does not count in seq-mean-token-mean: add a third,
     * empty row: L stays 1. */
    const float lp3[9] = {-1, -2, -3, -0.5f, -4, -5, -1, -1, -1};
    const uint8_t mask3[9] = {1, 1, 0, 1, 0, 0, 0, 0, 0};
    const float A3[3] = {1, -3, 7};
    GrpoLossConfig c = cfg_of(0.2f, 0.2f, 0.0f, GRPO_AGG_SEQ_MEAN_TOKEN_MEAN);
    float g3[9];
    GrpoLossStats st;
    grpo_loss(&c, 3, 3, lp3, lp3, NULL, mask3, A3, g3, &st);
    CLOSE(st.loss, 1.0, 1e-12);
    for (int i = 6; i < 9; i++)
        CHECK(g3[i] == 0.0f);
    /* No response tokens at all: everything 0. */
    const uint8_t none[6] = {0};
    for (int k = 0; k < 3; k++) {
        c = cfg_of(0.2f, 0.2f, 0.5f, (GrpoAgg)k);
        float g[6];
        grpo_loss(&c, 2, 3, lp, lp, lp, none, A, g, &st);
        CHECK(st.loss == 0.0 && st.tokens == 0 && st.kl == 0.0 && st.clip_frac == 0.0);
        for (int i = 0; i < 6; i++)
            CHECK(g[i] == 0.0f);
    }
}

static void test_clip_frac(void)
{
    /* One sequence, A = 1, rho = (1.5, 1.0, 0.5, 2.0) with the last one masked out:
     * token 0 clipped (1.5 > 1.2), token 1 inside, token 2 unclipped branch (A > 0, rho low):
     * clip_frac = 1/3 over the 3 response tokens. */
    GrpoLossConfig c = cfg_of(0.2f, 0.2f, 0.0f, GRPO_AGG_TOKEN_MEAN);
    const float lp[4] = {(float)log(1.5), 0.0f, (float)log(0.5), (float)log(2.0)};
    const float old[4] = {0};
    const uint8_t mask[4] = {1, 1, 1, 0};
    const float A = 1.0f;
    float g[4];
    GrpoLossStats st;
    grpo_loss(&c, 1, 4, lp, old, NULL, mask, &A, g, &st);
    CLOSE(st.clip_frac, 1.0 / 3.0, 1e-15);
    CHECK(g[0] == 0.0f && g[3] == 0.0f);
    CLOSE(g[1], -1.0 / 3.0, 1e-7);
    CLOSE(g[2], -exp((double)lp[2]) / 3.0, 1e-7);
}

static void test_agg_names(void)
{
    GrpoAgg a;
    for (int k = 0; k < 3; k++) {
        CHECK(grpo_agg_parse(grpo_agg_name((GrpoAgg)k), &a) == 0 && a == (GrpoAgg)k);
    }
    CHECK(grpo_agg_parse("seq-mean-token-sum-norm", &a) == 0 && a == GRPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM);
    CHECK(grpo_agg_parse("token_mean", &a) == -1);
    OptKind k;
    CHECK(opt_kind_parse("sgd", &k) == 0 && k == OPT_SGD);
    CHECK(opt_kind_parse("adamw", &k) == 0 && k == OPT_ADAMW);
    CHECK(opt_kind_parse("adam", &k) == -1);
}

/* ---- optimizers ---- */

static Optimizer *make(OptKind kind, double momentum, size_t n)
{
    OptConfig c;
    opt_config_default(kind, &c);
    c.momentum = momentum;
    if (kind == OPT_ADAMW)
        c.lr = 1e-3;
    Optimizer *o = NULL;
    SsError err = {0};
    if (opt_create(&c, n, &o, &err) != 0) {
        fprintf(stderr, "opt_create: %s\n", err.msg);
        exit(1);
    }
    return o;
}

/* The optimizer's serialized state in a malloc'd buffer. */
static char *state_of(const Optimizer *o, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    SsError err = {0};
    CHECK(opt_state_write(o, f, &err) == 0);
    fclose(f);
    return buf;
}

static void test_lr_schedule(void)
{
    OptConfig c;
    opt_config_default(OPT_SGD, &c);
    CHECK(c.lr == 1e-1 && c.momentum == 0.0 && c.weight_decay == 0.0);
    CHECK(opt_lr_at(&c, 0) == 0.1 && opt_lr_at(&c, 1000) == 0.1);
    c.warmup_steps = 4; /* lr * (step + 1) / 4 until step 3 */
    CHECK(opt_lr_at(&c, 0) == 0.1 * (1.0 / 4.0));
    CHECK(opt_lr_at(&c, 1) == 0.1 * (2.0 / 4.0));
    CHECK(opt_lr_at(&c, 2) == 0.1 * (3.0 / 4.0));
    CHECK(opt_lr_at(&c, 3) == 0.1);
    CHECK(opt_lr_at(&c, 4) == 0.1);
    opt_config_default(OPT_ADAMW, &c);
    CHECK(c.lr == 1e-6 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 &&
          c.weight_decay == 0.01);
    /* lr_used reports the schedule. */
    opt_config_default(OPT_SGD, &c);
    c.warmup_steps = 2;
    Optimizer *o = NULL;
    CHECK(opt_create(&c, 1, &o, NULL) == 0);
    float p = 1.0f, g = 1.0f;
    double lr = 0, norm = 0;
    CHECK(opt_step(o, &p, &g, NULL, &norm, &lr) == 0);
    CHECK(lr == 0.05 && norm == 1.0 && opt_steps(o) == 1);
    CHECK(p == 1.0f - 0.05f);
    g = 1.0f;
    CHECK(opt_step(o, &p, &g, NULL, &norm, &lr) == 0);
    CHECK(lr == 0.1 && opt_steps(o) == 2);
    opt_free(o);
}

static void test_state_bytes(void)
{
    Optimizer *a = make(OPT_SGD, 0.0, 1000), *b = make(OPT_SGD, 0.9, 1000),
              *c = make(OPT_ADAMW, 0.0, 1000);
    CHECK(opt_state_bytes(a) == 0);
    CHECK(opt_state_bytes(b) == 4000);
    CHECK(opt_state_bytes(c) == 8000);
    opt_free(a);
    opt_free(b);
    opt_free(c);
    /* bad configurations */
    OptConfig cfg;
    Optimizer *o = NULL;
    SsError err = {0};
    opt_config_default(OPT_SGD, &cfg);
    cfg.momentum = 1.0;
    CHECK(opt_create(&cfg, 10, &o, &err) == SS_EUSAGE && o == NULL);
    opt_config_default(OPT_ADAMW, &cfg);
    cfg.beta2 = 1.5;
    CHECK(opt_create(&cfg, 10, &o, &err) == SS_EUSAGE && o == NULL);
    opt_config_default(OPT_ADAMW, &cfg);
    cfg.lr = NAN;
    CHECK(opt_create(&cfg, 10, &o, &err) == SS_EUSAGE && err.msg[0] != '\0');
}

static void test_first_steps(void)
{
    /* SGD: p = 1 - 0.1 * 0.5 (one rounding: fused multiply-add). */
    Optimizer *o = make(OPT_SGD, 0.0, 2);
    float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f};
    double norm;
    CHECK(opt_step(o, p, g, NULL, &norm, NULL) == 0);
    CHECK(p[0] == fmaf(0.5f, -0.1f, 1.0f) && p[1] == fmaf(0.25f, -0.1f, -2.0f));
    CLOSE(p[0], 0.95, 1e-7);
    opt_free(o);
    /* AdamW's first step (wd 0) moves by about lr * sign(g). */
    OptConfig c;
    opt_config_default(OPT_ADAMW, &c);
    c.lr = 1e-2;
    c.weight_decay = 0.0;
    CHECK(opt_create(&c, 2, &o, NULL) == 0);
    p[0] = 1.0f;
    p[1] = -2.0f;
    g[0] = 0.5f;
    g[1] = -3.0f;
    CHECK(opt_step(o, p, g, NULL, &norm, NULL) == 0);
    CLOSE(p[0], 0.99, 1e-6);
    CLOSE(p[1], -1.99, 1e-6);
    opt_free(o);
    /* Clipping: g = (3, 4) has norm 5; max 1 scales it by 1 / (5 + 1e-6) in float. */
    opt_config_default(OPT_SGD, &c);
    c.lr = 1.0;
    c.max_grad_norm = 1.0;
    CHECK(opt_create(&c, 2, &o, NULL) == 0);
    p[0] = p[1] = 0.0f;
    g[0] = 3.0f;
    g[1] = 4.0f;
    CHECK(opt_step(o, p, g, NULL, &norm, NULL) == 0);
    CHECK(norm == 5.0);
    const float coef = 1.0f / (5.0f + 1e-6f);
    CHECK(g[0] == 3.0f * coef && g[1] == 4.0f * coef);
    CLOSE(g[0], 0.6, 1e-6);
    CHECK(p[0] == -g[0] && p[1] == -g[1]);
    /* Below the limit: no scaling at all. */
    g[0] = 0.3f;
    g[1] = 0.4f;
    CHECK(opt_step(o, p, g, NULL, &norm, NULL) == 0);
    CHECK(g[0] == 0.3f && g[1] == 0.4f);
    opt_free(o);
}

static void test_nonfinite_skip(void)
{
    enum { N = 1000 };
    const OptKind kinds[3] = {OPT_SGD, OPT_SGD, OPT_ADAMW};
    const double moms[3] = {0.0, 0.9, 0.0};
    for (int k = 0; k < 3; k++) {
        Optimizer *o = make(kinds[k], moms[k], N);
        float p[N], g[N], p0[N], g0[N];
        for (int i = 0; i < N; i++)
            p[i] = frand();
        double norm;
        for (int s = 0; s < 2; s++) { /* some state first */
            for (int i = 0; i < N; i++)
                g[i] = frand();
            CHECK(opt_step(o, p, g, NULL, &norm, NULL) == 0);
        }
        const float bad[3] = {NAN, INFINITY, -INFINITY};
        for (int b = 0; b < 3; b++) {
            for (int i = 0; i < N; i++)
                g[i] = frand();
            g[N / 2 + b] = bad[b];
            memcpy(p0, p, sizeof p);
            memcpy(g0, g, sizeof g);
            size_t len0, len1;
            char *s0 = state_of(o, &len0);
            CHECK(opt_step(o, p, g, NULL, &norm, NULL) == 1);
            CHECK(!isfinite(norm));
            char *s1 = state_of(o, &len1);
            CHECK(memcmp(p, p0, sizeof p) == 0);
            CHECK(memcmp(g, g0, sizeof g) == 0);
            CHECK(len0 == len1 && memcmp(s0, s1, len0) == 0);
            CHECK(opt_steps(o) == 2);
            free(s0);
            free(s1);
        }
        opt_free(o);
    }
}

static void test_mask(void)
{
    enum { N = 1001 };
    const OptKind kinds[3] = {OPT_SGD, OPT_SGD, OPT_ADAMW};
    const double moms[3] = {0.0, 0.9, 0.0};
    for (int k = 0; k < 3; k++) {
        Optimizer *o = make(kinds[k], moms[k], N), *ref = make(kinds[k], moms[k], N);
        float p[N], g[N], p0[N], pr[N], gr[N];
        uint8_t mask[N];
        for (int i = 0; i < N; i++) {
            p[i] = frand();
            mask[i] = (i % 3) == 1;
        }
        memcpy(p0, p, sizeof p);
        memcpy(pr, p, sizeof p);
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < N; i++)
                g[i] = frand();
            /* The reference sees the same gradient, zero outside the mask: masked elements must
             * follow it exactly (the norm covers masked elements only). */
            for (int i = 0; i < N; i++)
                gr[i] = mask[i] ? g[i] : 0.0f;
            g[5] = NAN; /* off the mask (5 % 3 == 2): ignored */
            double norm, norm_r;
            CHECK(opt_step(o, p, g, mask, &norm, NULL) == 0);
            CHECK(opt_step(ref, pr, gr, mask, &norm_r, NULL) == 0);
            CHECK(norm == norm_r);
        }
        int changed = 0, same_as_ref = 1;
        for (int i = 0; i < N; i++) {
            if (!mask[i]) {
                CHECK(memcmp(&p[i], &p0[i], sizeof(float)) == 0);
            } else {
                changed += p[i] != p0[i];
                same_as_ref &= memcmp(&p[i], &pr[i], sizeof(float)) == 0;
            }
        }
        CHECK(changed > 300);
        CHECK(same_as_ref);
        /* State of unmasked elements untouched (still zero). */
        size_t len;
        char *st = state_of(o, &len);
        size_t hdr = len - opt_state_bytes(o);
        const float *arr = (const float *)(st + hdr);
        size_t narr = opt_state_bytes(o) / sizeof(float);
        int bad = 0, nonzero = 0;
        for (size_t j = 0; j < narr; j++) {
            uint32_t bits;
            memcpy(&bits, &arr[j], 4);
            if (!mask[j % N])
                bad += bits != 0;
            else
                nonzero += bits != 0;
        }
        CHECK(bad == 0);
        CHECK(narr == 0 || nonzero > 300);
        free(st);
        opt_free(o);
        opt_free(ref);
    }
}

static void test_state_roundtrip(void)
{
    enum { N = 777 };
    const OptKind kinds[3] = {OPT_SGD, OPT_SGD, OPT_ADAMW};
    const double moms[3] = {0.0, 0.9, 0.0};
    for (int k = 0; k < 3; k++) {
        Optimizer *a = make(kinds[k], moms[k], N);
        float pa[N], pb[N], pc[N], g[N], g2[N];
        for (int i = 0; i < N; i++)
            pa[i] = frand();
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < N; i++)
                g[i] = frand();
            CHECK(opt_step(a, pa, g, NULL, NULL, NULL) == 0);
        }
        FILE *f = tmpfile();
        SsError err = {0};
        CHECK(opt_state_write(a, f, &err) == 0);
        rewind(f);
        Optimizer *b = make(kinds[k], moms[k], N), *c = make(kinds[k], moms[k], N);
        CHECK(opt_state_read(b, f, &err) == 0);
        CHECK(opt_steps(b) == 3);
        memcpy(pb, pa, sizeof pa);
        memcpy(pc, pa, sizeof pa);
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < N; i++)
                g[i] = frand();
            memcpy(g2, g, sizeof g);
            CHECK(opt_step(a, pa, g, NULL, NULL, NULL) == 0);
            memcpy(g, g2, sizeof g);
            CHECK(opt_step(b, pb, g, NULL, NULL, NULL) == 0);
            memcpy(g, g2, sizeof g);
            CHECK(opt_step(c, pc, g, NULL, NULL, NULL) == 0);
        }
        CHECK(memcmp(pa, pb, sizeof pa) == 0);
        /* Without the state the run differs (momentum, moments or at least the step count). */
        if (k > 0)
            CHECK(memcmp(pa, pc, sizeof pa) != 0);
        /* Restoring into a different optimizer fails. */
        rewind(f);
        Optimizer *d = make(OPT_SGD, 0.0, N);
        if (k > 0)
            CHECK(opt_state_read(d, f, &err) == SS_EINCOMPAT);
        rewind(f);
        Optimizer *e = make(kinds[k], moms[k], N + 1);
        CHECK(opt_state_read(e, f, &err) == SS_EINCOMPAT);
        fclose(f);
        /* A truncated stream fails. */
        f = tmpfile();
        fwrite("SSOPTST1", 1, 8, f);
        rewind(f);
        CHECK(opt_state_read(b, f, &err) == SS_EINPUT);
        fclose(f);
        opt_free(a);
        opt_free(b);
        opt_free(c);
        opt_free(d);
        opt_free(e);
    }
}

int main(void)
{
    test_advantages();
    test_clip();
    test_k3();
    test_agg();
    test_clip_frac();
    test_agg_names();
    test_lr_schedule();
    test_state_bytes();
    test_first_steps();
    test_nonfinite_skip();
    test_mask();
    test_state_roundtrip();
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("all grpo/optim unit checks passed\n");
    return 0;
}
