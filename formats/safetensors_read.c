/* Opening one .safetensors file: map it read-only, check the 8-byte header length against the file
 * size, validate the header (safetensors_header.c) and point each tensor into the mapping. The same
 * checks also run on bytes already in memory (st_file_open_mem, for the fuzz harness). */
#include "formats/st_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* What StFile.impl_ points to. */
typedef struct StFileImpl {
    void *map;      /* the whole file, PROT_READ, MAP_PRIVATE; NULL when opened from memory */
    size_t map_len; /* = file_size */
    StHeader header;
} StFileImpl;

/* Reads the little-endian u64 at p. */
static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* The error for a file of size bytes, too short to hold the 8-byte header length (size < 8). */
static int file_check_size(const char *path, unsigned long long size, SsError *err)
{
    if (size == 0)
        return ss_err(err, SS_EINPUT,
                      "%s: file is empty (a safetensors file starts with an 8-byte header length)",
                      path);
    return ss_err(err, SS_EINPUT, "%s: file is %llu bytes, too short for the 8-byte header length",
                  path, size);
}

/* Maps path whole; fills *map and *size. A file under 8 bytes is an error here, so the mapping is
 * never empty. */
static int file_map(const char *path, void **map, size_t *size, SsError *err)
{
    /* O_NONBLOCK: a FIFO must not hang the open (it is rejected below); no effect on files. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return ss_err(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return ss_err(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return ss_err(err, SS_EINPUT, "%s: cannot open: not a regular file", path);
    }
    if (sb.st_size < 8) {
        close(fd);
        return file_check_size(path, (unsigned long long)sb.st_size, err);
    }
    if ((unsigned long long)sb.st_size > SIZE_MAX) {
        close(fd);
        return ss_err(err, SS_EINPUT, "%s: cannot open: file too large to map", path);
    }
    *size = (size_t)sb.st_size;
    *map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (*map == MAP_FAILED) {
        *map = NULL;
        return ss_err(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(e));
    }
    (void)madvise(*map, *size, MADV_SEQUENTIAL); /* advice only; failure is harmless */
    return 0;
}

/* Checks the header length of the size bytes at bytes (size >= 8), validates the header and fills
 * *out. map, when not NULL, is the mapping holding bytes: the StFile owns it from here on, so it
 * is unmapped on every error and by st_file_close. */
static int file_open_bytes(const char *path, const unsigned char *bytes, size_t size, void *map,
                           StFile **out, SsError *err)
{
    int rc;
    uint64_t n = read_le64(bytes); /* header length */
    if (n > ST_MAX_HEADER_BYTES) {
        if (map)
            munmap(map, size);
        return ss_err(err, SS_EINPUT, "%s: header length %llu exceeds the limit of %llu bytes",
                      path, (unsigned long long)n, ST_MAX_HEADER_BYTES);
    }
    if (n > size - 8) {
        if (map)
            munmap(map, size);
        return ss_err(err, SS_EINPUT,
                      "%s: header length %llu runs past the end of the file (%zu bytes)", path,
                      (unsigned long long)n, size);
    }
    size_t data_start = 8 + (size_t)n;

    StFile *f = calloc(1, sizeof *f);
    StFileImpl *impl = calloc(1, sizeof *impl);
    char *path_copy = strdup(path);
    if (!f || !impl || !path_copy) {
        free(f);
        free(impl);
        free(path_copy);
        if (map)
            munmap(map, size);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    }
    impl->map = map;
    impl->map_len = size;
    f->impl_ = impl;
    f->path = path_copy;
    f->file_size = size;
    f->header_len = n;

    rc = st_header_parse(path, bytes + 8, (size_t)n, (uint64_t)(size - data_start), &impl->header,
                         err);
    if (rc) {
        st_file_close(f);
        return rc;
    }
    f->ntensors = impl->header.ntensors;
    f->tensors = impl->header.tensors;
    f->nmeta = impl->header.nmeta;
    f->meta = impl->header.meta;
    for (size_t i = 0; i < f->ntensors; i++) {
        StTensor *t = &f->tensors[i];
        /* offset + nbytes <= size - data_start was checked, so this stays inside the mapping (or
         * one past its end for a zero-size tensor at the very end: still non-NULL). */
        t->data = bytes + data_start + (size_t)t->offset;
        t->file = f->path;
    }
    *out = f;
    return 0;
}

int st_file_open(const char *path, StFile **out, SsError *err)
{
    *out = NULL;
    void *map = NULL;
    size_t size = 0;
    int rc = file_map(path, &map, &size, err);
    if (rc)
        return rc;
    return file_open_bytes(path, map, size, map, out, err);
}

int st_file_open_mem(const void *buf, size_t len, const char *name, StFile **out, SsError *err)
{
    *out = NULL;
    if (len < 8)
        return file_check_size(name, (unsigned long long)len, err);
    return file_open_bytes(name, buf, len, NULL, out, err);
}

void st_file_close(StFile *f)
{
    if (!f)
        return;
    StFileImpl *impl = f->impl_;
    if (impl) {
        if (impl->map)
            munmap(impl->map, impl->map_len);
        st_header_free(&impl->header);
        free(impl);
    }
    free(f->path);
    free(f);
}
