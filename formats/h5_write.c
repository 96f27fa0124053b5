/* HDF5 output helpers (see h5_write.h): the atomic temporary file, one checking helper that turns
 * a failed HDF5 call into an SsError, and dataset and attribute writers. */
#include "formats/h5_write.h"

#include "formats/atomic_file.h"
#include "formats/h5_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

struct H5Out {
    char *path;       /* final name */
    char *tmp_path;   /* "<path>.tmp.<pid>" */
    hid_t file;       /* H5I_INVALID_HID once closed */
    H5E_auto2_t saved_func; /* HDF5's error printer, restored when w is freed */
    void *saved_data;
};

/* ---- errors ---- */

/* Fills err with "<path>: <printf text>: <HDF5's message>", clears HDF5's error stack and returns
 * SS_EOUTPUT. The one place where a failed HDF5 call becomes an error. */
__attribute__((format(printf, 3, 4)))
static int h5w_fail(const H5Out *w, SsError *err, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char detail[512];
    h5_error_take(detail, sizeof detail);
    if (detail[0])
        return ss_err(err, SS_EOUTPUT, "%s: %s: %s", w->path, what, detail);
    return ss_err(err, SS_EOUTPUT, "%s: %s", w->path, what);
}

/* Runs an HDF5 call; on a negative result fills err (naming what failed) and jumps to done. */
#define H5W_TRY(call, ...)                                 \
    do {                                                   \
        if ((call) < 0) {                                  \
            rc = h5w_fail(w, err, __VA_ARGS__);            \
            goto done;                                     \
        }                                                  \
    } while (0)

/* "<parent path>/<name>" of an object about to be created, for messages. */
static void h5w_object_path(hid_t loc, const char *name, char *buf, size_t len)
{
    char parent[256] = "";
    if (H5Iget_name(loc, parent, sizeof parent) < 0)
        snprintf(parent, sizeof parent, "?");
    H5Eclear2(H5E_DEFAULT);
    snprintf(buf, len, "%s%s%s", parent, strcmp(parent, "/") == 0 ? "" : "/", name);
}

static void h5w_close_id(hid_t id, herr_t (*close_fn)(hid_t))
{
    if (id >= 0)
        close_fn(id);
}

/* ---- types ---- */

static hid_t h5w_mem_type(H5wType t)
{
    switch (t) {
    case H5W_U64: return H5T_NATIVE_UINT64;
    case H5W_I64: return H5T_NATIVE_INT64;
    case H5W_F64: return H5T_NATIVE_DOUBLE;
    case H5W_U32: return H5T_NATIVE_UINT32;
    case H5W_U8: return H5T_NATIVE_UINT8;
    case H5W_U16: return H5T_NATIVE_UINT16;
    }
    return H5I_INVALID_HID;
}

static hid_t h5w_file_type(H5wType t)
{
    switch (t) {
    case H5W_U64: return H5T_STD_U64LE;
    case H5W_I64: return H5T_STD_I64LE;
    case H5W_F64: return H5T_IEEE_F64LE;
    case H5W_U32: return H5T_STD_U32LE;
    case H5W_U8: return H5T_STD_U8LE;
    case H5W_U16: return H5T_STD_U16LE;
    }
    return H5I_INVALID_HID;
}

/* A new variable-length UTF-8 string type (close with H5Tclose). */
static hid_t h5w_string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* ---- the file ---- */

