/* Sampling with a KV cache: all live sequences advance one position per step, so each step runs
 * every projection as one GEMM over the live rows; prompts are fed through the same steps (a
 * sequence samples from the step that reads its last prompt token on). Finished sequences leave
 * the batch. Each row's arithmetic is the same whatever the other rows are, and its random draws
 * come from its own stream, so a response does not depend on the batch it was sampled in.
 *
 * That needs care with BLAS: OpenBLAS computes a row of a GEMM with different kernels (so
 * different rounding) depending on the number of rows M (its small-matrix path), though for a
 * fixed M a row's result depends neither on its position nor on the other rows. So every GEMM
 * here runs in blocks of exactly SAMPLER_BLOCK rows, the last block padded with rows that are
 * computed and ignored. tests/train_model checks the result bit for bit through the KV cache.
 *
 * Sequences with the same prompt (GRPO's G samples of a prompt) share one row while they read
 * the prompt: its keys and values are written into each member's cache, and at its last prompt
 * token each member draws its first response token from the shared logits; then the group splits
 * into one row per sequence. A shared row computes exactly what each member's own row would, so
 * this changes no bit, only the number of rows. */
#include "train/model_internal.h"
#include "train/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 16: smaller blocks pad less (a prompt group or the last few live sequences fill a block), larger
 * ones repack the weights less often; on GRPO's 8 x 8 batches of the small preset, 16 sampled
 * fastest (1 thread: 64 rows 73 ms, 32 rows 63 ms, 16 rows 56 ms, 8 rows 59 ms). */
enum { SAMPLER_BLOCK = 16 };

struct ModelSampler {
    int n, max_len;
    float *kc, *vc;           /* (L, n, K, max_len, D) rotated keys and values */
    float *x, *h, *qkv, *q, *k, *ctx, *gu, *mlp, *logits, *qrs, *krs; /* per live row */
    float *scores;            /* (max_len) */
    double *probs;            /* (V) */
    float *rope_cos, *rope_sin; /* (max_len, D/2) */
    int *act, *pos;           /* (n) live row -> sequence (its group's first); row position */
    int *next, *act2;         /* (n) next member of a sequence's group or -1; act's next step */
    void *mem;
};

int model_sampler_create(const Model *m, int n, int max_len, ModelSampler **out, SsError *err)
{
    *out = NULL;
    if (n <= 0 || max_len <= 0 || max_len > m->cfg.max_position_embeddings)
        return ss_err(err, SS_EUSAGE,
                      "model sampler: need n > 0 and 0 < max_len <= max_position_embeddings %d "
                      "(n %d, max_len %d)",
                      m->cfg.max_position_embeddings, n, max_len);
    ModelDims d = model_dims(&m->cfg);
    size_t N = (size_t)n, T = (size_t)max_len;
    size_t cache = d.L * N * d.KD * T;
    size_t NB = (N + SAMPLER_BLOCK - 1) / SAMPLER_BLOCK * SAMPLER_BLOCK; /* padded rows */ /* no overflow: bounded like model_acts_create's */
    if (cache / T / d.KD / N != d.L || cache > SIZE_MAX / 16)
        return ss_err(err, SS_EUSAGE, "model sampler: n %d x max_len %d is too large", n,
                      max_len);
    size_t sizes[] = {cache, cache, NB * d.H, NB * d.H, NB * d.QKV, NB * d.QD, NB * d.KD,
                      NB * d.QD, NB * 2 * d.I, NB * d.I, NB * d.V, N * d.Q, N * d.K, T, 2 * d.V,
                      T * (d.D / 2), T * (d.D / 2), N, N, N, N};
    size_t nsz = sizeof sizes / sizeof sizes[0], total = 0;
    for (size_t i = 0; i < nsz; i++)
        total += (sizes[i] + 15) & ~(size_t)15;
    ModelSampler *s = calloc(1, sizeof *s);
    if (!s || posix_memalign(&s->mem, 64, total * sizeof(float)) != 0) {
        free(s);
        return ss_err(err, SS_EOUTPUT, "model sampler: out of memory");
    }
    memset(s->mem, 0, total * sizeof(float));
    float *p = s->mem;
    void **ptrs[] = {(void **)&s->kc, (void **)&s->vc, (void **)&s->x, (void **)&s->h,
                     (void **)&s->qkv, (void **)&s->q, (void **)&s->k, (void **)&s->ctx,
                     (void **)&s->gu, (void **)&s->mlp, (void **)&s->logits, (void **)&s->qrs,
                     (void **)&s->krs, (void **)&s->scores, (void **)&s->probs,
                     (void **)&s->rope_cos, (void **)&s->rope_sin, (void **)&s->act,
                     (void **)&s->pos, (void **)&s->next, (void **)&s->act2};
    for (size_t i = 0; i < nsz; i++) {
        *ptrs[i] = p;
        p += (sizes[i] + 15) & ~(size_t)15;
    }
    s->n = n;
    s->max_len = max_len;
    model_rope_table(max_len, m->cfg.head_dim, m->cfg.rope_theta, s->rope_cos, s->rope_sin);
    *out = s;
    return SS_OK;
}

