/* LoRA for the trainer's model (train/model.h), with Hugging Face PEFT's conventions.
 *
 * Targets: every linear projection of every layer, q_proj, k_proj, v_proj, o_proj, gate_proj,
 * up_proj and down_proj (PEFT's target_modules "all-linear" on Qwen3); never the embedding, the
 * norms or lm_head (tied or not). A target W0 (out, in) gets a pair of factors
 *   A (r, in)    lora_A, initialized as PEFT's default (init_lora_weights=True):
 *                nn.init.kaiming_uniform_(A, a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in));
 *                element j of target t's A is (2u - 1) / sqrt(in) with
 *                u = rng_uniform(rng_stream(seed, LORA_RNG_PURPOSE, t, 0), j)
 *   B (out, r)   lora_B, zero
 * and the layer computes y = x W0^T + s (x A^T) B^T with s = alpha / r: the same as x W^T for the
 * merged W = W0 + s B A, which is what this module computes (lora_merge) and what the model then
 * runs; the gradients of the factors follow from the model's dL/dW (lora_backward):
 *   dB = s dW A^T  (out, r)        dA = s B^T dW  (r, in)
 *
 * Factors live in one float32 buffer (so an optimizer is one loop over it and its state mirrors
 * it): for each target in the model's tensor order, A (r x in, row-major), then B (out x r).
 *
 * On disk the factors are a PEFT adapter (what PeftModel.from_pretrained and sparsity-compare
 * read): adapter_model.safetensors with base_model.model.<module>.lora_A.weight (r, in) and
 * .lora_B.weight (out, r) in F32, <module> being the target's name without ".weight"; and
 * adapter_config.json with peft_type "LORA", r, lora_alpha, target_modules, use_rslora false.
 *
 * Determinism: the GEMMs go through OpenBLAS; for a given thread count every call gives the same
 * bits. Functions returning int return 0 or a negative SS_E* code and fill err. */
#ifndef SS_TRAIN_LORA_H
#define SS_TRAIN_LORA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/ss_error.h"
#include "train/model.h"

#define LORA_RNG_PURPOSE 0x10a4u /* the rng_stream purpose id of lora_A's initialization */

/* One adapted matrix. */
typedef struct LoraTarget {
    size_t tensor;  /* its index in Model.tensors */
    size_t out, in; /* W0's shape (out, in) */
    size_t a_off;   /* A (r, in): offset in floats in the factor buffer */
    size_t b_off;   /* B (out, r) */
} LoraTarget;

typedef struct Lora {
    int r;
    double alpha;
    float scale;         /* (float)(alpha / r) */
    size_t ntargets;
    LoraTarget *targets; /* in the model's tensor order */
    size_t nfactors;     /* floats in the factor buffer: the trainable parameters */
} Lora;

/* True when the model tensor called name is a LoRA target (a layer's *_proj.weight). */
bool lora_is_target(const char *name);

/* The targets of model m with rank r and scale alpha / r. SS_EUSAGE when r < 1, alpha is not
 * positive and finite, or the model has no target; SS_EOUTPUT when out of memory. */
int lora_create(const Model *m, int r, double alpha, Lora **out, SsError *err);
void lora_free(Lora *l);

/* PEFT's initialization (above) into factors (l->nfactors floats): A random, B zero. */
void lora_init(const Lora *l, float *factors, uint64_t seed);

/* params = base everywhere, then W = W0 + s B A on every target (one cblas_sgemm each:
 * C = s B A + 1 C). With B = 0 (after lora_init) params equals base. base and params are
 * m->nparams floats and must not overlap. */
void lora_merge(const Model *m, const Lora *l, const float *base, const float *factors,
                float *params);

/* Given grads = dL/dW (m->nparams floats, as model_backward leaves them for the merged weights),
 * writes the factors' gradients into dfactors (l->nfactors floats, overwritten):
 * dA = s B^T dW and dB = s dW A^T. */
void lora_backward(const Model *m, const Lora *l, const float *factors, const float *grads,
                   float *dfactors);

/* The PEFT name of target t's factor: "base_model.model.<module>.lora_A.weight" (b false) or
 * ".lora_B.weight" (b true), into buf of size cap (>= 160). */
void lora_factor_name(const Model *m, const LoraTarget *t, bool b, char *buf, size_t cap);

/* Writes the factors as PEFT adapter weights (F32) to the safetensors file path (atomically). */
int lora_save_factors(const Model *m, const Lora *l, const float *factors, const char *path,
                      SsError *err);

/* Reads factors saved by lora_save_factors (every pair present, F32, with the right shapes;
 * anything else is SS_EINPUT naming the file and tensor). */
int lora_load_factors(const Model *m, const Lora *l, const char *path, float *factors,
                      SsError *err);

/* Writes a PEFT adapter folder dir (created when missing; its parent must exist):
 * dir/adapter_model.safetensors, then dir/adapter_config.json (so a folder with a config is
 * complete). base_name goes to "base_model_name_or_path". */
int lora_save_adapter(const Model *m, const Lora *l, const float *factors, const char *dir,
                      const char *base_name, SsError *err);

#endif