static void h5w_free(H5Out *w)
{
    H5Eset_auto2(H5E_DEFAULT, w->saved_func, w->saved_data);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

int h5w_open(const char *path, H5Out **out, SsError *err)
{
    *out = NULL;
    H5Out *w = calloc(1, sizeof *w);
    if (!w)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    w->file = H5I_INVALID_HID;
    w->path = strdup(path);
    w->tmp_path = atomic_tmp_path(path);
    if (!w->path || !w->tmp_path) {
        free(w->path);
        free(w->tmp_path);
        free(w);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    }
    H5Eget_auto2(H5E_DEFAULT, &w->saved_func, &w->saved_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    /* Creating the file ourselves first gives errno's own words for a missing or read-only
     * folder; HDF5 then truncates it. */
    int fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0) {
        int e = errno;
        int rc = ss_err(err, SS_EOUTPUT, "%s: cannot create %s: %s", path, w->tmp_path,
                        strerror(e));
        h5w_free(w);
        return rc;
    }
    close(fd);

    int rc = 0;
    hid_t fapl = H5I_INVALID_HID;
    H5W_TRY(fapl = H5Pcreate(H5P_FILE_ACCESS), "cannot create a file access property list");
    /* H5Fclose must really close (and flush) the file: fail if an object is still open. */
    H5W_TRY(H5Pset_fclose_degree(fapl, H5F_CLOSE_SEMI), "cannot set the file close degree");
#if H5_VERSION_GE(1, 10, 7)
    /* The temporary file is ours alone: no need for file locks, which some network file systems
     * refuse. */
    H5W_TRY(H5Pset_file_locking(fapl, 0, 1), "cannot turn off file locking");
#endif
    H5W_TRY(w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl),
            "cannot create the HDF5 file %s", w->tmp_path);
done:
    h5w_close_id(fapl, H5Pclose);
    if (rc) {
        unlink(w->tmp_path);
        h5w_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

hid_t h5w_root(const H5Out *w)
{
    return w->file;
}

/* Closes whatever is still open in w's file, then the file itself (errors ignored: this runs
 * only on the way out of a failure). */
static void h5w_close_forcibly(H5Out *w)
{
    if (w->file < 0)
        return;
    unsigned types = H5F_OBJ_LOCAL | H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE |
                     H5F_OBJ_ATTR;
    ssize_t n = H5Fget_obj_count(w->file, types);
    hid_t *ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
    if (ids) {
        n = H5Fget_obj_ids(w->file, types, (size_t)n, ids);
        for (ssize_t i = 0; i < n; i++) {
            if (H5Iget_type(ids[i]) == H5I_ATTR)
                H5Aclose(ids[i]);
            else
                H5Oclose(ids[i]);
        }
        free(ids);
    }
    H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
    H5Eclear2(H5E_DEFAULT);
}

int h5w_close(H5Out *w, SsError *err)
{
    int rc = 0;
    H5W_TRY(H5Fflush(w->file, H5F_SCOPE_GLOBAL), "cannot flush %s", w->tmp_path);
    H5W_TRY(H5Fclose(w->file), "cannot close %s", w->tmp_path);
    w->file = H5I_INVALID_HID;

    int fd = open(w->tmp_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot fsync %s: %s", w->path, w->tmp_path, strerror(e));
        goto done;
    }
    if (close(fd) != 0) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot close %s: %s", w->path, w->tmp_path,
                    strerror(errno));
        goto done;
    }
    if (rename(w->tmp_path, w->path) != 0) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot rename %s to it: %s", w->path, w->tmp_path,
                    strerror(errno));
        goto done;
    }
    atomic_sync_dir(w->path);
done:
    if (rc) {
        h5w_close_forcibly(w);
        unlink(w->tmp_path);
    }
    h5w_free(w);
    return rc;
}

void h5w_abort(H5Out *w)
{
    if (!w)
        return;
    h5w_close_forcibly(w);
    unlink(w->tmp_path);
    h5w_free(w);
}

/* ---- groups ---- */

int h5w_group(H5Out *w, hid_t loc, const char *name, hid_t *out, SsError *err)
{
    char where[512];
    h5w_object_path(loc, name, where, sizeof where);
    int rc = 0;
    hid_t gcpl = H5I_INVALID_HID;
    *out = H5I_INVALID_HID;
    H5W_TRY(gcpl = H5Pcreate(H5P_GROUP_CREATE), "group '%s': cannot create properties", where);
    H5W_TRY(H5Pset_obj_track_times(gcpl, 0), "group '%s': cannot turn off times", where);
    H5W_TRY(*out = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT),
            "cannot create group '%s'", where);
done:
    h5w_close_id(gcpl, H5Pclose);
    return rc;
}

int h5w_close_group(H5Out *w, hid_t group, SsError *err)
{
    int rc = 0;
    H5W_TRY(H5Gclose(group), "cannot close a group");
done:
    return rc;
}

/* ---- datasets ---- */

/* Chunk shape for dims: trailing dimensions whole while the chunk stays within
 * H5W_CHUNK_ELEMS elements, then as many of the leading ones as fit (at least 1 each). */
static void h5w_chunk_dims(int rank, const hsize_t *dims, hsize_t *chunk)
{
    hsize_t room = H5W_CHUNK_ELEMS;
    for (int d = rank - 1; d >= 0; d--) {
        hsize_t c = dims[d] < room ? dims[d] : room;
        chunk[d] = c ? c : 1;
        room = room / chunk[d];
        if (room == 0)
            room = 1;
    }
}

