/* What the sft and grpo loops share: batches of token sequences, greedy evaluation on the eval
 * split, the metrics log and clocks. Private to train/. */
#ifndef SS_TRAIN_INTERNAL_H
#define SS_TRAIN_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "formats/ss_error.h"
#include "train/bpe_tokenizer.h"
#include "train/lora.h"
#include "train/model.h"
#include "train/tasks.h"
#include "train/trainer.h"

/* ---- batches (train_batch.c) ---- */

/* n sequences padded to T positions: sequence i is seq_len[i] ids; position t scores the token
 * at t+1 (targets), and mask marks the scored tokens that the loss uses (the response, or the
 * answer and EOS for sft). */
typedef struct TrainBatch {
    int n, T, cap_n, cap_T;
    int32_t *tokens;  /* (n, T), PAD beyond seq_len */
    int32_t *targets; /* (n, T), -1 where nothing is scored */
    uint8_t *mask;    /* (n, T) */
    int *seq_len;     /* (n) */
    int *prompt_len;  /* (n), BOS included */
} TrainBatch;

int train_batch_create(TrainBatch *b, int cap_n, int cap_T, SsError *err);
void train_batch_free(TrainBatch *b);

/* Sets sequence i to prompt (plen ids, BOS first) followed by resp (rlen ids); scores the
 * response tokens. Returns -1 (nothing written) when it does not fit in cap_T. */
int train_batch_set(TrainBatch *b, int i, const int32_t *prompt, int plen, const int32_t *resp,
                    int rlen);

/* Fixes n and T = the longest sequence among the first n (at least 1), and rebuilds targets
 * and mask for that T. */
void train_batch_finish(TrainBatch *b, int n);

/* ---- tokenizers (train_text.c) ----
 * The tasks' character-level tokenizer (tasks.h), or a real model's BPE tokenizer: then problems
 * are text prompts with a \boxed{} answer (tasks.h's text form), a sequence is [BOS] prompt
 * response EOS with the tokenizer's own BOS (when it has one) and EOS. */
typedef struct TrainTok {
    BpeTokenizer *bpe; /* NULL: the character-level tokenizer */
    int32_t bos, eos;  /* bos -1: none (BPE only) */
} TrainTok;

/* The tokenizer of model folder dir: BPE when dir/tokenizer.json exists (its tokenizer_config.json
 * must name an EOS token), else (or when dir is NULL) the character-level one. */
int train_tok_open(TrainTok *t, const char *dir, SsError *err);
void train_tok_close(TrainTok *t);

/* The number of ids the tokenizer uses (a model's vocab_size must be at least this; exactly this
 * for the character-level tokenizer). */
int train_tok_vocab(const TrainTok *t);

/* Bounds on the prompt (without BOS) and answer (without EOS) lengths in tokens. */
void train_tok_max_lengths(const TrainTok *t, const TaskSpec *spec, int *prompt_max,
                           int *answer_max);

/* Encodes "[BOS] prompt" of a problem into ids (cap); returns the length or -1. */
int train_encode_prompt(const TrainTok *t, const TaskProblem *p, int32_t *ids, int cap);

/* Encodes "answer EOS" (the reference answer) into ids (cap); returns the length or -1. */
int train_encode_answer(const TrainTok *t, const TaskProblem *p, int32_t *ids, int cap);

/* The verifier's reward of a response (n ids; EOS, and what follows it, ignored). */
double train_reward(const TrainTok *t, const TaskProblem *p, const int32_t *resp, int n);

/* Copies tokenizer.json and tokenizer_config.json (those that exist) from folder from to to. */
int train_copy_tokenizer(const char *from, const char *to, SsError *err);

/* ---- evaluation (train_eval.c) ---- */

/* Accuracy of greedy decoding on eval problems 0..n-1 of spec (responses up to max_new tokens),
 * n sequences at most batch at a time through sampler s (created for batch sequences). */
double train_eval_accuracy(const Model *m, const float *params, ModelSampler *s, int batch,
                           const TrainTok *tok, const TaskSpec *spec, uint64_t seed, int n,
                           int max_new);

/* ---- logs and clocks (train_log.c) ---- */

double train_now(void);              /* monotonic seconds */
uint64_t train_peak_rss_bytes(void); /* VmHWM of this process, 0 when unknown */

/* Appends obj as one compact line to f and flushes; steals the reference. */
int train_log_line(FILE *f, json_t *obj, const char *path, SsError *err);

/* Writes obj (pretty) to path atomically; steals the reference. */
int train_write_json(const char *path, json_t *obj, SsError *err);

/* The options as a JSON object (everything that determines the weights, plus the rest). */
json_t *train_options_json(const TrainOptions *o, const char *mode);

/* path/name, malloc'd; NULL when out of memory. */
char *train_path(const char *dir, const char *name);

/* Creates dir and its missing parents (as mkdir -p) unless it exists as a folder. */
int train_mkdir(const char *dir, SsError *err);

/* ---- weights on disk (train_snapshot.c) ---- */

/* Rounds x (n floats) in place to the nearest bf16 values (ties to even). */
void train_round_bf16(float *x, size_t n);

/* Writes DIR/base.safetensors (bf16) and, with master, DIR/master/base.safetensors (float32). */
int train_write_run_base(const Model *m, const float *params, const char *dir, bool master,
                         SsError *err);

/* Writes the step's snapshots: DIR/snapshots/step-NNNNNN.sdelta of the bf16 export, and with
 * master the float32 one under DIR/master/. */
int train_write_snapshot(const Model *m, const float *params, const char *dir, long step,
                         bool master, int threads, SsError *err);

/* With LoRA: the step's PEFT adapter folder DIR/adapters/step-NNNNNN/ (lora_save_adapter);
 * base_name is recorded as the adapter's base_model_name_or_path. */
int train_write_adapter(const Model *m, const Lora *lora, const float *factors, const char *dir,
                        long step, const char *base_name, SsError *err);

/* Removes the temporary files an interrupted run left in DIR, DIR/snapshots, DIR/master,
 * DIR/master/snapshots and DIR/state (called by --resume). */
void train_remove_stale_tmp(const char *dir);

/* --resume state under DIR/state/: params-NNNNNN.safetensors (float32), optimizer-NNNNNN.bin
 * and, when lora is not NULL, the factors lora-NNNNNN.safetensors; committed by writing
 * state.json {"step": N} last (atomically); older files are then removed. train_state_load reads
 * the committed step's files (*step 0 and nothing loaded when there is no state.json). */
int train_state_save(const Model *m, const float *params, const Optimizer *opt,
                     const Lora *lora, const float *factors, const char *dir, long step,
                     SsError *err);
int train_state_load(const Model *m, float *params, Optimizer *opt, const Lora *lora,
                     float *factors, const char *dir, long *step, SsError *err);

/* ---- --mask (train_mask.c) ---- */

/* Reads the /masks of a sparsity-scan --h5 --masks file (docs/hdf5-schema.md) into mask
 * (m->nparams bytes, 1 where the element may change) and *count (the ones). Every model tensor
 * must have a mask with its shape, and every tensor of the report must be the model's: otherwise
 * SS_EINPUT naming the file and tensor. */
int train_mask_load(const Model *m, const char *path, uint8_t *mask, size_t *count,
                    SsError *err);

#endif
