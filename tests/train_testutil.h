/* What the trainer's C unit tests share (tests/train_model, tests/train_lora): a checked call
 * that stops the test with the library's message, a tiny model config, and random parameters. */
#ifndef SS_TESTS_TRAIN_TESTUTIL_H
#define SS_TESTS_TRAIN_TESTUTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ss_error.h"
#include "train/model.h"
#include "train/rng.h"

/* call must return 0; it may fill the SsError err_. Otherwise prints and exits 1. */
#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        SsError err_ = {0};                                                                        \
        int rc_ = (call);                                                                          \
        if (rc_ != 0) {                                                                            \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, rc_,         \
                    err_.msg);                                                                     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* V 13, H 16, I 24, 2 layers, Q heads of 8, K key-value heads, 32 positions. */
static inline ModelConfig tiny_config(bool tied, int Q, int K)
{
    ModelConfig c = {.vocab_size = 13, .hidden_size = 16, .intermediate_size = 24,
                     .num_hidden_layers = 2, .num_attention_heads = Q, .num_key_value_heads = K,
                     .head_dim = 8, .max_position_embeddings = 32, .rms_norm_eps = 1e-6,
                     .rope_theta = 10000.0, .initializer_range = 0.3,
                     .tie_word_embeddings = tied};
    return c;
}

/* Random params: matrices N(0, range^2), norm weights 1 + N(0, 0.2^2) (not all ones, so their
 * gradients and the terms they scale are exercised), biases N(0, 0.2^2). */
static inline float *random_params(const Model *m, uint64_t seed)
{
    float *p = malloc(m->nparams * sizeof *p);
    model_init_params(m, p, seed);
    uint64_t key = rng_stream(seed, 99, 0, 0);
    for (size_t i = 0; i < m->ntensors; i++)
        if (m->tensors[i].ndim == 1)
            for (size_t j = 0; j < m->tensors[i].numel; j++)
                p[m->tensors[i].offset + j] =
                    (float)((strstr(m->tensors[i].name, ".bias") ? 0.0 : 1.0) +
                            0.2 * rng_normal(key, m->tensors[i].offset + j));
    return p;
}

#endif
