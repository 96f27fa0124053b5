/* HDF5 reading for sparsity-plot (see plot_h5.h): strings through formats/h5_read.h, numeric
 * datasets and attributes as doubles and group member names through the HDF5 C API. */
#include "plots/plot_h5.h"

#include "formats/h5_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

__attribute__((format(printf, 5, 6)))
static int ph5_fail(const PlotH5 *f, int code, SsError *err, const char *obj, const char *fmt,
                    ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char detail[512];
    h5_error_take(detail, sizeof detail);
    if (detail[0])
        return ss_err(err, code, "%s: %s: %s: %s", ph5_path(f), obj, what, detail);
    return ss_err(err, code, "%s: %s: %s", ph5_path(f), obj, what);
}

int ph5_open(const char *path, PlotH5 *f, SsError *err)
{
    f->r = NULL;
    f->fid = -1;
    int rc = h5r_open(path, &f->r, err);
    if (rc)
        return rc;
    /* h5r_open switched HDF5's error printing off; the second handle shares the file. */
    hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fid < 0) {
        rc = ph5_fail(f, SS_EINPUT, err, "/", "cannot open the HDF5 file");
        ph5_close(f);
        return rc;
    }
    f->fid = fid;
    return 0;
}

void ph5_close(PlotH5 *f)
{
    if (f->fid >= 0)
        H5Fclose((hid_t)f->fid);
    f->fid = -1;
    h5r_close(f->r); /* restores HDF5's error printer: close it last */
    f->r = NULL;
}

const char *ph5_path(const PlotH5 *f)
{
    return f->r ? h5r_path(f->r) : "(closed)";
}

int ph5_exists(PlotH5 *f, const char *obj)
{
    return h5r_exists(f->r, obj);
}

int ph5_attr_exists(PlotH5 *f, const char *obj, const char *name)
{
    return h5r_attr_exists(f->r, obj, name);
}

void plot_array_free(PlotArray *a)
{
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* Reads space's extent into out and allocates out->v. */
static int ph5_shape(const PlotH5 *f, hid_t space, const char *obj, PlotArray *out, SsError *err)
{
    memset(out, 0, sizeof *out);
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0)
        return ph5_fail(f, SS_EINPUT, err, obj, "cannot read the shape");
    if (rank > PH5_MAX_RANK)
        return ph5_fail(f, SS_EINPUT, err, obj, "rank %d is more than %d", rank, PH5_MAX_RANK);
    hsize_t dims[PH5_MAX_RANK] = {0};
    if (rank > 0 && H5Sget_simple_extent_dims(space, dims, NULL) < 0)
        return ph5_fail(f, SS_EINPUT, err, obj, "cannot read the shape");
    size_t n = 1;
    out->rank = rank;
    for (int i = 0; i < rank; i++) {
        out->dims[i] = (size_t)dims[i];
        if (dims[i] && n > SIZE_MAX / sizeof(double) / dims[i])
            return ph5_fail(f, SS_EINPUT, err, obj, "too large");
        n *= (size_t)dims[i];
    }
    out->n = n;
    out->v = malloc((n ? n : 1) * sizeof(double));
    if (!out->v)
        return ph5_fail(f, SS_EOUTPUT, err, obj, "out of memory");
    return 0;
}

static int ph5_numeric_type(hid_t type)
{
    H5T_class_t c = H5Tget_class(type);
    return c == H5T_INTEGER || c == H5T_FLOAT;
}

int ph5_dataset(PlotH5 *f, const char *obj, PlotArray *out, SsError *err)
{
    memset(out, 0, sizeof *out);
    if (!ph5_exists(f, obj))
        return ss_err(err, SS_EINPUT, "%s: %s: missing", ph5_path(f), obj);
    int rc = 0;
    hid_t ds = H5Dopen2((hid_t)f->fid, obj, H5P_DEFAULT), type = -1, space = -1;
    if (ds < 0)
        return ph5_fail(f, SS_EINPUT, err, obj, "cannot open the dataset");
    if ((type = H5Dget_type(ds)) < 0 || !ph5_numeric_type(type)) {
        rc = ph5_fail(f, SS_EINPUT, err, obj, "not a numeric dataset");
        goto done;
    }
    if ((space = H5Dget_space(ds)) < 0) {
        rc = ph5_fail(f, SS_EINPUT, err, obj, "cannot read the shape");
        goto done;
    }
    if ((rc = ph5_shape(f, space, obj, out, err)) != 0)
        goto done;
    if (out->n && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->v) < 0)
        rc = ph5_fail(f, SS_EINPUT, err, obj, "cannot read the values");
