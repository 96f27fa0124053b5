/* A fixed pool of pthreads for "for i in [0, n): fn(ctx, i, worker)" (see threadpool.h).
 *
 * pool_create(n) starts n - 1 threads; the thread calling pool_run works as worker 0, so a pool of
 * one runs everything inline. Indices are handed out by an atomic counter; idle workers sleep on a
 * condition variable (no spinning). One pool_run at a time per pool. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "kernels/threadpool.h"

struct ThreadPool {
    int nthreads;             /* workers, counting the caller of pool_run */
    pthread_t *threads;       /* nthreads - 1 started threads */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;   /* a new generation started, or stop */
    pthread_cond_t done_cv;   /* the last worker left the current generation */
    uint64_t generation;      /* incremented by every pool_run */
    int busy;                 /* started threads still inside the current generation */
    int stop;
    /* the current task, written under mu before generation is incremented */
    PoolTaskFn fn;
    void *ctx;
    size_t count;
    atomic_size_t next;       /* next index to hand out */
};

typedef struct WorkerArg {
    ThreadPool *pool;
    int worker;
} WorkerArg;

static void pool_drain(ThreadPool *p, int worker)
{
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= p->count)
            return;
        p->fn(p->ctx, i, worker);
    }
}

static void *pool_worker_main(void *arg)
{
    WorkerArg wa = *(WorkerArg *)arg;
    free(arg);
    ThreadPool *p = wa.pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->generation == seen && !p->stop)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        pool_drain(p, wa.worker);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pool_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

ThreadPool *pool_create(int nthreads)
{
    if (nthreads <= 0)
        nthreads = pool_default_threads();
    ThreadPool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->nthreads = nthreads;
    atomic_init(&p->next, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads) {
        p->nthreads = 1;
        pool_destroy(p);
        return NULL;
    }
    for (int w = 1; w < nthreads; w++) {
        WorkerArg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->pool = p;
            wa->worker = w;
        }
        if (!wa || pthread_create(&p->threads[w - 1], NULL, pool_worker_main, wa) != 0) {
            free(wa);
            p->nthreads = w; /* join the ones already started */
            pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

int pool_size(const ThreadPool *p)
{
    return p->nthreads;
}

void pool_run(ThreadPool *p, size_t n, PoolTaskFn fn, void *ctx)
{
    if (n == 0)
        return;
    if (p->nthreads == 1 || n == 1) {
        for (size_t i = 0; i < n; i++)
            fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->count = n;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->busy = p->nthreads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);

    pool_drain(p, 0);

    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void pool_destroy(ThreadPool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int w = 1; w < p->nthreads; w++)
        pthread_join(p->threads[w - 1], NULL);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}
