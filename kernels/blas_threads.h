/* OpenBLAS's worker threads, parked until a BLAS call needs them.
 *
 * The pthreads build of OpenBLAS (Debian's libopenblas0-pthread) starts its worker threads when
 * the library loads, and each spins (sched_yield) for about 0.1 s waiting for work before it
 * sleeps. Every tool linked with it paid that at start, BLAS call or not: on a 2-core machine a
 * 2 GB scan ran 10% slower (0.49 s against 0.44 s with OPENBLAS_NUM_THREADS=1, median of 6;
 * bench/analyses_bench.sh's plain1 row is that control).
 * blas_threads_park stops them; OpenBLAS starts them again by itself at its next threaded call
 * (its lazy re-initialisation after fork). The mains of the tools that link OpenBLAS call it
 * first thing. */
#ifndef SS_BLAS_THREADS_H
#define SS_BLAS_THREADS_H

/* Stops OpenBLAS's idle worker threads, when the BLAS linked is OpenBLAS with its own thread
 * pool (otherwise does nothing). */
void blas_threads_park(void);

#endif
