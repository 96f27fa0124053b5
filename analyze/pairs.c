/* Name matching of two checkpoints' tensor lists (see pairs.h). Both lists are sorted by name, so
 * one merge walk finds the shared, one-sided and mismatched names. */
#include "analyze/pairs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int same_shape(const StTensor *x, const StTensor *y)
{
    if (x->ndim != y->ndim)
        return 0;
    for (int d = 0; d < x->ndim; d++)
        if (x->shape[d] != y->shape[d])
            return 0;
    return 1;
}

static int describe_mismatch(const StTensor *x, const StTensor *y, SsError *err)
{
    char sa[256], sb[256];
    return ss_err(err, SS_EINCOMPAT,
                  "tensor '%s': A has %s %s but B has %s %s (use --skip-mismatched to skip it)",
                  x->name, dtype_name(x->dtype), st_format_shape(sa, sizeof sa, x->ndim, x->shape),
                  dtype_name(y->dtype), st_format_shape(sb, sizeof sb, y->ndim, y->shape));
}

int pairs_match(const StCheckpoint *a, const StCheckpoint *b, int skip_mismatched, PairList *out,
                SsError *err)
{
    memset(out, 0, sizeof *out);
    size_t na = a->ntensors, nb = b->ntensors;
    out->pairs = calloc(na ? na : 1, sizeof *out->pairs);
    out->only_a = calloc(na ? na : 1, sizeof *out->only_a);
    out->only_b = calloc(nb ? nb : 1, sizeof *out->only_b);
    out->mismatched = calloc(na ? na : 1, sizeof *out->mismatched);
    if (!out->pairs || !out->only_a || !out->only_b || !out->mismatched) {
        pairs_free(out);
        return ss_err(err, SS_EOUTPUT, "out of memory matching %zu and %zu tensors", na, nb);
    }
    size_t i = 0, j = 0;
    while (i < na || j < nb) {
        int c = i == na ? 1 : j == nb ? -1 : strcmp(a->tensors[i]->name, b->tensors[j]->name);
        if (c < 0) {
            out->only_a[out->nonly_a++] = a->tensors[i++]->name;
        } else if (c > 0) {
            out->only_b[out->nonly_b++] = b->tensors[j++]->name;
        } else {
            const StTensor *x = a->tensors[i++], *y = b->tensors[j++];
            if (x->dtype == y->dtype && same_shape(x, y)) {
                out->pairs[out->npairs++] = (TensorPair){x, y};
            } else if (skip_mismatched) {
                out->mismatched[out->nmismatched++] = x->name;
            } else {
                int rc = describe_mismatch(x, y, err);
                pairs_free(out);
                return rc;
            }
        }
    }
    return 0;
}

void pairs_free(PairList *pl)
{
    free(pl->pairs);
    free(pl->only_a);
    free(pl->only_b);
    free(pl->mismatched);
    memset(pl, 0, sizeof *pl);
}
