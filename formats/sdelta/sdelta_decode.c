/* Reading a .sdelta file: open (mmap or memory), validate the preamble, footer and header, parse
 * the tensor table into SdeltaTensorInfo and chunk records; decode chunks and tensors.
 * Every size and count read from the file is checked before it is used for an allocation, an
 * offset or a loop bound. */
#include "formats/sdelta/sdelta.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "formats/sdelta/sdelta_chunk.h"
#include "formats/sdelta/sdelta_file.h"
#include "formats/sdelta/sdelta_format.h"
#include "formats/sdelta/sdelta_hash.h"
#include "formats/sdelta/sdelta_parallel.h"

const char *sdelta_mode_name(int mode)
{
    static const char *names[] = {"unchanged", "raw", "sparse", "dense", "planes", "split",
                                  "escape"};
    return mode >= 0 && mode < SDELTA_MODE_COUNT ? names[mode] : "?";
}

/* ---- growable arrays used while parsing ---- */

typedef struct Parse {
    const char *path;
    SdReader r;
    SdBuf strings;       /* NUL-terminated strings */
    SdBuf chunks;        /* SdChunkRec */
    SdBuf shapes;        /* uint64_t */
    size_t *name_off, *dtype_off, *key_off, *val_off;
    size_t *shape_off;   /* per tensor, index into shapes */
    SsError *err;
} Parse;

/* Reads a length-prefixed string (no NUL inside) into the arena; returns its offset or -1. */
static long read_str(Parse *ps, bool nonempty)
{
    uint64_t n = sdrd_varint(&ps->r);
    const uint8_t *s = sdrd_bytes(&ps->r, n);
    if (ps->r.bad || !s || (nonempty && n == 0) || memchr(s, 0, (size_t)n))
        return -1;
    long off = (long)ps->strings.len;
    sdbuf_put(&ps->strings, s, (size_t)n);
    sdbuf_u8(&ps->strings, 0);
    return ps->strings.oom ? -1 : off;
}

static int bad(Parse *ps, const char *what)
{
    return ss_err(ps->err, SS_EINPUT, "%s: malformed header: %s", ps->path, what);
}

static int cmp_by_name(const void *a, const void *b, void *ctx)
{
    const SdeltaTensorInfo *t = ctx;
    return strcmp(t[*(const size_t *)a].name, t[*(const size_t *)b].name);
}

void sdelta_close(SdeltaFile *f)
{
    if (!f)
        return;
    SdFileImpl *im = sdelta_impl(f);
    if (im) {
        if (im->mapped && im->base)
            munmap((void *)im->base, im->len);
        free(im->tensors);
        free(im->recs);
        free(im->chunks);
        free(im->shapes);
        free(im->tables);
        free(im->meta);
        free(im->strings);
        free(im->by_name);
        free(im);
    }
    free(f->path);
    free(f);
}

