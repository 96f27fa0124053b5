/* Opening either kind of checkpoint behind one listing (see ckpt_source.h). */
#include "analyze/ckpt_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int open_run(const char *spec, int threads, CkptSource *s, SsError *err)
{
    int rc = run_open(spec, &s->run, err);
    if (rc == SS_EUSAGE) /* a malformed spec given as a checkpoint is bad input here */
        rc = err->code = SS_EINPUT;
    if (rc)
        return rc;
    s->run->threads = threads;
    size_t n = s->run->ntensors;
    s->run_tensors = calloc(n ? n : 1, sizeof *s->run_tensors);
    s->run_listing.tensors = calloc(n ? n : 1, sizeof *s->run_listing.tensors);
    if (!s->run_tensors || !s->run_listing.tensors)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory listing %zu tensors", spec, n);
    for (size_t i = 0; i < n; i++) {
        const RunTensor *r = &s->run->tensors[i];
        s->run_tensors[i] = (StTensor){.name = r->name, .dtype = r->dtype, .ndim = r->ndim,
                                       .shape = r->shape, .numel = r->numel, .nbytes = r->nbytes,
                                       .file = s->run->spec};
        s->run_listing.tensors[i] = &s->run_tensors[i];
    }
    s->run_listing.path = s->run->spec;
    s->run_listing.ntensors = n;
    s->run_listing.total_bytes = s->run->total_bytes;
    s->listing = &s->run_listing;
    return 0;
}

int ckpt_source_open(const char *spec, int threads, CkptSource **out, SsError *err)
{
    *out = NULL;
    CkptSource *s = calloc(1, sizeof *s);
    if (!s)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", spec);
    struct stat st;
    int rc;
    if (run_is_spec(spec) && stat(spec, &st) != 0) {
        rc = open_run(spec, threads, s, err);
    } else {
        rc = st_open(spec, &s->st, err);
        s->listing = s->st;
    }
    if (rc) {
        ckpt_source_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void ckpt_source_close(CkptSource *s)
{
    if (!s)
        return;
    st_close(s->st);
    run_close(s->run);
    free(s->run_tensors);
    free((void *)s->run_listing.tensors);
    free(s);
}

int ckpt_source_is_mapped(const CkptSource *s)
{
    return s->st != NULL;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

uint64_t ckpt_source_file_bytes(const CkptSource *s)
{
    uint64_t sum = 0;
    if (s->st) {
        for (size_t i = 0; i < s->st->nfiles; i++)
            sum += s->st->files[i]->file_size;
        return sum;
    }
    size_t n = strlen(s->run->dir) + sizeof "/" RUN_BASE_NAME;
    char *base = malloc(n);
    if (base) {
        snprintf(base, n, "%s/%s", s->run->dir, RUN_BASE_NAME);
        sum += file_size(base);
        free(base);
    }
    if (!s->run->is_base) {
        char *snap = run_snapshot_path(s->run->dir, s->run->step);
        sum += file_size(snap);
        free(snap);
    }
    return sum;
}

int ckpt_source_read(CkptSource *s, const StTensor *t, void *dst, SsError *err)
{
    if (s->st) {
        memcpy(dst, t->data, (size_t)t->nbytes);
        return 0;
    }
    size_t i = (size_t)(t - s->run_tensors);
    return run_tensor_read(s->run, i, dst, err);
}

int ckpt_source_bytes(CkptSource *s, const StTensor *t, const void **data, void **owned,
                      SsError *err)
{
    *owned = NULL;
    if (ckpt_source_is_mapped(s)) {
        *data = t->data;
        return 0;
    }
    *owned = malloc(t->nbytes ? (size_t)t->nbytes : 1);
    if (!*owned)
        return ss_err(err, SS_EOUTPUT, "tensor '%s': out of memory for %llu bytes", t->name,
                      (unsigned long long)t->nbytes);
    *data = *owned;
    return ckpt_source_read(s, t, *owned, err);
}
