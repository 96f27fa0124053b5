/* maps_count (analyze/maps_count.h) against a bit-by-bit reference on random masks: widths that
 * are and are not multiples of 64 (the AVX-512 path's aligned and shifted loads), densities from
 * empty to full, uneven cell edges, and one cell row of 70,000 rows (past the 16-bit counters'
 * flush at 65,535). meson runs it twice: with the default path and with SS_SCAN_ISA=portable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/maps_count.h"
#include "tests/check.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* One case: a random (rows, cols) mask with about permille/1000 of the bits set, cells given by
 * r cell rows (even split) and c cell columns. */
static void check_case(uint64_t rows, uint64_t cols, uint64_t r, uint64_t c, unsigned permille)
{
    uint64_t numel = rows * cols, nbytes = (numel + 7) / 8;
    uint8_t *mask = calloc(nbytes ? nbytes : 1, 1);
    uint64_t *row_edges = malloc((r + 1) * sizeof *row_edges);
    uint64_t *col_edges = malloc((c + 1) * sizeof *col_edges);
    uint32_t *col_cell = malloc(cols * sizeof *col_cell);
    uint64_t *rowc = calloc(rows, 8), *colc = calloc(cols, 8), *cells = calloc(r * c, 8);
    uint64_t *want_row = calloc(rows, 8), *want_col = calloc(cols, 8);
    uint64_t *want_cells = calloc(r * c, 8);
    if (!mask || !row_edges || !col_edges || !col_cell || !rowc || !colc || !cells || !want_row ||
        !want_col || !want_cells) {
        CHECK(!"out of memory");
        goto done;
    }
    for (uint64_t k = 0; k < numel; k++)
        if (next_rand() % 1000 < permille)
            mask[k / 8] |= (uint8_t)(1u << (k % 8));
    for (uint64_t i = 0; i <= r; i++)
        row_edges[i] = r ? i * rows / r : 0;
    for (uint64_t j = 0; j <= c; j++)
        col_edges[j] = c ? j * cols / c : 0;
    for (uint64_t j = 0; j < c; j++)
        for (uint64_t k = col_edges[j]; k < col_edges[j + 1]; k++)
            col_cell[k] = (uint32_t)j;
    for (uint64_t i = 0; i < r; i++)
        for (uint64_t ri = row_edges[i]; ri < row_edges[i + 1]; ri++)
            for (uint64_t cj = 0; cj < cols; cj++) {
                uint64_t k = ri * cols + cj;
                if (mask[k / 8] >> (k % 8) & 1) {
                    want_row[ri]++;
                    want_col[cj]++;
                    want_cells[i * c + col_cell[cj]]++;
                }
            }
    CHECK(maps_count(mask, rows, cols, row_edges, r, col_edges, c, rowc, colc, 8,
                     cells) == 0);
    int ok = !memcmp(rowc, want_row, rows * 8) && !memcmp(colc, want_col, cols * 8) &&
             !memcmp(cells, want_cells, r * c * 8);
    if (!ok)
        fprintf(stderr, "maps_count differs: %llu x %llu, %llu x %llu cells, %u permille\n",
                (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)r,
                (unsigned long long)c, permille);
    CHECK(ok);
    /* the narrow stores: the same cells as 1-, 2- and 4-byte counts where the largest fits */
    uint64_t largest = 0;
    for (uint64_t k = 0; k < r * c; k++)
        largest = want_cells[k] > largest ? want_cells[k] : largest;
    for (size_t size = 1; size <= 4; size *= 2) {
        if (largest >> (8 * size))
            continue;
        uint64_t *rc2 = calloc(rows ? rows : 1, 8), *cc2 = calloc(cols ? cols : 1, 8);
        uint8_t *narrow = malloc(r * c * size + 1);
        if (!rc2 || !cc2 || !narrow) {
            CHECK(!"out of memory");
        } else {
            CHECK(maps_count(mask, rows, cols, row_edges, r, col_edges, c, rc2, cc2,
                             size, narrow) == 0);
            for (uint64_t k = 0; k < r * c; k++) {
                uint64_t v = size == 1 ? narrow[k] : size == 2 ? ((uint16_t *)narrow)[k]
                                                               : ((uint32_t *)narrow)[k];
                if (v != want_cells[k]) {
                    fprintf(stderr, "maps_count: %zu-byte cell %llu is %llu, want %llu\n", size,
                            (unsigned long long)k, (unsigned long long)v,
                            (unsigned long long)want_cells[k]);
                    CHECK(v == want_cells[k]);
                    break;
                }
            }
        }
        free(rc2);
        free(cc2);
        free(narrow);
    }
done:
    free(mask);
    free(row_edges);
    free(col_edges);
    free(col_cell);
    free(rowc);
    free(colc);
    free(cells);
    free(want_row);
    free(want_col);
    free(want_cells);
}

int main(void)
{
    static const uint64_t widths[] = {1, 3, 63, 64, 65, 127, 128, 700, 1024};
    static const unsigned densities[] = {0, 1, 90, 500, 1000};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
        for (size_t d = 0; d < sizeof densities / sizeof densities[0]; d++) {
            uint64_t cols = widths[w], rows = 37 + next_rand() % 300;
            uint64_t r = rows < 16 ? rows : 16, c = cols < 7 ? cols : 7;
            check_case(rows, cols, r, c, densities[d]);
            check_case(rows, cols, rows, cols, densities[d]); /* one element a cell */
        }
    check_case(70000, 64, 1, 4, 300);  /* one cell row past the 16-bit flush */
    check_case(70000, 3, 2, 3, 999);
    check_case(0, 64, 0, 4, 500);      /* no rows at all */
    if (failures)
        fprintf(stderr, "test_maps_count: %d failure(s)\n", failures);
    return failures != 0;
}
