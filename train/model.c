/* The model's shape: config validation, the tensor table (HF names and shapes, one float buffer;
 * the qwen3, qwen2 and llama variants), lookup by name, and the random init. The forward pass is
 * in model_forward.c, the backward pass in model_backward.c, the sampler in model_sample.c,
 * checkpoints in model_io.c and model_config.c. */
#include "train/model_internal.h"
#include "train/rng.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MODEL_RNG_INIT = 0x1a17 }; /* the init's stream purpose (model.h) */

ModelDims model_dims(const ModelConfig *c)
{
    ModelDims d;
    d.V = (size_t)c->vocab_size;
    d.H = (size_t)c->hidden_size;
    d.I = (size_t)c->intermediate_size;
    d.L = (size_t)c->num_hidden_layers;
    d.Q = (size_t)c->num_attention_heads;
    d.K = (size_t)c->num_key_value_heads;
    d.D = (size_t)c->head_dim;
    d.QD = d.Q * d.D;
    d.KD = d.K * d.D;
    d.QKV = d.QD + 2 * d.KD;
    return d;
}

const char *model_arch_name(ModelArch arch)
{
    switch (arch) {
    case MODEL_ARCH_QWEN2: return "qwen2";
    case MODEL_ARCH_LLAMA: return "llama";
    default: return "qwen3";
    }
}

