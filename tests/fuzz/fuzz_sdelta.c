/* libFuzzer harness for the .sdelta decoder (built with clang -fsanitize=fuzzer and
 * -DSDELTA_FUZZING, which makes checksum comparisons pass so mutations reach the parser).
 *
 * Input byte 0 selects the target (its low two bits):
 *   1, 3: the rest is a whole .sdelta file: open it from memory, check chunks, decode every
 *         tensor (up to 4 MiB each) against a patterned parent
 *   2:    a raw (uncompressed) header: bytes 1-2 its length (u16 LE), then the header, then the
 *         data section it describes; parsed directly and decoded as above
 *   0:    one chunk: byte 1 = flags (bits 0-1 width 1/2/4/8, bit 2 float, bit 3 parent),
 *         byte 2 = mode, bytes 3-4 = element count - 1 (u16 LE), byte 5 = changed count
 *         (low 8 bits; high bits from byte 6), then the payload */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/sdelta/sdelta.h"
#include "formats/sdelta/sdelta_chunk.h"

#define MAX_TENSOR_BYTES (4u << 20)

static void pattern(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131u + 7u);
}

int sdelta_fuzz_open_header(const uint8_t *h, size_t hlen, const uint8_t *data, size_t len,
                            SdeltaFile **out, SsError *err);

static void decode_all(SdeltaFile *f)
{
    SsError e;
    sdelta_verify(f, NULL, 1, &e);
    for (size_t i = 0; i < f->ntensors; i++) {
        const SdeltaTensorInfo *t = &f->tensors[i];
        if (t->nbytes > MAX_TENSOR_BYTES)
            continue;
        uint8_t *parent = malloc((size_t)t->nbytes + 1), *dst = malloc((size_t)t->nbytes + 1);
        if (parent && dst) {
            pattern(parent, (size_t)t->nbytes);
            sdelta_decode_tensor(f, i, parent, dst, 1, &e);
            if (t->nchunks)
                sdelta_decode_chunk_at(f, i, t->nchunks - 1, parent, dst, &e);
        }
        free(parent);
        free(dst);
    }
    sdelta_close(f);
}

static void fuzz_file(const uint8_t *data, size_t size)
{
    SdeltaFile *f;
    SsError e;
    if (sdelta_open_mem(data, size, "fuzz.sdelta", &f, &e) == 0)
        decode_all(f);
}

static void fuzz_header(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    size_t hlen = (size_t)(data[0] | (data[1] << 8));
    if (hlen > size - 2)
        return;
    SdeltaFile *f;
    SsError e;
    if (sdelta_fuzz_open_header(data + 2, hlen, data + 2 + hlen, size - 2 - hlen, &f, &e) == 0)
        decode_all(f);
}

static void fuzz_chunk(const uint8_t *data, size_t size)
{
    if (size < 7)
        return;
    static const unsigned widths[] = {1, 2, 4, 8};
    SdChunkShape sh = {(size_t)(data[3] | (data[4] << 8)) + 1, widths[data[1] & 3],
                       (data[1] & 4) != 0};
    bool has_parent = data[1] & 8;
    uint64_t nchanged = data[5] | ((uint64_t)data[6] << 8);
    size_t n = sh.m * sh.width;
    uint8_t *parent = malloc(n), *dst = malloc(n);
    SdChunkScratch scr = {0};
    if (parent && dst) {
        pattern(parent, n);
        const char *why;
        sdelta_decode_chunk(&sh, data[2], data + 7, size - 7, nchanged, has_parent ? parent : NULL,
                            NULL, 0, &scr, dst, &why);
    }
    sdelta_chunk_scratch_free(&scr);
    free(parent);
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_file(data + 1, size - 1);
    else if ((data[0] & 3) == 2)
        fuzz_header(data + 1, size - 1);
    else
        fuzz_chunk(data, size);
    return 0;
}
