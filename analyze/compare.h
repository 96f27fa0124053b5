/* sparsity-compare: two updates of one base, dW_X = X - BASE and dW_Y = Y - BASE, compared per
 * 2-D tensor: their cosine similarity, Frobenius norms, and how much their top-k left and right
 * singular subspaces overlap (||U_X^T U_Y||_F^2 / k and the principal cosines). X may instead be
 * a PEFT LoRA adapter (analyze/lora_adapter.h), whose dW_X = scale * B A is then compared with
 * Y's full update. Definitions: docs/cli.md, "sparsity-compare".
 *
 * Numbers: the updates are formed in double from the decoded values (exact for every float dtype
 * but F64), dot products and squared norms summed in double over fixed row chunks (so they do not
 * depend on --threads); the updates are then held in float32 for the SVDs (kernels/svd.h).
 * Memory: one matrix at a time, three (m, n) float32 buffers (dW_X, dW_Y, a transpose) plus the
 * SVD's workspace, and for run snapshots the bytes of the three tensors. */
#ifndef SS_COMPARE_H
#define SS_COMPARE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "analyze/ckpt_source.h"
#include "analyze/lora_adapter.h"
#include "formats/ss_error.h"

#define COMPARE_SCHEMA "sparsity-compare/1"
#define COMPARE_DEFAULT_K 16
#define COMPARE_MAX_K 4096
#define COMPARE_EPS_F32 0x1p-23 /* the numerical-rank tolerance's epsilon, as in --rank */

typedef struct CompareOptions {
    size_t k;           /* top-k of the subspaces (--subspace-k; 1..COMPARE_MAX_K) */
    int exact_svd;      /* full SVDs (LAPACK gesdd) instead of the randomized top k */
    int threads;        /* worker threads (0: all cores); also OpenBLAS's thread count */
    void (*progress)(void *ctx, uint64_t done, uint64_t total); /* elements done; may be NULL */
    void *progress_ctx;
} CompareOptions;

/* One compared matrix. Real figures are NaN where undefined (null in JSON). */
typedef struct CompareTensor {
    const char *name;        /* points into BASE's listing */
    const char *dtype;       /* "BF16", ... (static) */
    uint64_t m, n;
    int x_lora;              /* LoRA X: 1 when the adapter has a pair for it, else dW_X = 0 */
    double dot;              /* <dW_X, dW_Y> */
    double norm_x, norm_y;   /* ||dW_X||_F, ||dW_Y||_F */
    double cosine;           /* dot / (norm_x norm_y); NaN when a norm is 0 */
    const char *cosine_note; /* why cosine is NaN (static), else NULL */
    size_t k;                /* the k used: --subspace-k clamped (0 when an update is 0) */
    const char *k_note;      /* why k is below --subspace-k (static), else NULL */
    int64_t rank_x, rank_y;  /* numerical ranks within the top min(K, m, n) values (= that
                                count when at least that large) */
    double left_overlap, left_random;   /* ||U_X^T U_Y||_F^2 / k, and k / m */
    double right_overlap, right_random; /* ||V_X^T V_Y||_F^2 / k, and k / n */
    double *left_cos, *right_cos;       /* (K): principal cosines, descending; NaN past k */
    double sigma1_x, sigma1_y;          /* largest singular values */
} CompareTensor;

typedef struct CompareSkip {
    const char *name;        /* points into a listing */
    const char *note;        /* static text */
} CompareSkip;

typedef struct CompareSummary {
    uint64_t nmatrices, nskipped, nzero_x, nzero_y;
    uint64_t numel;          /* elements of the compared matrices */
    double dot, norm_x, norm_y; /* sums over matrices: sum dot, sqrt(sum ||.||^2) */
    double cosine;           /* dot / (norm_x norm_y): the parameter-weighted cosine */
    double mean_left_overlap, mean_right_overlap;  /* unweighted over matrices with k > 0 */
    double mean_left_random, mean_right_random;    /* the same means of k/m and k/n */
    uint64_t noverlap;       /* matrices with k > 0 */
} CompareSummary;

typedef struct CompareReport {
    CompareOptions opt;
    const char *base, *x, *y;     /* the inputs as given */
    const LoraAdapter *lora;      /* X as a LoRA adapter, or NULL */
    size_t ntensors;
    CompareTensor *t;             /* compared matrices, name order */
    size_t nskipped;
    CompareSkip *skipped;         /* in all inputs but not compared (not 2-D, not float, empty,
                                     non-finite), name order */
    size_t nabsent;
    CompareSkip *absent;          /* names not in every input; note says which lack it */
    size_t nno_lora;
    const char **no_lora;         /* LoRA X: compared matrices without a pair (dW_X = 0) */
    size_t nunused_lora;          /* LoRA X: pairs whose target is skipped (not 2-D float) */
    const char **unused_lora;
    CompareSummary model;
    double seconds;
} CompareReport;

/* Compares the updates X - BASE and Y - BASE (x NULL and lora set for a LoRA X). Errors:
 * SS_EUSAGE for a bad k; SS_EINCOMPAT when a shared tensor's dtype or shape differ between BASE
 * and X or Y, or a LoRA pair does not fit its base matrix or names a tensor that BASE lacks
 * (the message names the tensor); SS_EINPUT for unreadable data; SS_EOUTPUT when out of memory.
 * The sources must stay open while out is used (names point into them). Free out with
 * compare_report_free (also after a failure). */
int compare_sources(CkptSource *base, CkptSource *x, const LoraAdapter *lora, CkptSource *y,
                    const char *const paths[3], const CompareOptions *opt, CompareReport *out,
                    SsError *err);
void compare_report_free(CompareReport *r);

/* Overlap of the column spaces of ua (m, k) and ub (m, k), row-major with leading dimensions lda
 * and ldb (>= k) and orthonormal columns: cosines[0..k) = the singular values of ua^T ub (the
 * principal cosines), descending, clamped to [0, 1], and *overlap = ||ua^T ub||_F^2 / k =
 * sum cosines^2 / k (from the clamped cosines, so in [0, 1]). k = 0: *overlap NaN. */
int compare_subspaces(const float *ua, size_t lda, const float *ub, size_t ldb, size_t m,
                      size_t k, double *overlap, double *cosines, SsError *err);

/* ---- outputs (analyze/report_compare.c) ---- */

void compare_write_table(FILE *f, const CompareReport *r);
/* The JSON document (schema COMPARE_SCHEMA, docs/cli.md), pretty-printed, and a newline. */
void compare_write_json(FILE *f, const CompareReport *r);
/* The HDF5 file (docs/hdf5-schema.md, "sparsity-compare files"), written atomically: SS_EOUTPUT
 * naming path on failure, and nothing left at path. */
int compare_write_h5(const char *path, const CompareReport *r, const char *command_line,
                     SsError *err);

#endif
