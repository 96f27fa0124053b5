/* Grouping tensors by layer and module (see grouping.h): the naming rules, then the per-cell and
 * per-layer sums. Everything is merged in tensor name order, so the figures do not depend on the
 * thread count of the scan. */
#include "analyze/grouping.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Hugging Face module names in the order of a decoder layer's state_dict, then the tensors
 * outside the layers; other modules follow in strcmp order. */
static const char *const GROUP_KNOWN_MODULES[] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm",
    "gate_proj", "up_proj", "down_proj", "input_layernorm", "post_attention_layernorm",
    "embed_tokens", "norm", "lm_head",
};
#define GROUP_NKNOWN (sizeof GROUP_KNOWN_MODULES / sizeof GROUP_KNOWN_MODULES[0])

/* ---- naming rules ---- */

static size_t module_rank(const char *m)
{
    for (size_t k = 0; k < GROUP_NKNOWN; k++)
        if (strcmp(m, GROUP_KNOWN_MODULES[k]) == 0)
            return k;
    return GROUP_NKNOWN;
}

static int module_compare(const char *x, const char *y)
{
    size_t rx = module_rank(x), ry = module_rank(y);
    if (rx != ry)
        return rx < ry ? -1 : 1;
    return strcmp(x, y);
}

/* s[0..len) as a layer number: one or more decimal digits, value at most GROUP_MAX_LAYER. */
static int parse_layer(const char *s, size_t len, int64_t *out)
{
    if (len == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = 10 * v + (s[i] - '0');
        if (v > GROUP_MAX_LAYER)
            return -1;
    }
    *out = v;
    return 0;
}

/* The default layer: the first '.'-separated component that is a layer number, else -1. */
static int64_t default_layer(const char *name)
{
    for (const char *p = name;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        int64_t v;
        if (parse_layer(p, len, &v) == 0)
            return v;
        if (!dot)
            return -1;
        p = dot + 1;
    }
}

/* The default module: the last component once a final "weight" or "bias" is dropped. */
static char *default_module(const char *name)
{
    size_t end = strlen(name);
    const char *last = memrchr(name, '.', end);
    if (last && (strcmp(last + 1, "weight") == 0 || strcmp(last + 1, "bias") == 0))
        end = (size_t)(last - name);
    const char *prev = memrchr(name, '.', end);
    size_t start = prev ? (size_t)(prev - name) + 1 : 0;
    return strndup(name + start, end - start);
}

int grouping_rules_init(GroupRules *rules, const char *pattern, SsError *err)
{
    memset(rules, 0, sizeof *rules);
    if (!pattern)
        return 0;
    int rc = regcomp(&rules->re, pattern, REG_EXTENDED);
    if (rc != 0) {
        char why[256];
        regerror(rc, &rules->re, why, sizeof why);
        return ss_err(err, SS_EUSAGE, "'%s' does not compile: %s", pattern, why);
    }
    if (rules->re.re_nsub < 2) {
        size_t n = rules->re.re_nsub;
        regfree(&rules->re);
        return ss_err(err, SS_EUSAGE,
                      "'%s' has %zu capture group%s; it needs two: 1 = layer, 2 = module",
                      pattern, n, n == 1 ? "" : "s");
    }
    rules->pattern = pattern;
    return 0;
}

void grouping_rules_free(GroupRules *rules)
{
    if (rules->pattern)
        regfree(&rules->re);
    rules->pattern = NULL;
}

/* Applies the regex; 1 when it matched with qualifying groups (outputs filled), 0 otherwise,
 * -1 when out of memory. */
static int regex_classify(const GroupRules *rules, const char *name, int64_t *layer,
                          char **module)
{
    regmatch_t m[3];
    if (regexec(&rules->re, name, 3, m, 0) != 0)
        return 0;
    int64_t l = -1;
    if (m[1].rm_so >= 0 && m[1].rm_eo > m[1].rm_so &&
        parse_layer(name + m[1].rm_so, (size_t)(m[1].rm_eo - m[1].rm_so), &l) != 0)
        return 0;
    if (m[2].rm_so < 0 || m[2].rm_eo <= m[2].rm_so)
        return 0;
    *module = strndup(name + m[2].rm_so, (size_t)(m[2].rm_eo - m[2].rm_so));
    if (!*module)
        return -1;
    *layer = l;
    return 1;
}

