/* A minimal parallel for-loop over indices for the sdelta encoder and decoder: threads take the
 * next index from a shared counter, so results depend only on the index, never on the thread
 * count. Private to formats/sdelta/. */
#ifndef SDELTA_PARALLEL_H
#define SDELTA_PARALLEL_H

#include <stddef.h>

/* Called once per index i by thread tid (0 <= tid < the thread count actually used). */
typedef void (*SdTaskFn)(void *ctx, size_t i, int tid);

/* Online cores (at least 1). */
int sdelta_threads_default(void);

/* The thread count run_for would use: threads <= 0 means all cores, capped by n, at least 1. */
int sdelta_threads_for(int threads, size_t n);

/* Runs fn(ctx, i, tid) for every i < n on sdelta_threads_for(threads, n) threads (the caller's
 * thread is thread 0). Falls back to fewer threads if some cannot be created. */
void sdelta_parallel_for(size_t n, int threads, SdTaskFn fn, void *ctx);

#endif