static bool mul_ok(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Floats in the buffer, or 0 on overflow. Dimensions must be positive. */
static size_t count_params(const ModelConfig *c)
{
    ModelDims d = model_dims(c);
    size_t per_layer = 0, t;
    size_t rows[] = {d.QKV, d.H, 2 * d.I, d.H}; /* qkv (.., H), o (H, QD), gate+up, down (H, I) */
    size_t cols[] = {d.H, d.QD, d.H, d.I};
    for (int i = 0; i < 4; i++) {
        if (!mul_ok(rows[i], cols[i], &t) || __builtin_add_overflow(per_layer, t, &per_layer))
            return 0;
    }
    size_t extra = 2 * d.H + (model_arch_qk_norm(c->arch) ? 2 * d.D : 0) +
                   (model_arch_qkv_bias(c->arch) ? d.QKV : 0);
    if (__builtin_add_overflow(per_layer, extra, &per_layer))
        return 0;
    size_t total, emb;
    if (!mul_ok(per_layer, d.L, &total) || !mul_ok(d.V, d.H, &emb))
        return 0;
    if (__builtin_add_overflow(total, emb + d.H, &total))
        return 0;
    if (!c->tie_word_embeddings && __builtin_add_overflow(total, emb, &total))
        return 0;
    return total;
}

int model_config_validate(const ModelConfig *c, SsError *err)
{
    if (!c)
        return ss_err(err, SS_EUSAGE, "model config: missing");
    if (c->arch != MODEL_ARCH_QWEN3 && c->arch != MODEL_ARCH_QWEN2 && c->arch != MODEL_ARCH_LLAMA)
        return ss_err(err, SS_EUSAGE, "model config: unknown architecture %d", (int)c->arch);
    const struct { const char *name; int v; } f[] = {
        {"vocab_size", c->vocab_size}, {"hidden_size", c->hidden_size},
        {"intermediate_size", c->intermediate_size}, {"num_hidden_layers", c->num_hidden_layers},
        {"num_attention_heads", c->num_attention_heads},
        {"num_key_value_heads", c->num_key_value_heads}, {"head_dim", c->head_dim},
        {"max_position_embeddings", c->max_position_embeddings}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v <= 0)
            return ss_err(err, SS_EUSAGE, "model config: %s must be positive, not %d", f[i].name,
                          f[i].v);
    if (c->num_attention_heads % c->num_key_value_heads != 0)
        return ss_err(err, SS_EUSAGE,
                      "model config: num_attention_heads %d is not a multiple of "
                      "num_key_value_heads %d",
                      c->num_attention_heads, c->num_key_value_heads);
    if (c->head_dim % 2 != 0)
        return ss_err(err, SS_EUSAGE, "model config: head_dim %d must be even", c->head_dim);
    if (!(c->rms_norm_eps > 0) || !isfinite(c->rms_norm_eps))
        return ss_err(err, SS_EUSAGE, "model config: rms_norm_eps must be positive and finite");
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return ss_err(err, SS_EUSAGE, "model config: rope_theta must be positive and finite");
    if (!(c->initializer_range >= 0) || !isfinite(c->initializer_range))
        return ss_err(err, SS_EUSAGE, "model config: initializer_range must be >= 0 and finite");
    /* Every width handed to BLAS (an int) must fit. */
    ModelDims d = model_dims(c);
    if (d.QKV > (size_t)INT_MAX || 2 * d.I > (size_t)INT_MAX)
        return ss_err(err, SS_EUSAGE, "model config: sizes too large");
    if (count_params(c) == 0)
        return ss_err(err, SS_EUSAGE, "model config: parameter count overflows");
    return SS_OK;
}

static void add_tensor(Model *m, size_t *off, const char *name, int ndim, size_t r, size_t c)
{
    ModelTensor *t = &m->tensors[m->ntensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = r;
    t->shape[1] = ndim == 2 ? c : 0;
    t->numel = ndim == 2 ? r * c : r;
    t->offset = *off;
    *off += t->numel;
}

int model_create(const ModelConfig *cfg, Model **out, SsError *err)
{
    *out = NULL;
    int rc = model_config_validate(cfg, err);
    if (rc)
        return rc;
    ModelDims d = model_dims(cfg);
    Model *m = calloc(1, sizeof *m);
    ModelImpl *im = calloc(1, sizeof *im);
    size_t cap = 3 + 14 * d.L;
    if (m)
        m->tensors = calloc(cap, sizeof *m->tensors);
    if (im)
        im->layer = calloc(d.L, sizeof *im->layer);
    if (!m || !im || !m->tensors || !im->layer) {
        if (m)
            free(m->tensors);
        if (im)
            free(im->layer);
        free(m);
        free(im);
        return ss_err(err, SS_EOUTPUT, "model: out of memory");
    }
    m->cfg = *cfg;
    m->impl_ = im;
    im->qk_norm = model_arch_qk_norm(cfg->arch);
    im->qkv_bias = model_arch_qkv_bias(cfg->arch);
    size_t off = 0;
    char name[96];
    im->embed = off;
    add_tensor(m, &off, "model.embed_tokens.weight", 2, d.V, d.H);
    for (size_t l = 0; l < d.L; l++) {
        ModelLayerOff *lo = &im->layer[l];
#define LAYER_TENSOR(field, suffix, nd, r, c)                                                  \
    do {                                                                                       \
        snprintf(name, sizeof name, "model.layers.%zu.%s", l, suffix);                         \
        if (field)                                                                             \
            *(size_t *)(field) = off;                                                          \
        add_tensor(m, &off, name, nd, r, c);                                                   \
    } while (0)
        LAYER_TENSOR(&lo->in_norm, "input_layernorm.weight", 1, d.H, 0);
        LAYER_TENSOR(&lo->wqkv, "self_attn.q_proj.weight", 2, d.QD, d.H);
        LAYER_TENSOR(NULL, "self_attn.k_proj.weight", 2, d.KD, d.H);
        LAYER_TENSOR(NULL, "self_attn.v_proj.weight", 2, d.KD, d.H);
        if (im->qkv_bias) {
            LAYER_TENSOR(&lo->bqkv, "self_attn.q_proj.bias", 1, d.QD, 0);
            LAYER_TENSOR(NULL, "self_attn.k_proj.bias", 1, d.KD, 0);
            LAYER_TENSOR(NULL, "self_attn.v_proj.bias", 1, d.KD, 0);
        }
        LAYER_TENSOR(&lo->wo, "self_attn.o_proj.weight", 2, d.H, d.QD);
        if (im->qk_norm) {
            LAYER_TENSOR(&lo->q_norm, "self_attn.q_norm.weight", 1, d.D, 0);
            LAYER_TENSOR(&lo->k_norm, "self_attn.k_norm.weight", 1, d.D, 0);
        }
        LAYER_TENSOR(&lo->post_norm, "post_attention_layernorm.weight", 1, d.H, 0);
        LAYER_TENSOR(&lo->wgu, "mlp.gate_proj.weight", 2, d.I, d.H);
        LAYER_TENSOR(NULL, "mlp.up_proj.weight", 2, d.I, d.H);
        LAYER_TENSOR(&lo->wd, "mlp.down_proj.weight", 2, d.H, d.I);
#undef LAYER_TENSOR
    }
    im->norm = off;
    add_tensor(m, &off, "model.norm.weight", 1, d.H, 0);
    im->lm_head = im->embed;
    if (!cfg->tie_word_embeddings) {
        im->lm_head = off;
        add_tensor(m, &off, "lm_head.weight", 2, d.V, d.H);
    }
    m->nparams = off;
    *out = m;
    return SS_OK;
}

void model_free(Model *m)
{
    if (!m)
        return;
    ModelImpl *im = m->impl_;
    if (im)
        free(im->layer);
    free(im);
    free(m->tensors);
    free(m);
}

long model_find(const Model *m, const char *name)
{
    for (size_t i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0)
            return (long)i;
    return -1;
}

void model_init_params(const Model *m, float *params, uint64_t seed)
{
    double std = m->cfg.initializer_range;
    for (size_t i = 0; i < m->ntensors; i++) {
        const ModelTensor *t = &m->tensors[i];
        float *p = params + t->offset;
        if (t->ndim == 1) {
            size_t nl = strlen(t->name);
            float v = nl > 5 && strcmp(t->name + nl - 5, ".bias") == 0 ? 0.0f : 1.0f;
            for (size_t j = 0; j < t->numel; j++)
                p[j] = v;
            continue;
        }
        uint64_t key = rng_stream(seed, MODEL_RNG_INIT, i, 0);
        for (size_t j = 0; j < t->numel; j++)
            p[j] = (float)(std * rng_normal(key, j));
    }
}
