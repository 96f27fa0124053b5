/* Run folders (run.h): resolving RUN@STEP specs, opening the base and the chain of deltas that
 * leads to a step, materializing tensors one at a time, and writing snapshots. */
#include "formats/sdelta/run.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/safetensors.h"

typedef struct RunImpl {
    StCheckpoint *base;
    SdeltaFile **levels; /* levels[0]: the requested snapshot; levels[k + 1]: parent of levels[k];
                            the last level's parent is the base */
    size_t nlevels;
    RunTensor *tensors;
} RunImpl;

/* ---- specs and snapshot names ---- */

static bool all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (!all_digits(s, n))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
            return false;
    *out = v;
    return true;
}

bool run_is_spec(const char *s)
{
    if (!s)
        return false;
    const char *at = strrchr(s, '@');
    if (!at || at == s)
        return false;
    const char *w = at + 1;
    return strcmp(w, "base") == 0 || strcmp(w, "latest") == 0 || all_digits(w, strlen(w));
}

/* Step of a file name "step-<digits>.sdelta", or false. */
static bool snapshot_step(const char *name, uint64_t *step)
{
    size_t n = strlen(name);
    if (n < 13 || strncmp(name, "step-", 5) != 0 || strcmp(name + n - 7, ".sdelta") != 0)
        return false;
    return parse_u64(name + 5, n - 12, step);
}

char *run_snapshot_path(const char *dir, uint64_t step)
{
    char *p;
    if (asprintf(&p, "%s/%s/step-%06llu.sdelta", dir, RUN_SNAPSHOT_DIR, (unsigned long long)step) < 0)
        return NULL;
    return p;
}

typedef struct Snap {
    uint64_t step;
    char *name;
} Snap;

static int cmp_snap(const void *a, const void *b)
{
    uint64_t x = ((const Snap *)a)->step, y = ((const Snap *)b)->step;
    return x < y ? -1 : x > y;
}

static void free_snaps(Snap *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].name);
    free(s);
}

/* The snapshots of dir, sorted by step; duplicates (step-1 and step-000001) are an error. */
static int list_snaps(const char *dir, Snap **out, size_t *nout, SsError *err)
{
    *out = NULL;
    *nout = 0;
    char *sd;
    if (asprintf(&sd, "%s/%s", dir, RUN_SNAPSHOT_DIR) < 0)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
    DIR *d = opendir(sd);
    if (!d) {
        int e = errno;
        free(sd);
        if (e == ENOENT)
            return 0;
        return ss_err(err, SS_EINPUT, "%s/%s: cannot list: %s", dir, RUN_SNAPSHOT_DIR, strerror(e));
    }
    Snap *s = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t step;
        if (!snapshot_step(de->d_name, &step))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            Snap *ns = realloc(s, cap * sizeof *ns);
            if (!ns) {
                rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
                break;
            }
            s = ns;
        }
        s[n].step = step;
        s[n].name = strdup(de->d_name);
        if (!s[n].name) {
            rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
            break;
        }
        n++;
    }
    closedir(d);
    free(sd);
    if (!rc && n > 0) {
        qsort(s, n, sizeof *s, cmp_snap);
        for (size_t i = 1; i < n; i++)
            if (s[i].step == s[i - 1].step) {
                rc = ss_err(err, SS_EINPUT, "%s/%s: two snapshots of step %llu: %s and %s", dir,
                            RUN_SNAPSHOT_DIR, (unsigned long long)s[i].step, s[i - 1].name,
                            s[i].name);
                break;
            }
    }
    if (rc) {
        free_snaps(s, n);
        return rc;
    }
    *out = s;
    *nout = n;
    return 0;
}

int run_list_steps(const char *dir, uint64_t **steps, size_t *n, SsError *err)
{
    Snap *s;
    size_t ns;
    int rc = list_snaps(dir, &s, &ns, err);
    if (rc)
        return rc;
    *steps = NULL;
    *n = ns;
    if (ns) {
        *steps = malloc(ns * sizeof **steps);
        if (!*steps) {
            free_snaps(s, ns);
            return ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
        }
        for (size_t i = 0; i < ns; i++)
            (*steps)[i] = s[i].step;
    }
    free_snaps(s, ns);
    return 0;
}

/* ---- opening ---- */

