/* The optimizers under study, over one flat float32 parameter buffer (gradients and state mirror
 * its layout): SGD without momentum (no state at all), SGD with momentum, and AdamW; constant or
 * linear-warm-up learning-rate schedules; global gradient-norm clipping; skipping of steps whose
 * gradient norm is not finite.
 *
 * Update rules, exactly as torch 1.13's single-tensor (foreach=False) torch.optim.SGD and
 * torch.optim.AdamW compute them on CPU, bit for bit (tests/train_grpo checks 20 steps on 1e5
 * elements). Scalars (lr, 1 - b1, ...) are computed in double as python does, then rounded to
 * float once; every array operation is float32. fma(a, b, c) is one rounding of a * b + c: torch's
 * x86-64 AVX2 and AVX512 kernels (measured: vector loop and scalar tail alike) fuse
 * tensor.add_(t, alpha=a) and tensor.addcmul_, so these do too, with explicit fmaf (the library
 * itself is built with -ffp-contract=off). torch's baseline kernels (ATEN_CPU_CAPABILITY=default)
 * do not fuse and so differ in the last bits.
 *   sgd       d = g, or fma(p, wd, g) when weight_decay != 0 (coupled L2, as torch.optim.SGD)
 *             p = fma(d, (float)-lr, p)
 *   momentum  b = d on the first step, b = b * (float)m + d after; p = fma(b, (float)-lr, p)
 *   adamw     t = update number (1-based); bc1 = 1 - b1^t, bc2 = 1 - b2^t (double, pow)
 *             p = p * (float)(1 - lr * wd)
 *             m = fma(g, (float)(1 - b1), m * (float)b1)
 *             v = fma((float)(1 - b2) * g, g, v * (float)b2)
 *             denom = sqrt(v) / (float)sqrt(bc2) + (float)eps
 *             p = p + ((float)(-lr / bc1) * m) / denom
 * Gradient clipping as torch.nn.utils.clip_grad_norm_(max_norm): with the total L2 norm N
 * rounded to float, clip_coef = max_norm / (N + 1e-6), evaluated in float as torch does
 * (reciprocal(N + 1e-6f) * (float)max_norm); when clip_coef < 1 every gradient is multiplied by
 * it (torch multiplies by min(clip_coef, 1), the same bits). N here is summed in double over fixed
 * blocks (more accurate than torch's float32 sum, which can differ by a few float ulps).
 * The learning rate of update k (0-based) is lr * ((k + 1) / warmup_steps) while k + 1 <
 * warmup_steps, then lr: the bits of LambdaLR(opt, lambda k: min(1, (k + 1) / warmup_steps)).
 * Skipped steps (non-finite norm) do not advance the schedule or t.
 * One thread; the per-element loops vectorize (target_clones) and give the same bits at any width.
 *
 * Functions returning int return 0 or a negative SS_E* code and fill err (formats/ss_error.h). */
#ifndef SS_TRAIN_OPTIM_H
#define SS_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "formats/ss_error.h"

typedef enum OptKind { OPT_SGD, OPT_ADAMW } OptKind;

typedef struct OptConfig {
    OptKind kind;
    double lr;
    double momentum;      /* sgd only, in [0, 1); 0: no momentum and no state */
    double beta1, beta2;  /* adamw: 0.9, 0.999 */
    double eps;           /* adamw: 1e-8 */
    double weight_decay;  /* adamw: 0.01 (decoupled); sgd: 0 (coupled L2 when set, as torch) */
    long warmup_steps;    /* lr rises linearly over this many steps (0: constant) */
    double max_grad_norm; /* clip the global L2 norm to this (0: no clipping) */
} OptConfig;

/* Defaults for kind (the values in the comments above, lr 1e-1 for sgd, 1e-6 for adamw). */
void opt_config_default(OptKind kind, OptConfig *cfg);

/* "sgd" or "adamw" -> 0 and *out, or -1. */
int opt_kind_parse(const char *name, OptKind *out);
const char *opt_kind_name(OptKind kind);

typedef struct Optimizer Optimizer;

/* SS_EUSAGE for an invalid config (negative or non-finite lr, momentum or betas outside [0, 1),
 * eps <= 0 for adamw, ...), SS_EOUTPUT when out of memory. State starts at zero. */
int opt_create(const OptConfig *cfg, size_t n, Optimizer **out, SsError *err);
void opt_free(Optimizer *o);

/* Bytes of optimizer state: 0 for plain SGD, 4n with momentum, 8n for AdamW. */
size_t opt_state_bytes(const Optimizer *o);

/* Steps taken (updates applied). */
long opt_steps(const Optimizer *o);

/* The learning rate of update number step (0-based) under the schedule. */
double opt_lr_at(const OptConfig *cfg, long step);

/* L2 norm of g (n floats), summed in double over fixed blocks; may be Inf or NaN. */
double opt_grad_norm(const float *g, size_t n);

/* One update of params (n floats) from grads: computes the gradient norm (into *grad_norm, may be
 * NULL), and when it is not finite returns 1 and changes nothing (params, grads, state and step
 * count keep their bits); otherwise clips grads in place (see above) when max_grad_norm > 0,
 * applies the update and returns 0.
 * mask (n bytes, may be NULL): only elements with mask != 0 take part, as if they were the only
 * parameters torch saw: the norm, the non-finite check and the clipping cover them alone, and the
 * others keep the exact bits of their params, grads and state. *lr_used gets the learning rate
 * applied (may be NULL; untouched on a skipped step). */
int opt_step(Optimizer *o, float *params, float *grads, const uint8_t *mask, double *grad_norm,
             double *lr_used);

/* The state (step count, moments) in a stream, for --resume: opt_state_write then
 * opt_state_read into an optimizer created with the same config and n restores it exactly.
 * Format (host byte order): "SSOPTST1", u32 kind, u32 number of state arrays, u64 n, i64 steps,
 * then each array's n floats (momentum buffer or exp_avg, then exp_avg_sq).
 * Write errors: SS_EOUTPUT. Read: SS_EINPUT for a bad or truncated stream, SS_EINCOMPAT for state
 * of another kind or size; after a failed read the state is unspecified (free the optimizer). */
int opt_state_write(const Optimizer *o, FILE *f, SsError *err);
int opt_state_read(Optimizer *o, FILE *f, SsError *err);

#endif
