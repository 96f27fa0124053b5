/* Numeric HDF5 datasets whose chunks are filtered (shuffle + deflate) on a thread pool and then
 * written directly (formats/h5_write.h, "datasets whose chunks the caller filters"): the same
 * file format as h5w_dataset_deflate, so stock h5py and h5dump read them, without HDF5's
 * single-threaded filter pipeline. Per chunk: an all-zero chunk is not written at all (it reads
 * back as zeros); a chunk the caller's policy calls dense, or one deflate does not shrink, is
 * stored raw (its filter mask says so); the others are deflated. Which chunks are filtered depends
 * only on their bytes, never on the thread count. */
#ifndef SS_H5_CHUNKS_H
#define SS_H5_CHUNKS_H

#include <stddef.h>

#include "formats/h5_write.h"
#include "formats/ss_error.h"
#include "kernels/threadpool.h"

/* 1 when the n bytes of a chunk are worth deflating, 0 to store them raw (no zlib call). */
typedef int (*H5ChunkPolicy)(const void *chunk, size_t n);

/* Bitmaps (u8 masks): deflate only when at most 1 bit in 64 is set or at most 1 in 64 is clear.
 * Denser bitmaps compress by at most about 2x, at 20-50 MB/s a core. */
int h5_chunks_sparse_bits(const void *chunk, size_t n);

/* Small counts (the update maps' cells): deflate only when at most 1 byte in 64 is nonzero (a
 * nearly unchanged matrix). Denser chunks would shrink 3-4x, but at about 110 MB/s a core
 * (bench/cell_deflate.py; docs/BENCHMARKS.md, "Update maps"): more than the whole scan costs. */
int h5_chunks_sparse_bytes(const void *chunk, size_t n);

/* Writes dataset name under loc: type, dims[0..rank) in C order at data, chunks of whole rows
 * (about H5W_CHUNK_ELEMS elements, or chunk0 rows of the first dimension when chunk0 > 0),
 * deflate level (1..9), filtered on pool (NULL: on the calling thread); policy NULL deflates every
 * nonzero chunk. *dset (may be NULL) receives the open dataset (close with h5w_close_dataset).
 * Returns 0 or SS_EOUTPUT. */
int h5_chunks_write(H5Out *w, ThreadPool *pool, hid_t loc, const char *name, H5wType type,
                    int rank, const hsize_t *dims, hsize_t chunk0, const void *data, int level,
                    H5ChunkPolicy policy, hid_t *dset, SsError *err);

#endif
