/* The trainer's model: a Qwen3-style decoder in float32 (or its Qwen2 and Llama variants), with a
 * hand-written backward pass.
 *
 * Architecture (as Hugging Face's Qwen3ForCausalLM): token embedding; per layer: RMSNorm,
 * grouped-query attention with per-head RMSNorm on q and k, rotary position embedding (the
 * rotate-half convention, inv_freq = theta^(-2i/D)), causal softmax attention scaled by 1/sqrt(D),
 * output projection, residual; RMSNorm, SwiGLU MLP down(silu(gate(h)) * up(h)), residual; final
 * RMSNorm; lm_head (or the embedding when tied). RMSNorm: x / sqrt(mean(x^2) + eps) * w.
 * No biases. GEMMs go through OpenBLAS (cblas_sgemm).
 * Variants (ModelConfig.arch, config.json's model_type):
 *   qwen3  as above (q_norm and k_norm, no biases)
 *   qwen2  no q_norm / k_norm; biases on q_proj, k_proj and v_proj (Qwen2ForCausalLM)
 *   llama  no q_norm / k_norm, no biases (LlamaForCausalLM with attention_bias and mlp_bias false)
 *
 * Parameters live in one float32 buffer; a table names each tensor inside it with its Hugging
 * Face name and shape (row-major, as safetensors stores it), so gradients and optimizer state
 * mirror the same layout and checkpoints are HF-layout safetensors:
 *   model.embed_tokens.weight                      (V, H)
 *   model.layers.{l}.input_layernorm.weight        (H)
 *   model.layers.{l}.self_attn.q_proj.weight       (Q*D, H)
 *   model.layers.{l}.self_attn.k_proj.weight       (K*D, H)
 *   model.layers.{l}.self_attn.v_proj.weight       (K*D, H)
 *   model.layers.{l}.self_attn.q_proj.bias         (Q*D)    qwen2 only
 *   model.layers.{l}.self_attn.k_proj.bias         (K*D)    qwen2 only
 *   model.layers.{l}.self_attn.v_proj.bias         (K*D)    qwen2 only
 *   model.layers.{l}.self_attn.o_proj.weight       (H, Q*D)
 *   model.layers.{l}.self_attn.q_norm.weight       (D)      qwen3 only
 *   model.layers.{l}.self_attn.k_norm.weight       (D)      qwen3 only
 *   model.layers.{l}.post_attention_layernorm.weight (H)
 *   model.layers.{l}.mlp.gate_proj.weight          (I, H)
 *   model.layers.{l}.mlp.up_proj.weight            (I, H)
 *   model.layers.{l}.mlp.down_proj.weight          (H, I)
 *   model.norm.weight                              (H)
 *   lm_head.weight                                 (V, H)   only when not tied
 * V vocab, H hidden, I intermediate, Q attention heads, K key-value heads, D head_dim.
 *
 * Determinism: for a given thread count every function gives the same bits on every call.
 *
 * Functions returning int return 0 or a negative SS_E* code and fill err (formats/ss_error.h). */
#ifndef SS_TRAIN_MODEL_H
#define SS_TRAIN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "formats/safetensors.h"
#include "formats/ss_error.h"

/* The architecture variant (config.json's model_type). 0 is qwen3, so a zero-initialized config
 * is a Qwen3 one. */
typedef enum ModelArch {
    MODEL_ARCH_QWEN3 = 0,
    MODEL_ARCH_QWEN2 = 1,
    MODEL_ARCH_LLAMA = 2
} ModelArch;

/* "qwen3", "qwen2" or "llama". */
const char *model_arch_name(ModelArch arch);
/* Whether the variant has per-head RMSNorm on q and k (qwen3), and q/k/v_proj biases (qwen2). */
static inline bool model_arch_qk_norm(ModelArch arch) { return arch == MODEL_ARCH_QWEN3; }
static inline bool model_arch_qkv_bias(ModelArch arch) { return arch == MODEL_ARCH_QWEN2; }

/* The fields of a Hugging Face config.json that the model uses (Qwen3 names). */
typedef struct ModelConfig {
    ModelArch arch;              /* qwen3 (0), qwen2 or llama */
    int vocab_size;              /* V */
    int hidden_size;             /* H */
    int intermediate_size;       /* I */
    int num_hidden_layers;       /* L */
    int num_attention_heads;     /* Q */
    int num_key_value_heads;     /* K; Q % K == 0 */
    int head_dim;                /* D, even */
    int max_position_embeddings; /* longest sequence (prompt + response) */
    double rms_norm_eps;         /* 1e-6 */
    double rope_theta;           /* 1e6 as Qwen3 */
    double initializer_range;    /* std of the random init, 0.02 */
    bool tie_word_embeddings;
} ModelConfig;

/* Checks sizes (positive, Q % K == 0, D even, no overflow). SS_EUSAGE when invalid. */
int model_config_validate(const ModelConfig *cfg, SsError *err);

/* Reads config.json: an HF config of model_type qwen3, qwen2 or llama (head_dim defaults to H/Q,
 * rope_theta to 10000, rms_norm_eps to 1e-6, tie_word_embeddings to false). SS_EINPUT when
 * unreadable, a field is missing or invalid, or the config asks for what the model does not
 * implement: rope_scaling (e.g. llama3's), a hidden_act other than silu, attention_bias or
 * mlp_bias true on llama / qwen3 (o_proj and MLP biases), sliding-window attention on qwen2. */
int model_config_read(const char *path, ModelConfig *cfg, SsError *err);

/* Writes an HF config.json (architectures ["Qwen3ForCausalLM"], model_type "qwen3", or the
 * Qwen2ForCausalLM / LlamaForCausalLM equivalents by cfg->arch; torch_dtype as given, e.g.
 * "bfloat16") atomically. */
