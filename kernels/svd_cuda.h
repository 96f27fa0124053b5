/* Singular values on a CUDA device: the API of kernels/svd.h with cuSOLVER and cuBLAS.
 *
 *   svd_values_cuda          all min(m, n) values (and optionally left vectors) with cusolverDnSgesvd
 *   svd_values_batched_cuda  the spectra of `batch` matrices of one shape: gesvdjBatched (Jacobi, all
 *                            in one call) when m, n <= 32, else gesvd one after another with one
 *                            device copy and one workspace
 *   svd_topk_cuda            the randomized top-k SVD of svd_topk (same Gaussian test matrix for the
 *                            same seed, GEMMs on cuBLAS, QR with geqrf/orgqr, small SVD by gesvd)
 *
 * Matrices are (m, n) row-major float32 in host memory, as in svd.h; results land in host memory.
 * Values agree with the LAPACK path to float rounding (relative to the largest value); vectors up
 * to sign. Returns 0, SS_EUSAGE for bad sizes (or no CUDA device / build), SS_EOUTPUT when device
 * memory runs out or a CUDA/cuBLAS call fails, SS_EINPUT when cuSOLVER reports no convergence
 * (info > 0: non-finite input does this). Messages start with "svd: " and name the failing call,
 * file and line. Uses the current CUDA device. */
#ifndef SS_SVD_CUDA_H
#define SS_SVD_CUDA_H

#include <stddef.h>

#include "formats/ss_error.h"
#include "kernels/svd.h"

/* As svd_values: a (m, n) is read (not destroyed here: it is copied to the device). */
int svd_values_cuda(float *a, size_t m, size_t n, float *s, float *u, SsError *err);

/* a holds batch matrices (m, n) row-major one after another; s receives batch * min(m, n)
 * values, each matrix's descending. */
int svd_values_batched_cuda(const float *a, size_t batch, size_t m, size_t n, float *s,
                            SsError *err);

/* As svd_topk. */
int svd_topk_cuda(const float *a, size_t m, size_t n, size_t k, const SvdRandOptions *opt,
                  float *s, float *u, SsError *err);

#endif
