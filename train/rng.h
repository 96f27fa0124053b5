/* The trainer's random numbers: a counter-based generator, so that every draw is a pure function
 * of (seed, stream, counter) and results do not depend on the thread count, the batching or the
 * order in which work is done. Streams are named by 64-bit ids built with rng_stream(). */
#ifndef SS_TRAIN_RNG_H
#define SS_TRAIN_RNG_H

#include <math.h>
#include <stdint.h>

/* splitmix64's finalizer: a bijective 64-bit mixer. */
static inline uint64_t rng_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A stream key from a seed and up to three ids (purpose, step, index ...). */
static inline uint64_t rng_stream(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t k = rng_mix64(seed ^ 0x5EEDF00DCAFEBABEull);
    k = rng_mix64(k ^ (a + 0x9E3779B97F4A7C15ull));
    k = rng_mix64(k ^ (b + 0xD1B54A32D192ED03ull));
    return rng_mix64(k ^ (c + 0x8CB92BA72F3D8DD7ull));
}

/* The counter-th 64-bit draw of stream key. */
static inline uint64_t rng_u64(uint64_t key, uint64_t counter)
{
    return rng_mix64(key + (counter + 1) * 0x9E3779B97F4A7C15ull);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double rng_uniform(uint64_t key, uint64_t counter)
{
    return (double)(rng_u64(key, counter) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0 (multiply-shift; bias below 2^-32 for n < 2^32). */
static inline uint64_t rng_below(uint64_t key, uint64_t counter, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_u64(key, counter) * n) >> 64);
}

/* Standard normal (Box-Muller over draws 2*counter and 2*counter+1). */
static inline double rng_normal(uint64_t key, uint64_t counter)
{
    double u1 = ((double)(rng_u64(key, 2 * counter) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double u2 = rng_uniform(key, 2 * counter + 1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
