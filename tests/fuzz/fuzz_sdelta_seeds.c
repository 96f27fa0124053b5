/* Writes the seed corpus of fuzz_sdelta into a folder: small valid .sdelta files (every dtype,
 * each chunk mode, shared tables) and single chunks in the harness's chunk format.
 * Usage: fuzz_sdelta_seeds DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/sdelta/sdelta.h"
#include "formats/sdelta/sdelta_chunk.h"
#include "formats/sdelta/sdelta_format.h"
#include <zstd.h>
#include "tests/sdelta/sdelta_testutil.h"

static void save(const char *dir, const char *name, uint8_t sel, const uint8_t *b, size_t n)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        exit(2);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(&sel, 1, 1, f) != 1 || fwrite(b, 1, n, f) != n) {
        perror(p);
        exit(2);
    }
    fclose(f);
    free(p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_sdelta_seeds DIR\n");
        return 1;
    }
    const char *dir = argv[1];
    char *tmp = tu_tmpdir("seeds");
    const double dens[] = {0.02, 0.3, 0.95};
    for (int k = 0; k < 3; k++) {
        TuPair p[4];
        const uint64_t s0[] = {300}, s1[] = {5, 3}, s2[] = {1}, s3[] = {0};
        DType dts[] = {DT_BF16, DT_F32, DT_I8, DT_F64};
        tu_pair(&p[0], "a", dts[k], 1, s0, dens[k]);
        tu_pair(&p[1], "b", dts[(k + 1) % 4], 2, s1, dens[k]);
        tu_pair(&p[2], "c", dts[(k + 2) % 4], 0, s2, 1.0);
        tu_pair(&p[3], "d", dts[(k + 3) % 4], 1, s3, 0);
        SdeltaTensorSrc ps[4], cs[4];
        for (int i = 0; i < 4; i++) {
            ps[i] = tu_src(&p[i], false);
            cs[i] = tu_src(&p[i], true);
        }
        SdeltaWriteOptions o;
        sdelta_write_options_init(&o);
        o.parent_name = "base.safetensors";
        o.chunk_elems = 128;
        o.threads = 1;
        StMeta meta[] = {{"k", "v"}};
        o.meta = meta;
        o.nmeta = 1;
        char *path;
        if (asprintf(&path, "%s/s%d.sdelta", tmp, k) < 0)
            return 2;
        SsError e;
        if (sdelta_write_tensors(path, ps, 4, cs, 4, &o, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            return 2;
        }
        size_t n = 0;
        uint8_t *b = tu_read_file(path, &n);
        char name[32];
        snprintf(name, sizeof name, "file-%d", k);
        save(dir, name, 1, b, n);
        /* the same as a raw header followed by its data section */
        const uint8_t *foot = b + n - SDELTA_FOOTER_BYTES;
        uint64_t hoff = sdelta_rd64(foot), csize = sdelta_rd64(foot + 8), usize = sdelta_rd64(foot + 16);
        uint8_t *h = malloc(2 + usize + hoff);
        h[0] = (uint8_t)usize;
        h[1] = (uint8_t)(usize >> 8);
        if (ZSTD_decompress(h + 2, usize, b + hoff, csize) != usize)
            return 2;
        memcpy(h + 2 + usize, b, hoff);
        snprintf(name, sizeof name, "header-%d", k);
        save(dir, name, 2, h, 2 + usize + hoff);
        free(h);
        free(b);
        free(path);
        for (int i = 0; i < 4; i++)
            tu_pair_free(&p[i]);
    }
    /* single chunks, each mode, through the harness's chunk header */
    for (int mode = 1; mode <= SDELTA_MODE_ESCAPE; mode++) {
        for (int wi = 0; wi < 4; wi++) {
            const unsigned widths[] = {1, 2, 4, 8};
            if (mode == SDELTA_MODE_SPLIT && widths[wi] > 2)
                continue; /* the split mode is for 1- and 2-byte elements only */
            if (mode == SDELTA_MODE_ESCAPE && widths[wi] != 2)
                continue; /* the escape mode (format 1.2) is for 2-byte elements only */
            TuPair p;
            const uint64_t s[] = {200};
            DType dt = wi == 0 ? DT_U8 : wi == 1 ? DT_BF16 : wi == 2 ? DT_F32 : DT_I64;
            tu_pair(&p, "x", dt, 1, s, mode == SDELTA_MODE_SPARSE ? 0.05 : 0.6);
            SdChunkShape sh = {200, widths[wi], dtype_is_float(dt)};
            SdChunkEncodeOpts o = {mode, -1, 3};
            SdChunkScratch scr = {0};
            SdBuf out = {0};
            uint8_t md;
            uint64_t nch;
            sdelta_encode_chunk(&sh, p.parent, p.child, NULL, &o, &scr, &md, &nch, &out);
            uint8_t *b = malloc(out.len + 6);
            b[0] = (uint8_t)(wi | (sh.is_float ? 4 : 0) | 8);
            b[1] = md;
            b[2] = 199 & 0xff;
            b[3] = 0;
            b[4] = (uint8_t)nch;
            b[5] = (uint8_t)(nch >> 8);
            memcpy(b + 6, out.p, out.len);
            char name[32];
            snprintf(name, sizeof name, "chunk-m%d-w%u", mode, widths[wi]);
            save(dir, name, 0, b, out.len + 6);
            free(b);
            sdbuf_free(&out);
            sdelta_chunk_scratch_free(&scr);
            tu_pair_free(&p);
        }
    }
    tu_rmtree(tmp);
    free(tmp);
    return 0;
}
