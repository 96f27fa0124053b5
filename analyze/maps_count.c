/* The update maps' counting pass (analyze/maps_count.h): rows, columns and cells from a mask. */
#include "analyze/maps_count.h"

#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "analyze/scan_report.h"
#include "kernels/scan_isa.h"

/* The 64 mask bits from bit p on (fewer, zero-filled, at the end of the nbytes of mask). */
static inline uint64_t maps_bits64(const uint8_t *mask, uint64_t nbytes, uint64_t p)
{
    uint64_t byte = p / 8, lo = 0, hi = 0;
    unsigned sh = (unsigned)(p % 8);
    if (byte + 16 <= nbytes) {
        memcpy(&lo, mask + byte, 8);
        memcpy(&hi, mask + byte + 8, 8);
    } else {
        uint8_t tmp[16] = {0};
        memcpy(tmp, mask + byte, nbytes - byte < 16 ? nbytes - byte : 16);
        memcpy(&lo, tmp, 8);
        memcpy(&hi, tmp + 8, 8);
    }
    return sh ? lo >> sh | hi << (64 - sh) : lo;
}

/* The bits of row ri's columns [c0, c0 + 64) (those past cols cleared). */
static inline uint64_t maps_row_bits(const uint8_t *mask, uint64_t nbytes, uint64_t ri,
                                     uint64_t cols, uint64_t c0)
{
    uint64_t bits = maps_bits64(mask, nbytes, ri * cols + c0);
    if (cols - c0 < 64)
        bits &= ((uint64_t)1 << (cols - c0)) - 1;
    return bits;
}

/* Portable: a popcount per 64 bits for the row, each set bit into its column and cell. */
__attribute__((target("popcnt"))) static void
maps_count_bits(const uint8_t *mask, uint64_t rows, uint64_t cols, const uint64_t *row_edges,
                uint64_t r, const uint32_t *col_cell, uint64_t c, uint64_t *row_changed,
                uint64_t *col_changed, uint64_t *cells)
{
    uint64_t nbytes = scan_mask_bytes(rows * cols);
    for (uint64_t i = 0; i < r; i++) {
        uint64_t *cellrow = cells + i * c;
        for (uint64_t ri = row_edges[i]; ri < row_edges[i + 1]; ri++) {
            uint64_t n = 0;
            for (uint64_t c0 = 0; c0 < cols; c0 += 64) {
                uint64_t bits = maps_row_bits(mask, nbytes, ri, cols, c0);
                n += (uint64_t)__builtin_popcountll(bits);
                for (; bits; bits &= bits - 1) {
                    uint64_t ci = c0 + (uint64_t)__builtin_ctzll(bits);
                    col_changed[ci]++;
                    cellrow[col_cell[ci]]++;
                }
            }
            row_changed[ri] = n;
        }
    }
}

/* Rows counted into the 16-bit column counters before they are added out (no overflow). */
#define MAPS_FLUSH_ROWS 65535u

/* Adds the column counters cnt[0..cols) into col_changed and the cell row, and clears them. */
static void maps_flush(uint16_t *cnt, uint64_t cols, const uint32_t *col_cell,
                       uint64_t *col_changed, uint64_t *cellrow)
{
    for (uint64_t j = 0; j < cols; j++) {
        col_changed[j] += cnt[j];
        cellrow[col_cell[j]] += cnt[j];
    }
    memset(cnt, 0, cols * sizeof *cnt);
}

/* AVX-512BW: per cell row, 16-bit counters of every column, bumped 32 at a time from the mask
 * word's bits (a masked add per 32 columns, whatever the density), then added into the columns
 * and cells once per cell row. */
__attribute__((target("avx512f,avx512bw,popcnt"))) static int
maps_count_avx512(const uint8_t *mask, uint64_t rows, uint64_t cols, const uint64_t *row_edges,
                  uint64_t r, const uint32_t *col_cell, uint64_t c, uint64_t *row_changed,
                  uint64_t *col_changed, uint64_t *cells)
{
    uint64_t nbytes = scan_mask_bytes(rows * cols), padded = (cols + 63) / 64 * 64;
    uint16_t *cnt = aligned_alloc(64, padded * sizeof *cnt);
    if (!cnt)
        return -1;
    memset(cnt, 0, padded * sizeof *cnt);
    const __m512i one = _mm512_set1_epi16(1);
    const int aligned = cols % 64 == 0; /* every row starts on a whole 64-bit word */
    for (uint64_t i = 0; i < r; i++) {
        uint32_t pending = 0;
        for (uint64_t ri = row_edges[i]; ri < row_edges[i + 1]; ri++) {
            uint64_t n = 0;
            for (uint64_t c0 = 0; c0 < cols; c0 += 64) {
                uint64_t bits;
                if (aligned)
                    memcpy(&bits, mask + (ri * cols + c0) / 8, 8);
                else
                    bits = maps_row_bits(mask, nbytes, ri, cols, c0);
                if (!bits)
                    continue;
                n += (uint64_t)__builtin_popcountll(bits);
                __m512i *v = (__m512i *)(cnt + c0);
                v[0] = _mm512_mask_add_epi16(v[0], (__mmask32)bits, v[0], one);
                v[1] = _mm512_mask_add_epi16(v[1], (__mmask32)(bits >> 32), v[1], one);
            }
            row_changed[ri] = n;
            if (++pending == MAPS_FLUSH_ROWS) {
                maps_flush(cnt, cols, col_cell, col_changed, cells + i * c);
                pending = 0;
            }
        }
        if (pending)
            maps_flush(cnt, cols, col_cell, col_changed, cells + i * c);
    }
    free(cnt);
    return 0;
}

int maps_count(const uint8_t *mask, uint64_t rows, uint64_t cols, const uint64_t *row_edges,
               uint64_t r, const uint32_t *col_cell, uint64_t c, uint64_t *row_changed,
               uint64_t *col_changed, uint64_t *cells)
{
    if (scan_isa_active() == SCAN_ISA_AVX512 && __builtin_cpu_supports("avx512bw"))
        return maps_count_avx512(mask, rows, cols, row_edges, r, col_cell, c, row_changed,
                                 col_changed, cells);
    maps_count_bits(mask, rows, cols, row_edges, r, col_cell, c, row_changed, col_changed,
                    cells);
    return 0;
}
