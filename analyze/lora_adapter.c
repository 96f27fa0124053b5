/* Reading a PEFT LoRA adapter folder (see lora_adapter.h): the config with jansson, the weights
 * with the safetensors reader, then lora_A/lora_B names paired by the base tensor they update. */
#include "analyze/lora_adapter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "formats/dtype_convert.h"

#define LORA_PREFIX "base_model.model."

/* ---- the config ---- */

int lora_is_adapter(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    char *cfg = NULL;
    if (asprintf(&cfg, "%s/adapter_config.json", path) < 0)
        return 0;
    int is = stat(cfg, &st) == 0 && S_ISREG(st.st_mode);
    free(cfg);
    return is;
}

static int lora_flag_set(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    return v && json_is_true(v);
}

static int lora_pattern_set(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    return v && json_is_object(v) && json_object_size(v) > 0;
}

static int lora_read_config(const char *path, LoraAdapter *ad, SsError *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ss_err(err, SS_EINPUT, "%s: not valid JSON: %s (line %d)", path, jerr.text,
                      jerr.line);
    int rc = 0;
    json_t *r = json_object_get(root, "r"), *alpha = json_object_get(root, "lora_alpha");
    json_t *rs = json_object_get(root, "use_rslora"), *type = json_object_get(root, "peft_type");
    if (!json_is_object(root))
        rc = ss_err(err, SS_EINPUT, "%s: not a JSON object", path);
    else if (type && json_is_string(type) && strcmp(json_string_value(type), "LORA") != 0)
        rc = ss_err(err, SS_EINPUT, "%s: peft_type is \"%s\", not \"LORA\"", path,
                    json_string_value(type));
    else if (!json_is_integer(r) || json_integer_value(r) <= 0)
        rc = ss_err(err, SS_EINPUT, "%s: \"r\" must be a positive integer", path);
    else if (!json_is_number(alpha) || !isfinite(json_number_value(alpha)))
        rc = ss_err(err, SS_EINPUT, "%s: \"lora_alpha\" must be a number", path);
    else if (rs && !json_is_boolean(rs) && !json_is_null(rs))
        rc = ss_err(err, SS_EINPUT, "%s: \"use_rslora\" must be true or false", path);
    else if (lora_flag_set(root, "use_dora"))
        rc = ss_err(err, SS_EINPUT, "%s: use_dora is not supported (DoRA is not dW = B A)", path);
    else if (lora_flag_set(root, "fan_in_fan_out"))
        rc = ss_err(err, SS_EINPUT, "%s: fan_in_fan_out is not supported", path);
    else if (lora_pattern_set(root, "rank_pattern") || lora_pattern_set(root, "alpha_pattern"))
        rc = ss_err(err, SS_EINPUT, "%s: per-module rank_pattern or alpha_pattern is not "
                    "supported", path);
    if (!rc) {
        ad->r = (uint64_t)json_integer_value(r);
        ad->alpha = json_number_value(alpha);
        ad->use_rslora = rs && json_is_true(rs);
        ad->scale = ad->use_rslora ? ad->alpha / sqrt((double)ad->r) : ad->alpha / (double)ad->r;
    }
    json_decref(root);
    return rc;
}

/* ---- pairing the tensors ---- */

typedef struct LoraPart {
    char *target;
    int is_b;
    const StTensor *t;
} LoraPart;

static int lora_part_cmp(const void *x, const void *y)
{
    const LoraPart *a = x, *b = y;
    int c = strcmp(a->target, b->target);
    return c ? c : a->is_b - b->is_b;
}

/* The base tensor name of an adapter tensor name and whether it is lora_B; 0 when the name is
 * not a lora_A/lora_B weight. *target is malloc'd; -1 when out of memory. */
static int lora_parse_name(const char *name, char **target, int *is_b)
{
    static const char *const suffix[4] = {".lora_A.weight", ".lora_B.weight",
                                          ".lora_A.default.weight", ".lora_B.default.weight"};
    if (strncmp(name, LORA_PREFIX, strlen(LORA_PREFIX)) == 0)
        name += strlen(LORA_PREFIX);
    size_t len = strlen(name);
    for (int i = 0; i < 4; i++) {
        size_t sl = strlen(suffix[i]);
        if (len > sl && strcmp(name + len - sl, suffix[i]) == 0) {
            if (asprintf(target, "%.*s.weight", (int)(len - sl), name) < 0)
                return -1;
            *is_b = i % 2;
            return 1;
        }
    }
    return 0;
}

static int lora_check_part(const LoraAdapter *ad, const LoraPart *p, SsError *err)
{
    const StTensor *t = p->t;
    if (!dtype_is_float(t->dtype))
        return ss_err(err, SS_EINPUT, "%s: tensor '%s': dtype %s is not a floating-point type",
                      ad->weights_path, t->name, dtype_name(t->dtype));
    if (t->ndim != 2)
        return ss_err(err, SS_EINPUT, "%s: tensor '%s': a LoRA factor must be 2-D",
                      ad->weights_path, t->name);
    uint64_t rdim = p->is_b ? t->shape[1] : t->shape[0];
    if (rdim != ad->r)
        return ss_err(err, SS_EINPUT, "%s: tensor '%s': shape [%llu, %llu] does not have r = %llu "
                      "(adapter_config.json) %s", ad->weights_path, t->name,
                      (unsigned long long)t->shape[0], (unsigned long long)t->shape[1],
                      (unsigned long long)ad->r, p->is_b ? "columns" : "rows");
    return 0;
}

