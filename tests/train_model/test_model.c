/* Unit tests of train/model.h:
 *   gradients    every parameter tensor's gradient against central finite differences (with
 *                Richardson extrapolation) of loss = sum w * logp, on tiny configs: tied and untied,
 *                grouped-query (Q != K) and not, with a padded (targets -1) tail; the qwen2
 *                (q/k/v biases, no q/k norm) and llama (neither) variants too
 *   gradients    also on batches with a shared prompt (prompt sharing, model.h)
 *   determinism  two forwards + backwards give the same bits
 *   sharing      a batch of GRPO-like groups (shared prompts of different lengths, G = 1 and more,
 *                partly matching prompts, padding) in one call = each sequence alone, within
 *                1e-5: logp, entropy, logits and every gradient; all three variants
 *   sampling     greedy with the KV cache = argmax of the full forward, token by token; temperature
 *                sampling repeatable and independent of the batch it runs in; near-zero
 *                temperature = greedy; eos stops (and is kept); out_len bounds; invalid prompts
 *   io           F32 save/load bit-exact, BF16 / F16 saves = dtype_encode, load errors (extra,
 *                missing, wrong shape), config.json write/read and HF defaults, per variant
 *                (tensor tables, bias init 0, refused config fields)
 * `test_model --bench [B T]` instead times (in CPU time) forward+backward and sampling on the
 * benchmark config.
 * Exit status: 0 pass, 1 fail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "formats/dtype_convert.h"
#include "formats/dtype_encode.h"
#include "train/model.h"
#include "train/model_internal.h" /* model_sampler_cache */
#include "train/rng.h"
#include "tests/check.h"
#include "tests/train_testutil.h"

/* tokens random; targets the next token, -1 at the end of each sequence and on a padded tail
 * of sequence 1 (whose tokens there are padding id 0). */
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

/* ---- gradients against finite differences ---- */

static void test_gradients(bool tied, int Q, int K, ModelArch arch, bool shared)
{
    ModelConfig cfg = tiny_config(tied, Q, K);
    cfg.arch = arch;
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    enum { B = 2, T = 7, N = B * T };
    ModelActs *a;
    CHECK_OK(model_acts_create(m, B, T, &a, &err_));
    float *p = random_params(m, 11 + (uint64_t)tied);
    float *g = calloc(m->nparams, sizeof *g);
    int32_t tokens[N], targets[N];
    float logp[N], ent[N], w[N];
    random_batch(cfg.vocab_size, B, T, 5, tokens, targets);
    if (shared) { /* sequence 1 starts with sequence 0's first 4 ids: a shared prompt */
        memcpy(tokens + T, tokens, 4 * sizeof *tokens);
        for (int t = 0; t < 3; t++)
            targets[T + t] = tokens[T + t + 1];
    }
    uint64_t key = rng_stream(3, 0, 0, 0);
    for (int i = 0; i < N; i++)
        w[i] = targets[i] < 0 ? 0.0f : (float)(0.5 + rng_uniform(key, (uint64_t)i));
    model_forward(m, p, tokens, targets, B, T, a, logp, ent);
    model_backward(m, p, a, w, g);
    CHECK(!shared || a->ngroups == 1); /* the prompt is shared */
    /* padding changes nothing before it: logp of sequence 1's scored positions are finite and
     * its padded positions give 0 */
    CHECK(logp[1 * T + T - 1] == 0 && ent[1 * T + T - 1] == 0);
    const double h = 1e-2;
    double worst = 0;
    for (size_t ti = 0; ti < m->ntensors; ti++) {
        const ModelTensor *t = &m->tensors[ti];
        double gmax = 0;
        for (size_t j = 0; j < t->numel; j++)
            gmax = fmax(gmax, fabs(g[t->offset + j]));
        double err_max = 0;
        size_t nsample = t->numel < 24 ? t->numel : 24;
        for (size_t s = 0; s < nsample; s++) {
            size_t j = nsample == t->numel ? s : (size_t)rng_below(key, 1000 + ti * 100 + s, t->numel);
            float *x = &p[t->offset + j];
            float x0 = *x;
            double f[4];
            const double steps[4] = {h, -h, h / 2, -h / 2};
            for (int k = 0; k < 4; k++) {
                *x = (float)(x0 + steps[k]);
                model_forward(m, p, tokens, targets, B, T, a, logp, NULL);
                /* the step actually taken (x0 + step rounded to float) */
                f[k] = weighted_loss(logp, w, N);
            }
            *x = x0;
            double d1 = (f[0] - f[1]) / (2 * h), d2 = (f[2] - f[3]) / h;
            double fd = (4 * d2 - d1) / 3; /* Richardson: cancels the h^2 term */
            double e = fabs(fd - g[t->offset + j]);
            err_max = fmax(err_max, e);
        }
        double rel = err_max / (gmax + 1e-3);
        worst = fmax(worst, rel);
        if (!(gmax > 1e-4) || rel > 1e-3) {
            fprintf(stderr, "gradient %s (%s, tied %d, Q %d, K %d, shared %d): max |grad| %.3g, max |fd - grad| %.3g (rel %.3g)\n",
                    t->name, model_arch_name(arch), tied, Q, K, shared, gmax, err_max, rel);
            failures++;
        }
    }
    printf("gradients (%s, tied %d, Q %d, K %d, shared %d): worst max|fd - grad| / max|grad| = "
           "%.2e\n", model_arch_name(arch), tied, Q, K, shared, worst);
    free(p);
    free(g);
    model_acts_free(a);
    model_free(m);
}

