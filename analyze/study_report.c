/* REPORT.md of the study (analyze/study_report.h): reads the runs' metrics.jsonl and run.json and
 * the JSON reports of sparsity-scan, sparsity-overlap and sparsity-compare, and writes markdown
 * tables and the list of figures. Numbers are printed as measured; a missing figure is "n/a". */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "analyze/study_report.h"
#include "formats/atomic_file.h"

/* What one run's metrics.jsonl says. */
typedef struct RunMetrics {
    double eval_first, eval_last;   /* NAN when absent */
    long eval_first_step, eval_last_step;
    double reward_first, reward_last; /* mean over the first / last (up to) 10 step lines */
    long steps;
    double opt_state_bytes, peak_rss_bytes, step_time_mean;
} RunMetrics;

static json_t *load_json(const char *path, SsError *err)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        ss_err(err, SS_EINPUT, "%s: %s (line %d)", path, je.text, je.line);
    return j;
}

static double num(json_t *j)
{
    return json_is_number(j) ? json_number_value(j) : NAN;
}

/* j's value at a path of object keys ("totals", "sparsity", NULL). */
static json_t *dig(json_t *j, ...)
{
    va_list ap;
    va_start(ap, j);
    const char *k;
    while (j && (k = va_arg(ap, const char *)))
        j = json_object_get(j, k);
    va_end(ap);
    return j;
}

