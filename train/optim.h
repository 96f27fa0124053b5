/* The optimizers under study, over one flat float32 parameter buffer (gradients and state mirror
 * its layout): SGD without momentum (no state at all), SGD with momentum, and AdamW; constant or
 * linear-warm-up learning-rate schedules; global gradient-norm clipping; skipping of steps whose
 * gradient norm is not finite.
 *
 * Update rules (as torch.optim does them, weight decay decoupled for AdamW):
 *   sgd       p -= lr * g
 *   momentum  b = m * b + g (b = g on the first step); p -= lr * b
 *   adamw     p *= 1 - lr * wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *             p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * Arithmetic per element in float32 as torch's for-loop implementation; results do not depend on
 * the thread count. The gradient norm is summed in double over fixed blocks.
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
    double momentum;      /* sgd only; 0: no momentum and no state */
    double beta1, beta2;  /* adamw: 0.9, 0.999 */
    double eps;           /* adamw: 1e-8 */
    double weight_decay;  /* adamw: 0.01 */
    long warmup_steps;    /* lr rises linearly over this many steps (0: constant) */
    double max_grad_norm; /* clip the global L2 norm to this (0: no clipping) */
} OptConfig;

/* Defaults for kind (the values in the comments above, lr 1e-1 for sgd, 1e-6 for adamw). */
void opt_config_default(OptKind kind, OptConfig *cfg);

/* "sgd" or "adamw" -> 0 and *out, or -1. */
int opt_kind_parse(const char *name, OptKind *out);
const char *opt_kind_name(OptKind kind);

typedef struct Optimizer Optimizer;

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

/* One update of params (n floats) from grads: computes the gradient norm (into *grad_norm), and
 * when it is not finite returns 1 and changes nothing (no state either); otherwise scales grads
 * in place by max_grad_norm / norm when that is below 1, applies the update and returns 0.
 * mask (n bytes, may be NULL): only elements with mask 1 are updated (others keep their exact
 * bits, and their state is untouched). *lr_used gets the learning rate applied (may be NULL). */
int opt_step(Optimizer *o, float *params, float *grads, const uint8_t *mask, double *grad_norm,
             double *lr_used);

/* The state (step count, moments) in a stream, for --resume: opt_state_write then
 * opt_state_read into an optimizer created with the same config and n restores it exactly. */
int opt_state_write(const Optimizer *o, FILE *f, SsError *err);
int opt_state_read(Optimizer *o, FILE *f, SsError *err);

#endif
