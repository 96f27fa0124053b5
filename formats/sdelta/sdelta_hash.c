/* XXH64 from its specification: four 64-bit lanes over 32-byte stripes, then the tail and the
 * avalanche. XXH3-64 (seed 0, default secret) as the reference implementation (xxHash 0.8)
 * defines it: short inputs by length class, long ones as eight 64-bit accumulators over 64-byte
 * stripes with 32x32-bit multiplies (AVX2 where available), scrambled every 1024 bytes. Both are
 * checked against digests of the reference library in tests/sdelta/test_sdelta_hash.c. */
#include "formats/sdelta/sdelta_hash.h"

#include <pthread.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SD_HASH_AVX2 1
#endif

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t read64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* little-endian hosts only (x86-64, aarch64) */
    return v;
}

static inline uint32_t read32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t input)
{
    acc += input * P2;
    acc = rotl64(acc, 31);
    return acc * P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t val)
{
    acc ^= xxh_round(0, val);
    return acc * P1 + P4;
}

uint64_t sdelta_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data, *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const uint8_t *limit = end - 32;
        do {
            v1 = xxh_round(v1, read64(p));
            v2 = xxh_round(v2, read64(p + 8));
            v3 = xxh_round(v3, read64(p + 16));
            v4 = xxh_round(v4, read64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xxh_merge(h, v1);
        h = xxh_merge(h, v2);
        h = xxh_merge(h, v3);
        h = xxh_merge(h, v4);
    } else {
        h = seed + P5;
    }
    h += (uint64_t)len;
    while (end - p >= 8) {
        h ^= xxh_round(0, read64(p));
        h = rotl64(h, 27) * P1 + P4;
        p += 8;
    }
    if (end - p >= 4) {
        h ^= (uint64_t)read32(p) * P1;
        h = rotl64(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)(*p) * P5;
        h = rotl64(h, 11) * P1;
        p++;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

/* ---- XXH3-64 ---- */

#define P32_1 0x9E3779B1u
#define P32_2 0x85EBCA77u
#define P32_3 0xC2B2AE3Du
#define PMX1 0x165667919E3779F9ull
#define PMX2 0x9FB21C651E98DF25ull
#define SECRET_SIZE 192u
#define STRIPE 64u
#define BLOCK (STRIPE * ((SECRET_SIZE - STRIPE) / 8u)) /* 16 stripes: 1024 bytes */

static const uint8_t k_secret[SECRET_SIZE] = {
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
};

static inline uint64_t mul128_fold64(uint64_t a, uint64_t b)
{
    unsigned __int128 p = (unsigned __int128)a * b;
    return (uint64_t)p ^ (uint64_t)(p >> 64);
}

static inline uint64_t xxh64_avalanche(uint64_t h)
{
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    return h ^ (h >> 32);
}

static inline uint64_t xxh3_avalanche(uint64_t h)
{
    h ^= h >> 37;
    h *= PMX1;
    return h ^ (h >> 32);
}

static inline uint64_t rrmxmx(uint64_t h, uint64_t len)
{
    h ^= rotl64(h, 49) ^ rotl64(h, 24);
    h *= PMX2;
    h ^= (h >> 35) + len;
    h *= PMX2;
    return h ^ (h >> 28);
}

static inline uint64_t mix16(const uint8_t *p, const uint8_t *sec)
{
    return mul128_fold64(read64(p) ^ read64(sec), read64(p + 8) ^ read64(sec + 8));
}

static uint64_t xxh3_short(const uint8_t *p, size_t len)
{
    const uint8_t *s = k_secret;
    if (len == 0)
        return xxh64_avalanche(read64(s + 56) ^ read64(s + 64));
    if (len <= 3) {
        uint32_t c = ((uint32_t)p[0] << 16) | ((uint32_t)p[len >> 1] << 24) | p[len - 1] |
                     ((uint32_t)len << 8);
        return xxh64_avalanche((uint64_t)c ^ (uint64_t)(read32(s) ^ read32(s + 4)));
    }
    if (len <= 8) {
        uint64_t in64 = read32(p + len - 4) + ((uint64_t)read32(p) << 32);
        return rrmxmx(in64 ^ (read64(s + 8) ^ read64(s + 16)), len);
    }
    if (len <= 16) {
        uint64_t lo = read64(p) ^ (read64(s + 24) ^ read64(s + 32));
        uint64_t hi = read64(p + len - 8) ^ (read64(s + 40) ^ read64(s + 48));
        return xxh3_avalanche(len + __builtin_bswap64(lo) + hi + mul128_fold64(lo, hi));
    }
    uint64_t acc = len * P1;
    if (len <= 128) {
        if (len > 32) {
            if (len > 64) {
                if (len > 96) {
                    acc += mix16(p + 48, s + 96);
                    acc += mix16(p + len - 64, s + 112);
                }
                acc += mix16(p + 32, s + 64);
                acc += mix16(p + len - 48, s + 80);
            }
            acc += mix16(p + 16, s + 32);
            acc += mix16(p + len - 32, s + 48);
        }
        acc += mix16(p, s);
        acc += mix16(p + len - 16, s + 16);
        return xxh3_avalanche(acc);
    }
    /* 129 .. 240 */
    for (unsigned i = 0; i < 8; i++)
        acc += mix16(p + 16 * i, s + 16 * i);
    acc = xxh3_avalanche(acc);
    for (unsigned i = 8; i < len / 16; i++)
        acc += mix16(p + 16 * i, s + 16 * (i - 8) + 3);
    acc += mix16(p + len - 16, s + 136 - 17);
    return xxh3_avalanche(acc);
}

static inline void acc512(uint64_t *acc, const uint8_t *p, const uint8_t *sec)
{
    for (unsigned i = 0; i < 8; i++) {
        uint64_t v = read64(p + 8 * i), k = v ^ read64(sec + 8 * i);
        acc[i ^ 1] += v;
        acc[i] += (uint64_t)(uint32_t)k * (k >> 32);
    }
}

static inline void scramble(uint64_t *acc, const uint8_t *sec)
{
    for (unsigned i = 0; i < 8; i++) {
        uint64_t a = acc[i];
        a ^= a >> 47;
        a ^= read64(sec + 8 * i);
        acc[i] = a * P32_1;
    }
}

/* The accumulators over nblocks whole blocks, then nstripes stripes. */
static void xxh3_blocks(uint64_t *acc, const uint8_t *p, size_t nblocks, size_t nstripes)
{
    for (size_t b = 0; b < nblocks; b++, p += BLOCK) {
        for (unsigned n = 0; n < BLOCK / STRIPE; n++)
            acc512(acc, p + n * STRIPE, k_secret + 8 * n);
        scramble(acc, k_secret + SECRET_SIZE - STRIPE);
    }
    for (size_t n = 0; n < nstripes; n++)
        acc512(acc, p + n * STRIPE, k_secret + 8 * n);
}

#ifdef SD_HASH_AVX2
__attribute__((target("avx2"))) static inline void acc512_avx2(__m256i *a, const uint8_t *p,
                                                               const uint8_t *sec)
{
    for (int h = 0; h < 2; h++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * h));
        __m256i k = _mm256_xor_si256(v, _mm256_loadu_si256((const __m256i *)(sec + 32 * h)));
        __m256i prod = _mm256_mul_epu32(k, _mm256_srli_epi64(k, 32));
        __m256i sw = _mm256_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2));
        a[h] = _mm256_add_epi64(a[h], _mm256_add_epi64(prod, sw));
    }
}

