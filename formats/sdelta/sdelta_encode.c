/* Writing a .sdelta file (sdelta_write, sdelta_write_tensors; the layout is docs/sdelta-format.md).
 *
 * 1. Match each child tensor with its parent, hash both (XXH64).
 * 2. Pass 1 over chunks: count changes; chunks with few changes contribute token statistics to
 *    per-dtype shared tables, so that small chunks need not carry tables of their own.
 * 3. Pass 2: encode chunks in parallel batches and write their payloads in file order to
 *    "<out>.tmp.<pid>", then the zstd-compressed header and the footer; fsync, rename, fsync the
 *    folder. Any failure removes the temporary file. */
#include "formats/sdelta/sdelta.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "formats/sdelta/sdelta_chunk.h"
#include "formats/sdelta/sdelta_format.h"
#include "formats/sdelta/sdelta_hash.h"
#include "formats/sdelta/sdelta_parallel.h"

#define SHARED_MAX_CHANGES 16384 /* chunks with fewer changes feed the shared tables */

typedef struct EncTensor {
    const SdeltaTensorSrc *src;
    const uint8_t *parent; /* NULL: coded against zeros */
    uint64_t numel, nbytes;
    unsigned width;
    bool is_float;
    uint64_t nchunks, first_chunk;
    uint64_t parent_h64, child_h64;
} EncTensor;

typedef struct EncChunk {
    uint32_t tensor;
    uint8_t mode;
    uint64_t index, size, nchanged;
    uint32_t check;
} EncChunk;

typedef struct SharedAcc {
    uint64_t gap[SDELTA_NSYMS];
    uint64_t val[SDELTA_XFORM_COUNT][SDELTA_NSYMS];
    bool used;
} SharedAcc;

typedef struct Enc {
    const char *path;
    SdeltaWriteOptions opt;
    EncTensor *t;
    size_t nt;
    EncChunk *c;
    size_t nc;
    int nthreads;
    SdChunkScratch *scr;     /* per thread */
    SharedAcc (*acc)[DT_COUNT]; /* per thread */
    SdRansTable *tables;
    size_t ntables;
    SdSharedTables shared[DT_COUNT];
    bool has_shared[DT_COUNT];
    SdBuf *payloads; /* per chunk of the current batch */
    size_t batch_first;
    int failed;      /* set by a worker on allocation failure */
} Enc;

void sdelta_write_options_init(SdeltaWriteOptions *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->force_mode = -1;
    opt->force_xform = -1;
}

static SdChunkShape chunk_shape(const Enc *e, const EncChunk *c)
{
    const EncTensor *t = &e->t[c->tensor];
    uint64_t ce = e->opt.chunk_elems, first = c->index * ce;
    uint64_t m = t->numel - first < ce ? t->numel - first : ce;
    SdChunkShape sh = {(size_t)m, t->width, t->is_float};
    return sh;
}

static const uint8_t *chunk_ptr(const Enc *e, const EncChunk *c, const uint8_t *base)
{
    return base ? base + c->index * e->opt.chunk_elems * e->t[c->tensor].width : NULL;
}

/* ---- tasks ---- */

static void task_hash(void *ctx, size_t i, int tid)
{
    (void)tid;
    Enc *e = ctx;
    EncTensor *t = &e->t[i];
    unsigned minor = e->opt.format_minor == 1 ? 1u : SDELTA_VERSION_MINOR;
    t->child_h64 = sdelta_digest(minor, t->src->data ? t->src->data : "", (size_t)t->nbytes);
    if (t->parent)
        t->parent_h64 = sdelta_digest(minor, t->parent, (size_t)t->nbytes);
}

static void task_pass1(void *ctx, size_t i, int tid)
{
    Enc *e = ctx;
    EncChunk *c = &e->c[i];
    const EncTensor *t = &e->t[c->tensor];
    SdChunkShape sh = chunk_shape(e, c);
    const uint8_t *p = chunk_ptr(e, c, t->parent), *ch = chunk_ptr(e, c, t->src->data);
    uint64_t k = sdelta_chunk_count_changes(&sh, p, ch);
    if (k == 0 || k >= SHARED_MAX_CHANGES)
        return;
    SdChunkStats st;
    if (sdelta_chunk_stats(&sh, p, ch, &e->scr[tid], &st)) {
        e->failed = 1;
        return;
    }
    SharedAcc *a = &e->acc[tid][t->src->dtype];
    a->used = true;
    for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
        a->gap[s] += st.gap[s];
        for (int x = 0; x < SDELTA_XFORM_COUNT; x++)
            a->val[x][s] += st.val[x][s];
    }
}