int grouping_classify(const GroupRules *rules, const char *name, int64_t *layer, char **module,
                      SsError *err)
{
    *module = NULL;
    if (rules->pattern) {
        int hit = regex_classify(rules, name, layer, module);
        if (hit < 0)
            return ss_err(err, SS_EOUTPUT, "tensor '%s': out of memory grouping it", name);
        if (hit > 0)
            return 0;
    }
    *layer = default_layer(name);
    *module = default_module(name);
    if (!*module)
        return ss_err(err, SS_EOUTPUT, "tensor '%s': out of memory grouping it", name);
    return 0;
}

/* ---- sums ---- */

/* Sort keys (qsort has no context argument, so they carry what they compare). */
typedef struct ModuleKey {
    const char *module;
    size_t tensor;
} ModuleKey;

typedef struct CellKey {
    size_t layer_index, module_index, tensor;
} CellKey;

static int module_key_compare(const void *x, const void *y)
{
    const ModuleKey *p = x, *q = y;
    int c = module_compare(p->module, q->module);
    if (c)
        return c;
    return p->tensor < q->tensor ? -1 : p->tensor > q->tensor;
}

static int cell_key_compare(const void *x, const void *y)
{
    const CellKey *p = x, *q = y;
    if (p->layer_index != q->layer_index)
        return p->layer_index < q->layer_index ? -1 : 1;
    if (p->module_index != q->module_index)
        return p->module_index < q->module_index ? -1 : 1;
    return p->tensor < q->tensor ? -1 : p->tensor > q->tensor;
}

static int int64_compare(const void *x, const void *y)
{
    int64_t p = *(const int64_t *)x, q = *(const int64_t *)y;
    return p < q ? -1 : p > q;
}

/* A matrix: a 2-D tensor with at least one element (the published per-layer figure averages
 * over the weight matrices of a layer). */
static int tensor_is_matrix(const StTensor *t)
{
    return t->ndim == 2 && t->numel > 0;
}

/* Sorted unique module names -> g->modules, and g->tensor_module. Takes ownership of names. */
static int build_modules(Grouping *g, char **names, SsError *err)
{
    size_t n = g->ntensors;
    ModuleKey *keys = malloc((n ? n : 1) * sizeof *keys);
    g->modules = calloc(n ? n : 1, sizeof *g->modules);
    if (!keys || !g->modules) {
        free(keys);
        return ss_err(err, SS_EOUTPUT, "out of memory grouping %zu tensors", n);
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = (ModuleKey){names[i], i};
    qsort(keys, n, sizeof *keys, module_key_compare);
    for (size_t k = 0; k < n; k++) {
        size_t i = keys[k].tensor;
        if (g->nmodules == 0 || strcmp(g->modules[g->nmodules - 1], names[i]) != 0) {
            g->modules[g->nmodules++] = names[i];
            names[i] = NULL;
        }
        g->tensor_module[i] = g->nmodules - 1;
    }
    free(keys);
    return 0;
}

/* Sorted unique layers -> g->layers; layer_index[i] for each tensor. */
static int build_layers(Grouping *g, size_t *layer_index, SsError *err)
{
    size_t n = g->ntensors;
    int64_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
    g->layers = calloc(n ? n : 1, sizeof *g->layers);
    if (!sorted || !g->layers) {
        free(sorted);
        return ss_err(err, SS_EOUTPUT, "out of memory grouping %zu tensors", n);
    }
    memcpy(sorted, g->tensor_layer, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, int64_compare);
    for (size_t k = 0; k < n; k++) {
        if (g->nlayers == 0 || g->layers[g->nlayers - 1].layer != sorted[k]) {
            GroupLayer *L = &g->layers[g->nlayers++];
            L->layer = sorted[k];
            scan_counts_init(&L->counts);
        }
    }
    free(sorted);
    for (size_t i = 0; i < n; i++) {
        size_t lo = 0, hi = g->nlayers;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (g->layers[mid].layer <= g->tensor_layer[i])
                lo = mid;
            else
                hi = mid;
        }
        layer_index[i] = lo;
    }
    return 0;
}

/* A mean over matrices from the running sum kept in *mean: the sum over n, NaN when n is 0. */
static void finish_mean(double *mean, size_t n)
{
    *mean = n ? *mean / (double)n : NAN;
}