/* Parses the decompressed header into f. */
static int parse_header(SdeltaFile *f, SdFileImpl *im, const uint8_t *h, size_t hlen,
                        uint64_t data_end, SsError *err)
{
    Parse ps;
    memset(&ps, 0, sizeof ps);
    ps.path = f->path;
    ps.r = (SdReader){h, h + hlen, false};
    ps.err = err;
    int rc = SS_EINPUT;
    long parent_off;
    size_t ntensors = 0, nmeta = 0;

    f->step = sdrd_varint(&ps.r);
    parent_off = read_str(&ps, false);
    f->parent_hash = sdrd_u64(&ps.r);
    f->chunk_elems = sdrd_varint(&ps.r);
    if (ps.r.bad || parent_off < 0) {
        rc = bad(&ps, "truncated preamble fields");
        goto out;
    }
    if (f->chunk_elems < 1 || f->chunk_elems > SDELTA_MAX_CHUNK_ELEMS) {
        rc = bad(&ps, "chunk size out of range");
        goto out;
    }
    uint64_t nm = sdrd_varint(&ps.r);
    if (ps.r.bad || nm > (uint64_t)(ps.r.end - ps.r.p) / 2) {
        rc = bad(&ps, "metadata count");
        goto out;
    }
    nmeta = (size_t)nm;
    ps.key_off = calloc(nmeta + 1, sizeof *ps.key_off);
    ps.val_off = calloc(nmeta + 1, sizeof *ps.val_off);
    if (!ps.key_off || !ps.val_off)
        goto oom;
    for (size_t i = 0; i < nmeta; i++) {
        long k = read_str(&ps, false), v = read_str(&ps, false);
        if (k < 0 || v < 0) {
            rc = bad(&ps, "metadata entry");
            goto out;
        }
        ps.key_off[i] = (size_t)k;
        ps.val_off[i] = (size_t)v;
    }
    uint64_t nt = sdrd_varint(&ps.r);
    if (ps.r.bad || nt > (uint64_t)(ps.r.end - ps.r.p) / 2) {
        rc = bad(&ps, "table count");
        goto out;
    }
    im->ntables = (size_t)nt;
    im->tables = calloc(im->ntables + 1, sizeof *im->tables);
    if (!im->tables)
        goto oom;
    for (size_t i = 0; i < im->ntables; i++)
        if (!sdelta_rans_table_read(&ps.r, &im->tables[i])) {
            rc = bad(&ps, "shared table");
            goto out;
        }
    uint64_t ntt = sdrd_varint(&ps.r);
    /* a tensor record takes at least 9 bytes */
    if (ps.r.bad || ntt > (uint64_t)(ps.r.end - ps.r.p) / 9) {
        rc = bad(&ps, "tensor count");
        goto out;
    }
    ntensors = (size_t)ntt;
    im->tensors = calloc(ntensors + 1, sizeof *im->tensors);
    im->recs = calloc(ntensors + 1, sizeof *im->recs);
    ps.name_off = calloc(ntensors + 1, sizeof *ps.name_off);
    ps.dtype_off = calloc(ntensors + 1, sizeof *ps.dtype_off);
    ps.shape_off = calloc(ntensors + 1, sizeof *ps.shape_off);
    if (!im->tensors || !im->recs || !ps.name_off || !ps.dtype_off || !ps.shape_off)
        goto oom;
    uint64_t offset = SDELTA_PREAMBLE_BYTES;
    for (size_t i = 0; i < ntensors; i++) {
        SdeltaTensorInfo *t = &im->tensors[i];
        SdTensorRec *tr = &im->recs[i];
        long no = read_str(&ps, true), dto = read_str(&ps, true);
        if (no < 0 || dto < 0) {
            rc = bad(&ps, "tensor name or dtype");
            goto out;
        }
        ps.name_off[i] = (size_t)no;
        const char *name = (const char *)ps.strings.p + no;
        DType dt;
        if (dtype_from_name((const char *)ps.strings.p + dto, &dt) != 0) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': unknown dtype '%s'", f->path, name,
                        (const char *)ps.strings.p + dto);
            goto out;
        }
        t->dtype = dt;
        tr->width = (unsigned)dtype_size(dt);
        tr->is_float = dtype_is_float(dt);
        uint64_t ndim = sdrd_varint(&ps.r);
        if (ps.r.bad || ndim > SDELTA_MAX_NDIM) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': malformed header: ndim", f->path, name);
            goto out;
        }
        t->ndim = (int)ndim;
        ps.shape_off[i] = ps.shapes.len / sizeof(uint64_t);
        uint64_t numel = 1;
        for (uint64_t d = 0; d < ndim; d++) {
            uint64_t dim = sdrd_varint(&ps.r);
            if (ps.r.bad || !sdelta_mul_ok(numel, dim, &numel)) {
                rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': malformed header: shape", f->path,
                            name);
                goto out;
            }
            sdbuf_u64(&ps.shapes, dim);
        }
        uint64_t nbytes;
        if (!sdelta_mul_ok(numel, tr->width, &nbytes) || nbytes > (uint64_t)SIZE_MAX / 2) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': shape too large", f->path, name);
            goto out;
        }
        t->numel = numel;
        t->nbytes = nbytes;
        uint8_t flags = sdrd_u8(&ps.r);
        if (flags & ~1u) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': malformed header: flags", f->path, name);
            goto out;
        }
        t->has_parent = flags & 1;
        if (t->has_parent)
            tr->parent_check = sdrd_u32(&ps.r);
        tr->child_check = sdrd_u32(&ps.r);
        t->nchunks = numel / f->chunk_elems + (numel % f->chunk_elems != 0);
        /* each chunk record takes at least one byte */
        if (ps.r.bad || t->nchunks > (uint64_t)(ps.r.end - ps.r.p)) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': malformed header: chunk table",
                        f->path, name);
            goto out;
        }
        tr->first_chunk = ps.chunks.len / sizeof(SdChunkRec);
        for (uint64_t c = 0; c < t->nchunks; c++) {
            SdChunkRec cr = {0};
            uint64_t m = numel - c * f->chunk_elems;
            if (m > f->chunk_elems)
                m = f->chunk_elems;
            cr.mode = sdrd_u8(&ps.r);
            cr.offset = offset;
            if (cr.mode != SDELTA_MODE_UNCHANGED) {
                cr.size = sdrd_varint(&ps.r);
                cr.check = sdrd_u32(&ps.r);
                cr.nchanged = sdrd_varint(&ps.r);
            }
            const char *why = NULL;
            if (ps.r.bad)
                why = "truncated chunk record";
            else if (cr.mode >= SDELTA_MODE_COUNT)
                why = "unknown chunk mode";
            else if (cr.mode == SDELTA_MODE_ESCAPE && f->version_minor < 2)
                why = "escape mode in a file of format 1.0 or 1.1";
            else if (cr.mode != SDELTA_MODE_UNCHANGED && (cr.size == 0 || cr.nchanged == 0))
                why = "empty changed chunk";
            else if (cr.nchanged > m)
                why = "changed count larger than the chunk";
            else if (cr.mode == SDELTA_MODE_RAW && cr.size != m * tr->width)
                why = "raw chunk of the wrong size";
            else if (!sdelta_add_ok(offset, cr.size, &offset) || offset > data_end)
                why = "chunk extends past the data section";
            if (why) {
                rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': chunk %llu: %s", f->path, name,
                            (unsigned long long)c, why);
                goto out;
            }
            t->nchanged += cr.nchanged;
            t->stored_bytes += cr.size;
            t->chunks_by_mode[cr.mode]++;
            sdbuf_put(&ps.chunks, &cr, sizeof cr);
        }
        if (ps.chunks.oom || ps.shapes.oom)
            goto oom;
    }
    if (ps.r.p != ps.r.end) {
        rc = bad(&ps, "trailing bytes");
        goto out;
    }
    if (offset != data_end) {
        rc = ss_err(err, SS_EINPUT, "%s: chunk sizes (%llu bytes) do not fill the data section "
                    "(%llu bytes)", f->path, (unsigned long long)(offset - SDELTA_PREAMBLE_BYTES),
                    (unsigned long long)(data_end - SDELTA_PREAMBLE_BYTES));
        goto out;
    }
    if (ps.strings.oom)
        goto oom;

    /* Resolve offsets into pointers now that the arenas no longer move. */
    im->strings = (char *)ps.strings.p;
    ps.strings.p = NULL;
    im->chunks = (SdChunkRec *)ps.chunks.p;
    ps.chunks.p = NULL;
    im->nchunks = ps.chunks.len / sizeof(SdChunkRec);
    im->shapes = (uint64_t *)ps.shapes.p;
    ps.shapes.p = NULL;
    f->parent_name = im->strings + parent_off;
    im->meta = calloc(nmeta + 1, sizeof *im->meta);
    im->by_name = calloc(ntensors + 1, sizeof *im->by_name);
    if (!im->meta || !im->by_name)
        goto oom;
    for (size_t i = 0; i < nmeta; i++) {
        im->meta[i].key = im->strings + ps.key_off[i];
        im->meta[i].value = im->strings + ps.val_off[i];
    }
    for (size_t i = 0; i < ntensors; i++) {
        im->tensors[i].name = im->strings + ps.name_off[i];
        im->tensors[i].shape = im->shapes ? im->shapes + ps.shape_off[i] : NULL;
        im->by_name[i] = i;
    }
    qsort_r(im->by_name, ntensors, sizeof *im->by_name, cmp_by_name, im->tensors);
    for (size_t i = 1; i < ntensors; i++)
        if (strcmp(im->tensors[im->by_name[i - 1]].name, im->tensors[im->by_name[i]].name) == 0) {
            rc = ss_err(err, SS_EINPUT, "%s: tensor '%s': listed twice", f->path,
                        im->tensors[im->by_name[i]].name);
            goto out;
        }
    f->ntensors = ntensors;
    f->tensors = im->tensors;
    f->nmeta = nmeta;
    f->meta = im->meta;
    rc = 0;
    goto out;
