/* The CPU twins of the trainer ops (kernels/train_ops.h, built from the SS_HD functions of
 * kernels/train_elem.h that the CUDA kernels call too) against train/'s own code, on random
 * inputs:
 *   rmsnorm    tops_rmsnorm_fwd/bwd_cpu == model_rmsnorm_fwd / model_rmsnorm_bwd_row (bits), also
 *              per head (+ rope) == model_qk_norm_rope (bits), with and without the norm
 *   rope       tops_rope_table == model_rope_table, rope fwd/bwd == model_rope_row(_bwd) (bits)
 *   attention  tops_attn_fwd/bwd_cpu against the trainer's GEMM formulation (model_gemm, as
 *              model_forward.c / model_backward.c), grouped-query, within float rounding; and the
 *              backward against finite differences of the forward
 *   swiglu     against the trainer's expressions (bits)
 *   logits     tops_logits_fwd_cpu on the logits of model_forward (a tiny model) == its logp and
 *              entropy (bits); the backward against the trainer's expression (bits)
 *   grpo       tops_grpo_loss_cpu == grpo_loss: dlogp bits, loss and stats within 1e-12, every
 *              aggregation, with and without KL, masked and empty sequences
 *   optimizers sumsq/clip/scale + sgd, momentum, adamw (with mask, weight decay, clipping,
 *              warm-up) == opt_step over several steps, bit for bit
 *   model      kernels/train_model.h on the CPU backend (the ops composed as the CUDA backend
 *              composes them; the layout from train/train_device.h as grpo-train builds it)
 *              == model_forward / model_backward: logp, entropy and every
 *              parameter's gradient within float rounding, for qwen3, qwen2 and llama, tied and
 *              untied, with padded sequences */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/train_model.h"
#include "kernels/train_ops.h"
#include "tests/check.h"
#include "train/grpo_loss.h"
#include "train/model_internal.h"
#include "train/optim.h"
#include "train/train_device.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uni(void)
{
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) * 0x1p-53;
}

