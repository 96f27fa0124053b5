/* A PEFT LoRA adapter folder as Hugging Face PEFT saves it (save_pretrained): adapter_config.json
 * ("r", "lora_alpha", optionally "use_rslora") and adapter_model.safetensors with one pair per
 * adapted matrix,
 *   base_model.model.<module>.lora_A.weight   (r, in)
 *   base_model.model.<module>.lora_B.weight   (out, r)
 * (".lora_A.default.weight" is accepted too), which stands for the update of <module>.weight:
 *   dW = scale * B A,  scale = lora_alpha / r   (use_rslora: lora_alpha / sqrt(r)).
 *
 * Unsupported, and refused with SS_EINPUT rather than misread: "use_dora", "fan_in_fan_out",
 * a non-empty "rank_pattern" or "alpha_pattern", a peft_type other than LORA, a lora_A without
 * its lora_B (or the reverse). Tensors that are not lora_A/lora_B (modules_to_save copies,
 * lora_embedding_A/B, DoRA magnitudes) are listed in `ignored` and not used. */
#ifndef SS_LORA_ADAPTER_H
#define SS_LORA_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "formats/safetensors.h"
#include "formats/ss_error.h"

typedef struct LoraPair {
    char *target;        /* the base tensor it updates, e.g. "model.layers.0.mlp.up_proj.weight" */
    const StTensor *a;   /* lora_A (r, in), any float dtype */
    const StTensor *b;   /* lora_B (out, r) */
} LoraPair;

typedef struct LoraAdapter {
    char *dir;           /* the folder as given */
    char *weights_path;  /* <dir>/adapter_model.safetensors */
    StCheckpoint *st;    /* its tensors (mapped) */
    uint64_t r;          /* "r" */
    double alpha;        /* "lora_alpha" */
    int use_rslora;      /* "use_rslora" (false when absent) */
    double scale;        /* alpha / r, or alpha / sqrt(r) with use_rslora */
    size_t npairs;
    LoraPair *pairs;     /* sorted by target (strcmp) */
    size_t nignored;
    const char **ignored; /* adapter tensors that are not part of a pair, sorted; point into st */
} LoraAdapter;

/* True when path is a folder holding adapter_config.json. */
int lora_is_adapter(const char *path);

/* Reads and checks the adapter in folder dir. Errors: SS_EINPUT for a missing or malformed
 * config or weights file, an unsupported option, or a pair whose shapes disagree with r (the
 * message names the file and tensor); SS_EOUTPUT when out of memory. */
int lora_adapter_open(const char *dir, LoraAdapter **out, SsError *err);
void lora_adapter_close(LoraAdapter *ad);

/* The pair updating base tensor target, or NULL. */
const LoraPair *lora_adapter_find(const LoraAdapter *ad, const char *target);

/* Checks a pair against its base matrix (m, n): B must be (m, r) and A (r, n). SS_EINCOMPAT
 * naming the adapter tensor otherwise. */
int lora_pair_check(const LoraAdapter *ad, const LoraPair *p, uint64_t m, uint64_t n,
                    SsError *err);

/* Row i of dW = scale * B A into row[0..n), in double (A decoded into a (r, n), B into b (m, r),
 * both row-major doubles: see lora_pair_decode). A NaN or infinity in A or B makes the rows it
 * touches non-finite, so callers see it there. */
void lora_delta_row(const double *a, const double *b, uint64_t r, size_t n, double scale, size_t i,
                    double *row);

/* Decodes the pair's A into *a (r, n) and B into *b (m, r), malloc'd doubles (the caller frees
 * them, also on failure; SS_EOUTPUT when out of memory). */
int lora_pair_decode(const LoraAdapter *ad, const LoraPair *p, double **a, double **b,
                     SsError *err);

#endif
