/* The inputs of sparsity-plot: sparsity-scan, sparsity-series and sparsity-overlap HDF5 reports
 * (told apart by their root attribute `schema`), and run folders of grpo-train (their
 * metrics.jsonl, docs/grpo-train.md). Each input gets a run label for legends and file names. */
#ifndef SS_PLOT_INPUTS_H
#define SS_PLOT_INPUTS_H

#include <stddef.h>

#include "formats/ss_error.h"
#include "plots/plot_h5.h"

typedef enum { PIN_SCAN, PIN_SERIES, PIN_OVERLAP, PIN_RUN } PlotInKind;

/* The numbers of a metrics.jsonl: step lines (NaN where a key is missing or null) and
 * evaluation lines ({"step": N, "eval_acc": X}), in file order. */
typedef struct RunMetrics {
    int present;                 /* the folder has a metrics.jsonl */
    size_t nstep;
    double *step, *reward, *kl, *entropy, *resp_len;
    size_t neval;
    double *eval_step, *eval_acc;
} RunMetrics;

typedef struct PlotInput {
    PlotInKind kind;
    const char *path;  /* as given (not owned) */
    char label[128];   /* for legends: no blanks or quotes */
    char flabel[128];  /* for file names: [A-Za-z0-9._+@-] */
    PlotH5 h5;         /* the report (not PIN_RUN) */
    RunMetrics m;      /* PIN_RUN */
} PlotInput;

/* Opens one input: a folder is a run folder (its metrics.jsonl is read when present), a file must
 * be one of the three HDF5 reports. SS_EINPUT naming the file otherwise, or for a malformed
 * metrics.jsonl line (file and line number). */
int pin_open(const char *path, PlotInput *in, SsError *err);
void pin_close(PlotInput *in);

/* Sets every input's labels: labels[i] (the --label options, in input order) where given, else
 * derived from the report (the run's checkpoint path) or the folder name; repeated labels get
 * "-2", "-3", ... */
void pin_labels(PlotInput *in, size_t n, char *const *labels, size_t nlabels);

/* The display label of a checkpoint or run path: its last component, without ".safetensors";
 * a folder's name for ".../model.safetensors". */
void pin_path_label(const char *path, char *out, size_t len);

const char *pin_kind_name(PlotInKind k);

#endif
