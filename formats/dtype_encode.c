/* float32 -> BF16 / F16 with round-to-nearest-even, in integer arithmetic on the bits (see
 * dtype_encode.h). */
#include "formats/dtype_encode.h"

#include <string.h>

static uint32_t f32_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

uint16_t dtype_f32_to_bf16(float x)
{
    uint32_t b = f32_bits(x);
    if ((b & 0x7fffffffu) > 0x7f800000u)          /* NaN: keep sign and top payload, quiet */
        return (uint16_t)((b >> 16) | 0x0040u);
    b += 0x7fffu + ((b >> 16) & 1u);               /* ties to even; carries reach Inf correctly */
    return (uint16_t)(b >> 16);
}

uint16_t dtype_f32_to_f16(float x)
{
    uint32_t b = f32_bits(x);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    uint32_t a = b & 0x7fffffffu;
    if (a > 0x7f800000u)                           /* NaN */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u)                          /* >= 65520 (65504 + half an ulp): Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) {                        /* >= 2^-14: a normal F16 */
        a += 0x0fffu + ((a >> 13) & 1u);
        return (uint16_t)(sign | ((a - 0x38000000u) >> 13));
    }
    /* Subnormal F16 (units of 2^-24) or zero: value = mant * 2^(e-150), so the count of units is
     * mant >> (126 - e), rounded. */
    uint32_t e = a >> 23;
    if (e < 102)                                   /* < 2^-25: rounds to zero */
        return sign;
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t s = 126 - e;                          /* 14 .. 24 */
    uint32_t r = mant >> s, rem = mant & ((1u << s) - 1u), half = 1u << (s - 1);
    if (rem > half || (rem == half && (r & 1u)))
        r++;
    return (uint16_t)(sign | r);
}

void dtype_encode_bf16(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = dtype_f32_to_bf16(src[i]);
}

void dtype_encode_f16(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = dtype_f32_to_f16(src[i]);
}