/* ---- determinism ---- */

static void test_determinism(void)
{
    ModelConfig cfg = tiny_config(false, 4, 2);
    cfg.hidden_size = 64;
    cfg.intermediate_size = 96;
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    enum { B = 3, T = 9, N = B * T };
    ModelActs *a;
    CHECK_OK(model_acts_create(m, B, T, &a, &err_));
    float *p = random_params(m, 21);
    int32_t tokens[N], targets[N];
    random_batch(cfg.vocab_size, B, T, 8, tokens, targets);
    float logp[2][N], ent[2][N], dl[N];
    float *g[2] = {calloc(m->nparams, sizeof(float)), calloc(m->nparams, sizeof(float))};
    for (int i = 0; i < N; i++)
        dl[i] = targets[i] < 0 ? 0.0f : -1.0f / N;
    for (int r = 0; r < 2; r++) {
        model_forward(m, p, tokens, targets, B, T, a, logp[r], ent[r]);
        model_backward(m, p, a, dl, g[r]);
    }
    CHECK(memcmp(logp[0], logp[1], sizeof logp[0]) == 0);
    CHECK(memcmp(ent[0], ent[1], sizeof ent[0]) == 0);
    CHECK(memcmp(g[0], g[1], m->nparams * sizeof(float)) == 0);
    /* a smaller batch in the same acts: sequence 0 alone gives the same logp where it matters
     * up to rounding (different GEMM shapes may round differently) */
    float lp1[T];
    model_forward(m, p, tokens, targets, 1, T, a, lp1, NULL);
    for (int t = 0; t < T; t++)
        CHECK(fabsf(lp1[t] - logp[0][t]) <= 1e-5f * (1 + fabsf(logp[0][t])));
    free(g[0]);
    free(g[1]);
    free(p);
    model_acts_free(a);
    model_free(m);
}

/* ---- prompt sharing ---- */

/* max |x - y| / max |y| */
static double rel_diff(const float *x, const float *y, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)x[i] - y[i]));
        den = fmax(den, fabs((double)y[i]));
    }
    return den > 0 ? num / den : num;
}

/* A batch with shared prompts (GRPO groups of several samples, of different prompt lengths, a
 * sample with an empty response, samples whose responses start alike, a group of one, a prompt
 * that only partly matches the one before: no sharing across them, padding, a target -1 inside)
 * in one model_forward / model_backward = each sequence alone (where nothing can be shared),
 * up to float32 rounding: logp, entropy, the computed logits and every gradient. And the same
 * bits on a repeated call. */
