/* Batches of token sequences for the sft and grpo loops: padding, next-token targets and the mask
 * of tokens the loss scores. */
#include <stdlib.h>
#include <string.h>

#include "train/train_internal.h"

int train_batch_create(TrainBatch *b, int cap_n, int cap_T, SsError *err)
{
    memset(b, 0, sizeof *b);
    size_t cells = (size_t)cap_n * (size_t)cap_T;
    b->tokens = malloc(cells * sizeof *b->tokens);
    b->targets = malloc(cells * sizeof *b->targets);
    b->mask = malloc(cells);
    b->seq_len = calloc((size_t)cap_n, sizeof *b->seq_len);
    b->prompt_len = calloc((size_t)cap_n, sizeof *b->prompt_len);
    if (!b->tokens || !b->targets || !b->mask || !b->seq_len || !b->prompt_len) {
        train_batch_free(b);
        return ss_err(err, SS_EOUTPUT, "out of memory for a batch of %d x %d tokens", cap_n,
                      cap_T);
    }
    b->cap_n = cap_n;
    b->cap_T = cap_T;
    return 0;
}

void train_batch_free(TrainBatch *b)
{
    free(b->tokens);
    free(b->targets);
    free(b->mask);
    free(b->seq_len);
    free(b->prompt_len);
    memset(b, 0, sizeof *b);
}

/* Sequences are stored with row stride cap_T while they are being set; train_batch_finish packs
 * them to stride T. */
int train_batch_set(TrainBatch *b, int i, const int32_t *prompt, int plen, const int32_t *resp,
                    int rlen)
{
    if (i < 0 || i >= b->cap_n || plen < 1 || rlen < 0 || plen + rlen > b->cap_T)
        return -1;
    int32_t *row = b->tokens + (size_t)i * b->cap_T;
    memcpy(row, prompt, (size_t)plen * sizeof *row);
    if (rlen > 0)
        memcpy(row + plen, resp, (size_t)rlen * sizeof *row);
    b->seq_len[i] = plen + rlen;
    b->prompt_len[i] = plen;
    return 0;
}

void train_batch_finish(TrainBatch *b, int n)
{
    int T = 1;
    for (int i = 0; i < n; i++)
        if (b->seq_len[i] > T)
            T = b->seq_len[i];
    /* Pack rows from stride cap_T to stride T (rows only move towards the front). */
    for (int i = 0; i < n; i++) {
        int32_t *src = b->tokens + (size_t)i * b->cap_T;
        int32_t *dst = b->tokens + (size_t)i * T;
        if (dst != src)
            memmove(dst, src, (size_t)b->seq_len[i] * sizeof *dst);
        for (int t = b->seq_len[i]; t < T; t++)
            dst[t] = TOK_PAD;
    }
    for (int i = 0; i < n; i++) {
        const int32_t *row = b->tokens + (size_t)i * T;
        int32_t *tg = b->targets + (size_t)i * T;
        uint8_t *mk = b->mask + (size_t)i * T;
        for (int t = 0; t < T; t++) {
            bool scored = t + 1 < b->seq_len[i];
            tg[t] = scored ? row[t + 1] : -1;
            mk[t] = scored && t + 1 >= b->prompt_len[i];
        }
    }
    b->n = n;
    b->T = T;
}

