/* grpo-train's training forward and backward pass on the chosen device (--device cpu|cuda):
 * train/model.h's CPU model, or kernels/train_model.h's composition of the trainer ops on
 * float32 weights and gradients in the backend's memory (--device cuda; --gemm f32|bf16 picks
 * its TmGemm), for grpo-train's loops (train/trainer.h).
 *
 * The host weights stay the master copy: the optimizer (train/optim.h), LoRA's merging and
 * sampling (model_sample) work on them. train_pass_load makes them the pass's weights: on the
 * CPU it remembers the pointer, on the device it copies them up, so the caller loads again after
 * every change (each optimizer step). train_pass_backward brings the gradient back to the host.
 *
 * With --device cuda the backend is TM_CUDA, unless the environment variable
 * SS_TRAIN_TM_BACKEND=cpu asks for TM_CPU: the same composition with OpenBLAS in host memory, so
 * that tests can check the device path's wiring on machines without a GPU (docs/testing.md).
 *
 * Functions returning int return 0 or a negative SS_E* code and fill err (formats/ss_error.h). */
#ifndef SS_TRAIN_DEVICE_H
#define SS_TRAIN_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "formats/ss_error.h"
#include "kernels/train_model.h"
#include "train/model.h"

/* Where the training forward and backward run (--device): train/model.h's CPU model, or
 * kernels/train_model.h on a CUDA device. Sampling, the optimizer and LoRA's merging stay on the
 * CPU either way. */
typedef enum TrainDeviceKind { TRAIN_DEVICE_CPU = 0, TRAIN_DEVICE_CUDA = 1 } TrainDeviceKind;

/* The layout of m's parameter buffer for kernels/train_model.h, from train/model_internal.h's
 * ModelImpl offsets; layers (m->cfg.num_hidden_layers entries) receives the per-layer offsets
 * and the returned TmLayout points at it. */
TmLayout train_device_layout(const Model *m, TmLayer *layers);

/* Which weights a forward pass uses: the policy being trained, or the frozen reference. */
typedef enum TrainWeights { TRAIN_W_POLICY = 0, TRAIN_W_REF = 1 } TrainWeights;

typedef struct TrainPass TrainPass;

/* A pass for batches up to B x T sequences of m (which must outlive it) on device dev with GEMMs
 * gemm (TM_GEMM_BF16: --device cuda only). with_ref: room for reference weights too (device
 * memory for a second copy). SS_EUSAGE, naming the reason, when the device cannot be used
 * (a build without CUDA, no GPU, bf16 GEMMs on the CPU, a bad SS_TRAIN_TM_BACKEND);
 * SS_EOUTPUT when out of (device) memory. */
int train_pass_create(const Model *m, TrainDeviceKind dev, TmGemm gemm, int B, int T,
                      bool with_ref, TrainPass **out, SsError *err);
void train_pass_free(TrainPass *p);

/* What runs the pass, for logs: "cpu", "cuda (bf16 GEMMs)", "cuda (f32 GEMMs) on the CPU
 * backend (SS_TRAIN_TM_BACKEND=cpu)". */
const char *train_pass_describe(const TrainPass *p);

/* Makes w (m->nparams host floats) the pass's policy or reference weights. CPU: w is read at each
 * forward and backward, so it must stay valid; device: copied now (load again after a change). */
int train_pass_load(TrainPass *p, TrainWeights which, const float *w, SsError *err);

/* model_forward's contract (train/model.h) with the loaded weights which: tokens and targets
 * (B, T) host ids, writes logp and (when not NULL) entropy (B, T) on the host. */
int train_pass_forward(TrainPass *p, TrainWeights which, const int32_t *tokens,
                       const int32_t *targets, int B, int T, float *logp, float *entropy,
                       SsError *err);

/* The gradient of the loss through the last forward (given dlogp (B, T) host, 0 where targets was
 * -1) with respect to that forward's weights, written to grads (m->nparams host floats; its
 * previous contents are overwritten). */
int train_pass_backward(TrainPass *p, const float *dlogp, float *grads, SsError *err);

#endif
