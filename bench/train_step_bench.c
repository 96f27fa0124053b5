/* train_step_bench: one training step of grpo-train's model on kernels/train_model.h (forward
 * with log-probabilities and entropy, then backward into a gradient buffer), timed, for the
 * comparison with PyTorch eager on the same GPU and batch (bench/train_step_torch.py; issue 7's
 * benchmark; run by tests/gpu/run.sh).
 *
 * The model: Qwen3-0.6B's shape by default (28 layers, hidden 1024, intermediate 3072, 16 query
 * and 8 key/value heads of 128, vocabulary 151936, tied embeddings), random weights; B sequences
 * of T tokens, every position a target; dlogp = 1/(B*T) (the gradient of the mean log-prob).
 * Times --steps steps after one warm-up (each a forward and a backward, synchronized by the
 * host copies of logp and the gradient's end), median.
 *
 * usage: train_step_bench [--backend cuda|cpu] [--gemm bf16|f32] [--batch B] [--seq T]
 *                         [--layers L] [--hidden H] [--intermediate I] [--heads Q]
 *                         [--kv-heads K] [--head-dim D] [--vocab V] [--steps N]
 * Prints "RESULT train_step_ours_<gemm> <ms> ms (...)" and tokens/s; exit 77 when the backend
 * cannot run here (no GPU), 1 on another error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/train_model.h"
#include "train/model.h"
#include "train/train_device.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int arg_int(const char *s, const char *name)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v <= 0 || v > 1 << 30) {
        fprintf(stderr, "train_step_bench: %s: not a positive integer: '%s'\n", name, s);
        exit(1);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    ModelConfig cfg = {.arch = MODEL_ARCH_QWEN3, .vocab_size = 151936, .hidden_size = 1024,
                       .intermediate_size = 3072, .num_hidden_layers = 28,
                       .num_attention_heads = 16, .num_key_value_heads = 8, .head_dim = 128,
                       .max_position_embeddings = 4096, .rms_norm_eps = 1e-6,
                       .rope_theta = 1e6, .initializer_range = 0.02,
                       .tie_word_embeddings = true};
    int B = 8, T = 256, steps = 10;
    TmBackend be = TM_CUDA;
    TmGemm gemm = TM_GEMM_BF16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "train_step_bench: %s needs a value (see the comment at the top)\n", a);
            return 1;
        }
        i++;
        if (!strcmp(a, "--backend") && (!strcmp(v, "cuda") || !strcmp(v, "cpu")))
            be = !strcmp(v, "cuda") ? TM_CUDA : TM_CPU;
        else if (!strcmp(a, "--gemm") && (!strcmp(v, "bf16") || !strcmp(v, "f32")))
            gemm = !strcmp(v, "bf16") ? TM_GEMM_BF16 : TM_GEMM_F32;
        else if (!strcmp(a, "--batch"))
            B = arg_int(v, a);
        else if (!strcmp(a, "--seq"))
            T = arg_int(v, a);
        else if (!strcmp(a, "--steps"))
            steps = arg_int(v, a);
        else if (!strcmp(a, "--layers"))
            cfg.num_hidden_layers = arg_int(v, a);
        else if (!strcmp(a, "--hidden"))
            cfg.hidden_size = arg_int(v, a);
        else if (!strcmp(a, "--intermediate"))
            cfg.intermediate_size = arg_int(v, a);
        else if (!strcmp(a, "--heads"))
            cfg.num_attention_heads = arg_int(v, a);
        else if (!strcmp(a, "--kv-heads"))
            cfg.num_key_value_heads = arg_int(v, a);
        else if (!strcmp(a, "--head-dim"))
            cfg.head_dim = arg_int(v, a);
        else if (!strcmp(a, "--vocab"))
            cfg.vocab_size = arg_int(v, a);
        else {
            fprintf(stderr, "train_step_bench: unknown option or value: %s %s\n", a, v);
            return 1;
        }
    }
    if (cfg.max_position_embeddings < T)
        cfg.max_position_embeddings = T;
    SsError err = {0};
    Model *m = NULL;
    TrainModel *tm = NULL;
    if (model_create(&cfg, &m, &err) != 0) {
        fprintf(stderr, "train_step_bench: %s\n", err.msg);
        return 1;
    }
    size_t L = (size_t)cfg.num_hidden_layers, N = (size_t)B * T, np = m->nparams;
    TmLayer *layers = malloc(L * sizeof *layers);
    if (!layers) {
        fprintf(stderr, "train_step_bench: out of memory\n");
        return 1;
    }
    TmLayout lay = train_device_layout(m, layers);
    int rc = tm_create(&lay, be, gemm, B, T, &tm, &err);
    free(layers);
    if (rc != 0) {
        fprintf(stderr, "train_step_bench: %s\n", err.msg);
        model_free(m);
        return rc == SS_EUSAGE ? 77 : 1;
    }
    float *params = malloc(np * sizeof *params), *logp = malloc(N * 4), *ent = malloc(N * 4);
    float *dlogp = malloc(N * 4), *dp = tm_alloc(tm, np, &err), *dg = NULL;
    int32_t *tok = malloc(N * 4), *tg = malloc(N * 4);
    double *ms = malloc((size_t)steps * sizeof *ms);
    if (dp)
        dg = tm_alloc(tm, np, &err);
    rc = !params || !logp || !ent || !dlogp || !tok || !tg || !ms || !dp || !dg;
    if (rc) {
        fprintf(stderr, "train_step_bench: out of memory (%zu parameters): %s\n", np, err.msg);
        return 1;
    }
    model_init_params(m, params, 1);
    uint64_t s = 12345;
    for (size_t n = 0; n < N; n++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[n] = (int32_t)((s >> 33) % (uint64_t)cfg.vocab_size);
        tg[n] = (int32_t)((s >> 13) % (uint64_t)cfg.vocab_size);
        dlogp[n] = 1.0f / (float)N;
    }
    if (tm_upload(tm, dp, params, np, &err) != 0) {
        fprintf(stderr, "train_step_bench: %s\n", err.msg);
        return 1;
    }
    for (int i = -1; i < steps; i++) { /* i = -1: the warm-up */
        double t0 = now();
        if (tm_zero(tm, dg, np, &err) != 0 || tm_forward(tm, dp, tok, tg, B, T, logp, ent, &err) ||
            tm_backward(tm, dp, dlogp, dg, &err) || tm_download(tm, params, dg, 1, &err)) {
            fprintf(stderr, "train_step_bench: %s\n", err.msg);
            return 1;
        }
        if (i >= 0)
            ms[i] = (now() - t0) * 1e3;
    }
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    double med = ms[steps / 2];
    const char *g = gemm == TM_GEMM_BF16 ? "bf16" : "f32";
    printf("RESULT train_step_ours_%s %.2f ms (%s backend, B %d, T %d, %zu params, median of %d)\n",
           g, med, be == TM_CUDA ? "cuda" : "cpu", B, T, np, steps);
    printf("RESULT train_tokens_per_s_ours_%s %.0f\n", g, (double)N / (med / 1e3));
    tm_release(tm, dp);
    tm_release(tm, dg);
    tm_free(tm);
    model_free(m);
    free(params), free(logp), free(ent), free(dlogp), free(tok), free(tg), free(ms);
    return 0;
}
