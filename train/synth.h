/* ckpt-synth's library: realistic Qwen3-like checkpoints and simulated RLVR updates of them.
 *
 * `init` writes a base checkpoint with Hugging Face Qwen3 tensor names and shapes and init-like
 * values; `update` reads any checkpoint and writes a child as if N optimizer steps (SGD-like or
 * AdamW-like) had been applied to float32 master weights and the result rounded to the stored
 * dtype (round to nearest even), which is where bf16 update sparsity comes from.
 *
 * Every value is a pure function of (seed, tensor name, element index): a counter-based RNG
 * (splitmix64's finalizer over key + counter) makes the output independent of the thread count,
 * the chunking and the tensor order. Files are generated in fixed chunks on a thread pool and
 * written through st_writer_put, so memory is a few chunks, not the model.
 *
 * The files behind this header:
 *   synth_size.c    SIZE strings ("2G", "500MB")
 *   synth_layout.c  presets, shapes, the Qwen3 tensor list, tensor kinds from names
 *   synth_config.c  config.json: writing, copying, inferring a shape back from tensors
 *   synth_values.c  base values (init) and the init command
 *   synth_update.c  the update model (SGD-like, AdamW-like, stripes) and the update command
 *   synth_write.c   output planning (single file, folder, HF shards + index) and the chunked writer
 *
 * Functions returning int return 0 or a negative SS_E* code and fill err (formats/ss_error.h). */
#ifndef SS_SYNTH_H
#define SS_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "formats/dtype.h"
#include "formats/safetensors.h"
#include "formats/ss_error.h"

/* ---- sizes (synth_size.c) ---- */

/* Parses "123", "4K", "2G", "2GiB" (powers of 1024) or "500KB", "5GB" (powers of 1000, as
 * Hugging Face's max_shard_size). Returns 0 or SS_EUSAGE for a malformed, zero or overflowing
 * value. */
int synth_size_parse(const char *text, uint64_t *out, SsError *err);

/* ---- model shapes and tensor lists (synth_layout.c) ---- */

typedef struct SynthShape {
    uint32_t layers;       /* num_hidden_layers */
    uint32_t hidden;       /* hidden_size, H */
    uint32_t intermediate; /* intermediate_size, I */
    uint32_t heads;        /* num_attention_heads, Q */
    uint32_t kv_heads;     /* num_key_value_heads, K */
    uint32_t head_dim;     /* head_dim, D */
    uint32_t vocab;        /* vocab_size, V */
    bool tied;             /* tie_word_embeddings: no lm_head.weight */
} SynthShape;

/* Fills *out with a named preset ("tiny", "qwen3-0.6b", ...); SS_EUSAGE for an unknown name. */
int synth_preset_find(const char *name, SynthShape *out, SsError *err);
/* "tiny|qwen3-0.6b|..." for help texts. */
const char *synth_preset_names(void);

/* Checks that every dimension is positive, heads % kv_heads == 0, and that every tensor size and
 * the checkpoint's total byte count fit in 64 bits for dtype dt. SS_EUSAGE otherwise. */
int synth_shape_check(const SynthShape *s, DType dt, SsError *err);

/* Total tensor bytes of the checkpoint for shape s in dtype dt (shape must pass the check). */
int synth_shape_bytes(const SynthShape *s, DType dt, uint64_t *out, SsError *err);

/* Sets s->layers to the count (>= 1) whose total tensor bytes come nearest to target. */
int synth_shape_fit_layers(SynthShape *s, DType dt, uint64_t target, SsError *err);

/* What a tensor is, from its Hugging Face name. */
typedef enum SynthKind {
    SYNTH_OTHER,
    SYNTH_EMBED,   /* model.embed_tokens.weight */
    SYNTH_LM_HEAD, /* lm_head.weight */
    SYNTH_NORM,    /* any *norm.weight (RMSNorm gains) */
    SYNTH_Q, SYNTH_K, SYNTH_V, SYNTH_O,
    SYNTH_GATE, SYNTH_UP, SYNTH_DOWN
} SynthKind;

/* Kind of the tensor called name; *layer gets N of "model.layers.N." or -1. */
SynthKind synth_kind_of(const char *name, int *layer);

