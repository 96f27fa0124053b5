/* Singular values (and left singular vectors) of a float32 matrix on the CPU: the exact spectrum
 * through LAPACKE_sgesdd on OpenBLAS, and a randomized top-k SVD (Gaussian range finder with power
 * iterations; GEMMs through cblas_sgemm, QR through LAPACKE_sgeqrf/sorgqr). No file I/O; threads
 * are OpenBLAS's own.
 *
 * Matrices are (m, n) row-major float32, as a decoded tensor of shape [m, n] lies in memory.
 * Every function returns 0, or SS_EUSAGE for bad sizes, SS_EOUTPUT when memory runs out, and
 * SS_EINPUT when LAPACK reports a failure (its info code in the message: an argument error, or
 * the divide-and-conquer iteration not converging, which non-finite input also causes). The
 * messages start with "svd: " and are meant to be prefixed with the tensor's name by the caller.
 *
 * Randomized top-k (Halko, Martinsson & Tropp 2011, Algorithms 4.4 and 5.1): with l = k + p
 * columns (p = oversample) and q power iterations, Q = orth((A A^T)^q A Omega) for Gaussian
 * Omega (n, l), then the SVD of the small Q^T A (l, n) gives the top k triplets. Its expected
 * error (their Corollary 10.10) is
 *   E ||A - Q Q^T A||_2 <= [ (1 + sqrt(k/(p-1))) sigma_{k+1}^(2q+1)
 *                           + (e sqrt(k+p)/p) sqrt(sum_{j>k} sigma_j^(2(2q+1))) ]^(1/(2q+1)),
 * and each estimate satisfies sigma_j(Q^T A) <= sigma_j(A) (it never overestimates); with
 * decaying spectra the top values are accurate to far better than that bound. Orthonormalizing
 * after every product (Algorithm 4.4) keeps float32 from losing the small directions. */
#ifndef SS_SVD_H
#define SS_SVD_H

#include <stddef.h>
#include <stdint.h>

#include "formats/ss_error.h"

#define SVD_DEFAULT_OVERSAMPLE 10
#define SVD_DEFAULT_POWER_ITERS 2

typedef struct SvdRandOptions {
    size_t oversample;  /* p: extra columns of the sketch (default SVD_DEFAULT_OVERSAMPLE) */
    size_t power_iters; /* q: passes of A A^T (default SVD_DEFAULT_POWER_ITERS) */
    uint64_t seed;      /* the Gaussian test matrix's seed: same seed, same result */
} SvdRandOptions;

/* All min(m, n) singular values of a (m, n), descending, into s. a is destroyed (LAPACK's
 * workspace). With u != NULL also the left singular vectors: u (m, min(m, n)) row-major, column j
 * the vector of s[j]. m or n of 0 is allowed (nothing is written). */
int svd_values(float *a, size_t m, size_t n, float *s, float *u, SsError *err);

/* The top k singular values of a (m, n) (read only), descending, into s[0..k); k is at most
 * min(m, n). With u != NULL also their left singular vectors: u (m, k) row-major. When
 * k + oversample >= min(m, n) the exact spectrum (svd_values on a copy) is used instead.
 * opt NULL: the defaults, seed 0. */
int svd_topk(const float *a, size_t m, size_t n, size_t k, const SvdRandOptions *opt, float *s,
             float *u, SsError *err);

/* Fills g[0..count) with standard normal values (splitmix64 draws from seed, Box-Muller): the
 * randomized SVD's test matrix, the same on the CPU and the CUDA backend. */
void svd_fill_gaussian(float *g, size_t count, uint64_t seed);

/* 0, or SS_EUSAGE naming lib ("LAPACK", "cuSOLVER") when an (m, n) matrix has more elements
 * than the solver's 32-bit int indexes: the dimension check of both backends. */
int svd_check_dims(size_t m, size_t n, const char *lib, SsError *err);

/* The shared start of svd_topk and svd_topk_cuda: *o = *opt (or the defaults when opt is NULL),
 * the dimension check for lib, and k <= min(m, n) (else SS_EUSAGE). Returns 0 to go on, 1 when
 * there is nothing to compute (k == 0), or the error. */
int svd_topk_begin(size_t m, size_t n, size_t k, const SvdRandOptions *opt, const char *lib,
                   SvdRandOptions *o, SsError *err);

#endif
