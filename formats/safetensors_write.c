/* Writing a safetensors file atomically: build the header from the specs, stream the data through
 * a large buffer into "<path>.tmp.<pid>", then fsync and rename over <path>. Any failure removes
 * the temporary file. */
#include "formats/atomic_file.h"
#include "formats/st_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#define ST_WRITE_BUF_BYTES ((size_t)8 << 20)    /* small pieces reach the kernel 8 MiB at a time */
#define ST_WRITE_DIRECT_BYTES ((size_t)1 << 20) /* pieces this large are written without a copy */

struct StWriter {
    char *path;        /* final name */
    char *tmp_path;    /* "<path>.tmp.<pid>" */
    int fd;            /* open on tmp_path; -1 once closed */
    bool failed;       /* a put failed: tmp_path is already removed */
    uint64_t total;    /* data bytes the header declares */
    uint64_t received; /* data bytes passed to st_writer_put so far */
    unsigned char *buf;
    size_t buf_len; /* bytes waiting in buf */
};

bool st_shape_nbytes(DType dt, int ndim, const uint64_t *shape, uint64_t *numel, uint64_t *nbytes)
{
    if ((unsigned)dt >= DT_COUNT || ndim < 0 || (ndim > 0 && !shape))
        return false;
    uint64_t n = 1, b;
    for (int i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(n, shape[i], &n))
            return false;
    if (__builtin_mul_overflow(n, (uint64_t)dtype_size(dt), &b))
        return false;
    if (numel)
        *numel = n;
    if (nbytes)
        *nbytes = b;
    return true;
}

/* ---- the header ---- */

/* Builds the JSON header (unpadded, compact) for specs and meta; fills *json (caller frees) and
 * *total (the data section's size). */
static int writer_build_header(const char *path, const StTensorSpec *specs, size_t nspecs,
                               const StMeta *meta, size_t nmeta, char **json, uint64_t *total,
                               SsError *err)
{
    json_t *root = json_object();
    json_t *jmeta = nmeta ? json_object() : NULL;
    char q[200];
    int rc = 0;
    *json = NULL;
    if (!root || (nmeta && !jmeta)) {
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
        goto done;
    }
    if (jmeta) {
        for (size_t i = 0; i < nmeta; i++) {
            if (!meta[i].key || !meta[i].value) {
                rc = ss_err(err, SS_EUSAGE, "%s: metadata entry %zu has a NULL key or value",
                            path, i);
                goto done;
            }
            if (json_object_get(jmeta, meta[i].key)) {
                rc = ss_err(err, SS_EUSAGE, "%s: metadata key '%s' given twice", path,
                            st_quote(q, sizeof q, meta[i].key));
                goto done;
            }
            json_t *v = json_string(meta[i].value);
            if (!v || json_object_set_new(jmeta, meta[i].key, v)) {
                rc = ss_err(err, SS_EUSAGE, "%s: metadata key '%s': key or value is not UTF-8",
                            path, st_quote(q, sizeof q, meta[i].key));
                goto done;
            }
        }
        int set = json_object_set_new(root, "__metadata__", jmeta);
        jmeta = NULL; /* owned (or freed) by root now */
        if (set) {
            rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
            goto done;
        }
    }

    uint64_t pos = 0;
    for (size_t i = 0; i < nspecs; i++) {
        const StTensorSpec *s = &specs[i];
        uint64_t nbytes;
        if (!s->name) {
            rc = ss_err(err, SS_EUSAGE, "%s: tensor spec %zu has no name", path, i);
            goto done;
        }
        const char *qname = st_quote(q, sizeof q, s->name);
        if (strcmp(s->name, "__metadata__") == 0 || json_object_get(root, s->name)) {
            rc = ss_err(err, SS_EUSAGE, "%s: tensor '%s': %s", path, qname,
                        strcmp(s->name, "__metadata__") ? "name given twice"
                                                        : "name is reserved for the metadata");
            goto done;
        }
        /* Offsets past INT64_MAX cannot be written as JSON integers by jansson. */
        if (s->ndim > ST_MAX_NDIM ||
            !st_shape_nbytes(s->dtype, s->ndim, s->shape, NULL, &nbytes) ||
            __builtin_add_overflow(pos, nbytes, &pos) || pos > (uint64_t)INT64_MAX) {
            rc = ss_err(err, SS_EUSAGE,
                        "%s: tensor '%s': bad spec (unknown dtype, ndim negative or over 1024, "
                        "or a size overflowing 64 bits)",
                        path, qname);
            goto done;
        }
        json_t *entry = json_object(), *shape = json_array(), *offs = json_array();
        bool ok = entry && shape && offs;
        for (int d = 0; ok && d < s->ndim; d++) {
            if (s->shape[d] > (uint64_t)INT64_MAX) {
                json_decref(entry), json_decref(shape), json_decref(offs);
                rc = ss_err(err, SS_EUSAGE, "%s: tensor '%s': shape[%d] exceeds INT64_MAX",
                            path, qname, d);
                goto done;
            }
            ok = !json_array_append_new(shape, json_integer((json_int_t)s->shape[d]));
        }
        ok = ok && !json_array_append_new(offs, json_integer((json_int_t)(pos - nbytes))) &&
             !json_array_append_new(offs, json_integer((json_int_t)pos)) &&
             !json_object_set_new(entry, "dtype", json_string(dtype_name(s->dtype))) &&
             !json_object_set(entry, "shape", shape) &&
             !json_object_set(entry, "data_offsets", offs);
        json_decref(shape);
        json_decref(offs);
        if (!ok || json_object_set_new(root, s->name, entry)) {
            if (!ok)
                json_decref(entry);
            rc = ss_err(err, SS_EUSAGE, "%s: tensor '%s': name is not UTF-8 (or out of memory)",
                        path, qname);
            goto done;
        }
    }
    *json = json_dumps(root, JSON_COMPACT);
    if (!*json)
        rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    *total = pos;
done:
    json_decref(jmeta);
    json_decref(root);
    return rc;
}