#define SYNTH_MAX_NDIM 8

/* One tensor to write. name points into storage owned by whoever built the list. */
typedef struct SynthTensor {
    const char *name;
    DType dtype;
    int ndim;
    uint64_t shape[SYNTH_MAX_NDIM];
    uint64_t numel;
    uint64_t nbytes;
    SynthKind kind;
    int layer;
} SynthTensor;

/* The tensors of a Qwen3 checkpoint in Hugging Face module (state_dict) order. */
typedef struct SynthLayout {
    size_t ntensors;
    SynthTensor *tensors;
    char *names_; /* storage of the names; private */
} SynthLayout;

int synth_layout_build(const SynthShape *s, DType dt, SynthLayout *out, SsError *err);
void synth_layout_free(SynthLayout *l);

/* ---- config.json (synth_config.c) ---- */

/* Writes dir/config.json (atomically) describing shape s stored as dt, with Qwen3's fields. */
int synth_config_write(const char *dir, const SynthShape *s, DType dt, SsError *err);

/* Recovers a Qwen3 shape from a checkpoint's tensor names and shapes; SS_EINPUT when the names or
 * shapes are not Qwen3's. *dt gets the dtype of the embedding. */
int synth_shape_infer(const StCheckpoint *ck, SynthShape *s, DType *dt, SsError *err);

/* Writes len bytes to path through "<path>.tmp.<pid>", fsync and rename. SS_EOUTPUT on failure. */
int synth_file_write_atomic(const char *path, const char *bytes, size_t len, SsError *err);

/* ---- writing checkpoints (synth_write.c) ---- */

/* Fills dst with elements [first, first + count) of tensor `tensor`, stored in its dtype.
 * Called concurrently from pool threads for disjoint ranges; must not fail. */
typedef void (*SynthFillFn)(void *ctx, size_t tensor, uint64_t first, uint64_t count, void *dst);

typedef enum SynthOrder {
    SYNTH_ORDER_HF,       /* shards cut in the given order, each file sorted by name (as HF) */
    SYNTH_ORDER_SHUFFLED, /* a seeded permutation, kept inside each file */
} SynthOrder;

typedef struct SynthWriteOptions {
    const char *out;     /* *.safetensors: one file; otherwise a folder */
    uint64_t shard_size; /* 0: no sharding (folder/model.safetensors); only for folders */
    SynthOrder order;
    uint64_t order_seed;
    int threads;         /* <= 0: all cores */
} SynthWriteOptions;

/* True when out names a folder output (it does not end in ".safetensors"). */
bool synth_out_is_folder(const char *out);

/* Writes the n tensors (in logical order) filled by fill(ctx, ...), as o says. Missing folders
 * (the output folder, or a file output's parents) are created. Returns SS_EUSAGE for a shard
 * size given with a file output, SS_EOUTPUT when something cannot be written. */
int synth_checkpoint_write(const SynthTensor *tensors, size_t n, SynthFillFn fill, void *ctx,
                           const SynthWriteOptions *o, SsError *err);

/* ---- the two commands (synth_values.c, synth_update.c) ---- */

typedef struct SynthInitOptions {
    SynthShape shape;
    DType dtype;       /* BF16, F16 or F32 */
    uint64_t seed;
    SynthWriteOptions write;
} SynthInitOptions;

/* Generates and writes a base checkpoint (and config.json for a folder). */
int synth_init_run(const SynthInitOptions *o, SsError *err);

typedef enum SynthOptimizer { SYNTH_SGD, SYNTH_ADAMW } SynthOptimizer;

typedef struct SynthUpdateOptions {
    const char *base;  /* any checkpoint st_open accepts */
    SynthOptimizer optimizer;
    double lr;         /* <= 0: the optimizer's default */
    uint32_t steps;    /* 0: the default */
    uint64_t seed;
    bool stripes;      /* concentrate the update on a few attention heads per layer */
    SynthWriteOptions write;
} SynthUpdateOptions;

#define SYNTH_SGD_DEFAULT_LR 0.1
#define SYNTH_ADAMW_DEFAULT_LR 1e-6
#define SYNTH_DEFAULT_STEPS 40u
#define SYNTH_ADAMW_WEIGHT_DECAY 0.01

