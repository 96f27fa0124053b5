/* .sdelta: compressed, checksummed delta snapshots of a checkpoint against a parent checkpoint.
 *
 * A delta holds, for every tensor of a child checkpoint, what changed against the tensor of the
 * same name in a parent (a .safetensors checkpoint or a materialized earlier snapshot). Each
 * tensor is cut into chunks of a fixed element count that decode independently (random access,
 * parallel decoding). Decoding is lossless for every dtype: applying a delta to its parent gives
 * the child's bytes exactly. docs/sdelta-format.md specifies the bytes; docs/ckpt-delta.md the
 * command-line tool.
 *
 * Integrity: the header, the footer and every chunk carry checksums; each tensor records a check
 * of its parent bytes and of its child bytes. A corrupted or truncated file, or a delta applied
 * to the wrong parent, fails with an error naming the file, the tensor and the chunk; it never
 * yields wrong weights. Writing is atomic (temporary file in the same folder, fsync, rename).
 *
 * Every function returning int returns 0 or a negative SS_E* code and fills err:
 *   SS_EUSAGE    bad arguments (NULL pointers, duplicate child names, size mismatches)
 *   SS_EINPUT    unreadable, malformed, truncated or corrupted delta
 *   SS_EINCOMPAT parent bytes that are not the ones the delta was encoded against
 *   SS_EOUTPUT   cannot write the output, or out of memory */
#ifndef SDELTA_H
#define SDELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "formats/safetensors.h"
#include "formats/ss_error.h"

/* ---- writing ---- */

/* A tensor held in memory by the caller (child tensors, or parent tensors for
 * sdelta_write_tensors). data holds numel * dtype_size(dtype) bytes; numel 0 and ndim 0
 * (a scalar, numel 1) are allowed. */
typedef struct SdeltaTensorSrc {
    const char *name;
    DType dtype;
    int ndim;
    const uint64_t *shape;
    const void *data;
} SdeltaTensorSrc;

typedef struct SdeltaWriteOptions {
    uint64_t step;           /* recorded in the header */
    const char *parent_name; /* parent file name recorded in the header ("base.safetensors");
                                NULL: the basename of the parent checkpoint's path */
    const StMeta *meta;      /* user metadata (key/value strings), copied to the header */
    size_t nmeta;
    uint64_t chunk_elems;    /* elements per chunk; 0: SDELTA_DEFAULT_CHUNK_ELEMS (2^20) */
    int threads;             /* encoder threads; 0: all online cores */
    int zstd_level;          /* for the header and zstd-coded chunks; 0: 19 header, 3 chunks */
    int force_mode;          /* testing: -1 (or 0 from a zeroed struct) picks the smallest */
    int force_xform;         /* testing: -1 picks the smallest; 0 XOR, 1 SUB */
    int format_minor;        /* 0: the newest minor version (2); 1: a format 1.1 file (no escape
                                mode), which 1.1 readers accept */
} SdeltaWriteOptions;

/* Fills opt with the defaults (all fields zero except force_mode = force_xform = -1). */
void sdelta_write_options_init(SdeltaWriteOptions *opt);

/* Writes out_path as the delta of child[0..nchild) against parent. A child tensor's parent is
 * the parent tensor of the same name when dtype and shape match; otherwise (new tensor, or
 * changed dtype or shape) it is coded against zeros. Parent tensors absent from the child are
 * simply not in the delta. Tensors are stored in the order given; names must be unique.
 * opt may be NULL (defaults). The child stays owned by the caller and is only read. */
int sdelta_write(const char *out_path, const StCheckpoint *parent, const SdeltaTensorSrc *child,
                 size_t nchild, const SdeltaWriteOptions *opt, SsError *err);

/* The same with the parent also given as in-memory tensors (for a parent that is itself a
 * materialized snapshot). parent_name must be set in opt. */
int sdelta_write_tensors(const char *out_path, const SdeltaTensorSrc *parent, size_t nparent,
                         const SdeltaTensorSrc *child, size_t nchild,
                         const SdeltaWriteOptions *opt, SsError *err);