static void task_encode(void *ctx, size_t j, int tid)
{
    Enc *e = ctx;
    EncChunk *c = &e->c[e->batch_first + j];
    const EncTensor *t = &e->t[c->tensor];
    SdChunkShape sh = chunk_shape(e, c);
    SdChunkEncodeOpts o = {e->opt.format_minor == 1 && e->opt.force_mode < 0 ? SDELTA_FORCE_V11
                                                                              : e->opt.force_mode,
                           e->opt.force_xform, e->opt.zstd_level > 0 ? e->opt.zstd_level : 3};
    SdBuf *out = &e->payloads[j];
    out->len = 0;
    const SdSharedTables *sh_t = e->has_shared[t->src->dtype] ? &e->shared[t->src->dtype] : NULL;
    if (sdelta_encode_chunk(&sh, chunk_ptr(e, c, t->parent), chunk_ptr(e, c, t->src->data), sh_t,
                            &o, &e->scr[tid], &c->mode, &c->nchanged, out)) {
        e->failed = 1;
        return;
    }
    c->size = out->len;
    c->check = out->len ? sdelta_check32(e->opt.format_minor == 1 ? 1u : SDELTA_VERSION_MINOR,
                                         out->p, out->len)
                        : 0;
}

/* ---- output ---- */

static int write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void build_header(const Enc *e, uint64_t parent_hash, SdBuf *h)
{
    sdbuf_varint(h, e->opt.step);
    sdbuf_str(h, e->opt.parent_name);
    sdbuf_u64(h, parent_hash);
    sdbuf_varint(h, e->opt.chunk_elems);
    sdbuf_varint(h, e->opt.nmeta);
    for (size_t i = 0; i < e->opt.nmeta; i++) {
        sdbuf_str(h, e->opt.meta[i].key);
        sdbuf_str(h, e->opt.meta[i].value);
    }
    sdbuf_varint(h, e->ntables);
    for (size_t i = 0; i < e->ntables; i++)
        sdelta_rans_table_write(h, &e->tables[i]);
    sdbuf_varint(h, e->nt);
    for (size_t i = 0; i < e->nt; i++) {
        const EncTensor *t = &e->t[i];
        sdbuf_str(h, t->src->name);
        sdbuf_str(h, dtype_name(t->src->dtype));
        sdbuf_varint(h, (uint64_t)t->src->ndim);
        for (int d = 0; d < t->src->ndim; d++)
            sdbuf_varint(h, t->src->shape[d]);
        sdbuf_u8(h, t->parent ? 1 : 0);
        if (t->parent)
            sdbuf_u32(h, (uint32_t)t->parent_h64);
        sdbuf_u32(h, (uint32_t)t->child_h64);
        for (uint64_t k = 0; k < t->nchunks; k++) {
            const EncChunk *c = &e->c[t->first_chunk + k];
            sdbuf_u8(h, c->mode);
            if (c->mode != SDELTA_MODE_UNCHANGED) {
                sdbuf_varint(h, c->size);
                sdbuf_u32(h, c->check);
                sdbuf_varint(h, c->nchanged);
            }
        }
    }
}

static void build_shared_tables(Enc *e)
{
    for (int d = 0; d < DT_COUNT; d++) {
        SharedAcc sum;
        memset(&sum, 0, sizeof sum);
        for (int k = 0; k < e->nthreads; k++) {
            const SharedAcc *a = &e->acc[k][d];
            if (!a->used)
                continue;
            sum.used = true;
            for (unsigned s = 0; s < SDELTA_NSYMS; s++) {
                sum.gap[s] += a->gap[s];
                for (int x = 0; x < SDELTA_XFORM_COUNT; x++)
                    sum.val[x][s] += a->val[x][s];
            }
        }
        if (!sum.used)
            continue;
        const uint64_t *h[SDELTA_ROLE_COUNT] = {sum.gap, sum.val[SDELTA_XFORM_XOR],
                                                sum.val[SDELTA_XFORM_SUB]};
        for (int r = 0; r < SDELTA_ROLE_COUNT; r++) {
            SdRansTable *t = &e->tables[e->ntables];
            if (!sdelta_rans_build(t, h[r])) {
                e->shared[d].table[r] = NULL;
                continue;
            }
            e->shared[d].table[r] = t;
            e->shared[d].index[r] = (uint32_t)e->ntables;
            e->ntables++;
        }
        e->has_shared[d] = true;
    }
}

