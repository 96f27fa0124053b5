/* Element types of safetensors checkpoints: the name table, sizes and classification
 * (see dtype.h). */
#include "formats/dtype.h"

#include <string.h>

/* Indexed by DType; names exactly as safetensors headers spell them. */
static const struct {
    const char *name;
    size_t size; /* bytes per element */
    bool is_float;
} dtype_table[DT_COUNT] = {
    [DT_BOOL] = {"BOOL", 1, false},
    [DT_U8] = {"U8", 1, false},
    [DT_I8] = {"I8", 1, false},
    [DT_I16] = {"I16", 2, false},
    [DT_U16] = {"U16", 2, false},
    [DT_I32] = {"I32", 4, false},
    [DT_U32] = {"U32", 4, false},
    [DT_I64] = {"I64", 8, false},
    [DT_U64] = {"U64", 8, false},
    [DT_F16] = {"F16", 2, true},
    [DT_BF16] = {"BF16", 2, true},
    [DT_F32] = {"F32", 4, true},
    [DT_F64] = {"F64", 8, true},
    [DT_F8_E4M3] = {"F8_E4M3", 1, true},
    [DT_F8_E5M2] = {"F8_E5M2", 1, true},
};

const char *dtype_name(DType dt)
{
    if ((unsigned)dt >= DT_COUNT)
        return "?";
    return dtype_table[dt].name;
}

int dtype_from_name(const char *name, DType *out)
{
    if (!name)
        return -1;
    for (int i = 0; i < DT_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (DType)i;
            return 0;
        }
    }
    return -1;
}

size_t dtype_size(DType dt)
{
    if ((unsigned)dt >= DT_COUNT)
        return 0;
    return dtype_table[dt].size;
}

bool dtype_is_float(DType dt)
{
    if ((unsigned)dt >= DT_COUNT)
        return false;
    return dtype_table[dt].is_float;
}