void run_close(RunCheckpoint *rc)
{
    if (!rc)
        return;
    RunImpl *im = rc->impl_;
    if (im) {
        for (size_t i = 0; i < im->nlevels; i++)
            sdelta_close(im->levels[i]);
        free(im->levels);
        st_close(im->base);
        free(im->tensors);
        free(im);
    }
    free(rc->spec);
    free(rc->dir);
    free(rc);
}

static int cmp_run_tensor(const void *a, const void *b)
{
    return strcmp(((const RunTensor *)a)->name, ((const RunTensor *)b)->name);
}

/* Opens the snapshot named name (of step step) and, recursively, its parents. */
static int open_chain(RunCheckpoint *rc, RunImpl *im, const Snap *snaps, size_t nsnaps,
                      const char *name, uint64_t step, SsError *err)
{
    for (;;) {
        if (im->nlevels >= nsnaps)
            return ss_err(err, SS_EINPUT, "%s: snapshot chain longer than the run", rc->dir);
        char *path;
        if (asprintf(&path, "%s/%s/%s", rc->dir, RUN_SNAPSHOT_DIR, name) < 0)
            return ss_err(err, SS_EOUTPUT, "%s: out of memory", rc->dir);
        SdeltaFile *f;
        int r = sdelta_open(path, &f, err);
        free(path);
        if (r)
            return r;
        im->levels[im->nlevels++] = f;
        if (f->step != step)
            return ss_err(err, SS_EINPUT, "%s: records step %llu, its name says %llu", f->path,
                          (unsigned long long)f->step, (unsigned long long)step);
        if (strcmp(f->parent_name, RUN_BASE_NAME) == 0)
            return 0;
        uint64_t pstep;
        const Snap *p = NULL;
        if (snapshot_step(f->parent_name, &pstep))
            for (size_t i = 0; i < nsnaps; i++)
                if (strcmp(snaps[i].name, f->parent_name) == 0)
                    p = &snaps[i];
        if (!p)
            return ss_err(err, SS_EINPUT, "%s: its parent '%s' is not in the run", f->path,
                          f->parent_name);
        if (pstep >= step)
            return ss_err(err, SS_EINPUT, "%s: its parent '%s' is not an earlier step", f->path,
                          f->parent_name);
        name = p->name;
        step = p->step;
    }
}