/* ---- raw output ---- */

/* Writes all len bytes to fd, retrying short writes and EINTR. Returns 0 or errno. */
static int writer_write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Marks w failed, closes and removes the temporary file; fills err. */
static int writer_fail(StWriter *w, SsError *err, int code, const char *what, int e)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    unlink(w->tmp_path);
    w->failed = true;
    if (e)
        return ss_err(err, code, "%s: %s %s: %s", w->path, what, w->tmp_path, strerror(e));
    return ss_err(err, code, "%s: %s", w->path, what);
}

static int writer_flush(StWriter *w, SsError *err)
{
    int e = writer_write_all(w->fd, w->buf, w->buf_len);
    w->buf_len = 0;
    return e ? writer_fail(w, err, SS_EOUTPUT, "cannot write", e) : 0;
}

/* Buffers small pieces; pieces of ST_WRITE_DIRECT_BYTES or more skip the copy and go straight to
 * the file (after whatever is buffered). */
static int writer_append(StWriter *w, const void *bytes, size_t len, SsError *err)
{
    const unsigned char *p = bytes;
    if (len < ST_WRITE_DIRECT_BYTES && w->buf_len + len <= ST_WRITE_BUF_BYTES) {
        if (len)
            memcpy(w->buf + w->buf_len, p, len);
        w->buf_len += len;
        return 0;
    }
    int rc = writer_flush(w, err);
    if (rc)
        return rc;
    if (len >= ST_WRITE_DIRECT_BYTES) {
        int e = writer_write_all(w->fd, p, len);
        return e ? writer_fail(w, err, SS_EOUTPUT, "cannot write", e) : 0;
    }
    memcpy(w->buf, p, len);
    w->buf_len = len;
    return 0;
}

static void writer_free(StWriter *w)
{
    free(w->path);
    free(w->tmp_path);
    free(w->buf);
    free(w);
}

/* ---- public ---- */

