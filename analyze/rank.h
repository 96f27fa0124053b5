/* The rank of an update and its LoRA equivalent (sparsity-scan --rank): for every 2-D tensor pair
 * (A, B), the singular values of dW = B - A and the figures derived from them (numerical rank,
 * 99%-energy and entropy effective ranks, stable rank, best rank-r energy and error, nnz against
 * a rank-r LoRA's r(m + n) parameters), and how the top-k left singular subspaces and the spectra
 * of A and B differ. Definitions: docs/metrics.md, "Rank of the update".
 *
 * dW is decoded exactly (in double, formats/dtype_convert.h) and then held in float32 for the
 * SVD (kernels/svd.h). Memory: one tensor at a time, three (m, n) float32 buffers (dW, A, B), the
 * bytes of A and B for run snapshots (mapped checkpoints are read in place), and LAPACK's
 * workspace (about 4 min(m, n)^2 floats when vectors are computed). */
#ifndef SS_RANK_H
#define SS_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "analyze/ckpt_source.h"
#include "analyze/pairs.h"
#include "analyze/report.h"
#include "formats/ss_error.h"

#define RANK_NR 9                 /* r = 1, 2, 4, ..., 256 */
#define RANK_DEFAULT_ANGLES 16
#define RANK_MAX_K 65536
#define RANK_EPS_F32 0x1p-23      /* the numerical-rank tolerance's epsilon */

typedef struct RankOptions {
    size_t topk;      /* 0: full spectra (LAPACK gesdd); K: randomized top K (kernels/svd.h) */
    size_t angles_k;  /* k of the principal angles (default RANK_DEFAULT_ANGLES; 0: none) */
    int cuda;         /* spectra with cuSOLVER / cuBLAS (kernels/svd_cuda.h) instead of LAPACK */
} RankOptions;

/* One tensor pair. Integer ranks are -1 and real figures NaN where undetermined (null in JSON):
 * only with topk, and as docs/metrics.md lists. */
typedef struct RankTensor {
    const char *name;            /* points into the checkpoint listing */
    uint64_t m, n;               /* shape [m, n]; 0, 0 for a skipped tensor that is not 2-D */
    const char *note;            /* NULL when analysed, else why it was skipped (static text) */
    int64_t numerical_rank;      /* #{sigma_i > sigma_1 max(m, n) 2^-23} */
    double numerical_rank_fraction; /* numerical_rank / min(m, n) */
    int64_t effective_rank_99;   /* smallest k with sum_{i<=k} sigma_i^2 >= 0.99 sum sigma_i^2 */
    double entropy_rank;         /* exp(-sum p_i log p_i), p_i = sigma_i / sum sigma_j */
    double stable_rank;          /* ||dW||_F^2 / sigma_1^2 */
    double energy_at_r[RANK_NR]; /* sum_{i<=r} sigma_i^2 / ||dW||_F^2 */
    double rel_frobenius_error_at_r[RANK_NR]; /* ||dW - dW_r||_F / ||dW||_F */
    uint64_t nnz;                /* elements with b - a != 0 (exact) */
    double lora_r_star;          /* nnz / (m + n) */
    double *principal_angles;    /* angles_k radians, ascending (NaN where undetermined) */
    double spectral_shift;       /* ||sigma(B) - sigma(A)|| / ||sigma(A)|| */
    double frobenius;            /* ||dW||_F of the float32 dW, summed in double */
    size_t nsv;                  /* singular values held: min(m, n), or topk */
    float *sv;                   /* sv[0..nsv): dW's singular values, descending */
} RankTensor;

typedef struct RankSummary {
    uint64_t nmatrices, nskipped;
    uint64_t nnz, sum_m_plus_n;       /* over the analysed matrices */
    double lora_r_star;               /* nnz / sum_m_plus_n: the rank of the LoRA (one rank for
                                         every matrix) that trains as many parameters */
    double mean_numerical_rank_fraction; /* unweighted mean over matrices (NaN if none known) */
    double mean_effective_rank_99;       /* likewise */
} RankSummary;

typedef struct RankReport {
    RankOptions opt;
    size_t ntensors;
    RankTensor *t;               /* one per pair, in pair (name) order */
    RankSummary model;
    double seconds;
} RankReport;

/* The r of energy_at_r[j]: 1 << j. */
static inline uint64_t rank_r_at(int j)
{
    return (uint64_t)1 << j;
}

/* Fills t's spectrum figures from sv[0..nsv), descending, of an (m, n) dW with squared Frobenius
 * norm frob2. complete: sv is the whole spectrum (nsv = min(m, n)); else the top nsv only. */
void rank_metrics_from_spectrum(const float *sv, size_t nsv, int complete, double frob2,
                                uint64_t m, uint64_t n, RankTensor *t);

/* Cosines of the principal angles between the column spaces of the first k columns of ua and ub
 * (m rows each, row-major with row strides lda and ldb, orthonormal columns): the singular
 * values of ua^T ub, summed in double, clamped to [0, 1], descending, into cosines[0..k). */
int rank_principal_cosines(const float *ua, size_t lda, const float *ub, size_t ldb, size_t m,
                           size_t k, double *cosines, SsError *err);

/* Principal angles between the column spaces of ua (m, k) and ub (m, k), both row-major with
 * orthonormal columns: acos of the singular values of ua^T ub (clamped to [0, 1]), ascending,
 * into angles[0..k). */
int rank_principal_angles(const float *ua, const float *ub, size_t m, size_t k, double *angles,
                          SsError *err);

/* The rank analysis of every pair of pl (from a and b). Errors name the tensor. */
int rank_sources(CkptSource *a, CkptSource *b, const PairList *pl, const RankOptions *opt,
                 RankReport *out, SsError *err);
void rank_report_free(RankReport *r);

/* ---- reports (analyze/report_rank.c) ---- */

/* The table section: one row per analysed matrix, the model summary, the skipped tensors. */
void report_rank_write_table(FILE *f, const RankReport *rr);

/* The value of the report's "rank" key (schema in docs/cli.md), after the caller wrote the key. */
void report_rank_json(JsonWriter *w, const RankReport *rr);

/* The group /rank (docs/hdf5-schema.md) in the report file being written. */
int report_rank_h5(H5Out *w, const RankReport *rr, SsError *err);

#endif
