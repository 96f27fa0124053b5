/* Chunk codec round trips on raw buffers: every width, both transforms, every mode (split: widths
 * 1 and 2; escape: width 2), densities from one change to all, parent present or absent, and the
 * rANS reciprocal's exactness; escape-mode payloads with bad escapes are refused. */
#include "formats/sdelta/sdelta_chunk.h"
#include "formats/sdelta/sdelta_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A child near its parent: density of changes, small steps in the low bits, some wild values. */
static void make_pair(uint8_t *p, uint8_t *c, size_t m, unsigned w, double density)
{
    for (size_t i = 0; i < m * w; i++)
        p[i] = (uint8_t)next();
    memcpy(c, p, m * w);
    for (size_t i = 0; i < m; i++) {
        if ((double)(next() % 1000000) / 1e6 >= density)
            continue;
        uint64_t x = 0;
        memcpy(&x, p + i * w, w);
        uint64_t r = next();
        if (r % 50 == 0)
            x = next();
        else
            x += (r & 8) ? (r >> 4) % 5 + 1 : -(uint64_t)((r >> 4) % 5 + 1);
        memcpy(c + i * w, &x, w);
        if (memcmp(c + i * w, p + i * w, w) == 0)
            c[i * w] ^= 1;
    }
}

static void roundtrip(size_t m, unsigned w, bool fl, double density, bool with_parent, int mode,
                      int xform)
{
    uint8_t *p = malloc(m * w + 1), *c = malloc(m * w + 1), *d = malloc(m * w + 1);
    make_pair(p, c, m, w, density);
    SdChunkShape sh = {m, w, fl};
    SdChunkScratch scr = {0};
    SdChunkEncodeOpts opt = {mode, xform, 3};
    SdBuf out = {0};
    uint8_t md;
    uint64_t nch;
    int rc = sdelta_encode_chunk(&sh, with_parent ? p : NULL, c, NULL, &opt, &scr, &md, &nch, &out);
    CHECK(rc == 0, "encode");
    CHECK(mode != SDELTA_MODE_SPLIT || w > 2 || nch == 0 || md == SDELTA_MODE_SPLIT,
          "forced split mode not taken (m=%zu w=%u)", m, w);
    CHECK(mode != SDELTA_MODE_ESCAPE || w != 2 || nch == 0 || md == SDELTA_MODE_ESCAPE,
          "forced escape mode not taken (m=%zu w=%u)", m, w);
    SdChunkScratch dscr = {0};
    const char *why = "";
    memset(d, 0xAA, m * w);
    rc = sdelta_decode_chunk(&sh, md, out.p, out.len, nch, with_parent ? p : NULL, NULL, 0, &dscr,
                             d, &why);
    CHECK(rc == 0, "decode m=%zu w=%u fl=%d dens=%g parent=%d mode=%d/%d xf=%d: %s", m, w, fl,
          density, with_parent, mode, md, xform, why);
    CHECK(rc != 0 || memcmp(c, d, m * w) == 0, "mismatch m=%zu w=%u dens=%g mode=%d xf=%d", m, w,
          density, md, xform);
    /* a truncated payload must never decode */
    if (out.len > 0) {
        rc = sdelta_decode_chunk(&sh, md, out.p, out.len - 1, nch, with_parent ? p : NULL, NULL, 0,
                                 &dscr, d, &why);
        CHECK(rc != 0, "truncated payload decoded (mode %d)", md);
    }
    sdbuf_free(&out);
    sdelta_chunk_scratch_free(&scr);
    sdelta_chunk_scratch_free(&dscr);
    free(p);
    free(c);
    free(d);
}

/* Escape-mode payloads whose escapes are cut short, too small, or followed by extra bytes are
 * refused, whatever the path (SIMD for 16 elements and more, scalar below). */