static void test_sharing(ModelArch arch, bool tied, int Q, int K)
{
    ModelConfig cfg = tiny_config(tied, Q, K);
    cfg.arch = arch;
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    enum { B = 9, T = 13, N = B * T, V = 13 };
    static const int32_t pA[] = {1, 2, 3, 4, 5, 6}, pB[] = {1, 7, 8, 9, 10},
                         pC[] = {1, 11, 12, 2, 3, 4, 5}, pD[] = {1, 11, 5, 2, 3, 4, 5};
    const int32_t *pr[B] = {pA, pA, pA, pA, pB, pC, pC, pD, pD};
    const int plen[B] = {6, 6, 6, 6, 5, 7, 7, 7, 7}, rlen[B] = {3, 0, 5, 2, 4, 2, 3, 3, 4};
    int32_t tokens[N], targets[N];
    uint64_t key = rng_stream(17, 1, 0, 0);
    for (int b = 0; b < B; b++) {
        int len = plen[b] + rlen[b];
        for (int t = 0; t < T; t++)
            tokens[b * T + t] = t < plen[b] ? pr[b][t]
                                : t < len   ? (int32_t)rng_below(key, (uint64_t)(b * T + t), V)
                                            : 0;
        for (int t = 0; t < T; t++)
            targets[b * T + t] = t + 1 < len ? tokens[b * T + t + 1] : -1;
    }
    tokens[2 * T + 6] = tokens[0 * T + 6]; /* sequence 2's response starts as sequence 0's */
    tokens[2 * T + 7] = tokens[0 * T + 7];
    targets[2 * T + 5] = tokens[2 * T + 6];
    targets[2 * T + 6] = tokens[2 * T + 7];
    targets[5 * T + 2] = -1; /* a position without a target inside a shared prompt */
    float *p = random_params(m, 31);
    float w[N];
    for (int i = 0; i < N; i++)
        w[i] = targets[i] < 0 ? 0.0f : (float)(rng_uniform(key, 1000 + (uint64_t)i) - 0.5);
    ModelActs *a, *a1;
    CHECK_OK(model_acts_create(m, B, T, &a, &err_));
    CHECK_OK(model_acts_create(m, 1, T, &a1, &err_));
    float lp[2][N], en[2][N], lp1[N], en1[N];
    float *g[2] = {calloc(m->nparams, sizeof(float)), calloc(m->nparams, sizeof(float))};
    float *g1 = calloc(m->nparams, sizeof(float));
    float *z = malloc((size_t)N * V * sizeof *z), *z1 = malloc((size_t)N * V * sizeof *z1);
    for (int r = 0; r < 2; r++) {
        model_forward(m, p, tokens, targets, B, T, a, lp[r], en[r]);
        model_backward(m, p, a, w, g[r]);
    }
    memcpy(z, model_acts_logits(a), (size_t)N * V * sizeof *z);
    /* groups {0..3} {4} {5, 6} {7, 8}: pD matches pC in 2 ids only */
    size_t rows_alone = 0;
    for (int b = 0; b < B; b++)
        rows_alone += (size_t)(plen[b] + rlen[b] - 1);
    CHECK(a->ngroups == 4);
    CHECK(a->nrows < rows_alone);
    CHECK(memcmp(lp[0], lp[1], sizeof lp[0]) == 0);
    CHECK(memcmp(en[0], en[1], sizeof en[0]) == 0);
    CHECK(memcmp(g[0], g[1], m->nparams * sizeof(float)) == 0);
    for (int b = 0; b < B; b++) {
        model_forward(m, p, tokens + b * T, targets + b * T, 1, T, a1, lp1 + b * T, en1 + b * T);
        model_backward(m, p, a1, w + b * T, g1);
        memcpy(z1 + (size_t)b * T * V, model_acts_logits(a1), (size_t)T * V * sizeof *z1);
    }
    double worst = fmax(rel_diff(lp[0], lp1, N), rel_diff(en[0], en1, N));
    worst = fmax(worst, rel_diff(z, z1, (size_t)N * V));
    CHECK(worst < 1e-5);
    for (int i = 0; i < N; i++)
        CHECK(targets[i] >= 0 || (lp[0][i] == 0 && en[0][i] == 0));
    double gworst = 0;
    for (size_t ti = 0; ti < m->ntensors; ti++) {
        const ModelTensor *t = &m->tensors[ti];
        double r = rel_diff(g[0] + t->offset, g1 + t->offset, t->numel);
        gworst = fmax(gworst, r);
        if (!(r < 1e-5)) {
            fprintf(stderr, "sharing (%s): gradient %s differs by %.3g relative\n",
                    model_arch_name(arch), t->name, r);
            failures++;
        }
    }
    printf("sharing (%s, tied %d, Q %d, K %d): %zu rows for %zu; logp/entropy/logits %.2e, "
           "worst gradient %.2e relative\n", model_arch_name(arch), tied, Q, K, a->nrows,
           rows_alone, worst, gworst);
    free(g[0]), free(g[1]), free(g1), free(z), free(z1), free(p);
    model_acts_free(a);
    model_acts_free(a1);
    model_free(m);
}

/* ---- sampling ---- */

static int argmax_row(const float *z, int V)
{
    int b = 0;
    for (int v = 1; v < V; v++)
        if (z[v] > z[b])
            b = v;
    return b;
}

