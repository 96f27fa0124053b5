/* sparsity-scan: compares two checkpoints and reports, per tensor, per layer and module, and in
 * total, how many weights changed (exactly, at absolute tolerances, at a relative probe). A thin
 * main: parse options, open, scan, group, write HDF5, print. Exit statuses are in usage() and
 * docs/cli.md. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/cmdline.h"
#include "kernels/scan_cuda.h"
#include "analyze/grouping.h"
#include "analyze/maps.h"
#include "analyze/progress.h"
#include "analyze/rank.h"
#include "analyze/report.h"
#include "analyze/scan_mpi.h"
#include "analyze/scan_report.h"
#include "analyze/series.h"
#include "formats/safetensors.h"
#include "kernels/blas_threads.h"

/* More threads than this only costs start-up time: the scan is bound by memory bandwidth. */
#define SCAN_MAX_THREADS 1024

static void usage(FILE *f)
{
    fprintf(f,
"usage: sparsity-scan A B [options]\n"
"       sparsity-scan --series RUN [options]\n"
"\n"
"Counts which weights differ between checkpoints A and B, per tensor and in total.\n"
"A and B are each a .safetensors file, a Hugging Face model folder with\n"
"model.safetensors.index.json and its shards, a folder holding model.safetensors, or a\n"
"run folder's checkpoint RUN@STEP, RUN@base or RUN@latest (decoded from its .sdelta files).\n"
"\n"
"options:\n"
"  --tol T[,T...]     absolute tolerances: count |B-A| > T (default 1e-5; up to %d)\n"
"  --rtol ETA         also count |B-A| > ETA*max(|A|,|B|) (1e-3 equals bitwise for bf16)\n"
"  --delta-dtype D    test the tolerances on B-A rounded to D, as scripts that subtract in\n"
"                     bf16 do: D = same (each tensor's own dtype), bf16, f16 or f32\n"
"  --json             print the JSON report (schema sparsity-scan/1) instead of the table\n"
"  --top N            table: show only the N least sparse tensors (default 0: all)\n"
"  --by-layer         table: one row per layer (weighted sparsity, mean over its\n"
"                     matrices, least sparse module) instead of one per tensor\n"
"  --group-regex RE   group names by a POSIX extended regex: group 1 = layer number,\n"
"                     group 2 = module; names it does not match use the default rule\n"
"                     (first numeric component = layer, last before weight/bias = module)\n"
"  --h5 OUT.h5        also write the full report as HDF5 (docs/hdf5-schema.md)\n"
"  --masks            with --h5: also store each tensor's changed-element bitmap\n"
"                     (masks/<tensor>, packed 8 a byte, LSB first; held in memory\n"
"                     until written: numel/8 bytes over all tensors)\n"
"  --maps             with --h5: also the update map of each 2-D tensor: changed\n"
"                     count per row and column and per cell of a map of at most\n"
"                     512x512 cells (the density map: counts over cell sizes),\n"
"                     per-head fractions of q/k/v/o_proj, stripe ratios\n"
"                     (HDF5 /maps; JSON: stripe ratios and head fractions only).\n"
"                     Holds every mask in memory as --masks does (numel/8 bytes)\n"
"  --head-dim D       --maps: attention head size (default: config.json beside B\n"
"                     or A: head_dim, else hidden_size/num_attention_heads)\n"
"  --stripe-k K       --maps: a row or column is a stripe when its changed\n"
"                     fraction exceeds K times the tensor's (default 2)\n"
"  --hist             also the tolerance curve of each tensor: histograms of\n"
"                     floor(log2|B-A|) and of |B-A|/max(|A|,|B|) over the changed\n"
"                     elements, and the exact changed count at every tolerance 2^k\n"
"                     (JSON tolerance_curve, HDF5 /hist)\n"
"  --series RUN       instead of A B: scan a run folder's base against each snapshot\n"
"                     and each snapshot against the previous one: sparsity by step,\n"
"                     and each element never changed / changed then restored to the\n"
"                     base bits / changed at the last step (JSON sparsity-series/1;\n"
"                     takes --tol, --rtol, --json, --h5, --group-regex, --threads,\n"
"                     --quiet; numel/8 bytes of memory for the split)\n"
"  --device D         cpu, cuda or auto (default cpu; auto: CUDA when a GPU is present).\n"
"                     The CUDA scan gives the same counts; --rank then uses cuSOLVER\n"
"                     (docs/cuda.md)\n"
"  --threads N        worker threads, at most %d (default 0: all cores; under\n"
"                     mpirun -np N, the node's cores shared by its ranks: docs/mpi.md)\n"
"  --rank             also the rank of each 2-D update B - A: numerical, 99%%-energy,\n"
"                     entropy and stable rank, best rank-r energy, nnz against a\n"
"                     rank-r LoRA, principal angles of A and B (docs/metrics.md)\n"
"  --rank-k K         with --rank: randomized top-K spectra instead of full ones\n"
"  --rank-angles K    with --rank: principal angles of the top K (default 16)\n"
"  --skip-mismatched  skip shared tensors whose dtype or shape differ instead of failing\n"
"  --quiet            no progress bar\n"
"  -h, --help         this help\n"
"  --version          print the version\n"
"\n"
"definitions (docs/metrics.md): changed = stored bits differ (+0 and -0 equal);\n"
"sparsity = 1 - changed/numel; tolerances compare the exact difference in double;\n"
"pairs with NaN or Inf count as nonfinite, and as changed when their bits differ.\n"
"\n"
"exit status: 0 ok, 1 usage error, 2 unreadable or malformed input,\n"
"3 incompatible checkpoints (dtype or shape differ for a shared tensor),\n"
"4 cannot write output (the --h5 file, standard output) or out of memory.\n",
            SCAN_MAX_TOL, SCAN_MAX_THREADS);
}

