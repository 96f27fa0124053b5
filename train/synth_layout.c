/* Qwen3 model shapes for ckpt-synth: the presets (values from the released config.json files),
 * size checks, layer fitting for --target-bytes, the tensor list in Hugging Face state_dict order,
 * and tensor kinds recognised from names. */
#include "train/synth.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct Preset {
    const char *name;
    SynthShape shape; /* layers, hidden, intermediate, heads, kv_heads, head_dim, vocab, tied */
} Preset;

static const Preset presets[] = {
    {"tiny", {2, 64, 128, 4, 2, 16, 256, false}},
    {"qwen3-0.6b", {28, 1024, 3072, 16, 8, 128, 151936, true}},
    {"qwen3-1.7b", {28, 2048, 6144, 16, 8, 128, 151936, true}},
    {"qwen3-4b", {36, 2560, 9728, 32, 8, 128, 151936, true}},
    {"qwen3-8b", {36, 4096, 12288, 32, 8, 128, 151936, false}},
};

/* Limits that keep every product below 2^64 with room to spare and names short. */
#define SYNTH_MAX_DIM (1u << 24)
#define SYNTH_MAX_LAYERS 100000u

const char *synth_preset_names(void)
{
    return "tiny|qwen3-0.6b|qwen3-1.7b|qwen3-4b|qwen3-8b";
}

int synth_preset_find(const char *name, SynthShape *out, SsError *err)
{
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) {
            *out = presets[i].shape;
            return SS_OK;
        }
    return ss_err(err, SS_EUSAGE, "unknown preset '%s' (known: %s)", name, synth_preset_names());
}

/* ---- sizes ---- */

/* Elements of the non-layer tensors (embedding, final norm, lm_head) and of one layer. */
static int shape_counts(const SynthShape *s, uint64_t *fixed, uint64_t *per_layer)
{
    uint64_t H = s->hidden, I = s->intermediate, Q = s->heads, K = s->kv_heads, D = s->head_dim,
             V = s->vocab;
    /* All dimensions are < 2^24, so every product of two fits in 48 bits and the sums below
     * cannot overflow. */
    uint64_t embed = V * H;
    *fixed = embed + H + (s->tied ? 0 : embed);
    *per_layer = 2 * H               /* input_layernorm, post_attention_layernorm */
                 + Q * D * H * 2     /* q_proj, o_proj */
                 + K * D * H * 2     /* k_proj, v_proj */
                 + 2 * D             /* q_norm, k_norm */
                 + I * H * 3;        /* gate_proj, up_proj, down_proj */
    return 0;
}

int synth_shape_check(const SynthShape *s, DType dt, SsError *err)
{
    const struct { const char *name; uint32_t v; } dims[] = {
        {"--layers", s->layers}, {"--hidden", s->hidden}, {"--intermediate", s->intermediate},
        {"--heads", s->heads}, {"--kv-heads", s->kv_heads}, {"--head-dim", s->head_dim},
        {"--vocab", s->vocab},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        uint32_t limit = i == 0 ? SYNTH_MAX_LAYERS : SYNTH_MAX_DIM;
        if (dims[i].v == 0 || dims[i].v > limit)
            return ss_err(err, SS_EUSAGE, "%s must be in [1, %u], got %u", dims[i].name, limit,
                          dims[i].v);
    }
    if (s->heads % s->kv_heads != 0)
        return ss_err(err, SS_EUSAGE, "--heads (%u) must be a multiple of --kv-heads (%u)",
                      s->heads, s->kv_heads);
    if ((uint64_t)s->heads * s->head_dim > SYNTH_MAX_DIM)
        return ss_err(err, SS_EUSAGE, "--heads x --head-dim (%u x %u) is too large", s->heads,
                      s->head_dim);
    uint64_t total;
    return synth_shape_bytes(s, dt, &total, err);
}

int synth_shape_bytes(const SynthShape *s, DType dt, uint64_t *out, SsError *err)
{
    uint64_t fixed, per_layer, elems, bytes;
    shape_counts(s, &fixed, &per_layer);
    if (__builtin_mul_overflow(per_layer, (uint64_t)s->layers, &elems) ||
        __builtin_add_overflow(elems, fixed, &elems) ||
        __builtin_mul_overflow(elems, (uint64_t)dtype_size(dt), &bytes))
        return ss_err(err, SS_EUSAGE, "model too large: its byte count overflows 64 bits");
    *out = bytes;
    return SS_OK;
}

int synth_shape_fit_layers(SynthShape *s, DType dt, uint64_t target, SsError *err)
{
    uint64_t fixed, per_layer;
    shape_counts(s, &fixed, &per_layer);
    uint64_t es = dtype_size(dt);
    /* fixed and per_layer are < 2^51 and es <= 8, so these products fit. */
    uint64_t fixed_b = fixed * es, layer_b = per_layer * es;
    uint64_t layers = 1;
    if (target > fixed_b + layer_b) {
        uint64_t rest = target - fixed_b;
        layers = rest / layer_b;
        if (rest % layer_b > layer_b / 2)
            layers++;
    }
    if (layers > SYNTH_MAX_LAYERS)
        return ss_err(err, SS_EUSAGE, "--target-bytes %llu needs %llu layers of this shape "
                      "(at most %u)", (unsigned long long)target, (unsigned long long)layers,
                      SYNTH_MAX_LAYERS);
    s->layers = (uint32_t)layers;
    return synth_shape_check(s, dt, err);
}

