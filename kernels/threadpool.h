/* A small fixed pool of worker threads that runs "for i in [0, n): fn(ctx, i)" in parallel.
 * Which thread runs which index is unspecified, so callers store per-index results and reduce them
 * in index order to stay independent of the thread count. */
#ifndef SS_THREADPOOL_H
#define SS_THREADPOOL_H

#include <stddef.h>

typedef struct ThreadPool ThreadPool;

typedef void (*PoolTaskFn)(void *ctx, size_t index, int worker);

/* nthreads <= 0 means the number of online cores. Returns NULL if threads cannot be created. */
ThreadPool *pool_create(int nthreads);
int pool_size(const ThreadPool *p);
/* Runs fn(ctx, i, worker) for every i in [0, n) and returns when all are done. worker is in
 * [0, pool_size) and identifies the thread (for per-thread scratch). */
void pool_run(ThreadPool *p, size_t n, PoolTaskFn fn, void *ctx);
void pool_destroy(ThreadPool *p);

/* Online cores, at least 1. */
int pool_default_threads(void);

#endif
