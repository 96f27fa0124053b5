/* The counting pass of the update maps (analyze/maps.c): from one matrix's changed-element mask,
 * the changed count of every row, every column and every cell. Two paths with the same results:
 * 16-bit column counters bumped 64 columns at a time from the mask words and added into the
 * columns and cells once per cell row through a vector running sum (AVX-512BW, when the scan runs
 * AVX-512: kernels/scan_isa.h, SS_SCAN_ISA), and a walk over the set bits (portable). */
#ifndef SS_MAPS_COUNT_H
#define SS_MAPS_COUNT_H

#include <stddef.h>
#include <stdint.h>

/* mask: LSB-first bits of the row-major (rows, cols) matrix, ceil(rows*cols/8) bytes.
 * row_edges[0..r]: cell row i covers rows [row_edges[i], row_edges[i+1]); col_edges[0..c]
 * likewise for the columns. Adds into row_changed[rows] and col_changed[cols], which the caller zeroed, and
 * writes cells[r * c] (row-major), each count a cell_size-byte unsigned integer (1, 2, 4 or 8;
 * large enough for the largest cell). Returns 0, or -1 when out of memory. */
int maps_count(const uint8_t *mask, uint64_t rows, uint64_t cols, const uint64_t *row_edges,
               uint64_t r, const uint64_t *col_edges, uint64_t c,
               uint64_t *row_changed, uint64_t *col_changed, size_t cell_size, void *cells);

#endif
