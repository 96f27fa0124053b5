/* Private to formats/safetensors_*.c: the parsed header of one file, the checkpoint helpers the
 * single-file and sharded-index paths share, and message helpers. Not installed, not for callers
 * outside formats/. */
#ifndef SS_ST_INTERNAL_H
#define SS_ST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "formats/safetensors.h"

/* A validated header: tensors sorted by data offset, covering the data section contiguously.
 * tensors[i].data and .file are left NULL for the caller (the reader) to fill. */
typedef struct StHeader {
    size_t ntensors;
    StTensor *tensors;
    size_t nmeta;
    StMeta *meta;     /* in header order */
    char *strings;    /* arena holding every name, key and value, NUL-terminated */
    uint64_t *shapes; /* arena holding every shape */
} StHeader;

/* Validates the JSON header json[0..len) of the file at path, whose data section (the bytes after
 * the header) is data_len bytes long. Returns 0 and fills out, or SS_EINPUT with a message
 * "<path>: [tensor '<name>': ]<reason>" (SS_EOUTPUT when out of memory). The rules are listed in
 * docs/safetensors-validation.md. */
int st_header_parse(const char *path, const unsigned char *json, size_t len, uint64_t data_len,
                    StHeader *out, SsError *err);
void st_header_free(StHeader *h);

/* st_file_open on the len bytes at buf instead of a file (name stands for the path in messages
 * and StFile.path): the same checks and messages, except that the file-system ones (cannot open,
 * not a regular file) cannot occur. Tensor data points into buf, which must outlive the StFile.
 * For the fuzz harness (tests/fuzz/fuzz_st_header.c). */
int st_file_open_mem(const void *buf, size_t len, const char *name, StFile **out, SsError *err);

/* Fills ck->tensors (sorted by name) and ck->total_bytes from ck->files; a name held by two
 * files is an SS_EINPUT error naming both. */
int st_checkpoint_collect(StCheckpoint *ck, SsError *err);

/* Opens the shards listed in the index file index_path (inside folder dir) into ck->files, then
 * checks that the index's weight_map and the shards agree exactly; also calls
 * st_checkpoint_collect. On error ck may hold some opened files; st_close frees them. */
int st_index_open(const char *dir, const char *index_path, StCheckpoint *ck, SsError *err);

/* Copies s into dst (capacity cap >= 8) for use inside a one-line message: control bytes become
 * \xNN and long strings are cut with "...". Returns dst. */
char *st_quote(char *dst, size_t cap, const char *s);

/* "a JSON array", "a JSON string", ... for messages. */
const char *st_json_kind(const json_t *v);

#endif
