/* Decoding stored elements to double, exactly, and classifying them (finite, zero).
 *
 * Header-only and marked SS_HD so that the CPU scan and the CUDA kernels call the same functions.
 * Every value of every supported dtype is exactly representable as a double except 64-bit integers
 * beyond 2^53 (rounded to nearest). */
#ifndef SS_DTYPE_CONVERT_H
#define SS_DTYPE_CONVERT_H

#include <stdint.h>
#include <string.h>

#include "formats/dtype.h"

#if defined(__CUDACC__)
#define SS_HD __host__ __device__ static inline
#else
#define SS_HD static inline
#endif

SS_HD double ss_f32_bits_to_double(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return (double)f;
}

SS_HD double ss_bf16_to_double(uint16_t h)
{
    return ss_f32_bits_to_double((uint32_t)h << 16);
}

SS_HD double ss_f16_to_double(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    double v;
    if (exp == 0)
        v = (double)man * (1.0 / 16777216.0); /* subnormal: man * 2^-24 */
    else if (exp == 31)
        v = man ? __builtin_nan("") : __builtin_inf();
    else
        v = (double)(man | 0x400) * (double)(1u << exp) * (1.0 / 33554432.0); /* * 2^(exp-25) */
    return sign ? -v : v;
}

/* OCP FP8 E4M3FN: bias 7, no infinities, S.1111.111 is NaN. */
SS_HD double ss_f8e4m3_to_double(uint8_t x)
{
    int sign = x >> 7, exp = (x >> 3) & 0xf, man = x & 7;
    double v;
    if (exp == 15 && man == 7)
        v = __builtin_nan("");
    else if (exp == 0)
        v = (double)man * (1.0 / 512.0); /* man * 2^-9 */
    else
        v = (double)(man | 8) * (double)(1u << exp) * (1.0 / 1024.0); /* * 2^(exp-10) */
    return sign ? -v : v;
}

/* FP8 E5M2: bias 15, IEEE-style Inf and NaN. */
SS_HD double ss_f8e5m2_to_double(uint8_t x)
{
    return ss_f16_to_double((uint16_t)((uint16_t)x << 8));
}

/* Decodes element i of a buffer of dtype dt. Integers and BOOL decode to their value. */
SS_HD double ss_decode(DType dt, const void *p, size_t i)
{
    const uint8_t *b = (const uint8_t *)p;
    switch (dt) {
    case DT_BOOL: return b[i] ? 1.0 : 0.0;
    case DT_U8: return (double)b[i];
    case DT_I8: return (double)(int8_t)b[i];
    case DT_I16: { int16_t v; memcpy(&v, b + 2 * i, 2); return (double)v; }
    case DT_U16: { uint16_t v; memcpy(&v, b + 2 * i, 2); return (double)v; }
    case DT_I32: { int32_t v; memcpy(&v, b + 4 * i, 4); return (double)v; }
    case DT_U32: { uint32_t v; memcpy(&v, b + 4 * i, 4); return (double)v; }
    case DT_I64: { int64_t v; memcpy(&v, b + 8 * i, 8); return (double)v; }
    case DT_U64: { uint64_t v; memcpy(&v, b + 8 * i, 8); return (double)v; }
    case DT_F16: { uint16_t v; memcpy(&v, b + 2 * i, 2); return ss_f16_to_double(v); }
    case DT_BF16: { uint16_t v; memcpy(&v, b + 2 * i, 2); return ss_bf16_to_double(v); }
    case DT_F32: { uint32_t v; memcpy(&v, b + 4 * i, 4); return ss_f32_bits_to_double(v); }
    case DT_F64: { double v; memcpy(&v, b + 8 * i, 8); return v; }
    case DT_F8_E4M3: return ss_f8e4m3_to_double(b[i]);
    case DT_F8_E5M2: return ss_f8e5m2_to_double(b[i]);
    default: return 0.0;
    }
}

#endif
