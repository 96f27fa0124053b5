/* Matching the tensors of two checkpoints by name: which pairs can be compared, which tensors
 * exist on one side only, and which shared names disagree in dtype or shape. */
#ifndef SS_PAIRS_H
#define SS_PAIRS_H

#include <stddef.h>

#include "formats/safetensors.h"
#include "formats/ss_error.h"

typedef struct TensorPair {
    const StTensor *a;
    const StTensor *b;
} TensorPair;

typedef struct PairList {
    size_t npairs;
    TensorPair *pairs;          /* shared names with equal dtype and shape, sorted by name */
    size_t nonly_a, nonly_b, nmismatched;
    const char **only_a;        /* names present in A only, sorted */
    const char **only_b;        /* names present in B only, sorted */
    const char **mismatched;    /* shared names whose dtype or shape differ (skip_mismatched) */
} PairList;

/* Matches a against b. A dtype or shape mismatch is SS_EINCOMPAT naming the tensor, unless
 * skip_mismatched, in which case the name goes to out->mismatched. Names point into a and b. */
int pairs_match(const StCheckpoint *a, const StCheckpoint *b, int skip_mismatched, PairList *out,
                SsError *err);
void pairs_free(PairList *pl);

#endif
