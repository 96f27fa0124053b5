/* Unit tests of train/lora.h on tiny configs (tied and untied, grouped-query):
 *   targets      exactly the layers' q/k/v/o/gate/up/down_proj (no embedding, norm or lm_head),
 *                the factor layout (A (r, in) then B (out, r) per target, contiguous)
 *   init         PEFT's default: A in [-1/sqrt(in), 1/sqrt(in)) with a uniform's mean and
 *                variance, B = 0, a pure function of the seed; merging B = 0 gives the base
 *                bit for bit, and so the same logp bit for bit
 *   merge        W = W0 + s B A against a double computation; and the LoRA forward
 *                x W0^T + s (x A^T) B^T (as PEFT computes it, in double) against x W^T with the
 *                merged W in float32 (float rounding) and rounded to bf16 (bf16 rounding)
 *   backward     dA = s B^T dW, dB = s dW A^T against double, for a random dW
 *   gradients    dL/dA and dL/dB through the whole model (merge, forward, backward,
 *                lora_backward) against central finite differences with Richardson
 *                extrapolation of loss = sum w * logp
 *   io           lora_save_factors / lora_load_factors round trip bit for bit; a rank mismatch
 *                and a missing file are SS_EINPUT naming the file
 * Exit status: 0 pass, 1 fail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/dtype_encode.h"
#include "train/lora.h"
#include "train/model.h"
#include "train/rng.h"
#include "tests/check.h"
#include "tests/train_testutil.h"

/* PEFT's init, then B random N(0, sd^2) (as after some training), so both factors matter. */
static float *random_factors(const Lora *l, uint64_t seed, double sd)
{
    float *f = malloc(l->nfactors * sizeof *f);
    lora_init(l, f, seed);
    uint64_t key = rng_stream(seed, 42, 0, 0);
    for (size_t t = 0; t < l->ntargets; t++) {
        const LoraTarget *lt = &l->targets[t];
        for (size_t j = 0; j < lt->out * (size_t)l->r; j++)
            f[lt->b_off + j] = (float)(sd * rng_normal(key, lt->b_off + j));
    }
    return f;
}

static void random_batch(int V, int B, int T, uint64_t seed, int32_t *tokens, int32_t *targets)
{
    uint64_t key = rng_stream(seed, 7, 0, 0);
    for (int b = 0; b < B; b++) {
        int len = b == 1 ? T - 3 : T;
        for (int t = 0; t < T; t++)
            tokens[b * T + t] = t < len ? (int32_t)rng_below(key, (uint64_t)(b * T + t), V) : 0;
        for (int t = 0; t < T; t++)
            targets[b * T + t] = t + 1 < len ? tokens[b * T + t + 1] : -1;
    }
}

static double weighted_loss(const float *logp, const float *w, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)w[i] * logp[i];
    return s;
}

/* ---- targets and layout ---- */