/* ---- names and kinds ---- */

SynthKind synth_kind_of(const char *name, int *layer)
{
    *layer = -1;
    const char *rest = name;
    const char *prefix = "model.layers.";
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) == 0) {
        char *end = NULL;
        long v = strtol(name + plen, &end, 10);
        if (end != name + plen && *end == '.' && v >= 0 && v < 1000000) {
            *layer = (int)v;
            rest = end + 1;
        }
    }
    static const struct { const char *suffix; SynthKind kind; } suffixes[] = {
        {"self_attn.q_proj.weight", SYNTH_Q},   {"self_attn.k_proj.weight", SYNTH_K},
        {"self_attn.v_proj.weight", SYNTH_V},   {"self_attn.o_proj.weight", SYNTH_O},
        {"mlp.gate_proj.weight", SYNTH_GATE},   {"mlp.up_proj.weight", SYNTH_UP},
        {"mlp.down_proj.weight", SYNTH_DOWN},
    };
    if (*layer >= 0)
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
            if (strcmp(rest, suffixes[i].suffix) == 0)
                return suffixes[i].kind;
    if (strcmp(name, "model.embed_tokens.weight") == 0)
        return SYNTH_EMBED;
    if (strcmp(name, "lm_head.weight") == 0)
        return SYNTH_LM_HEAD;
    size_t n = strlen(name);
    if (n >= 11 && strcmp(name + n - 11, "norm.weight") == 0)
        return SYNTH_NORM;
    return SYNTH_OTHER;
}

/* ---- the tensor list ---- */

#define SYNTH_NAME_MAX 80

typedef struct LayoutBuilder {
    SynthLayout *l;
    DType dt;
} LayoutBuilder;

static void layout_add(LayoutBuilder *b, const char *name, int ndim, uint64_t d0, uint64_t d1)
{
    SynthLayout *l = b->l;
    char *slot = l->names_ + l->ntensors * SYNTH_NAME_MAX;
    snprintf(slot, SYNTH_NAME_MAX, "%s", name);
    SynthTensor *t = &l->tensors[l->ntensors++];
    memset(t, 0, sizeof *t);
    t->name = slot;
    t->dtype = b->dt;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->numel = ndim == 1 ? d0 : d0 * d1; /* checked by synth_shape_check */
    t->nbytes = t->numel * dtype_size(b->dt);
    t->kind = synth_kind_of(t->name, &t->layer);
}

int synth_layout_build(const SynthShape *s, DType dt, SynthLayout *out, SsError *err)
{
    memset(out, 0, sizeof *out);
    int rc = synth_shape_check(s, dt, err);
    if (rc)
        return rc;
    size_t n = (size_t)s->layers * 11 + 3;
    out->tensors = calloc(n, sizeof *out->tensors);
    out->names_ = calloc(n, SYNTH_NAME_MAX);
    if (!out->tensors || !out->names_) {
        synth_layout_free(out);
        return ss_err(err, SS_EOUTPUT, "out of memory for %zu tensor descriptions", n);
    }
    uint64_t H = s->hidden, I = s->intermediate, QD = (uint64_t)s->heads * s->head_dim,
             KD = (uint64_t)s->kv_heads * s->head_dim, D = s->head_dim;
    LayoutBuilder b = {out, dt};
    char name[SYNTH_NAME_MAX];
    layout_add(&b, "model.embed_tokens.weight", 2, s->vocab, H);
    /* Qwen3DecoderLayer registers self_attn (q, k, v, o, q_norm, k_norm), mlp (gate, up, down),
     * then the two layer norms: state_dict order follows. */
    static const struct { const char *suffix; int what; } per_layer[] = {
        {"self_attn.q_proj.weight", 0}, {"self_attn.k_proj.weight", 1},
        {"self_attn.v_proj.weight", 1}, {"self_attn.o_proj.weight", 2},
        {"self_attn.q_norm.weight", 3}, {"self_attn.k_norm.weight", 3},
        {"mlp.gate_proj.weight", 4},    {"mlp.up_proj.weight", 4},
        {"mlp.down_proj.weight", 5},    {"input_layernorm.weight", 6},
        {"post_attention_layernorm.weight", 6},
    };
    for (uint32_t i = 0; i < s->layers; i++)
        for (size_t j = 0; j < sizeof per_layer / sizeof per_layer[0]; j++) {
            snprintf(name, sizeof name, "model.layers.%u.%s", i, per_layer[j].suffix);
            switch (per_layer[j].what) {
            case 0: layout_add(&b, name, 2, QD, H); break;
            case 1: layout_add(&b, name, 2, KD, H); break;
            case 2: layout_add(&b, name, 2, H, QD); break;
            case 3: layout_add(&b, name, 1, D, 0); break;
            case 4: layout_add(&b, name, 2, I, H); break;
            case 5: layout_add(&b, name, 2, H, I); break;
            default: layout_add(&b, name, 1, H, 0); break;
            }
        }
    layout_add(&b, "model.norm.weight", 1, H, 0);
    if (!s->tied)
        layout_add(&b, "lm_head.weight", 2, s->vocab, H);
    return SS_OK;
}

void synth_layout_free(SynthLayout *l)
{
    if (!l)
        return;
    free(l->tensors);
    free(l->names_);
    memset(l, 0, sizeof *l);
}