done:
    if (rc)
        plot_array_free(out);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    H5Dclose(ds);
    return rc;
}

int ph5_attr(PlotH5 *f, const char *obj, const char *name, PlotArray *out, SsError *err)
{
    memset(out, 0, sizeof *out);
    if (!ph5_exists(f, obj) || !ph5_attr_exists(f, obj, name))
        return ss_err(err, SS_EINPUT, "%s: %s: attribute '%s' missing", ph5_path(f), obj, name);
    int rc = 0;
    hid_t a = H5Aopen_by_name((hid_t)f->fid, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t type = -1, space = -1;
    if (a < 0)
        return ph5_fail(f, SS_EINPUT, err, obj, "cannot open attribute '%s'", name);
    if ((type = H5Aget_type(a)) < 0 || !ph5_numeric_type(type)) {
        rc = ph5_fail(f, SS_EINPUT, err, obj, "attribute '%s' is not numeric", name);
        goto done;
    }
    if ((space = H5Aget_space(a)) < 0) {
        rc = ph5_fail(f, SS_EINPUT, err, obj, "cannot read the shape of '%s'", name);
        goto done;
    }
    if ((rc = ph5_shape(f, space, obj, out, err)) != 0)
        goto done;
    if (out->n && H5Aread(a, H5T_NATIVE_DOUBLE, out->v) < 0)
        rc = ph5_fail(f, SS_EINPUT, err, obj, "cannot read attribute '%s'", name);
done:
    if (rc)
        plot_array_free(out);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    H5Aclose(a);
    return rc;
}

int ph5_attr_f64(PlotH5 *f, const char *obj, const char *name, double *out, SsError *err)
{
    PlotArray a;
    int rc = ph5_attr(f, obj, name, &a, err);
    if (rc)
        return rc;
    if (a.n != 1) {
        plot_array_free(&a);
        return ss_err(err, SS_EINPUT, "%s: %s: attribute '%s' is not a scalar", ph5_path(f), obj,
                      name);
    }
    *out = a.v[0];
    plot_array_free(&a);
    return 0;
}

typedef struct MemberList {
    size_t n, cap;
    char **names;
    int oom;
} MemberList;

static herr_t ph5_member_cb(hid_t group, const char *name, const H5L_info_t *info, void *data)
{
    (void)group;
    (void)info;
    MemberList *l = data;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **p = realloc(l->names, cap * sizeof *p);
        if (!p) {
            l->oom = 1;
            return -1;
        }
        l->names = p;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name))) {
        l->oom = 1;
        return -1;
    }
    l->n++;
    return 0;
}

int ph5_members(PlotH5 *f, const char *group, size_t *n, char ***out, SsError *err)
{
    *n = 0;
    *out = NULL;
    if (!ph5_exists(f, group))
        return ss_err(err, SS_EINPUT, "%s: %s: missing", ph5_path(f), group);
    hid_t g = H5Gopen2((hid_t)f->fid, group, H5P_DEFAULT);
    if (g < 0)
        return ph5_fail(f, SS_EINPUT, err, group, "not a group");
    MemberList l = {0};
    herr_t st = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, ph5_member_cb, &l);
    H5Gclose(g);
    if (st < 0 || l.oom) {
        h5r_free_strings(l.n, l.names);
        if (l.oom)
            return ph5_fail(f, SS_EOUTPUT, err, group, "out of memory");
        return ph5_fail(f, SS_EINPUT, err, group, "cannot list the members");
    }
    *n = l.n;
    *out = l.names;
    return 0;
}