static int cmp_name(const void *a, const void *b)
{
    const SdeltaTensorSrc *x = *(const SdeltaTensorSrc *const *)a,
                          *y = *(const SdeltaTensorSrc *const *)b;
    return strcmp(x->name, y->name);
}

static const SdeltaTensorSrc *find_src(const SdeltaTensorSrc **sorted, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(sorted[mid]->name, name);
        if (c == 0)
            return sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static bool same_shape(const SdeltaTensorSrc *a, const SdeltaTensorSrc *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

static bool valid_src(const SdeltaTensorSrc *s, uint64_t *numel, uint64_t *nbytes)
{
    if (!s->name || strlen(s->name) == 0 || (unsigned)s->dtype >= DT_COUNT || s->ndim < 0 ||
        s->ndim > SDELTA_MAX_NDIM || (s->ndim > 0 && !s->shape))
        return false;
    uint64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        if (!sdelta_mul_ok(n, s->shape[d], &n))
            return false;
    if (!sdelta_mul_ok(n, dtype_size(s->dtype), nbytes) || *nbytes > (uint64_t)SIZE_MAX / 2)
        return false;
    *numel = n;
    return *nbytes == 0 || s->data != NULL;
}

static void enc_free(Enc *e)
{
    if (e->scr)
        for (int k = 0; k < e->nthreads; k++)
            sdelta_chunk_scratch_free(&e->scr[k]);
    free(e->scr);
    free(e->acc);
    free(e->t);
    free(e->c);
    free(e->tables);
}

/* Prepares tensors and chunks: validation, parent matching. */
static int enc_prepare(Enc *e, const SdeltaTensorSrc *parent, size_t nparent,
                       const SdeltaTensorSrc *child, size_t nchild, SsError *err)
{
    const char *path = e->path;
    int rc = 0;
    const SdeltaTensorSrc **ps = malloc((nparent + 1) * sizeof *ps);
    const SdeltaTensorSrc **cs = malloc((nchild + 1) * sizeof *cs);
    e->t = calloc(nchild + 1, sizeof *e->t);
    if (!ps || !cs || !e->t) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < nparent; i++)
        ps[i] = &parent[i];
    for (size_t i = 0; i < nchild; i++)
        cs[i] = &child[i];
    qsort(ps, nparent, sizeof *ps, cmp_name);
    qsort(cs, nchild, sizeof *cs, cmp_name);
    for (size_t i = 1; i < nchild; i++)
        if (strcmp(cs[i - 1]->name, cs[i]->name) == 0) {
            rc = ss_err(err, SS_EUSAGE, "%s: tensor '%s': duplicate name in the child", path,
                        cs[i]->name);
            goto out;
        }
    e->nt = nchild;
    uint64_t nchunks = 0;
    for (size_t i = 0; i < nchild; i++) {
        EncTensor *t = &e->t[i];
        t->src = &child[i];
        if (!valid_src(t->src, &t->numel, &t->nbytes)) {
            rc = ss_err(err, SS_EUSAGE, "%s: tensor '%s': invalid dtype, shape or data", path,
                        child[i].name ? child[i].name : "?");
            goto out;
        }
        t->width = (unsigned)dtype_size(t->src->dtype);
        t->is_float = dtype_is_float(t->src->dtype);
        const SdeltaTensorSrc *p = find_src(ps, nparent, t->src->name);
        uint64_t pn, pb;
        if (p && same_shape(p, t->src) && valid_src(p, &pn, &pb))
            t->parent = t->nbytes ? p->data : (const uint8_t *)"";
        t->nchunks = (t->numel + e->opt.chunk_elems - 1) / e->opt.chunk_elems;
        t->first_chunk = nchunks;
        nchunks += t->nchunks;
    }
    e->c = calloc(nchunks + 1, sizeof *e->c);
    if (!e->c) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
        goto out;
    }
    e->nc = (size_t)nchunks;
    for (size_t i = 0; i < nchild; i++)
        for (uint64_t k = 0; k < e->t[i].nchunks; k++) {
            EncChunk *c = &e->c[e->t[i].first_chunk + k];
            c->tensor = (uint32_t)i;
            c->index = k;
        }
out:
    free(ps);
    free(cs);
    return rc;
}