static void test_sampling(ModelArch arch)
{
    ModelConfig cfg = tiny_config(true, 4, 2);
    cfg.arch = arch;
    cfg.vocab_size = 17;
    cfg.hidden_size = 32;
    cfg.intermediate_size = 48;
    cfg.initializer_range = 0.5;
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    float *p = random_params(m, 31);
    enum { NS = 5, MAXLEN = 20, MAXNEW = 12 };
    ModelSampler *s;
    CHECK_OK(model_sampler_create(m, NS, MAXLEN, &s, &err_));
    int32_t pr[NS][6] = {{1, 2, 3}, {4}, {5, 6, 7, 8, 9, 10}, {11, 12}, {3, 3, 3, 3}};
    int plen[NS] = {3, 1, 6, 2, 4};
    const int32_t *prompts[NS];
    uint64_t ids[NS];
    for (int i = 0; i < NS; i++) {
        prompts[i] = pr[i];
        ids[i] = 1000 + (uint64_t)i * 7;
    }
    int32_t out[NS * MAXNEW];
    int out_len[NS];
    /* greedy = argmax of the full forward at every response position */
    model_sample(m, p, s, prompts, plen, NS, MAXNEW, 0.0f, -1, 1, ids, out, out_len);
    ModelActs *a;
    CHECK_OK(model_acts_create(m, 1, MAXLEN, &a, &err_));
    int32_t seq[MAXLEN], tg[MAXLEN];
    float lp[MAXLEN];
    int nonconst = 0;
    for (int i = 0; i < NS; i++) {
        CHECK(out_len[i] == MAXNEW);
        int len = plen[i] + MAXNEW;
        for (int t = 0; t < len; t++)
            seq[t] = t < plen[i] ? pr[i][t] : out[i * MAXNEW + t - plen[i]];
        for (int t = 0; t < len; t++)
            tg[t] = t + 1 < len ? seq[t + 1] : -1;
        model_forward(m, p, seq, tg, 1, len, a, lp, NULL);
        const float *z = model_acts_logits(a);
        for (int k = 0; k < MAXNEW; k++) {
            int want = argmax_row(z + (size_t)(plen[i] - 1 + k) * (size_t)cfg.vocab_size,
                                  cfg.vocab_size);
            if (out[i * MAXNEW + k] != want) {
                fprintf(stderr, "greedy seq %d token %d: sampled %d, forward argmax %d\n", i, k,
                        out[i * MAXNEW + k], want);
                failures++;
            }
            nonconst += k > 0 && out[i * MAXNEW + k] != out[i * MAXNEW + k - 1];
        }
    }
    CHECK(nonconst > 0); /* the test means something only if responses vary */
    /* eos: stop after the first occurrence of sequence 0's third greedy token, keeping it */
    int32_t eos = out[2];
    int first = 0;
    while (out[first] != eos)
        first++;
    int32_t out2[NS * MAXNEW];
    int len2[NS];
    model_sample(m, p, s, prompts, plen, NS, MAXNEW, 0.0f, eos, 1, ids, out2, len2);
    CHECK(len2[0] == first + 1);
    for (int i = 0; i < NS; i++) {
        int stop = MAXNEW;
        for (int k = 0; k < MAXNEW; k++)
            if (out[i * MAXNEW + k] == eos) {
                stop = k + 1;
                break;
            }
        CHECK(len2[i] == stop);
        for (int k = 0; k < MAXNEW; k++)
            CHECK(out2[i * MAXNEW + k] == (k < stop ? out[i * MAXNEW + k] : -1));
    }
    /* temperature: repeatable; the same per sequence whatever shares the batch */
    int32_t t1[NS * MAXNEW], t2[NS * MAXNEW];
    int l1[NS], l2[NS];
    model_sample(m, p, s, prompts, plen, NS, MAXNEW, 1.0f, -1, 77, ids, t1, l1);
    model_sample(m, p, s, prompts, plen, NS, MAXNEW, 1.0f, -1, 77, ids, t2, l2);
    CHECK(memcmp(t1, t2, sizeof t1) == 0 && memcmp(l1, l2, sizeof l1) == 0);
    int differs_from_greedy = 0;
    for (int i = 0; i < NS * MAXNEW; i++)
        differs_from_greedy += t1[i] != out[i];
    CHECK(differs_from_greedy > 0);
    for (int i = 0; i < NS; i++) { /* alone */
        int32_t one[MAXNEW];
        int ol;
        model_sample(m, p, s, &prompts[i], &plen[i], 1, MAXNEW, 1.0f, -1, 77, &ids[i], one, &ol);
        CHECK(ol == l1[i] && memcmp(one, &t1[i * MAXNEW], sizeof one) == 0);
    }
    { /* reversed order, with sequence 2 twice under another stream id */
        const int32_t *rp[NS + 1];
        int rl[NS + 1];
        uint64_t rid[NS + 1];
        for (int i = 0; i < NS; i++) {
            rp[i] = prompts[NS - 1 - i];
            rl[i] = plen[NS - 1 - i];
            rid[i] = ids[NS - 1 - i];
        }
        rp[NS] = prompts[2];
        rl[NS] = plen[2];
        rid[NS] = 5;
        ModelSampler *s6;
        CHECK_OK(model_sampler_create(m, NS + 1, MAXLEN, &s6, &err_));
        int32_t r[(NS + 1) * MAXNEW];
        int rlen[NS + 1];
        model_sample(m, p, s6, rp, rl, NS + 1, MAXNEW, 1.0f, -1, 77, rid, r, rlen);
        for (int i = 0; i < NS; i++)
            CHECK(rlen[i] == l1[NS - 1 - i] &&
                  memcmp(&r[i * MAXNEW], &t1[(NS - 1 - i) * MAXNEW], MAXNEW * sizeof(int32_t)) == 0);
        model_sampler_free(s6);
    }
    /* another seed changes the draws */
    model_sample(m, p, s, prompts, plen, NS, MAXNEW, 1.0f, -1, 78, ids, t2, l2);
    CHECK(memcmp(t1, t2, sizeof t1) != 0);
    /* a tiny temperature is greedy */
    model_sample(m, p, s, prompts, plen, NS, MAXNEW, 1e-4f, -1, 77, ids, t2, l2);
    CHECK(memcmp(out, t2, sizeof t2) == 0);
    /* out_len bounds: max_new 3 gives 3 tokens; a prompt too long for max_len gives none */
    int32_t o3[NS * 3];
    int l3[NS];
    model_sample(m, p, s, prompts, plen, NS, 3, 0.0f, -1, 1, ids, o3, l3);
    for (int i = 0; i < NS; i++) {
        CHECK(l3[i] == 3);
        CHECK(memcmp(&o3[i * 3], &out[i * MAXNEW], 3 * sizeof(int32_t)) == 0);
    }
    int bad_len[NS] = {3, 1, MAXLEN - MAXNEW + 1, 0, 4};
    model_sample(m, p, s, prompts, bad_len, NS, MAXNEW, 0.0f, -1, 1, ids, out2, len2);
    CHECK(len2[0] == MAXNEW && len2[2] == 0 && len2[3] == 0 && len2[4] == MAXNEW);
    CHECK(out2[2 * MAXNEW] == -1 && out2[3 * MAXNEW] == -1);
    CHECK(memcmp(out2, out, MAXNEW * sizeof(int32_t)) == 0);
    model_acts_free(a);
    model_sampler_free(s);
    free(p);
    model_free(m);
}