void model_sampler_free(ModelSampler *s)
{
    if (!s)
        return;
    free(s->mem);
    free(s);
}

/* C (rows, N) = A (rows, K) W^T (+ C when accumulate), in blocks of SAMPLER_BLOCK rows. */
static void gemm_rows(size_t rows, size_t N, size_t K, const float *A, const float *W, int accumulate,
                      float *C)
{
    for (size_t r = 0; r < rows; r += SAMPLER_BLOCK)
        model_gemm(0, 1, SAMPLER_BLOCK, N, K, 1, A + r * K, K, W, K, accumulate ? 1.0f : 0.0f,
                   C + r * N, N);
}

const float *model_sampler_cache(const ModelSampler *s, const Model *m, int l, int i, int v)
{
    ModelDims d = model_dims(&m->cfg);
    return (v ? s->vc : s->kc) + ((size_t)l * (size_t)s->n + (size_t)i) * d.KD * (size_t)s->max_len;
}

/* A dot product in eight fixed lanes (vectorizable, and the same order on every call). */
static float dot(const float *a, const float *b, size_t n)
{
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++)
            acc[u] += a[i + u] * b[i + u];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* One layer for the nr live rows at position t: appends their keys and values to the cache and
 * updates the residual stream s->x. */
static void layer_step(const Model *m, const float *params, ModelSampler *s, size_t l, size_t nr,
                       size_t t)
{
    const ModelLayerOff *lo = &model_impl(m)->layer[l];
    ModelDims d = model_dims(&m->cfg);
    double eps = m->cfg.rms_norm_eps;
    size_t T = (size_t)s->max_len, group = d.Q / d.K;
    float scale = (float)(1.0 / sqrt((double)d.D));
    model_rmsnorm_fwd(s->x, params + lo->in_norm, nr, d.H, eps, s->h, s->qkv /* scratch */);
    const ModelImpl *im = model_impl(m);
    gemm_rows(nr, d.QKV, d.H, s->h, params + lo->wqkv, 0, s->qkv);
    if (im->qkv_bias)
        model_add_bias(s->qkv, d.QKV, model_bqkv(im, params, l), nr, d.QKV);
    model_qk_norm_rope(s->qkv, d.QKV, model_qnorm(im, params, l), nr, d.Q, d.D, eps, s->rope_cos,
                       s->rope_sin, s->pos, T, s->q, d.QD, s->qrs);
    model_qk_norm_rope(s->qkv + d.QD, d.QKV, model_knorm(im, params, l), nr, d.K, d.D, eps,
                       s->rope_cos, s->rope_sin, s->pos, T, s->k, d.KD, s->krs);
    for (size_t r = 0; r < nr; r++) {
        size_t i = (size_t)s->act[r];
        for (int mi = (int)i; mi >= 0; mi = s->next[mi]) /* every member of the row's group */
            for (size_t g = 0; g < d.K; g++) {
                size_t base = (((l * (size_t)s->n + (size_t)mi) * d.K + g) * T) * d.D;
                memcpy(s->kc + base + t * d.D, s->k + r * d.KD + g * d.D, d.D * sizeof(float));
                memcpy(s->vc + base + t * d.D, s->qkv + r * d.QKV + d.QD + d.KD + g * d.D,
                       d.D * sizeof(float));
            }
        for (size_t h = 0; h < d.Q; h++) {
            size_t base = (((l * (size_t)s->n + i) * d.K + h / group) * T) * d.D;
            const float *q = s->q + r * d.QD + h * d.D, *kc = s->kc + base, *vc = s->vc + base;
            float *sc = s->scores, mx = -INFINITY, sum = 0;
            for (size_t j = 0; j <= t; j++) {
                sc[j] = dot(q, kc + j * d.D, d.D) * scale;
                mx = sc[j] > mx ? sc[j] : mx;
            }
            for (size_t j = 0; j <= t; j++) {
                sc[j] = expf(sc[j] - mx);
                sum += sc[j];
            }
            float inv = 1.0f / sum;
            float *c = s->ctx + r * d.QD + h * d.D;
            memset(c, 0, d.D * sizeof(float));
            for (size_t j = 0; j <= t; j++) {
                float pj = sc[j] * inv;
                const float *v = vc + j * d.D;
                for (size_t e = 0; e < d.D; e++)
                    c[e] += pj * v[e];
            }
        }
    }
    gemm_rows(nr, d.H, d.QD, s->ctx, params + lo->wo, 1, s->x);
    model_rmsnorm_fwd(s->x, params + lo->post_norm, nr, d.H, eps, s->h, s->qkv);
    gemm_rows(nr, 2 * d.I, d.H, s->h, params + lo->wgu, 0, s->gu);
    for (size_t r = 0; r < nr; r++) {
        const float *g = s->gu + r * 2 * d.I, *u = g + d.I;
        float *y = s->mlp + r * d.I;
        for (size_t e = 0; e < d.I; e++)
            y[e] = g[e] * (1.0f / (1.0f + expf(-g[e]))) * u[e];
    }
    gemm_rows(nr, d.H, d.I, s->mlp, params + lo->wd, 1, s->x);
}