/* ---- reading ---- */

enum { SDELTA_NMODES = 7 }; /* chunk modes: unchanged, raw, sparse, dense, planes, split, escape */

typedef struct SdeltaTensorInfo {
    const char *name;      /* owned by the SdeltaFile */
    DType dtype;
    int ndim;
    const uint64_t *shape; /* ndim entries */
    uint64_t numel;        /* product of shape (1 for ndim 0) */
    uint64_t nbytes;       /* numel * dtype_size(dtype) */
    bool has_parent;       /* false: coded against zeros (no same-named parent tensor) */
    uint64_t nchanged;     /* elements whose bits differ from the parent's */
    uint64_t stored_bytes; /* chunk payload bytes */
    uint64_t nchunks;
    uint64_t chunks_by_mode[SDELTA_NMODES];
} SdeltaTensorInfo;

typedef struct SdeltaFile {
    char *path;
    uint64_t file_size;
    unsigned version_major, version_minor;
    uint64_t step;
    const char *parent_name; /* as recorded by the writer */
    uint64_t parent_hash;    /* XXH64 over the parent tensors' digests (XXH3 from format 1.2) */
    uint64_t chunk_elems;
    size_t ntensors;
    const SdeltaTensorInfo *tensors; /* in file order */
    size_t nmeta;
    const StMeta *meta;
    uint64_t header_bytes;   /* compressed header + footer + preamble */
    void *impl_;             /* private */
} SdeltaFile;

/* Opens path read-only (mmap) and validates the preamble, footer, header checksum and every
 * size and offset in the header. Chunk checksums are checked when chunks are decoded
 * (or by sdelta_verify). */
int sdelta_open(const char *path, SdeltaFile **out, SsError *err);

/* The same over bytes in memory (kept, not copied: buf must outlive the file). name is used in
 * messages. */
int sdelta_open_mem(const void *buf, size_t len, const char *name, SdeltaFile **out,
                    SsError *err);

void sdelta_close(SdeltaFile *f);

/* Index of the tensor named name, or -1. */
long sdelta_find(const SdeltaFile *f, const char *name);

/* Checks that parent (nbytes of tensor i) is the parent tensor the delta was encoded against.
 * SS_EINCOMPAT when not. For a tensor without parent, parent must be NULL. */
int sdelta_check_parent(const SdeltaFile *f, size_t i, const void *parent, SsError *err);

/* Decodes chunk c of tensor i into dst (the whole tensor's buffer; only the chunk's bytes are
 * written) from parent (the whole parent tensor, or NULL for a tensor without parent). Checks the
 * chunk checksum, not the parent. Safe to call concurrently. */
int sdelta_decode_chunk_at(const SdeltaFile *f, size_t i, uint64_t c, const void *parent,
                           void *dst, SsError *err);

/* Materializes tensor i into dst (nbytes): checks the parent, decodes every chunk (with up to
 * threads threads; 0: all online cores), then checks the child bytes. Safe to call
 * concurrently. */
int sdelta_decode_tensor(const SdeltaFile *f, size_t i, const void *parent, void *dst,
                         int threads, SsError *err);

/* Checks every chunk checksum (no parent needed); with a parent checkpoint, also decodes every
 * tensor against it and checks parent and child bytes and the file-level parent hash. */
int sdelta_verify(const SdeltaFile *f, const StCheckpoint *parent, int threads, SsError *err);

/* Computes the file-level parent hash of the tensors of parent that tensors of f name
 * (the value sdelta_write stores). */
int sdelta_parent_hash_of(const SdeltaFile *f, const StCheckpoint *parent, uint64_t *out,
                          SsError *err);

/* Writes the child checkpoint as a .safetensors file (atomically), tensor by tensor, with the
 * delta's metadata as __metadata__. */
int sdelta_apply(const SdeltaFile *f, const StCheckpoint *parent, const char *out_path,
                 int threads, SsError *err);

/* Human-readable name of a chunk mode ("unchanged", "raw", "sparse", "dense", "planes",
 * "split", "escape"). */
const char *sdelta_mode_name(int mode);

#endif