static int read_metrics(const char *dir, RunMetrics *m, SsError *err)
{
    *m = (RunMetrics){.eval_first = NAN, .eval_last = NAN, .reward_first = NAN,
                      .reward_last = NAN, .opt_state_bytes = NAN, .peak_rss_bytes = NAN,
                      .step_time_mean = NAN};
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return ss_err(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    double *rewards = NULL;
    size_t nr = 0, cap = 0;
    double tsum = 0.0;
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    int rc = 0;
    while (getline(&line, &lcap, f) > 0) {
        lineno++;
        json_t *j = json_loads(line, 0, NULL);
        if (!json_is_object(j)) {
            json_decref(j);
            rc = ss_err(err, SS_EINPUT, "%s: line %ld is not a JSON object", path, lineno);
            break;
        }
        long step = (long)json_integer_value(json_object_get(j, "step"));
        json_t *acc = json_object_get(j, "eval_acc");
        if (json_is_number(acc)) {
            if (isnan(m->eval_first)) {
                m->eval_first = json_number_value(acc);
                m->eval_first_step = step;
            }
            m->eval_last = json_number_value(acc);
            m->eval_last_step = step;
        }
        json_t *rw = json_object_get(j, "reward_mean");
        if (json_is_number(rw)) {
            if (nr == cap) {
                cap = cap ? 2 * cap : 64;
                double *g = realloc(rewards, cap * sizeof *g);
                if (!g) {
                    json_decref(j);
                    rc = ss_err(err, SS_EOUTPUT, "out of memory");
                    break;
                }
                rewards = g;
            }
            rewards[nr++] = json_number_value(rw);
            m->opt_state_bytes = num(json_object_get(j, "opt_state_bytes"));
            double rss = num(json_object_get(j, "peak_rss_bytes"));
            if (isnan(m->peak_rss_bytes) || rss > m->peak_rss_bytes)
                m->peak_rss_bytes = rss;
            tsum += num(json_object_get(j, "step_time_s"));
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (rc == 0 && nr > 0) {
        size_t k = nr < 10 ? nr : 10;
        double a = 0, b = 0;
        for (size_t i = 0; i < k; i++) {
            a += rewards[i];
            b += rewards[nr - k + i];
        }
        m->reward_first = a / k;
        m->reward_last = b / k;
        m->steps = (long)nr;
        m->step_time_mean = tsum / nr;
    }
    free(rewards);
    return rc;
}

static void fmt(char *buf, size_t cap, const char *f, double v)
{
    if (isnan(v))
        snprintf(buf, cap, "n/a");
    else
        snprintf(buf, cap, f, v);
}

/* Sparsity as a percentage with enough decimals to show a change of one weight in a million. */
static void fmt_sparsity(char *buf, size_t cap, double s)
{
    fmt(buf, cap, "%.4f%%", isnan(s) ? s : 100.0 * s);
}

static void fmt_bytes(char *buf, size_t cap, double b)
{
    if (isnan(b))
        snprintf(buf, cap, "n/a");
    else if (b == 0)
        snprintf(buf, cap, "0");
    else if (b < 1 << 20)
        snprintf(buf, cap, "%.1f KiB", b / 1024.0);
    else
        snprintf(buf, cap, "%.1f MiB", b / 1048576.0);
}

/* The run table's row for one run. */
static int run_row(FILE *out, const StudyRun *r, SsError *err)
{
    RunMetrics m;
    int rc = read_metrics(r->dir, &m, err);
    if (rc)
        return rc;
    char path[4096];
    snprintf(path, sizeof path, "%s/run.json", r->dir);
    json_t *run = load_json(path, err);
    json_t *scan = run ? load_json(r->scan_json, err) : NULL;
    json_t *master = scan && r->master_json ? load_json(r->master_json, err) : NULL;
    if (!run || !scan || (r->master_json && !master)) {
        json_decref(run);
        json_decref(scan);
        return err->code;
    }
    json_t *opt = dig(run, "options", "optimizer", NULL);
    const char *oname = json_string_value(json_object_get(opt, "name"));
    double lr = num(json_object_get(opt, "lr"));
    double lora = num(dig(run, "options", "lora_rank", NULL));
    double params = num(json_object_get(run, "parameters"));
    double trainable = num(json_object_get(run, "trainable_parameters"));
    if (isnan(trainable))
        trainable = params;

    char e0[32], e1[32], r0[32], r1[32], sp[32], st[32], sr[32], sm[32], er[32], nr[32],
        os[32], rss[32], tp[32];
    fmt(e0, sizeof e0, "%.3f", m.eval_first);
    fmt(e1, sizeof e1, "%.3f", m.eval_last);
    fmt(r0, sizeof r0, "%.3f", m.reward_first);
    fmt(r1, sizeof r1, "%.3f", m.reward_last);
    fmt_sparsity(sp, sizeof sp, num(dig(scan, "totals", "sparsity", NULL)));
    /* The first absolute tolerance, as a sparsity. */
    double numel = num(dig(scan, "totals", "numel", NULL));
    json_t *tols = dig(scan, "totals", "changed_tol", NULL);
    const char *tkey = NULL;
    json_t *tval;
    json_object_foreach(tols, tkey, tval) break;
    fmt_sparsity(st, sizeof st, tkey ? 1.0 - num(tval) / numel : NAN);
    double rt = num(dig(scan, "totals", "changed_rtol", NULL));
    fmt_sparsity(sr, sizeof sr, 1.0 - rt / numel);
    fmt_sparsity(sm, sizeof sm, master ? num(dig(master, "totals", "sparsity", NULL)) : NAN);
    /* The 99%-energy rank as a share of min(m, n), averaged over the matrices. */
    double frac = 0.0;
    size_t nmat = 0, ti;
    json_t *rt_;
    json_array_foreach(dig(scan, "rank", "tensors", NULL), ti, rt_) {
        double mm = num(json_object_get(rt_, "m")), nn = num(json_object_get(rt_, "n"));
        double e99 = num(json_object_get(rt_, "effective_rank_99"));
        if (!isnan(mm) && !isnan(nn) && !isnan(e99) && mm > 0 && nn > 0) {
            frac += e99 / (mm < nn ? mm : nn);
            nmat++;
        }
    }
    fmt(er, sizeof er, "%.1f%%", nmat ? 100.0 * frac / nmat : NAN);
    fmt(nr, sizeof nr, "%.3f",
        num(dig(scan, "rank", "model", "mean_numerical_rank_fraction", NULL)));
    fmt_bytes(os, sizeof os, m.opt_state_bytes);
    fmt_bytes(rss, sizeof rss, m.peak_rss_bytes);
    fmt(tp, sizeof tp, "%.0f", trainable);
    char optdesc[96];
    if (!isnan(lora))
        snprintf(optdesc, sizeof optdesc, "%s %.3g, LoRA r=%.0f", oname ? oname : "?", lr, lora);
    else
        snprintf(optdesc, sizeof optdesc, "%s %.3g", oname ? oname : "?", lr);
    fprintf(out, "| %s | %s | %s | %s | %s → %s | %s → %s | %s | %s | %s | %s | %s / %s | %s |\n",
            r->label, optdesc, tp, os, e0, e1, r0, r1, sp, st, sr, sm, er, nr, rss);
    json_decref(run);
    json_decref(scan);
    json_decref(master);
    return 0;
}

static int overlap_section(FILE *out, const StudyReport *r, SsError *err)
{
    json_t *j = load_json(r->overlap_json, err);
    if (!j)
        return err->code;
    fprintf(out, "\n## Overlap of the changed sets\n\n"
                 "From `sparsity-overlap` on the runs' masks (exactly changed bf16 weights). o1 = "
                 "|X∩Y|/|X|, o2 = |X∩Y|/|Y|, J = |X∩Y|/|X∪Y|; \"random\" is what independent sets "
                 "of the same sizes would give.\n\n"
                 "| X | Y | o1 (random) | o2 (random) | Jaccard (random) |\n|---|---|---|---|---|\n");
    json_t *runs = json_object_get(j, "runs");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(j, "pairs"), i, p) {
        json_t *o = json_object_get(p, "overall");
        size_t a = (size_t)json_integer_value(json_object_get(p, "i"));
        size_t b = (size_t)json_integer_value(json_object_get(p, "j"));
        const char *la = a < r->nruns ? r->runs[a].label
                                      : json_string_value(dig(json_array_get(runs, a), "b", NULL));
        const char *lb = b < r->nruns ? r->runs[b].label
                                      : json_string_value(dig(json_array_get(runs, b), "b", NULL));
        char c[6][32];
        const char *keys[6] = {"o1", "o1_random", "o2", "o2_random", "jaccard", "jaccard_random"};
        for (int k = 0; k < 6; k++)
            fmt(c[k], sizeof c[k], "%.4f", num(json_object_get(o, keys[k])));
        fprintf(out, "| %s | %s | %s (%s) | %s (%s) | %s (%s) |\n", la ? la : "?", lb ? lb : "?",
                c[0], c[1], c[2], c[3], c[4], c[5]);
    }
    json_decref(j);
    return 0;
}

static int compare_section(FILE *out, const StudyReport *r, SsError *err)
{
    fprintf(out, "\n## Comparing updates (`sparsity-compare`)\n\n"
                 "Cosine of the two updates ΔW over all matrices (parameter-weighted), and the mean "
                 "overlap ‖U_Xᵀ U_Y‖²/k of their top-k left singular subspaces against a random "
                 "subspace's.\n\n"
                 "| comparison | cosine | mean left-subspace overlap (random) | matrices |\n"
                 "|---|---|---|---|\n");
    for (size_t i = 0; i < r->ncompares; i++) {
        json_t *j = load_json(r->compares[i].json, err);
        if (!j)
            return err->code;
        json_t *m = json_object_get(j, "model");
        char c[3][32];
        fmt(c[0], sizeof c[0], "%.4f", num(json_object_get(m, "cosine")));
        fmt(c[1], sizeof c[1], "%.4f", num(json_object_get(m, "mean_left_overlap")));
        fmt(c[2], sizeof c[2], "%.4f", num(json_object_get(m, "mean_left_random")));
        fprintf(out, "| %s | %s | %s (%s) | %.0f |\n", r->compares[i].label, c[0], c[1], c[2],
                num(json_object_get(m, "nmatrices")));
        json_decref(j);
    }
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int figures_section(FILE *out, const StudyReport *r, SsError *err)
{
    DIR *d = opendir(r->figures_dir);
    if (!d)
        return ss_err(err, SS_EINPUT, "%s: cannot open the figures folder: %s", r->figures_dir,
                      strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        bool img = len > 4 && (strcmp(e->d_name + len - 4, ".png") == 0 ||
                               strcmp(e->d_name + len - 4, ".svg") == 0);
        if (!img)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **g = realloc(names, cap * sizeof *g);
            if (!g) {
                rc = ss_err(err, SS_EOUTPUT, "out of memory");
                break;
            }
            names = g;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = ss_err(err, SS_EOUTPUT, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0) {
        qsort(names, n, sizeof *names, name_cmp);
        fprintf(out, "\n## Figures\n\nDrawn by `sparsity-plot` (data and gnuplot scripts in "
                     "`%s/data` and `%s/scripts`).\n\n", r->figures_link, r->figures_link);
        for (size_t i = 0; i < n; i++) {
            char title[256];
            snprintf(title, sizeof title, "%s", names[i]);
            title[strlen(title) - 4] = '\0';
            fprintf(out, "### %s\n\n![%s](%s/%s)\n\n", title, title, r->figures_link, names[i]);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int write_body(FILE *out, const StudyReport *r, SsError *err)
{
    fprintf(out, "# %s\n\n", r->title);
    if (r->intro)
        fprintf(out, "%s\n\n", r->intro);
    fprintf(out,
            "## Runs\n\n"
            "Eval accuracy: greedy decoding on held-out problems, at the first and the last "
            "evaluation. Reward: mean training reward over the first and the last 10 steps. "
            "Sparsity: share of bf16 weights bit-identical between the base and the last "
            "snapshot (exact), changed by at most the first `--tol` (absolute), or by at most "
            "`--rtol` relative; \"float32 master\": the same on the float32 master weights, which "
            "bf16 rounding hides. Effective rank: mean over matrices of the 99%%-energy rank of "
            "ΔW as a share of min(m, n), and the mean numerical-rank fraction.\n\n"
            "| run | optimizer | trainable parameters | optimizer state | eval accuracy | "
            "training reward | exact sparsity | sparsity at tol | sparsity at rtol | float32 "
            "master exact sparsity | effective rank / numerical rank fraction | peak RSS |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    int rc = 0;
    for (size_t i = 0; i < r->nruns && !rc; i++)
        rc = run_row(out, &r->runs[i], err);
    if (!rc) {
        json_t *scan = load_json(r->runs[0].scan_json, err);
        if (!scan)
            return err->code;
        fprintf(out, "\nTolerances given to sparsity-scan: `--tol`");
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(scan, "tolerances"), i, t)
            fprintf(out, "%s%g", i ? "," : " ", num(t));
        fprintf(out, ", `--rtol` %g.\n", num(json_object_get(scan, "rtol")));
        json_decref(scan);
    }
    if (!rc && r->overlap_json)
        rc = overlap_section(out, r, err);
    if (!rc && r->ncompares)
        rc = compare_section(out, r, err);
    if (!rc && r->figures_dir)
        rc = figures_section(out, r, err);
    return rc;
}

int study_report_write(const StudyReport *r, const char *path, SsError *err)
{
    char *tmp = atomic_tmp_path(path);
    if (!tmp)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    FILE *f = fopen(tmp, "w");
    int rc;
    if (!f) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        rc = write_body(f, r, err);
        bool bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
        bad |= fclose(f) != 0;
        if (rc == 0 && (bad || rename(tmp, path) != 0))
            rc = ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", path, strerror(errno));
        if (rc)
            unlink(tmp);
        else
            atomic_sync_dir(path);
    }
    free(tmp);
    return rc;
}
