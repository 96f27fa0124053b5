/* Helpers shared by the sdelta C tests: a seeded generator, parent/child tensor pairs of every
 * dtype at a chosen density of changes, temporary folders, and CHECK. */
#ifndef SDELTA_TESTUTIL_H
#define SDELTA_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/dtype.h"
#include "formats/sdelta/sdelta.h"

static int tu_failures __attribute__((unused));
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            tu_failures++;                                                                         \
        }                                                                                          \
    } while (0)

static uint64_t tu_rng = 0x9E3779B97F4A7C15ull;
static inline uint64_t tu_next(void)
{
    tu_rng ^= tu_rng << 13;
    tu_rng ^= tu_rng >> 7;
    tu_rng ^= tu_rng << 17;
    return tu_rng;
}

/* A tensor pair owned by the test: parent and child bytes with the same description. */
typedef struct TuPair {
    char name[64];
    DType dtype;
    int ndim;
    uint64_t shape[4];
    uint64_t numel, nbytes;
    uint8_t *parent, *child;
} TuPair;

/* Fills a pair: random parent bytes; density of the elements changed, mostly by a few units in
 * the low bits (as training does), sometimes to any value. */
static inline void tu_pair(TuPair *p, const char *name, DType dt, int ndim, const uint64_t *shape,
                           double density)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->dtype = dt;
    p->ndim = ndim;
    p->numel = 1;
    for (int d = 0; d < ndim; d++) {
        p->shape[d] = shape[d];
        p->numel *= shape[d];
    }
    size_t w = dtype_size(dt);
    p->nbytes = p->numel * w;
    p->parent = malloc(p->nbytes + 1);
    p->child = malloc(p->nbytes + 1);
    for (uint64_t i = 0; i < p->nbytes; i++)
        p->parent[i] = (uint8_t)tu_next();
    memcpy(p->child, p->parent, p->nbytes);
    for (uint64_t i = 0; i < p->numel; i++) {
        if ((double)(tu_next() % 1000000) / 1e6 >= density)
            continue;
        uint64_t x = 0, r = tu_next();
        memcpy(&x, p->parent + i * w, w);
        if (r % 40 == 0)
            x = tu_next();
        else
            x += (r & 16) ? (r >> 5) % 4 + 1 : -(uint64_t)((r >> 5) % 4 + 1);
        memcpy(p->child + i * w, &x, w);
        if (memcmp(p->child + i * w, p->parent + i * w, w) == 0)
            p->child[i * w] ^= 1;
    }
}

static inline void tu_pair_free(TuPair *p)
{
    free(p->parent);
    free(p->child);
}

static inline SdeltaTensorSrc tu_src(const TuPair *p, bool child)
{
    SdeltaTensorSrc s = {p->name, p->dtype, p->ndim, p->shape, child ? p->child : p->parent};
    return s;
}

/* A fresh temporary folder (caller frees the string; removal with tu_rmtree). */
static inline char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *p;
    if (asprintf(&p, "%s/sdelta-%s-XXXXXX", base ? base : "/tmp", tag) < 0 || !mkdtemp(p)) {
        perror("mkdtemp");
        exit(2);
    }
    return p;
}

static inline void tu_rmtree(const char *dir)
{
    char *cmd;
    if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0) {
        if (system(cmd) != 0)
            fprintf(stderr, "warning: could not remove %s\n", dir);
        free(cmd);
    }
}

static inline uint8_t *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

#endif
