/* Evaluation: accuracy of greedy decoding on the eval split, the figure sft aims at and grpo
 * reports every --eval-every steps. */
#include <stdlib.h>

#include "train/train_internal.h"

double train_eval_accuracy(const Model *m, const float *params, ModelSampler *s, int batch,
                           const TrainTok *tok, const TaskSpec *spec, uint64_t seed, int n,
                           int max_new)
{
    if (n <= 0)
        return 0.0;
    int pmax, amax;
    train_tok_max_lengths(tok, spec, &pmax, &amax);
    int pcap = pmax + 2;
    TaskProblem *probs = malloc((size_t)batch * sizeof *probs);
    int32_t *pbuf = malloc((size_t)batch * pcap * sizeof *pbuf);
    const int32_t **prompts = malloc((size_t)batch * sizeof *prompts);
    int *plen = malloc((size_t)batch * sizeof *plen);
    uint64_t *streams = malloc((size_t)batch * sizeof *streams);
    int32_t *out = malloc((size_t)batch * max_new * sizeof *out);
    int *olen = malloc((size_t)batch * sizeof *olen);
    double correct = 0.0;
    if (!probs || !pbuf || !prompts || !plen || !streams || !out || !olen) {
        correct = -1.0;
        goto done;
    }
    for (int start = 0; start < n; start += batch) {
        int k = n - start < batch ? n - start : batch;
        for (int i = 0; i < k; i++) {
            task_problem(spec, seed, TASK_EVAL, (uint64_t)(start + i), &probs[i]);
            plen[i] = train_encode_prompt(tok, &probs[i], pbuf + (size_t)i * pcap, pcap);
            prompts[i] = pbuf + (size_t)i * pcap;
            streams[i] = (uint64_t)(start + i);
        }
        model_sample(m, params, s, prompts, plen, k, max_new, 0.0f, tok->eos, seed, streams, out,
                     olen);
        for (int i = 0; i < k; i++)
            correct += train_reward(tok, &probs[i], out + (size_t)i * max_new, olen[i]);
    }
done:
    free(probs);
    free(pbuf);
    free(prompts);
    free(plen);
    free(streams);
    free(out);
    free(olen);
    return correct < 0 ? -1.0 : correct / n;
}