int sdelta_write_tensors(const char *out_path, const SdeltaTensorSrc *parent, size_t nparent,
                         const SdeltaTensorSrc *child, size_t nchild,
                         const SdeltaWriteOptions *opt, SsError *err)
{
    if (!out_path || (nparent && !parent) || (nchild && !child))
        return ss_err(err, SS_EUSAGE, "sdelta_write: NULL argument");
    Enc e;
    memset(&e, 0, sizeof e);
    e.path = out_path;
    if (opt)
        e.opt = *opt;
    else
        sdelta_write_options_init(&e.opt);
    if (!e.opt.parent_name)
        return ss_err(err, SS_EUSAGE, "%s: no parent name given", out_path);
    if (e.opt.chunk_elems == 0)
        e.opt.chunk_elems = SDELTA_DEFAULT_CHUNK_ELEMS;
    if (e.opt.chunk_elems > SDELTA_MAX_CHUNK_ELEMS)
        return ss_err(err, SS_EUSAGE, "%s: chunk size %llu above the limit %llu", out_path,
                      (unsigned long long)e.opt.chunk_elems,
                      (unsigned long long)SDELTA_MAX_CHUNK_ELEMS);
    if (e.opt.force_mode == 0)
        e.opt.force_mode = -1;
    if (e.opt.format_minor < 0 || e.opt.format_minor > (int)SDELTA_VERSION_MINOR ||
        (e.opt.format_minor == 1 && e.opt.force_mode == SDELTA_MODE_ESCAPE))
        return ss_err(err, SS_EUSAGE, "%s: cannot write format 1.%d (this writer: 1.1 or 1.%u%s)",
                      out_path, e.opt.format_minor, SDELTA_VERSION_MINOR,
                      e.opt.format_minor == 1 ? ", escape mode from 1.2" : "");
    for (size_t i = 0; i < e.opt.nmeta; i++)
        if (!e.opt.meta[i].key || !e.opt.meta[i].value)
            return ss_err(err, SS_EUSAGE, "%s: metadata entry %zu is NULL", out_path, i);

    size_t batch = 0;
    int rc = enc_prepare(&e, parent, nparent, child, nchild, err);
    char *tmp = NULL;
    int fd = -1;
    SdBuf header = {0};
    uint8_t *zheader = NULL;
    if (rc)
        goto fail;
    e.nthreads = sdelta_threads_for(e.opt.threads, e.nc > e.nt ? e.nc : e.nt);
    e.scr = calloc((size_t)e.nthreads, sizeof *e.scr);
    e.acc = calloc((size_t)e.nthreads, sizeof *e.acc);
    e.tables = calloc(DT_COUNT * SDELTA_ROLE_COUNT, sizeof *e.tables);
    batch = (size_t)e.nthreads * 4;
    e.payloads = calloc(batch, sizeof *e.payloads);
    if (!e.scr || !e.acc || !e.tables || !e.payloads) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", out_path);
        goto fail;
    }

    sdelta_parallel_for(e.nt, e.nthreads, task_hash, &e);
    sdelta_parallel_for(e.nc, e.nthreads, task_pass1, &e);
    if (e.failed) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", out_path);
        goto fail;
    }
    build_shared_tables(&e);

    if (asprintf(&tmp, "%s.tmp.%ld", out_path, (long)getpid()) < 0) {
        tmp = NULL;
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", out_path);
        goto fail;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot create: %s", tmp, strerror(errno));
        goto fail;
    }
    uint8_t pre[SDELTA_PREAMBLE_BYTES];
    memcpy(pre, SDELTA_MAGIC, 8);
    sdelta_wr16(pre + 8, SDELTA_VERSION_MAJOR);
    sdelta_wr16(pre + 10, e.opt.format_minor == 1 ? 1u : SDELTA_VERSION_MINOR);
    sdelta_wr32(pre + 12, 0);
    if (write_all(fd, pre, sizeof pre))
        goto io_fail;
    uint64_t offset = SDELTA_PREAMBLE_BYTES;
    for (e.batch_first = 0; e.batch_first < e.nc; e.batch_first += batch) {
        size_t nb = e.nc - e.batch_first < batch ? e.nc - e.batch_first : batch;
        sdelta_parallel_for(nb, e.nthreads, task_encode, &e);
        if (e.failed) {
            rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", out_path);
            goto fail;
        }
        for (size_t j = 0; j < nb; j++) {
            if (write_all(fd, e.payloads[j].p, e.payloads[j].len))
                goto io_fail;
            offset += e.payloads[j].len;
        }
    }

    /* the parent hash: XXH64 over the parents' XXH64 digests, in table order */
    SdBuf ph = {0};
    for (size_t i = 0; i < e.nt; i++)
        if (e.t[i].parent)
            sdbuf_u64(&ph, e.t[i].parent_h64);
    uint64_t parent_hash = sdelta_hash64(ph.p ? ph.p : (uint8_t *)"", ph.len, 0);
    bool ph_oom = ph.oom;
    sdbuf_free(&ph);
    build_header(&e, parent_hash, &header);
    if (header.oom || ph_oom) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", out_path);
        goto fail;
    }
    size_t zcap = ZSTD_compressBound(header.len);
    zheader = malloc(zcap);
    if (!zheader) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", out_path);
        goto fail;
    }
    size_t zlen = ZSTD_compress(zheader, zcap, header.p, header.len, 19);
    if (ZSTD_isError(zlen)) {
        rc = ss_err(err, SS_EOUTPUT, "%s: zstd: %s", out_path, ZSTD_getErrorName(zlen));
        goto fail;
    }
    uint8_t foot[SDELTA_FOOTER_BYTES];
    sdelta_wr64(foot, offset);
    sdelta_wr64(foot + 8, zlen);
    sdelta_wr64(foot + 16, header.len);
    sdelta_wr64(foot + 24, sdelta_hash64(zheader, zlen, 0));
    uint8_t hashed[SDELTA_PREAMBLE_BYTES + 32];
    memcpy(hashed, pre, SDELTA_PREAMBLE_BYTES);
    memcpy(hashed + SDELTA_PREAMBLE_BYTES, foot, 32);
    sdelta_wr64(foot + 32, sdelta_hash64(hashed, sizeof hashed, 0));
    memcpy(foot + 40, SDELTA_END_MAGIC, 8);
    if (write_all(fd, zheader, zlen) || write_all(fd, foot, sizeof foot))
        goto io_fail;
    if (fsync(fd) != 0)
        goto io_fail;
    if (close(fd) != 0) {
        fd = -1;
        goto io_fail;
    }
    fd = -1;
    if (rename(tmp, out_path) != 0) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot rename %s into place: %s", out_path, tmp,
                    strerror(errno));
        goto fail;
    }
    /* make the rename durable */
    char *dcopy = strdup(out_path);
    if (dcopy) {
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dcopy);
    }
    free(tmp);
    tmp = NULL;
    rc = 0;
    goto done;
