/* Writing ckpt-synth's outputs: one .safetensors file, a folder with model.safetensors, or Hugging
 * Face shards model-0000K-of-0000N.safetensors with model.safetensors.index.json. Shards are cut
 * the way huggingface_hub cuts them (in state_dict order; a tensor larger than the limit gets a
 * shard of its own; a plan of one shard is written as model.safetensors without an index) and
 * each file lists its tensors sorted by name, as safetensors' serializer does. Data is generated
 * in fixed chunks by the fill function on a thread pool, one batch of chunks at a time, and
 * appended with st_writer_put: memory is one batch, not the model. */
#include "train/synth.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/threadpool.h"

#define SYNTH_CHUNK_BYTES ((size_t)4 << 20) /* at most this much per fill call and per put */
#define SYNTH_PIECE_ALIGN 64
#define SYNTH_DOMAIN_ORDER 0x4F524452u /* "ORDR" */
#define SYNTH_PATH_MAX 4096

bool synth_out_is_folder(const char *out)
{
    size_t n = strlen(out), s = strlen(".safetensors");
    return !(n > s && strcmp(out + n - s, ".safetensors") == 0);
}

/* ---- shard planning ---- */

typedef struct ShardPlan {
    size_t nshards;
    size_t *members; /* tensor indices grouped by shard, in file order */
    size_t *start;   /* nshards + 1 offsets into members */
} ShardPlan;

static void plan_free(ShardPlan *p)
{
    free(p->members);
    free(p->start);
    memset(p, 0, sizeof *p);
}

static int cmp_by_name(const void *a, const void *b, void *tensors)
{
    const SynthTensor *t = tensors;
    return strcmp(t[*(const size_t *)a].name, t[*(const size_t *)b].name);
}

/* The logical order: the given one, or a seeded Fisher-Yates permutation of it. */
static void order_fill(size_t *order, size_t n, const SynthWriteOptions *o)
{
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (o->order != SYNTH_ORDER_SHUFFLED)
        return;
    uint64_t key = synth_key(o->order_seed, SYNTH_DOMAIN_ORDER, "order");
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(synth_draw(key, i) % i);
        size_t tmp = order[i - 1];
        order[i - 1] = order[j];
        order[j] = tmp;
    }
}

static int plan_build(const SynthTensor *t, size_t n, const SynthWriteOptions *o, ShardPlan *p,
                      SsError *err)
{
    memset(p, 0, sizeof *p);
    size_t cap = n ? n : 1;
    size_t *order = calloc(cap, sizeof *order);
    size_t *shard_of = calloc(cap, sizeof *shard_of);
    size_t *pos = calloc(cap + 1, sizeof *pos);
    p->members = calloc(cap, sizeof *p->members);
    p->start = calloc(cap + 2, sizeof *p->start);
    int rc = SS_OK;
    if (!order || !shard_of || !pos || !p->members || !p->start) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory planning %zu tensors", n);
        goto done;
    }
    order_fill(order, n, o);
    /* huggingface_hub's split_state_dict_into_shards_factory. */
    size_t nshards = 0, cur = SIZE_MAX;
    uint64_t cur_size = 0, max = o->shard_size ? o->shard_size : UINT64_MAX;
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        if (t[i].nbytes > max) {
            shard_of[i] = nshards++;
            continue;
        }
        if (cur != SIZE_MAX && cur_size + t[i].nbytes > max)
            cur = SIZE_MAX;
        if (cur == SIZE_MAX) {
            cur = nshards++;
            cur_size = 0;
        }
        shard_of[i] = cur;
        cur_size += t[i].nbytes; /* both terms <= max after the test above: no overflow */
    }
    if (nshards == 0) /* no tensors: still one (empty) file */
        nshards = 1;
    p->nshards = nshards;
    for (size_t k = 0; k < n; k++)
        p->start[shard_of[order[k]] + 1]++;
    for (size_t s = 0; s < nshards; s++)
        p->start[s + 1] += p->start[s];
    memcpy(pos, p->start, nshards * sizeof *pos);
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        p->members[pos[shard_of[i]]++] = i;
    }
    if (o->order == SYNTH_ORDER_HF)
        for (size_t s = 0; s < nshards; s++)
            qsort_r(p->members + p->start[s], p->start[s + 1] - p->start[s], sizeof(size_t),
                    cmp_by_name, (void *)t);