int st_writer_open(const char *path, const StTensorSpec *specs, size_t nspecs, const StMeta *meta,
                   size_t nmeta, StWriter **out, SsError *err)
{
    *out = NULL;
    char *json;
    uint64_t total = 0;
    int rc = writer_build_header(path, specs, nspecs, meta, nmeta, &json, &total, err);
    if (rc)
        return rc;
    size_t n = strlen(json);
    size_t pad = (8 - n % 8) % 8; /* spaces so that 8 + N is a multiple of 8 */
    if (n + pad > ST_MAX_HEADER_BYTES) {
        free(json);
        return ss_err(err, SS_EUSAGE, "%s: header of %zu bytes exceeds the limit of %llu", path,
                      n + pad, ST_MAX_HEADER_BYTES);
    }

    StWriter *w = calloc(1, sizeof *w);
    if (w) {
        w->fd = -1;
        w->path = strdup(path);
        w->buf = malloc(ST_WRITE_BUF_BYTES);
        w->tmp_path = atomic_tmp_path(path);
    }
    if (!w || !w->path || !w->tmp_path || !w->buf) {
        free(json);
        if (w)
            writer_free(w);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    }
    w->total = total;
    w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (w->fd < 0) {
        int e = errno;
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot create %s: %s", path, w->tmp_path, strerror(e));
        free(json);
        writer_free(w);
        return rc;
    }

    unsigned char len8[8]; /* N, little-endian */
    uint64_t hn = n + pad;
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(hn >> (8 * i));
    rc = writer_append(w, len8, 8, err);
    if (!rc)
        rc = writer_append(w, json, n, err);
    for (size_t i = 0; !rc && i < pad; i++)
        rc = writer_append(w, " ", 1, err);
    free(json);
    if (rc) {
        writer_free(w); /* writer_fail already removed the file */
        return rc;
    }
    *out = w;
    return 0;
}

int st_writer_put(StWriter *w, const void *bytes, size_t len, SsError *err)
{
    if (w->failed)
        return ss_err(err, SS_EOUTPUT, "%s: an earlier write failed", w->path);
    if (len > w->total - w->received)
        return writer_fail(w, err, SS_EUSAGE,
                           "more data than the header declares (st_writer_put past the end)", 0);
    w->received += len;
    return writer_append(w, bytes, len, err);
}

int st_writer_close(StWriter *w, SsError *err)
{
    int rc = 0;
    if (w->failed) {
        rc = ss_err(err, SS_EOUTPUT, "%s: an earlier write failed", w->path);
    } else if (w->received != w->total) {
        char what[160];
        snprintf(what, sizeof what, "got %llu data bytes but the header declares %llu",
                 (unsigned long long)w->received, (unsigned long long)w->total);
        rc = writer_fail(w, err, SS_EUSAGE, what, 0);
    } else if (!(rc = writer_flush(w, err))) {
        if (fsync(w->fd) != 0)
            rc = writer_fail(w, err, SS_EOUTPUT, "cannot fsync", errno);
        else {
            int fd = w->fd;
            w->fd = -1;
            if (close(fd) != 0)
                rc = writer_fail(w, err, SS_EOUTPUT, "cannot close", errno);
            else if (rename(w->tmp_path, w->path) != 0)
                rc = writer_fail(w, err, SS_EOUTPUT, "cannot rename", errno);
            else
                atomic_sync_dir(w->path);
        }
    }
    writer_free(w);
    return rc;
}

void st_writer_abort(StWriter *w)
{
    if (!w)
        return;
    if (!w->failed) {
        if (w->fd >= 0)
            close(w->fd);
        unlink(w->tmp_path);
    }
    writer_free(w);
}

int st_write(const char *path, const StTensorSpec *specs, const void *const *datas, size_t nspecs,
             const StMeta *meta, size_t nmeta, SsError *err)
{
    StWriter *w;
    int rc = st_writer_open(path, specs, nspecs, meta, nmeta, &w, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < nspecs; i++) {
        uint64_t nbytes;
        st_shape_nbytes(specs[i].dtype, specs[i].ndim, specs[i].shape, NULL, &nbytes);
        if (nbytes > SIZE_MAX || (nbytes && !datas[i])) {
            st_writer_abort(w);
            return ss_err(err, SS_EUSAGE, "%s: tensor spec %zu: no data, or too large for memory",
                          path, i);
        }
        if (nbytes && (rc = st_writer_put(w, datas[i], (size_t)nbytes, err))) {
            st_writer_abort(w);
            return rc;
        }
    }
    return st_writer_close(w, err);
}