static void test_targets(bool tied)
{
    ModelConfig cfg = tiny_config(tied, 4, 2);
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    Lora *l;
    CHECK_OK(lora_create(m, 3, 6.0, &l, &err_));
    CHECK(l->ntargets == 7 * 2);
    CHECK(l->scale == 2.0f);
    size_t off = 0, ntarget = 0;
    for (size_t i = 0; i < m->ntensors; i++) {
        const char *n = m->tensors[i].name;
        bool want = strstr(n, "_proj.weight") != NULL;
        CHECK(lora_is_target(n) == want);
        if (!want)
            continue;
        const LoraTarget *lt = &l->targets[ntarget++];
        CHECK(lt->tensor == i && lt->out == m->tensors[i].shape[0] &&
              lt->in == m->tensors[i].shape[1]);
        CHECK(lt->a_off == off && lt->b_off == off + 3 * lt->in);
        off = lt->b_off + lt->out * 3;
    }
    CHECK(ntarget == l->ntargets && off == l->nfactors);
    CHECK(!lora_is_target("model.embed_tokens.weight") && !lora_is_target("lm_head.weight") &&
          !lora_is_target("model.layers.0.self_attn.q_norm.weight") &&
          !lora_is_target("model.norm.weight"));
    char name[192];
    lora_factor_name(m, &l->targets[0], false, name, sizeof name);
    CHECK(strcmp(name, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") == 0);
    lora_factor_name(m, &l->targets[l->ntargets - 1], true, name, sizeof name);
    CHECK(strcmp(name, "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight") == 0);
    Lora *bad;
    SsError err = {0};
    CHECK(lora_create(m, 0, 1.0, &bad, &err) == SS_EUSAGE && !bad);
    CHECK(lora_create(m, 2, 0.0, &bad, &err) == SS_EUSAGE && !bad);
    lora_free(l);
    model_free(m);
}

/* ---- init and B = 0 ---- */

static void test_init(void)
{
    ModelConfig cfg = tiny_config(false, 4, 2);
    cfg.hidden_size = 64;
    cfg.intermediate_size = 96;
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    Lora *l;
    CHECK_OK(lora_create(m, 8, 16.0, &l, &err_));
    float *f = malloc(l->nfactors * sizeof *f), *g = malloc(l->nfactors * sizeof *g);
    lora_init(l, f, 5);
    lora_init(l, g, 5);
    CHECK(memcmp(f, g, l->nfactors * sizeof *f) == 0);
    lora_init(l, g, 6);
    CHECK(memcmp(f, g, l->nfactors * sizeof *f) != 0);
    for (size_t t = 0; t < l->ntargets; t++) {
        const LoraTarget *lt = &l->targets[t];
        double bound = 1.0 / sqrt((double)lt->in), s1 = 0, s2 = 0;
        size_t na = (size_t)l->r * lt->in, out_of = 0;
        for (size_t j = 0; j < na; j++) {
            double a = f[lt->a_off + j];
            out_of += !(fabs(a) <= bound);
            s1 += a;
            s2 += a * a;
        }
        CHECK(out_of == 0);
        double mean = s1 / na, var = s2 / na - mean * mean, want = bound * bound / 3;
        /* na >= 512 draws: the mean within 5 standard errors, the variance within 20% */
        CHECK(fabs(mean) < 5 * sqrt(want / na));
        CHECK(fabs(var / want - 1) < 0.2);
        for (size_t j = 0; j < lt->out * (size_t)l->r; j++)
            CHECK(f[lt->b_off + j] == 0.0f);
    }
    /* B = 0: the merged weights are the base bit for bit, and so are the log-probabilities. */
    float *base = random_params(m, 3), *merged = malloc(m->nparams * sizeof(float));
    lora_merge(m, l, base, f, merged);
    CHECK(memcmp(base, merged, m->nparams * sizeof(float)) == 0);
    enum { B = 2, T = 9, N = B * T };
    int32_t tokens[N], targets[N];
    float lp0[N], lp1[N];
    random_batch(cfg.vocab_size, B, T, 8, tokens, targets);
    ModelActs *a;
    CHECK_OK(model_acts_create(m, B, T, &a, &err_));
    model_forward(m, base, tokens, targets, B, T, a, lp0, NULL);
    model_forward(m, merged, tokens, targets, B, T, a, lp1, NULL);
    CHECK(memcmp(lp0, lp1, sizeof lp0) == 0);
    printf("init: A within 1/sqrt(in), mean and variance of U(-b, b); B = 0 merges to the base "
           "bit for bit\n");
    model_acts_free(a);
    free(base);
    free(merged);
    free(f);
    free(g);
    lora_free(l);
    model_free(m);
}

/* ---- merge and the LoRA forward ---- */

static float bf16_round(float x)
{
    uint16_t h;
    dtype_encode_bf16(&x, &h, 1);
    uint32_t bits = (uint32_t)h << 16;
    float y;
    memcpy(&y, &bits, sizeof y);
    return y;
}

static void test_merge(void)
{
    ModelConfig cfg = tiny_config(true, 4, 2);
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    Lora *l;
    CHECK_OK(lora_create(m, 4, 8.0, &l, &err_));
    float *base = random_params(m, 21), *f = random_factors(l, 22, 0.2);
    float *w = malloc(m->nparams * sizeof *w);
    lora_merge(m, l, base, f, w);
    /* non-targets untouched */
    for (size_t i = 0; i < m->ntensors; i++)
        if (!lora_is_target(m->tensors[i].name))
            CHECK(memcmp(w + m->tensors[i].offset, base + m->tensors[i].offset,
                         m->tensors[i].numel * sizeof(float)) == 0);
    double worst_w = 0, worst_f = 0, worst_b = 0;
    uint64_t key = rng_stream(23, 0, 0, 0);
    for (size_t t = 0; t < l->ntargets; t++) {
        const LoraTarget *lt = &l->targets[t];
        const float *w0 = base + m->tensors[lt->tensor].offset, *wm = w + m->tensors[lt->tensor].offset;
        const float *A = f + lt->a_off, *Bm = f + lt->b_off;
        size_t out = lt->out, in = lt->in, r = (size_t)l->r;
        double s = l->scale;
        for (size_t i = 0; i < out; i++)
            for (size_t j = 0; j < in; j++) {
                double d = 0, mag = 0;
                for (size_t k = 0; k < r; k++) {
                    d += (double)Bm[i * r + k] * A[k * in + j];
                    mag += fabs((double)Bm[i * r + k] * A[k * in + j]);
                }
                double want = w0[i * in + j] + s * d;
                /* relative to the magnitude of the terms (float32 rounding of each) */
                double e = fabs(wm[i * in + j] - want) / (fabs(w0[i * in + j]) + s * mag);
                worst_w = fmax(worst_w, e);
            }
        /* y = x W0^T + s (x A^T) B^T for 5 random rows x, against x W^T */
        for (int row = 0; row < 5; row++) {
            double x[64];
            for (size_t j = 0; j < in; j++)
                x[j] = rng_normal(key, t * 1000 + (size_t)row * 100 + j);
            double xa[16];
            for (size_t k = 0; k < r; k++) {
                xa[k] = 0;
                for (size_t j = 0; j < in; j++)
                    xa[k] += x[j] * A[k * in + j];
            }
            for (size_t i = 0; i < out; i++) {
                double y = 0, yf = 0, yb = 0, bound_b = 0, absx = 0;
                for (size_t j = 0; j < in; j++) {
                    y += x[j] * w0[i * in + j];
                    yf += x[j] * wm[i * in + j];
                    float wb = bf16_round(wm[i * in + j]);
                    yb += x[j] * wb;
                    bound_b += fabs(x[j]) * fabs(wb) * 0x1p-8; /* half a bf16 ulp, relative */
                    absx += fabs(x[j]) * (fabs(wm[i * in + j]) + 1e-3);
                }
                for (size_t k = 0; k < r; k++)
                    y += s * xa[k] * Bm[i * r + k];
                worst_f = fmax(worst_f, fabs(yf - y) / absx);
                worst_b = fmax(worst_b, fabs(yb - y) / (bound_b + 1e-6 * absx));
            }
        }
    }
    printf("merge: max rel |W - (W0 + s B A)| %.2e; LoRA forward vs merged: float32 %.2e "
           "(relative to sum |x||W|), bf16 %.2f of the half-ulp bound\n", worst_w, worst_f,
           worst_b);
    CHECK(worst_w < 1e-6);
    CHECK(worst_f < 1e-6);
    CHECK(worst_b <= 1.0);
    free(base);
    free(f);
    free(w);
    lora_free(l);
    model_free(m);
}

/* ---- lora_backward against double ---- */

static void test_backward(void)
{
    ModelConfig cfg = tiny_config(false, 2, 2);
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    Lora *l;
    CHECK_OK(lora_create(m, 5, 3.0, &l, &err_));
    float *f = random_factors(l, 31, 0.5), *dw = malloc(m->nparams * sizeof *dw);
    float *df = malloc(l->nfactors * sizeof *df);
    uint64_t key = rng_stream(32, 0, 0, 0);
    for (size_t i = 0; i < m->nparams; i++)
        dw[i] = (float)rng_normal(key, i);
    memset(df, 0xff, l->nfactors * sizeof *df); /* overwritten, not accumulated */
    lora_backward(m, l, f, dw, df);
    double worst = 0;
    for (size_t t = 0; t < l->ntargets; t++) {
        const LoraTarget *lt = &l->targets[t];
        const float *g = dw + m->tensors[lt->tensor].offset, *A = f + lt->a_off,
                    *Bm = f + lt->b_off;
        size_t out = lt->out, in = lt->in, r = (size_t)l->r;
        double s = l->scale;
        for (size_t k = 0; k < r; k++)
            for (size_t j = 0; j < in; j++) {
                double d = 0, mag = 0;
                for (size_t i = 0; i < out; i++) {
                    d += (double)Bm[i * r + k] * g[i * in + j];
                    mag += fabs((double)Bm[i * r + k] * g[i * in + j]);
                }
                worst = fmax(worst, fabs(df[lt->a_off + k * in + j] - s * d) / (s * mag));
            }
        for (size_t i = 0; i < out; i++)
            for (size_t k = 0; k < r; k++) {
                double d = 0, mag = 0;
                for (size_t j = 0; j < in; j++) {
                    d += (double)g[i * in + j] * A[k * in + j];
                    mag += fabs((double)g[i * in + j] * A[k * in + j]);
                }
                worst = fmax(worst, fabs(df[lt->b_off + i * r + k] - s * d) / (s * mag));
            }
    }
    printf("backward: dA = s B^T dW, dB = s dW A^T, max error %.2e of sum |terms|\n", worst);
    CHECK(worst < 1e-6);
    free(f);
    free(dw);
    free(df);
    lora_free(l);
    model_free(m);
}

/* ---- gradients through the model against finite differences ---- */

static void test_gradients(bool tied, int Q, int K)
{
    ModelConfig cfg = tiny_config(tied, Q, K);
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    Lora *l;
    CHECK_OK(lora_create(m, 4, 8.0, &l, &err_));
    enum { B = 2, T = 7, N = B * T };
    ModelActs *a;
    CHECK_OK(model_acts_create(m, B, T, &a, &err_));
    float *base = random_params(m, 41 + (uint64_t)tied), *f = random_factors(l, 43, 0.15);
    float *p = malloc(m->nparams * sizeof *p), *g = calloc(m->nparams, sizeof *g);
    float *df = malloc(l->nfactors * sizeof *df);
    int32_t tokens[N], targets[N];
    float logp[N], w[N];
    random_batch(cfg.vocab_size, B, T, 45, tokens, targets);
    uint64_t key = rng_stream(46, 0, 0, 0);
    for (int i = 0; i < N; i++)
        w[i] = targets[i] < 0 ? 0.0f : (float)(0.5 + rng_uniform(key, (uint64_t)i));
    lora_merge(m, l, base, f, p);
    model_forward(m, p, tokens, targets, B, T, a, logp, NULL);
    model_backward(m, p, a, w, g);
    lora_backward(m, l, f, g, df);
    const double h = 1e-2;
    double worst = 0;
    for (size_t t = 0; t < l->ntargets; t++) {
        const LoraTarget *lt = &l->targets[t];
        for (int k = 0; k < 2; k++) {
            size_t off = k == 0 ? lt->a_off : lt->b_off, n = (size_t)l->r * (k == 0 ? lt->in : lt->out);
            double gmax = 0, err_max = 0;
            for (size_t j = 0; j < n; j++)
                gmax = fmax(gmax, fabs(df[off + j]));
            for (size_t sidx = 0; sidx < 8; sidx++) {
                size_t j = (size_t)rng_below(key, 1000 + t * 100 + (size_t)k * 50 + sidx, n);
                float *x = &f[off + j];
                float x0 = *x;
                double fv[4];
                const double steps[4] = {h, -h, h / 2, -h / 2};
                for (int q = 0; q < 4; q++) {
                    *x = (float)(x0 + steps[q]);
                    lora_merge(m, l, base, f, p);
                    model_forward(m, p, tokens, targets, B, T, a, logp, NULL);
                    fv[q] = weighted_loss(logp, w, N);
                }
                *x = x0;
                double d1 = (fv[0] - fv[1]) / (2 * h), d2 = (fv[2] - fv[3]) / h;
                double fd = (4 * d2 - d1) / 3;
                err_max = fmax(err_max, fabs(fd - df[off + j]));
            }
            double rel = err_max / (gmax + 1e-3);
            worst = fmax(worst, rel);
            if (!(gmax > 1e-4) || rel > 2e-3) {
                fprintf(stderr, "gradient %s lora_%c (tied %d): max |grad| %.3g, max |fd - grad| "
                        "%.3g (rel %.3g)\n", m->tensors[lt->tensor].name, k ? 'B' : 'A', tied,
                        gmax, err_max, rel);
                failures++;
            }
        }
    }
    printf("gradients (tied %d, Q %d, K %d): worst max|fd - grad| / max|grad| = %.2e over %zu "
           "factor pairs\n", tied, Q, K, worst, l->ntargets);
    model_acts_free(a);
    free(base);
    free(f);
    free(p);
    free(g);
    free(df);
    lora_free(l);
    model_free(m);
}

/* ---- files ---- */

static void test_io(void)
{
    ModelConfig cfg = tiny_config(true, 4, 2);
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    Lora *l, *l2;
    CHECK_OK(lora_create(m, 4, 8.0, &l, &err_));
    CHECK_OK(lora_create(m, 2, 8.0, &l2, &err_));
    float *f = random_factors(l, 51, 0.3), *g = calloc(l->nfactors, sizeof *g);
    char dir[] = "/tmp/test-lora-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], adir[256], wpath[300], cpath[300];
    snprintf(path, sizeof path, "%s/f.safetensors", dir);
    CHECK_OK(lora_save_factors(m, l, f, path, &err_));
    CHECK_OK(lora_load_factors(m, l, path, g, &err_));
    CHECK(memcmp(f, g, l->nfactors * sizeof *f) == 0);
    SsError err = {0};
    CHECK(lora_load_factors(m, l2, path, g, &err) == SS_EINPUT && strstr(err.msg, path));
    snprintf(adir, sizeof adir, "%s/adapter", dir);
    CHECK_OK(lora_save_adapter(m, l, f, adir, "base", &err_));
    snprintf(wpath, sizeof wpath, "%s/adapter_model.safetensors", adir);
    snprintf(cpath, sizeof cpath, "%s/adapter_config.json", adir);
    CHECK(access(wpath, F_OK) == 0 && access(cpath, F_OK) == 0);
    memset(g, 0, l->nfactors * sizeof *g);
    CHECK_OK(lora_load_factors(m, l, wpath, g, &err_));
    CHECK(memcmp(f, g, l->nfactors * sizeof *f) == 0);
    unlink(wpath);
    unlink(cpath);
    rmdir(adir);
    CHECK(lora_load_factors(m, l, path, g, &err) == 0);
    unlink(path);
    CHECK(lora_load_factors(m, l, path, g, &err) == SS_EINPUT && strstr(err.msg, path));
    rmdir(dir);
    printf("io: factors and adapter round trip bit for bit\n");
    free(f);
    free(g);
    lora_free(l);
    lora_free(l2);
    model_free(m);
}

int main(void)
{
    test_targets(true);
    test_targets(false);
    test_init();
    test_merge();
    test_backward();
    test_gradients(true, 4, 2);
    test_gradients(false, 2, 2);
    test_io();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