static int usage_error(const char *fmt, const char *arg)
{
    if (scan_mpi_rank() != 0) /* under mpirun every rank sees the same usage error */
        return 1;
    fprintf(stderr, "sparsity-scan: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'sparsity-scan --help'.\n");
    return 1;
}

/* Parses a finite, non-negative number filling all of s. */
static int parse_nonneg(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* ERANGE with a nonzero result is a subnormal, correctly rounded: keep it (2^-1074) */
    if (end == s || *end != '\0' || (errno == ERANGE && v == 0) || !isfinite(v) || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_tolerances(const char *arg, ScanConfig *cfg)
{
    char buf[1024];
    if (strlen(arg) >= sizeof buf)
        return usage_error("--tol list too long: %s", arg);
    strcpy(buf, arg);
    cfg->ntol = 0;
    for (char *tok = buf, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next)
            *next++ = '\0';
        double v;
        if (parse_nonneg(tok, &v))
            return usage_error("--tol: '%s' is not a non-negative number", tok);
        if (cfg->ntol == SCAN_MAX_TOL)
            return usage_error("--tol: at most 16 tolerances (%s)", arg);
        char key[64], other[64];
        scan_tol_key(v, key, sizeof key);
        for (size_t k = 0; k < cfg->ntol; k++) {
            scan_tol_key(cfg->tol[k], other, sizeof other);
            if (strcmp(key, other) == 0)
                return usage_error("--tol: tolerance %s given twice", key);
        }
        cfg->tol[cfg->ntol++] = v;
    }
    return 0;
}

/* --delta-dtype's value as ScanOptions.delta_dtype wants it, or -1. */
static int parse_delta_dtype(const char *s)
{
    if (strcmp(s, "same") == 0)
        return 1;
    if (strcmp(s, "bf16") == 0)
        return DT_BF16 + 2;
    if (strcmp(s, "f16") == 0)
        return DT_F16 + 2;
    if (strcmp(s, "f32") == 0)
        return DT_F32 + 2;
    return -1;
}

/* Parses a count in [0, max] filling all of s. */
static int parse_count(const char *s, const char *opt, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < 0 || v > max) {
        if (scan_mpi_rank() != 0)
            return 1;
        fprintf(stderr, "sparsity-scan: %s needs a whole number from 0 to %ld\n", opt, max);
        fprintf(stderr, "Try 'sparsity-scan --help'.\n");
        return 1;
    }
    *out = v;
    return 0;
}

