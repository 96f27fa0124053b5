/* A checkpoint as sparsity-scan reads it: a safetensors checkpoint (file, sharded folder, folder
 * with model.safetensors), whose tensors are mapped, or a run snapshot "RUN@STEP" / "RUN@base" /
 * "RUN@latest", whose tensors are decoded one at a time from the .sdelta files into memory and
 * never written to disk. Both present the same name-sorted tensor listing. */
#ifndef SS_CKPT_SOURCE_H
#define SS_CKPT_SOURCE_H

#include <stdint.h>

#include "formats/safetensors.h"
#include "formats/sdelta/run.h"
#include "formats/ss_error.h"

typedef struct CkptSource {
    StCheckpoint *st;      /* a safetensors checkpoint, or NULL */
    RunCheckpoint *run;    /* a run snapshot, or NULL */
    /* The listing for both kinds: for a run, tensors with data == NULL (call ckpt_source_read). */
    const StCheckpoint *listing;
    StCheckpoint run_listing;
    StTensor *run_tensors;
} CkptSource;

/* Opens spec: RUN@... when run_is_spec(spec) holds and spec is not an existing path, else a
 * safetensors checkpoint (st_open). */
int ckpt_source_open(const char *spec, int threads, CkptSource **out, SsError *err);
void ckpt_source_close(CkptSource *s);

/* True when the tensors' bytes are mapped (t->data valid); false when they must be read. */
int ckpt_source_is_mapped(const CkptSource *s);

/* Bytes of the files behind s: every file of a safetensors checkpoint; for a run snapshot, the
 * base plus the snapshot's .sdelta file (earlier snapshots of a chain are not counted). */
uint64_t ckpt_source_file_bytes(const CkptSource *s);

/* The bytes of tensor t (an entry of s->listing): the mapping itself when mapped (*owned NULL),
 * else a materialized copy in *owned (malloc'd; the caller frees it, also on failure). */
int ckpt_source_bytes(CkptSource *s, const StTensor *t, const void **data, void **owned,
                      SsError *err);

/* Materializes tensor t (an entry of s->listing) into dst (t->nbytes bytes). */
int ckpt_source_read(CkptSource *s, const StTensor *t, void *dst, SsError *err);

#endif