/* Reads the base, writes the child (same names, shapes, dtypes) and, for a folder output, a
 * config.json (the base folder's copied, or one inferred from the tensors when they are
 * Qwen3's). */
int synth_update_run(const SynthUpdateOptions *o, SsError *err);

/* ---- internals shared by the synth_*.c files: RNG and rounding ---- */

#define SYNTH_GOLDEN 0x9E3779B97F4A7C15ull

/* Hot per-element loops are compiled for several x86-64 levels and picked at load time. Every
 * clone computes the same bits: integer ops and IEEE +, -, *, /, sqrt are exact at any vector
 * width, and the library is built with -ffp-contract=off (no fused multiply-add). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define SYNTH_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define SYNTH_CLONES
#endif

/* splitmix64's finalizer: a bijective 64-bit mixer. */
static inline uint64_t synth_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The counter-th 64-bit draw of the stream called key: splitmix64's output at state
 * key + (counter + 1) * golden. */
static inline uint64_t synth_draw(uint64_t key, uint64_t counter)
{
    return synth_mix64(key + (counter + 1) * SYNTH_GOLDEN);
}

/* A stream key from a seed, a domain constant (which purpose) and a tensor name. */
uint64_t synth_key(uint64_t seed, uint64_t domain, const char *name);

static inline unsigned synth_popcount48(uint64_t x)
{
    x &= 0xFFFFFFFFFFFFull;
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    /* Bytes summed by shifts, not by the usual multiply: GCC turns that idiom into the scalar
     * popcnt instruction, which stops the loops around this from vectorizing. */
    x += x >> 8;
    x += x >> 16;
    x += x >> 32;
    return (unsigned)(x & 0x7F);
}

/* A standard normal deviate from one 64-bit draw: Binomial(48, 1/2) from the low 48 bits, smoothed
 * by a uniform from the high 16 bits, centered and scaled to variance 1 (excess kurtosis -0.04,
 * tails to 6.9 sigma). Cheap and portable; no log, no trig. */
static inline double synth_normal(uint64_t r)
{
    /* int32 conversions (not 64-bit) so that loops over this vectorize on plain SSE2. */
    double frac = ((double)(int32_t)(r >> 48) + 0.5) * (1.0 / 65536.0) - 0.5;
    double count = (double)(int32_t)synth_popcount48(r);
    return (count - 24.0 + frac) * 0.28767798432077366; /* sqrt(12/145) */
}

/* A uniform deviate in (0, 1): (2k + 1) 2^-53 with k the high 52 bits of a draw (built through
 * the exponent bits: exact, and vectorizable without 64-bit integer conversions). */
static inline double synth_uniform(uint64_t r)
{
    uint64_t bits = 0x3FF0000000000000ull | (r >> 12);
    double one_to_two;
    memcpy(&one_to_two, &bits, sizeof one_to_two);
    return (one_to_two - 1.0) + 0x1.0p-53;
}

static inline uint32_t synth_f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static inline float synth_bits_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* float -> bfloat16, round to nearest even; NaN stays a (quiet) NaN. */
static inline uint16_t synth_f32_to_bf16(float f)
{
    uint32_t b = synth_f32_bits(f);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)((b >> 16) | 0x0040u);
    b += 0x7FFFu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

/* float -> IEEE half, round to nearest even, with subnormals, overflow to Inf, NaN kept (the
 * branch-light method of Maratyszcza's FP16 library; needs float arithmetic without excess
 * precision, as on x86-64 SSE and AArch64). */
static inline uint16_t synth_f32_to_f16(float f)
{
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (__builtin_fabsf(f) * scale_to_inf) * scale_to_zero;
    uint32_t w = synth_f32_bits(f);
    uint32_t shl1_w = w + w;
    uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u)
        bias = 0x71000000u;
    base = synth_bits_f32((bias >> 1) + 0x07800000u) + base;
    uint32_t bits = synth_f32_bits(base);
    uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    uint32_t mantissa_bits = bits & 0x00000FFFu;
    uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

#endif
