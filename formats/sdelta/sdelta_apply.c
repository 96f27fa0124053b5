/* Whole-file operations on an open delta: checking every chunk checksum, computing the parent
 * hash of a candidate parent, verifying against a parent, and writing the child checkpoint
 * (ckpt-delta verify / apply). */
#include "formats/sdelta/sdelta.h"

#include <stdlib.h>
#include <string.h>

#include "formats/sdelta/sdelta_file.h"
#include "formats/sdelta/sdelta_format.h"
#include "formats/sdelta/sdelta_hash.h"
#include "formats/sdelta/sdelta_parallel.h"

/* The parent tensor of delta tensor i in parent, checked for dtype and shape; NULL and an
 * SS_EINCOMPAT error when absent or different. */
static const StTensor *parent_tensor(const SdeltaFile *f, size_t i, const StCheckpoint *parent,
                                     SsError *err)
{
    const SdeltaTensorInfo *t = &f->tensors[i];
    const StTensor *p = st_find(parent, t->name);
    if (!p) {
        ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': not in the parent %s", f->path, t->name,
               parent->path);
        return NULL;
    }
    bool same = p->dtype == t->dtype && p->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++)
        same = p->shape[d] == t->shape[d];
    if (!same) {
        ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': dtype or shape differs in the parent %s",
               f->path, t->name, parent->path);
        return NULL;
    }
    return p;
}

int sdelta_parent_hash_of(const SdeltaFile *f, const StCheckpoint *parent, uint64_t *out,
                          SsError *err)
{
    SdBuf b = {0};
    for (size_t i = 0; i < f->ntensors; i++) {
        if (!f->tensors[i].has_parent)
            continue;
        const StTensor *p = parent_tensor(f, i, parent, err);
        if (!p) {
            sdbuf_free(&b);
            return SS_EINCOMPAT;
        }
        sdbuf_u64(&b, sdelta_digest(f->version_minor, p->data, (size_t)p->nbytes));
    }
    if (b.oom) {
        sdbuf_free(&b);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", f->path);
    }
    *out = sdelta_hash64(b.p ? b.p : (uint8_t *)"", b.len, 0);
    sdbuf_free(&b);
    return 0;
}

typedef struct CheckJob {
    const SdeltaFile *f;
    const uint64_t *chunk_tensor; /* global chunk -> tensor */
    uint64_t bad;                 /* lowest failing global chunk, UINT64_MAX if none */
} CheckJob;

static void task_check(void *ctx, size_t c, int tid)
{
    (void)tid;
    CheckJob *j = ctx;
    const SdChunkRec *cr = &sdelta_impl(j->f)->chunks[c];
    if (cr->size && !SDELTA_CHECK_OK(sdelta_check32(j->f->version_minor,
                                                    sdelta_impl(j->f)->base + cr->offset,
                                                    (size_t)cr->size),
                                     cr->check)) {
        uint64_t cur = __atomic_load_n(&j->bad, __ATOMIC_RELAXED);
        while (c < cur && !__atomic_compare_exchange_n(&j->bad, &cur, c, false, __ATOMIC_RELAXED,
                                                       __ATOMIC_RELAXED))
            ;
    }
}

static int check_chunks(const SdeltaFile *f, int threads, SsError *err)
{
    const SdFileImpl *im = sdelta_impl(f);
    CheckJob j = {f, NULL, UINT64_MAX};
    sdelta_parallel_for((size_t)im->nchunks, threads, task_check, &j);
    if (j.bad == UINT64_MAX)
        return 0;
    for (size_t i = 0; i < f->ntensors; i++) {
        uint64_t first = im->recs[i].first_chunk;
        if (j.bad >= first && j.bad < first + f->tensors[i].nchunks)
            return ss_err(err, SS_EINPUT, "%s: tensor '%s': chunk %llu: checksum mismatch "
                          "(corrupt data)", f->path, f->tensors[i].name,
                          (unsigned long long)(j.bad - first));
    }
    return ss_err(err, SS_EINPUT, "%s: chunk checksum mismatch", f->path);
}

int sdelta_verify(const SdeltaFile *f, const StCheckpoint *parent, int threads, SsError *err)
{
    int rc = check_chunks(f, threads, err);
    if (rc || !parent)
        return rc;
    uint64_t h;
    rc = sdelta_parent_hash_of(f, parent, &h, err);
    if (rc)
        return rc;
    if (h != f->parent_hash)
        return ss_err(err, SS_EINCOMPAT,
                      "%s: wrong parent: %s is not the parent '%s' this delta was encoded against",
                      f->path, parent->path, f->parent_name);
    for (size_t i = 0; i < f->ntensors; i++) {
        const SdeltaTensorInfo *t = &f->tensors[i];
        const void *pd = NULL;
        if (t->has_parent) {
            const StTensor *p = parent_tensor(f, i, parent, err);
            if (!p)
                return SS_EINCOMPAT;
            pd = p->data;
        }
        void *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
        if (!buf)
            return ss_err(err, SS_EOUTPUT, "%s: tensor '%s': out of memory", f->path, t->name);
        rc = sdelta_decode_tensor(f, i, pd, buf, threads, err);
        free(buf);
        if (rc)
            return rc;
    }
    return 0;
}

int sdelta_apply(const SdeltaFile *f, const StCheckpoint *parent, const char *out_path,
                 int threads, SsError *err)
{
    if (!f || !parent || !out_path)
        return ss_err(err, SS_EUSAGE, "sdelta_apply: NULL argument");
    StTensorSpec *specs = calloc(f->ntensors + 1, sizeof *specs);
    const StTensor **ps = calloc(f->ntensors + 1, sizeof *ps);
    uint64_t maxb = 1;
    int rc = 0;
    if (!specs || !ps) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", f->path);
        goto out;
    }
    for (size_t i = 0; i < f->ntensors; i++) {
        const SdeltaTensorInfo *t = &f->tensors[i];
        specs[i] = (StTensorSpec){t->name, t->dtype, t->ndim, t->shape};
        if (t->has_parent && !(ps[i] = parent_tensor(f, i, parent, err))) {
            rc = SS_EINCOMPAT;
            goto out;
        }
        if (t->nbytes > maxb)
            maxb = t->nbytes;
    }
    StWriter *w = NULL;
    rc = st_writer_open(out_path, specs, f->ntensors, f->meta, f->nmeta, &w, err);
    if (rc)
        goto out;
    void *buf = malloc((size_t)maxb);
    if (!buf) {
        st_writer_abort(w);
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", f->path);
        goto out;
    }
    for (size_t i = 0; i < f->ntensors && !rc; i++) {
        rc = sdelta_decode_tensor(f, i, ps[i] ? ps[i]->data : NULL, buf, threads, err);
        if (!rc)
            rc = st_writer_put(w, buf, (size_t)f->tensors[i].nbytes, err);
    }
    free(buf);
    if (rc)
        st_writer_abort(w);
    else
        rc = st_writer_close(w, err);
out:
    free(specs);
    free(ps);
    return rc;
}
