/* Chunk codec round trips on raw buffers: every width, both transforms, every mode (split: widths
 * 1 and 2), densities from one change to all, parent present or absent, and the rANS
 * reciprocal's exactness. */
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
                            for (int mode = 1; mode <= 5; mode++) /* 5 (split): w <= 2 */
                                for (int xf = 0; xf < 2; xf++) {
                                    roundtrip(sizes[si], widths[wi], fl, dens[di], par, mode, xf);
                                    n++;
                                }
                    }
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
