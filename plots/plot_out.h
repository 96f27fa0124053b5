/* The output side of sparsity-plot: the figure folder, the data files under FIGDIR/data/, and
 * gnuplot run as a separate process on the scripts copied to FIGDIR/scripts/.
 *
 * Every figure is drawn by `gnuplot -e "term='...'; out='...'; VAR='...'" scripts/KIND.gp` run in
 * FIGDIR, so the same command (recorded in FIGDIR/replot.sh) redraws it by hand from the data
 * files. Figures are written to a temporary name in FIGDIR and renamed only when gnuplot exits
 * 0 and left a non-empty file: a failure leaves no partial figure. Data files are written the
 * same way. */
#ifndef SS_PLOT_OUT_H
#define SS_PLOT_OUT_H

#include <stddef.h>
#include <stdio.h>

#include "formats/ss_error.h"

/* gnuplot is missing or failed: the documented exit status of sparsity-plot. */
#define PLOT_EXIT_GNUPLOT 5
#define PLOT_EGNUPLOT (-5)

/* A growing string (always NUL-terminated once anything was added; oom set on failure). */
typedef struct StrBuf {
    char *s;
    size_t len, cap;
    int oom;
} StrBuf;

void sb_add(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(StrBuf *b);

/* gnuplot -e assignments: pv_str adds NAME='VALUE' (quotes doubled), pv_num NAME=VALUE. */
void pv_str(StrBuf *vars, const char *name, const char *value);
void pv_num(StrBuf *vars, const char *name, double value);
void pv_int(StrBuf *vars, const char *name, long long value);

typedef struct PlotOut {
    const char *figdir;  /* as given */
    const char *gnuplot; /* the program (SS_GNUPLOT or "gnuplot") */
    const char *scripts; /* the folder holding the *.gp scripts */
    const char *ext;     /* "png", "svg" or "pdf" */
    char term[160];      /* gnuplot's terminal for ext */
    StrBuf replot;       /* the lines of FIGDIR/replot.sh */
    size_t ndrawn, nskipped;
} PlotOut;

/* Checks that gnuplot runs and has a terminal for format (SS_EUSAGE for an unknown format,
 * PLOT_EGNUPLOT when gnuplot is missing or has no such terminal), then creates FIGDIR,
 * FIGDIR/data and FIGDIR/scripts (SS_EOUTPUT when it cannot). Nothing is created when gnuplot
 * is missing. */
int pout_init(PlotOut *o, const char *figdir, const char *format, const char *gnuplot,
              const char *scripts, SsError *err);
/* Writes FIGDIR/replot.sh (atomically) and frees o. */
int pout_finish(PlotOut *o, SsError *err);
void pout_free(PlotOut *o);

/* A data file FIGDIR/data/NAME being written (to a temporary name until pd_close). */
typedef struct DataFile {
    FILE *f;
    char *path; /* FIGDIR/data/NAME */
    char *tmp;
    char *rel;  /* data/NAME: what the scripts are given (they run in FIGDIR) */
} DataFile;

/* Opens FIGDIR/data/NAME and writes "# " + header (one line; may hold '\n' for more lines). */
int pd_open(PlotOut *o, DataFile *d, const char *name, const char *header, SsError *err);
/* Flushes, closes and renames into place (SS_EOUTPUT naming the file on failure). */
int pd_close(DataFile *d, SsError *err);
/* Drops a data file being written (removes the temporary file). */
void pd_abort(DataFile *d);
void pd_free(DataFile *d);
/* A number as gnuplot reads it: %.17g, "NaN" for NaN and infinities. */
void pd_num(FILE *f, double v);

/* Draws figure FIG (FIGDIR/FIG.<ext>) with scripts/KIND.gp and the assignments in vars; prints
 * "drawn: PATH (note)" on stderr. PLOT_EGNUPLOT with gnuplot's last error lines when it fails. */
int pout_draw(PlotOut *o, const char *kind, const char *fig, const StrBuf *vars, const char *note,
              SsError *err);
/* Prints "skipped: WHAT: WHY" on stderr. */
void pout_skip(PlotOut *o, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A label made safe for file names: [A-Za-z0-9._+@-] kept, anything else '_'. */
void plot_file_label(const char *in, char *out, size_t len);

#endif
