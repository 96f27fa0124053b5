/* The trainer's training forward and backward pass (train/model.h's decoder: Qwen3, Qwen2 and
 * Llama variants) composed from the trainer ops of kernels/train_ops.h and row-major GEMMs, on
 * one backend: the CPU twins with OpenBLAS (TM_CPU, what tests/kernels checks against
 * train/'s model_forward and model_backward) or the CUDA kernels with cuBLAS (TM_CUDA: float32
 * master weights, activations and gradients; GEMMs in float32, or with bf16 inputs and float32
 * accumulation, cublasGemmEx, TM_GEMM_BF16).
 *
 * kernels/ knows nothing of train/: the caller describes the parameter buffer's layout in a
 * TmLayout (train/ fills it from its Model: the offsets of train/model_internal.h's ModelImpl).
 * Parameters and gradients are one float buffer each in the backend's memory (tm_alloc): host
 * memory for TM_CPU, device memory for TM_CUDA. Tokens, targets, dlogp, logp and entropy are
 * host arrays for both.
 *
 * Differences from train/model.c: every row is computed in the backward pass (the trainer packs
 * the rows up to each sequence's last target; the others carry exactly zero gradient either
 * way), and GEMMs and tree reductions sum in another order: results agree to float rounding. */
#ifndef SS_KERNELS_TRAIN_MODEL_H
#define SS_KERNELS_TRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "formats/ss_error.h"

#define TM_ABSENT ((size_t)-1) /* an offset of a tensor the variant lacks */

/* Offsets in floats of one layer's tensors; q, k, v adjacent ((Q+2K)*D, H), gate and up
 * adjacent (2I, H), the q/k/v biases one vector ((Q+2K)*D). */
typedef struct TmLayer {
    size_t in_norm, wqkv, bqkv, wo, q_norm, k_norm, post_norm, wgu, wd;
} TmLayer;

typedef struct TmLayout {
    size_t V, H, inter, L, Q, K, D; /* vocab, hidden, intermediate (I), layers, heads, kv heads, head dim */
    size_t nparams;
    double eps, rope_theta;
    int qk_norm, qkv_bias;       /* qwen3: q_norm/k_norm; qwen2: q/k/v biases */
    size_t embed, norm, lm_head; /* lm_head == embed when tied */
    const TmLayer *layer;        /* L entries; copied by tm_create */
} TmLayout;

typedef enum TmBackend { TM_CPU = 0, TM_CUDA = 1 } TmBackend;
typedef enum TmGemm { TM_GEMM_F32 = 0, TM_GEMM_BF16 = 1 } TmGemm; /* BF16: TM_CUDA only */

typedef struct TrainModel TrainModel;

/* Room for batches up to B x T. SS_EUSAGE for bad sizes or TM_CUDA in a build without CUDA or
 * without a device, SS_EOUTPUT when out of (device) memory. */
int tm_create(const TmLayout *lay, TmBackend be, TmGemm gemm, int B, int T, TrainModel **out,
              SsError *err);
void tm_free(TrainModel *tm);

/* n floats of backend memory, zeroed (NULL with err filled); tm_release frees them. */
float *tm_alloc(TrainModel *tm, size_t n, SsError *err);
void tm_release(TrainModel *tm, float *p);
/* Host <-> backend copies of n floats; tm_zero zeroes n floats of backend memory. */
int tm_upload(TrainModel *tm, float *dst, const float *src, size_t n, SsError *err);
int tm_download(TrainModel *tm, float *dst, const float *src, size_t n, SsError *err);
int tm_zero(TrainModel *tm, float *p, size_t n, SsError *err);

/* model_forward's contract (train/model.h): tokens and targets (B, T) host ids, writes logp and
 * (when not NULL) entropy (B, T) on the host; keeps the activations for tm_backward. */
int tm_forward(TrainModel *tm, const float *params, const int32_t *tokens,
               const int32_t *targets, int B, int T, float *logp, float *entropy, SsError *err);

/* model_backward's: dlogp (B, T) host, 0 where targets was -1; adds dLoss/dparams to grads. */
int tm_backward(TrainModel *tm, const float *params, const float *dlogp, float *grads,
                SsError *err);

#endif
