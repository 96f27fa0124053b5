/* Test helper: opens a checkpoint with st_open and reports the result.
 *
 *   st_check [--dump] PATH
 *
 * On success prints "ok N tensors" (exit 0); with --dump it then prints, per tensor in name order,
 * one JSON line {"name", "dtype", "shape", "nbytes", "fnv1a64" (hex of the data bytes), "file"
 * (base name)} and, for each file with metadata, {"file", "metadata": {...}}. On failure prints
 * the library's one-line message on stderr and exits with ss_exit_status (2 for bad input). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "formats/safetensors.h"

/* 64-bit FNV-1a of n bytes. */
static uint64_t fnv1a64(const unsigned char *p, uint64_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Prints j as one compact line and frees it. */
static void print_json_line(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

static void dump(const StCheckpoint *ck)
{
    for (size_t i = 0; i < ck->ntensors; i++) {
        const StTensor *t = ck->tensors[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
        char hash[17];
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a64(t->data, t->nbytes));
        print_json_line(json_pack("{s:s, s:s, s:o, s:I, s:s, s:s}", "name", t->name, "dtype",
                                  dtype_name(t->dtype), "shape", shape, "nbytes",
                                  (json_int_t)t->nbytes, "fnv1a64", hash, "file",
                                  base_name(t->file)));
    }
    for (size_t i = 0; i < ck->nfiles; i++) {
        const StFile *f = ck->files[i];
        if (!f->nmeta)
            continue;
        json_t *meta = json_object();
        for (size_t k = 0; k < f->nmeta; k++)
            json_object_set_new(meta, f->meta[k].key, json_string(f->meta[k].value));
        print_json_line(json_pack("{s:s, s:o}", "file", base_name(f->path), "metadata", meta));
    }
}

int main(int argc, char **argv)
{
    int want_dump = argc == 3 && strcmp(argv[1], "--dump") == 0;
    if (argc != 2 + want_dump) {
        fprintf(stderr, "usage: st_check [--dump] PATH\n");
        return 1;
    }
    SsError err = {0};
    StCheckpoint *ck;
    int rc = st_open(argv[argc - 1], &ck, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return ss_exit_status(rc);
    }
    printf("ok %zu tensors\n", ck->ntensors);
    if (want_dump)
        dump(ck);
    st_close(ck);
    return 0;
}
