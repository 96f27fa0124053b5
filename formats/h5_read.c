/* HDF5 reading helpers (see h5_read.h): one checking helper that turns a failed HDF5 call into an
 * SsError naming file and object, then string, integer and u8 readers for datasets and
 * attributes. */
#include "formats/h5_read.h"

#include "formats/h5_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

struct H5In {
    char *path;
    hid_t file;
    H5E_auto2_t saved_func; /* HDF5's error printer, restored by h5r_close */
    void *saved_data;
};

/* ---- errors ---- */

/* Fills err with "<file>: <obj>: <what>[: <HDF5's message>]", clears HDF5's error stack and
 * returns code. */
__attribute__((format(printf, 5, 6)))
static int h5r_fail(const H5In *r, int code, SsError *err, const char *obj, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char detail[512];
    h5_error_take(detail, sizeof detail);
    if (detail[0])
        return ss_err(err, code, "%s: %s: %s: %s", r->path, obj, what, detail);
    return ss_err(err, code, "%s: %s: %s", r->path, obj, what);
}

#define H5R_TRY(call, obj, ...)                                  \
    do {                                                         \
        if ((call) < 0) {                                        \
            rc = h5r_fail(r, SS_EINPUT, err, obj, __VA_ARGS__);  \
            goto done;                                           \
        }                                                        \
    } while (0)

#define H5R_OOM(obj) (rc = h5r_fail(r, SS_EOUTPUT, err, obj, "out of memory"))

static const char *h5r_norm(const char *obj)
{
    return (!obj || !*obj) ? "/" : obj;
}

/* ---- the file ---- */