static int escape_malformed(void)
{
    int n = 0;
    for (size_t m = 15; m <= 4099; m = m * 4 + 3) {
        uint8_t *p = malloc(2 * m), *c = malloc(2 * m), *d = malloc(2 * m + 16);
        for (size_t i = 0; i < m; i++) {
            uint16_t a = (uint16_t)next(), b = (uint16_t)(a ^ (i % 3 == 0 ? 0x4000 : 1));
            memcpy(p + 2 * i, &a, 2);
            memcpy(c + 2 * i, &b, 2);
        }
        SdChunkShape sh = {m, 2, false};
        SdChunkScratch scr = {0};
        SdChunkEncodeOpts opt = {SDELTA_MODE_ESCAPE, SDELTA_XFORM_XOR, 3};
        SdBuf out = {0};
        uint8_t md;
        uint64_t nch;
        CHECK(sdelta_encode_chunk(&sh, p, c, NULL, &opt, &scr, &md, &nch, &out) == 0 &&
                  md == SDELTA_MODE_ESCAPE,
              "escape encode m=%zu", m);
        const char *why;
        CHECK(sdelta_decode_chunk(&sh, md, out.p, out.len, nch, p, NULL, 0, &scr, d, &why) == 0 &&
                  memcmp(d, c, 2 * m) == 0,
              "escape decode m=%zu", m);
        /* the last escape (0x4001 at the end of the payload) made smaller than 255 */
        uint8_t *bad = malloc(out.len + 2);
        memcpy(bad, out.p, out.len);
        bad[out.len - 2] = 7;
        bad[out.len - 1] = 0;
        CHECK(sdelta_decode_chunk(&sh, md, bad, out.len, nch, p, NULL, 0, &scr, d, &why) != 0,
              "escape below 255 accepted m=%zu", m);
        /* one escape missing; two extra bytes */
        memcpy(bad, out.p, out.len);
        CHECK(sdelta_decode_chunk(&sh, md, bad, out.len - 2, nch, p, NULL, 0, &scr, d, &why) != 0,
              "short escapes accepted m=%zu", m);
        bad[out.len] = 0x00;
        bad[out.len + 1] = 0x40;
        CHECK(sdelta_decode_chunk(&sh, md, bad, out.len + 2, nch, p, NULL, 0, &scr, d, &why) != 0,
              "trailing escape accepted m=%zu", m);
        /* the escape mode for other widths */
        SdChunkShape sh4 = {m / 2, 4, false};
        CHECK(sdelta_decode_chunk(&sh4, md, out.p, out.len, nch / 2, p, NULL, 0, &scr, d,
                                  &why) != 0,
              "escape mode for width 4 accepted");
        free(bad);
        sdbuf_free(&out);
        sdelta_chunk_scratch_free(&scr);
        free(p);
        free(c);
        free(d);
        n += 5;
    }
    return n;
}

int main(void)
{
    const size_t sizes[] = {1, 2, 7, 64, 65, 1000, 4099, 70000};
    const double dens[] = {0.0, 0.0001, 0.01, 0.14, 0.5, 0.9, 1.0};
    const unsigned widths[] = {1, 2, 4, 8};
    int n = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t di = 0; di < sizeof dens / sizeof *dens; di++)
            for (size_t wi = 0; wi < 4; wi++)
                for (int fl = 0; fl < 2; fl++)
                    for (int par = 0; par < 2; par++) {
                        roundtrip(sizes[si], widths[wi], fl, dens[di], par, -1, -1);
                        n++;
                        if (sizes[si] <= 4099 && dens[di] > 0)
                            for (int mode = 1; mode <= 6; mode++) /* 5: w <= 2; 6: w = 2 */
                                for (int xf = 0; xf < 2; xf++) {
                                    roundtrip(sizes[si], widths[wi], fl, dens[di], par, mode, xf);
                                    n++;
                                }
                    }
    /* escape mode on big chunks (the SIMD path) with many escapes: wild values at every density */
    for (size_t di = 1; di < sizeof dens / sizeof *dens; di++)
        for (int fl = 0; fl < 2; fl++)
            for (int xf = 0; xf < 2; xf++) {
                roundtrip(70000, 2, fl, dens[di], true, SDELTA_MODE_ESCAPE, xf);
                roundtrip(70001, 2, fl, dens[di], false, SDELTA_MODE_ESCAPE, xf);
                n += 2;
            }
    n += escape_malformed();
    /* reciprocal division used by the encoder is exact below 2^31 */
    for (uint32_t f = 2; f <= 4096; f++) {
        uint32_t shift = 0;
        while (f > (1u << shift))
            shift++;
        uint32_t rcp = (uint32_t)(((1ull << (shift + 31)) + f - 1) / f);
        for (int t = 0; t < 200; t++) {
            uint32_t x = (uint32_t)(next() & 0x7fffffff);
            if (t == 0)
                x = 0x7fffffff;
            uint32_t q = (uint32_t)(((uint64_t)x * rcp) >> 32) >> (shift - 1);
            CHECK(q == x / f, "rcp f=%u x=%u", f, x);
        }
    }
    printf("%d chunk round trips, %d failures\n", n, failures);
    return failures ? 1 : 0;
}