io_fail:
    rc = ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", tmp, strerror(errno));
fail:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
done:
    free(tmp);
    free(zheader);
    sdbuf_free(&header);
    if (e.payloads)
        for (size_t j = 0; j < batch; j++)
            sdbuf_free(&e.payloads[j]);
    free(e.payloads);
    enc_free(&e);
    return rc;
}

int sdelta_write(const char *out_path, const StCheckpoint *parent, const SdeltaTensorSrc *child,
                 size_t nchild, const SdeltaWriteOptions *opt, SsError *err)
{
    if (!parent)
        return ss_err(err, SS_EUSAGE, "sdelta_write: NULL parent");
    SdeltaTensorSrc *ps = calloc(parent->ntensors + 1, sizeof *ps);
    SdeltaWriteOptions o;
    if (opt)
        o = *opt;
    else
        sdelta_write_options_init(&o);
    char *pcopy = strdup(parent->path ? parent->path : "parent");
    if (!ps || !pcopy) {
        free(ps);
        free(pcopy);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", out_path ? out_path : "?");
    }
    for (size_t i = 0; i < parent->ntensors; i++) {
        const StTensor *t = parent->tensors[i];
        ps[i] = (SdeltaTensorSrc){t->name, t->dtype, t->ndim, t->shape, t->data};
    }
    if (!o.parent_name) {
        /* a trailing slash (a model folder) would make basename empty */
        size_t n = strlen(pcopy);
        while (n > 1 && pcopy[n - 1] == '/')
            pcopy[--n] = '\0';
        o.parent_name = basename(pcopy);
    }
    int rc = sdelta_write_tensors(out_path, ps, parent->ntensors, child, nchild, &o, err);
    free(ps);
    free(pcopy);
    return rc;
}
