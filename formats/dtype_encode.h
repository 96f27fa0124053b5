/* Encoding float32 values as BF16 and F16 (the inverse of dtype_convert.h's decoders), rounding
 * to nearest with ties to even as IEEE conversions (and torch's .to(torch.bfloat16)) do.
 *
 * Finite values too large for the target become ±Inf (BF16 above the largest finite value plus
 * half an ulp; F16 at |x| >= 65520), ±Inf stay ±Inf, values too small become subnormals or ±0
 * with their sign, and NaN stays NaN: sign and top payload bits kept, the quiet bit set. */
#ifndef SS_DTYPE_ENCODE_H
#define SS_DTYPE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

/* One value's stored bits. */
uint16_t dtype_f32_to_bf16(float x);
uint16_t dtype_f32_to_f16(float x);

/* n values from src to dst (arrays must not overlap). */
void dtype_encode_bf16(const float *src, uint16_t *dst, size_t n);
void dtype_encode_f16(const float *src, uint16_t *dst, size_t n);

#endif
