/* Opening a checkpoint: one .safetensors file, a folder with model.safetensors.index.json (handed
 * to safetensors_index.c), or a folder with model.safetensors; the name-sorted tensor table that
 * st_find searches; and freeing it all. */
#include "formats/st_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ST_INDEX_NAME "model.safetensors.index.json"
#define ST_SINGLE_NAME "model.safetensors"

static int ckpt_cmp_name(const void *a, const void *b)
{
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    return strcmp(x->name, y->name);
}

/* The shard's file name for messages: the part after the last '/'. */
static const char *ckpt_base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int st_checkpoint_collect(StCheckpoint *ck, SsError *err)
{
    size_t n = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < ck->nfiles; i++) {
        const StFile *f = ck->files[i];
        if (__builtin_add_overflow(n, f->ntensors, &n))
            return ss_err(err, SS_EINPUT, "%s: too many tensors", ck->path);
        for (size_t j = 0; j < f->ntensors; j++)
            if (__builtin_add_overflow(total, f->tensors[j].nbytes, &total))
                return ss_err(err, SS_EINPUT, "%s: total tensor bytes overflow 64 bits",
                              ck->path);
    }
    const StTensor **list = calloc(n ? n : 1, sizeof *list);
    if (!list)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", ck->path);
    size_t k = 0;
    for (size_t i = 0; i < ck->nfiles; i++)
        for (size_t j = 0; j < ck->files[i]->ntensors; j++)
            list[k++] = &ck->files[i]->tensors[j];
    qsort(list, n, sizeof *list, ckpt_cmp_name);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(list[i - 1]->name, list[i]->name) == 0) {
            char q[200];
            int rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': found in two files, %s and %s",
                            ck->path, st_quote(q, sizeof q, list[i]->name),
                            ckpt_base_name(list[i - 1]->file), ckpt_base_name(list[i]->file));
            free(list);
            return rc;
        }
    }
    ck->tensors = list;
    ck->ntensors = n;
    ck->total_bytes = total;
    return 0;
}

/* Opens file into ck as its only file. */
static int ckpt_open_single(StCheckpoint *ck, const char *file, SsError *err)
{
    ck->files = calloc(1, sizeof *ck->files);
    if (!ck->files)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", file);
    int rc = st_file_open(file, &ck->files[0], err);
    if (rc)
        return rc;
    ck->nfiles = 1;
    return st_checkpoint_collect(ck, err);
}

/* "<dir>/<name>" without doubling a trailing slash; NULL when out of memory. */
static char *ckpt_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    const char *sep = (n && dir[n - 1] == '/') ? "" : "/";
    char *s = NULL;
    if (asprintf(&s, "%s%s%s", dir, sep, name) < 0)
        return NULL;
    return s;
}

/* 1 when path exists (as anything), 0 when it does not, negative with err filled otherwise. */
static int ckpt_exists(const char *path, SsError *err)
{
    struct stat sb;
    if (stat(path, &sb) == 0)
        return 1;
    if (errno == ENOENT)
        return 0;
    return ss_err(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
}

static int ckpt_open_folder(StCheckpoint *ck, const char *dir, SsError *err)
{
    char *index = ckpt_join(dir, ST_INDEX_NAME);
    char *single = ckpt_join(dir, ST_SINGLE_NAME);
    int rc;
    if (!index || !single) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
        goto done;
    }
    rc = ckpt_exists(index, err);
    if (rc > 0) {
        rc = st_index_open(dir, index, ck, err);
        goto done;
    }
    if (rc < 0)
        goto done;
    rc = ckpt_exists(single, err);
    if (rc > 0) {
        rc = ckpt_open_single(ck, single, err);
        goto done;
    }
    if (rc == 0)
        rc = ss_err(err, SS_EINPUT, "%s: folder holds neither %s nor %s", dir, ST_INDEX_NAME,
                    ST_SINGLE_NAME);
done:
    free(index);
    free(single);
    return rc;
}

int st_open(const char *path, StCheckpoint **out, SsError *err)
{
    *out = NULL;
    StCheckpoint *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->path = strdup(path))) {
        free(ck);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    }
    struct stat sb;
    int rc;
    if (stat(path, &sb) != 0)
        rc = ss_err(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    else if (S_ISDIR(sb.st_mode))
        rc = ckpt_open_folder(ck, path, err);
    else
        rc = ckpt_open_single(ck, path, err);
    if (rc) {
        st_close(ck);
        return rc;
    }
    *out = ck;
    return 0;
}

void st_close(StCheckpoint *ck)
{
    if (!ck)
        return;
    for (size_t i = 0; i < ck->nfiles; i++)
        st_file_close(ck->files[i]);
    free(ck->files);
    free(ck->tensors);
    free(ck->path);
    free(ck);
}

const StTensor *st_find(const StCheckpoint *ck, const char *name)
{
    size_t lo = 0, hi = ck->ntensors; /* search [lo, hi) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ck->tensors[mid]->name, name);
        if (c == 0)
            return ck->tensors[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
