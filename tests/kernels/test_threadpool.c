/* The thread pool: every index of every pool_run runs exactly once, on a worker id in
 * [0, pool_size); pools of 1 to 8 threads, task counts from 0 to 10007, many runs in a row (to
 * shake out wake-up races); pool_create(0) means all cores. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/threadpool.h"
#include "tests/kernels/kt_util.h"

typedef struct PoolCheck {
    atomic_int *hits;  /* (n) times each index ran */
    int size;          /* pool_size */
    atomic_int bad_worker;
} PoolCheck;

static void pool_check_task(void *ctx, size_t i, int worker)
{
    PoolCheck *c = ctx;
    atomic_fetch_add(&c->hits[i], 1);
    if (worker < 0 || worker >= c->size)
        atomic_store(&c->bad_worker, 1);
}

int main(void)
{
    if (pool_default_threads() < 1) {
        fprintf(stderr, "pool_default_threads < 1\n");
        return KT_FAIL;
    }
    const int sizes[] = {1, 2, 3, 8, 0};
    const size_t counts[] = {0, 1, 2, 3, 100, 10007};
    atomic_int *hits = malloc(10007 * sizeof *hits);
    if (!hits)
        return KT_FAIL;
    int ok = 1;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0] && ok; s++) {
        ThreadPool *p = pool_create(sizes[s]);
        if (!p) {
            fprintf(stderr, "pool_create(%d) failed\n", sizes[s]);
            free(hits);
            return KT_FAIL;
        }
        int want = sizes[s] > 0 ? sizes[s] : pool_default_threads();
        if (pool_size(p) != want) {
            fprintf(stderr, "pool_size %d, want %d\n", pool_size(p), want);
            ok = 0;
        }
        for (int rep = 0; rep < 40 && ok; rep++) {
            size_t n = counts[(size_t)rep % (sizeof counts / sizeof counts[0])];
            for (size_t i = 0; i < n; i++)
                atomic_init(&hits[i], 0);
            PoolCheck c = {hits, pool_size(p), 0};
            pool_run(p, n, pool_check_task, &c);
            for (size_t i = 0; i < n; i++)
                if (atomic_load(&hits[i]) != 1) {
                    fprintf(stderr, "pool of %d, n %zu: index %zu ran %d times\n", pool_size(p), n, i,
                            atomic_load(&hits[i]));
                    ok = 0;
                    break;
                }
            if (atomic_load(&c.bad_worker)) {
                fprintf(stderr, "pool of %d: worker id out of range\n", pool_size(p));
                ok = 0;
            }
        }
        pool_destroy(p);
    }
    pool_destroy(NULL);
    free(hits);
    if (ok)
        printf("thread pool: every index once\n");
    return ok ? KT_PASS : KT_FAIL;
}