__attribute__((target("avx2"))) static void xxh3_blocks_avx2(uint64_t *acc, const uint8_t *p,
                                                             size_t nblocks, size_t nstripes)
{
    __m256i a[2] = {_mm256_loadu_si256((const __m256i *)acc),
                    _mm256_loadu_si256((const __m256i *)(acc + 4))};
    const __m256i prime = _mm256_set1_epi32((int)P32_1);
    for (size_t b = 0; b < nblocks; b++, p += BLOCK) {
        for (unsigned n = 0; n < BLOCK / STRIPE; n++)
            acc512_avx2(a, p + n * STRIPE, k_secret + 8 * n);
        for (int h = 0; h < 2; h++) {
            __m256i x = a[h];
            x = _mm256_xor_si256(x, _mm256_srli_epi64(x, 47));
            x = _mm256_xor_si256(
                x, _mm256_loadu_si256((const __m256i *)(k_secret + SECRET_SIZE - STRIPE + 32 * h)));
            __m256i lo = _mm256_mul_epu32(x, prime);
            __m256i hi = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), prime);
            a[h] = _mm256_add_epi64(lo, _mm256_slli_epi64(hi, 32));
        }
    }
    for (size_t n = 0; n < nstripes; n++)
        acc512_avx2(a, p + n * STRIPE, k_secret + 8 * n);
    _mm256_storeu_si256((__m256i *)acc, a[0]);
    _mm256_storeu_si256((__m256i *)(acc + 4), a[1]);
}

static int hash_avx2_ok = -1;
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void hash_init(void)
{
    __builtin_cpu_init();
    hash_avx2_ok = __builtin_cpu_supports("avx2") ? 1 : 0;
}
#endif

uint64_t sdelta_xxh3_64_ref(const void *data, size_t len, int simd)
{
    const uint8_t *p = data;
    if (len <= 240)
        return xxh3_short(p, len);
    uint64_t acc[8] = {P32_3, P1, P2, P3, P4, P32_2, P5, P32_1};
    size_t nblocks = (len - 1) / BLOCK;
    size_t nstripes = ((len - 1) - BLOCK * nblocks) / STRIPE;
#ifdef SD_HASH_AVX2
    pthread_once(&hash_once, hash_init);
    if (simd && hash_avx2_ok)
        xxh3_blocks_avx2(acc, p, nblocks, nstripes);
    else
        xxh3_blocks(acc, p, nblocks, nstripes);
#else
    (void)simd;
    xxh3_blocks(acc, p, nblocks, nstripes);
#endif
    acc512(acc, p + len - STRIPE, k_secret + SECRET_SIZE - STRIPE - 7);
    uint64_t r = len * P1;
    for (unsigned i = 0; i < 4; i++)
        r += mul128_fold64(acc[2 * i] ^ read64(k_secret + 11 + 16 * i),
                           acc[2 * i + 1] ^ read64(k_secret + 11 + 16 * i + 8));
    return xxh3_avalanche(r);
}

uint64_t sdelta_xxh3_64(const void *data, size_t len) { return sdelta_xxh3_64_ref(data, len, 1); }