int h5w_dataset(H5Out *w, hid_t loc, const char *name, H5wType type, int rank,
                const hsize_t *dims, const void *data, SsError *err)
{
    return h5w_dataset_deflate(w, loc, name, type, rank, dims, data, H5W_DEFLATE_LEVEL, err);
}

int h5w_dataset_deflate(H5Out *w, hid_t loc, const char *name, H5wType type, int rank,
                        const hsize_t *dims, const void *data, int level, SsError *err)
{
    char where[512];
    h5w_object_path(loc, name, where, sizeof where);
    if (rank < 1 || rank > H5W_MAX_RANK)
        return ss_err(err, SS_EUSAGE, "%s: dataset '%s': rank %d is not 1..%d", w->path, where,
                      rank, H5W_MAX_RANK);
    if (level < 1 || level > 9)
        return ss_err(err, SS_EUSAGE, "%s: dataset '%s': deflate level %d is not 1..9", w->path,
                      where, level);
    hsize_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= dims[d];
    int rc = 0;
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    H5W_TRY(space = H5Screate_simple(rank, dims, NULL), "dataset '%s': cannot create its dataspace",
            where);
    H5W_TRY(dcpl = H5Pcreate(H5P_DATASET_CREATE), "dataset '%s': cannot create properties", where);
    H5W_TRY(H5Pset_obj_track_times(dcpl, 0), "dataset '%s': cannot turn off times", where);
    if (n > 0) {
        hsize_t chunk[H5W_MAX_RANK];
        h5w_chunk_dims(rank, dims, chunk);
        H5W_TRY(H5Pset_chunk(dcpl, rank, chunk), "dataset '%s': cannot set chunks", where);
        H5W_TRY(H5Pset_shuffle(dcpl), "dataset '%s': cannot add the shuffle filter", where);
        H5W_TRY(H5Pset_deflate(dcpl, (unsigned)level), "dataset '%s': cannot add deflate",
                where);
    }
    H5W_TRY(dset = H5Dcreate2(loc, name, h5w_file_type(type), space, H5P_DEFAULT, dcpl,
                              H5P_DEFAULT),
            "cannot create dataset '%s'", where);
    if (n > 0)
        H5W_TRY(H5Dwrite(dset, h5w_mem_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                "cannot write dataset '%s'", where);
    {
        hid_t d = dset;
        dset = H5I_INVALID_HID;
        H5W_TRY(H5Dclose(d), "cannot close dataset '%s'", where);
    }
done:
    h5w_close_id(dset, H5Dclose);
    h5w_close_id(dcpl, H5Pclose);
    h5w_close_id(space, H5Sclose);
    return rc;
}

/* ---- datasets filled chunk by chunk ---- */

size_t h5w_type_size(H5wType type)
{
    switch (type) {
    case H5W_U8: return 1;
    case H5W_U16: return 2;
    case H5W_U32: return 4;
    default: return 8;
    }
}

void h5w_chunk_shape(int rank, const hsize_t *dims, hsize_t *chunk)
{
    h5w_chunk_dims(rank, dims, chunk);
}

int h5w_chunked_create(H5Out *w, hid_t loc, const char *name, H5wType type, int rank,
                       const hsize_t *dims, const hsize_t *chunk, int level, hid_t *out,
                       SsError *err)
{
    char where[512];
    h5w_object_path(loc, name, where, sizeof where);
    *out = H5I_INVALID_HID;
    if (rank < 1 || rank > H5W_MAX_RANK || level < 1 || level > 9)
        return ss_err(err, SS_EUSAGE, "%s: dataset '%s': rank %d or deflate level %d out of range",
                      w->path, where, rank, level);
    int rc = 0;
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    H5W_TRY(space = H5Screate_simple(rank, dims, NULL), "dataset '%s': cannot create its dataspace",
            where);
    H5W_TRY(dcpl = H5Pcreate(H5P_DATASET_CREATE), "dataset '%s': cannot create properties", where);
    H5W_TRY(H5Pset_obj_track_times(dcpl, 0), "dataset '%s': cannot turn off times", where);
    H5W_TRY(H5Pset_chunk(dcpl, rank, chunk), "dataset '%s': cannot set chunks", where);
    /* the same pipeline as h5w_dataset_deflate (shuffle is the identity on bytes) */
    H5W_TRY(H5Pset_shuffle(dcpl), "dataset '%s': cannot add the shuffle filter", where);
    H5W_TRY(H5Pset_deflate(dcpl, (unsigned)level), "dataset '%s': cannot add deflate", where);
    H5W_TRY(*out = H5Dcreate2(loc, name, h5w_file_type(type), space, H5P_DEFAULT, dcpl,
                              H5P_DEFAULT),
            "cannot create dataset '%s'", where);
done:
    h5w_close_id(dcpl, H5Pclose);
    h5w_close_id(space, H5Sclose);
    return rc;
}

size_t h5w_filter_bound(size_t n)
{
    return (size_t)compressBound((uLong)n);
}

size_t h5w_filter_chunk(const void *src, size_t n, size_t type_size, int level, void *scratch,
                        void *dst, size_t cap)
{
    const uint8_t *in = src;
    if (type_size > 1) { /* HDF5's shuffle: byte j of every element, then byte j + 1, ... */
        uint8_t *t = scratch;
        size_t ne = n / type_size;
        for (size_t j = 0; j < type_size; j++)
            for (size_t e = 0; e < ne; e++)
                t[j * ne + e] = in[e * type_size + j];
        memcpy(t + ne * type_size, in + ne * type_size, n - ne * type_size);
        in = t;
    }
    /* A zlib stream, as HDF5's deflate filter writes and reads it. Strategy Z_RLE (matches at
     * distance 1 only): the shuffled planes of counts, densities and sparse bitmaps are runs, and
     * it is several times faster than level 1's hash chains at nearly the same size. */
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, 15, 8, Z_RLE) != Z_OK)
        return 0;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    size_t len = (size_t)z.total_out;
    deflateEnd(&z);
    return zr == Z_STREAM_END ? len : 0;
}

