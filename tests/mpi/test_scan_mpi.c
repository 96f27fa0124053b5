/* Unit test of analyze/scan_mpi.c's partition (suite 'mpi'): every pair gets one owner in range,
 * the plan is deterministic, largest-first onto the least loaded rank with ties to the lower index
 * and rank, balanced within the largest pair, and one rank (or no pairs) owns everything. Without
 * MPI running, the collectives are no-ops of rank 0 of 1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/scan_mpi.h"
#include "tests/check.h"

static void check_balanced(const uint64_t *bytes, size_t n, int nranks)
{
    int *owner = malloc(n * sizeof *owner), *again = malloc(n * sizeof *again);
    uint64_t *load = calloc((size_t)nranks, sizeof *load);
    uint64_t total = 0, biggest = 0;
    scan_mpi_partition(bytes, n, nranks, owner);
    scan_mpi_partition(bytes, n, nranks, again);
    CHECK(memcmp(owner, again, n * sizeof *owner) == 0);
    for (size_t i = 0; i < n; i++) {
        CHECK(owner[i] >= 0 && owner[i] < nranks);
        if (owner[i] >= 0 && owner[i] < nranks)
            load[owner[i]] += bytes[i];
        total += bytes[i];
        biggest = bytes[i] > biggest ? bytes[i] : biggest;
    }
    /* greedy LPT: no rank exceeds the mean by more than the largest pair */
    for (int r = 0; r < nranks; r++)
        CHECK(load[r] <= total / (uint64_t)nranks + biggest);
    free(owner);
    free(again);
    free(load);
}

int main(void)
{
    /* the plan worked by hand: 10 to rank 0, 8 to 1, 6 to 1 (8 < 10)... */
    uint64_t b[] = {6, 10, 1, 8, 5};
    int owner[5];
    scan_mpi_partition(b, 5, 2, owner);
    /* order 10(i1) -> r0; 8(i3) -> r1; 6(i0) -> r1 (8<10); 5(i4) -> r0 (10<14); 1(i2) -> r1 (14<15) */
    CHECK(owner[1] == 0 && owner[3] == 1 && owner[0] == 1 && owner[4] == 0 && owner[2] == 1);

    /* ties: equal sizes go in index order round the ranks */
    uint64_t eq[] = {4, 4, 4, 4, 4};
    int o2[5];
    scan_mpi_partition(eq, 5, 3, o2);
    CHECK(o2[0] == 0 && o2[1] == 1 && o2[2] == 2 && o2[3] == 0 && o2[4] == 1);

    /* more ranks than pairs: the rest idle; zero-byte pairs go to the first idle rank */
    uint64_t few[] = {0, 7, 0};
    int o3[3];
    scan_mpi_partition(few, 3, 8, o3);
    CHECK(o3[1] == 0 && o3[0] == 1 && o3[2] == 1); /* zero bytes add no load */

    /* one rank owns all */
    int o4[5];
    scan_mpi_partition(b, 5, 1, o4);
    for (int i = 0; i < 5; i++)
        CHECK(o4[i] == 0);

    /* random sizes, several rank counts */
    uint64_t rnd[500];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < 500; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        rnd[i] = x % 100000000u;
    }
    for (int nr = 1; nr <= 17; nr += 4)
        check_balanced(rnd, 500, nr);

    /* not launched by mpirun (the test runs it plainly): one process, no-op collectives */
    CHECK(scan_mpi_rank() == 0 && scan_mpi_size() == 1);
    SsError err = {0};
    CHECK(scan_mpi_agree(-2, &err) == -2 && scan_mpi_share_status(0, &err) == 0);
    CHECK(scan_mpi_default_threads() == 0);
    return failures != 0;
}
