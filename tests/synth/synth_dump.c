/* Test helper for ckpt-synth: reads checkpoints through the project's reader (st_open).
 *
 *   synth_dump list CKPT       one line per tensor, by name: "NAME\tDTYPE\td0,d1,...\tFILE"
 *   synth_dump count A B       per tensor of A (by name) "NAME\tNUMEL\tCHANGED", then
 *                              "TOTAL\tNUMEL\tCHANGED": elements whose stored bits differ, +0 and
 *                              -0 counted equal (float dtypes), as sparsity-scan defines it
 *   synth_dump heads A B NAME HEAD_DIM AXIS
 *                              changed elements per head of a 2-D tensor: AXIS 0 groups rows,
 *                              AXIS 1 groups columns, HEAD_DIM rows/columns a head; one line
 *                              "h0 h1 ..."
 * Exit status: 0, or 2 when a checkpoint cannot be read or the two do not match. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"

static const char *file_base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int cmd_list(const StCheckpoint *ck)
{
    for (size_t i = 0; i < ck->ntensors; i++) {
        const StTensor *t = ck->tensors[i];
        printf("%s\t%s\t", t->name, dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            printf("%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
        printf("\t%s\n", file_base(t->file));
    }
    return 0;
}

/* Element k of a and b differ in their bits, +0 == -0 for floats. */
static int elem_changed(const StTensor *t, const uint8_t *a, const uint8_t *b, uint64_t k)
{
    size_t es = dtype_size(t->dtype);
    if (memcmp(a + k * es, b + k * es, es) == 0)
        return 0;
    if (!dtype_is_float(t->dtype))
        return 1;
    /* equal unless they differ only in the sign bit of a zero */
    uint8_t x[8], y[8];
    memcpy(x, a + k * es, es);
    memcpy(y, b + k * es, es);
    x[es - 1] &= 0x7F; /* little endian: the sign is the top bit of the last byte */
    y[es - 1] &= 0x7F;
    for (size_t j = 0; j < es; j++)
        if (x[j] || y[j])
            return 1;
    return 0;
}

static const StTensor *match(const StCheckpoint *b, const StTensor *ta)
{
    const StTensor *tb = st_find(b, ta->name);
    if (!tb || tb->dtype != ta->dtype || tb->numel != ta->numel) {
        fprintf(stderr, "synth_dump: tensor '%s' missing or different in B\n", ta->name);
        return NULL;
    }
    return tb;
}

static int cmd_count(const StCheckpoint *a, const StCheckpoint *b)
{
    if (a->ntensors != b->ntensors) {
        fprintf(stderr, "synth_dump: %zu tensors vs %zu\n", a->ntensors, b->ntensors);
        return 2;
    }
    unsigned long long total = 0, changed = 0;
    for (size_t i = 0; i < a->ntensors; i++) {
        const StTensor *ta = a->tensors[i], *tb = match(b, ta);
        if (!tb)
            return 2;
        unsigned long long c = 0;
        for (uint64_t k = 0; k < ta->numel; k++)
            c += (unsigned long long)elem_changed(ta, ta->data, tb->data, k);
        printf("%s\t%llu\t%llu\n", ta->name, (unsigned long long)ta->numel, c);
        total += ta->numel;
        changed += c;
    }
    printf("TOTAL\t%llu\t%llu\n", total, changed);
    return 0;
}

static int cmd_heads(const StCheckpoint *a, const StCheckpoint *b, const char *name,
                     unsigned long hd, int axis)
{
    const StTensor *ta = st_find(a, name);
    const StTensor *tb = ta ? match(b, ta) : NULL;
    if (!ta || !tb || ta->ndim != 2 || hd == 0 || ta->shape[axis] % hd) {
        fprintf(stderr, "synth_dump: no 2-D tensor '%s' divisible by %lu\n", name, hd);
        return 2;
    }
    uint64_t rows = ta->shape[0], cols = ta->shape[1], nh = ta->shape[axis] / hd;
    unsigned long long *per = calloc(nh, sizeof *per);
    if (!per)
        return 2;
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++)
            per[(axis == 0 ? r : c) / hd] +=
                (unsigned long long)elem_changed(ta, ta->data, tb->data, r * cols + c);
    for (uint64_t h = 0; h < nh; h++)
        printf("%s%llu", h ? " " : "", per[h]);
    printf("\n");
    free(per);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: synth_dump list CKPT | count A B | heads A B NAME HEAD_DIM AXIS\n");
        return 1;
    }
    SsError err = {0};
    StCheckpoint *a = NULL, *b = NULL;
    if (st_open(argv[2], &a, &err) != 0) {
        fprintf(stderr, "synth_dump: %s\n", err.msg);
        return 2;
    }
    int rc = 1;
    if (strcmp(argv[1], "list") == 0 && argc == 3) {
        rc = cmd_list(a);
    } else if ((strcmp(argv[1], "count") == 0 && argc == 4) ||
               (strcmp(argv[1], "heads") == 0 && argc == 7)) {
        if (st_open(argv[3], &b, &err) != 0) {
            fprintf(stderr, "synth_dump: %s\n", err.msg);
            rc = 2;
        } else if (argv[1][0] == 'c') {
            rc = cmd_count(a, b);
        } else {
            rc = cmd_heads(a, b, argv[4], strtoul(argv[5], NULL, 10), atoi(argv[6]) ? 1 : 0);
        }
    }
    st_close(a);
    st_close(b);
    return rc;
}
