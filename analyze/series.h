/* A training run's checkpoint series (sparsity-scan --series RUN; docs/metrics.md, "Series").
 *
 * For the steps s_1 < ... < s_k of RUN's snapshots, series_scan_run scans
 *   base -> s_i        (sparsity vs the base; with changed-element masks), and
 *   s_(i-1) -> s_i     (consecutive; s_0 = the base, so step 1's equals its base scan),
 * and splits every element by its history over the snapshots:
 *   ever     = changed (exact test) in at least one base -> s_i comparison
 *   final    = changed in base -> s_k
 *   never    = not ever;  restored = ever and not final (changed, then back to the base bits)
 * so never + restored + final = numel, per tensor, per layer x module, per module and overall.
 * "ever" is only observed at the snapshots: a change undone between two snapshots is invisible.
 *
 * Memory: one `ever` bit per parameter (numel/8 bytes over all tensors) for the whole series,
 * plus the current base -> s_i scan's masks (another numel/8 bytes) while it is folded in; the
 * snapshots are decoded in batches by scan_sources.
 *
 * Every snapshot must hold the base's tensors, with the same dtypes and shapes: a tensor only on
 * one side is SS_EINCOMPAT naming it and the step (as is a dtype or shape mismatch). */
#ifndef SS_SERIES_H
#define SS_SERIES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "analyze/grouping.h"
#include "analyze/scan_report.h"
#include "formats/ss_error.h"
#include "kernels/scan.h"

/* One element split: never + restored + final = numel. */
typedef struct SeriesSplit {
    uint64_t numel;
    uint64_t never;
    uint64_t restored;
    uint64_t final;
} SeriesSplit;

typedef struct SeriesStep {
    uint64_t step;
    ScanCounts vs_base;      /* base -> this step, totals over the tensors */
    ScanCounts consecutive;  /* previous step (the base for the first) -> this step */
} SeriesStep;

typedef struct SeriesReport {
    char *run_dir;           /* RUN as given (owned) */
    ScanConfig cfg;
    uint64_t file_bytes;     /* base plus every snapshot file */
    size_t nsteps;
    SeriesStep *steps;       /* ascending step */
    size_t ntensors;         /* the compared tensors, in name order */
    char **names;            /* owned */
    DType *dtypes;
    SeriesSplit *tensor_split;   /* per tensor */
    Grouping groups;         /* layer and module of each tensor (counts: base -> s_k) */
    SeriesSplit *cell_split;     /* per groups.cells[j] */
    SeriesSplit *module_split;   /* per groups.modules[m], over all layers */
    SeriesSplit total;
    double seconds;          /* wall time of all scans */
} SeriesReport;

/* The options of one scan (cfg, threads, progress; masks and skip_mismatched are ignored). */
int series_scan_run(const char *run_dir, const GroupRules *rules, const ScanOptions *opt,
                    SeriesReport *out, SsError *err);
/* Frees everything series_scan_run filled (safe after a failure and on a zeroed report). */
void series_report_free(SeriesReport *r);

/* The fractions of a split: never/numel, restored/numel, final/numel (0 when numel is 0). */
double series_fraction(uint64_t part, uint64_t numel);

/* ---- reports (analyze/report_series.c) ---- */

#define SERIES_SCHEMA "sparsity-series/1"

/* The table: one row per step (sparsity and changed vs the base, and consecutive), then the
 * never / restored / final split overall and per module. */
void series_write_table(FILE *f, const SeriesReport *r);

/* The JSON document (schema SERIES_SCHEMA, docs/cli.md), pretty-printed, and a newline. */
void series_write_json(FILE *f, const SeriesReport *r);

/* The HDF5 file (docs/hdf5-schema.md, "Series files"), written atomically like report_write_h5:
 * returns 0 or SS_EOUTPUT naming path, and leaves nothing at path on failure. command_line: the
 * arguments, shell-quoted and joined by spaces. */
int series_write_h5(const char *path, const SeriesReport *r, const char *command_line,
                    SsError *err);

#endif
