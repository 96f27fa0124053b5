/* The changed-element mask: bit i of the output (LSB-first within each byte, the order of
 * numpy.packbits(..., bitorder='little')) is 1 exactly when element i changed (docs/metrics.md:
 * stored bits differ, except that +0 and -0 of a float type are equal).
 *
 * With w-bit storage words a, b and mag = the magnitude bits of a float type (all bits for integer
 * and BOOL types), an element is unchanged when a == b or (a | b) & mag == 0 (two zeros of either
 * sign). The SIMD paths test that on 8, 16, 32 or 64-bit lanes:
 *   AVX-512: two compare masks (cmpneq, test) ANDed; the k-register is the mask bytes themselves;
 *   AVX2:    two cmpeq results ORed, packed to one byte a lane where needed, movemask, negated.
 * Every group writes whole bytes (a multiple of 8 elements); the rest of a block goes through the
 * portable loop, which zeroes the unused high bits of a final partial byte. */
#include <immintrin.h>
#include <string.h>

#include "kernels/scan.h"
#include "kernels/scan_elem.h"
#include "kernels/scan_isa.h"

static uint64_t mask_word(const uint8_t *p, size_t es, size_t i)
{
    switch (es) {
    case 2: { uint16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case 8: { uint64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    default: return p[i];
    }
}

/* Elements [i0, n) element by element; i0 is a multiple of 8. */
static void mask_range_portable(DType dt, const uint8_t *a, const uint8_t *b, size_t i0, size_t n,
                                uint8_t *mask)
{
    size_t es = dtype_size(dt);
    const uint64_t mag = scan_elem_magnitude(dt);
    for (size_t i = i0; i < n; i += 8) {
        unsigned byte = 0;
        size_t end = n - i < 8 ? n - i : 8;
        for (size_t k = 0; k < end; k++) {
            uint64_t x = mask_word(a, es, i + k), y = mask_word(b, es, i + k);
            byte |= (unsigned)scan_elem_mask_bit_mag(mag, x, y) << k;
        }
        mask[i / 8] = (uint8_t)byte;
    }
}

void scan_mask_block_portable(DType dt, const void *a, const void *b, size_t n, uint8_t *mask)
{
    mask_range_portable(dt, a, b, 0, n, mask);
}

/* ---- AVX-512 (BW for 8/16-bit lanes) -------------------------------------------------------- */

#define MASK512_TARGET "avx512f,avx512bw"

__attribute__((target(MASK512_TARGET)))
void scan_mask_block_avx512(DType dt, const void *a, const void *b, size_t n, uint8_t *mask)
{
    const uint8_t *pa = a, *pb = b;
    size_t es = dtype_size(dt), i = 0;
    uint64_t mag = scan_elem_magnitude(dt);
    switch (es) {
    case 1: {
        __m512i m = _mm512_set1_epi8((char)mag);
        for (; i + 64 <= n; i += 64) {
            __m512i x = _mm512_loadu_si512(pa + i), y = _mm512_loadu_si512(pb + i);
            uint64_t k = _mm512_cmpneq_epu8_mask(x, y) &
                         _mm512_test_epi8_mask(_mm512_or_si512(x, y), m);
            memcpy(mask + i / 8, &k, 8);
        }
        break;
    }
    case 2: {
        __m512i m = _mm512_set1_epi16((short)mag);
        for (; i + 32 <= n; i += 32) {
            __m512i x = _mm512_loadu_si512(pa + 2 * i), y = _mm512_loadu_si512(pb + 2 * i);
            uint32_t k = _mm512_cmpneq_epu16_mask(x, y) &
                         _mm512_test_epi16_mask(_mm512_or_si512(x, y), m);
            memcpy(mask + i / 8, &k, 4);
        }
        break;
    }
    case 4: {
        __m512i m = _mm512_set1_epi32((int)(uint32_t)mag);
        for (; i + 16 <= n; i += 16) {
            __m512i x = _mm512_loadu_si512(pa + 4 * i), y = _mm512_loadu_si512(pb + 4 * i);
            uint16_t k = _mm512_cmpneq_epu32_mask(x, y) &
                         _mm512_test_epi32_mask(_mm512_or_si512(x, y), m);
            memcpy(mask + i / 8, &k, 2);
        }
        break;
    }
    default: {
        __m512i m = _mm512_set1_epi64((long long)mag);
        for (; i + 8 <= n; i += 8) {
            __m512i x = _mm512_loadu_si512(pa + 8 * i), y = _mm512_loadu_si512(pb + 8 * i);
            __mmask8 k = _mm512_cmpneq_epu64_mask(x, y) &
                         _mm512_test_epi64_mask(_mm512_or_si512(x, y), m);
            mask[i / 8] = (uint8_t)k;
        }
        break;
    }
    }
    mask_range_portable(dt, pa, pb, i, n, mask);
}

/* ---- AVX2 ---------------------------------------------------------------------------------- */

#define MASK2_TARGET "avx2"

/* All-ones lanes where the pair is unchanged: a == b, or (a | b) & m == 0. */
#define MASK2_SAME(bits, x, y, m)                                                          \
    _mm256_or_si256(_mm256_cmpeq_epi##bits(x, y),                                          \
                    _mm256_cmpeq_epi##bits(_mm256_and_si256(_mm256_or_si256(x, y), m),     \
                                           _mm256_setzero_si256()))

__attribute__((target(MASK2_TARGET)))
void scan_mask_block_avx2(DType dt, const void *a, const void *b, size_t n, uint8_t *mask)
{
    const uint8_t *pa = a, *pb = b;
    size_t es = dtype_size(dt), i = 0;
    uint64_t mag = scan_elem_magnitude(dt);
    switch (es) {
    case 1: {
        __m256i m = _mm256_set1_epi8((char)mag);
        for (; i + 32 <= n; i += 32) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(pa + i));
            __m256i y = _mm256_loadu_si256((const __m256i *)(pb + i));
            uint32_t k = ~(uint32_t)_mm256_movemask_epi8(MASK2_SAME(8, x, y, m));
            memcpy(mask + i / 8, &k, 4);
        }
        break;
    }
    case 2: {
        __m256i m = _mm256_set1_epi16((short)mag);
        for (; i + 32 <= n; i += 32) {
            const uint8_t *qa = pa + 2 * i, *qb = pb + 2 * i;
            __m256i x0 = _mm256_loadu_si256((const __m256i *)qa);
            __m256i y0 = _mm256_loadu_si256((const __m256i *)qb);
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(qa + 32));
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(qb + 32));
            /* packs works per 128-bit half: [s0.lo s1.lo s0.hi s1.hi] -> reorder the quarters */
            __m256i p = _mm256_packs_epi16(MASK2_SAME(16, x0, y0, m), MASK2_SAME(16, x1, y1, m));
            p = _mm256_permute4x64_epi64(p, 0xD8);
            uint32_t k = ~(uint32_t)_mm256_movemask_epi8(p);
            memcpy(mask + i / 8, &k, 4);
        }
        break;
    }
    case 4: {
        __m256i m = _mm256_set1_epi32((int)(uint32_t)mag);
        for (; i + 8 <= n; i += 8) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(pa + 4 * i));
            __m256i y = _mm256_loadu_si256((const __m256i *)(pb + 4 * i));
            int same = _mm256_movemask_ps(_mm256_castsi256_ps(MASK2_SAME(32, x, y, m)));
            mask[i / 8] = (uint8_t)~same;
        }
        break;
    }
    default: {
        __m256i m = _mm256_set1_epi64x((long long)mag);
        for (; i + 8 <= n; i += 8) {
            const uint8_t *qa = pa + 8 * i, *qb = pb + 8 * i;
            __m256i x0 = _mm256_loadu_si256((const __m256i *)qa);
            __m256i y0 = _mm256_loadu_si256((const __m256i *)qb);
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(qa + 32));
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(qb + 32));
            int s0 = _mm256_movemask_pd(_mm256_castsi256_pd(MASK2_SAME(64, x0, y0, m)));
            int s1 = _mm256_movemask_pd(_mm256_castsi256_pd(MASK2_SAME(64, x1, y1, m)));
            mask[i / 8] = (uint8_t)~(s0 | s1 << 4);
        }
        break;
    }
    }
    mask_range_portable(dt, pa, pb, i, n, mask);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

void scan_mask_block(DType dt, const void *a, const void *b, size_t n, uint8_t *mask)
{
    switch (scan_isa_active()) {
    case SCAN_ISA_AVX512: scan_mask_block_avx512(dt, a, b, n, mask); break;
    case SCAN_ISA_AVX2: scan_mask_block_avx2(dt, a, b, n, mask); break;
    default: scan_mask_block_portable(dt, a, b, n, mask); break;
    }
}
