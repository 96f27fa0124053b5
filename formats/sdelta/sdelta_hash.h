/* XXH64, the 64-bit xxHash, implemented from its published specification
 * (xxhash.com, "xxHash fast digest algorithm", XXH64 section). sdelta uses it for every checksum:
 * chunk payloads, the header, the footer, and the parent and child tensor bytes. */
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

#endif
