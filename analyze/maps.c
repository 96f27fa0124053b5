/* Update maps from changed-element masks: row and column counts, the cell counts, per-head
 * fractions and stripe ratios (analyze/maps.h; docs/metrics.md, "Update maps"), and the head size
 * from a checkpoint's config.json. */
#include "analyze/maps.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "analyze/maps_count.h"

MapsHeadKind maps_head_kind(const char *name)
{
    for (const char *p = name; p;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len == 6 && (!strncmp(p, "q_proj", 6) || !strncmp(p, "k_proj", 6) ||
                         !strncmp(p, "v_proj", 6)))
            return MAPS_HEADS_ROWS;
        if (len == 6 && !strncmp(p, "o_proj", 6))
            return MAPS_HEADS_COLS;
        p = dot ? dot + 1 : NULL;
    }
    return MAPS_HEADS_NONE;
}

/* The folder config.json would be in for spec (malloc'd), or NULL when out of memory. */
static char *maps_config_folder(const char *spec)
{
    struct stat st;
    if (stat(spec, &st) == 0 && S_ISDIR(st.st_mode))
        return strdup(spec);
    const char *cut = NULL;
    if (stat(spec, &st) == 0)
        cut = strrchr(spec, '/');        /* a file: its folder */
    else if ((cut = strrchr(spec, '@')) == NULL)
        cut = strrchr(spec, '/');        /* RUN@STEP: the run folder */
    if (!cut)
        return strdup(".");
    if (cut == spec)
        return strdup(*cut == '/' ? "/" : ".");
    return strndup(spec, (size_t)(cut - spec));
}