static float *rnd(size_t n, double lo, double hi)
{
    float *a = malloc((n ? n : 1) * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = (float)(lo + (hi - lo) * uni());
    return a;
}

static float *zeros(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

static int same_bits(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* max |a - b| / (max |b| + tiny) */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        d = e > d ? e : d;
        m = fabs(b[i]) > m ? fabs(b[i]) : m;
    }
    return d / m;
}

/* ---- RMSNorm and rope ---- */

static void test_rmsnorm(void)
{
    size_t rows = 7, H = 43; /* not a multiple of 8: the lanes' tail */
    double eps = 1e-6;
    float *x = rnd(rows * H, -2, 2), *w = rnd(H, 0.5, 1.5), *dy = rnd(rows * H, -1, 1);
    float *y1 = zeros(rows * H), *y2 = zeros(rows * H), *r1 = zeros(rows), *r2 = zeros(rows);
    model_rmsnorm_fwd(x, w, rows, H, eps, y1, r1);
    tops_rmsnorm_fwd_cpu(x, H, w, rows, 1, H, eps, y2, H, r2);
    CHECK(same_bits(y1, y2, rows * H));
    CHECK(same_bits(r1, r2, rows));
    for (int acc = 0; acc < 2; acc++) {
        float *dx1 = rnd(rows * H, -1, 1), *dx2 = malloc(rows * H * sizeof(float));
        float *dw1 = rnd(H, -1, 1), *dw2 = malloc(H * sizeof(float));
        memcpy(dx2, dx1, rows * H * sizeof(float));
        memcpy(dw2, dw1, H * sizeof(float));
        for (size_t r = 0; r < rows; r++)
            model_rmsnorm_bwd_row(dy + r * H, x + r * H, w, r1[r], H, dx1 + r * H, dw1, acc);
        tops_rmsnorm_bwd_cpu(dy, H, x, H, w, r1, rows, 1, H, dx2, H, dw2, acc);
        CHECK(same_bits(dx1, dx2, rows * H));
        CHECK(same_bits(dw1, dw2, H));
        free(dx1), free(dx2), free(dw1), free(dw2);
    }
    free(x), free(w), free(dy), free(y1), free(y2), free(r1), free(r2);
}

/* Per-head norm + rotation as the model applies them to q and k rows, and the rotation's
 * transpose. */
static void test_qk_norm_rope(void)
{
    size_t T = 6, rows = 12, nh = 3, D = 16, lds = 70, ldd = nh * D;
    double eps = 1e-6;
    float *ct1 = zeros(T * D / 2), *st1 = zeros(T * D / 2), *ct2 = zeros(T * D / 2),
          *st2 = zeros(T * D / 2);
    model_rope_table((int)T, (int)D, 1e6, ct1, st1);
    tops_rope_table((int)T, (int)D, 1e6, ct2, st2);
    CHECK(same_bits(ct1, ct2, T * D / 2) && same_bits(st1, st2, T * D / 2));
    float *src = rnd(rows * lds, -2, 2), *w = rnd(D, 0.5, 1.5);
    for (int with_norm = 0; with_norm < 2; with_norm++) {
        const float *wn = with_norm ? w : NULL;
        float *d1 = zeros(rows * ldd), *d2 = zeros(rows * ldd);
        float *r1 = zeros(rows * nh), *r2 = zeros(rows * nh);
        model_qk_norm_rope(src + 5, lds, wn, rows, nh, D, eps, ct1, st1, NULL, T, d1, ldd, r1);
        tops_rmsnorm_fwd_cpu(src + 5, lds, wn, rows, nh, D, eps, d2, ldd, r2);
        tops_rope_fwd_cpu(d2, ldd, rows, nh, D, ct2, st2, NULL, T);
        CHECK(same_bits(d1, d2, rows * ldd));
        CHECK(same_bits(r1, r2, rows * nh));
        /* the backward rotation, with explicit positions */
        int32_t pos[12];
        for (size_t r = 0; r < rows; r++)
            pos[r] = (int32_t)((r * 5) % T);
        for (size_t r = 0; r < rows; r++)
            for (size_t h = 0; h < nh; h++)
                model_rope_row_bwd(d1 + r * ldd + h * D, ct1 + pos[r] * D / 2,
                                   st1 + pos[r] * D / 2, D);
        tops_rope_bwd_cpu(d2, ldd, rows, nh, D, ct2, st2, pos, T);
        CHECK(same_bits(d1, d2, rows * ldd));
        free(d1), free(d2), free(r1), free(r2);
    }
    free(ct1), free(st1), free(ct2), free(st2), free(src), free(w);
}

/* ---- attention ---- */

/* The trainer's formulation (train/model_forward.c attention_fwd, model_backward.c attention_bwd
 * with every row kept), on the same layout. */
static void ref_attn_fwd(const TopsAttnShape *s, const float *q, const float *k, const float *v,
                         float *P, float *ctx)
{
    size_t T = s->T, D = s->D, group = s->Q / s->K;
    float scale = (float)(1.0 / sqrt((double)D));
    for (size_t b = 0; b < s->B; b++)
        for (size_t h = 0; h < s->Q; h++) {
            size_t g = h / group;
            float *Pb = P + (b * s->Q + h) * T * T;
            model_gemm(0, 1, T, T, D, scale, q + b * T * s->ldq + h * D, s->ldq,
                       k + b * T * s->ldk + g * D, s->ldk, 0, Pb, T);
            for (size_t i = 0; i < T; i++) {
                float *r = Pb + i * T, mx = r[0], sum = 0;
                for (size_t j = 1; j <= i; j++)
                    mx = r[j] > mx ? r[j] : mx;
                for (size_t j = 0; j <= i; j++) {
                    r[j] = expf(r[j] - mx);
                    sum += r[j];
                }
                for (size_t j = 0; j <= i; j++)
                    r[j] *= 1.0f / sum;
                for (size_t j = i + 1; j < T; j++)
                    r[j] = 0;
            }
            model_gemm(0, 0, T, D, T, 1, Pb, T, v + b * T * s->ldv + g * D, s->ldv, 0,
                       ctx + b * T * s->ldc + h * D, s->ldc);
        }
}

static void ref_attn_bwd(const TopsAttnShape *s, const float *q, const float *k, const float *v,
                         const float *P, const float *dctx, float *dq, float *dk, float *dv)
{
    size_t T = s->T, D = s->D, group = s->Q / s->K;
    float scale = (float)(1.0 / sqrt((double)D));
    float *dS = zeros(T * T);
    for (size_t b = 0; b < s->B; b++)
        for (size_t g = 0; g < s->K; g++)
            for (size_t r = 0; r < group; r++) {
                size_t h = g * group + r;
                float beta = r == 0 ? 0.0f : 1.0f;
                const float *Pb = P + (b * s->Q + h) * T * T;
                const float *dc = dctx + b * T * s->ldc + h * D;
                float *dvb = dv + b * T * s->ldv + g * D, *dkb = dk + b * T * s->ldk + g * D;
                model_gemm(1, 0, T, D, T, 1, Pb, T, dc, s->ldc, beta, dvb, s->ldv);
                model_gemm(0, 1, T, T, D, 1, dc, s->ldc, v + b * T * s->ldv + g * D, s->ldv, 0,
                           dS, T);
                for (size_t i = 0; i < T; i++) {
                    const float *p = Pb + i * T;
                    float *sr = dS + i * T, dot = 0;
                    for (size_t j = 0; j <= i; j++)
                        dot += p[j] * sr[j];
                    for (size_t j = 0; j <= i; j++)
                        sr[j] = p[j] * (sr[j] - dot) * scale;
                    for (size_t j = i + 1; j < T; j++)
                        sr[j] = 0;
                }
                model_gemm(0, 0, T, D, T, 1, dS, T, k + b * T * s->ldk + g * D, s->ldk, 0,
                           dq + b * T * s->ldq + h * D, s->ldq);
                model_gemm(1, 0, T, D, T, 1, dS, T, q + b * T * s->ldq + h * D, s->ldq, beta,
                           dkb, s->ldk);
            }
    free(dS);
}

static double attn_objective(const TopsAttnShape *s, const float *q, const float *k,
                             const float *v, const float *wgt, float *P, float *ctx)
{
    tops_attn_fwd_cpu(s, q, k, v, P, ctx);
    double o = 0;
    size_t N = s->B * s->T;
    for (size_t n = 0; n < N; n++)
        for (size_t j = 0; j < s->Q * s->D; j++)
            o += (double)wgt[n * s->Q * s->D + j] * ctx[n * s->ldc + j];
    return o;
}

static void test_attention(void)
{
    /* the model's layout: q and k in their own buffers, v inside the qkv rows */
    TopsAttnShape s = {.B = 2, .T = 9, .Q = 4, .K = 2, .D = 8};
    size_t QD = s.Q * s.D, KD = s.K * s.D, QKV = QD + 2 * KD, N = s.B * s.T;
    s.ldq = QD, s.ldk = KD, s.ldv = QKV, s.ldc = QD;
    float *q = rnd(N * QD, -1, 1), *k = rnd(N * KD, -1, 1), *qkv = rnd(N * QKV, -1, 1);
    const float *v = qkv + QD + KD;
    size_t PT = s.B * s.Q * s.T * s.T;
    float *P1 = zeros(PT), *P2 = zeros(PT), *c1 = zeros(N * QD), *c2 = zeros(N * QD);
    ref_attn_fwd(&s, q, k, v, P1, c1);
    tops_attn_fwd_cpu(&s, q, k, v, P2, c2);
    CHECK(rel_diff(P2, P1, PT) < 1e-6);
    CHECK(rel_diff(c2, c1, N * QD) < 1e-6);
    float *dctx = rnd(N * QD, -1, 1);
    float *dq1 = zeros(N * QD), *dk1 = zeros(N * KD), *dv1 = zeros(N * QKV);
    float *dq2 = zeros(N * QD), *dk2 = zeros(N * KD), *dv2 = zeros(N * QKV), *dS = zeros(PT);
    ref_attn_bwd(&s, q, k, v, P1, dctx, dq1, dk1, dv1 + QD + KD);
    tops_attn_bwd_cpu(&s, q, k, v, P2, dctx, dS, dq2, dk2, dv2 + QD + KD);
    CHECK(rel_diff(dq2, dq1, N * QD) < 1e-5);
    CHECK(rel_diff(dk2, dk1, N * KD) < 1e-5);
    CHECK(rel_diff(dv2, dv1, N * QKV) < 1e-5);
    /* finite differences of sum(dctx * ctx) in a few coordinates of q, k and v */
    float *Pt = zeros(PT), *ct = zeros(N * QD);
    struct { float *base; const float *grad; size_t n; } cases[3] = {
        {q, dq2, N * QD}, {k, dk2, N * KD}, {qkv + QD + KD, dv2 + QD + KD, N * QKV - QD - KD}};
    double worst = 0;
    for (int c = 0; c < 3; c++)
        for (int t = 0; t < 6; t++) {
            size_t i = (size_t)(uni() * (double)cases[c].n);
            if (c == 2)
                i = (i / QKV) * QKV + i % KD; /* inside a v slot */
            float keep = cases[c].base[i], h = 1e-2f;
            cases[c].base[i] = keep + h;
            double op = attn_objective(&s, q, k, v, dctx, Pt, ct);
            cases[c].base[i] = keep - h;
            double om = attn_objective(&s, q, k, v, dctx, Pt, ct);
            cases[c].base[i] = keep;
            double fd = (op - om) / (2.0 * h), an = cases[c].grad[i];
            double e = fabs(fd - an) / (fabs(an) + 1e-2);
            worst = e > worst ? e : worst;
        }
    printf("attention: finite differences within %.2g\n", worst);
    CHECK(worst < 1e-2);
    free(q), free(k), free(qkv), free(P1), free(P2), free(c1), free(c2), free(dctx);
    free(dq1), free(dk1), free(dv1), free(dq2), free(dk2), free(dv2), free(dS), free(Pt), free(ct);
}

/* ---- SwiGLU ---- */

static void test_swiglu(void)
{
    size_t rows = 5, I = 13;
    float *gu = rnd(rows * 2 * I, -4, 4), *dy = rnd(rows * I, -1, 1);
    float *y = zeros(rows * I), *dgu = zeros(rows * 2 * I);
    tops_swiglu_fwd_cpu(gu, rows, I, y);
    tops_swiglu_bwd_cpu(gu, dy, rows, I, dgu);
    int ok = 1;
    for (size_t n = 0; n < rows; n++)
        for (size_t i = 0; i < I; i++) { /* train/model_forward.c and model_backward.c */
            float g = gu[n * 2 * I + i], u = gu[n * 2 * I + I + i], d = dy[n * I + i];
            float yr = g * (1.0f / (1.0f + expf(-g))) * u;
            float sg = 1.0f / (1.0f + expf(-g));
            float du = d * (g * sg), dg = d * u * (sg * (1.0f + g * (1.0f - sg)));
            ok &= same_bits(&yr, &y[n * I + i], 1) && same_bits(&du, &dgu[n * 2 * I + I + i], 1) &&
                  same_bits(&dg, &dgu[n * 2 * I + i], 1);
        }
    CHECK(ok);
    free(gu), free(dy), free(y), free(dgu);
}

/* ---- embedding and column sums ---- */

static void test_embed_colsum(void)
{
    size_t N = 9, V = 5, H = 6;
    int32_t tok[9] = {0, 3, 3, -1, 4, 7, 1, 3, 0};
    float *emb = rnd(V * H, -1, 1), *x = zeros(N * H), *dx = rnd(N * H, -1, 1);
    float *g1 = zeros(V * H), *g2 = zeros(V * H);
    tops_embed_fwd_cpu(emb, tok, N, V, H, x);
    int ok = 1;
    for (size_t n = 0; n < N; n++)
        for (size_t j = 0; j < H; j++) {
            float want = tok[n] >= 0 && tok[n] < (int32_t)V ? emb[tok[n] * H + j] : 0.0f;
            ok &= x[n * H + j] == want;
            if (tok[n] >= 0 && tok[n] < (int32_t)V)
                g1[tok[n] * H + j] += dx[n * H + j];
        }
    tops_embed_bwd_cpu(dx, tok, N, V, H, g2);
    CHECK(ok);
    CHECK(same_bits(g1, g2, V * H));
    float c1[6] = {0}, c2[6] = {0};
    for (size_t n = 0; n < N; n++)
        for (size_t j = 0; j < 4; j++)
            c1[j] += dx[n * H + 2 + j];
    tops_colsum_add_cpu(dx + 2, H, N, 4, c2);
    CHECK(same_bits(c1, c2, 6));
    free(emb), free(x), free(dx), free(g1), free(g2);
}

/* ---- logits, through a tiny model's forward ---- */

static void test_logits(void)
{
    ModelConfig cfg = {.arch = MODEL_ARCH_QWEN3, .vocab_size = 37, .hidden_size = 16,
                       .intermediate_size = 24, .num_hidden_layers = 2,
                       .num_attention_heads = 4, .num_key_value_heads = 2, .head_dim = 8,
                       .max_position_embeddings = 16, .rms_norm_eps = 1e-6, .rope_theta = 1e4,
                       .initializer_range = 0.5, .tie_word_embeddings = false};
    SsError err;
    Model *m = NULL;
    ModelActs *acts = NULL;
    if (model_create(&cfg, &m, &err) != 0 || model_acts_create(m, 2, 7, &acts, &err) != 0) {
        fprintf(stderr, "model: %s\n", err.msg);
        failures++;
        model_free(m);
        return;
    }
    float *params = malloc(m->nparams * sizeof(float));
    model_init_params(m, params, 7);
    size_t B = 2, T = 7, N = B * T, V = (size_t)cfg.vocab_size;
    int32_t tokens[14], targets[14];
    for (size_t n = 0; n < N; n++) {
        tokens[n] = (int32_t)(uni() * (double)V);
        targets[n] = n % T == T - 1 || n == 3 ? -1 : (int32_t)(uni() * (double)V);
    }
    targets[5] = 99; /* out of range: no target */
    float lp1[14], en1[14], lp2[14], en2[14], lse[14];
    model_forward(m, params, tokens, targets, (int)B, (int)T, acts, lp1, en1);
    const float *logits = model_acts_logits(acts);
    tops_logits_fwd_cpu(logits, targets, N, V, lse, lp2, en2);
    CHECK(same_bits(lp1, lp2, N));
    CHECK(same_bits(en1, en2, N));
    /* lse: the stored log-sum-exp the backward reads; against a direct double computation */
    int ok = 1;
    for (size_t n = 0; n < N; n++) {
        double s = 0;
        for (size_t v = 0; v < V; v++)
            s += exp((double)logits[n * V + v]);
        ok &= fabs(log(s) - lse[n]) <= 1e-6 * (fabs(log(s)) + 1);
    }
    CHECK(ok);
    float *dlogp = rnd(N, -1, 1), *dz = zeros(N * V);
    dlogp[1] = 0;
    tops_logits_bwd_cpu(logits, lse, targets, dlogp, N, V, dz);
    ok = 1;
    for (size_t n = 0; n < N; n++) { /* train/model_backward.c logits_bwd */
        int32_t t = targets[n];
        for (size_t v = 0; v < V; v++) {
            float g = 0;
            if (t >= 0 && (size_t)t < V && dlogp[n] != 0) {
                g = -dlogp[n] * expf(logits[n * V + v] - lse[n]);
                if (v == (size_t)t)
                    g += dlogp[n];
            }
            ok &= same_bits(&g, &dz[n * V + v], 1);
        }
    }
    CHECK(ok);
    free(dlogp), free(dz), free(params);
    model_acts_free(acts);
    model_free(m);
}

/* ---- GRPO ---- */

static void test_grpo(void)
{
    int B = 6, T = 11;
    size_t n = (size_t)B * T;
    float *lp = rnd(n, -3, -0.1), *old = zeros(n), *ref = zeros(n), *adv = rnd(B, -1.5, 1.5);
    uint8_t *mask = calloc(n, 1);
    for (size_t i = 0; i < n; i++) {
        old[i] = lp[i] + (float)(0.6 * (uni() - 0.5)); /* ratios on both sides of the clip */
        ref[i] = lp[i] + (float)(2.0 * (uni() - 0.5));
        mask[i] = uni() < 0.7;
    }
    ref[3] = lp[3] + 25.0f; /* the KL clamp bites */
    for (int t = 0; t < T; t++)
        mask[2 * T + t] = 0; /* a sequence without response tokens */
    mask[3] = 1;
    for (int agg = 0; agg < 3; agg++)
        for (int kl = 0; kl < 2; kl++) {
            GrpoLossConfig c1 = {.clip_low = 0.2f, .clip_high = 0.28f, .beta = kl ? 0.04f : 0.0f,
                                 .agg = (GrpoAgg)agg};
            TopsGrpoConfig c2 = {.clip_low = c1.clip_low, .clip_high = c1.clip_high,
                                 .beta = c1.beta, .agg = agg};
            float *d1 = zeros(n), *d2 = zeros(n);
            GrpoLossStats s1;
            TopsGrpoStats s2;
            const float *r = kl ? ref : NULL;
            grpo_loss(&c1, B, T, lp, old, r, mask, adv, d1, &s1);
            tops_grpo_loss_cpu(&c2, B, T, lp, old, r, mask, adv, d2, &s2);
            CHECK(same_bits(d1, d2, n));
            CHECK(fabs(s1.loss - s2.loss) <= 1e-12 * (fabs(s1.loss) + 1e-30));
            CHECK(fabs(s1.pg_loss - s2.pg_loss) <= 1e-12 * (fabs(s1.pg_loss) + 1e-30));
            CHECK(fabs(s1.kl - s2.kl) <= 1e-12 * (fabs(s1.kl) + 1e-30));
            CHECK(s1.clip_frac == s2.clip_frac && s1.tokens == s2.tokens);
            CHECK(s1.clip_frac > 0 && s1.clip_frac < 1);
            free(d1), free(d2);
        }
    free(lp), free(old), free(ref), free(adv), free(mask);
}

/* ---- optimizers ---- */

static void test_optim(void)
{
    size_t n = 10000 + 77; /* more than two norm blocks */
    float *p0 = rnd(n, -1, 1);
    uint8_t *mask = malloc(n);
    for (size_t i = 0; i < n; i++)
        mask[i] = uni() < 0.8;
    struct { OptKind kind; double mom, wd, max_norm; long warmup; int masked; } cases[] = {
        {OPT_SGD, 0.0, 0.0, 0.0, 0, 0},   {OPT_SGD, 0.0, 0.01, 1.0, 3, 1},
        {OPT_SGD, 0.9, 0.0, 0.5, 0, 0},   {OPT_SGD, 0.9, 0.02, 0.0, 2, 1},
        {OPT_ADAMW, 0, 0.01, 0.0, 0, 0}, {OPT_ADAMW, 0, 0.1, 1.0, 3, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        OptConfig cfg;
        opt_config_default(cases[c].kind, &cfg);
        cfg.lr = cases[c].kind == OPT_SGD ? 0.05 : 1e-3;
        cfg.momentum = cases[c].mom;
        cfg.weight_decay = cases[c].wd;
        cfg.max_grad_norm = cases[c].max_norm;
        cfg.warmup_steps = cases[c].warmup;
        const uint8_t *mk = cases[c].masked ? mask : NULL;
        Optimizer *o;
        SsError err;
        CHECK(opt_create(&cfg, n, &o, &err) == 0);
        float *p1 = malloc(n * sizeof(float)), *p2 = malloc(n * sizeof(float));
        memcpy(p1, p0, n * sizeof(float));
        memcpy(p2, p0, n * sizeof(float));
        float *m = zeros(n), *v = zeros(n);
        int ok = 1;
        for (long step = 0; step < 5; step++) {
            float *g1 = rnd(n, -0.05, 0.05), *g2 = malloc(n * sizeof(float));
            memcpy(g2, g1, n * sizeof(float));
            double norm1, lr1;
            CHECK(opt_step(o, p1, g1, mk, &norm1, &lr1) == 0);
            /* the twin path, as a device step would run it */
            double norm2 = sqrt(tops_sumsq_cpu(g2, mk, n));
            ok &= norm1 == norm2;
            float coef = tops_clip_coef(norm2, cfg.max_grad_norm);
            if (coef < 1.0f)
                tops_scale_cpu(g2, mk, n, coef);
            double lr = opt_lr_at(&cfg, step);
            ok &= lr == lr1;
            if (cfg.kind == OPT_SGD) {
                tops_sgd_cpu(p2, g2, cfg.momentum != 0.0 ? m : NULL, mk, n, (float)-lr,
                             (float)cfg.weight_decay, (float)cfg.momentum, step == 0);
            } else {
                TopsAdamw a = tops_adamw_scalars(lr, cfg.weight_decay, cfg.beta1, cfg.beta2,
                                                 cfg.eps, step + 1);
                tops_adamw_cpu(p2, g2, m, v, mk, n, &a);
            }
            ok &= same_bits(g1, g2, n) && same_bits(p1, p2, n);
            free(g1), free(g2);
        }
        if (!ok)
            fprintf(stderr, "optimizer case %zu differs\n", c);
        CHECK(ok);
        CHECK(!same_bits(p1, p0, n));
        opt_free(o);
        free(p1), free(p2), free(m), free(v);
    }
    free(p0), free(mask);
}

/* ---- the composed model ---- */

static void test_model(ModelArch arch, bool tied)
{
    ModelConfig cfg = {.arch = arch, .vocab_size = 41, .hidden_size = 24,
                       .intermediate_size = 40, .num_hidden_layers = 2,
                       .num_attention_heads = 4, .num_key_value_heads = 2, .head_dim = 8,
                       .max_position_embeddings = 16, .rms_norm_eps = 1e-6, .rope_theta = 1e4,
                       .initializer_range = 0.3, .tie_word_embeddings = tied};
    int B = 3, T = 9;
    size_t N = (size_t)B * T;
    SsError err;
    Model *m = NULL;
    ModelActs *acts = NULL;
    TrainModel *tm = NULL;
    TmLayer layers[2];
    if (model_create(&cfg, &m, &err) != 0 || model_acts_create(m, B, T, &acts, &err) != 0) {
        fprintf(stderr, "model: %s\n", err.msg);
        failures++;
        model_free(m);
        return;
    }
    TmLayout lay = train_device_layout(m, layers);
    if (tm_create(&lay, TM_CPU, TM_GEMM_F32, B, T, &tm, &err) != 0) {
        fprintf(stderr, "tm_create: %s\n", err.msg);
        failures++;
        model_acts_free(acts);
        model_free(m);
        return;
    }
    float *params = malloc(m->nparams * sizeof(float));
    model_init_params(m, params, 11);
    for (size_t i = 0; i < m->ntensors; i++) /* norms and biases away from 1 and 0 */
        if (m->tensors[i].ndim == 1)
            for (size_t j = 0; j < m->tensors[i].numel; j++)
                params[m->tensors[i].offset + j] += (float)(0.4 * (uni() - 0.5));
    int32_t tokens[27], targets[27];
    int len[3] = {9, 6, 1}; /* sequence lengths; the rest is padding */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            tokens[n] = t < len[b] ? (int32_t)(uni() * 41) : 0;
            targets[n] = t + 1 < len[b] ? (int32_t)(uni() * 41) : -1;
        }
    float lp1[27], en1[27], lp2[27], en2[27], dlogp[27];
    model_forward(m, params, tokens, targets, B, T, acts, lp1, en1);
    CHECK(tm_forward(tm, params, tokens, targets, B, T, lp2, en2, &err) == 0);
    CHECK(rel_diff(lp2, lp1, N) < 1e-5);
    CHECK(rel_diff(en2, en1, N) < 1e-5);
    for (size_t n = 0; n < N; n++)
        dlogp[n] = targets[n] >= 0 ? (float)(uni() - 0.5) : 0.0f;
    float *g1 = zeros(m->nparams), *g2 = zeros(m->nparams);
    model_backward(m, params, acts, dlogp, g1);
    CHECK(tm_backward(tm, params, dlogp, g2, &err) == 0);
    double worst = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < m->ntensors; i++) {
        const ModelTensor *t = &m->tensors[i];
        double r = rel_diff(g2 + t->offset, g1 + t->offset, t->numel);
        if (r > worst)
            worst = r, worst_name = t->name;
    }
    printf("model %s%s: logp %.2g, entropy %.2g, worst gradient (%s) %.2g relative\n",
           model_arch_name(arch), tied ? " tied" : "", rel_diff(lp2, lp1, N),
           rel_diff(en2, en1, N), worst_name, worst);
    CHECK(worst < 1e-4);
    free(params), free(g1), free(g2);
    tm_free(tm);
    model_acts_free(acts);
    model_free(m);
}

int main(void)
{
    test_rmsnorm();
    test_qk_norm_rope();
    test_attention();
    test_swiglu();
    test_embed_colsum();
    test_logits();
    test_grpo();
    test_optim();
    test_model(MODEL_ARCH_QWEN3, false);
    test_model(MODEL_ARCH_QWEN3, true);
    test_model(MODEL_ARCH_QWEN2, false);
    test_model(MODEL_ARCH_LLAMA, true);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    else
        printf("train ops: all CPU twins match the trainer\n");
    return failures != 0;
}
