/* The AVX-512 path of scan_hist_block (kernels/scan_hist_avx512.c), internal to kernels/: BF16,
 * F16 and F32 pairs binned by the rule of kernels/scan_elem.h (scan_elem_hist_bin), the same
 * counts as the scalar loop of kernels/scan_hist.c. */
#ifndef SS_SCAN_HIST_AVX512_H
#define SS_SCAN_HIST_AVX512_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/scan.h"

/* Whether this CPU runs scan_hist_block_avx512 (AVX-512 F/BW/DQ/VL and VBMI2) and dt is one of
 * its dtypes. */
int scan_hist_avx512_usable(DType dt);

/* Adds the bins of the changed pairs among the first whole 64-byte groups of a and b (mask: the
 * changed-element mask, bit i for element i; NULL: found here by the changed rule) into out,
 * whose range holds scan_hist_dtype_range(dt). Returns the elements done: a multiple of
 * 64 / dtype_size(dt), the rest is the caller's. Call only where scan_hist_avx512_usable(dt). */
size_t scan_hist_block_avx512(DType dt, const void *a, const void *b, size_t n,
                              const uint8_t *mask, ScanHist *out);

#endif