/* A positive integer member of obj, or 0. */
static uint64_t maps_json_positive(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

int maps_head_dim_from_config(const char *spec, uint64_t *head_dim, char **source, SsError *err)
{
    *head_dim = 0;
    *source = NULL;
    char *folder = maps_config_folder(spec), *path = NULL;
    if (!folder || asprintf(&path, "%s/config.json", folder) < 0) {
        free(folder);
        return ss_err(err, SS_EOUTPUT, "out of memory");
    }
    free(folder);
    struct stat st;
    if (stat(path, &st) != 0) {
        free(path);
        return 0;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        int rc = ss_err(err, SS_EINPUT, "%s: not valid JSON: %s (line %d)", path, jerr.text,
                        jerr.line);
        free(path);
        return rc;
    }
    uint64_t hd = maps_json_positive(root, "head_dim");
    uint64_t hidden = maps_json_positive(root, "hidden_size");
    uint64_t heads = maps_json_positive(root, "num_attention_heads");
    if (!hd && hidden && heads && hidden % heads == 0)
        hd = hidden / heads;
    json_decref(root);
    if (hd) {
        *head_dim = hd;
        *source = path;
    } else {
        free(path);
    }
    return 0;
}

/* The cell edges of n indices in m cells, edge[i] = floor(i n / m) for i <= m (cell i holds
 * [edge[i], edge[i+1])); returns the largest cell's size. */
static uint64_t maps_cells(uint64_t n, uint64_t m, uint64_t *edge)
{
    uint64_t largest = 0;
    edge[0] = 0;
    for (uint64_t i = 0; i < m; i++) {
        uint64_t lo = i * n / m, hi = (i + 1) * n / m;
        edge[i + 1] = hi;
        largest = hi - lo > largest ? hi - lo : largest;
    }
    return largest;
}

/* The smallest stored type for counts up to max, and its size in bytes. */
static H5wType maps_count_type(uint64_t max, size_t *size)
{
    if (max <= UINT8_MAX)
        return *size = 1, H5W_U8;
    if (max <= UINT16_MAX)
        return *size = 2, H5W_U16;
    if (max <= UINT32_MAX)
        return *size = 4, H5W_U32;
    return *size = 8, H5W_U64;
}

int maps_compute_tensor(const uint8_t *mask, uint64_t rows, uint64_t cols, double stripe_k,
                        TensorMap *out, SsError *err)
{
    uint64_t r = rows < MAPS_MAX_CELLS ? rows : MAPS_MAX_CELLS;
    uint64_t c = cols < MAPS_MAX_CELLS ? cols : MAPS_MAX_CELLS;
    out->rows = rows;
    out->cols = cols;
    out->map_rows = r;
    out->map_cols = c;
    out->row_changed = calloc(rows, sizeof *out->row_changed);
    out->col_changed = calloc(cols, sizeof *out->col_changed);
    out->row_edges = malloc((r + 1) * sizeof *out->row_edges);
    out->col_edges = malloc((c + 1) * sizeof *out->col_edges);
    if (!out->row_changed || !out->col_changed || !out->row_edges || !out->col_edges)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory for the update maps", out->name);
    uint64_t largest = maps_cells(rows, r, out->row_edges) * maps_cells(cols, c, out->col_edges);
    size_t cell_size;
    out->cell_type = maps_count_type(largest, &cell_size);
    if (!(out->cell_changed = malloc(r * c * cell_size)) ||
        maps_count(mask, rows, cols, out->row_edges, r, out->col_edges, c, out->row_changed,
                   out->col_changed, cell_size, out->cell_changed) != 0)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory for the update maps", out->name);
    uint64_t numel = rows * cols;
    out->changed = 0;
    for (uint64_t i = 0; i < rows; i++)
        out->changed += out->row_changed[i];
    double thr = stripe_k * ((double)out->changed / (double)numel);
    uint64_t nr = 0, nc = 0;
    for (uint64_t i = 0; i < rows; i++)
        nr += (double)out->row_changed[i] / (double)cols > thr;
    for (uint64_t j = 0; j < cols; j++)
        nc += (double)out->col_changed[j] / (double)rows > thr;
    out->row_stripe_ratio = (double)nr / (double)rows;
    out->col_stripe_ratio = (double)nc / (double)cols;
    return 0;
}

/* The error for an attention projection t that cannot be split into heads of hd (0: unknown). */
static int maps_heads_error(const char *name, uint64_t hd, uint64_t n, int by_rows, SsError *err)
{
    if (hd == 0)
        return ss_err(err, SS_EUSAGE,
                      "--maps: %s is an attention projection but the head size is unknown "
                      "(no config.json with head_dim or hidden_size/num_attention_heads "
                      "beside B or A): pass --head-dim D", name);
    return ss_err(err, SS_EUSAGE,
                  "%s: head size %llu does not divide its %llu %s (pass the right --head-dim)",
                  name, (unsigned long long)hd, (unsigned long long)n, by_rows ? "rows" : "columns");
}

int maps_check_heads(const StCheckpoint *ck, uint64_t head_dim, SsError *err)
{
    for (size_t i = 0; i < ck->ntensors; i++) {
        const StTensor *t = ck->tensors[i];
        MapsHeadKind kind = maps_head_kind(t->name);
        if (t->ndim != 2 || !t->numel || kind == MAPS_HEADS_NONE)
            continue;
        int by_rows = kind == MAPS_HEADS_ROWS;
        uint64_t n = by_rows ? t->shape[0] : t->shape[1];
        if (head_dim == 0 || n % head_dim != 0)
            return maps_heads_error(t->name, head_dim, n, by_rows, err);
    }
    return 0;
}

/* The per-head fractions of t (its maps computed) with head size hd. */
static int maps_heads(TensorMap *t, uint64_t hd, SsError *err)
{
    int by_rows = t->head_kind == MAPS_HEADS_ROWS;
    uint64_t n = by_rows ? t->rows : t->cols, other = by_rows ? t->cols : t->rows;
    const uint64_t *counts = by_rows ? t->row_changed : t->col_changed;
    if (hd == 0 || n % hd != 0)
        return maps_heads_error(t->name, hd, n, by_rows, err);
    t->head_dim = hd;
    t->nheads = n / hd;
    t->head_fraction = malloc(t->nheads * sizeof *t->head_fraction);
    if (!t->head_fraction)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory for the update maps", t->name);
    for (uint64_t h = 0; h < t->nheads; h++) {
        uint64_t sum = 0;
        for (uint64_t k = h * hd; k < (h + 1) * hd; k++)
            sum += counts[k];
        t->head_fraction[h] = (double)sum / (double)(hd * other);
    }
    return 0;
}

/* maps_build's work list: one task per 2-D tensor, each with its own error slot. */
typedef struct MapsTasks {
    const ScanReport *r;
    const MapsOptions *opt;
    MapsReport *out;
    int *rc;          /* (ntensors) */
    SsError *errs;    /* (ntensors) */
} MapsTasks;

static void maps_task(void *ctx, size_t i, int worker)
{
    (void)worker;
    MapsTasks *k = ctx;
    const StTensor *t = k->r->pairs.pairs[i].a;
    TensorMap *m = &k->out->t[i];
    if (t->ndim != 2 || !t->numel)
        return;
    int rc = maps_compute_tensor(k->r->masks[i], t->shape[0], t->shape[1], k->opt->stripe_k, m,
                                 &k->errs[i]);
    if (!rc && (m->head_kind = maps_head_kind(t->name)) != MAPS_HEADS_NONE)
        rc = maps_heads(m, k->opt->head_dim, &k->errs[i]);
    k->rc[i] = rc;
}

int maps_build(const ScanReport *r, const MapsOptions *opt, char *source, MapsReport *out,
               SsError *err)
{
    size_t n = r->pairs.npairs;
    *out = (MapsReport){.stripe_k = opt->stripe_k, .head_dim = opt->head_dim,
                        .head_dim_source = source, .ntensors = n};
    out->t = calloc(n ? n : 1, sizeof *out->t);
    MapsTasks k = {r, opt, out, calloc(n ? n : 1, sizeof(int)),
                   calloc(n ? n : 1, sizeof(SsError))};
    if (!out->t || !k.rc || !k.errs) {
        free(k.rc);
        free(k.errs);
        return ss_err(err, SS_EOUTPUT, "out of memory for the update maps");
    }
    for (size_t i = 0; i < n; i++)
        out->t[i].name = r->pairs.pairs[i].a->name;
    /* tensors on the pool (each task writes only its own slots); the first error in name order */
    ThreadPool *pool = n > 1 ? pool_create(r->threads) : NULL;
    if (pool) {
        pool_run(pool, n, maps_task, &k);
        pool_destroy(pool);
    } else {
        for (size_t i = 0; i < n; i++)
            maps_task(&k, i, 0);
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if ((rc = k.rc[i]) != 0)
            *err = k.errs[i];
    free(k.rc);
    free(k.errs);
    return rc;
}

void maps_report_free(MapsReport *m)
{
    for (size_t i = 0; m->t && i < m->ntensors; i++) {
        free(m->t[i].row_changed);
        free(m->t[i].col_changed);
        free(m->t[i].row_edges);
        free(m->t[i].col_edges);
        free(m->t[i].cell_changed);
        free(m->t[i].head_fraction);
    }
    free(m->t);
    free(m->head_dim_source);
    m->t = NULL;
    m->head_dim_source = NULL;
}