int model_config_write(const char *path, const ModelConfig *cfg, const char *torch_dtype,
                       SsError *err);

/* One named tensor in the parameter buffer. */
typedef struct ModelTensor {
    char name[96];
    int ndim;           /* 1 or 2 */
    uint64_t shape[2];
    size_t offset;      /* in floats from the start of the buffer */
    size_t numel;
} ModelTensor;

typedef struct Model {
    ModelConfig cfg;
    ModelTensor *tensors; /* in the order listed above */
    size_t ntensors;
    size_t nparams;       /* floats in the buffer */
    void *impl_;          /* per-layer offsets and scratch sizes; private */
} Model;

int model_create(const ModelConfig *cfg, Model **out, SsError *err);
void model_free(Model *m);

/* Index of the tensor called name, or -1. */
long model_find(const Model *m, const char *name);

/* Random init as transformers does: linear and embedding weights N(0, initializer_range^2),
 * norm weights 1, biases 0. A pure function of seed (counter-based, train/rng.h): element j of
 * tensor i
 * (its index in m->tensors) is initializer_range * rng_normal(rng_stream(seed, 0x1a17, i, 0), j). */
void model_init_params(const Model *m, float *params, uint64_t seed);

/* Loads params from a safetensors file or HF folder (single or sharded): every model tensor
 * must be present with the right shape, in F32, BF16 or F16 (converted exactly); extra tensors
 * are an error naming them. */
int model_load_params(const Model *m, const char *path, float *params, SsError *err);

/* Writes params as safetensors with the model's tensor names, in dt = DT_F32, DT_BF16 or DT_F16
 * (round to nearest even, formats/dtype_encode.h), atomically. meta may be NULL. SS_EUSAGE for
 * another dtype. */
int model_save_params(const Model *m, const float *params, DType dt, const char *path,
                      const StMeta *meta, size_t nmeta, SsError *err);

/* ---- training forward and backward over a batch of B sequences of T tokens ---- */

typedef struct ModelActs ModelActs; /* activations kept for the backward pass */

/* Room for batches up to B x T (T <= max_position_embeddings); model_forward may then be called
 * with any B' <= B, T' <= T. */
int model_acts_create(const Model *m, int B, int T, ModelActs **out, SsError *err);
void model_acts_free(ModelActs *a);

/* tokens (B, T): the input ids (an id outside [0, V) embeds as zeros); targets (B, T): at
 * position t the id whose log-probability is wanted (normally tokens[t+1]), or -1 (or any id
 * outside [0, V)) where none is. Causal attention within each sequence,
 * positions 0..T-1 (so padding at the end of a sequence changes nothing before it).
 * Writes logp (B, T): log softmax(logits[b,t])[targets[b,t]], 0 where targets is -1; and, when
 * entropy is not NULL, entropy (B, T) of softmax(logits[b,t]) in nats (0 where targets is -1).
 * Keeps in acts what model_backward needs.
 * Only positions up to each sequence's last target are computed (nothing reads the others), and
 * prompt sharing: consecutive sequences that start with the same ids (at least 4; a GRPO group's
 * samples of one prompt) have those positions computed once, as causal attention makes them
 * identical in every sequence; the results equal the unshared computation up to float32 rounding
 * (other GEMM shapes). */
void model_forward(const Model *m, const float *params, const int32_t *tokens,
                   const int32_t *targets, int B, int T, ModelActs *acts, float *logp,
                   float *entropy);

/* Logits of the last model_forward, (B, T, V), valid at the positions model_forward computes:
 * in each sequence, positions 0 up to its last one with a target; the rows after it are zero.
 * Unpacked from the forward's rows on the first call after a forward, into a buffer allocated
 * on the first call (freed with acts); NULL when out of memory. */
const float *model_acts_logits(ModelActs *acts);

/* Given dlogp (B, T) = dLoss/dlogp for the last forward (0 where targets was -1), adds
 * dLoss/dparams to grads (nparams floats; the caller zeroes it between steps). */
void model_backward(const Model *m, const float *params, ModelActs *acts, const float *dlogp,
                    float *grads);

/* ---- sampling with a KV cache ---- */

typedef struct ModelSampler ModelSampler;

/* Room for n sequences of up to max_len tokens (prompt + response), max_len <=
 * max_position_embeddings. Its GEMMs run in blocks of 64 rows (so that a row's rounding does not
 * depend on the batch), so sampling fewer than 64 sequences costs about as much as 64. */
int model_sampler_create(const Model *m, int n, int max_len, ModelSampler **out, SsError *err);
void model_sampler_free(ModelSampler *s);

/* Samples a response for each of n prompts (prompt i: prompt_len[i] ids at prompts[i]):
 * up to max_new tokens, stopping after eos (which is kept in the response). temperature 0 is
 * greedy; otherwise token t of sequence i is drawn from softmax(logits / temperature) with
 * rng_uniform(rng_stream(seed, stream_ids[i], 0, 0), t), so a sequence's response does not depend
 * on which other sequences share the batch (bit for bit). Writes out (n, max_new) ids and out_len[i]
 * (<= max_new; out beyond out_len[i] is -1). n <= the sampler's n. A prompt with prompt_len[i] < 1
 * or prompt_len[i] + max_new > max_len gets no response (out_len[i] = 0). */
void model_sample(const Model *m, const float *params, ModelSampler *s,
                  const int32_t *const *prompts, const int *prompt_len, int n, int max_new,
                  float temperature, int32_t eos, uint64_t seed, const uint64_t *stream_ids,
                  int32_t *out, int *out_len);

#endif