int h5w_chunk_write(H5Out *w, hid_t dset, int rank, const hsize_t *offset, const H5wChunk *c,
                    SsError *err)
{
    int rc = 0;
    /* filter mask: bit i set = filter i of the pipeline was not applied to this chunk */
    uint32_t skip = c->filtered ? 0 : 0x3u; /* shuffle (when present) and deflate */
    (void)rank;
    H5W_TRY(H5Dwrite_chunk(dset, H5P_DEFAULT, skip, offset, c->size, c->data),
            "cannot write a chunk of %zu bytes", c->size);
done:
    return rc;
}

int h5w_open_dataset(H5Out *w, hid_t loc, const char *name, hid_t *out, SsError *err)
{
    char where[512];
    h5w_object_path(loc, name, where, sizeof where);
    int rc = 0;
    *out = H5I_INVALID_HID;
    H5W_TRY(*out = H5Dopen2(loc, name, H5P_DEFAULT), "cannot open dataset '%s'", where);
done:
    return rc;
}

int h5w_close_dataset(H5Out *w, hid_t dset, SsError *err)
{
    int rc = 0;
    H5W_TRY(H5Dclose(dset), "cannot close a dataset");
done:
    return rc;
}

int h5w_dataset_strings(H5Out *w, hid_t loc, const char *name, size_t n,
                        const char *const *strings, SsError *err)
{
    char where[512];
    h5w_object_path(loc, name, where, sizeof where);
    int rc = 0;
    hsize_t dims[1] = {n};
    hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID,
          dset = H5I_INVALID_HID;
    H5W_TRY(type = h5w_string_type(), "dataset '%s': cannot make a string type", where);
    H5W_TRY(space = H5Screate_simple(1, dims, NULL), "dataset '%s': cannot create its dataspace",
            where);
    H5W_TRY(dcpl = H5Pcreate(H5P_DATASET_CREATE), "dataset '%s': cannot create properties", where);
    H5W_TRY(H5Pset_obj_track_times(dcpl, 0), "dataset '%s': cannot turn off times", where);
    H5W_TRY(dset = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
            "cannot create dataset '%s'", where);
    if (n > 0)
        H5W_TRY(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, strings),
                "cannot write dataset '%s'", where);
    {
        hid_t d = dset;
        dset = H5I_INVALID_HID;
        H5W_TRY(H5Dclose(d), "cannot close dataset '%s'", where);
    }
