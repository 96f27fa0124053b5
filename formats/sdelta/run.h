/* Run folders: a training run's checkpoints as one base and compressed delta snapshots.
 *
 *   RUN/base.safetensors               the full initial weights
 *   RUN/snapshots/step-NNNNNN.sdelta    step N as a delta against its parent, which is
 *                                       base.safetensors (the default: any step materializes
 *                                       with one decode) or the previous snapshot (a chain)
 *
 * A checkpoint inside a run is named by a spec "RUN@STEP", "RUN@base" or "RUN@latest" (the
 * highest step; the base when there are no snapshots). Opening one reads only headers; tensors
 * are materialized one at a time into caller memory, never written to disk. Files in
 * snapshots/ whose names are not exactly step-<digits>.sdelta (temporary files of an
 * interrupted writer, for instance) are ignored.
 *
 * Every function returning int returns 0 or a negative SS_E* code and fills err. */
#ifndef SDELTA_RUN_H
#define SDELTA_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "formats/sdelta/sdelta.h"
#include "formats/ss_error.h"

#define RUN_BASE_NAME "base.safetensors"
#define RUN_SNAPSHOT_DIR "snapshots"

/* One tensor of a run checkpoint: the same fields as StTensor's description of a tensor. */
typedef struct RunTensor {
    const char *name;      /* owned by the RunCheckpoint */
    DType dtype;
    int ndim;
    const uint64_t *shape; /* ndim entries */
    uint64_t numel;        /* product of shape (1 for ndim 0) */
    uint64_t nbytes;       /* numel * dtype_size(dtype) */
} RunTensor;

typedef struct RunCheckpoint {
    char *spec;               /* as given to run_open */
    char *dir;                /* the run folder */
    bool is_base;             /* the spec resolved to the base */
    uint64_t step;            /* the snapshot's step (0 for the base) */
    size_t chain_length;      /* deltas decoded per tensor: 0 for the base, 1 for a snapshot
                                 against the base, more for a chain */
    size_t ntensors;
    const RunTensor *tensors; /* sorted by name (strcmp order) */
    uint64_t total_bytes;     /* sum of nbytes */
    int threads;              /* decode threads per run_tensor_read; 1 by default, 0: all cores */
    void *impl_;              /* private */
} RunCheckpoint;

/* True when s has the form PATH@base, PATH@latest or PATH@<digits> with a non-empty PATH.
 * Purely syntactic: it does not look at the file system. */
bool run_is_spec(const char *s);

/* Opens a run checkpoint. Errors: SS_EUSAGE for a malformed spec, SS_EINPUT when the folder,
 * base or snapshot is missing or malformed, or a chain is broken. */
int run_open(const char *spec, RunCheckpoint **out, SsError *err);

/* Index of the tensor named name, or -1. */
long run_find(const RunCheckpoint *rc, const char *name);

/* Materializes tensor i into dst (tensors[i].nbytes bytes): the base's bytes, or the parent's
 * bytes (mapped from the base, or materialized from the previous snapshot) with the delta
 * applied; checks parent and child bytes. Safe to call from several threads at once. */
int run_tensor_read(RunCheckpoint *rc, size_t i, void *dst, SsError *err);

void run_close(RunCheckpoint *rc);

/* The steps of the snapshots in dir/snapshots, ascending (*steps NULL when none; free it). */
int run_list_steps(const char *dir, uint64_t **steps, size_t *n, SsError *err);

/* "DIR/snapshots/step-NNNNNN.sdelta" (caller frees), or NULL when out of memory. */
char *run_snapshot_path(const char *dir, uint64_t step);

typedef struct RunWriteOptions {
    bool chain;                 /* parent: the latest snapshot before step (else the base) */
    const SdeltaTensorSrc *prev; /* with chain: that snapshot's tensors if the caller holds them
                                    (else they are materialized from the run) */
    size_t nprev;
    const StMeta *meta;         /* user metadata for the header */
    size_t nmeta;
    int threads;                /* encoder threads; 0: all cores */
} RunWriteOptions;

/* Writes DIR/snapshots/step-NNNNNN.sdelta (creating snapshots/) for the child tensors held by
 * the caller, atomically. opt may be NULL (parent: the base). */
int run_write_snapshot(const char *dir, uint64_t step, const SdeltaTensorSrc *child, size_t nchild,
                       const RunWriteOptions *opt, SsError *err);

#endif
