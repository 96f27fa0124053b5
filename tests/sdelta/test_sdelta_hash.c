/* XXH64 against the published test vectors (xxhsum's sanity check over its generated buffer,
 * and python-xxhash's documented digests); XXH3-64, both its AVX2 and portable paths, against
 * XXH3_64bits of the reference library (libxxhash 0.8.1) over every length class, from 0 bytes
 * to several 1024-byte blocks with partial stripes. */
#include "formats/sdelta/sdelta_hash.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    unsigned char b[101];
    unsigned g = 2654435761u;
    for (int i = 0; i < 101; i++) {
        b[i] = (unsigned char)(g >> 24);
        g *= g;
    }
    const unsigned prime = 2654435761u;
    struct { const void *p; size_t n; unsigned long long seed, want; } v[] = {
        {NULL, 0, 0, 0xEF46DB3751D8E999ull},
        {b, 1, 0, 0x4FCE394CC88952D8ull},
        {b, 1, prime, 0x739840CB819FA723ull},
        {b, 14, 0, 0xCFFA8DB881BC3A3Dull},
        {b, 14, prime, 0x5B9611585EFCC9CBull},
        {b, 101, 0, 0x0EAB543384F878ADull},
        {b, 101, prime, 0xCAA65939306F1E21ull},
        {"abc", 3, 0, 0x44BC2CF5AD770999ull},
        {"Nobody inspects the spammish repetition", 39, 0, 0xFBCEA83C8A378BF1ull},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        unsigned long long got = sdelta_hash64(v[i].p ? v[i].p : "", v[i].n, v[i].seed);
        if (got != v[i].want) {
            fprintf(stderr, "FAIL vector %zu: %016llx, want %016llx\n", i, got, v[i].want);
            bad++;
        }
    }
    /* XXH3: b3[i] = (i * 131 + 7) ^ (i >> 8), the first n bytes */
    static unsigned char b3[5000];
    for (unsigned i = 0; i < sizeof b3; i++)
        b3[i] = (unsigned char)((i * 131u + 7u) ^ (i >> 8));
    struct { size_t n; unsigned long long want; } v3[] = {
        {0, 0x2D06800538D394C2ULL},
        {1, 0x4C5CCA45D0F4811FULL},
        {2, 0x29C60963CBFA4E6EULL},
        {3, 0x6E3E2670E61106ACULL},
        {4, 0x5C4C63133443D03FULL},
        {7, 0x46A5C724D51FE43FULL},
        {8, 0xF9FD4DD0B04D78F5ULL},
        {9, 0x7C20DF9712C26EDFULL},
        {15, 0xB345A7B2698BA575ULL},
        {16, 0x86ABF6BACCEA0858ULL},
        {17, 0xB58BF5DC5022D071ULL},
        {31, 0x48442FCD5518B086ULL},
        {32, 0xE3712ED84C04A66EULL},
        {33, 0xA4DEE99B093E1F73ULL},
        {64, 0x1291D2D4042330DDULL},
        {65, 0x97C6BF83217E5EC9ULL},
        {96, 0x81296929FC063365ULL},
        {97, 0xF145A45B658AB9DDULL},
        {127, 0xED4CF62104020DB5ULL},
        {128, 0x10D17F72C0CCBA41ULL},
        {129, 0x1648BDC3DB49D1A2ULL},
        {200, 0xC0FBC0F4E181C826ULL},
        {239, 0xF0D154819ADB16CDULL},
        {240, 0xB6CFAF343FAB81E6ULL},
        {241, 0x956CAE592C67279EULL},
        {255, 0x64A6073025EB7929ULL},
        {256, 0xB15E550733C5DFACULL},
        {1023, 0xDF6D4CDAF9ACD422ULL},
        {1024, 0x9FB9947417C15B80ULL},
        {1025, 0xFE1B47100B1D79D8ULL},
        {1088, 0xF8D459D5974F3CD7ULL},
        {2047, 0x56E292894CEA951DULL},
        {2048, 0x650CF45CDDE6160AULL},
        {2049, 0x8EA2BF53FF2E0A3AULL},
        {3000, 0xD447A759FD0193B7ULL},
        {5000, 0x35597B69007B5F47ULL},
    };
    for (size_t i = 0; i < sizeof v3 / sizeof *v3; i++)
        for (int simd = 0; simd < 2; simd++) {
            unsigned long long got = sdelta_xxh3_64_ref(b3, v3[i].n, simd);
            if (got != v3[i].want) {
                fprintf(stderr, "FAIL XXH3 len %zu simd %d: %016llx, want %016llx\n", v3[i].n,
                        simd, got, v3[i].want);
                bad++;
            }
        }
    if (sdelta_xxh3_64("abc", 3) != 0x78AF5F94892F3950ull || sdelta_digest(1, "abc", 3) !=
        0x44BC2CF5AD770999ull || sdelta_check32(2, "abc", 3) != 0x892F3950u) {
        fprintf(stderr, "FAIL per-version digests of \"abc\"\n");
        bad++;
    }
    printf("%zu XXH64 vectors, %zu XXH3 vectors, %d failures\n", sizeof v / sizeof *v,
           sizeof v3 / sizeof *v3, bad);
    return bad != 0;
}