oom:
    rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", f->path);
out:
    sdbuf_free(&ps.strings);
    sdbuf_free(&ps.chunks);
    sdbuf_free(&ps.shapes);
    free(ps.name_off);
    free(ps.dtype_off);
    free(ps.key_off);
    free(ps.val_off);
    free(ps.shape_off);
    return rc;
}

/* Validates the container around the header and parses it. */
static int open_bytes(SdeltaFile *f, SdFileImpl *im, SsError *err)
{
    const uint8_t *b = im->base;
    size_t len = im->len;
    const char *path = f->path;
    f->file_size = len;
    if (len < SDELTA_PREAMBLE_BYTES + SDELTA_FOOTER_BYTES)
        return ss_err(err, SS_EINPUT, "%s: not a .sdelta file (only %zu bytes)", path, len);
    if (memcmp(b, SDELTA_MAGIC, 8) != 0)
        return ss_err(err, SS_EINPUT, "%s: not a .sdelta file (bad magic)", path);
    f->version_major = sdelta_rd16(b + 8);
    f->version_minor = sdelta_rd16(b + 10);
    if (f->version_major != SDELTA_VERSION_MAJOR || f->version_minor > SDELTA_VERSION_MINOR)
        return ss_err(err, SS_EINPUT, "%s: unsupported .sdelta version %u.%u (this reader: %u.%u)",
                      path, f->version_major, f->version_minor, SDELTA_VERSION_MAJOR,
                      SDELTA_VERSION_MINOR);
    if (sdelta_rd32(b + 12) != 0)
        return ss_err(err, SS_EINPUT, "%s: unknown flags in the preamble", path);
    const uint8_t *foot = b + len - SDELTA_FOOTER_BYTES;
    if (memcmp(foot + 40, SDELTA_END_MAGIC, 8) != 0)
        return ss_err(err, SS_EINPUT, "%s: truncated or incomplete (no end marker)", path);
    uint8_t hashed[SDELTA_PREAMBLE_BYTES + 32];
    memcpy(hashed, b, SDELTA_PREAMBLE_BYTES);
    memcpy(hashed + SDELTA_PREAMBLE_BYTES, foot, 32);
    if (!SDELTA_CHECK_OK(sdelta_hash64(hashed, sizeof hashed, 0), sdelta_rd64(foot + 32)))
        return ss_err(err, SS_EINPUT, "%s: footer checksum mismatch", path);
    uint64_t hoff = sdelta_rd64(foot), csize = sdelta_rd64(foot + 8), usize = sdelta_rd64(foot + 16);
    uint64_t end;
    if (hoff < SDELTA_PREAMBLE_BYTES || !sdelta_add_ok(hoff, csize, &end) ||
        !sdelta_add_ok(end, SDELTA_FOOTER_BYTES, &end) || end != len)
        return ss_err(err, SS_EINPUT, "%s: footer offsets do not match the file size", path);
    if (usize > SDELTA_MAX_HEADER_BYTES)
        return ss_err(err, SS_EINPUT, "%s: header too large (%llu bytes)", path,
                      (unsigned long long)usize);
    const uint8_t *zh = b + hoff;
    if (!SDELTA_CHECK_OK(sdelta_hash64(zh, (size_t)csize, 0), sdelta_rd64(foot + 24)))
        return ss_err(err, SS_EINPUT, "%s: header checksum mismatch", path);
    if (ZSTD_findFrameCompressedSize(zh, (size_t)csize) != csize ||
        ZSTD_getFrameContentSize(zh, (size_t)csize) != usize)
        return ss_err(err, SS_EINPUT, "%s: malformed header frame", path);
    uint8_t *h = malloc(usize ? (size_t)usize : 1);
    if (!h)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    size_t got = ZSTD_decompress(h, (size_t)usize, zh, (size_t)csize);
    int rc;
    if (ZSTD_isError(got) || got != usize)
        rc = ss_err(err, SS_EINPUT, "%s: malformed header frame", path);
    else
        rc = parse_header(f, im, h, (size_t)usize, hoff, err);
    free(h);
    f->header_bytes = SDELTA_PREAMBLE_BYTES + csize + SDELTA_FOOTER_BYTES;
    return rc;
}

