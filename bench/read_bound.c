/* read-bound: the speed limit of any scan of these files. Maps each file read-only the way the
 * safetensors reader does (mmap PROT_READ, MAP_PRIVATE, MADV_SEQUENTIAL), reads every byte once
 * on all cores (sums 64-bit words per 4 MiB chunk), and prints bytes, seconds and GB/s
 * (10^9 bytes/s) from before the first open to after the last munmap.
 *
 * usage: read-bound [--threads N] [--json] FILE...
 * exit status: 0 ok, 1 usage, 2 a file cannot be opened or mapped, 4 no threads */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernels/threadpool.h"

#define CHUNK_BYTES ((size_t)4 << 20)
#define MAX_FILES 64

typedef struct Mapped {
    const uint8_t *p;
    size_t size;
} Mapped;

typedef struct Job {
    Mapped files[MAX_FILES];
    size_t nfiles;
    size_t *chunk_file;   /* per chunk: which file */
    size_t *chunk_off;    /* per chunk: byte offset in it */
    uint64_t *chunk_sum;  /* per chunk: the sum, so that the reads cannot be optimized away */
} Job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sum of n 64-bit words: a reduction GCC vectorizes; compiled for SSE2, AVX2 and AVX-512 and
 * picked at load time, so that the bound uses the widest loads this CPU has. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#endif
static uint64_t words_sum(const uint64_t *q, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += q[i];
    return s;
}

static void chunk_read(void *ctx, size_t i, int worker)
{
    (void)worker;
    Job *j = ctx;
    const Mapped *m = &j->files[j->chunk_file[i]];
    size_t off = j->chunk_off[i]; /* a multiple of CHUNK_BYTES: 8-byte aligned in the mapping */
    size_t len = m->size - off < CHUNK_BYTES ? m->size - off : CHUNK_BYTES;
    const uint8_t *p = m->p + off;
    uint64_t s = words_sum((const uint64_t *)(const void *)p, len / 8);
    for (size_t k = len / 8 * 8; k < len; k++)
        s += p[k];
    j->chunk_sum[i] = s;
}

int main(int argc, char **argv)
{
    int threads = 0, json = 0, nfiles = 0;
    const char *paths[MAX_FILES];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
            if (threads < 1 || threads > 4096) {
                fprintf(stderr, "read-bound: --threads needs 1..4096\n");
                return 1;
            }
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: read-bound [--threads N] [--json] FILE...\n"
                   "Reads every byte of the files once through read-only mappings on all cores\n"
                   "and prints bytes, seconds and GB/s (1e9 bytes/s).\n");
            return 0;
        } else if (argv[i][0] == '-' || nfiles == MAX_FILES) {
            fprintf(stderr, "read-bound: unexpected '%s' (usage: read-bound [--threads N] "
                    "[--json] FILE...)\n", argv[i]);
            return 1;
        } else {
            paths[nfiles++] = argv[i];
        }
    }
    if (nfiles == 0) {
        fprintf(stderr, "usage: read-bound [--threads N] [--json] FILE...\n");
        return 1;
    }
    ThreadPool *pool = pool_create(threads);
    if (!pool) {
        fprintf(stderr, "read-bound: cannot start threads\n");
        return 4;
    }
    Job j;
    memset(&j, 0, sizeof j);
    double t0 = now_s();
    size_t nchunks = 0;
    uint64_t bytes = 0;
    for (int f = 0; f < nfiles; f++) {
        int fd = open(paths[f], O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            fprintf(stderr, "read-bound: %s: %s\n", paths[f], strerror(errno));
            return 2;
        }
        size_t size = (size_t)st.st_size;
        void *p = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
        close(fd);
        if (p == MAP_FAILED) {
            fprintf(stderr, "read-bound: %s: mmap: %s\n", paths[f], strerror(errno));
            return 2;
        }
        if (p)
            (void)madvise(p, size, MADV_SEQUENTIAL);
        j.files[j.nfiles++] = (Mapped){p, size};
        nchunks += (size + CHUNK_BYTES - 1) / CHUNK_BYTES;
        bytes += size;
    }
    j.chunk_file = calloc(nchunks + 1, sizeof *j.chunk_file);
    j.chunk_off = calloc(nchunks + 1, sizeof *j.chunk_off);
    j.chunk_sum = calloc(nchunks + 1, sizeof *j.chunk_sum);
    if (!j.chunk_file || !j.chunk_off || !j.chunk_sum) {
        fprintf(stderr, "read-bound: out of memory\n");
        return 4;
    }
    size_t c = 0;
    for (size_t f = 0; f < j.nfiles; f++)
        for (size_t off = 0; off < j.files[f].size; off += CHUNK_BYTES) {
            j.chunk_file[c] = f;
            j.chunk_off[c++] = off;
        }
    pool_run(pool, nchunks, chunk_read, &j);
    uint64_t sum = 0;
    for (size_t i = 0; i < nchunks; i++)
        sum += j.chunk_sum[i];
    for (size_t f = 0; f < j.nfiles; f++)
        if (j.files[f].p)
            munmap((void *)j.files[f].p, j.files[f].size);
    double secs = now_s() - t0;
    double gbps = secs > 0 ? (double)bytes / secs / 1e9 : 0.0;
    if (json)
        printf("{\"bytes\": %llu, \"seconds\": %.6f, \"gbps\": %.4f, \"threads\": %d, "
               "\"checksum\": \"%016llx\"}\n", (unsigned long long)bytes, secs, gbps,
               pool_size(pool), (unsigned long long)sum);
    else
        printf("read-bound: %llu bytes in %.4f s = %.3f GB/s (%d threads, checksum %016llx)\n",
               (unsigned long long)bytes, secs, gbps, pool_size(pool), (unsigned long long)sum);
    free(j.chunk_file);
    free(j.chunk_off);
    free(j.chunk_sum);
    pool_destroy(pool);
    return 0;
}