int run_open(const char *spec, RunCheckpoint **out, SsError *err)
{
    if (!spec || !out)
        return ss_err(err, SS_EUSAGE, "run_open: NULL argument");
    if (!run_is_spec(spec))
        return ss_err(err, SS_EUSAGE, "%s: not a run spec (RUN@STEP, RUN@base or RUN@latest)", spec);
    RunCheckpoint *rc = calloc(1, sizeof *rc);
    RunImpl *im = calloc(1, sizeof *im);
    if (!rc || !im) {
        free(rc);
        free(im);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", spec);
    }
    rc->impl_ = im;
    rc->threads = 1;
    const char *at = strrchr(spec, '@');
    rc->spec = strdup(spec);
    rc->dir = strndup(spec, (size_t)(at - spec));
    Snap *snaps = NULL;
    size_t nsnaps = 0;
    char *base_path = NULL;
    int r;
    if (!rc->spec || !rc->dir || asprintf(&base_path, "%s/%s", rc->dir, RUN_BASE_NAME) < 0) {
        base_path = NULL;
        r = ss_err(err, SS_EOUTPUT, "%s: out of memory", spec);
        goto fail;
    }
    struct stat sb;
    if (stat(rc->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        r = ss_err(err, SS_EINPUT, "%s: no run folder %s", spec, rc->dir);
        goto fail;
    }
    r = st_open(base_path, &im->base, err);
    if (r)
        goto fail;
    r = list_snaps(rc->dir, &snaps, &nsnaps, err);
    if (r)
        goto fail;
    const char *which = at + 1;
    const Snap *top = NULL;
    if (strcmp(which, "latest") == 0) {
        if (nsnaps)
            top = &snaps[nsnaps - 1];
    } else if (strcmp(which, "base") != 0) {
        uint64_t step = 0;
        if (!parse_u64(which, strlen(which), &step)) {
            r = ss_err(err, SS_EUSAGE, "%s: step number out of range", spec);
            goto fail;
        }
        for (size_t i = 0; i < nsnaps; i++)
            if (snaps[i].step == step)
                top = &snaps[i];
        if (!top) {
            r = ss_err(err, SS_EINPUT, "%s: no snapshot of step %llu in %s/%s", spec,
                       (unsigned long long)step, rc->dir, RUN_SNAPSHOT_DIR);
            goto fail;
        }
    }
    if (top) {
        im->levels = calloc(nsnaps, sizeof *im->levels);
        if (!im->levels) {
            r = ss_err(err, SS_EOUTPUT, "%s: out of memory", spec);
            goto fail;
        }
        r = open_chain(rc, im, snaps, nsnaps, top->name, top->step, err);
        if (r)
            goto fail;
        rc->step = top->step;
        rc->chain_length = im->nlevels;
        const SdeltaFile *f = im->levels[0];
        rc->ntensors = f->ntensors;
        im->tensors = calloc(f->ntensors + 1, sizeof *im->tensors);
        if (!im->tensors) {
            r = ss_err(err, SS_EOUTPUT, "%s: out of memory", spec);
            goto fail;
        }
        for (size_t i = 0; i < f->ntensors; i++) {
            const SdeltaTensorInfo *t = &f->tensors[i];
            im->tensors[i] = (RunTensor){t->name, t->dtype, t->ndim, t->shape, t->numel, t->nbytes};
        }
    } else {
        rc->is_base = true;
        rc->ntensors = im->base->ntensors;
        im->tensors = calloc(rc->ntensors + 1, sizeof *im->tensors);
        if (!im->tensors) {
            r = ss_err(err, SS_EOUTPUT, "%s: out of memory", spec);
            goto fail;
        }
        for (size_t i = 0; i < rc->ntensors; i++) {
            const StTensor *t = im->base->tensors[i];
            im->tensors[i] = (RunTensor){t->name, t->dtype, t->ndim, t->shape, t->numel, t->nbytes};
        }
    }
    qsort(im->tensors, rc->ntensors, sizeof *im->tensors, cmp_run_tensor);
    for (size_t i = 0; i < rc->ntensors; i++)
        rc->total_bytes += im->tensors[i].nbytes;
    rc->tensors = im->tensors;
    free_snaps(snaps, nsnaps);
    free(base_path);
    *out = rc;
    return 0;
fail:
    free_snaps(snaps, nsnaps);
    free(base_path);
    run_close(rc);
    return r;
}

long run_find(const RunCheckpoint *rc, const char *name)
{
    size_t lo = 0, hi = rc->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(rc->tensors[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ---- reading ---- */

static bool same_desc(const SdeltaTensorInfo *t, DType dt, int ndim, const uint64_t *shape)
{
    if (t->dtype != dt || t->ndim != ndim)
        return false;
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] != shape[d])
            return false;
    return true;
}

/* Materializes tensor name of level L into dst. */
static int read_level(const RunCheckpoint *rc, const RunImpl *im, size_t L, const char *name,
                      void *dst, SsError *err)
{
    const SdeltaFile *f = im->levels[L];
    long j = sdelta_find(f, name);
    if (j < 0)
        return ss_err(err, SS_EINPUT, "%s: tensor '%s': not in this snapshot", f->path, name);
    const SdeltaTensorInfo *t = &f->tensors[j];
    const void *parent = NULL;
    void *tmp = NULL;
    if (t->has_parent) {
        if (L + 1 == im->nlevels) {
            const StTensor *p = st_find(im->base, name);
            if (!p || !same_desc(t, p->dtype, p->ndim, p->shape))
                return ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': missing or different in %s",
                              f->path, name, im->base->path);
            parent = p->data;
        } else {
            const SdeltaFile *pf = im->levels[L + 1];
            long pj = sdelta_find(pf, name);
            if (pj < 0 || !same_desc(&pf->tensors[pj], t->dtype, t->ndim, t->shape))
                return ss_err(err, SS_EINCOMPAT, "%s: tensor '%s': missing or different in %s",
                              f->path, name, pf->path);
            tmp = malloc(t->nbytes ? (size_t)t->nbytes : 1);
            if (!tmp)
                return ss_err(err, SS_EOUTPUT, "%s: tensor '%s': out of memory", f->path, name);
            int r = read_level(rc, im, L + 1, name, tmp, err);
            if (r) {
                free(tmp);
                return r;
            }
            parent = tmp;
        }
    }
    int r = sdelta_decode_tensor(f, (size_t)j, parent, dst, rc->threads, err);
    free(tmp);
    return r;
}

int run_tensor_read(RunCheckpoint *rc, size_t i, void *dst, SsError *err)
{
    if (!rc || i >= rc->ntensors || (!dst && rc->tensors[i].nbytes))
        return ss_err(err, SS_EUSAGE, "run_tensor_read: bad argument");
    const RunImpl *im = rc->impl_;
    const RunTensor *t = &rc->tensors[i];
    if (rc->is_base) {
        const StTensor *p = st_find(im->base, t->name);
        if (p && p->nbytes)
            memcpy(dst, p->data, (size_t)p->nbytes);
        return 0;
    }
    return read_level(rc, im, 0, t->name, dst, err);
}

/* ---- writing ---- */

int run_write_snapshot(const char *dir, uint64_t step, const SdeltaTensorSrc *child, size_t nchild,
                       const RunWriteOptions *opt, SsError *err)
{
    if (!dir || (nchild && !child))
        return ss_err(err, SS_EUSAGE, "run_write_snapshot: NULL argument");
    RunWriteOptions o = {0};
    if (opt)
        o = *opt;
    char *sd = NULL, *base_path = NULL, *out = run_snapshot_path(dir, step), *pname = NULL;
    StCheckpoint *base = NULL;
    RunCheckpoint *prev = NULL;
    SdeltaTensorSrc *ps = NULL;
    void **bufs = NULL;
    size_t nps = 0;
    int r = 0;
    if (!out || asprintf(&sd, "%s/%s", dir, RUN_SNAPSHOT_DIR) < 0 ||
        asprintf(&base_path, "%s/%s", dir, RUN_BASE_NAME) < 0) {
        r = ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
        goto out;
    }
    if (mkdir(sd, 0755) != 0 && errno != EEXIST) {
        r = ss_err(err, SS_EOUTPUT, "%s: cannot create: %s", sd, strerror(errno));
        goto out;
    }
    SdeltaWriteOptions wo;
    sdelta_write_options_init(&wo);
    wo.step = step;
    wo.meta = o.meta;
    wo.nmeta = o.nmeta;
    wo.threads = o.threads;
    const Snap *p = NULL;
    Snap *snaps = NULL;
    size_t nsnaps = 0;
    if (o.chain) {
        r = list_snaps(dir, &snaps, &nsnaps, err);
        if (r)
            goto out;
        for (size_t i = 0; i < nsnaps; i++)
            if (snaps[i].step < step)
                p = &snaps[i];
        bool found = p != NULL;
        if (found)
            pname = strdup(p->name);
        free_snaps(snaps, nsnaps);
        p = NULL;
        if (found && !pname) {
            r = ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
            goto out;
        }
    }
    if (pname) {
        wo.parent_name = pname;
        if (o.prev) {
            r = sdelta_write_tensors(out, o.prev, o.nprev, child, nchild, &wo, err);
            goto out;
        }
        /* materialize the previous snapshot */
        uint64_t pstep;
        snapshot_step(pname, &pstep);
        char *spec;
        if (asprintf(&spec, "%s@%llu", dir, (unsigned long long)pstep) < 0) {
            r = ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
            goto out;
        }
        r = run_open(spec, &prev, err);
        free(spec);
        if (r)
            goto out;
        prev->threads = o.threads;
        ps = calloc(prev->ntensors + 1, sizeof *ps);
        bufs = calloc(prev->ntensors + 1, sizeof *bufs);
        if (!ps || !bufs) {
            r = ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
            goto out;
        }
        for (nps = 0; nps < prev->ntensors; nps++) {
            const RunTensor *t = &prev->tensors[nps];
            bufs[nps] = malloc(t->nbytes ? (size_t)t->nbytes : 1);
            if (!bufs[nps]) {
                r = ss_err(err, SS_EOUTPUT, "%s: out of memory", dir);
                goto out;
            }
            r = run_tensor_read(prev, nps, bufs[nps], err);
            if (r) {
                nps++;
                goto out;
            }
            ps[nps] = (SdeltaTensorSrc){t->name, t->dtype, t->ndim, t->shape, bufs[nps]};
        }
        r = sdelta_write_tensors(out, ps, nps, child, nchild, &wo, err);
        goto out;
    }
    r = st_open(base_path, &base, err);
    if (r)
        goto out;
    wo.parent_name = RUN_BASE_NAME;
    r = sdelta_write(out, base, child, nchild, &wo, err);
out:
    if (bufs)
        for (size_t i = 0; i < nps; i++)
            free(bufs[i]);
    free(bufs);
    free(ps);
    run_close(prev);
    st_close(base);
    free(pname);
    free(sd);
    free(base_path);
    free(out);
    return r;
}
