/* The CUDA trainer ops (kernels/train_ops.h) against their CPU twins, and the CUDA model step
 * (kernels/train_model.h, TM_CUDA) against train/'s CPU model; suite gpu, exit 77 without a CUDA
 * device. Same random inputs on both sides:
 *   bit-exact  rope fwd/bwd, the RMSNorm weight gradients, embedding fwd/bwd, bias add and
 *              column sums, gradient scaling, sgd / momentum / adamw over several steps
 *   rounding   RMSNorm (tree-ordered double sums), attention fwd/bwd, SwiGLU, logits
 *              fwd/bwd, GRPO dlogp (CUDA's expf/exp within a few ulp): 1e-5 relative; loss
 *              sums 1e-12
 *   model      tm_forward / tm_backward with float32 cuBLAS GEMMs == model_forward /
 *              model_backward on a tiny config (qwen3, qwen2, llama): logp, entropy, every
 *              gradient within 1e-4 relative; with bf16 GEMM inputs within 5e-2
 *   timing     one training step (forward + backward) on a small config, float32 and bf16
 *              GEMMs, against the CPU model: "RESULT train_step_<kind> <ms> ms" lines */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/device.h"
#include "kernels/train_model.h"
#include "kernels/train_ops.h"
#include "train/model_internal.h"
#include "train/train_device.h"

#include "tests/check.h"

static SsError err;

/* A CUDA call that must work: on failure, report and stop. */
#define MUST(call)                                                                            \
    do {                                                                                      \
        if ((call) != 0) {                                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call, err.msg);      \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

static uint64_t rng = 0x0123456789abcdefull;

static double uni(void)
{
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (double)((rng * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-53;
}

static float *rnd(size_t n, double lo, double hi)
{
    float *a = malloc((n ? n : 1) * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (float)(lo + (hi - lo) * uni());
    return a;
}

/* A device copy of n bytes of host memory. */
static void *up(const void *h, size_t bytes)
{
    void *d = tops_dev_alloc(bytes, &err);
    if (!d) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        exit(1);
    }
    MUST(tops_dev_upload(d, h, bytes, &err));
    return d;
}

/* The device array's n floats, in a new host buffer. */
static float *down(const void *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    MUST(tops_dev_download(h, d, n * sizeof *h, &err));
    return h;
}

static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e != e)
            return INFINITY;
        d = e > d ? e : d;
        m = fabs(b[i]) > m ? fabs(b[i]) : m;
    }
    return d / m;
}

