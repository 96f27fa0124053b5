/* sparsity-plot: draws the figures of sparsity-scan, sparsity-series and sparsity-overlap reports
 * and of grpo-train run folders with gnuplot. A thin main: parse options, open the inputs
 * (plots/plot_inputs.c), draw what they allow (plots/plot_figures.c). Exit statuses are in
 * usage() and docs/sparsity-plot.md. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plots/plot_figures.h"
#include "plots/plot_inputs.h"
#include "plots/plot_out.h"

#ifndef SS_PLOT_SCRIPTS_DIR
#define SS_PLOT_SCRIPTS_DIR "plots"
#endif
#ifndef SS_PLOT_SCRIPTS_INSTALLED
#define SS_PLOT_SCRIPTS_INSTALLED SS_PLOT_SCRIPTS_DIR
#endif

#define PLOT_MAX_INPUTS 256

static void usage(FILE *f)
{
    fprintf(f,
"usage: sparsity-plot IN... -o FIGDIR [options]\n"
"\n"
"Draws figures with gnuplot from any mix of:\n"
"  IN.h5   a report of 'sparsity-scan A B --h5', 'sparsity-scan --series RUN --h5' or\n"
"          'sparsity-overlap ... --h5' (told apart by their schema)\n"
"  RUN/    a grpo-train run folder (its metrics.jsonl)\n"
"Each figure is drawn when its inputs are there; stderr lists what was drawn and what was\n"
"skipped and why. FIGDIR gets the figures, data/ (the numbers as plain columns),\n"
"scripts/ (the gnuplot scripts used) and replot.sh (redraws everything by hand).\n"
"\n"
"options:\n"
"  -o, --output FIGDIR     where to write (created if missing; required)\n"
"  --format png|svg|pdf    figure format (default png)\n"
"  --tensor NAME           a tensor for the update-map and spectrum figures (repeatable;\n"
"                          default: the attention projections of the middle layer)\n"
"  --label NAME            the run label of the next input without one, in input order\n"
"                          (repeatable; default: from the report or folder name)\n"
"  --scripts DIR           the folder of the *.gp scripts (default: $SS_PLOT_SCRIPTS, the\n"
"                          installed ones, or the source tree's plots/)\n"
"  -h, --help              this help\n"
"  --version               print the version\n"
"\n"
"environment: SS_GNUPLOT names the gnuplot program (default: gnuplot on PATH).\n"
"\n"
"exit status: 0 ok, 1 usage error, 2 unreadable or malformed input, 4 cannot write to\n"
"FIGDIR or out of memory, 5 gnuplot is missing or failed (no partial figure is left).\n");
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "sparsity-plot: %s\nTry 'sparsity-plot --help'.\n", msg);
    return 1;
}

static int exit_status(int rc)
{
    return rc == PLOT_EGNUPLOT ? PLOT_EXIT_GNUPLOT : ss_exit_status(rc);
}

/* The scripts folder: --scripts, $SS_PLOT_SCRIPTS, the installed folder, the source tree. */
static const char *scripts_dir(const char *opt)
{
    if (opt)
        return opt;
    const char *env = getenv("SS_PLOT_SCRIPTS");
    if (env && *env)
        return env;
    const char *cand[2] = {SS_PLOT_SCRIPTS_INSTALLED, SS_PLOT_SCRIPTS_DIR};
    for (int i = 0; i < 2; i++) {
        char probe[4096];
        snprintf(probe, sizeof probe, "%s/training.gp", cand[i]);
        FILE *f = fopen(probe, "r");
        if (f) {
            fclose(f);
            return cand[i];
        }
    }
    return SS_PLOT_SCRIPTS_DIR;
}

int main(int argc, char **argv)
{
    enum { OPT_FORMAT = 256, OPT_TENSOR, OPT_LABEL, OPT_SCRIPTS, OPT_VERSION };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"tensor", required_argument, NULL, OPT_TENSOR},
        {"label", required_argument, NULL, OPT_LABEL},
        {"scripts", required_argument, NULL, OPT_SCRIPTS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *figdir = NULL, *format = "png", *scripts = NULL;
    char *tensors[PLOT_MAX_INPUTS], *labels[PLOT_MAX_INPUTS];
    size_t ntensors = 0, nlabels = 0;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1;) {
        switch (c) {
        case 'o':
            if (!*optarg)
                return usage_error("-o needs a folder");
            figdir = optarg;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "png") && strcmp(optarg, "svg") && strcmp(optarg, "pdf"))
                return usage_error("--format must be png, svg or pdf");
            format = optarg;
            break;
        case OPT_TENSOR:
            if (!*optarg)
                return usage_error("--tensor needs a tensor name");
            if (ntensors == PLOT_MAX_INPUTS)
                return usage_error("too many --tensor options");
            tensors[ntensors++] = optarg;
            break;
        case OPT_LABEL:
            if (!*optarg)
                return usage_error("--label needs a name");
            if (nlabels == PLOT_MAX_INPUTS)
                return usage_error("too many --label options");
            labels[nlabels++] = optarg;
            break;
        case OPT_SCRIPTS:
            if (!*optarg)
                return usage_error("--scripts needs a folder");
            scripts = optarg;
            break;
        case 'h': usage(stdout); return 0;
        case OPT_VERSION: printf("sparsity-plot %s\n", SS_VERSION); return 0;
        default:
            fprintf(stderr, "sparsity-plot: unknown or incomplete option '%s'\n"
                    "Try 'sparsity-plot --help'.\n", argv[optind - 1]);
            return 1;
        }
    }
    size_t n = (size_t)(argc - optind);
    if (!n)
        return usage_error("needs at least one input (IN.h5 or RUN/)");
    if (n > PLOT_MAX_INPUTS)
        return usage_error("too many inputs (at most 256)");
    if (!figdir)
        return usage_error("needs -o FIGDIR");
    if (nlabels > n)
        return usage_error("more --label options than inputs");

    SsError err = {0};
    PlotInput *in = calloc(n, sizeof *in);
    if (!in) {
        fprintf(stderr, "sparsity-plot: out of memory\n");
        return 4;
    }
    size_t nopen = 0;
    int rc = 0;
    for (; nopen < n && !rc; nopen++) {
        rc = pin_open(argv[optind + (int)nopen], &in[nopen], &err);
        if (rc)
            break;
    }
    PlotOut out = {0};
    if (!rc) {
        pin_labels(in, n, labels, nlabels);
        rc = pout_init(&out, figdir, format, getenv("SS_GNUPLOT") && *getenv("SS_GNUPLOT")
                       ? getenv("SS_GNUPLOT") : "gnuplot", scripts_dir(scripts), &err);
    }
    if (!rc) {
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "sparsity-plot: input %s: %s, label '%s'\n", in[i].path,
                    pin_kind_name(in[i].kind), in[i].label);
        PlotCtx ctx = {&out, in, n, tensors, ntensors};
        rc = plot_all(&ctx, &err);
        if (!rc)
            rc = pout_finish(&out, &err);
        if (!rc)
            fprintf(stderr, "sparsity-plot: %zu figure%s drawn, %zu skipped; data in %s/data, "
                    "redraw with %s/replot.sh\n", out.ndrawn, out.ndrawn == 1 ? "" : "s",
                    out.nskipped, figdir, figdir);
    }
    if (rc)
        fprintf(stderr, "sparsity-plot: %s\n", err.msg);
    pout_free(&out);
    for (size_t i = 0; i < nopen; i++)
        pin_close(&in[i]);
    free(in);
    return exit_status(rc);
}
