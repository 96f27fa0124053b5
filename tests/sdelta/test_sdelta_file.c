/* File-level tests of the .sdelta codec:
 *   roundtrip   every dtype at densities 0 .. 100%, empty and 0-d tensors, multi-chunk tensors,
 *               tensors new in the child or with a changed dtype, metadata, random chunk access,
 *               decoding from memory, identical bytes whatever the thread count
 *   wrongparent a parent that differs in one byte, or another checkpoint, is refused by name
 *   bitflip     every bit of a small delta flipped: open or verify fails, never wrong bytes;
 *               flips inside a chunk name the tensor and the chunk
 *   truncate    every prefix of a delta is refused at open
 * Usage: test_sdelta_file [roundtrip|wrongparent|bitflip|truncate] (default: all). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "formats/sdelta/sdelta.h"
#include "tests/sdelta/sdelta_testutil.h"
#include "formats/sdelta/sdelta_format.h"
#include "formats/sdelta/sdelta_hash.h"

/* Recomputes footer_hash after an edit of the preamble (bytes 0..16). */
static void tu_fix_footer(uint8_t *b, size_t len)
{
    uint8_t hashed[SDELTA_PREAMBLE_BYTES + 32];
    memcpy(hashed, b, SDELTA_PREAMBLE_BYTES);
    memcpy(hashed + SDELTA_PREAMBLE_BYTES, b + len - SDELTA_FOOTER_BYTES, 32);
    sdelta_wr64(b + len - SDELTA_FOOTER_BYTES + 32, sdelta_hash64(hashed, sizeof hashed, 0));
}

/* Writes the delta of pairs (children, against parents) and returns its path. */
static char *write_delta(const char *dir, const char *name, TuPair *pairs, size_t n,
                         const SdeltaWriteOptions *opt)
{
    SdeltaTensorSrc *ps = calloc(n + 1, sizeof *ps), *cs = calloc(n + 1, sizeof *cs);
    for (size_t i = 0; i < n; i++) {
        ps[i] = tu_src(&pairs[i], false);
        cs[i] = tu_src(&pairs[i], true);
    }
    char *path;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        exit(2);
    SsError e = {0};
    int rc = sdelta_write_tensors(path, ps, n, cs, n, opt, &e);
    CHECK(rc == 0, "write %s: %s", path, e.msg);
    free(ps);
    free(cs);
    return path;
}

/* Decodes every tensor of f against pairs and compares with the children. */
static void check_decode(const SdeltaFile *f, TuPair *pairs, size_t n, int threads)
{
    CHECK(f->ntensors == n, "tensor count %zu, want %zu", f->ntensors, n);
    for (size_t i = 0; i < n; i++) {
        long j = sdelta_find(f, pairs[i].name);
        CHECK(j >= 0, "tensor '%s' missing", pairs[i].name);
        if (j < 0)
            continue;
        const SdeltaTensorInfo *t = &f->tensors[j];
        CHECK(t->nbytes == pairs[i].nbytes && t->dtype == pairs[i].dtype &&
                  t->ndim == pairs[i].ndim,
              "tensor '%s' description", pairs[i].name);
        uint8_t *buf = malloc(t->nbytes + 1);
        SsError e = {0};
        int rc = sdelta_decode_tensor(f, (size_t)j, pairs[i].parent, buf, threads, &e);
        CHECK(rc == 0, "decode '%s': %s", pairs[i].name, e.msg);
        CHECK(rc || memcmp(buf, pairs[i].child, t->nbytes) == 0, "'%s' differs", pairs[i].name);
        uint64_t changed = 0;
        size_t w = dtype_size(t->dtype);
        for (uint64_t k = 0; k < t->numel; k++)
            changed += memcmp(pairs[i].parent + k * w, pairs[i].child + k * w, w) != 0;
        CHECK(t->nchanged == changed, "'%s': nchanged %llu, want %llu", pairs[i].name,
              (unsigned long long)t->nchanged, (unsigned long long)changed);
        /* random access: the last chunk alone */
        if (t->nchunks) {
            memset(buf, 0, t->nbytes);
            uint64_t c = t->nchunks - 1;
            rc = sdelta_decode_chunk_at(f, (size_t)j, c, pairs[i].parent, buf, &e);
            size_t off = (size_t)(c * f->chunk_elems * w);
            CHECK(rc == 0 && memcmp(buf + off, pairs[i].child + off, t->nbytes - off) == 0,
                  "chunk access '%s': %s", pairs[i].name, rc ? e.msg : "bytes differ");
        }
        free(buf);
    }
}

