/* XXH64 against the published test vectors (xxhsum's sanity check over its generated buffer,
 * and python-xxhash's documented digests). */
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
    printf("%zu vectors, %d failures\n", sizeof v / sizeof *v, bad);
    return bad != 0;
}
