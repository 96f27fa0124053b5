/* Reading HDF5 files (the reports sparsity-scan writes) read-only: whether an object exists,
 * 1-D numeric and variable-length string datasets, a u8 dataset into a caller's buffer, and
 * scalar or 1-D attributes. Objects are named by paths from the root ("tensors/name",
 * "masks/model.norm.weight"; "/" or "" is the root group).
 *
 * Every HDF5 call's result is checked; a failure fills SsError with
 *   "<file>: <object>: <what>: <HDF5's innermost message>"
 * and returns SS_EINPUT (SS_EOUTPUT when memory runs out). HDF5's own error printing is switched
 * off while an H5In is open. Results are malloc'd and owned by the caller (strings: free with
 * h5r_free_strings). Not thread-safe (HDF5 is not reentrant); several H5In may be open, closed in reverse order. */
#ifndef SS_H5_READ_H
#define SS_H5_READ_H

#include <stddef.h>
#include <stdint.h>

#include "formats/ss_error.h"

typedef struct H5In H5In;

/* Opens path read-only. A missing file or one that is not HDF5 is SS_EINPUT naming path. */
int h5r_open(const char *path, H5In **out, SsError *err);
/* Closes the file and frees r (NULL is allowed). */
void h5r_close(H5In *r);
/* The path r was opened with (owned by r). */
const char *h5r_path(const H5In *r);

/* 1 when every link along obj exists and obj is an object, else 0 (never an error). */
int h5r_exists(H5In *r, const char *obj);

/* A 1-D dataset of variable-length (or fixed-length) strings: *n strings, each malloc'd. */
int h5r_strings(H5In *r, const char *obj, size_t *n, char ***out, SsError *err);
/* A 1-D integer dataset converted to int64 / uint64 (HDF5 converts; out-of-range values are an
 * error). */
int h5r_i64s(H5In *r, const char *obj, size_t *n, int64_t **out, SsError *err);
int h5r_u64s(H5In *r, const char *obj, size_t *n, uint64_t **out, SsError *err);
/* A 1-D u8 dataset of exactly n elements into buf (a different length is SS_EINPUT). */
int h5r_u8_into(H5In *r, const char *obj, size_t n, uint8_t *buf, SsError *err);

/* Attributes of obj. *_string: a scalar string; *_strings: a 1-D string array; *_u64: a scalar
 * integer; *_u64s: a scalar or 1-D integer array (a scalar gives n = 1). A missing attribute is
 * SS_EINPUT naming it. */
int h5r_attr_exists(H5In *r, const char *obj, const char *name);
int h5r_attr_string(H5In *r, const char *obj, const char *name, char **out, SsError *err);
int h5r_attr_strings(H5In *r, const char *obj, const char *name, size_t *n, char ***out,
                     SsError *err);
int h5r_attr_u64(H5In *r, const char *obj, const char *name, uint64_t *out, SsError *err);
int h5r_attr_u64s(H5In *r, const char *obj, const char *name, size_t *n, uint64_t **out,
                  SsError *err);

void h5r_free_strings(size_t n, char **strings);

#endif