static void test_roundtrip(void)
{
    char *dir = tu_tmpdir("rt");
    const double dens[] = {0.0, 0.0001, 0.01, 0.14, 0.5, 0.9, 1.0};
    const uint64_t big[] = {5000, 7}, mat[] = {3, 5}, one[] = {1}, empty[] = {0}, empty2[] = {4, 0};
    for (size_t di = 0; di < sizeof dens / sizeof *dens; di++) {
        TuPair pairs[DT_COUNT * 5];
        size_t n = 0;
        for (int dt = 0; dt < DT_COUNT; dt++) {
            char nm[64];
            snprintf(nm, sizeof nm, "%s.big", dtype_name((DType)dt));
            tu_pair(&pairs[n++], nm, (DType)dt, 2, big, dens[di]);
            snprintf(nm, sizeof nm, "%s.mat", dtype_name((DType)dt));
            tu_pair(&pairs[n++], nm, (DType)dt, 2, mat, dens[di]);
            snprintf(nm, sizeof nm, "%s.scalar", dtype_name((DType)dt));
            tu_pair(&pairs[n++], nm, (DType)dt, 0, one, dens[di]);
            snprintf(nm, sizeof nm, "%s.empty", dtype_name((DType)dt));
            tu_pair(&pairs[n++], nm, (DType)dt, 1, empty, dens[di]);
            snprintf(nm, sizeof nm, "%s.empty2", dtype_name((DType)dt));
            tu_pair(&pairs[n++], nm, (DType)dt, 2, empty2, dens[di]);
        }
        StMeta meta[] = {{"optimizer", "adamw"}, {"note", "caf\xc3\xa9"}, {"empty", ""}};
        SdeltaWriteOptions o;
        sdelta_write_options_init(&o);
        o.step = 1000 + di;
        o.parent_name = "base.safetensors";
        o.meta = meta;
        o.nmeta = 3;
        o.chunk_elems = 4096; /* big tensors get several chunks, the last one partial */
        o.threads = 2;
        char name[32];
        snprintf(name, sizeof name, "d%zu.sdelta", di);
        char *path = write_delta(dir, name, pairs, n, &o);
        SdeltaFile *f = NULL;
        SsError e = {0};
        int rc = sdelta_open(path, &f, &e);
        CHECK(rc == 0, "open: %s", e.msg);
        if (!rc) {
            CHECK(f->step == 1000 + di, "step");
            CHECK(strcmp(f->parent_name, "base.safetensors") == 0, "parent name");
            CHECK(f->nmeta == 3 && strcmp(f->meta[1].value, "caf\xc3\xa9") == 0 &&
                      strcmp(f->meta[2].value, "") == 0,
                  "metadata");
            CHECK(f->chunk_elems == 4096, "chunk_elems");
            check_decode(f, pairs, n, 2);
            check_decode(f, pairs, n, 1);
            CHECK(sdelta_verify(f, NULL, 2, &e) == 0, "verify: %s", e.msg);
            /* format 1.2 codes mostly changed 2-byte chunks in the escape mode */
            if (dens[di] >= 0.5 && dens[di] < 1.0) {
                long j = sdelta_find(f, "BF16.big");
                CHECK(j >= 0 && f->tensors[j].chunks_by_mode[SDELTA_MODE_ESCAPE] > 0,
                      "density %g: no escape-mode chunk", dens[di]);
            }
            sdelta_close(f);
        }
        /* a format 1.1 file of the same tensors: minor version 1, no escape mode, and this
         * reader still decodes it */
        {
            SdeltaWriteOptions o11 = o;
            o11.format_minor = 1;
            char name11[32];
            snprintf(name11, sizeof name11, "d%zu-v11.sdelta", di);
            char *path11 = write_delta(dir, name11, pairs, n, &o11);
            SdeltaFile *g = NULL;
            CHECK(sdelta_open(path11, &g, &e) == 0, "open 1.1: %s", e.msg);
            if (g) {
                CHECK(g->version_minor == 1, "1.1 file has minor %u", g->version_minor);
                for (size_t i = 0; i < g->ntensors; i++)
                    CHECK(g->tensors[i].chunks_by_mode[SDELTA_MODE_ESCAPE] == 0,
                          "escape mode in a 1.1 file");
                check_decode(g, pairs, n, 1);
                CHECK(sdelta_verify(g, NULL, 1, &e) == 0, "verify 1.1: %s", e.msg);
                sdelta_close(g);
            }
            /* an escape chunk in a file that says 1.1 is refused: the 1.2 file relabeled */
            if (!rc && dens[di] >= 0.5 && dens[di] < 1.0) {
                size_t l2 = 0;
                uint8_t *b2 = tu_read_file(path, &l2);
                SdeltaFile *h = NULL;
                if (b2 && l2 > 16) {
                    b2[10] = 1; /* minor 1; the footer hash covers the preamble: fix it */
                    tu_fix_footer(b2, l2);
                    CHECK(sdelta_open_mem(b2, l2, "relabeled", &h, &e) != 0 &&
                              strstr(e.msg, "escape mode"),
                          "escape chunk accepted in a 1.1 file: %s", e.msg);
                    sdelta_close(h);
                }
                free(b2);
            }
            o11.force_mode = SDELTA_MODE_ESCAPE;
            CHECK(sdelta_write_tensors(path11, NULL, 0, NULL, 0, &o11, &e) == SS_EUSAGE,
                  "forced escape mode in a 1.1 file accepted");
            free(path11);
        }
        /* the same bytes with one thread; and decoding from memory */
        o.threads = 1;
        char *path1 = write_delta(dir, "one-thread.sdelta", pairs, n, &o);
        size_t l0 = 0, l1 = 0;
        uint8_t *b0 = tu_read_file(path, &l0), *b1 = tu_read_file(path1, &l1);
        CHECK(b0 && b1 && l0 == l1 && memcmp(b0, b1, l0) == 0, "bytes depend on thread count");
        if (b0 && sdelta_open_mem(b0, l0, "mem", &f, &e) == 0) {
            check_decode(f, pairs, n, 1);
            sdelta_close(f);
        } else {
            CHECK(0, "open_mem: %s", e.msg);
        }
        free(b0);
        free(b1);
        free(path);
        free(path1);
        for (size_t i = 0; i < n; i++)
            tu_pair_free(&pairs[i]);
    }

    /* Tensors without a usable parent: new in the child, changed dtype, changed shape. */
    {
        const uint64_t s1[] = {300}, s2[] = {10, 30};
        TuPair a, b, c;
        tu_pair(&a, "kept", DT_BF16, 1, s1, 0.1);
        tu_pair(&b, "retyped", DT_F32, 1, s1, 0.1);
        tu_pair(&c, "reshaped", DT_BF16, 2, s2, 0.1);
        SdeltaTensorSrc parent[] = {tu_src(&a, false), {"retyped", DT_BF16, 1, s1, a.parent},
                                    {"reshaped", DT_BF16, 1, s1, c.parent},
                                    {"dropped", DT_BF16, 1, s1, a.parent}};
        SdeltaTensorSrc child[] = {tu_src(&a, true), tu_src(&b, true), tu_src(&c, true),
                                   {"new", DT_I32, 1, s1, b.child}};
        SdeltaWriteOptions o;
        sdelta_write_options_init(&o);
        o.parent_name = "p";
        char *path;
        if (asprintf(&path, "%s/noparent.sdelta", dir) < 0)
            exit(2);
        SsError e = {0};
        CHECK(sdelta_write_tensors(path, parent, 4, child, 4, &o, &e) == 0, "write: %s", e.msg);
        SdeltaFile *f;
        if (sdelta_open(path, &f, &e) == 0) {
            CHECK(f->ntensors == 4 && sdelta_find(f, "dropped") < 0, "listing");
            const char *names[] = {"kept", "retyped", "reshaped", "new"};
            const void *pars[] = {a.parent, NULL, NULL, NULL};
            const void *want[] = {a.child, b.child, c.child, b.child};
            bool hp[] = {true, false, false, false};
            for (int i = 0; i < 4; i++) {
                long j = sdelta_find(f, names[i]);
                CHECK(j >= 0 && f->tensors[j].has_parent == hp[i], "'%s' has_parent", names[i]);
                if (j < 0)
                    continue;
                uint8_t *buf = malloc(f->tensors[j].nbytes);
                CHECK(sdelta_decode_tensor(f, (size_t)j, pars[i], buf, 1, &e) == 0 &&
                          memcmp(buf, want[i], f->tensors[j].nbytes) == 0,
                      "'%s' decode: %s", names[i], e.msg);
                free(buf);
            }
            sdelta_close(f);
        } else {
            CHECK(0, "open: %s", e.msg);
        }
        /* duplicate child names are refused */
        SdeltaTensorSrc dup[] = {tu_src(&a, true), tu_src(&a, true)};
        CHECK(sdelta_write_tensors(path, parent, 1, dup, 2, &o, &e) == SS_EUSAGE, "duplicates");
        free(path);
        tu_pair_free(&a);
        tu_pair_free(&b);
        tu_pair_free(&c);
    }
    tu_rmtree(dir);
    free(dir);
}

