/* XXH64, the 64-bit xxHash, implemented from its published specification
 * (xxhash.com, "xxHash fast digest algorithm", XXH64 section), and XXH3-64 with seed 0 and the
 * default secret (xxHash 0.8). sdelta uses XXH64 for the header and the footer, and for the
 * checks of chunk payloads and of parent and child tensor bytes in files of format 1.0 and 1.1;
 * format 1.2 checks those with XXH3-64 (about 3 times as fast with AVX2). */
#ifndef SDELTA_HASH_H
#define SDELTA_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The XXH64 digest of len bytes at data with the given seed. */
uint64_t sdelta_hash64(const void *data, size_t len, uint64_t seed);

/* The 32-bit check stored for chunks and tensors: the low 32 bits of XXH64 with seed 0. */
static inline uint32_t sdelta_hash32(const void *data, size_t len)
{
    return (uint32_t)sdelta_hash64(data, len, 0);
}

/* XXH3_64bits(data, len) of the reference library. */
uint64_t sdelta_xxh3_64(const void *data, size_t len);
/* The same with the SIMD path (simd 1) or the portable one (simd 0), for tests. */
uint64_t sdelta_xxh3_64_ref(const void *data, size_t len, int simd);

/* The digest of chunk payloads and tensor bytes in a file of minor version `minor`: XXH3-64
 * from 1.2 on, XXH64 (seed 0) before. Checks are its low 32 bits. */
static inline uint64_t sdelta_digest(unsigned minor, const void *data, size_t len)
{
    return minor >= 2 ? sdelta_xxh3_64(data, len) : sdelta_hash64(data, len, 0);
}

static inline uint32_t sdelta_check32(unsigned minor, const void *data, size_t len)
{
    return (uint32_t)sdelta_digest(minor, data, len);
}

#endif