/* --series RUN: the run's checkpoint series (analyze/series.h); returns the exit status. */
static int main_series(const char *run, ScanOptions *opt, const char *group_regex,
                       const char *h5_path, int json, int quiet, const char *command_line)
{
    SsError err = {0};
    GroupRules rules;
    if (grouping_rules_init(&rules, group_regex, &err) != 0) {
        fprintf(stderr, "sparsity-scan: --group-regex: %s\nTry 'sparsity-scan --help'.\n", err.msg);
        return 1;
    }
    Progress progress;
    progress_init(&progress, !quiet);
    opt->progress = progress_update;
    opt->progress_ctx = &progress;
    SeriesReport rep;
    int rc = series_scan_run(run, &rules, opt, &rep, &err);
    progress_finish(&progress);
    if (rc == 0 && h5_path)
        rc = series_write_h5(h5_path, &rep, command_line, &err);
    if (rc == 0) {
        if (json)
            series_write_json(stdout, &rep);
        else
            series_write_table(stdout, &rep);
        if (fflush(stdout) != 0 || ferror(stdout))
            rc = ss_err(&err, SS_EOUTPUT, "cannot write the report to standard output");
    }
    series_report_free(&rep);
    if (rc)
        fprintf(stderr, "sparsity-scan: %s\n", err.msg);
    grouping_rules_free(&rules);
    return ss_exit_status(rc);
}

/* --maps, before the scan: the head size (--head-dim, else config.json beside B, then A; *source
 * says which, malloc'd) and the check that every attention projection of A splits into heads. */
static int maps_prepare(const char *path_a, const char *path_b, const CkptSource *a,
                        uint64_t *head_dim, char **source, SsError *err)
{
    int rc = 0;
    *source = NULL;
    if (*head_dim)
        rc = (*source = strdup("--head-dim")) ? 0 : ss_err(err, SS_EOUTPUT, "out of memory");
    if (!rc && !*head_dim)
        rc = maps_head_dim_from_config(path_b, head_dim, source, err);
    if (!rc && !*head_dim)
        rc = maps_head_dim_from_config(path_a, head_dim, source, err);
    if (!rc)
        rc = maps_check_heads(a->listing, *head_dim, err);
    return rc;
}

/* --maps, after the scan: the maps from the report's masks (maps_build owns source from here),
 * and the masks dropped unless --masks keeps them. */
static int main_maps(uint64_t head_dim, char *source, double stripe_k, int keep_masks,
                     ScanReport *report, MapsReport *out, SsError *err)
{
    MapsOptions mopt = {head_dim, stripe_k};
    int rc = maps_build(report, &mopt, source, out, err);
    if (!keep_masks && report->masks) {
        for (size_t i = 0; i < report->pairs.npairs; i++)
            free(report->masks[i]);
        free(report->masks);
        report->masks = NULL;
    }
    return rc;
}

