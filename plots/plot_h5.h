/* Reading sparsity-scan, sparsity-series and sparsity-overlap HDF5 reports for sparsity-plot:
 * formats/h5_read.h for strings and integer attributes, plus what plotting needs on top of it:
 * numeric datasets and attributes of any rank converted to double (HDF5 converts; u64 counts
 * above 2^53 lose their last bits, which no figure can show), and the member names of a group.
 *
 * Objects are named by paths from the root ("series/step"). Errors fill SsError with
 * "<file>: <object>: <what>[: <HDF5's message>]" and return SS_EINPUT (SS_EOUTPUT when memory
 * runs out). Results are malloc'd and owned by the caller. */
#ifndef SS_PLOT_H5_H
#define SS_PLOT_H5_H

#include <stddef.h>
#include <stdint.h>

#include "formats/h5_read.h"
#include "formats/ss_error.h"

#define PH5_MAX_RANK 4

typedef struct PlotH5 {
    H5In *r;       /* formats/h5_read.h handle: strings, existence */
    long long fid; /* the same file opened again (hid_t) for the numeric readers */
} PlotH5;

/* A numeric array: dims[0..rank-1], n = their product, v[n] in C order. */
typedef struct PlotArray {
    int rank;
    size_t dims[PH5_MAX_RANK];
    size_t n;
    double *v;
} PlotArray;

int ph5_open(const char *path, PlotH5 *f, SsError *err);
void ph5_close(PlotH5 *f);
const char *ph5_path(const PlotH5 *f);
int ph5_exists(PlotH5 *f, const char *obj);
int ph5_attr_exists(PlotH5 *f, const char *obj, const char *name);

/* A numeric dataset (integer or float, rank <= PH5_MAX_RANK) as doubles. */
int ph5_dataset(PlotH5 *f, const char *obj, PlotArray *out, SsError *err);
/* A numeric attribute (scalar: rank 0, n = 1) as doubles. */
int ph5_attr(PlotH5 *f, const char *obj, const char *name, PlotArray *out, SsError *err);
/* A scalar numeric attribute as one double. */
int ph5_attr_f64(PlotH5 *f, const char *obj, const char *name, double *out, SsError *err);
/* The names of group's members, in HDF5's name order (strcmp). */
int ph5_members(PlotH5 *f, const char *group, size_t *n, char ***out, SsError *err);

void plot_array_free(PlotArray *a);

#endif
