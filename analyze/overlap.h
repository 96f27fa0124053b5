/* Overlap between runs from the same base (docs/metrics.md, "Overlap"): reads the /masks of k >= 2
 * sparsity-scan HDF5 reports (written with --masks), one tensor at a time from each file, and
 * counts for every pair of runs the changed elements of each, their intersection and union, per
 * tensor, per module and overall; for k >= 3 also the consensus: per element the number of runs
 * that changed it (0..k), as histograms per tensor, per layer x module cell and overall.
 *
 * Memory: one tensor's masks x k (ceil(numel/8) bytes each) plus the per-tensor counts.
 * Outputs (overlap_output.c): a table, JSON schema "sparsity-overlap/1" (docs/cli.md) and HDF5
 * (docs/hdf5-schema.md, "sparsity-overlap"). */
#ifndef SS_OVERLAP_H
#define SS_OVERLAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "formats/ss_error.h"

#define OVERLAP_MAX_RUNS 64

typedef struct OverlapOptions {
    int any_base;  /* accept runs whose base paths differ (same size and tensors still checked) */
} OverlapOptions;

/* One pair's counts over a set of elements; union = n1 + n2 - inter. */
typedef struct OverlapCounts {
    uint64_t numel, n1, n2, inter;
} OverlapCounts;

/* The figures of one OverlapCounts; NaN where docs/metrics.md says null (empty sets, numel 0). */
typedef struct OverlapFigures {
    double p, q;                    /* densities n1/numel, n2/numel */
    double o1, o1_random;           /* inter/n1, baseline q */
    double o2, o2_random;           /* inter/n2, baseline p */
    double jaccard, jaccard_random; /* inter/union, baseline pq/(p+q-pq) */
} OverlapFigures;

typedef struct OverlapRun {
    char *path;        /* the HDF5 report as given */
    char *base, *b;    /* its root attribute inputs: A (the base) and B (the run) */
    uint64_t base_bytes;
    uint64_t numel, changed; /* over the compared tensors */
} OverlapRun;

typedef struct OverlapReport {
    size_t k;                 /* runs */
    OverlapRun *runs;         /* (k) */
    size_t nmissing;
    char **missing;           /* tensors not in every report, sorted */
    size_t ntensors;          /* compared tensors, in name order */
    char **names;             /* (ntensors) */
    int64_t *layer;           /* (ntensors), from the first report; -1 outside the layers */
    size_t *module;           /* (ntensors), index into modules */
    uint64_t *numel;          /* (ntensors) */
    uint64_t *changed;        /* (ntensors, k) changed elements of each run */
    size_t nmodules;
    char **modules;           /* the first report's /layers/module order */
    uint64_t *module_numel;   /* (nmodules) */
    uint64_t *module_changed; /* (nmodules, k) */
    uint64_t total_numel;
    size_t npairs;            /* k(k-1)/2, pairs (i, j) with i < j in lexicographic order */
    size_t *pair_i, *pair_j;  /* (npairs) */
    uint64_t *inter;          /* (npairs, ntensors) intersections */
    uint64_t *module_inter;   /* (npairs, nmodules) */
    uint64_t *total_inter;    /* (npairs) */
    /* consensus (k >= 3 only; NULL and 0 otherwise); histograms have k + 1 bins: element count
       changed by exactly j runs, j = 0..k */
    uint64_t *hist;           /* (ntensors, k+1) */
    size_t ncells;            /* layer x module cells with tensors, by layer then module order */
    int64_t *cell_layer;      /* (ncells) */
    size_t *cell_module;      /* (ncells) */
    size_t *tensor_cell;      /* (ntensors) */
    uint64_t *cell_numel;     /* (ncells) */
    uint64_t *cell_changed;   /* (ncells, k) */
    uint64_t *cell_hist;      /* (ncells, k+1) */
    uint64_t *total_hist;     /* (k+1) */
} OverlapReport;

/* Compares the reports paths[0..k). Errors: SS_EUSAGE (k < 2 or > OVERLAP_MAX_RUNS), SS_EINPUT
 * (unreadable or malformed report, no /masks: the message says to rerun sparsity-scan with
 * --masks), SS_EINCOMPAT (different bases, or a tensor whose numel, shape or dtype differ: the
 * message names it), SS_EOUTPUT (out of memory). Free with overlap_report_free (also after a
 * failure). */
int overlap_compute(size_t k, const char *const *paths, const OverlapOptions *opt,
                    OverlapReport *out, SsError *err);
void overlap_report_free(OverlapReport *r);

/* Figures of c (NaN for null). */
void overlap_figures(const OverlapCounts *c, OverlapFigures *f);
/* The counts of pair p for tensor t, module m, or overall. */
OverlapCounts overlap_tensor_counts(const OverlapReport *r, size_t p, size_t t);
OverlapCounts overlap_module_counts(const OverlapReport *r, size_t p, size_t m);
OverlapCounts overlap_total_counts(const OverlapReport *r, size_t p);
/* Poisson-binomial: out[j] (j = 0..k) = probability that exactly j of k independent events with
 * probabilities prob[0..k) happen. */
void overlap_poisson_binomial(size_t k, const double *prob, double *out);
/* The expected shares of a histogram row (k + 1 bins): the Poisson-binomial of the densities
 * changed[r]/numel; NaN in every bin when numel is 0. */
void overlap_expected_shares(size_t k, uint64_t numel, const uint64_t *changed, double *out);

/* Outputs (overlap_output.c). The table and JSON go to f; HDF5 is written atomically to path
 * (SS_EOUTPUT naming path on failure, no file left). */
void overlap_write_table(FILE *f, const OverlapReport *r);
void overlap_write_json(FILE *f, const OverlapReport *r);
int overlap_write_h5(const char *path, const OverlapReport *r, SsError *err);

#endif