done:
    h5w_close_id(dset, H5Dclose);
    h5w_close_id(dcpl, H5Pclose);
    h5w_close_id(space, H5Sclose);
    h5w_close_id(type, H5Tclose);
    return rc;
}

/* ---- attributes ---- */

/* One attribute of file type ftype written from buf (memory type mtype) over space. */
static int h5w_attr_write(H5Out *w, hid_t obj, const char *name, hid_t ftype, hid_t mtype,
                          hid_t space, const void *buf, SsError *err)
{
    char owner[256] = "";
    if (H5Iget_name(obj, owner, sizeof owner) < 0)
        snprintf(owner, sizeof owner, "?");
    H5Eclear2(H5E_DEFAULT);
    int rc = 0;
    hid_t attr = H5I_INVALID_HID;
    H5W_TRY(attr = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT),
            "cannot create attribute '%s' of '%s'", name, owner);
    H5W_TRY(H5Awrite(attr, mtype, buf), "cannot write attribute '%s' of '%s'", name, owner);
    {
        hid_t a = attr;
        attr = H5I_INVALID_HID;
        H5W_TRY(H5Aclose(a), "cannot close attribute '%s' of '%s'", name, owner);
    }
done:
    h5w_close_id(attr, H5Aclose);
    return rc;
}

static int h5w_attr_scalar(H5Out *w, hid_t obj, const char *name, H5wType type, const void *value,
                           SsError *err)
{
    int rc = 0;
    hid_t space = H5I_INVALID_HID;
    H5W_TRY(space = H5Screate(H5S_SCALAR), "attribute '%s': cannot create its dataspace", name);
    rc = h5w_attr_write(w, obj, name, h5w_file_type(type), h5w_mem_type(type), space, value, err);
done:
    h5w_close_id(space, H5Sclose);
    return rc;
}

int h5w_attr_u64(H5Out *w, hid_t obj, const char *name, uint64_t value, SsError *err)
{
    return h5w_attr_scalar(w, obj, name, H5W_U64, &value, err);
}

int h5w_attr_i64(H5Out *w, hid_t obj, const char *name, int64_t value, SsError *err)
{
    return h5w_attr_scalar(w, obj, name, H5W_I64, &value, err);
}

int h5w_attr_f64(H5Out *w, hid_t obj, const char *name, double value, SsError *err)
{
    return h5w_attr_scalar(w, obj, name, H5W_F64, &value, err);
}

int h5w_attr_array(H5Out *w, hid_t obj, const char *name, H5wType type, size_t n,
                   const void *values, SsError *err)
{
    int rc = 0;
    hsize_t dims[1] = {n};
    uint64_t dummy = 0; /* HDF5 wants a buffer even for no elements */
    hid_t space = H5I_INVALID_HID;
    H5W_TRY(space = H5Screate_simple(1, dims, NULL), "attribute '%s': cannot create its dataspace",
            name);
    rc = h5w_attr_write(w, obj, name, h5w_file_type(type), h5w_mem_type(type), space,
                        n ? values : (const void *)&dummy, err);
done:
    h5w_close_id(space, H5Sclose);
    return rc;
}

int h5w_attr_string(H5Out *w, hid_t obj, const char *name, const char *value, SsError *err)
{
    int rc = 0;
    hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    H5W_TRY(type = h5w_string_type(), "attribute '%s': cannot make a string type", name);
    H5W_TRY(space = H5Screate(H5S_SCALAR), "attribute '%s': cannot create its dataspace", name);
    rc = h5w_attr_write(w, obj, name, type, type, space, &value, err);
done:
    h5w_close_id(space, H5Sclose);
    h5w_close_id(type, H5Tclose);
    return rc;
}

int h5w_attr_strings(H5Out *w, hid_t obj, const char *name, size_t n, const char *const *values,
                     SsError *err)
{
    int rc = 0;
    hsize_t dims[1] = {n};
    const char *dummy = "";
    hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    H5W_TRY(type = h5w_string_type(), "attribute '%s': cannot make a string type", name);
    H5W_TRY(space = H5Screate_simple(1, dims, NULL), "attribute '%s': cannot create its dataspace",
            name);
    rc = h5w_attr_write(w, obj, name, type, type, space, n ? (const void *)values : &dummy, err);
done:
    h5w_close_id(space, H5Sclose);
    h5w_close_id(type, H5Tclose);
    return rc;
}