done:
    free(order);
    free(shard_of);
    free(pos);
    if (rc)
        plan_free(p);
    return rc;
}

/* ---- one file, generated chunk by chunk ---- */

typedef struct Piece {
    size_t tensor;
    uint64_t first, count; /* element range */
    size_t off, len;       /* bytes in the batch buffer */
} Piece;

typedef struct Batch {
    const SynthTensor *tensors;
    SynthFillFn fill;
    void *ctx;
    Piece *pieces;
    uint8_t *buf;
    size_t max_pieces;
} Batch;

static void batch_task(void *vb, size_t i, int worker)
{
    (void)worker;
    Batch *b = vb;
    const Piece *p = &b->pieces[i];
    b->fill(b->ctx, p->tensor, p->first, p->count, b->buf + p->off);
}

static int file_write(const char *path, const SynthTensor *t, const size_t *list, size_t n,
                      Batch *b, ThreadPool *pool, SsError *err)
{
    StTensorSpec *specs = calloc(n ? n : 1, sizeof *specs);
    if (!specs)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    for (size_t k = 0; k < n; k++) {
        const SynthTensor *x = &t[list[k]];
        specs[k] = (StTensorSpec){x->name, x->dtype, x->ndim, x->shape};
    }
    StMeta meta = {"format", "pt"};
    StWriter *w = NULL;
    int rc = st_writer_open(path, specs, n, &meta, 1, &w, err);
    free(specs);
    if (rc)
        return rc;
    size_t k = 0;
    uint64_t pos = 0;
    while (k < n) {
        size_t np = 0, used = 0;
        while (k < n && np < b->max_pieces) {
            const SynthTensor *x = &t[list[k]];
            if (pos == x->numel) {
                k++;
                pos = 0;
                continue;
            }
            size_t es = dtype_size(x->dtype);
            uint64_t take = x->numel - pos;
            if (take > SYNTH_CHUNK_BYTES / es)
                take = SYNTH_CHUNK_BYTES / es;
            used = (used + SYNTH_PIECE_ALIGN - 1) / SYNTH_PIECE_ALIGN * SYNTH_PIECE_ALIGN;
            b->pieces[np++] = (Piece){list[k], pos, take, used, (size_t)take * es};
            used += (size_t)take * es;
            pos += take;
        }
        if (np == 0)
            break;
        pool_run(pool, np, batch_task, b);
        for (size_t i = 0; i < np && rc == SS_OK; i++)
            rc = st_writer_put(w, b->buf + b->pieces[i].off, b->pieces[i].len, err);
        if (rc) {
            st_writer_abort(w);
            return rc;
        }
    }
    return st_writer_close(w, err);
}

/* ---- the index ---- */

static int index_write(const char *dir, const SynthTensor *t, const ShardPlan *p, SsError *err)
{
    json_t *root = json_object(), *meta = json_object(), *map = json_object();
    int bad = !root || !meta || !map;
    uint64_t total = 0;
    char file[64];
    for (size_t s = 0; s < p->nshards && !bad; s++) {
        snprintf(file, sizeof file, "model-%05zu-of-%05zu.safetensors", s + 1, p->nshards);
        for (size_t k = p->start[s]; k < p->start[s + 1] && !bad; k++) {
            const SynthTensor *x = &t[p->members[k]];
            bad |= json_object_set_new(map, x->name, json_string(file)) != 0;
            bad |= __builtin_add_overflow(total, x->nbytes, &total);
        }
    }
    if (!bad)
        bad |= json_object_set_new(meta, "total_size", json_integer((json_int_t)total)) != 0;
    if (!bad) {
        bad |= json_object_set(root, "metadata", meta) != 0;
        bad |= json_object_set(root, "weight_map", map) != 0;
    }
    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    json_decref(meta);
    json_decref(map);
    if (!text)
        return ss_err(err, SS_EOUTPUT, "%s/model.safetensors.index.json: out of memory", dir);
    size_t len = strlen(text);
    char *withnl = realloc(text, len + 2);
    if (!withnl) {
        free(text);
        return ss_err(err, SS_EOUTPUT, "%s/model.safetensors.index.json: out of memory", dir);
    }
    withnl[len] = '\n';
    withnl[len + 1] = '\0';
    char path[SYNTH_PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    int rc = synth_file_write_atomic(path, withnl, len + 1, err);
    free(withnl);
    return rc;
}

/* ---- the whole checkpoint ---- */

/* Creates dir and any missing parents (like mkdir -p). */
static int dir_prepare(const char *dir, SsError *err)
{
    char path[SYNTH_PATH_MAX];
    snprintf(path, sizeof path, "%s", dir);
    size_t n = strlen(path);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        struct stat st;
        if (stat(path, &st) != 0) {
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return ss_err(err, SS_EOUTPUT, "%s: cannot create folder: %s", path,
                              strerror(errno));
        } else if (!S_ISDIR(st.st_mode)) {
            return ss_err(err, SS_EOUTPUT, "%s: exists and is not a folder", path);
        }
        path[i] = saved;
    }
    return SS_OK;
}