static int open_common(const char *name, const void *buf, size_t len, bool mapped,
                       SdeltaFile **out, SsError *err)
{
    SdeltaFile *f = calloc(1, sizeof *f);
    SdFileImpl *im = calloc(1, sizeof *im);
    char *path = strdup(name);
    if (!f || !im || !path) {
        free(f);
        free(im);
        free(path);
        if (mapped)
            munmap((void *)buf, len);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", name);
    }
    f->path = path;
    f->impl_ = im;
    im->base = buf;
    im->len = len;
    im->mapped = mapped;
    int rc = open_bytes(f, im, err);
    if (rc) {
        sdelta_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int sdelta_open_mem(const void *buf, size_t len, const char *name, SdeltaFile **out,
                    SsError *err)
{
    if (!out || (!buf && len))
        return ss_err(err, SS_EUSAGE, "sdelta_open_mem: NULL argument");
    return open_common(name ? name : "<memory>", buf ? buf : "", len, false, out, err);
}

int sdelta_open(const char *path, SdeltaFile **out, SsError *err)
{
    if (!path || !out)
        return ss_err(err, SS_EUSAGE, "sdelta_open: NULL argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ss_err(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ss_err(err, SS_EINPUT, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    if (len < SDELTA_PREAMBLE_BYTES + SDELTA_FOOTER_BYTES) {
        close(fd);
        return ss_err(err, SS_EINPUT, "%s: not a .sdelta file (only %zu bytes)", path, len);
    }
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return ss_err(err, SS_EINPUT, "%s: cannot map: %s", path, strerror(errno));
    return open_common(path, m, len, true, out, err);
}

long sdelta_find(const SdeltaFile *f, const char *name)
{
    const SdFileImpl *im = sdelta_impl(f);
    size_t lo = 0, hi = f->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[im->by_name[mid]].name, name);
        if (c == 0)
            return (long)im->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int sdelta_check_parent(const SdeltaFile *f, size_t i, const void *parent, SsError *err)
{
    if (i >= f->ntensors)
        return ss_err(err, SS_EUSAGE, "%s: tensor index %zu out of range", f->path, i);
    const SdeltaTensorInfo *t = &f->tensors[i];
    if (!t->has_parent)
        return 0;
    if (!parent)
        return ss_err(err, SS_EUSAGE, "%s: tensor '%s': a parent tensor is needed", f->path,
                      t->name);
    uint32_t got = sdelta_check32(f->version_minor, parent, (size_t)t->nbytes),
             want = sdelta_impl(f)->recs[i].parent_check;
    if (!SDELTA_CHECK_OK(got, want))
        return ss_err(err, SS_EINCOMPAT,
                      "%s: tensor '%s': wrong parent: its bytes are not the ones this delta was "
                      "encoded against (check %08x, expected %08x; parent file '%s')",
                      f->path, t->name, got, want, f->parent_name);
    return 0;
}

/* Decodes one chunk with caller-provided scratch. */
static int decode_chunk(const SdeltaFile *f, size_t i, uint64_t c, const uint8_t *parent,
                        uint8_t *dst, SdChunkScratch *scr, SsError *err)
{
    const SdFileImpl *im = sdelta_impl(f);
    const SdeltaTensorInfo *t = &f->tensors[i];
    const SdTensorRec *tr = &im->recs[i];
    if (c >= t->nchunks)
        return ss_err(err, SS_EUSAGE, "%s: tensor '%s': chunk %llu out of range", f->path,
                      t->name, (unsigned long long)c);
    const SdChunkRec *cr = &im->chunks[tr->first_chunk + c];
    uint64_t first = c * f->chunk_elems, m = t->numel - first;
    if (m > f->chunk_elems)
        m = f->chunk_elems;
    const uint8_t *payload = im->base + cr->offset;
    if (cr->size &&
        !SDELTA_CHECK_OK(sdelta_check32(f->version_minor, payload, (size_t)cr->size), cr->check))
        return ss_err(err, SS_EINPUT, "%s: tensor '%s': chunk %llu: checksum mismatch (corrupt data)",
                      f->path, t->name, (unsigned long long)c);
    SdChunkShape sh = {(size_t)m, tr->width, tr->is_float};
    size_t off = (size_t)(first * tr->width);
    const char *why;
    if (sdelta_decode_chunk(&sh, cr->mode, payload, (size_t)cr->size, cr->nchanged,
                            t->has_parent ? parent + off : NULL, im->tables, im->ntables, scr,
                            dst + off, &why))
        return ss_err(err, strcmp(why, "out of memory") == 0 ? SS_EOUTPUT : SS_EINPUT,
                      "%s: tensor '%s': chunk %llu: %s", f->path, t->name, (unsigned long long)c,
                      why);
    return 0;
}

int sdelta_decode_chunk_at(const SdeltaFile *f, size_t i, uint64_t c, const void *parent,
                           void *dst, SsError *err)
{
    if (!f || i >= f->ntensors || !dst)
        return ss_err(err, SS_EUSAGE, "sdelta_decode_chunk_at: bad argument");
    if (f->tensors[i].has_parent && !parent)
        return ss_err(err, SS_EUSAGE, "%s: tensor '%s': a parent tensor is needed", f->path,
                      f->tensors[i].name);
    SdChunkScratch scr = {0};
    int rc = decode_chunk(f, i, c, parent, dst, &scr, err);
    sdelta_chunk_scratch_free(&scr);
    return rc;
}

/* ---- whole tensors, chunks in parallel ---- */

typedef struct DecJob {
    const SdeltaFile *f;
    size_t i;
    const uint8_t *parent;
    uint8_t *dst;
    SdChunkScratch *scr;
    pthread_mutex_t mu;
    uint64_t bad_chunk; /* lowest failing chunk, UINT64_MAX if none */
    SsError err;
    int rc;
} DecJob;

static void task_decode(void *ctx, size_t c, int tid)
{
    DecJob *j = ctx;
    SsError e = {0};
    int rc = decode_chunk(j->f, j->i, c, j->parent, j->dst, &j->scr[tid], &e);
    if (rc) {
        pthread_mutex_lock(&j->mu);
        if (c < j->bad_chunk) {
            j->bad_chunk = c;
            j->err = e;
            j->rc = rc;
        }
        pthread_mutex_unlock(&j->mu);
    }
}

int sdelta_decode_tensor(const SdeltaFile *f, size_t i, const void *parent, void *dst,
                         int threads, SsError *err)
{
    if (!f || i >= f->ntensors || (!dst && f->tensors[i].nbytes))
        return ss_err(err, SS_EUSAGE, "sdelta_decode_tensor: bad argument");
    const SdeltaTensorInfo *t = &f->tensors[i];
    int rc = sdelta_check_parent(f, i, parent, err);
    if (rc)
        return rc;
    int nt = sdelta_threads_for(threads, (size_t)t->nchunks);
    DecJob j = {.f = f, .i = i, .parent = parent, .dst = dst, .bad_chunk = UINT64_MAX};
    j.scr = calloc((size_t)nt, sizeof *j.scr);
    if (!j.scr)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", f->path);
    pthread_mutex_init(&j.mu, NULL);
    sdelta_parallel_for((size_t)t->nchunks, nt, task_decode, &j);
    pthread_mutex_destroy(&j.mu);
    for (int k = 0; k < nt; k++)
        sdelta_chunk_scratch_free(&j.scr[k]);
    free(j.scr);
    if (j.rc) {
        if (err)
            *err = j.err;
        return j.rc;
    }
    uint32_t got = sdelta_check32(f->version_minor, t->nbytes ? dst : "", (size_t)t->nbytes);
    if (!SDELTA_CHECK_OK(got, sdelta_impl(f)->recs[i].child_check))
        return ss_err(err, SS_EINPUT,
                      "%s: tensor '%s': decoded bytes fail the child check (corrupt delta)",
                      f->path, t->name);
    return 0;
}

#ifdef SDELTA_FUZZING
/* Fuzzing entry (tests/fuzz/): parses raw header bytes h as if they followed a data section
 * made of data[0..len) (its first 16 bytes standing for the preamble), skipping the container's
 * zstd frame and checksums so that mutations reach the parser directly. */
int sdelta_fuzz_open_header(const uint8_t *h, size_t hlen, const uint8_t *data, size_t len,
                            SdeltaFile **out, SsError *err);
int sdelta_fuzz_open_header(const uint8_t *h, size_t hlen, const uint8_t *data, size_t len,
                            SdeltaFile **out, SsError *err)
{
    if (len < SDELTA_PREAMBLE_BYTES)
        return SS_EINPUT;
    SdeltaFile *f = calloc(1, sizeof *f);
    SdFileImpl *im = calloc(1, sizeof *im);
    char *path = strdup("fuzz-header");
    if (!f || !im || !path) {
        free(f);
        free(im);
        free(path);
        return SS_EOUTPUT;
    }
    f->path = path;
    f->version_major = SDELTA_VERSION_MAJOR;
    f->version_minor = SDELTA_VERSION_MINOR;
    f->impl_ = im;
    im->base = data;
    im->len = len;
    int rc = parse_header(f, im, h, hlen, len, err);
    if (rc) {
        sdelta_close(f);
        return rc;
    }
    *out = f;
    return 0;
}
#endif
