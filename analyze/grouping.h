/* Grouping a scan's tensors by layer and module, and the per-layer figures (docs/metrics.md,
 * "Per layer and module").
 *
 * Each tensor name gets a layer index (-1 outside the layers) and a module name:
 *   default   layer  = the first '.'-separated component that is a decimal number of at most
 *                      2147483647 (model.layers.<i>.… gives i), else -1;
 *             module = the last component once a final "weight" or "bias" is dropped
 *                      (q_proj, input_layernorm, q_norm, embed_tokens, norm, lm_head, …).
 *   --group-regex RE  a POSIX extended regex searched in the name: group 1 = layer (decimal
 *                      digits, or empty / not taking part: -1), group 2 = module (not empty).
 *                      A name it does not match, or whose groups do not qualify, falls back to
 *                      the default rule.
 * Per layer x module ("cell") and per layer: counts merged over the tensors (parameter-weighted
 * sparsity), and the unweighted mean of the per-tensor sparsity over the matrices (2-D tensors
 * with at least one element). */
#ifndef SS_GROUPING_H
#define SS_GROUPING_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/scan_report.h"
#include "formats/ss_error.h"

#define GROUP_MAX_LAYER 2147483647

/* How names are grouped: the default rule, or a compiled --group-regex before it. */
typedef struct GroupRules {
    const char *pattern;  /* the --group-regex text (not owned), NULL for the default rule */
    regex_t re;           /* compiled pattern when pattern != NULL */
} GroupRules;

/* Prepares rules; pattern NULL means the default rule. A pattern that does not compile or has
 * fewer than two capture groups is SS_EUSAGE with a message saying why. */
int grouping_rules_init(GroupRules *rules, const char *pattern, SsError *err);
void grouping_rules_free(GroupRules *rules);

/* Classifies one name: *layer (-1 outside the layers) and *module (malloc'd, caller frees).
 * Returns 0 or SS_EOUTPUT when out of memory. */
int grouping_classify(const GroupRules *rules, const char *name, int64_t *layer, char **module,
                      SsError *err);

/* One layer x module cell: the tensors of one module in one layer. */
typedef struct GroupCell {
    size_t layer_index;          /* into Grouping.layers */
    size_t module_index;         /* into Grouping.modules */
    size_t ntensors, nmatrices;
    ScanCounts counts;           /* merged over its tensors in name order */
    double mean_matrix_sparsity; /* mean per-matrix sparsity; NaN when nmatrices is 0 */
} GroupCell;

typedef struct GroupLayer {
    int64_t layer;               /* -1: tensors outside the layers */
    size_t ntensors, nmatrices;
    ScanCounts counts;           /* merged over its tensors in name order */
    double mean_matrix_sparsity; /* NaN when nmatrices is 0 */
    size_t least_sparse_cell;    /* index into Grouping.cells: lowest weighted sparsity, the
                                    first in module order on ties */
} GroupLayer;

typedef struct Grouping {
    const char *pattern;         /* the --group-regex used, or NULL (not owned) */
    size_t ntensors;             /* = report pairs */
    int64_t *tensor_layer;       /* per compared tensor, in report (name) order */
    size_t *tensor_module;       /* per compared tensor: index into modules */
    size_t nmodules;
    char **modules;              /* known Hugging Face modules in a fixed order (q_proj, k_proj,
                                    v_proj, o_proj, q_norm, k_norm, gate_proj, up_proj, down_proj,
                                    input_layernorm, post_attention_layernorm, embed_tokens,
                                    norm, lm_head), then the others in strcmp order */
    size_t nlayers;
    GroupLayer *layers;          /* ascending layer index (-1 first when present) */
    size_t ncells;
    GroupCell *cells;            /* the cells that have tensors, by layer then module order */
    size_t layers_nmatrices;     /* matrices in layers >= 0 */
    double layers_mean_matrix_sparsity; /* their mean sparsity (the published per-model figure
                                           over model.layers.*); NaN when there are none */
} Grouping;

/* Groups the compared tensors of r. Returns 0 or SS_EOUTPUT (out of memory); free with
 * grouping_free (also after a failure). */
int grouping_build(const GroupRules *rules, const ScanReport *r, Grouping *out, SsError *err);
void grouping_free(Grouping *g);

#endif
