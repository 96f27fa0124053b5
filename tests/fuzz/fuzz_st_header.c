/* libFuzzer harness for the safetensors header parser: the input is a whole .safetensors file,
 * opened from memory (st_file_open_mem, the same checks as st_file_open without the file system).
 *
 * On success it checks what the reader promises (docs/safetensors-validation.md) and aborts when a
 * promise is broken: tensors sorted by offset and tiling the data section exactly, byte counts
 * equal to numel times the dtype size, data pointers inside the input (the first and last byte of
 * each tensor are read, so ASan catches a pointer past the buffer), names without NUL; then it
 * builds a one-file checkpoint (st_checkpoint_collect) and finds every tensor by name. On failure
 * the message must be one line starting with the file name, with control bytes escaped. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/st_internal.h"

#define NAME "fuzz.safetensors"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_st_header: broken promise: %s\n", what);
    abort();
}

/* The one-line message rule shared by every failure. */
static void check_message(const SsError *e, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(e->msg, prefix, n) != 0 || e->msg[n] != ':')
        fail("message does not start with the file name");
    for (const unsigned char *p = (const unsigned char *)e->msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            fail("control byte in the message");
}

static void check_file(const StFile *f, const uint8_t *data, size_t size)
{
    if (f->file_size != size || f->header_len > size - 8)
        fail("file size or header length");
    uint64_t data_len = size - 8 - f->header_len;
    const uint8_t *base = data + 8 + f->header_len;
    uint64_t end = 0;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < f->ntensors; i++) {
        const StTensor *t = &f->tensors[i];
        uint64_t numel, nbytes;
        if (!st_shape_nbytes(t->dtype, t->ndim, t->shape, &numel, &nbytes) ||
            numel != t->numel || nbytes != t->nbytes)
            fail("numel or nbytes");
        if (t->offset != end) /* sorted by offset, no hole, no overlap */
            fail("tensors do not tile the data section");
        if (t->offset > data_len || t->nbytes > data_len - t->offset)
            fail("tensor past the data section");
        if (t->data != base + t->offset || !t->data || t->file != f->path)
            fail("data pointer");
        if (t->nbytes) {
            sink ^= ((const uint8_t *)t->data)[0];
            sink ^= ((const uint8_t *)t->data)[t->nbytes - 1];
        }
        end = t->offset + t->nbytes;
    }
    if (end != data_len)
        fail("data section not covered");
    for (size_t i = 0; i < f->nmeta; i++)
        if (!f->meta[i].key || !f->meta[i].value)
            fail("metadata entry");
    (void)sink;
}

/* One-file checkpoint: every tensor can be found by name, or the names clash (reported). */
static void check_checkpoint(StFile *f)
{
    StFile *files[1] = {f};
    StCheckpoint ck = {.path = (char *)NAME, .nfiles = 1, .files = files};
    SsError e;
    if (st_checkpoint_collect(&ck, &e) != 0)
        fail("a validated file's tensors do not form a checkpoint");
    for (size_t i = 0; i < f->ntensors; i++)
        if (st_find(&ck, f->tensors[i].name) != &f->tensors[i])
            fail("st_find");
    free(ck.tensors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    StFile *f;
    SsError e = {0};
    int rc = st_file_open_mem(data, size, NAME, &f, &e);
    if (rc) {
        if (rc != SS_EINPUT && rc != SS_EOUTPUT)
            fail("unexpected error code");
        check_message(&e, NAME);
        return 0;
    }
    check_file(f, data, size);
    check_checkpoint(f);
    st_file_close(f);
    return 0;
}
