/* The parallel for-loop of sdelta_parallel.h, on pthreads and one atomic counter. */
#include "formats/sdelta/sdelta_parallel.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define SDELTA_MAX_THREADS 256

int sdelta_threads_default(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > SDELTA_MAX_THREADS ? SDELTA_MAX_THREADS : (int)n;
}

int sdelta_threads_for(int threads, size_t n)
{
    int t = threads <= 0 ? sdelta_threads_default() : threads;
    if (t > SDELTA_MAX_THREADS)
        t = SDELTA_MAX_THREADS;
    if ((size_t)t > n)
        t = (int)n;
    return t < 1 ? 1 : t;
}

typedef struct Job {
    size_t n;
    size_t next; /* atomic */
    SdTaskFn fn;
    void *ctx;
} Job;

typedef struct Worker {
    Job *job;
    int tid;
} Worker;

static void run_worker(Job *job, int tid)
{
    for (;;) {
        size_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
        if (i >= job->n)
            return;
        job->fn(job->ctx, i, tid);
    }
}

static void *worker_main(void *arg)
{
    Worker *w = arg;
    run_worker(w->job, w->tid);
    return NULL;
}

void sdelta_parallel_for(size_t n, int threads, SdTaskFn fn, void *ctx)
{
    int t = sdelta_threads_for(threads, n);
    Job job = {n, 0, fn, ctx};
    if (t <= 1) {
        run_worker(&job, 0);
        return;
    }
    pthread_t th[SDELTA_MAX_THREADS];
    Worker wk[SDELTA_MAX_THREADS];
    int started = 0;
    for (int k = 1; k < t; k++) {
        wk[k].job = &job;
        wk[k].tid = k;
        if (pthread_create(&th[k], NULL, worker_main, &wk[k]) != 0)
            break;
        started = k;
    }
    run_worker(&job, 0);
    for (int k = 1; k <= started; k++)
        pthread_join(th[k], NULL);
}