/* The next token from one logits row: argmax when temperature is 0, else a draw with u. */
static int32_t pick(const float *z, size_t V, float temperature, double u, double *p)
{
    size_t best = 0;
    for (size_t v = 1; v < V; v++)
        if (z[v] > z[best])
            best = v;
    if (temperature <= 0)
        return (int32_t)best;
    double mx = z[best], total = 0;
    for (size_t v = 0; v < V; v++) {
        p[v] = exp(((double)z[v] - mx) / temperature);
        total += p[v];
    }
    double target = u * total, cum = 0;
    for (size_t v = 0; v < V; v++) {
        cum += p[v];
        if (cum > target && p[v] > 0)
            return (int32_t)v;
    }
    return (int32_t)best;
}

void model_sample(const Model *m, const float *params, ModelSampler *s,
                  const int32_t *const *prompts, const int *prompt_len, int n, int max_new,
                  float temperature, int32_t eos, uint64_t seed, const uint64_t *stream_ids,
                  int32_t *out, int *out_len)
{
    const ModelImpl *im = model_impl(m);
    ModelDims d = model_dims(&m->cfg);
    size_t nn = (size_t)(n > 0 ? n : 0), mn = (size_t)(max_new > 0 ? max_new : 0);
    for (size_t i = 0; i < nn * mn; i++)
        out[i] = -1;
    size_t nr = 0;
    for (size_t i = 0; i < nn; i++) {
        out_len[i] = 0;
        if (i >= (size_t)s->n)
            continue;
        s->next[i] = -1;
        if (mn == 0 || prompt_len[i] < 1 || (size_t)prompt_len[i] + mn > (size_t)s->max_len)
            continue;
        /* the same prompt as a live row's: join its group (appended, so members stay in order) */
        size_t r = 0, pl = (size_t)prompt_len[i];
        for (; r < nr; r++) {
            size_t j = (size_t)s->act[r];
            if ((size_t)prompt_len[j] == pl &&
                (prompts[j] == prompts[i] || memcmp(prompts[j], prompts[i], pl * sizeof(int32_t)) == 0))
                break;
        }
        if (r == nr) {
            s->act[nr++] = (int)i;
            continue;
        }
        int last = s->act[r];
        while (s->next[last] >= 0)
            last = s->next[last];
        s->next[last] = (int)i;
    }
    const float *emb = params + im->embed;
    for (size_t t = 0; nr > 0; t++) {
        for (size_t r = 0; r < nr; r++) {
            size_t i = (size_t)s->act[r], pl = (size_t)prompt_len[i];
            int32_t tok = t < pl ? prompts[i][t] : out[i * mn + (t - pl)];
            s->pos[r] = (int)t;
            if (tok >= 0 && (size_t)tok < d.V)
                memcpy(s->x + r * d.H, emb + (size_t)tok * d.H, d.H * sizeof(float));
            else
                memset(s->x + r * d.H, 0, d.H * sizeof(float));
        }
        for (size_t l = 0; l < d.L; l++)
            layer_step(m, params, s, l, nr, t);
        model_rmsnorm_fwd(s->x, params + im->norm, nr, d.H, m->cfg.rms_norm_eps, s->h, s->qkv);
        gemm_rows(nr, d.V, d.H, s->h, params + im->lm_head, 0, s->logits);
        size_t keep = 0;
        for (size_t r = 0; r < nr; r++) {
            size_t pl = (size_t)prompt_len[s->act[r]];
            if (t + 1 < pl) { /* still reading the prompt: the group stays one row */
                s->act2[keep++] = s->act[r];
                continue;
            }
            size_t k = t + 1 - pl; /* index of the response token drawn now */
            for (int mi = s->act[r], nx; mi >= 0; mi = nx) { /* each member draws; groups split */
                size_t i = (size_t)mi;
                nx = s->next[i];
                s->next[i] = -1;
                double u = temperature > 0
                               ? rng_uniform(rng_stream(seed, stream_ids[i], 0, 0), k)
                               : 0;
                int32_t tok = pick(s->logits + r * d.V, d.V, temperature, u, s->probs);
                out[i * mn + k] = tok;
                out_len[i] = (int)(k + 1);
                if (!(tok == eos || k + 1 == mn))
                    s->act2[keep++] = (int)i;
            }
        }
        int *tmp = s->act;
        s->act = s->act2;
        s->act2 = tmp;
        nr = keep;
    }
}