/* A small delta over mixed modes, its parent written as safetensors; caller frees. */
static void small_fixture(const char *dir, TuPair *pairs, size_t *n, char **delta, char **parent_st)
{
    const uint64_t s1[] = {2000}, s2[] = {40}, s3[] = {300};
    tu_pair(&pairs[0], "w.sparse", DT_BF16, 1, s1, 0.01);
    tu_pair(&pairs[1], "w.dense", DT_F32, 1, s2, 0.9);
    tu_pair(&pairs[2], "w.same", DT_F16, 1, s3, 0.0);
    tu_pair(&pairs[3], "w.raw", DT_U8, 1, s2, 1.0);
    tu_pair(&pairs[4], "w.escape", DT_BF16, 1, s3, 0.9);
    *n = 5;
    for (uint64_t i = 0; i < pairs[3].nbytes; i++) /* random bytes: stored raw */
        pairs[3].child[i] = (uint8_t)tu_next();
    SdeltaWriteOptions o;
    sdelta_write_options_init(&o);
    o.parent_name = "parent.safetensors";
    o.chunk_elems = 1024;
    *delta = write_delta(dir, "small.sdelta", pairs, *n, &o);
    StTensorSpec specs[5];
    const void *datas[5];
    for (size_t i = 0; i < *n; i++) {
        specs[i] = (StTensorSpec){pairs[i].name, pairs[i].dtype, pairs[i].ndim, pairs[i].shape};
        datas[i] = pairs[i].parent;
    }
    if (asprintf(parent_st, "%s/parent.safetensors", dir) < 0)
        exit(2);
    SsError e = {0};
    CHECK(st_write(*parent_st, specs, datas, *n, NULL, 0, &e) == 0, "st_write: %s", e.msg);
}