static int scan_main(int argc, char **argv)
{
    enum { OPT_TOL = 256, OPT_RTOL, OPT_JSON, OPT_TOP, OPT_THREADS, OPT_SKIP, OPT_QUIET, OPT_VERSION,
           OPT_BY_LAYER, OPT_GROUP_REGEX, OPT_H5, OPT_MASKS, OPT_SERIES, OPT_DELTA_DTYPE, OPT_HIST, OPT_DEVICE,
           OPT_RANK, OPT_RANK_K, OPT_RANK_ANGLES, OPT_MAPS, OPT_HEAD_DIM, OPT_STRIPE_K };
    static const struct option longopts[] = {
        {"tol", required_argument, NULL, OPT_TOL},
        {"rtol", required_argument, NULL, OPT_RTOL},
        {"json", no_argument, NULL, OPT_JSON},
        {"top", required_argument, NULL, OPT_TOP},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"skip-mismatched", no_argument, NULL, OPT_SKIP},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"by-layer", no_argument, NULL, OPT_BY_LAYER},
        {"group-regex", required_argument, NULL, OPT_GROUP_REGEX},
        {"h5", required_argument, NULL, OPT_H5},
        {"masks", no_argument, NULL, OPT_MASKS},
        {"hist", no_argument, NULL, OPT_HIST},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"series", required_argument, NULL, OPT_SERIES},
        {"delta-dtype", required_argument, NULL, OPT_DELTA_DTYPE},
        {"rank", no_argument, NULL, OPT_RANK},
        {"maps", no_argument, NULL, OPT_MAPS},
        {"head-dim", required_argument, NULL, OPT_HEAD_DIM},
        {"stripe-k", required_argument, NULL, OPT_STRIPE_K},
        {"rank-k", required_argument, NULL, OPT_RANK_K},
        {"rank-angles", required_argument, NULL, OPT_RANK_ANGLES},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    ScanOptions opt = {.cfg = {.ntol = 1, .tol = {1e-5}}};
    int json = 0, quiet = 0, by_layer = 0;
    long top = 0, threads = 0;
    const char *group_regex = NULL, *h5_path = NULL;
    const char *series_run = NULL;
    int rank = 0;
    long rank_k = 0, rank_angles = RANK_DEFAULT_ANGLES;
    int maps = 0;
    long head_dim = 0;
    double stripe_k = MAPS_DEFAULT_STRIPE_K;
    /* Recorded before getopt_long permutes argv (static: still reachable on the early returns). */
    static char *command_line;
    command_line = cmdline_join(argc, argv);
    if (!command_line) {
        fprintf(stderr, "sparsity-scan: out of memory\n");
        return 4;
    }
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
        switch (c) {
        case OPT_TOL:
            if (parse_tolerances(optarg, &opt.cfg))
                return 1;
            break;
        case OPT_RTOL:
            if (parse_nonneg(optarg, &opt.cfg.rtol))
                return usage_error("--rtol: '%s' is not a non-negative number", optarg);
            opt.cfg.has_rtol = 1;
            break;
        case OPT_JSON: json = 1; break;
        case OPT_TOP:
            if (parse_count(optarg, "--top", 1000000000, &top))
                return 1;
            break;
        case OPT_THREADS:
            if (parse_count(optarg, "--threads", SCAN_MAX_THREADS, &threads))
                return 1;
            break;
        case OPT_SKIP: opt.skip_mismatched = 1; break;
        case OPT_QUIET: quiet = 1; break;
        case OPT_BY_LAYER: by_layer = 1; break;
        case OPT_GROUP_REGEX: group_regex = optarg; break;
        case OPT_H5:
            if (!*optarg)
                return usage_error("%s", "--h5 needs a file name");
            h5_path = optarg;
            break;
        case OPT_MASKS: opt.masks = 1; break;
        case OPT_HIST: opt.hist = 1; break;
        case OPT_DEVICE: {
            ScanDevice dev;
            SsError derr = {0};
            if (scan_device_parse(optarg, &dev, &derr) != 0)
                return usage_error("--device: %s", derr.msg);
            opt.device = (int)scan_device_resolve(dev);
            break;
        }
        case OPT_RANK: rank = 1; break;
        case OPT_RANK_K:
            if (parse_count(optarg, "--rank-k", RANK_MAX_K, &rank_k))
                return 1;
            break;
        case OPT_RANK_ANGLES:
            if (parse_count(optarg, "--rank-angles", RANK_MAX_K, &rank_angles))
                return 1;
            break;
        case OPT_MAPS: maps = 1; break;
        case OPT_HEAD_DIM:
            if (parse_count(optarg, "--head-dim", 1L << 30, &head_dim))
                return 1;
            if (head_dim == 0)
                return usage_error("%s", "--head-dim must be at least 1");
            break;
        case OPT_STRIPE_K:
            if (parse_nonneg(optarg, &stripe_k))
                return usage_error("--stripe-k: '%s' is not a non-negative number", optarg);
            break;
        case OPT_SERIES: series_run = optarg; break;
        case OPT_DELTA_DTYPE:
            if ((opt.delta_dtype = parse_delta_dtype(optarg)) < 0)
                return usage_error("--delta-dtype: '%s' is not one of same, bf16, f16, f32",
                                   optarg);
            break;
        case 'h':
            if (scan_mpi_rank() == 0)
                usage(stdout);
            return 0;
        case OPT_VERSION:
            if (scan_mpi_rank() == 0)
                printf("sparsity-scan %s\n", SS_VERSION);
            return 0;
        default:
            return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (series_run && rank)
        return usage_error("%s", "--series does not take --rank");
    if (series_run && maps)
        return usage_error("%s", "--series does not take --maps");
    if (series_run && opt.hist)
        return usage_error("%s", "--series does not take --hist");
    if (series_run && scan_mpi_size() > 1)
        return usage_error("%s", "--series does not run under MPI (more than one rank)");
    if (series_run) {
        if (argc != optind)
            return usage_error("%s", "--series RUN takes no checkpoints A and B");
        if (opt.masks || top || by_layer || opt.skip_mismatched || opt.delta_dtype)
            return usage_error("%s", "--series does not take --masks, --top, --by-layer, "
                                     "--skip-mismatched or --delta-dtype");
        opt.threads = (int)threads;
        int status = main_series(series_run, &opt, group_regex, h5_path, json, quiet,
                                 command_line);
        free(command_line);
        return status;
    }
    if (argc - optind != 2)
        return usage_error("%s", "needs exactly two checkpoints, A and B");
    if (opt.masks && !h5_path)
        return usage_error("%s", "--masks needs --h5 OUT.h5 (the masks are stored there)");
    if (maps && !h5_path)
        return usage_error("%s", "--maps needs --h5 OUT.h5 (the maps are stored there)");
    if (!maps && (head_dim || stripe_k != MAPS_DEFAULT_STRIPE_K))
        return usage_error("%s", "--head-dim and --stripe-k need --maps");
    int keep_masks = opt.masks;
    if (maps)
        opt.masks = 1; /* the maps are computed from the masks */
    opt.threads = threads ? (int)threads : scan_mpi_default_threads();

    SsError err = {0};
    GroupRules rules;
    if (grouping_rules_init(&rules, group_regex, &err) != 0) {
        if (scan_mpi_rank() == 0)
            fprintf(stderr, "sparsity-scan: --group-regex: %s\nTry 'sparsity-scan --help'.\n",
                    err.msg);
        return 1;
    }
    CkptSource *a = NULL, *b = NULL;
    int rc = ckpt_source_open(argv[optind], opt.threads, &a, &err);
    if (rc == 0)
        rc = ckpt_source_open(argv[optind + 1], opt.threads, &b, &err);
    uint64_t maps_head_dim = (uint64_t)head_dim;
    char *maps_source = NULL;
    if (rc == 0 && maps)
        rc = maps_prepare(argv[optind], argv[optind + 1], a, &maps_head_dim, &maps_source, &err);
    rc = scan_mpi_agree(rc, &err); /* MPI: all ranks scan, or all stop */
    Progress progress;
    ScanReport report;
    if (rc == 0) {
        progress_init(&progress, !quiet && scan_mpi_rank() == 0);
        opt.progress = progress_update;
        opt.progress_ctx = &progress;
        rc = scan_sources(a, b, &opt, &report, &err);
        progress_finish(&progress);
    }
    if (rc == 0 && scan_mpi_rank() != 0)
        scan_report_free(&report); /* MPI: rank 0 alone reports */
    else if (rc == 0) {
        Grouping groups;
        rc = grouping_build(&rules, &report, &groups, &err);
        RankOptions ropt = {(size_t)rank_k, (size_t)rank_angles,
                            opt.device == (int)SCAN_DEVICE_CUDA};
        RankReport ranks = {0};
        MapsReport mreport = {0};
        if (rc == 0 && maps) {
            rc = main_maps(maps_head_dim, maps_source, stripe_k, keep_masks, &report, &mreport,
                           &err);
            maps_source = NULL; /* owned by mreport now */
        }
        if (rc == 0 && rank)
            rc = rank_sources(a, b, &report.pairs, &ropt, &ranks, &err);
        if (rc == 0 && h5_path) {
            ReportH5Meta meta = {command_line,
                                 {ckpt_source_file_bytes(a), ckpt_source_file_bytes(b)}};
            rc = report_write_h5(h5_path, &report, &groups, &meta, rank ? &ranks : NULL,
                                 maps ? &mreport : NULL, &err);
        }
        if (rc == 0) {
            if (json)
                report_write_json(stdout, &report, &groups, rank ? &ranks : NULL,
                                  maps ? &mreport : NULL);
            else if (by_layer)
                report_write_by_layer(stdout, &report, &groups);
            else
                report_write_table(stdout, &report, (size_t)top);
            if (rank && !json)
                report_rank_write_table(stdout, &ranks);
            if (fflush(stdout) != 0 || ferror(stdout))
                rc = ss_err(&err, SS_EOUTPUT, "cannot write the report to standard output");
        }
        rank_report_free(&ranks);
        maps_report_free(&mreport);
        grouping_free(&groups);
        scan_report_free(&report);
    }
    rc = scan_mpi_share_status(rc, &err); /* MPI: every rank exits with rank 0's status */
    if (rc && scan_mpi_rank() == 0)
        fprintf(stderr, "sparsity-scan: %s\n", err.msg);
    ckpt_source_close(b);
    ckpt_source_close(a);
    grouping_rules_free(&rules);
    free(maps_source);
    free(command_line);
    return ss_exit_status(rc);
}

/* Under mpirun, MPI around the whole run (docs/mpi.md); a plain run never starts MPI. */
int main(int argc, char **argv)
{
    blas_threads_park(); /* OpenBLAS starts them again when --rank needs them */
    SsError err = {0};
    if (scan_mpi_init(&argc, &argv, &err) != 0) {
        fprintf(stderr, "sparsity-scan: %s\n", err.msg);
        return 1;
    }
    int status = scan_main(argc, argv);
    scan_mpi_finalize();
    return status;
}
