/* The study's REPORT.md: one table of what each training run measured (rewards and eval accuracy
 * from its metrics.jsonl, optimizer memory, sparsity and rank from sparsity-scan's JSON), the
 * overlap of the runs' changed sets (sparsity-overlap's JSON), comparisons of two updates
 * (sparsity-compare's JSON), and the figures found in a folder. Used by sparsity-report. */
#ifndef SS_STUDY_REPORT_H
#define SS_STUDY_REPORT_H

#include <stddef.h>

#include "formats/ss_error.h"

typedef struct StudyRun {
    const char *label;
    const char *dir;          /* the run folder (run.json, metrics.jsonl) */
    const char *scan_json;    /* sparsity-scan RUN@base RUN@latest --json [--rank] */
    const char *master_json;  /* the same on RUN/master (float32), or NULL */
} StudyRun;

typedef struct StudyCompare {
    const char *label;
    const char *json;         /* sparsity-compare --json */
} StudyCompare;

typedef struct StudyReport {
    const char *title;
    const char *intro;        /* a paragraph under the title (the command that made it), or NULL */
    StudyRun *runs;
    size_t nruns;
    const char *overlap_json; /* sparsity-overlap --json, or NULL */
    StudyCompare *compares;
    size_t ncompares;
    const char *figures_dir;  /* PNG/SVG files listed as images, or NULL */
    const char *figures_link; /* how REPORT.md refers to that folder ("figures") */
} StudyReport;

/* Writes the report to path atomically. Errors name the input file: SS_EINPUT for a missing or
 * malformed input, SS_EOUTPUT when the report cannot be written. */
int study_report_write(const StudyReport *r, const char *path, SsError *err);

#endif