/* Batch independence bit for bit, at sizes where OpenBLAS picks different kernels for different
 * row counts: every sequence sampled alone (in a sampler of capacity 1) and in a batch of 20
 * gives the same response and the same keys and values in every layer. */
static void test_sampling_batch_bits(void)
{
    ModelConfig cfg = {.vocab_size = 25, .hidden_size = 128, .intermediate_size = 256,
                       .num_hidden_layers = 2, .num_attention_heads = 4,
                       .num_key_value_heads = 2, .head_dim = 32, .max_position_embeddings = 40,
                       .rms_norm_eps = 1e-6, .rope_theta = 1e6, .initializer_range = 0.1,
                       .tie_word_embeddings = true};
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    float *p = random_params(m, 51);
    enum { NS = 20, PMAX = 6, MAXNEW = 10, MAXLEN = PMAX + MAXNEW };
    int32_t pr[NS][PMAX];
    int plen[NS];
    const int32_t *prompts[NS];
    uint64_t ids[NS];
    for (int i = 0; i < NS; i++) {
        plen[i] = 1 + i % PMAX;
        for (int t = 0; t < PMAX; t++)
            pr[i][t] = (int32_t)((i * 7 + t * 3) % cfg.vocab_size);
        prompts[i] = pr[i];
        ids[i] = 500 + (uint64_t)i;
    }
    ModelSampler *sb, *s1;
    CHECK_OK(model_sampler_create(m, NS, MAXLEN, &sb, &err_));
    CHECK_OK(model_sampler_create(m, 1, MAXLEN, &s1, &err_));
    int32_t out[NS * MAXNEW], one[MAXNEW];
    int len[NS], l1;
    model_sample(m, p, sb, prompts, plen, NS, MAXNEW, 1.0f, -1, 9, ids, out, len);
    size_t bad_tokens = 0, bad_cache = 0;
    for (int i = 0; i < NS; i++) {
        model_sample(m, p, s1, &prompts[i], &plen[i], 1, MAXNEW, 1.0f, -1, 9, &ids[i], one, &l1);
        bad_tokens += l1 != len[i] || memcmp(one, &out[i * MAXNEW], sizeof one) != 0;
        size_t fed = (size_t)(plen[i] + len[i] - 1); /* positions whose keys were computed */
        for (int l = 0; l < cfg.num_hidden_layers; l++)
            for (int v = 0; v < 2; v++)
                for (int g = 0; g < cfg.num_key_value_heads; g++) {
                    size_t off = (size_t)g * MAXLEN * (size_t)cfg.head_dim;
                    bad_cache += memcmp(model_sampler_cache(s1, m, l, 0, v) + off,
                                        model_sampler_cache(sb, m, l, i, v) + off,
                                        fed * (size_t)cfg.head_dim * sizeof(float)) != 0;
                }
    }
    if (bad_tokens || bad_cache) {
        fprintf(stderr, "sampling alone vs in a batch of %d: %zu responses and %zu caches differ\n",
                NS, bad_tokens, bad_cache);
        failures++;
    }
    model_sampler_free(sb);
    model_sampler_free(s1);
    free(p);
    model_free(m);
}

/* ---- checkpoints and config.json ---- */

static char tmpdir[256];