int h5r_open(const char *path, H5In **out, SsError *err)
{
    *out = NULL;
    H5In *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    }
    H5Eget_auto2(H5E_DEFAULT, &r->saved_func, &r->saved_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        ss_err(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
        h5r_close(r);
        return SS_EINPUT;
    }
    fclose(probe);
    if (H5Fis_hdf5(path) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        ss_err(err, SS_EINPUT, "%s: not an HDF5 file", path);
        h5r_close(r);
        return SS_EINPUT;
    }
    r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (r->file < 0) {
        int rc = h5r_fail(r, SS_EINPUT, err, "/", "cannot open the HDF5 file");
        h5r_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void h5r_close(H5In *r)
{
    if (!r)
        return;
    if (r->file > 0)
        H5Fclose(r->file);
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, r->saved_func, r->saved_data);
    free(r->path);
    free(r);
}

const char *h5r_path(const H5In *r)
{
    return r->path;
}

int h5r_exists(H5In *r, const char *obj)
{
    obj = h5r_norm(obj);
    if (strcmp(obj, "/") == 0)
        return 1;
    /* H5Lexists needs every intermediate link to exist: check each prefix in turn. */
    size_t len = strlen(obj);
    char *buf = malloc(len + 1);
    if (!buf)
        return 0;
    int ok = 1;
    for (size_t i = 1; i <= len && ok; i++) {
        if (i < len && obj[i] != '/')
            continue;
        memcpy(buf, obj, i);
        buf[i] = '\0';
        ok = H5Lexists(r->file, buf, H5P_DEFAULT) > 0;
    }
    if (ok)
        ok = H5Oexists_by_name(r->file, obj, H5P_DEFAULT) > 0;
    H5Eclear2(H5E_DEFAULT);
    free(buf);
    return ok;
}

void h5r_free_strings(size_t n, char **strings)
{
    if (!strings)
        return;
    for (size_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}

/* ---- shared readers: a dataset or an attribute, by what to read from ---- */

typedef struct H5rSource {
    hid_t id;    /* dataset or attribute */
    int is_attr;
} H5rSource;

static hid_t h5r_source_space(H5rSource s)
{
    return s.is_attr ? H5Aget_space(s.id) : H5Dget_space(s.id);
}

static hid_t h5r_source_type(H5rSource s)
{
    return s.is_attr ? H5Aget_type(s.id) : H5Dget_type(s.id);
}

static herr_t h5r_source_read(H5rSource s, hid_t mem_type, void *buf)
{
    return s.is_attr ? H5Aread(s.id, mem_type, buf)
                     : H5Dread(s.id, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
}

/* Element count of a scalar (1) or 1-D space; higher ranks are an error. */
static int h5r_source_count(H5In *r, H5rSource s, const char *obj, size_t *n, SsError *err)
{
    int rc = 0;
    hid_t space = H5I_INVALID_HID;
    H5R_TRY(space = h5r_source_space(s), obj, "cannot read the dataspace");
    int rank;
    H5R_TRY(rank = H5Sget_simple_extent_ndims(space), obj, "cannot read the rank");
    if (rank > 1) {
        rc = h5r_fail(r, SS_EINPUT, err, obj, "rank %d, want a scalar or 1-D", rank);
        goto done;
    }
    hssize_t npoints;
    H5R_TRY(npoints = H5Sget_simple_extent_npoints(space), obj, "cannot count the elements");
    *n = (size_t)npoints;
done:
    if (space >= 0)
        H5Sclose(space);
    return rc;
}

static int h5r_source_strings(H5In *r, H5rSource s, const char *obj, size_t *n, char ***out,
                              SsError *err)
{
    int rc = 0;
    hid_t ftype = H5I_INVALID_HID, mtype = H5I_INVALID_HID, space = H5I_INVALID_HID;
    char **strs = NULL, *fixed = NULL;
    size_t count = 0;
    *out = NULL;
    *n = 0;
    if ((rc = h5r_source_count(r, s, obj, &count, err)) != 0)
        return rc;
    H5R_TRY(ftype = h5r_source_type(s), obj, "cannot read the type");
    if (H5Tget_class(ftype) != H5T_STRING) {
        rc = h5r_fail(r, SS_EINPUT, err, obj, "not a string");
        goto done;
    }
    htri_t is_var;
    H5R_TRY(is_var = H5Tis_variable_str(ftype), obj, "cannot read the string type");
    strs = calloc(count ? count : 1, sizeof *strs);
    if (!strs) {
        H5R_OOM(obj);
        goto done;
    }
    H5R_TRY(mtype = H5Tcopy(H5T_C_S1), obj, "cannot make a string type");
    if (is_var) {
        char **raw = calloc(count ? count : 1, sizeof *raw);
        if (!raw) {
            H5R_OOM(obj);
            goto done;
        }
        H5R_TRY(H5Tset_size(mtype, H5T_VARIABLE), obj, "cannot make a string type");
        H5R_TRY(H5Tset_cset(mtype, H5Tget_cset(ftype)), obj, "cannot make a string type");
        if (h5r_source_read(s, mtype, raw) < 0) {
            free(raw);
            rc = h5r_fail(r, SS_EINPUT, err, obj, "cannot read the strings");
            goto done;
        }
        for (size_t i = 0; i < count && !rc; i++)
            if (!(strs[i] = strdup(raw[i] ? raw[i] : "")))
                H5R_OOM(obj);
        space = h5r_source_space(s);
        if (space >= 0)
            H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, raw);
        free(raw);
        if (rc)
            goto done;
    } else {
        size_t len = H5Tget_size(ftype);
        if (len == 0 || len > ((size_t)1 << 20) || (count && len + 1 > SIZE_MAX / count)) {
            rc = h5r_fail(r, SS_EINPUT, err, obj, "string size %zu out of range", len);
            goto done;
        }
        H5R_TRY(H5Tset_size(mtype, len + 1), obj, "cannot make a string type");
        fixed = calloc(count ? count : 1, len + 1);
        if (!fixed) {
            H5R_OOM(obj);
            goto done;
        }
        H5R_TRY(h5r_source_read(s, mtype, fixed), obj, "cannot read the strings");
        for (size_t i = 0; i < count && !rc; i++)
            if (!(strs[i] = strndup(fixed + i * (len + 1), len)))
                H5R_OOM(obj);
        if (rc)
            goto done;
    }
    *out = strs;
    *n = count;
    strs = NULL;
done:
    h5r_free_strings(count, strs);
    free(fixed);
    if (space >= 0)
        H5Sclose(space);
    if (mtype >= 0)
        H5Tclose(mtype);
    if (ftype >= 0)
        H5Tclose(ftype);
    return rc;
}

/* Reads a scalar or 1-D integer source as mem_type (elem bytes each). */
static int h5r_source_ints(H5In *r, H5rSource s, const char *obj, hid_t mem_type, size_t elem,
                           size_t *n, void **out, SsError *err)
{
    int rc = 0;
    hid_t ftype = H5I_INVALID_HID;
    void *buf = NULL;
    size_t count = 0;
    *out = NULL;
    *n = 0;
    if ((rc = h5r_source_count(r, s, obj, &count, err)) != 0)
        return rc;
    H5R_TRY(ftype = h5r_source_type(s), obj, "cannot read the type");
    if (H5Tget_class(ftype) != H5T_INTEGER) {
        rc = h5r_fail(r, SS_EINPUT, err, obj, "not an integer");
        goto done;
    }
    if (count > SIZE_MAX / elem || !(buf = malloc(count ? count * elem : 1))) {
        H5R_OOM(obj);
        goto done;
    }
    H5R_TRY(h5r_source_read(s, mem_type, buf), obj, "cannot read the values");
    *out = buf;
    *n = count;
    buf = NULL;
done:
    free(buf);
    if (ftype >= 0)
        H5Tclose(ftype);
    return rc;
}

/* ---- datasets ---- */

static int h5r_open_dataset(H5In *r, const char *obj, hid_t *out, SsError *err)
{
    if (!h5r_exists(r, obj))
        return ss_err(err, SS_EINPUT, "%s: %s: no such dataset", r->path, obj);
    int rc = 0;
    H5R_TRY(*out = H5Dopen2(r->file, obj, H5P_DEFAULT), obj, "cannot open the dataset");
done:
    return rc;
}

int h5r_strings(H5In *r, const char *obj, size_t *n, char ***out, SsError *err)
{
    hid_t d = H5I_INVALID_HID;
    *out = NULL;
    *n = 0;
    int rc = h5r_open_dataset(r, obj, &d, err);
    if (rc)
        return rc;
    rc = h5r_source_strings(r, (H5rSource){d, 0}, obj, n, out, err);
    H5Dclose(d);
    return rc;
}

/* A whole 1-D integer dataset converted to native_type (elements of size bytes). */
static int h5r_dataset_ints(H5In *r, const char *obj, hid_t native_type, size_t size, size_t *n,
                            void **out, SsError *err)
{
    hid_t d = H5I_INVALID_HID;
    *out = NULL;
    *n = 0;
    int rc = h5r_open_dataset(r, obj, &d, err);
    if (rc)
        return rc;
    rc = h5r_source_ints(r, (H5rSource){d, 0}, obj, native_type, size, n, out, err);
    H5Dclose(d);
    return rc;
}

int h5r_i64s(H5In *r, const char *obj, size_t *n, int64_t **out, SsError *err)
{
    void *v = NULL;
    int rc = h5r_dataset_ints(r, obj, H5T_NATIVE_INT64, sizeof(int64_t), n, &v, err);
    *out = v;
    return rc;
}

int h5r_u64s(H5In *r, const char *obj, size_t *n, uint64_t **out, SsError *err)
{
    void *v = NULL;
    int rc = h5r_dataset_ints(r, obj, H5T_NATIVE_UINT64, sizeof(uint64_t), n, &v, err);
    *out = v;
    return rc;
}

int h5r_u8_into(H5In *r, const char *obj, size_t n, uint8_t *buf, SsError *err)
{
    hid_t d = H5I_INVALID_HID, ftype = H5I_INVALID_HID;
    int rc = h5r_open_dataset(r, obj, &d, err);
    if (rc)
        return rc;
    size_t count = 0;
    if ((rc = h5r_source_count(r, (H5rSource){d, 0}, obj, &count, err)) != 0)
        goto done;
    if (count != n) {
        rc = h5r_fail(r, SS_EINPUT, err, obj, "%zu bytes, want %zu", count, n);
        goto done;
    }
    H5R_TRY(ftype = H5Dget_type(d), obj, "cannot read the type");
    if (H5Tget_class(ftype) != H5T_INTEGER || H5Tget_size(ftype) != 1) {
        rc = h5r_fail(r, SS_EINPUT, err, obj, "not a u8 dataset");
        goto done;
    }
    if (n)
        H5R_TRY(H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), obj,
                "cannot read the data");
done:
    if (ftype >= 0)
        H5Tclose(ftype);
    H5Dclose(d);
    return rc;
}

/* ---- attributes ---- */

int h5r_attr_exists(H5In *r, const char *obj, const char *name)
{
    obj = h5r_norm(obj);
    if (!h5r_exists(r, obj))
        return 0;
    htri_t e = H5Aexists_by_name(r->file, obj, name, H5P_DEFAULT);
    H5Eclear2(H5E_DEFAULT);
    return e > 0;
}

static int h5r_open_attr(H5In *r, const char *obj, const char *name, hid_t *out, char *label,
                         size_t label_len, SsError *err)
{
    obj = h5r_norm(obj);
    snprintf(label, label_len, "%s attribute '%s'", obj, name);
    if (!h5r_attr_exists(r, obj, name))
        return ss_err(err, SS_EINPUT, "%s: %s: missing", r->path, label);
    int rc = 0;
    H5R_TRY(*out = H5Aopen_by_name(r->file, obj, name, H5P_DEFAULT, H5P_DEFAULT), label,
            "cannot open");
done:
    return rc;
}

int h5r_attr_strings(H5In *r, const char *obj, const char *name, size_t *n, char ***out,
                     SsError *err)
{
    char label[512];
    hid_t a = H5I_INVALID_HID;
    *out = NULL;
    *n = 0;
    int rc = h5r_open_attr(r, obj, name, &a, label, sizeof label, err);
    if (rc)
        return rc;
    rc = h5r_source_strings(r, (H5rSource){a, 1}, label, n, out, err);
    H5Aclose(a);
    return rc;
}

int h5r_attr_string(H5In *r, const char *obj, const char *name, char **out, SsError *err)
{
    size_t n;
    char **v;
    *out = NULL;
    int rc = h5r_attr_strings(r, obj, name, &n, &v, err);
    if (rc)
        return rc;
    if (n != 1) {
        h5r_free_strings(n, v);
        return ss_err(err, SS_EINPUT, "%s: %s attribute '%s': %zu strings, want one", r->path,
                      h5r_norm(obj), name, n);
    }
    *out = v[0];
    free(v);
    return 0;
}

int h5r_attr_u64s(H5In *r, const char *obj, const char *name, size_t *n, uint64_t **out,
                  SsError *err)
{
    char label[512];
    hid_t a = H5I_INVALID_HID;
    *out = NULL;
    *n = 0;
    int rc = h5r_open_attr(r, obj, name, &a, label, sizeof label, err);
    if (rc)
        return rc;
    void *v = NULL;
    rc = h5r_source_ints(r, (H5rSource){a, 1}, label, H5T_NATIVE_UINT64, sizeof(uint64_t), n,
                         &v, err);
    *out = v;
    H5Aclose(a);
    return rc;
}

int h5r_attr_u64(H5In *r, const char *obj, const char *name, uint64_t *out, SsError *err)
{
    size_t n;
    uint64_t *v;
    int rc = h5r_attr_u64s(r, obj, name, &n, &v, err);
    if (rc)
        return rc;
    if (n != 1) {
        free(v);
        return ss_err(err, SS_EINPUT, "%s: %s attribute '%s': %zu values, want one", r->path,
                      h5r_norm(obj), name, n);
    }
    *out = v[0];
    free(v);
    return 0;
}
