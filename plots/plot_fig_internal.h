/* What the figure files of sparsity-plot share (private to plots/): value ranges for axis
 * choices, number formatting, reading report datasets, tensor selection, and the figure entry
 * points that plot_all (plot_figures.c) calls in order. */
#ifndef SS_PLOT_FIG_INTERNAL_H
#define SS_PLOT_FIG_INTERNAL_H

#include <stddef.h>

#include "formats/ss_error.h"
#include "plots/plot_figures.h"
#include "plots/plot_h5.h"
#include "plots/plot_inputs.h"
#include "plots/plot_out.h"

typedef struct PfRange {
    double lo, hi; /* smallest and largest positive finite values seen */
} PfRange;

typedef struct PfTensorList {
    size_t n;
    char **names;
} PfTensorList;

/* Adds one word to a gnuplot word list: "w" (double quotes and backslashes become '_'). */
void pf_words_add(StrBuf *b, const char *w);

/* The range of positive finite values of a plotted series: empty, extended by a value, and
 * whether it spans more than a factor 20 (then the axis is logarithmic). */
PfRange pf_range_new(void);
void pf_range_add(PfRange *r, double v);
int pf_range_log(PfRange r);

/* "99.9905%": the sparsity with enough decimals that 1 - s shows three significant digits. */
void pf_fmt_sparsity(double s, char *out, size_t len);

/* part / whole, NaN when whole is not positive. */
double pf_frac(double part, double whole);

/* Reads dataset obj of in's report. */
int pf_rd(PlotInput *in, const char *obj, PlotArray *a, SsError *err);

/* Reads string dataset obj of in's report into *v (n strings; free with h5r_free_strings). */
int pf_rd_strings(PlotInput *in, const char *obj, size_t *n, char ***v, SsError *err);

/* The HDF5 member name of a tensor (docs/hdf5-schema.md, /masks): '%' -> %25, '/' -> %2F. */
void pf_h5_escape(const char *name, char *out, size_t len);

/* How many inputs are of kind k. */
size_t pf_count_kind(const PlotCtx *c, PlotInKind k);

/* A short tensor name for file names and titles: "model.layers." dropped, ".weight" dropped. */
void pf_short_tensor(const char *name, char *out, size_t len);

/* Module order of a report's /layers/module (or any list) for xtics: "\"q_proj\" \"k_proj\"". */
void pf_module_words(char **mods, size_t n, const int *keep, StrBuf *b);

/* Frees the names of t. */
void pf_tl_free(PfTensorList *t);

/* The tensors to draw from group (whose members are escaped tensor names): --tensor's names
 * present there, or those of modules[] in the middle layer (layers >= 0 of /tensors). */
int pf_select_tensors(PlotCtx *c, PlotInput *in, const char *group, const char *what,
                      const char *const *modules, PfTensorList *out, SsError *err);

/* The figures, one function per kind (plot_fig_*.c); each returns 0 when drawn or skipped. */
int fig_training(PlotCtx *c, SsError *err);   /* plot_fig_training.c */
int fig_eval(PlotCtx *c, SsError *err);
int fig_sparsity(PlotCtx *c, SsError *err);   /* plot_fig_sparsity.c */
int fig_series(PlotCtx *c, SsError *err);
int fig_split(PlotCtx *c, SsError *err);
int fig_layers(PlotCtx *c, SsError *err);
int fig_maps(PlotCtx *c, SsError *err);       /* plot_fig_maps.c */
int fig_tolerance(PlotCtx *c, SsError *err);
int fig_rank(PlotCtx *c, SsError *err);       /* plot_fig_rank.c */
int fig_overlap(PlotCtx *c, SsError *err);    /* plot_fig_overlap.c */

#endif
