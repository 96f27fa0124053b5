/* Element types of safetensors checkpoints: names as the safetensors format spells them, sizes,
 * and classification. Decoding of values to double lives in dtype_convert.h. */
#ifndef SS_DTYPE_H
#define SS_DTYPE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum DType {
    DT_BOOL,
    DT_U8,
    DT_I8,
    DT_I16,
    DT_U16,
    DT_I32,
    DT_U32,
    DT_I64,
    DT_U64,
    DT_F16,
    DT_BF16,
    DT_F32,
    DT_F64,
    DT_F8_E4M3, /* "F8_E4M3": OCP E4M3FN (no Inf, NaN = S.1111.111) */
    DT_F8_E5M2, /* "F8_E5M2": IEEE-like, with Inf and NaN */
    DT_COUNT
} DType;

/* "BF16", "F32", ... as in safetensors headers. */
const char *dtype_name(DType dt);

/* Parses a safetensors dtype name; returns 0 and sets *out, or -1 for an unknown name. */
int dtype_from_name(const char *name, DType *out);

/* Bytes per element: 1, 2, 4 or 8. */
size_t dtype_size(DType dt);

/* True for the floating-point types (F16, BF16, F32, F64, F8_*). */
bool dtype_is_float(DType dt);

#endif
