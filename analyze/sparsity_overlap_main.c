/* sparsity-overlap: compares which elements two or more runs from the same base changed, from
 * the masks in their sparsity-scan reports (sparsity-scan A B --h5 X.h5 --masks). A thin main:
 * parse options, compute (analyze/overlap.c), write HDF5, print. Exit statuses are in usage()
 * and docs/cli.md. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "analyze/overlap.h"
#include "kernels/blas_threads.h"

static void usage(FILE *f)
{
    fprintf(f,
"usage: sparsity-overlap X.h5 Y.h5 [Z.h5 ...] [options]\n"
"\n"
"Compares which weights runs from the same base changed. Each input is a report of\n"
"'sparsity-scan BASE RUN --h5 X.h5 --masks' (2 to %d of them, same BASE).\n"
"\n"
"options:\n"
"  --json         print the JSON report (schema sparsity-overlap/1) instead of the table\n"
"  --h5 OUT.h5    also write the report as HDF5 (docs/hdf5-schema.md), atomically\n"
"  --any-base     accept reports whose base paths differ (base size, tensor names, shapes\n"
"                 and dtypes are still checked)\n"
"  -h, --help     this help\n"
"  --version      print the version\n"
"\n"
"definitions (docs/metrics.md, Overlap): for one tensor of n elements with changed sets\n"
"I1 (run X) and I2 (run Y), p = |I1|/n, q = |I2|/n:\n"
"  o1 = |I1&I2|/|I1| (random baseline q), o2 = |I1&I2|/|I2| (random baseline p),\n"
"  Jaccard J = |I1&I2|/|I1|I2| (independent baseline pq/(p+q-pq)); null/NaN for\n"
"  empty sets.\n"
"Per module and overall: intersections, sizes and unions summed over tensors, baselines\n"
"from the summed densities. With 3 or more runs also the consensus: share of elements\n"
"changed by exactly j runs (j = 0..k), per tensor, layer x module and overall, against\n"
"the Poisson-binomial of the runs' densities (independent runs).\n"
"Tensors not in every report are listed and skipped.\n"
"\n"
"exit status: 0 ok, 1 usage error, 2 unreadable or malformed input (or no /masks:\n"
"rerun sparsity-scan with --masks), 3 incompatible reports (different bases, or a\n"
"tensor whose shape, numel or dtype differ), 4 cannot write output or out of memory.\n",
            OVERLAP_MAX_RUNS);
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "sparsity-overlap: %s\nTry 'sparsity-overlap --help'.\n", msg);
    return 1;
}

int main(int argc, char **argv)
{
    blas_threads_park(); /* OpenBLAS starts them again when a BLAS call needs them */
    enum { OPT_JSON = 256, OPT_H5, OPT_ANY_BASE, OPT_VERSION };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"h5", required_argument, NULL, OPT_H5},
        {"any-base", no_argument, NULL, OPT_ANY_BASE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    int json = 0;
    const char *h5_path = NULL;
    OverlapOptions opt = {0};
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
        switch (c) {
        case OPT_JSON: json = 1; break;
        case OPT_H5:
            if (!*optarg)
                return usage_error("--h5 needs a file name");
            h5_path = optarg;
            break;
        case OPT_ANY_BASE: opt.any_base = 1; break;
        case 'h': usage(stdout); return 0;
        case OPT_VERSION: printf("sparsity-overlap %s\n", SS_VERSION); return 0;
        default:
            fprintf(stderr, "sparsity-overlap: unknown or incomplete option '%s'\n"
                    "Try 'sparsity-overlap --help'.\n", argv[optind - 1]);
            return 1;
        }
    }
    size_t k = (size_t)(argc - optind);
    if (k < 2)
        return usage_error("needs at least two reports (sparsity-scan --h5 X.h5 --masks)");
    if (k > OVERLAP_MAX_RUNS)
        return usage_error("too many reports (at most 64)");

    SsError err = {0};
    OverlapReport report;
    int rc = overlap_compute(k, (const char *const *)argv + optind, &opt, &report, &err);
    if (rc == 0 && h5_path)
        rc = overlap_write_h5(h5_path, &report, &err);
    if (rc == 0) {
        if (json)
            overlap_write_json(stdout, &report);
        else
            overlap_write_table(stdout, &report);
        if (fflush(stdout) != 0 || ferror(stdout))
            rc = ss_err(&err, SS_EOUTPUT, "cannot write the report to standard output");
    }
    if (rc)
        fprintf(stderr, "sparsity-overlap: %s\n", err.msg);
    overlap_report_free(&report);
    return ss_exit_status(rc);
}
