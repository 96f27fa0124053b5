/* libFuzzer harness for the sharded-checkpoint index (model.safetensors.index.json): the input is
 * the index file. The reader only takes paths, so each process makes its own folder under $TMPDIR
 * (or /tmp) holding a few tiny shards, writes the input there as the index and opens the folder
 * with st_open; the folder is removed at exit.
 *
 * The shards (all valid unless said otherwise):
 *   a.safetensors    x (U8 [2]), y (F32 [])
 *   b.safetensors    z (BF16 [1])
 *   c.safetensors    x (U8 [2]) again, so "found in two files" is reachable
 *   e.safetensors    no tensors
 *   bad.safetensors  7 bytes: malformed
 *   model.safetensors  w (U8 [1]): not opened unless the index names it as a shard
 *   sub/             a folder ("not a regular file")
 * On success every tensor must be found by name and the weight_map and shards must agree (the
 * checkpoint holds only names the fixture has, each from a shard that has it); on failure the
 * message must be one line starting with the folder's path. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/safetensors.h"

static char dir[4096];
static char index_path[4200];

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_st_index: broken promise: %s\n", what);
    abort();
}

/* Writes n bytes to dir/name; aborts on failure (the fixture must exist). */
static void put(const char *name, const void *bytes, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(bytes, 1, n, fp) != n || fclose(fp) != 0) {
        perror(path);
        abort();
    }
}

/* A safetensors file: the 8-byte length, the header, the data. */
static void put_st(const char *name, const char *header, const char *data, size_t ndata)
{
    size_t h = strlen(header);
    unsigned char buf[512];
    if (8 + h + ndata > sizeof buf)
        abort();
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    memcpy(buf + 8 + h, data, ndata);
    put(name, buf, 8 + h + ndata);
}

static void cleanup(void)
{
    static const char *const names[] = {"a.safetensors", "b.safetensors", "c.safetensors",
                                        "e.safetensors", "bad.safetensors", "model.safetensors",
                                        "model.safetensors.index.json"};
    char path[4200];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ss-fuzz-index-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        abort();
    }
    atexit(cleanup);
    snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir);
    put_st("a.safetensors",
           "{\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
           "\"y\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[2,6]}}",
           "\1\2\0\0\200\77", 6);
    put_st("b.safetensors", "{\"z\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]}}",
           "\0\1", 2);
    put_st("c.safetensors", "{\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}",
           "\3\4", 2);
    put_st("e.safetensors", "{\"__metadata__\":{\"format\":\"pt\"}}", "", 0);
    put("bad.safetensors", "\2\0\0\0\0\0\0", 7);
    put_st("model.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
           "\5", 1);
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    if (mkdir(sub, 0700) != 0) {
        perror(sub);
        abort();
    }
}

/* Where the fixture holds name: a bit per shard (a=1, b=2, c=4, model.safetensors=8). */
static unsigned fixture_shards(const char *name)
{
    if (!strcmp(name, "x"))
        return 1 | 4;
    if (!strcmp(name, "y"))
        return 1;
    if (!strcmp(name, "z"))
        return 2;
    if (!strcmp(name, "w"))
        return 8;
    return 0;
}

static void check_checkpoint(const StCheckpoint *ck)
{
    uint64_t total = 0;
    for (size_t i = 0; i < ck->ntensors; i++) {
        const StTensor *t = ck->tensors[i];
        if (i && strcmp(ck->tensors[i - 1]->name, t->name) >= 0)
            fail("tensors not sorted by name, or a duplicate");
        if (st_find(ck, t->name) != t)
            fail("st_find");
        const char *base = strrchr(t->file, '/');
        unsigned where = fixture_shards(t->name);
        unsigned shard = !base ? 0 : !strcmp(base, "/a.safetensors") ? 1
                                   : !strcmp(base, "/b.safetensors") ? 2
                                   : !strcmp(base, "/c.safetensors") ? 4
                                   : !strcmp(base, "/model.safetensors") ? 8 : 0;
        if (!(where & shard))
            fail("a tensor from a shard that does not hold it");
        total += t->nbytes;
    }
    if (total != ck->total_bytes)
        fail("total_bytes");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0])
        setup();
    put("model.safetensors.index.json", data, size);
    StCheckpoint *ck;
    SsError e = {0};
    int rc = st_open(dir, &ck, &e);
    if (rc) {
        if (rc != SS_EINPUT && rc != SS_EOUTPUT)
            fail("unexpected error code");
        if (strncmp(e.msg, dir, strlen(dir)) != 0)
            fail("message does not start with the folder's path");
        for (const unsigned char *p = (const unsigned char *)e.msg; *p; p++)
            if (*p < 0x20 || *p == 0x7f)
                fail("control byte in the message");
        return 0;
    }
    check_checkpoint(ck);
    st_close(ck);
    return 0;
}