/* Compares device array d with host twin h: bit-exact (tol < 0) or within tol relative. */
static void cmp(const char *what, const void *d, const float *h, size_t n, double tol)
{
    float *g = down(d, n);
    if (tol < 0) {
        EXPECT(memcmp(g, h, n * sizeof *g) == 0, "%s: not bit-exact (rel %g)", what,
               rel_diff(g, h, n));
    } else {
        double r = rel_diff(g, h, n);
        EXPECT(r <= tol, "%s: relative difference %g > %g", what, r, tol);
    }
    free(g);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the ops ---- */

static void test_norm_rope(void)
{
    size_t rows = 37, nh = 4, D = 64, ld = nh * D + 16, T = 13;
    double eps = 1e-6;
    float *x = rnd(rows * ld, -2, 2), *w = rnd(D, 0.5, 1.5), *dy = rnd(rows * ld, -1, 1);
    float *y = calloc(rows * ld, 4), *rs = calloc(rows * nh, 4), *dx = rnd(rows * ld, -1, 1);
    float *dw = rnd(D, -1, 1);
    float *dX = up(x, rows * ld * 4), *dW = up(w, D * 4), *dDY = up(dy, rows * ld * 4);
    float *dY = up(y, rows * ld * 4), *dRS = up(rs, rows * nh * 4), *dDX = up(dx, rows * ld * 4);
    float *dDW = up(dw, D * 4);
    tops_rmsnorm_fwd_cpu(x, ld, w, rows, nh, D, eps, y, ld, rs);
    MUST(tops_rmsnorm_fwd_cuda(dX, ld, dW, rows, nh, D, eps, dY, ld, dRS, &err));
    cmp("rmsnorm y", dY, y, rows * ld, 1e-6);
    cmp("rmsnorm rstd", dRS, rs, rows * nh, 1e-6);
    MUST(tops_dev_upload(dRS, rs, rows * nh * 4, &err)); /* the same rstd on both sides */
    tops_rmsnorm_bwd_cpu(dy, ld, x, ld, w, rs, rows, nh, D, dx, ld, dw, 1);
    MUST(tops_rmsnorm_bwd_cuda(dDY, ld, dX, ld, dW, dRS, rows, nh, D, dDX, ld, dDW, 1, &err));
    cmp("rmsnorm dx", dDX, dx, rows * ld, 1e-5);
    cmp("rmsnorm dw", dDW, dw, D, -1);
    /* without the norm: a strided copy */
    tops_rmsnorm_fwd_cpu(x, ld, NULL, rows, nh, D, eps, y, ld, rs);
    MUST(tops_rmsnorm_fwd_cuda(dX, ld, NULL, rows, nh, D, eps, dY, ld, dRS, &err));
    cmp("copy", dY, y, rows * ld, -1);
    /* rope */
    float *ct = malloc(T * D / 2 * 4), *st = malloc(T * D / 2 * 4);
    tops_rope_table((int)T, (int)D, 1e6, ct, st);
    float *dCT = up(ct, T * D / 2 * 4), *dST = up(st, T * D / 2 * 4);
    int32_t *pos = malloc(rows * 4);
    for (size_t r = 0; r < rows; r++)
        pos[r] = (int32_t)((r * 7) % T);
    int32_t *dPOS = up(pos, rows * 4);
    tops_rope_fwd_cpu(x, ld, rows, nh, D, ct, st, NULL, T);
    MUST(tops_rope_fwd_cuda(dX, ld, rows, nh, D, dCT, dST, NULL, T, &err));
    cmp("rope fwd", dX, x, rows * ld, -1);
    tops_rope_bwd_cpu(x, ld, rows, nh, D, ct, st, pos, T);
    MUST(tops_rope_bwd_cuda(dX, ld, rows, nh, D, dCT, dST, dPOS, T, &err));
    cmp("rope bwd", dX, x, rows * ld, -1);
    free(x), free(w), free(dy), free(y), free(rs), free(dx), free(dw), free(ct), free(st);
    free(pos);
    void *dev[] = {dX, dW, dDY, dY, dRS, dDX, dDW, dCT, dST, dPOS};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        tops_dev_free(dev[i]);
}

static void test_attention(void)
{
    TopsAttnShape s = {.B = 3, .T = 37, .Q = 8, .K = 2, .D = 64};
    size_t QD = s.Q * s.D, KD = s.K * s.D, QKV = QD + 2 * KD, N = s.B * s.T;
    s.ldq = QD, s.ldk = KD, s.ldv = QKV, s.ldc = QD;
    size_t PT = s.B * s.Q * s.T * s.T;
    float *q = rnd(N * QD, -1, 1), *k = rnd(N * KD, -1, 1), *qkv = rnd(N * QKV, -1, 1);
    float *dctx = rnd(N * QD, -1, 1);
    float *P = calloc(PT, 4), *ctx = calloc(N * QD, 4), *dS = calloc(PT, 4);
    float *dq = calloc(N * QD, 4), *dk = calloc(N * KD, 4), *dv = calloc(N * QKV, 4);
    float *gq = up(q, N * QD * 4), *gk = up(k, N * KD * 4), *gqkv = up(qkv, N * QKV * 4);
    float *gdctx = up(dctx, N * QD * 4), *gP = up(P, PT * 4), *gctx = up(ctx, N * QD * 4);
    float *gdS = up(dS, PT * 4), *gdq = up(dq, N * QD * 4), *gdk = up(dk, N * KD * 4);
    float *gdv = up(dv, N * QKV * 4);
    tops_attn_fwd_cpu(&s, q, k, qkv + QD + KD, P, ctx);
    MUST(tops_attn_fwd_cuda(&s, gq, gk, gqkv + QD + KD, gP, gctx, &err));
    cmp("attention P", gP, P, PT, 1e-5);
    cmp("attention ctx", gctx, ctx, N * QD, 1e-5);
    MUST(tops_dev_upload(gP, P, PT * 4, &err));
    tops_attn_bwd_cpu(&s, q, k, qkv + QD + KD, P, dctx, dS, dq, dk, dv + QD + KD);
    MUST(tops_attn_bwd_cuda(&s, gq, gk, gqkv + QD + KD, gP, gdctx, gdS, gdq, gdk, gdv + QD + KD,
                            &err));
    cmp("attention dq", gdq, dq, N * QD, 1e-5);
    cmp("attention dk", gdk, dk, N * KD, 1e-5);
    cmp("attention dv", gdv, dv, N * QKV, 1e-5);
    free(q), free(k), free(qkv), free(dctx), free(P), free(ctx), free(dS), free(dq), free(dk);
    free(dv);
    void *dev[] = {gq, gk, gqkv, gdctx, gP, gctx, gdS, gdq, gdk, gdv};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        tops_dev_free(dev[i]);
}

static void test_elementwise(void)
{
    size_t rows = 29, ni = 300, V = 50, H = 96, N = 41;
    float *gu = rnd(rows * 2 * ni, -5, 5), *dy = rnd(rows * ni, -1, 1);
    float *y = calloc(rows * ni, 4), *dgu = calloc(rows * 2 * ni, 4);
    float *ggu = up(gu, rows * 2 * ni * 4), *gdy = up(dy, rows * ni * 4);
    float *gy = up(y, rows * ni * 4), *gdgu = up(dgu, rows * 2 * ni * 4);
    tops_swiglu_fwd_cpu(gu, rows, ni, y);
    tops_swiglu_bwd_cpu(gu, dy, rows, ni, dgu);
    MUST(tops_swiglu_fwd_cuda(ggu, rows, ni, gy, &err));
    MUST(tops_swiglu_bwd_cuda(ggu, gdy, rows, ni, gdgu, &err));
    cmp("swiglu y", gy, y, rows * ni, 1e-5);
    cmp("swiglu dgu", gdgu, dgu, rows * 2 * ni, 1e-5);
    int32_t tok[41];
    for (size_t n = 0; n < N; n++)
        tok[n] = n % 9 == 4 ? -1 : (int32_t)(uni() * (double)V);
    float *emb = rnd(V * H, -1, 1), *x = calloc(N * H, 4), *dx = rnd(N * H, -1, 1);
    float *demb = rnd(V * H, -1, 1), *b = rnd(H, -1, 1), *cs = rnd(H, -1, 1);
    int32_t *gtok = up(tok, N * 4);
    float *gemb = up(emb, V * H * 4), *gx = up(x, N * H * 4), *gdx = up(dx, N * H * 4);
    float *gdemb = up(demb, V * H * 4), *gb = up(b, H * 4), *gcs = up(cs, H * 4);
    tops_embed_fwd_cpu(emb, tok, N, V, H, x);
    MUST(tops_embed_fwd_cuda(gemb, gtok, N, V, H, gx, &err));
    cmp("embed fwd", gx, x, N * H, -1);
    tops_embed_bwd_cpu(dx, tok, N, V, H, demb);
    MUST(tops_embed_bwd_cuda(gdx, gtok, N, V, H, gdemb, &err));
    cmp("embed bwd", gdemb, demb, V * H, -1);
    tops_add_bias_cpu(dx, H, b, N, H - 5);
    MUST(tops_add_bias_cuda(gdx, H, gb, N, H - 5, &err));
    cmp("add bias", gdx, dx, N * H, -1);
    tops_colsum_add_cpu(dx + 3, H, N, H - 7, cs);
    MUST(tops_colsum_add_cuda(gdx + 3, H, N, H - 7, gcs, &err));
    cmp("column sums", gcs, cs, H, -1);
    free(gu), free(dy), free(y), free(dgu), free(emb), free(x), free(dx), free(demb), free(b);
    free(cs);
    void *dev[] = {ggu, gdy, gy, gdgu, gtok, gemb, gx, gdx, gdemb, gb, gcs};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        tops_dev_free(dev[i]);
}

static void test_logits(size_t N, size_t V)
{
    float *z = rnd(N * V, -8, 8), *dlogp = rnd(N, -1, 1);
    int32_t *tg = malloc(N * 4);
    for (size_t n = 0; n < N; n++)
        tg[n] = n % 5 == 2 ? -1 : (int32_t)(uni() * (double)V);
    dlogp[0] = 0;
    float *lse = calloc(N, 4), *lp = calloc(N, 4), *en = calloc(N, 4), *dz = calloc(N * V, 4);
    float *gz = up(z, N * V * 4), *gdl = up(dlogp, N * 4), *glse = up(lse, N * 4);
    float *glp = up(lp, N * 4), *gen = up(en, N * 4), *gdz = up(dz, N * V * 4);
    int32_t *gtg = up(tg, N * 4);
    tops_logits_fwd_cpu(z, tg, N, V, lse, lp, en);
    MUST(tops_logits_fwd_cuda(gz, gtg, N, V, glse, glp, gen, &err));
    cmp("logits lse", glse, lse, N, 1e-6);
    cmp("logits logp", glp, lp, N, 1e-6);
    cmp("logits entropy", gen, en, N, 1e-6);
    MUST(tops_dev_upload(glse, lse, N * 4, &err));
    tops_logits_bwd_cpu(z, lse, tg, dlogp, N, V, dz);
    MUST(tops_logits_bwd_cuda(gz, glse, gtg, gdl, N, V, gdz, &err));
    cmp("logits dlogits", gdz, dz, N * V, 1e-5);
    free(z), free(dlogp), free(tg), free(lse), free(lp), free(en), free(dz);
    void *dev[] = {gz, gdl, glse, glp, gen, gdz, gtg};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        tops_dev_free(dev[i]);
}

static void test_grpo(void)
{
    int B = 64, T = 200;
    size_t n = (size_t)B * T;
    float *lp = rnd(n, -3, -0.1), *old = malloc(n * 4), *ref = malloc(n * 4);
    float *adv = rnd((size_t)B, -1.5, 1.5);
    uint8_t *mask = malloc(n);
    for (size_t i = 0; i < n; i++) {
        old[i] = lp[i] + (float)(0.6 * (uni() - 0.5));
        ref[i] = lp[i] + (float)(2.0 * (uni() - 0.5));
        mask[i] = uni() < 0.7 && i / T != 5;
    }
    float *glp = up(lp, n * 4), *gold = up(old, n * 4), *gref = up(ref, n * 4);
    float *gadv = up(adv, (size_t)B * 4), *gd = up(lp, n * 4);
    uint8_t *gmask = up(mask, n);
    float *d = malloc(n * 4);
    for (int agg = 0; agg < 3; agg++)
        for (int kl = 0; kl < 2; kl++) {
            TopsGrpoConfig c = {.clip_low = 0.2f, .clip_high = 0.28f, .beta = kl ? 0.04f : 0.0f,
                                .agg = agg};
            TopsGrpoStats s1, s2;
            tops_grpo_loss_cpu(&c, B, T, lp, old, kl ? ref : NULL, mask, adv, d, &s1);
            MUST(tops_grpo_loss_cuda(&c, B, T, glp, gold, kl ? gref : NULL, gmask, gadv, gd, &s2,
                                     &err));
            cmp("grpo dlogp", gd, d, n, 1e-6);
            EXPECT(fabs(s1.loss - s2.loss) <= 1e-12 * fabs(s1.loss) + 1e-15, "grpo loss %g vs %g",
                   s2.loss, s1.loss);
            EXPECT(fabs(s1.kl - s2.kl) <= 1e-12 * fabs(s1.kl) + 1e-15, "grpo kl");
            EXPECT(s1.tokens == s2.tokens && fabs(s1.clip_frac - s2.clip_frac) < 1e-3,
                   "grpo counts");
        }
    free(lp), free(old), free(ref), free(adv), free(mask), free(d);
    void *dev[] = {glp, gold, gref, gadv, gd, gmask};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        tops_dev_free(dev[i]);
}

static void test_optim(void)
{
    size_t n = 1000003;
    float *p = rnd(n, -1, 1), *m = calloc(n, 4), *v = calloc(n, 4);
    uint8_t *mask = malloc(n);
    for (size_t i = 0; i < n; i++)
        mask[i] = uni() < 0.9;
    float *gp = up(p, n * 4), *gm = up(m, n * 4), *gv = up(v, n * 4), *gg = up(p, n * 4);
    uint8_t *gmask = up(mask, n);
    for (int kind = 0; kind < 3; kind++) /* sgd, momentum, adamw */
        for (long step = 1; step <= 3; step++) {
            float *g = rnd(n, -0.1, 0.1);
            MUST(tops_dev_upload(gg, g, n * 4, &err));
            double s1 = tops_sumsq_cpu(g, mask, n), s2;
            MUST(tops_sumsq_cuda(gg, gmask, n, &s2, &err));
            EXPECT(fabs(s1 - s2) <= 1e-12 * s1, "sumsq %.17g vs %.17g", s2, s1);
            float c = tops_clip_coef(sqrt(s1), 10.0);
            tops_scale_cpu(g, mask, n, c);
            MUST(tops_scale_cuda(gg, gmask, n, c, &err));
            cmp("scale", gg, g, n, -1);
            if (kind < 2) {
                tops_sgd_cpu(p, g, kind ? m : NULL, mask, n, -0.05f, 0.01f, 0.9f, step == 1);
                MUST(tops_sgd_cuda(gp, gg, kind ? gm : NULL, gmask, n, -0.05f, 0.01f, 0.9f,
                                   step == 1, &err));
            } else {
                TopsAdamw a = tops_adamw_scalars(1e-3, 0.01, 0.9, 0.999, 1e-8, step);
                tops_adamw_cpu(p, g, m, v, mask, n, &a);
                MUST(tops_adamw_cuda(gp, gg, gm, gv, gmask, n, &a, &err));
            }
            cmp(kind == 0 ? "sgd p" : kind == 1 ? "momentum p" : "adamw p", gp, p, n, -1);
            if (kind > 0)
                cmp("optimizer state m", gm, m, n, -1);
            if (kind == 2)
                cmp("adamw state v", gv, v, n, -1);
            free(g);
        }
    free(p), free(m), free(v), free(mask);
    void *dev[] = {gp, gm, gv, gg, gmask};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        tops_dev_free(dev[i]);
}

/* ---- the model step ---- */

/* One model on both backends; timing > 0: time that many steps instead of checking. */
static void model_case(const ModelConfig *cfg, int B, int T, TmGemm gm, double tol, int timing)
{
    size_t N = (size_t)B * T;
    Model *m = NULL;
    ModelActs *acts = NULL;
    TrainModel *tm = NULL;
    MUST(model_create(cfg, &m, &err));
    MUST(model_acts_create(m, B, T, &acts, &err));
    TmLayer *layers = malloc(m->cfg.num_hidden_layers * sizeof *layers);
    TmLayout lay = train_device_layout(m, layers);
    MUST(tm_create(&lay, TM_CUDA, gm, B, T, &tm, &err));
    float *params = malloc(m->nparams * 4), *g1 = calloc(m->nparams, 4);
    model_init_params(m, params, 5);
    for (size_t i = 0; i < m->ntensors; i++)
        if (m->tensors[i].ndim == 1)
            for (size_t j = 0; j < m->tensors[i].numel; j++)
                params[m->tensors[i].offset + j] += (float)(0.4 * (uni() - 0.5));
    int32_t *tok = malloc(N * 4), *tg = malloc(N * 4);
    float *lp1 = malloc(N * 4), *en1 = malloc(N * 4), *lp2 = malloc(N * 4), *en2 = malloc(N * 4);
    float *dlogp = malloc(N * 4);
    for (size_t n = 0; n < N; n++) {
        size_t b = n / T, t = n % T, len = (size_t)T - (b % 3) * ((size_t)T / 4);
        tok[n] = t < len ? (int32_t)(uni() * cfg->vocab_size) : 0;
        tg[n] = t + 1 < len ? (int32_t)(uni() * cfg->vocab_size) : -1;
        dlogp[n] = tg[n] >= 0 ? (float)(uni() - 0.5) / (float)N : 0.0f;
    }
    float *dparams = tm_alloc(tm, m->nparams, &err), *dgrads = tm_alloc(tm, m->nparams, &err);
    if (!dparams || !dgrads) {
        fprintf(stderr, "FAIL: %s\n", err.msg);
        exit(1);
    }
    MUST(tm_upload(tm, dparams, params, m->nparams, &err));
    const char *kind = gm == TM_GEMM_BF16 ? "bf16" : "f32";
    if (timing) {
        MUST(tm_forward(tm, dparams, tok, tg, B, T, lp2, en2, &err)); /* warm-up */
        MUST(tm_backward(tm, dparams, dlogp, dgrads, &err));
        double t0 = now();
        for (int i = 0; i < timing; i++) {
            MUST(tm_forward(tm, dparams, tok, tg, B, T, lp2, en2, &err));
            MUST(tm_backward(tm, dparams, dlogp, dgrads, &err));
        }
        double gpu = (now() - t0) / timing;
        printf("RESULT train_step_%s %.2f ms (B %d, T %d, %zu params)\n", kind, gpu * 1e3, B, T,
               m->nparams);
        if (gm == TM_GEMM_F32) {
            t0 = now();
            model_forward(m, params, tok, tg, B, T, acts, lp1, en1);
            model_backward(m, params, acts, dlogp, g1);
            printf("RESULT train_step_cpu %.2f ms\n", (now() - t0) * 1e3);
        }
    } else {
        model_forward(m, params, tok, tg, B, T, acts, lp1, en1);
        model_backward(m, params, acts, dlogp, g1);
        MUST(tm_forward(tm, dparams, tok, tg, B, T, lp2, en2, &err));
        MUST(tm_backward(tm, dparams, dlogp, dgrads, &err));
        float *g2 = down(dgrads, m->nparams);
        double rl = rel_diff(lp2, lp1, N), re = rel_diff(en2, en1, N), worst = 0;
        const char *wn = "";
        for (size_t i = 0; i < m->ntensors; i++) {
            double r = rel_diff(g2 + m->tensors[i].offset, g1 + m->tensors[i].offset,
                                m->tensors[i].numel);
            if (r > worst)
                worst = r, wn = m->tensors[i].name;
        }
        printf("model %s %s: logp %.2g, entropy %.2g, worst gradient (%s) %.2g\n",
               model_arch_name(cfg->arch), kind, rl, re, wn, worst);
        EXPECT(rl <= tol && re <= tol && worst <= tol, "model %s %s beyond %g",
               model_arch_name(cfg->arch), kind, tol);
        free(g2);
    }
    tm_release(tm, dparams);
    tm_release(tm, dgrads);
    tm_free(tm);
    model_acts_free(acts);
    model_free(m);
    free(layers), free(params), free(g1), free(tok), free(tg), free(lp1), free(en1), free(lp2);
    free(en2), free(dlogp);
}

int main(void)
{
    char desc[256];
    if (device_cuda_count() == 0) {
        printf("SKIP: %s\n", device_cuda_describe(0, desc, sizeof desc));
        return 77;
    }
    test_norm_rope();
    test_attention();
    test_elementwise();
    test_logits(33, 1000);
    test_logits(3, 151936); /* Qwen's vocabulary */
    test_grpo();
    test_optim();
    ModelArch archs[3] = {MODEL_ARCH_QWEN3, MODEL_ARCH_QWEN2, MODEL_ARCH_LLAMA};
    for (int a = 0; a < 3; a++) {
        ModelConfig c = {.arch = archs[a], .vocab_size = 97, .hidden_size = 64,
                         .intermediate_size = 96, .num_hidden_layers = 2,
                         .num_attention_heads = 4, .num_key_value_heads = 2, .head_dim = 16,
                         .max_position_embeddings = 32, .rms_norm_eps = 1e-6,
                         .rope_theta = 1e4, .initializer_range = 0.1,
                         .tie_word_embeddings = a == 2};
        model_case(&c, 3, 17, TM_GEMM_F32, 1e-4, 0);
        model_case(&c, 3, 17, TM_GEMM_BF16, 5e-2, 0);
    }
    /* a step on a small Qwen3-shaped model */
    ModelConfig big = {.arch = MODEL_ARCH_QWEN3, .vocab_size = 8192, .hidden_size = 512,
                       .intermediate_size = 1536, .num_hidden_layers = 4,
                       .num_attention_heads = 8, .num_key_value_heads = 2, .head_dim = 64,
                       .max_position_embeddings = 256, .rms_norm_eps = 1e-6,
                       .rope_theta = 1e6, .initializer_range = 0.02};
    model_case(&big, 8, 256, TM_GEMM_F32, 0, 3);
    model_case(&big, 8, 256, TM_GEMM_BF16, 0, 3);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}
