/* sparsity-report: writes the study's REPORT.md from run folders and the JSON reports of
 * sparsity-scan, sparsity-overlap and sparsity-compare (analyze/study_report.h). A thin main. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/study_report.h"
#include "kernels/blas_threads.h"

static const char usage_text[] =
"usage: sparsity-report -o REPORT.md --run LABEL=RUN,SCAN.json[,MASTER.json] ... [options]\n"
"\n"
"Writes a markdown report of training runs: eval accuracy and training reward (RUN/metrics.jsonl),\n"
"optimizer state and memory, exact / tolerance sparsity and effective rank (SCAN.json from\n"
"sparsity-scan RUN@base RUN@latest --json [--rank]), and the float32 master sparsity\n"
"(MASTER.json, the same on RUN/master).\n"
"\n"
"options:\n"
"  -o, --output FILE            the report (written atomically)\n"
"  --run LABEL=RUN,SCAN[,MASTER]  one row of the run table (repeatable, in order)\n"
"  --overlap FILE.json          sparsity-overlap --json on the runs' masks, in --run order\n"
"  --compare LABEL=FILE.json    sparsity-compare --json (repeatable)\n"
"  --figures DIR                list the PNG/SVG figures in DIR\n"
"  --figures-link PATH          how the report refers to DIR (default: DIR as given)\n"
"  --title TEXT                 the heading (default \"RLVR sparsity study\")\n"
"  --intro TEXT                 a paragraph under the heading\n"
"\n"
"exit status: 0 ok, 1 usage, 2 bad input, 4 cannot write\n";

enum { O_RUN = 256, O_OVERLAP, O_COMPARE, O_FIGURES, O_FIGLINK, O_TITLE, O_INTRO, O_HELP };

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "sparsity-report: %s%s\n(sparsity-report --help lists the options)\n", msg,
            arg ? arg : "");
    return 1;
}

int main(int argc, char **argv)
{
    blas_threads_park(); /* OpenBLAS starts them again when a BLAS call needs them */
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"run", required_argument, 0, O_RUN},
        {"overlap", required_argument, 0, O_OVERLAP}, {"compare", required_argument, 0, O_COMPARE},
        {"figures", required_argument, 0, O_FIGURES},
        {"figures-link", required_argument, 0, O_FIGLINK},
        {"title", required_argument, 0, O_TITLE}, {"intro", required_argument, 0, O_INTRO},
        {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    StudyReport r = {.title = "RLVR sparsity study"};
    StudyRun runs[64];
    StudyCompare cmps[64];
    r.runs = runs;
    r.compares = cmps;
    const char *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        char *eq;
        switch (c) {
        case 'o': out = optarg; break;
        case O_RUN: {
            eq = strchr(optarg, '=');
            if (!eq || eq == optarg || r.nruns == 64)
                return usage_error("--run needs LABEL=RUN,SCAN.json[,MASTER.json]: ", optarg);
            *eq = '\0';
            char *dir = eq + 1, *scan = strchr(dir, ','), *master = NULL;
            if (!scan || scan == dir || !scan[1])
                return usage_error("--run needs LABEL=RUN,SCAN.json[,MASTER.json]: ", optarg);
            *scan++ = '\0';
            if ((master = strchr(scan, ',')))
                *master++ = '\0';
            runs[r.nruns++] = (StudyRun){optarg, dir, scan, master && *master ? master : NULL};
            break;
        }
        case O_OVERLAP: r.overlap_json = optarg; break;
        case O_COMPARE:
            eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1] || r.ncompares == 64)
                return usage_error("--compare needs LABEL=FILE.json: ", optarg);
            *eq = '\0';
            cmps[r.ncompares++] = (StudyCompare){optarg, eq + 1};
            break;
        case O_FIGURES: r.figures_dir = optarg; break;
        case O_FIGLINK: r.figures_link = optarg; break;
        case O_TITLE: r.title = optarg; break;
        case O_INTRO: r.intro = optarg; break;
        case O_HELP: fputs(usage_text, stdout); return 0;
        default: return usage_error("bad option", NULL);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument ", argv[optind]);
    if (!out)
        return usage_error("missing -o REPORT.md", NULL);
    if (!r.nruns)
        return usage_error("give at least one --run", NULL);
    if (!r.figures_link)
        r.figures_link = r.figures_dir;
    SsError err = {0};
    if (study_report_write(&r, out, &err) != 0) {
        fprintf(stderr, "sparsity-report: %s\n", err.msg);
        return ss_exit_status(err.code);
    }
    return 0;
}