/* Removes a file left by an earlier run that would contradict this one (an index beside a new
 * model.safetensors, or a model.safetensors beside a new index). */
static void stale_remove(const char *dir, const char *name)
{
    char path[SYNTH_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

int synth_checkpoint_write(const SynthTensor *tensors, size_t n, SynthFillFn fill, void *ctx,
                           const SynthWriteOptions *o, SsError *err)
{
    bool folder = synth_out_is_folder(o->out);
    if (!folder && o->shard_size)
        return ss_err(err, SS_EUSAGE, "--shard-size needs a folder output, not a .safetensors "
                      "file (%s)", o->out);
    if (strlen(o->out) > SYNTH_PATH_MAX - 64)
        return ss_err(err, SS_EUSAGE, "%s: output path too long", o->out);
    for (size_t i = 0; i < n; i++) {
        uint64_t nb;
        if (__builtin_mul_overflow(tensors[i].numel, (uint64_t)dtype_size(tensors[i].dtype), &nb)
            || nb != tensors[i].nbytes)
            return ss_err(err, SS_EINPUT, "tensor '%s': inconsistent size", tensors[i].name);
    }
    int rc = SS_OK;
    if (folder) {
        rc = dir_prepare(o->out, err);
    } else if (strrchr(o->out, '/') && strrchr(o->out, '/') != o->out) {
        char parent[SYNTH_PATH_MAX];
        snprintf(parent, sizeof parent, "%.*s", (int)(strrchr(o->out, '/') - o->out), o->out);
        rc = dir_prepare(parent, err);
    }
    if (rc)
        return rc;
    ShardPlan plan;
    rc = plan_build(tensors, n, o, &plan, err);
    if (rc)
        return rc;

    ThreadPool *pool = pool_create(o->threads);
    Batch b = {tensors, fill, ctx, NULL, NULL, 0};
    if (pool) {
        size_t np = (size_t)pool_size(pool) * 2;
        b.max_pieces = np < 4 ? 4 : np > 16 ? 16 : np;
        b.pieces = calloc(b.max_pieces, sizeof *b.pieces);
        b.buf = malloc(b.max_pieces * (SYNTH_CHUNK_BYTES + SYNTH_PIECE_ALIGN));
    }
    if (!pool || !b.pieces || !b.buf) {
        rc = ss_err(err, SS_EOUTPUT, "cannot start %d threads or allocate %zu chunk buffers",
                    o->threads, b.max_pieces);
        goto done;
    }
    char path[SYNTH_PATH_MAX];
    for (size_t s = 0; s < plan.nshards && rc == SS_OK; s++) {
        if (!folder)
            snprintf(path, sizeof path, "%s", o->out);
        else if (plan.nshards == 1)
            snprintf(path, sizeof path, "%s/model.safetensors", o->out);
        else
            snprintf(path, sizeof path, "%s/model-%05zu-of-%05zu.safetensors", o->out, s + 1,
                     plan.nshards);
        rc = file_write(path, tensors, plan.members + plan.start[s],
                        plan.start[s + 1] - plan.start[s], &b, pool, err);
    }
    if (rc == SS_OK && folder) {
        if (plan.nshards > 1) {
            rc = index_write(o->out, tensors, &plan, err);
            if (rc == SS_OK)
                stale_remove(o->out, "model.safetensors");
        } else {
            stale_remove(o->out, "model.safetensors.index.json");
        }
    }
done:
    free(b.buf);
    free(b.pieces);
    if (pool)
        pool_destroy(pool);
    plan_free(&plan);
    return rc;
}
