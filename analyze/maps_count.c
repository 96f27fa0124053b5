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

/* Stores the cell row counts row[0..c) as cell_size-byte unsigned integers at out (each fits:
 * maps.c picks the size for the largest cell) and clears row. */
static void maps_store_row(uint64_t *row, uint64_t c, size_t cell_size, void *out)
{
    /* one loop per size, so that each vectorizes */
    if (cell_size == 1)
        for (uint64_t k = 0; k < c; k++)
            ((uint8_t *)out)[k] = (uint8_t)row[k];
    else if (cell_size == 2)
        for (uint64_t k = 0; k < c; k++)
            ((uint16_t *)out)[k] = (uint16_t)row[k];
    else if (cell_size == 4)
        for (uint64_t k = 0; k < c; k++)
            ((uint32_t *)out)[k] = (uint32_t)row[k];
    else
        memcpy(out, row, c * sizeof *row);
    memset(row, 0, c * sizeof *row);
}

/* Portable: a popcount per 64 bits for the row, each set bit into its column and, through a
 * column -> cell lookup made from col_edges, its cell. */
__attribute__((target("popcnt"))) static int
maps_count_bits(const uint8_t *mask, uint64_t rows, uint64_t cols, const uint64_t *row_edges,
                uint64_t r, const uint64_t *col_edges, uint64_t c, uint64_t *row_changed,
                uint64_t *col_changed, uint64_t *cellrow, size_t cell_size, uint8_t *cells)
{
    uint32_t *col_cell = malloc((cols ? cols : 1) * sizeof *col_cell);
    if (!col_cell)
        return -1;
    for (uint64_t j = 0; j < c; j++)
        for (uint64_t k = col_edges[j]; k < col_edges[j + 1]; k++)
            col_cell[k] = (uint32_t)j;
    uint64_t nbytes = scan_mask_bytes(rows * cols);
    for (uint64_t i = 0; i < r; i++) {
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
        maps_store_row(cellrow, c, cell_size, cells + i * c * cell_size);
    }
    free(col_cell);
    return 0;
}

/* AVX-512BW: per cell row, 16-bit counters of every column, bumped 32 at a time from the mask
 * word's bits (a masked add per 32 columns, whatever the density). At the end of each cell row
 * (and every rows_per_flush rows, before a counter could overflow), maps_flush_avx512 adds them
 * into the columns and, through their running sum, into the cells. */

/* col_changed += cnt and cellrow[k] += the sum of cnt over [col_edges[k], col_edges[k+1]) for
 * k < c, through P (cols + 1 + 16 u32): P[j] = cnt[0] + ... + cnt[j-1], 16 lanes a step; then
 * clears cnt. cnt has padded (a multiple of 64) entries, zero past cols. The running sums stay
 * below 2^32: the caller flushes before rows * cols reaches it. */
__attribute__((target("avx512f,avx512bw"))) static void
maps_flush_avx512(uint16_t *cnt, uint64_t cols, uint64_t padded, const uint64_t *col_edges,
                  uint64_t c, uint32_t *P, uint64_t *col_changed, uint64_t *cellrow)
{
    const __m512i zero = _mm512_setzero_si512(), last = _mm512_set1_epi32(15);
    __m512i carry = zero;
    P[0] = 0;
    for (uint64_t j = 0; j < cols; j += 16) {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(cnt + j)));
        /* col_changed[j .. j+16) += v (only the columns that exist) */
        uint64_t left = cols > j ? cols - j : 0;
        __mmask8 k0 = (__mmask8)(left >= 8 ? 0xFF : (1u << left) - 1);
        __mmask8 k1 = (__mmask8)(left >= 16 ? 0xFF : left > 8 ? (1u << (left - 8)) - 1 : 0);
        __m512i c0 = _mm512_maskz_loadu_epi64(k0, col_changed + j);
        __m512i c1 = _mm512_maskz_loadu_epi64(k1, col_changed + j + 8);
        c0 = _mm512_add_epi64(c0, _mm512_cvtepu32_epi64(_mm512_castsi512_si256(v)));
        c1 = _mm512_add_epi64(c1, _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(v, 1)));
        _mm512_mask_storeu_epi64(col_changed + j, k0, c0);
        _mm512_mask_storeu_epi64(col_changed + j + 8, k1, c1);
        /* inclusive running sum of the 16 lanes, plus what came before */
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 15));
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 14));
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 12));
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, zero, 8));
        v = _mm512_add_epi32(v, carry);
        _mm512_storeu_si512(P + j + 1, v);
        carry = _mm512_permutexvar_epi32(last, v);
    }
    /* cellrow[k] += P[col_edges[k+1]] - P[col_edges[k]], 8 cells a step with gathers */
    uint64_t k = 0;
    for (; k + 8 <= c; k += 8) {
        __m512i lo = _mm512_loadu_si512(col_edges + k), hi = _mm512_loadu_si512(col_edges + k + 1);
        __m256i sum = _mm256_sub_epi32(_mm512_i64gather_epi32(hi, (const int *)P, 4),
                                       _mm512_i64gather_epi32(lo, (const int *)P, 4));
        __m512i acc = _mm512_loadu_si512(cellrow + k);
        _mm512_storeu_si512(cellrow + k, _mm512_add_epi64(acc, _mm512_cvtepu32_epi64(sum)));
    }
    for (; k < c; k++)
        cellrow[k] += P[col_edges[k + 1]] - P[col_edges[k]];
    memset(cnt, 0, padded * sizeof *cnt);
}