static void test_io(void)
{
    ModelConfig cfg = tiny_config(false, 4, 2);
    Model *m, *mt;
    CHECK_OK(model_create(&cfg, &m, &err_));
    float *p = random_params(m, 41), *q = malloc(m->nparams * sizeof(float));
    /* values that exercise the rounding: ties, large, tiny */
    p[3] = 1.00390625f; /* 1 + 2^-8: a BF16 tie */
    p[4] = 70000.0f;
    p[5] = 1e-30f;
    char path[512];
    snprintf(path, sizeof path, "%s/f32.safetensors", tmpdir);
    StMeta meta[1] = {{"format", "pt"}};
    CHECK_OK(model_save_params(m, p, DT_F32, path, meta, 1, &err_));
    memset(q, 0xff, m->nparams * sizeof(float));
    CHECK_OK(model_load_params(m, path, q, &err_));
    CHECK(memcmp(p, q, m->nparams * sizeof(float)) == 0);
    for (int k = 0; k < 2; k++) {
        DType dt = k ? DT_F16 : DT_BF16;
        snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, dtype_name(dt));
        CHECK_OK(model_save_params(m, p, dt, path, NULL, 0, &err_));
        CHECK_OK(model_load_params(m, path, q, &err_));
        size_t bad = 0;
        for (size_t i = 0; i < m->nparams; i++) {
            uint16_t e = k ? dtype_f32_to_f16(p[i]) : dtype_f32_to_bf16(p[i]);
            float want = (float)(k ? ss_f16_to_double(e) : ss_bf16_to_double(e));
            bad += memcmp(&want, &q[i], 4) != 0;
        }
        CHECK(bad == 0);
        CHECK(k == 0 || isinf(q[4]));
    }
    /* errors: extra lm_head in a tied model, missing lm_head, wrong shape, wrong dtype */
    SsError err = {0};
    ModelConfig tcfg = cfg;
    tcfg.tie_word_embeddings = true;
    CHECK_OK(model_create(&tcfg, &mt, &err_));
    snprintf(path, sizeof path, "%s/f32.safetensors", tmpdir);
    CHECK(model_load_params(mt, path, q, &err) == SS_EINPUT && strstr(err.msg, "'lm_head.weight'"));
    snprintf(path, sizeof path, "%s/tied.safetensors", tmpdir);
    CHECK_OK(model_save_params(mt, p, DT_F32, path, NULL, 0, &err_));
    CHECK(model_load_params(m, path, q, &err) == SS_EINPUT && strstr(err.msg, "lm_head.weight") &&
          strstr(err.msg, "missing"));
    CHECK(model_save_params(m, p, DT_I32, path, NULL, 0, &err) == SS_EUSAGE);
    model_free(mt);
    ModelConfig wcfg = cfg;
    wcfg.intermediate_size = 20;
    CHECK_OK(model_create(&wcfg, &mt, &err_));
    snprintf(path, sizeof path, "%s/f32.safetensors", tmpdir);
    CHECK(model_load_params(mt, path, q, &err) == SS_EINPUT && strstr(err.msg, "mlp") &&
          strstr(err.msg, "shape"));
    model_free(mt);
    /* config.json round trip */
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    ModelConfig c2;
    cfg.rope_theta = 1e6;
    cfg.initializer_range = 0.1 + 1e-17 * 3; /* needs 17 digits? either way it must read back */
    CHECK_OK(model_config_write(path, &cfg, "bfloat16", &err_));
    CHECK_OK(model_config_read(path, &c2, &err_));
    CHECK(memcmp(&cfg, &c2, sizeof cfg) == 0 || (cfg.vocab_size == c2.vocab_size &&
          cfg.hidden_size == c2.hidden_size && cfg.intermediate_size == c2.intermediate_size &&
          cfg.num_hidden_layers == c2.num_hidden_layers &&
          cfg.num_attention_heads == c2.num_attention_heads &&
          cfg.num_key_value_heads == c2.num_key_value_heads && cfg.head_dim == c2.head_dim &&
          cfg.max_position_embeddings == c2.max_position_embeddings &&
          cfg.rms_norm_eps == c2.rms_norm_eps && cfg.rope_theta == c2.rope_theta &&
          cfg.initializer_range == c2.initializer_range &&
          cfg.tie_word_embeddings == c2.tie_word_embeddings));
    FILE *f = fopen(path, "w");
    fputs("{\"model_type\": \"llama\", \"vocab_size\": 50, \"hidden_size\": 64, "
          "\"intermediate_size\": 100, \"num_hidden_layers\": 2, \"num_attention_heads\": 8, "
          "\"max_position_embeddings\": 128, \"rms_norm_eps\": 1e-5}\n", f);
    fclose(f);
    CHECK_OK(model_config_read(path, &c2, &err_));
    CHECK(c2.head_dim == 8 && c2.num_key_value_heads == 8 && c2.rms_norm_eps == 1e-5 &&
          c2.rope_theta == 10000.0 && c2.initializer_range == 0.02 && !c2.tie_word_embeddings);
    const char *bad_configs[] = {
        "{\"model_type\": \"gpt2\", \"vocab_size\": 5}",
        "{\"model_type\": \"qwen3\", \"hidden_size\": 64, \"intermediate_size\": 100, "
        "\"num_hidden_layers\": 2, \"num_attention_heads\": 8, \"max_position_embeddings\": 9}",
        "{\"vocab_size\": 5, \"hidden_size\": 64, \"intermediate_size\": 100, "
        "\"num_hidden_layers\": 2, \"num_attention_heads\": 6, \"num_key_value_heads\": 4, "
        "\"head_dim\": 8, \"max_position_embeddings\": 9}",
        "{\"vocab_size\": 5, \"vocab_size\": 6}",
        "[1]"};
    for (size_t i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        f = fopen(path, "w");
        fputs(bad_configs[i], f);
        fclose(f);
        CHECK(model_config_read(path, &c2, &err) == SS_EINPUT && strstr(err.msg, path));
    }
    CHECK(model_find(m, "model.layers.1.mlp.up_proj.weight") > 0);
    CHECK(model_find(m, "lm_head.weight") == (long)m->ntensors - 1);
    CHECK(model_find(m, "nope") == -1);
    ModelConfig odd = cfg;
    odd.head_dim = 7;
    CHECK(model_config_validate(&odd, &err) == SS_EUSAGE);
    odd = cfg;
    odd.num_key_value_heads = 3;
    CHECK(model_config_validate(&odd, &err) == SS_EUSAGE);
    free(p);
    free(q);
    model_free(m);
}