/* Cells from (layer, module) runs, merged in name order. */
static int build_cells(Grouping *g, const ScanReport *r, const size_t *layer_index, SsError *err)
{
    size_t n = g->ntensors;
    CellKey *keys = malloc((n ? n : 1) * sizeof *keys);
    g->cells = calloc(n ? n : 1, sizeof *g->cells);
    if (!keys || !g->cells) {
        free(keys);
        return ss_err(err, SS_EOUTPUT, "out of memory grouping %zu tensors", n);
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = (CellKey){layer_index[i], g->tensor_module[i], i};
    qsort(keys, n, sizeof *keys, cell_key_compare);
    for (size_t k = 0; k < n; k++) {
        GroupCell *c = g->ncells ? &g->cells[g->ncells - 1] : NULL;
        if (!c || c->layer_index != keys[k].layer_index || c->module_index != keys[k].module_index) {
            c = &g->cells[g->ncells++];
            c->layer_index = keys[k].layer_index;
            c->module_index = keys[k].module_index;
            scan_counts_init(&c->counts);
        }
        size_t i = keys[k].tensor;
        c->ntensors++;
        scan_counts_merge(&c->counts, &r->counts[i]);
        if (tensor_is_matrix(r->pairs.pairs[i].a)) {
            c->nmatrices++;
            c->mean_matrix_sparsity += scan_sparsity(&r->counts[i]);
        }
    }
    for (size_t k = 0; k < g->ncells; k++)
        finish_mean(&g->cells[k].mean_matrix_sparsity, g->cells[k].nmatrices);
    free(keys);
    return 0;
}

/* Per-layer sums in name order, the mean over the matrices in layers >= 0, and each layer's
 * least sparse cell. */
static void build_layer_sums(Grouping *g, const ScanReport *r, const size_t *layer_index)
{
    double all = 0;
    for (size_t i = 0; i < g->ntensors; i++) {
        GroupLayer *L = &g->layers[layer_index[i]];
        L->ntensors++;
        scan_counts_merge(&L->counts, &r->counts[i]);
        if (!tensor_is_matrix(r->pairs.pairs[i].a))
            continue;
        double s = scan_sparsity(&r->counts[i]);
        L->nmatrices++;
        L->mean_matrix_sparsity += s;
        if (L->layer >= 0) {
            g->layers_nmatrices++;
            all += s;
        }
    }
    for (size_t l = 0; l < g->nlayers; l++)
        finish_mean(&g->layers[l].mean_matrix_sparsity, g->layers[l].nmatrices);
    g->layers_mean_matrix_sparsity = all;
    finish_mean(&g->layers_mean_matrix_sparsity, g->layers_nmatrices);
    /* Cells are ordered by layer, then module: keep the first lowest of each layer. */
    for (size_t k = 0; k < g->ncells; k++) {
        const GroupCell *c = &g->cells[k];
        GroupLayer *L = &g->layers[c->layer_index];
        if (k == 0 || g->cells[k - 1].layer_index != c->layer_index ||
            scan_sparsity(&c->counts) < scan_sparsity(&g->cells[L->least_sparse_cell].counts))
            L->least_sparse_cell = k;
    }
}

int grouping_build(const GroupRules *rules, const ScanReport *r, Grouping *out, SsError *err)
{
    memset(out, 0, sizeof *out);
    out->pattern = rules->pattern;
    out->layers_mean_matrix_sparsity = NAN;
    size_t n = r->pairs.npairs;
    out->ntensors = n;
    out->tensor_layer = malloc((n ? n : 1) * sizeof *out->tensor_layer);
    out->tensor_module = malloc((n ? n : 1) * sizeof *out->tensor_module);
    char **names = calloc(n ? n : 1, sizeof *names);
    size_t *layer_index = malloc((n ? n : 1) * sizeof *layer_index);
    int rc = 0;
    if (!out->tensor_layer || !out->tensor_module || !names || !layer_index) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory grouping %zu tensors", n);
        goto done;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = grouping_classify(rules, r->pairs.pairs[i].a->name, &out->tensor_layer[i], &names[i],
                               err);
    if (rc == 0)
        rc = build_modules(out, names, err);
    if (rc == 0)
        rc = build_layers(out, layer_index, err);
    if (rc == 0)
        rc = build_cells(out, r, layer_index, err);
    if (rc == 0)
        build_layer_sums(out, r, layer_index);
done:
    if (names)
        for (size_t i = 0; i < n; i++)
            free(names[i]);
    free(names);
    free(layer_index);
    return rc;
}

void grouping_free(Grouping *g)
{
    free(g->tensor_layer);
    free(g->tensor_module);
    for (size_t m = 0; m < g->nmodules; m++)
        free(g->modules[m]);
    free(g->modules);
    free(g->layers);
    free(g->cells);
    memset(g, 0, sizeof *g);
}
