/* Parallel chunk filtering for HDF5 datasets (see h5_chunks.h): chunks are filtered a window at a
 * time on the pool into per-chunk buffers, then written in order on the calling thread (HDF5 is
 * not thread-safe). */
#include "analyze/h5_chunks.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNKS_WINDOW 64 /* chunks filtered per pool run */

typedef struct ChunkJob {
    const uint8_t *data;   /* the dataset's bytes */
    size_t total;          /* its size in bytes */
    size_t chunk_bytes, type_size, first;
    int level;
    H5ChunkPolicy policy;
    uint8_t *out;          /* (CHUNKS_WINDOW) x cap: filtered chunks */
    uint8_t *pad;          /* (threads) x chunk_bytes: the zero-padded edge chunk */
    uint8_t *scratch;      /* (threads) x chunk_bytes: shuffle */
    size_t cap;
    H5wChunk *res;         /* (CHUNKS_WINDOW) */
} ChunkJob;

__attribute__((target("popcnt"))) int h5_chunks_sparse_bits(const void *chunk, size_t n)
{
    const uint8_t *p = chunk;
    uint64_t ones = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        ones += (uint64_t)__builtin_popcountll(v);
    }
    for (; i < n; i++)
        ones += (uint64_t)__builtin_popcount(p[i]);
    return ones * 64 <= 8 * (uint64_t)n || (8 * (uint64_t)n - ones) * 64 <= 8 * (uint64_t)n;
}

int h5_chunks_sparse_bytes(const void *chunk, size_t n)
{
    const uint8_t *p = chunk;
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++)
        nonzero += p[i] != 0;
    return nonzero * 64 <= n;
}

static int chunk_all_zero(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v)
            return 0;
    }
    for (; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void chunk_filter(void *ctx, size_t k, int worker)
{
    ChunkJob *j = ctx;
    size_t off = (j->first + k) * j->chunk_bytes;
    size_t len = j->total - off < j->chunk_bytes ? j->total - off : j->chunk_bytes;
    const uint8_t *src = j->data + off;
    H5wChunk *r = &j->res[k];
    if (chunk_all_zero(src, len)) {
        *r = (H5wChunk){NULL, 0, 0};
        return;
    }
    if (len < j->chunk_bytes) { /* the edge chunk is stored at full size, zero-padded */
        uint8_t *pad = j->pad + (size_t)worker * j->chunk_bytes;
        memcpy(pad, src, len);
        memset(pad + len, 0, j->chunk_bytes - len);
        src = pad;
    }
    *r = (H5wChunk){src, j->chunk_bytes, 0};
    if (j->policy && !j->policy(src, j->chunk_bytes))
        return;
    uint8_t *dst = j->out + k * j->cap;
    size_t got = h5w_filter_chunk(src, j->chunk_bytes, j->type_size, j->level,
                                  j->scratch + (size_t)worker * j->chunk_bytes, dst, j->cap);
    if (got > 0 && got < j->chunk_bytes)
        *r = (H5wChunk){dst, got, 1};
}

int h5_chunks_write(H5Out *w, ThreadPool *pool, hid_t loc, const char *name, H5wType type,
                    int rank, const hsize_t *dims, hsize_t chunk0, const void *data, int level,
                    H5ChunkPolicy policy, hid_t *dset, SsError *err)
{
    if (dset)
        *dset = H5I_INVALID_HID;
    size_t es = h5w_type_size(type);
    hsize_t row = 1, n = dims[0], chunk[H5W_MAX_RANK];
    for (int d = 1; d < rank; d++) {
        row *= dims[d];
        n *= dims[d];
        chunk[d] = dims[d];
    }
    if (n == 0 || row == 0) { /* nothing to chunk: the plain writer makes it contiguous */
        int rc = h5w_dataset_deflate(w, loc, name, type, rank, dims, data, level, err);
        if (!rc && dset)
            rc = h5w_open_dataset(w, loc, name, dset, err);
        return rc;
    }
    chunk[0] = chunk0 ? chunk0 : (row >= H5W_CHUNK_ELEMS ? 1 : H5W_CHUNK_ELEMS / row);
    if (chunk[0] > dims[0])
        chunk[0] = dims[0];
    hid_t d = H5I_INVALID_HID;
    int rc = h5w_chunked_create(w, loc, name, type, rank, dims, chunk, level, &d, err);
    if (rc)
        return rc;
    int threads = pool ? pool_size(pool) : 1;
    ChunkJob j = {data, (size_t)(n * es), (size_t)(chunk[0] * row * es), es, 0, level, policy,
                  NULL, NULL, NULL, 0, NULL};
    j.cap = h5w_filter_bound(j.chunk_bytes);
    size_t nchunks = (size_t)((dims[0] + chunk[0] - 1) / chunk[0]);
    size_t win = nchunks < CHUNKS_WINDOW ? nchunks : CHUNKS_WINDOW;
    j.out = malloc(win * j.cap);
    j.pad = malloc((size_t)threads * j.chunk_bytes);
    j.scratch = malloc((size_t)threads * j.chunk_bytes);
    j.res = malloc(win * sizeof *j.res);
    if (!j.out || !j.pad || !j.scratch || !j.res)
        rc = ss_err(err, SS_EOUTPUT, "out of memory for %zu-byte chunks", j.chunk_bytes);
    for (size_t first = 0; !rc && first < nchunks; first += win) {
        size_t m = nchunks - first < win ? nchunks - first : win;
        j.first = first;
        if (pool && m > 1)
            pool_run(pool, m, chunk_filter, &j);
        else
            for (size_t k = 0; k < m; k++)
                chunk_filter(&j, k, 0);
        for (size_t k = 0; k < m && !rc; k++) {
            if (!j.res[k].data)
                continue; /* all zero: left unwritten */
            hsize_t off[H5W_MAX_RANK] = {0};
            off[0] = (hsize_t)(first + k) * chunk[0];
            rc = h5w_chunk_write(w, d, rank, off, &j.res[k], err);
        }
    }
    free(j.out);
    free(j.pad);
    free(j.scratch);
    free(j.res);
    if (rc || !dset) {
        int rc2 = h5w_close_dataset(w, d, err);
        return rc ? rc : rc2;
    }
    *dset = d;
    return 0;
}
