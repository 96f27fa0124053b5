/* --delta-dtype: count |round_dtype(b − a)| > t, as scripts do that subtract two bf16 tensors in
 * bf16, instead of the exact |b − a| > t. Rounding is monotone, so this is the exact test against
 * another threshold; the scan kernels run unchanged with it. */
#ifndef SS_DELTA_DTYPE_H
#define SS_DELTA_DTYPE_H

#include "formats/dtype.h"
#include "kernels/scan.h"

/* The threshold tau with: for every double d >= 0, d > tau  <=>  |dtype_round(dt, d)| > t.
 * For dtypes without rounding (F64, integers) it is t itself. */
double delta_dtype_threshold(DType dt, double t);

/* cfg with its absolute tolerances replaced by their thresholds for dt. */
ScanConfig delta_dtype_config(const ScanConfig *cfg, DType dt);

#endif