static void test_wrongparent(void)
{
    char *dir = tu_tmpdir("wp");
    TuPair pairs[5];
    size_t n;
    char *delta, *pst;
    small_fixture(dir, pairs, &n, &delta, &pst);
    SdeltaFile *f;
    SsError e = {0};
    CHECK(sdelta_open(delta, &f, &e) == 0, "open: %s", e.msg);
    StCheckpoint *ck;
    CHECK(st_open(pst, &ck, &e) == 0, "st_open: %s", e.msg);
    CHECK(sdelta_verify(f, ck, 1, &e) == 0, "verify against the right parent: %s", e.msg);
    /* one byte of one parent tensor changed, in an unchanged chunk */
    long j = sdelta_find(f, "w.same");
    uint8_t *wrong = malloc(pairs[2].nbytes), *buf = malloc(pairs[2].nbytes);
    memcpy(wrong, pairs[2].parent, pairs[2].nbytes);
    wrong[17] ^= 0x40;
    int rc = sdelta_decode_tensor(f, (size_t)j, wrong, buf, 1, &e);
    CHECK(rc == SS_EINCOMPAT && strstr(e.msg, "tensor 'w.same'") && strstr(e.msg, "small.sdelta"),
          "wrong parent accepted or badly named: %d %s", rc, e.msg);
    /* another checkpoint as parent: the child itself */
    StTensorSpec specs[5];
    const void *datas[5];
    for (size_t i = 0; i < n; i++) {
        specs[i] = (StTensorSpec){pairs[i].name, pairs[i].dtype, pairs[i].ndim, pairs[i].shape};
        datas[i] = pairs[i].child;
    }
    char *cst;
    if (asprintf(&cst, "%s/child.safetensors", dir) < 0)
        exit(2);
    CHECK(st_write(cst, specs, datas, n, NULL, 0, &e) == 0, "st_write: %s", e.msg);
    StCheckpoint *ck2;
    CHECK(st_open(cst, &ck2, &e) == 0, "st_open: %s", e.msg);
    rc = sdelta_verify(f, ck2, 1, &e);
    CHECK(rc == SS_EINCOMPAT, "verify against the child: %d %s", rc, e.msg);
    char *out;
    if (asprintf(&out, "%s/out.safetensors", dir) < 0)
        exit(2);
    rc = sdelta_apply(f, ck2, out, 1, &e);
    CHECK(rc == SS_EINCOMPAT && strstr(e.msg, "tensor '"), "apply to the child: %d %s", rc, e.msg);
    CHECK(access(out, F_OK) != 0, "apply left an output behind");
    /* apply to the right parent gives the child's tensors */
    CHECK(sdelta_apply(f, ck, out, 2, &e) == 0, "apply: %s", e.msg);
    StCheckpoint *res;
    if (st_open(out, &res, &e) == 0) {
        for (size_t i = 0; i < n; i++) {
            const StTensor *t = st_find(res, pairs[i].name);
            CHECK(t && t->nbytes == pairs[i].nbytes &&
                      memcmp(t->data, pairs[i].child, t->nbytes) == 0,
                  "applied '%s'", pairs[i].name);
        }
        st_close(res);
    } else {
        CHECK(0, "open applied: %s", e.msg);
    }
    st_close(ck2);
    st_close(ck);
    sdelta_close(f);
    free(wrong);
    free(buf);
    free(out);
    free(cst);
    free(delta);
    free(pst);
    for (size_t i = 0; i < n; i++)
        tu_pair_free(&pairs[i]);
    tu_rmtree(dir);
    free(dir);
}

