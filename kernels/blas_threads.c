/* Parking OpenBLAS's idle worker threads (kernels/blas_threads.h). */
#include "kernels/blas_threads.h"

/* OpenBLAS's shutdown of its thread pool, exported by its pthreads build (used there after fork);
 * weak, so that a BLAS without it leaves this NULL. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

void blas_threads_park(void)
{
    if (blas_thread_shutdown_)
        (void)blas_thread_shutdown_();
}
