/* The figures of sparsity-plot (see plot_figures.h and docs/sparsity-plot.md). Each fig_*
 * function gathers its numbers from the inputs, writes them as whitespace-separated columns under
 * FIGDIR/data/ (a commented header names the columns and their units), and hands the file names,
 * run labels and a few scalars to its gnuplot script. Sparsity near 1 is shown as the changed
 * fraction 1 - sparsity, on a log axis when the values span more than a factor 20. */
#include "plots/plot_fig_internal.h"

/* ---- all ---- */

int plot_all(PlotCtx *c, SsError *err)
{
    int (*const figs[])(PlotCtx *, SsError *) = {
        fig_training, fig_eval, fig_sparsity, fig_series, fig_layers, fig_maps, fig_tolerance,
        fig_rank, fig_overlap, fig_split};
    for (size_t f = 0; f < sizeof figs / sizeof figs[0]; f++) {
        int rc = figs[f](c, err);
        if (rc)
            return rc;
    }
    return 0;
}
