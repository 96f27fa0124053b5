/* The parsed form of an open .sdelta file, shared by the reading side (sdelta_decode.c,
 * sdelta_apply.c). Private to formats/sdelta/. */
#ifndef SDELTA_FILE_H
#define SDELTA_FILE_H

#include "formats/sdelta/sdelta.h"
#include "formats/sdelta/sdelta_rans.h"

typedef struct SdChunkRec {
    uint64_t offset;   /* from the start of the file */
    uint64_t size;     /* payload bytes */
    uint64_t nchanged;
    uint32_t check;    /* low 32 bits of XXH64(payload) */
    uint8_t mode;
} SdChunkRec;

typedef struct SdTensorRec {
    uint32_t parent_check, child_check;
    uint64_t first_chunk;
    unsigned width;
    bool is_float;
} SdTensorRec;

typedef struct SdFileImpl {
    const uint8_t *base; /* the whole file */
    size_t len;
    bool mapped;         /* munmap base on close */
    SdeltaTensorInfo *tensors;
    SdTensorRec *recs;
    SdChunkRec *chunks;
    uint64_t nchunks;
    uint64_t *shapes;    /* all tensors' dims */
    SdRansTable *tables;
    size_t ntables;
    StMeta *meta;
    char *strings;       /* every name, dtype, key and value, NUL-terminated, back to back */
    size_t *by_name;     /* tensor indices sorted by name */
} SdFileImpl;

static inline SdFileImpl *sdelta_impl(const SdeltaFile *f) { return (SdFileImpl *)f->impl_; }

#endif
