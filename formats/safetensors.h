/* Reading and writing safetensors checkpoints.
 *
 * Reading maps each file read-only (mmap) and validates its header at least as strictly as the
 * reference implementation (see docs/safetensors-validation.md); tensor data is then a pointer into
 * the mapping, so opening costs no memory beyond the header. A checkpoint is one .safetensors
 * file, a Hugging Face model folder with model.safetensors.index.json and its shards, or a folder
 * holding one model.safetensors.
 *
 * Writing is atomic: bytes go to "<path>.tmp.<pid>" in the same folder, which is flushed (fsync)
 * and renamed over <path> on success and removed on failure.
 *
 * Every function returning int returns 0 or a negative SS_E* code and fills err. */
#ifndef SS_SAFETENSORS_H
#define SS_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "formats/ss_error.h"

#define ST_MAX_HEADER_BYTES 100000000ull /* the reference implementation's limit */
#define ST_MAX_NDIM 1024 /* most dimensions a shape may have, reading or writing (ours, stricter) */

typedef struct StTensor {
    const char *name;     /* UTF-8, no NUL inside; owned by the StFile */
    DType dtype;
    int ndim;             /* 0 for a scalar */
    const uint64_t *shape; /* ndim entries; owned by the StFile */
    uint64_t numel;       /* product of shape (1 for ndim 0) */
    uint64_t nbytes;      /* numel * dtype_size(dtype) */
    uint64_t offset;      /* byte offset inside the file's data section */
    const void *data;     /* nbytes bytes inside the mapping (never NULL, even when nbytes is 0) */
    const char *file;     /* path of the file holding it; owned by the StFile */
} StTensor;

typedef struct StMeta {
    const char *key;
    const char *value;
} StMeta;

/* One mapped safetensors file; its tensors sorted by data offset. */
typedef struct StFile {
    char *path;
    size_t file_size;
    uint64_t header_len;  /* N, the JSON header's length in bytes */
    size_t ntensors;
    StTensor *tensors;    /* sorted by offset */
    size_t nmeta;
    StMeta *meta;         /* the "__metadata__" entries, in header order */
    void *impl_;          /* mapping and storage; private */
} StFile;

/* A checkpoint: one or more files, tensors sorted by name (strcmp order). */
typedef struct StCheckpoint {
    char *path;           /* as given to st_open */
    size_t nfiles;
    StFile **files;
    size_t ntensors;
    const StTensor **tensors; /* sorted by name; pointers into files[] */
    uint64_t total_bytes; /* sum of tensor nbytes */
} StCheckpoint;

/* Opens and validates one .safetensors file. */
int st_file_open(const char *path, StFile **out, SsError *err);
void st_file_close(StFile *f);

/* Opens a checkpoint: a .safetensors file, a folder with model.safetensors.index.json (every
 * tensor named in its weight_map must be in the named shard and no shard may hold a tensor the map
 * does not list), or a folder with model.safetensors. Duplicate tensor names across shards are an
 * error. */
int st_open(const char *path, StCheckpoint **out, SsError *err);
void st_close(StCheckpoint *ck);

/* Binary search by name; NULL when absent. */
const StTensor *st_find(const StCheckpoint *ck, const char *name);

/* Element and byte counts of a tensor of dtype dt and shape shape[0..ndim) (numel is 1 for ndim 0).
 * Returns false, leaving the outputs unspecified, when dt is unknown, ndim is negative or a count
 * overflows 64 bits. Either output may be NULL. */
bool st_shape_nbytes(DType dt, int ndim, const uint64_t *shape, uint64_t *numel, uint64_t *nbytes);

/* Writes "[3, 2]" into dst of capacity cap >= 8, cut with "...]" when it does not fit. Returns dst. */
char *st_format_shape(char *dst, size_t cap, int ndim, const uint64_t *shape);

/* ---- writing ---- */

typedef struct StTensorSpec {
    const char *name;
    DType dtype;
    int ndim;
    const uint64_t *shape;
} StTensorSpec;

typedef struct StWriter StWriter;

/* Starts writing path: the header lists specs in the given order with contiguous offsets, padded
 * with spaces to a multiple of 8 bytes as the reference writer does. meta may be NULL. Data must
 * then be appended with st_writer_put, in spec order, exactly the total byte count.
 * Errors: SS_EUSAGE for bad specs (unknown dtype, ndim < 0 or > ST_MAX_NDIM, a count or offset
 * overflowing 64 bits or INT64_MAX, a duplicate name, the name "__metadata__", a name or metadata
 * string that is not UTF-8, a duplicate metadata key, a header over ST_MAX_HEADER_BYTES);
 * SS_EOUTPUT when the temporary file cannot be created or written, or out of memory. */
int st_writer_open(const char *path, const StTensorSpec *specs, size_t nspecs, const StMeta *meta,
                   size_t nmeta, StWriter **out, SsError *err);
/* Appends len bytes (any split: a few MB a call is efficient). Errors: SS_EUSAGE when the data
 * would exceed the declared total, SS_EOUTPUT when writing fails; either way the temporary file is
 * removed and every later call fails, but w must still be freed with st_writer_abort (or close). */
int st_writer_put(StWriter *w, const void *bytes, size_t len, SsError *err);
/* Checks the byte count, flushes, fsyncs and renames into place; frees w either way. */
int st_writer_close(StWriter *w, SsError *err);
/* Removes the temporary file and frees w. */
void st_writer_abort(StWriter *w);

/* Writes a whole file at once; datas[i] holds tensor i's bytes. */
int st_write(const char *path, const StTensorSpec *specs, const void *const *datas, size_t nspecs,
             const StMeta *meta, size_t nmeta, SsError *err);

#endif
