/* Writing HDF5 output files: atomically (a temporary file in the same folder, flushed, fsynced and
 * renamed), with chunked, shuffled and deflated numeric datasets, variable-length UTF-8 string
 * datasets, and scalar or 1-D attributes, readable by stock h5py and h5dump.
 *
 * Every HDF5 call's result is checked; a failure fills SsError with
 *   "<final path>: <what>: <HDF5's innermost message>"
 * and returns SS_EOUTPUT. HDF5's own error printing is switched off while an H5Out is open.
 * Objects are created without modification times, so equal content gives equal files.
 *
 * Typical use:
 *   H5Out *w;  hid_t g;
 *   h5w_open("out.h5", &w, err);
 *   h5w_group(w, h5w_root(w), "tensors", &g, err);
 *   h5w_dataset(w, g, "numel", H5W_U64, 1, dims, numel, err);
 *   h5w_close_group(w, g, err);
 *   h5w_close(w, err);     (or h5w_abort(w) after any failure)
 * Not thread-safe: one H5Out at a time per process. */
#ifndef SS_H5_WRITE_H
#define SS_H5_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "formats/ss_error.h"

#define H5W_MAX_RANK 4
#define H5W_CHUNK_ELEMS ((hsize_t)1 << 16) /* target elements per chunk */
#define H5W_DEFLATE_LEVEL 4

typedef enum H5wType { H5W_U64, H5W_I64, H5W_F64, H5W_U32, H5W_U8, H5W_U16 } H5wType;

typedef struct H5Out H5Out;

/* Creates "<path>.tmp.<pid>" (truncating a stale one) as a new HDF5 file. Errors name path and
 * the reason (errno's text when the folder is missing or not writable). */
int h5w_open(const char *path, H5Out **out, SsError *err);
/* Flushes and closes the file, fsyncs it, renames it over path and syncs the folder. Frees w on
 * success and on failure; on failure the temporary file is removed and path is untouched. Every
 * group opened with h5w_group must have been closed before. */
int h5w_close(H5Out *w, SsError *err);
/* Closes the file, removes the temporary file and frees w (NULL is allowed). */
void h5w_abort(H5Out *w);

/* The root group of the file being written (owned by w: do not close it). */
hid_t h5w_root(const H5Out *w);

/* Creates group name under loc (closed with h5w_close_group). */
int h5w_group(H5Out *w, hid_t loc, const char *name, hid_t *out, SsError *err);
int h5w_close_group(H5Out *w, hid_t group, SsError *err);

/* A numeric dataset of rank 1..H5W_MAX_RANK with dims[0..rank), holding data in C order (native
 * little-endian values of type). Chunked (at most about H5W_CHUNK_ELEMS elements a chunk, whole
 * rows), shuffled and deflated; a dataset with no elements is written contiguous, unfiltered. */
int h5w_dataset(H5Out *w, hid_t loc, const char *name, H5wType type, int rank,
                const hsize_t *dims, const void *data, SsError *err);
/* h5w_dataset with deflate at level (1..9) instead of H5W_DEFLATE_LEVEL: level 1 compresses
 * high-entropy data (bitmaps) about twice as fast, to nearly the same size. */
int h5w_dataset_deflate(H5Out *w, hid_t loc, const char *name, H5wType type, int rank,
                        const hsize_t *dims, const void *data, int level, SsError *err);

/* ---- datasets whose chunks the caller filters (in parallel) and hands over ready ----
 *
 * h5w_chunked_create makes a dataset with chunk shape chunk[0..rank) whose filter pipeline is
 * shuffle then deflate, exactly what h5w_dataset_deflate makes, so
 * stock readers need nothing new. h5w_filter_chunk applies that pipeline to one chunk's bytes (it
 * touches no HDF5 state: any thread may call it), and h5w_chunk_write stores a chunk with
 * H5Dwrite_chunk, either filtered or raw (its filter mask then says both filters were skipped, which
 * every HDF5 reader honours). A chunk never written reads back as zeros. */

/* One chunk for h5w_chunk_write: size bytes at data, filtered by h5w_filter_chunk or raw (then
 * size is the chunk's full size in bytes, edge chunks padded with zeros). */
typedef struct H5wChunk {
    const void *data;
    size_t size;
    int filtered;
} H5wChunk;

/* Element size in bytes of type. */
size_t h5w_type_size(H5wType type);
/* The chunk shape h5w_dataset would choose for dims (about H5W_CHUNK_ELEMS elements, trailing
 * dimensions whole while they fit). */
void h5w_chunk_shape(int rank, const hsize_t *dims, hsize_t *chunk);
/* Creates the dataset (dims, chunk shape chunk, shuffle + deflate at level 1..9) to be filled with
 * h5w_chunk_write; close it with h5w_close_dataset. */
int h5w_chunked_create(H5Out *w, hid_t loc, const char *name, H5wType type, int rank,
                       const hsize_t *dims, const hsize_t *chunk, int level, hid_t *out,
                       SsError *err);
/* Bytes h5w_filter_chunk may need for a chunk of n bytes. */
size_t h5w_filter_bound(size_t n);
/* The pipeline of h5w_chunked_create on the n bytes at src (one whole chunk, elements of
 * type_size bytes): shuffled through scratch (n bytes; unused when type_size is 1), deflated at
 * level into dst (cap bytes, at least h5w_filter_bound(n)). Returns the filtered size, or 0 when
 * zlib fails (then write the chunk raw). Thread-safe. */
size_t h5w_filter_chunk(const void *src, size_t n, size_t type_size, int level, void *scratch,
                        void *dst, size_t cap);
/* Stores chunk c at element offset offset[0..rank) of dset (rank as created). */
int h5w_chunk_write(H5Out *w, hid_t dset, int rank, const hsize_t *offset, const H5wChunk *c,
                    SsError *err);

/* Opens the existing dataset name under loc (to add attributes to it; close with
 * h5w_close_dataset). */
int h5w_open_dataset(H5Out *w, hid_t loc, const char *name, hid_t *out, SsError *err);
int h5w_close_dataset(H5Out *w, hid_t dset, SsError *err);

/* A 1-D dataset of n variable-length UTF-8 strings (contiguous: filters would only compress the
 * references to the strings). */
int h5w_dataset_strings(H5Out *w, hid_t loc, const char *name, size_t n,
                        const char *const *strings, SsError *err);

/* Attributes on obj (a group or dataset). The *_array forms are 1-D with n elements. */
int h5w_attr_string(H5Out *w, hid_t obj, const char *name, const char *value, SsError *err);
int h5w_attr_strings(H5Out *w, hid_t obj, const char *name, size_t n, const char *const *values,
                     SsError *err);
int h5w_attr_u64(H5Out *w, hid_t obj, const char *name, uint64_t value, SsError *err);
int h5w_attr_i64(H5Out *w, hid_t obj, const char *name, int64_t value, SsError *err);
int h5w_attr_f64(H5Out *w, hid_t obj, const char *name, double value, SsError *err);
int h5w_attr_array(H5Out *w, hid_t obj, const char *name, H5wType type, size_t n,
                   const void *values, SsError *err);

#endif