static void test_bitflip(void)
{
    char *dir = tu_tmpdir("bf");
    TuPair pairs[5];
    size_t n;
    char *delta, *pst;
    small_fixture(dir, pairs, &n, &delta, &pst);
    size_t len = 0;
    uint8_t *orig = tu_read_file(delta, &len), *buf = malloc(len);
    StCheckpoint *ck;
    SsError e = {0};
    CHECK(st_open(pst, &ck, &e) == 0, "st_open: %s", e.msg);
    SdeltaFile *f0;
    CHECK(sdelta_open_mem(orig, len, "small.sdelta", &f0, &e) == 0, "open: %s", e.msg);
    /* the fixture covers the escape mode (format 1.2), so flips reach its payload */
    long je = sdelta_find(f0, "w.escape");
    CHECK(je >= 0 && f0->tensors[je].chunks_by_mode[SDELTA_MODE_ESCAPE] == 1,
          "the fixture has no escape-mode chunk");
    /* the byte ranges of chunk payloads, to check the messages name tensor and chunk */
    uint64_t data_end = len - f0->header_bytes + 16;
    size_t undetected = 0, unnamed = 0, flips = 0;
    for (size_t pos = 0; pos < len; pos++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(buf, orig, len);
            buf[pos] ^= (uint8_t)(1u << bit);
            flips++;
            SdeltaFile *f;
            int rc = sdelta_open_mem(buf, len, "small.sdelta", &f, &e);
            if (rc == 0) {
                rc = sdelta_verify(f, ck, 1, &e);
                sdelta_close(f);
                if (rc == 0) {
                    undetected++;
                    if (undetected < 5)
                        fprintf(stderr, "undetected flip at byte %zu bit %d\n", pos, bit);
                    continue;
                }
            }
            CHECK(strstr(e.msg, "small.sdelta") != NULL, "message lacks the file: %s", e.msg);
            if (pos >= 16 && pos < data_end &&
                (!strstr(e.msg, "tensor '") || !strstr(e.msg, "chunk "))) {
                unnamed++;
                if (unnamed < 5)
                    fprintf(stderr, "flip in chunk data, message: %s\n", e.msg);
            }
        }
    }
    CHECK(undetected == 0, "%zu of %zu bit flips undetected", undetected, flips);
    CHECK(unnamed == 0, "%zu flips in chunk data without tensor and chunk named", unnamed);
    printf("bitflip: %zu flips over %zu bytes, all detected\n", flips, len);
    sdelta_close(f0);
    st_close(ck);
    free(orig);
    free(buf);
    free(delta);
    free(pst);
    for (size_t i = 0; i < n; i++)
        tu_pair_free(&pairs[i]);
    tu_rmtree(dir);
    free(dir);
}

