/* One chunk of one tensor: a fixed number of elements, coded against the same elements of the
 * parent, independently of every other chunk. The encoder picks the smallest of the modes in
 * sdelta_format.h; the decoder rebuilds the child chunk from the parent chunk and the payload.
 * Private to formats/sdelta/. */
#ifndef SDELTA_CHUNK_H
#define SDELTA_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/sdelta/sdelta_format.h"
#include "formats/sdelta/sdelta_rans.h"

/* Roles of shared tables (header tables a small chunk may use instead of inline tables). */
enum { SDELTA_ROLE_GAP = 0, SDELTA_ROLE_VAL_XOR = 1, SDELTA_ROLE_VAL_SUB = 2, SDELTA_ROLE_COUNT };

/* The layout of one chunk's elements. */
typedef struct SdChunkShape {
    size_t m;       /* elements */
    unsigned width; /* bytes per element: 1, 2, 4 or 8 */
    bool is_float;  /* sign-magnitude ordering for the SUB transform */
} SdChunkShape;

/* Token statistics of a chunk, for choosing modes and building shared tables. */
typedef struct SdChunkStats {
    uint64_t nchanged;
    uint64_t gap[SDELTA_NSYMS];
    uint64_t val[SDELTA_XFORM_COUNT][SDELTA_NSYMS];
    uint64_t gap_extra_bits;
    uint64_t val_extra_bits[SDELTA_XFORM_COUNT];
} SdChunkStats;

/* Per-thread scratch, grown on demand; zero-initialize, free with sdelta_chunk_scratch_free. */
typedef struct SdChunkScratch {
    size_t cap;        /* elements the arrays hold */
    uint32_t *pos;     /* changed positions */
    uint8_t *tok_a;    /* gap tokens / dense tokens */
    uint8_t *tok_b;    /* value tokens */
    uint8_t *planes;   /* byte planes (m * width) */
    SdRansDecTable *dec_a, *dec_b; /* dec_b = dec_a + 1 (one allocation) */
    uint8_t *bits_g, *bits_v; /* extra bits of gaps and values (encoder) */
    size_t bits_cap;          /* changed elements they hold */
} SdChunkScratch;

void sdelta_chunk_scratch_free(SdChunkScratch *s);

/* Shared tables visible to one chunk: role -> table and its index in the header (or NULL). */
typedef struct SdSharedTables {
    const SdRansTable *table[SDELTA_ROLE_COUNT];
    uint32_t index[SDELTA_ROLE_COUNT];
} SdSharedTables;

#define SDELTA_FORCE_V11 (-2)

typedef struct SdChunkEncodeOpts {
    int force_mode;  /* -1: smallest; SDELTA_FORCE_V11: smallest of the format 1.1 modes (no
                        ESCAPE); else an SDELTA_MODE_* (UNCHANGED only when unchanged) */
    int force_xform; /* -1: smallest; else an SDELTA_XFORM_* */
    int zstd_level;  /* for PLANES */
} SdChunkEncodeOpts;

/* Number of elements whose bits differ (parent NULL: nonzero elements). */
uint64_t sdelta_chunk_count_changes(const SdChunkShape *sh, const uint8_t *parent,
                                    const uint8_t *child);

/* Counts changed elements and fills token statistics (parent NULL means all-zero parent).
 * Returns -1 when scratch cannot grow. */
int sdelta_chunk_stats(const SdChunkShape *sh, const uint8_t *parent, const uint8_t *child,
                       SdChunkScratch *scr, SdChunkStats *st);

/* Encodes a chunk: sets *mode and *nchanged and appends the payload (nothing for UNCHANGED).
 * shared may be NULL. Returns 0, or -1 on allocation failure. */
int sdelta_encode_chunk(const SdChunkShape *sh, const uint8_t *parent, const uint8_t *child,
                        const SdSharedTables *shared, const SdChunkEncodeOpts *opt,
                        SdChunkScratch *scr, uint8_t *mode, uint64_t *nchanged, SdBuf *payload);

/* Decodes a chunk into dst (m * width bytes). parent NULL means an all-zero parent. The shared
 * tables are the header's. Returns 0, or -1 with *why set to a static reason (malformed payload,
 * changed count mismatch) or "out of memory". */
int sdelta_decode_chunk(const SdChunkShape *sh, uint8_t mode, const uint8_t *payload, size_t len,
                        uint64_t nchanged, const uint8_t *parent, const SdRansTable *shared,
                        size_t nshared, SdChunkScratch *scr, uint8_t *dst, const char **why);

#endif