/* ---- the benchmark (not a test) ---- */

/* CPU seconds of the process (all threads): on a busy machine a steadier measure than the wall
 * clock; with OPENBLAS_NUM_THREADS=1 it is the uncontended wall time. */
/* The variants' tensor tables, init, config.json round trips and refused fields. */
static void test_variants(void)
{
    const ModelArch archs[] = {MODEL_ARCH_QWEN3, MODEL_ARCH_QWEN2, MODEL_ARCH_LLAMA};
    char path[512];
    snprintf(path, sizeof path, "%s/variant.config.json", tmpdir);
    for (int k = 0; k < 3; k++) {
        ModelConfig cfg = tiny_config(false, 4, 2), c2;
        cfg.arch = archs[k];
        Model *m;
        CHECK_OK(model_create(&cfg, &m, &err_));
        bool qwen2 = archs[k] == MODEL_ARCH_QWEN2, qwen3 = archs[k] == MODEL_ARCH_QWEN3;
        long bq = model_find(m, "model.layers.1.self_attn.q_proj.bias");
        long bv = model_find(m, "model.layers.1.self_attn.v_proj.bias");
        CHECK((bq >= 0) == qwen2 && (bv >= 0) == qwen2);
        CHECK((model_find(m, "model.layers.0.self_attn.k_norm.weight") >= 0) == qwen3);
        size_t nt = 3 + (size_t)cfg.num_hidden_layers * (9 + (qwen2 ? 3 : 0) + (qwen3 ? 2 : 0));
        CHECK(m->ntensors == nt);
        size_t sum = 0;
        for (size_t i = 0; i < m->ntensors; i++)
            sum += m->tensors[i].numel;
        CHECK(sum == m->nparams);
        float *p = malloc(m->nparams * sizeof *p);
        model_init_params(m, p, 3);
        if (qwen2) {
            CHECK(m->tensors[bq].numel == 32 && m->tensors[bv].numel == 16);
            CHECK(m->tensors[bv].offset == m->tensors[bq].offset + 32 + 16); /* q, k, v adjacent */
            CHECK(p[m->tensors[bq].offset] == 0.0f && p[m->tensors[bv].offset + 15] == 0.0f);
        }
        CHECK(p[m->tensors[model_find(m, "model.norm.weight")].offset] == 1.0f);
        free(p);
        CHECK_OK(model_config_write(path, &cfg, "float32", &err_));
        CHECK_OK(model_config_read(path, &c2, &err_));
        CHECK(c2.arch == archs[k] && c2.hidden_size == cfg.hidden_size &&
              c2.head_dim == cfg.head_dim);
        model_free(m);
    }
    const char *refused[] = {"\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}",
                             "\"attention_bias\": true", "\"mlp_bias\": true",
                             "\"hidden_act\": \"gelu\""};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        FILE *f = fopen(path, "w");
        fprintf(f, "{\"model_type\": \"llama\", \"vocab_size\": 50, \"hidden_size\": 64, "
                   "\"intermediate_size\": 100, \"num_hidden_layers\": 2, "
                   "\"num_attention_heads\": 8, \"max_position_embeddings\": 128, %s}\n",
                refused[i]);
        fclose(f);
        ModelConfig c2;
        SsError err = {0};
        CHECK(model_config_read(path, &c2, &err) == SS_EINPUT && strstr(err.msg, "not supported") ==
              NULL ? strstr(err.msg, "silu") != NULL : true);
    }
    FILE *f = fopen(path, "w");
    fputs("{\"model_type\": \"qwen2\", \"vocab_size\": 50, \"hidden_size\": 64, "
          "\"intermediate_size\": 100, \"num_hidden_layers\": 2, \"num_attention_heads\": 8, "
          "\"max_position_embeddings\": 128, \"use_sliding_window\": true}\n", f);
    fclose(f);
    ModelConfig c3;
    SsError err = {0};
    CHECK(model_config_read(path, &c3, &err) == SS_EINPUT && strstr(err.msg, "use_sliding_window"));
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench(int B, int T)
{
    ModelConfig cfg = {.vocab_size = 25, .hidden_size = 256, .intermediate_size = 768,
                       .num_hidden_layers = 4, .num_attention_heads = 4,
                       .num_key_value_heads = 2, .head_dim = 64, .max_position_embeddings = 128,
                       .rms_norm_eps = 1e-6, .rope_theta = 1e6, .initializer_range = 0.02,
                       .tie_word_embeddings = true};
    Model *m;
    CHECK_OK(model_create(&cfg, &m, &err_));
    ModelActs *a;
    CHECK_OK(model_acts_create(m, B, T, &a, &err_));
    float *p = malloc(m->nparams * sizeof(float)), *g = calloc(m->nparams, sizeof(float));
    model_init_params(m, p, 1);
    size_t N = (size_t)B * T;
    int32_t *tok = malloc(N * 4), *tg = malloc(N * 4);
    float *lp = malloc(N * 4), *en = malloc(N * 4), *dl = malloc(N * 4);
    random_batch(cfg.vocab_size, B, T, 1, tok, tg);
    for (size_t i = 0; i < N; i++)
        dl[i] = -1.0f / (float)N;
    model_forward(m, p, tok, tg, B, T, a, lp, en);
    model_backward(m, p, a, dl, g);
    int reps = getenv("SS_BENCH_REPS") ? atoi(getenv("SS_BENCH_REPS")) : 5;
    double t0 = now();
    for (int r = 0; r < reps; r++)
        model_forward(m, p, tok, tg, B, T, a, lp, en);
    double t1 = now();
    for (int r = 0; r < reps; r++)
        model_backward(m, p, a, dl, g);
    double t2 = now();
    double fw = (t1 - t0) / reps, bw = (t2 - t1) / reps;
    printf("params %zu  B %d T %d: forward %.1f ms, backward %.1f ms, fwd+bwd %.1f ms "
           "(%.0f tokens/s)\n",
           m->nparams, B, T, fw * 1e3, bw * 1e3, (fw + bw) * 1e3, (double)N / (fw + bw));
    /* sampling: B prompts of 8 tokens, T - 8 new tokens, temperature 1 */
    ModelSampler *s;
    CHECK_OK(model_sampler_create(m, B, T, &s, &err_));
    const int32_t **prompts = malloc((size_t)B * sizeof *prompts);
    int *plen = malloc((size_t)B * sizeof *plen), *ol = malloc((size_t)B * sizeof *ol);
    uint64_t *ids = malloc((size_t)B * sizeof *ids);
    int32_t *out = malloc((size_t)B * (size_t)T * 4);
    for (int i = 0; i < B; i++) {
        prompts[i] = tok + (size_t)i * T;
        plen[i] = 8;
        ids[i] = (uint64_t)i;
    }
    double t3 = now();
    model_sample(m, p, s, prompts, plen, B, T - 8, 1.0f, -1, 1, ids, out, ol);
    double t4 = now();
    printf("sampling %d x (8 + %d) tokens: %.1f ms (%.0f new tokens/s)\n", B, T - 8,
           (t4 - t3) * 1e3, (double)B * (T - 8) / (t4 - t3));
    model_sampler_free(s);
    free(prompts); free(plen); free(ol); free(ids); free(out);
    free(p); free(g); free(tok); free(tg); free(lp); free(en); free(dl);
    model_acts_free(a);
    model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--bench") == 0)
        return bench(argc >= 4 ? atoi(argv[2]) : 64, argc >= 4 ? atoi(argv[3]) : 48);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_model.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_gradients(false, 4, 2, MODEL_ARCH_QWEN3, false);
    test_gradients(true, 4, 2, MODEL_ARCH_QWEN3, false);
    test_gradients(false, 2, 2, MODEL_ARCH_QWEN3, false);
    test_gradients(false, 4, 2, MODEL_ARCH_QWEN2, false);
    test_gradients(true, 2, 2, MODEL_ARCH_LLAMA, false);
    test_gradients(false, 4, 2, MODEL_ARCH_QWEN3, true);
    test_gradients(true, 2, 2, MODEL_ARCH_LLAMA, true);
    test_determinism();
    test_sharing(MODEL_ARCH_QWEN3, false, 4, 2);
    test_sharing(MODEL_ARCH_QWEN3, true, 2, 2);
    test_sharing(MODEL_ARCH_QWEN2, false, 4, 2);
    test_sharing(MODEL_ARCH_LLAMA, true, 4, 1);
    test_sampling(MODEL_ARCH_QWEN3);
    test_sampling(MODEL_ARCH_QWEN2);
    test_sampling(MODEL_ARCH_LLAMA);
    test_variants();
    test_sampling_batch_bits();
    test_io();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("model: ok\n");
    return 0;
}