static void test_truncate(void)
{
    char *dir = tu_tmpdir("tr");
    TuPair pairs[5];
    size_t n;
    char *delta, *pst;
    small_fixture(dir, pairs, &n, &delta, &pst);
    size_t len = 0;
    uint8_t *orig = tu_read_file(delta, &len);
    size_t accepted = 0;
    for (size_t l = 0; l < len; l++) {
        SdeltaFile *f;
        SsError e = {0};
        uint8_t *cut = malloc(l + 1);
        memcpy(cut, orig, l);
        if (sdelta_open_mem(cut, l, "cut.sdelta", &f, &e) == 0) {
            accepted++;
            sdelta_close(f);
        }
        free(cut);
    }
    CHECK(accepted == 0, "%zu truncated prefixes accepted", accepted);
    /* on disk too */
    if (truncate(delta, (off_t)(len - 1)) == 0) {
        SdeltaFile *f;
        SsError e = {0};
        CHECK(sdelta_open(delta, &f, &e) == SS_EINPUT && strstr(e.msg, "small.sdelta"),
              "truncated file: %s", e.msg);
    }
    free(orig);
    free(delta);
    free(pst);
    for (size_t i = 0; i < n; i++)
        tu_pair_free(&pairs[i]);
    tu_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "all";
    bool all = strcmp(which, "all") == 0;
    if (all || strcmp(which, "roundtrip") == 0)
        test_roundtrip();
    if (all || strcmp(which, "wrongparent") == 0)
        test_wrongparent();
    if (all || strcmp(which, "bitflip") == 0)
        test_bitflip();
    if (all || strcmp(which, "truncate") == 0)
        test_truncate();
    printf("%s: %d failures\n", which, tu_failures);
    return tu_failures ? 1 : 0;
}