static int lora_pair_parts(LoraAdapter *ad, SsError *err)
{
    const StCheckpoint *ck = ad->st;
    size_t n = ck->ntensors, nparts = 0;
    LoraPart *parts = calloc(n ? n : 1, sizeof *parts);
    ad->pairs = calloc(n ? n : 1, sizeof *ad->pairs);
    ad->ignored = calloc(n ? n : 1, sizeof *ad->ignored);
    if (!parts || !ad->pairs || !ad->ignored) {
        free(parts);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", ad->weights_path);
    }
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        LoraPart p = {NULL, 0, ck->tensors[i]};
        int k = lora_parse_name(p.t->name, &p.target, &p.is_b);
        if (k < 0)
            rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", ad->weights_path);
        else if (k == 0)
            ad->ignored[ad->nignored++] = p.t->name; /* ck->tensors is name-sorted */
        else
            parts[nparts++] = p;
    }
    if (!rc)
        qsort(parts, nparts, sizeof *parts, lora_part_cmp);
    for (size_t i = 0; !rc && i < nparts; i++) {
        rc = lora_check_part(ad, &parts[i], err);
        if (rc)
            break;
        int has_next = i + 1 < nparts && strcmp(parts[i].target, parts[i + 1].target) == 0;
        if (has_next && parts[i].is_b == parts[i + 1].is_b) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': a second lora_%c for '%s' ('%s')",
                        ad->weights_path, parts[i + 1].t->name, parts[i].is_b ? 'B' : 'A',
                        parts[i].target, parts[i].t->name);
        } else if (!has_next || parts[i].is_b) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': no matching lora_%c", ad->weights_path,
                        parts[i].t->name, parts[i].is_b ? 'A' : 'B');
        } else {
            rc = lora_check_part(ad, &parts[i + 1], err);
            if (!rc) {
                LoraPair *q = &ad->pairs[ad->npairs++];
                q->target = parts[i].target;
                q->a = parts[i].t;
                q->b = parts[i + 1].t;
                parts[i].target = NULL;
                i++;
            }
        }
    }
    for (size_t i = 0; i < nparts; i++)
        free(parts[i].target);
    free(parts);
    return rc;
}

/* ---- public ---- */

int lora_adapter_open(const char *dir, LoraAdapter **out, SsError *err)
{
    *out = NULL;
    LoraAdapter *ad = calloc(1, sizeof *ad);
    char *cfg = NULL;
    if (!ad || !(ad->dir = strdup(dir)) ||
        asprintf(&ad->weights_path, "%s/adapter_model.safetensors", dir) < 0) {
        if (ad)
            ad->weights_path = NULL;
        lora_adapter_close(ad);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
    }
    int rc = asprintf(&cfg, "%s/adapter_config.json", dir) < 0
                 ? (cfg = NULL, ss_err(err, SS_EOUTPUT, "%s: out of memory", dir))
                 : 0;
    if (!rc)
        rc = lora_read_config(cfg, ad, err);
    free(cfg);
    if (!rc)
        rc = st_open(ad->weights_path, &ad->st, err);
    if (!rc)
        rc = lora_pair_parts(ad, err);
    if (rc) {
        lora_adapter_close(ad);
        return rc;
    }
    *out = ad;
    return 0;
}

void lora_adapter_close(LoraAdapter *ad)
{
    if (!ad)
        return;
    for (size_t i = 0; i < ad->npairs; i++)
        free(ad->pairs[i].target);
    free(ad->pairs);
    free(ad->ignored);
    st_close(ad->st);
    free(ad->weights_path);
    free(ad->dir);
    free(ad);
}

const LoraPair *lora_adapter_find(const LoraAdapter *ad, const char *target)
{
    size_t lo = 0, hi = ad->npairs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ad->pairs[mid].target, target);
        if (c == 0)
            return &ad->pairs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int lora_pair_check(const LoraAdapter *ad, const LoraPair *p, uint64_t m, uint64_t n,
                    SsError *err)
{
    if (p->b->shape[0] != m)
        return ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': lora_B has %llu rows but the base "
                      "tensor '%s' has %llu", ad->weights_path, p->b->name,
                      (unsigned long long)p->b->shape[0], p->target, (unsigned long long)m);
    if (p->a->shape[1] != n)
        return ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': lora_A has %llu columns but the base "
                      "tensor '%s' has %llu", ad->weights_path, p->a->name,
                      (unsigned long long)p->a->shape[1], p->target, (unsigned long long)n);
    return 0;
}

int lora_pair_decode(const LoraAdapter *ad, const LoraPair *p, double **a, double **b,
                     SsError *err)
{
    size_t na = (size_t)p->a->numel, nb = (size_t)p->b->numel;
    *a = malloc((na ? na : 1) * sizeof **a);
    *b = malloc((nb ? nb : 1) * sizeof **b);
    if (!*a || !*b)
        return ss_err(err, SS_EOUTPUT, "%s: tensor '%s': out of memory", ad->weights_path,
                      p->a->name);
    for (size_t i = 0; i < na; i++)
        (*a)[i] = ss_decode(p->a->dtype, p->a->data, i);
    for (size_t i = 0; i < nb; i++)
        (*b)[i] = ss_decode(p->b->dtype, p->b->data, i);
    return 0;
}

void lora_delta_row(const double *a, const double *b, uint64_t r, size_t n, double scale, size_t i,
                    double *row)
{
    memset(row, 0, n * sizeof *row);
    for (uint64_t t = 0; t < r; t++) {
        double bt = b[i * r + t];
        const double *at = a + t * n;
        for (size_t j = 0; j < n; j++)
            row[j] += bt * at[j];
    }
    for (size_t j = 0; j < n; j++)
        row[j] *= scale;
}
