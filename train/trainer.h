/* grpo-train's training loops: supervised warm-up (sft) and GRPO (grpo), their options, the run
 * folder they write and the metrics they log. docs/grpo-train.md describes the command and every
 * metric; this header is the library the thin main (grpo_train_main.c) calls.
 *
 * An sft output is a Hugging Face model folder: OUT/config.json and OUT/model.safetensors (bf16,
 * rounded to nearest even), plus OUT/sft.json (options and final eval accuracy) and
 * OUT/metrics.jsonl.
 *
 * A grpo run folder (docs/sdelta-format.md's run layout, read by sparsity-scan RUN@STEP):
 *   RUN/base.safetensors            the bf16 weights training starts from
 *   RUN/config.json                 the model config
 *   RUN/snapshots/step-NNNNNN.sdelta  the bf16 export every --snapshot-every steps
 *   RUN/master/base.safetensors, RUN/master/snapshots/...   with --save-master: the float32
 *                                   master weights, as a run folder of its own
 *   RUN/run.json                    the full configuration, seed and version
 *   RUN/metrics.jsonl               one JSON object per step (and per evaluation)
 *   RUN/state/                      what --resume needs: the float32 master weights and the
 *                                   optimizer state at the last snapshot (with LoRA, the factors
 *                                   too: lora-NNNNNN.safetensors)
 *   RUN/adapters/step-NNNNNN/       with --lora-rank: the factors as a PEFT adapter folder
 *                                   (adapter_model.safetensors, adapter_config.json; lora.h)
 *
 * With --lora-rank the snapshots still hold the whole model: the merged weights W0 + s B A
 * rounded to bf16 (a merged LoRA checkpoint), so sparsity-scan reads LoRA runs unchanged. With
 * --mask only the elements whose mask bit is 1 are updated (opt_step's mask); every other
 * element keeps its base bits exactly.
 *
 * Every function returning int returns 0 or a negative SS_E* code and fills err. */
#ifndef SS_TRAIN_TRAINER_H
#define SS_TRAIN_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "formats/ss_error.h"
#include "train/grpo_loss.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/tasks.h"
#include "train/train_device.h"

typedef struct TrainOptions {
    /* common */
    const char *out;         /* sft: the model folder; grpo: the run folder */
    char task_text[256];     /* the --task spec as given */
    TaskSpec task;
    uint64_t seed;
    int threads;             /* OpenBLAS threads; results are bit-identical for a given count */
    bool quiet;              /* no progress line on stderr */
    long steps;
    long eval_every;         /* evaluate every this many steps (0: only at the start and end) */
    int eval_size;           /* eval-split problems per evaluation (greedy decoding) */
    OptConfig opt;
    TrainDeviceKind device;  /* --device cpu (default) | cuda */
    TmGemm gemm;             /* --gemm: TM_GEMM_F32 (the only one on the CPU) or TM_GEMM_BF16
                              * (bf16 GEMM inputs, float32 accumulation; cuda only) */

    /* sft */
    ModelConfig model;       /* the architecture (from --preset / --config and overrides) */
    int batch;               /* sequences per sft step */
    double target_acc;       /* stop sft once eval accuracy reaches this (0: run all steps) */

    /* grpo */
    const char *init;        /* the base model folder (config.json + safetensors) */
    int prompts;             /* P prompts per step */
    int group;               /* G samples per prompt */
    int max_new;             /* response length cap, tokens */
    float temperature;
    GrpoAdvMode adv_mode;
    float adv_eps;
    GrpoLossConfig loss;
    int mini_batches;        /* updates per batch, each on 1/mini_batches of the sequences */
    int epochs;              /* passes over the batch */
    long snapshot_every;
    bool save_master;
    bool resume;
    int lora_rank;           /* > 0: train LoRA factors of this rank instead of the weights */
    double lora_alpha;       /* LoRA scale alpha / rank (0: alpha = rank, scale 1) */
    const char *mask_path;   /* a sparsity-scan --h5 --masks file: update only the elements its
                              * masks mark (full-parameter training only) */
} TrainOptions;

/* Defaults for every field (see docs/grpo-train.md). */
void train_options_default(TrainOptions *o);

/* Model presets: "tiny" (about 0.8M parameters) and "small" (about 3.2M). SS_EUSAGE when
 * unknown. The vocabulary is the tasks' tokenizer's. */
int train_model_preset(const char *name, ModelConfig *cfg, SsError *err);

int train_sft(const TrainOptions *o, SsError *err);
int train_grpo(const TrainOptions *o, SsError *err);

#endif
