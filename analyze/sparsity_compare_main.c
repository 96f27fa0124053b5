/* sparsity-compare: compares two updates of one base, X - BASE and Y - BASE (X may be a PEFT LoRA
 * adapter folder), per 2-D tensor: cosine, norms and the overlap of their top-k singular
 * subspaces. A thin main: parse options, open, compute (analyze/compare.c), write HDF5, print.
 * Exit statuses are in usage() and docs/cli.md. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/cmdline.h"
#include "analyze/compare.h"
#include "analyze/progress.h"
#include "kernels/blas_threads.h"

#define COMPARE_MAX_THREADS 1024

static void usage(FILE *f)
{
    fprintf(f,
"usage: sparsity-compare BASE X Y [options]\n"
"\n"
"Compares two updates of one base, dW_X = X - BASE and dW_Y = Y - BASE, per 2-D tensor:\n"
"cosine similarity, Frobenius norms, and the overlap of their top-k left and right\n"
"singular subspaces, ||U_X^T U_Y||_F^2 / k (1: the same subspace; k/m expected at random),\n"
"with the principal cosines. Whole model: the parameter-weighted cosine\n"
"sum <dW_X, dW_Y> / sqrt(sum ||dW_X||^2 sum ||dW_Y||^2).\n"
"BASE, X and Y are each a .safetensors file, a Hugging Face model folder (sharded or\n"
"with model.safetensors), or a run folder's checkpoint RUN@STEP, RUN@base or RUN@latest.\n"
"X may instead be a PEFT LoRA adapter folder (adapter_config.json and\n"
"adapter_model.safetensors): dW_X = (lora_alpha/r) B A (use_rslora: lora_alpha/sqrt(r));\n"
"matrices without a LoRA pair have dW_X = 0 and are listed.\n"
"\n"
"options:\n"
"  --json            print the JSON report (schema %s) instead of the table\n"
"  --h5 OUT.h5       also write the report as HDF5 (group /compare, docs/hdf5-schema.md),\n"
"                    atomically, before anything is printed\n"
"  --subspace-k K    k of the subspaces, 1 to %d (default %d); clamped per matrix to\n"
"                    min(m, n) and to the numerical ranks of both updates, with a note\n"
"  --exact-svd       full SVDs (LAPACK gesdd) instead of the randomized top k\n"
"  --threads N       worker threads, at most %d (default 0: all cores)\n"
"  --quiet           no progress bar (drawn only when stderr is a terminal anyway)\n"
"  -h, --help        this help\n"
"  --version         print the version\n"
"\n"
"Definitions: docs/cli.md, \"sparsity-compare\". A cosine is null (NaN) with a\n"
"note when an update is 0. Tensors that are not 2-D float matrices, or hold NaN or Inf,\n"
"are listed as skipped; names not in every input are listed as absent.\n"
"\n"
"exit status: 0 ok, 1 usage error, 2 unreadable or malformed input, 3 incompatible\n"
"inputs (a tensor whose dtype or shape differs from BASE's, a LoRA pair that does not\n"
"fit its matrix; the message names the tensor), 4 cannot write output or out of memory.\n",
            COMPARE_SCHEMA, COMPARE_MAX_K, COMPARE_DEFAULT_K, COMPARE_MAX_THREADS);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sparsity-compare: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'sparsity-compare --help'.\n");
    return 1;
}

static int parse_count(const char *s, const char *opt, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < min || v > max)
        return usage_error("%s needs a whole number from %ld to %ld", opt, min, max);
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    blas_threads_park(); /* OpenBLAS starts them again when a BLAS call needs them */
    enum { OPT_JSON = 256, OPT_H5, OPT_K, OPT_EXACT, OPT_THREADS, OPT_QUIET, OPT_VERSION };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"h5", required_argument, NULL, OPT_H5},
        {"subspace-k", required_argument, NULL, OPT_K},
        {"exact-svd", no_argument, NULL, OPT_EXACT},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    int json = 0, quiet = 0;
    long k = COMPARE_DEFAULT_K, threads = 0;
    const char *h5_path = NULL;
    CompareOptions opt = {0};
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
        switch (c) {
        case OPT_JSON: json = 1; break;
        case OPT_H5:
            if (!*optarg)
                return usage_error("--h5 needs a file name");
            h5_path = optarg;
            break;
        case OPT_K:
            if (parse_count(optarg, "--subspace-k", 1, COMPARE_MAX_K, &k))
                return 1;
            break;
        case OPT_EXACT: opt.exact_svd = 1; break;
        case OPT_THREADS:
            if (parse_count(optarg, "--threads", 0, COMPARE_MAX_THREADS, &threads))
                return 1;
            break;
        case OPT_QUIET: quiet = 1; break;
        case 'h': usage(stdout); return 0;
        case OPT_VERSION: printf("sparsity-compare %s\n", SS_VERSION); return 0;
        default:
            return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 3)
        return usage_error("needs three checkpoints: BASE X Y (got %d)", argc - optind);
    const char *paths[3] = {argv[optind], argv[optind + 1], argv[optind + 2]};
    if (lora_is_adapter(paths[0]) || lora_is_adapter(paths[2]))
        return usage_error("%s is a LoRA adapter folder: only X may be one (BASE X Y)",
                           lora_is_adapter(paths[0]) ? paths[0] : paths[2]);
    opt.k = (size_t)k;
    opt.threads = (int)threads;
    char *command_line = cmdline_join(argc, argv);
    if (!command_line) {
        fprintf(stderr, "sparsity-compare: out of memory\n");
        return 4;
    }

    SsError err = {0};
    CkptSource *base = NULL, *x = NULL, *y = NULL;
    LoraAdapter *lora = NULL;
    int rc = ckpt_source_open(paths[0], opt.threads, &base, &err);
    if (!rc)
        rc = lora_is_adapter(paths[1]) ? lora_adapter_open(paths[1], &lora, &err)
                                       : ckpt_source_open(paths[1], opt.threads, &x, &err);
    if (!rc)
        rc = ckpt_source_open(paths[2], opt.threads, &y, &err);
    CompareReport report = {0};
    if (!rc) {
        Progress progress;
        progress_init(&progress, !quiet);
        opt.progress = progress_update;
        opt.progress_ctx = &progress;
        rc = compare_sources(base, x, lora, y, paths, &opt, &report, &err);
        progress_finish(&progress);
    }
    if (!rc && h5_path)
        rc = compare_write_h5(h5_path, &report, command_line, &err);
    if (!rc) {
        if (json)
            compare_write_json(stdout, &report);
        else
            compare_write_table(stdout, &report);
        if (fflush(stdout) != 0 || ferror(stdout))
            rc = ss_err(&err, SS_EOUTPUT, "cannot write the report to standard output");
    }
    if (rc)
        fprintf(stderr, "sparsity-compare: %s\n", err.msg);
    compare_report_free(&report);
    ckpt_source_close(y);
    ckpt_source_close(x);
    lora_adapter_close(lora);
    ckpt_source_close(base);
    free(command_line);
    return ss_exit_status(rc);
}
