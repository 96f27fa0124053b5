/* Rounding a double to the nearest value of a float dtype (round half to even, as IEEE
 * conversions do), returned as a double. Used to reproduce scripts that compute Δ in the tensor's
 * own dtype (sparsity-scan --delta-dtype). */
#ifndef SS_DTYPE_ROUND_H
#define SS_DTYPE_ROUND_H

#include "formats/dtype.h"

/* x rounded once to dt: BF16, F16, F32 and F8_E5M2 overflow to ±Inf, F8_E4M3 (no Inf) to NaN;
 * subnormals are kept. F64 and the integer dtypes return x unchanged. */
double dtype_round(DType dt, double x);

#endif