__attribute__((target("avx512f,avx512bw,popcnt"))) static int
maps_count_avx512(const uint8_t *mask, uint64_t rows, uint64_t cols, const uint64_t *row_edges,
                  uint64_t r, const uint64_t *col_edges, uint64_t c, uint64_t *row_changed,
                  uint64_t *col_changed, uint64_t *cellrow, size_t cell_size, uint8_t *cells)
{
    uint64_t nbytes = scan_mask_bytes(rows * cols), padded = (cols + 63) / 64 * 64;
    uint16_t *cnt = aligned_alloc(64, padded * sizeof *cnt);
    uint32_t *P = malloc((padded + 17) * sizeof *P);
    if (!cnt || !P) {
        free(cnt);
        free(P);
        return -1;
    }
    memset(cnt, 0, padded * sizeof *cnt);
    /* rows a flush may hold: 16-bit counters, and running sums below 2^32 */
    uint64_t rows_per_flush = UINT32_MAX / (cols ? cols : 1);
    if (rows_per_flush > UINT16_MAX)
        rows_per_flush = UINT16_MAX;
    const __m512i one = _mm512_set1_epi16(1);
    const int aligned = cols % 64 == 0; /* every row starts on a whole 64-bit word */
    for (uint64_t i = 0; i < r; i++) {
        uint64_t since = 0; /* rows counted since the last flush */
        int dirty = 0;      /* and whether any had a change */
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
            dirty |= n != 0;
            if (++since == rows_per_flush) {
                if (dirty)
                    maps_flush_avx512(cnt, cols, padded, col_edges, c, P, col_changed, cellrow);
                since = 0;
                dirty = 0;
            }
        }
        if (dirty)
            maps_flush_avx512(cnt, cols, padded, col_edges, c, P, col_changed, cellrow);
        maps_store_row(cellrow, c, cell_size, cells + i * c * cell_size);
    }
    free(cnt);
    free(P);
    return 0;
}

int maps_count(const uint8_t *mask, uint64_t rows, uint64_t cols, const uint64_t *row_edges,
               uint64_t r, const uint64_t *col_edges, uint64_t c,
               uint64_t *row_changed, uint64_t *col_changed, size_t cell_size, void *cells)
{
    uint64_t *cellrow = calloc(c ? c : 1, sizeof *cellrow); /* one cell row's counts */
    if (!cellrow)
        return -1;
    int rc = 0;
    if (scan_isa_active() == SCAN_ISA_AVX512 && __builtin_cpu_supports("avx512bw"))
        rc = maps_count_avx512(mask, rows, cols, row_edges, r, col_edges, c, row_changed,
                               col_changed, cellrow, cell_size, cells);
    else
        rc = maps_count_bits(mask, rows, cols, row_edges, r, col_edges, c, row_changed,
                             col_changed, cellrow, cell_size, cells);
    free(cellrow);
    return rc;
}
