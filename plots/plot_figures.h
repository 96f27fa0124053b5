/* The figures of sparsity-plot: each reads what it needs from the inputs, writes its data files
 * under FIGDIR/data/ and draws with plots/<kind>.gp, or says on stderr why it was skipped
 * (docs/sparsity-plot.md lists them with the inputs each needs). */
#ifndef SS_PLOT_FIGURES_H
#define SS_PLOT_FIGURES_H

#include <stddef.h>

#include "formats/ss_error.h"
#include "plots/plot_inputs.h"
#include "plots/plot_out.h"

typedef struct PlotCtx {
    PlotOut *o;
    PlotInput *in;
    size_t n;
    char *const *tensors; /* --tensor names; NULL/0: a few attention projections of the middle layer */
    size_t ntensors;
} PlotCtx;

/* Draws every figure whose inputs exist, in the order of docs/sparsity-plot.md. Stops at the
 * first error (SS_EINPUT for a malformed report, SS_EOUTPUT, PLOT_EGNUPLOT). */
int plot_all(PlotCtx *c, SsError *err);

#endif
