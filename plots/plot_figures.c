/* The figures of sparsity-plot (see plot_figures.h and docs/sparsity-plot.md). Each fig_*
 * function gathers its numbers from the inputs, writes them as whitespace-separated columns under
 * FIGDIR/data/ (a commented header names the columns and their units), and hands the file names,
 * run labels and a few scalars to its gnuplot script. Sparsity near 1 is shown as the changed
 * fraction 1 - sparsity, on a log axis when the values span more than a factor 20. */
#include "plots/plot_figures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* Adds one word to a gnuplot word list: "w" (double quotes and backslashes become '_'). */
static void words_add(StrBuf *b, const char *w)
{
    if (b->len)
        sb_add(b, " ");
    sb_add(b, "\"");
    for (const char *p = w; *p; p++)
        sb_add(b, "%c", (*p == '"' || *p == '\\' || *p == '\'') ? '_' : *p);
    sb_add(b, "\"");
}

typedef struct Range {
    double lo, hi; /* smallest and largest positive finite values seen */
} Range;

static Range range_new(void)
{
    return (Range){INFINITY, 0};
}

static void range_add(Range *r, double v)
{
    if (isfinite(v) && v > 0) {
        if (v < r->lo)
            r->lo = v;
        if (v > r->hi)
            r->hi = v;
    }
}

static int range_log(Range r)
{
    return r.hi > 0 && r.hi / r.lo >= 20;
}

/* "99.9905%": the sparsity with enough decimals that 1 - s shows three significant digits. */
static void fmt_sparsity(double s, char *out, size_t len)
{
    double changed = (1 - s) * 100;
    if (!isfinite(s)) {
        snprintf(out, len, "-");
        return;
    }
    if (changed <= 0) {
        snprintf(out, len, "100%%");
        return;
    }
    int dec = 2 - (int)floor(log10(changed));
    if (dec < 1)
        dec = 1;
    if (dec > 10)
        dec = 10;
    snprintf(out, len, "%.*f%%", dec, s * 100);
}

static double frac(double part, double whole)
{
    return whole > 0 ? part / whole : NAN;
}

/* Reads dataset obj of in's report. */
static int rd(PlotInput *in, const char *obj, PlotArray *a, SsError *err)
{
    return ph5_dataset(&in->h5, obj, a, err);
}

static int rd_strings(PlotInput *in, const char *obj, size_t *n, char ***v, SsError *err)
{
    return h5r_strings(in->h5.r, obj, n, v, err);
}

/* The HDF5 member name of a tensor (docs/hdf5-schema.md, /masks): '%' -> %25, '/' -> %2F. */
static void h5_escape(const char *name, char *out, size_t len)
{
    size_t j = 0;
    for (const char *p = name; *p && j + 4 < len; p++) {
        if (*p == '%') {
            memcpy(out + j, "%25", 3);
            j += 3;
        } else if (*p == '/') {
            memcpy(out + j, "%2F", 3);
            j += 3;
        } else {
            out[j++] = *p;
        }
    }
    out[j] = '\0';
}

static size_t count_kind(const PlotCtx *c, PlotInKind k)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++)
        n += c->in[i].kind == k;
    return n;
}

/* A short tensor name for file names and titles: "model.layers." dropped, ".weight" dropped. */
static void short_tensor(const char *name, char *out, size_t len)
{
    const char *p = name;
    if (strncmp(p, "model.layers.", 13) == 0)
        p += 13;
    else if (strncmp(p, "model.", 6) == 0)
        p += 6;
    snprintf(out, len, "%s", p);
    size_t n = strlen(out);
    if (n > 7 && strcmp(out + n - 7, ".weight") == 0)
        out[n - 7] = '\0';
}

/* Module order of a report's /layers/module (or any list) for xtics: "\"q_proj\" \"k_proj\"". */
static void module_words(char **mods, size_t n, const int *keep, StrBuf *b)
{
    for (size_t i = 0; i < n; i++)
        if (!keep || keep[i])
            words_add(b, mods[i]);
}

/* ---- training dynamics and validation accuracy (run folders) ---- */

static int fig_training(PlotCtx *c, SsError *err)
{
    StrBuf files = {0}, titles = {0}, vars = {0};
    int rc = 0, has[4] = {0, 0, 0, 0};
    size_t nruns = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_RUN)
            continue;
        if (!in->m.present) {
            pout_skip(c->o, "training", "%s: no metrics.jsonl", in->path);
            continue;
        }
        if (!in->m.nstep) {
            pout_skip(c->o, "training", "%s/metrics.jsonl: no step lines", in->path);
            continue;
        }
        char name[200];
        snprintf(name, sizeof name, "training-%s.dat", in->flabel);
        DataFile d;
        char header[512];
        snprintf(header, sizeof header,
                 "training dynamics of run %s (from %s/metrics.jsonl)\n"
                 "step  reward_mean  kl(k3, nats)  entropy(nats/token)  resp_len_mean(tokens)",
                 in->label, in->path);
        if ((rc = pd_open(c->o, &d, name, header, err)) != 0)
            break;
        for (size_t s = 0; s < in->m.nstep; s++) {
            pd_num(d.f, in->m.step[s]);
            double v[4] = {in->m.reward[s], in->m.kl[s], in->m.entropy[s], in->m.resp_len[s]};
            for (int k = 0; k < 4; k++) {
                fputc(' ', d.f);
                pd_num(d.f, v[k]);
                has[k] |= isfinite(v[k]);
            }
            fputc('\n', d.f);
        }
        rc = pd_close(&d, err);
        words_add(&files, d.rel);
        words_add(&titles, in->label);
        pd_free(&d);
        nruns++;
    }
    if (!rc && !nruns && !count_kind(c, PIN_RUN))
        pout_skip(c->o, "training", "no run folder (RUN/ with metrics.jsonl) among the inputs");
    if (!rc && nruns) {
        pv_str(&vars, "files", files.s);
        pv_str(&vars, "titles", titles.s);
        char hs[32];
        snprintf(hs, sizeof hs, "%d %d %d %d", has[0], has[1], has[2], has[3]);
        pv_str(&vars, "has", hs);
        char note[64];
        snprintf(note, sizeof note, "%zu run%s", nruns, nruns == 1 ? "" : "s");
        rc = pout_draw(c->o, "training", "training", &vars, note, err);
    }
    sb_free(&files);
    sb_free(&titles);
    sb_free(&vars);
    return rc;
}

static int fig_eval(PlotCtx *c, SsError *err)
{
    StrBuf files = {0}, titles = {0}, vars = {0};
    int rc = 0;
    size_t nruns = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_RUN || !in->m.present)
            continue;
        if (!in->m.neval) {
            pout_skip(c->o, "eval_acc", "%s/metrics.jsonl: no eval_acc lines", in->path);
            continue;
        }
        char name[200], header[512];
        snprintf(name, sizeof name, "eval_acc-%s.dat", in->flabel);
        snprintf(header, sizeof header,
                 "validation accuracy of run %s (from %s/metrics.jsonl)\n"
                 "step  eval_acc(fraction correct, greedy decoding)", in->label, in->path);
        DataFile d;
        if ((rc = pd_open(c->o, &d, name, header, err)) != 0)
            break;
        for (size_t s = 0; s < in->m.neval; s++) {
            pd_num(d.f, in->m.eval_step[s]);
            fputc(' ', d.f);
            pd_num(d.f, in->m.eval_acc[s]);
            fputc('\n', d.f);
        }
        rc = pd_close(&d, err);
        words_add(&files, d.rel);
        words_add(&titles, in->label);
        pd_free(&d);
        nruns++;
    }
    if (!rc && !nruns && !count_kind(c, PIN_RUN))
        pout_skip(c->o, "eval_acc", "no run folder (RUN/ with metrics.jsonl) among the inputs");
    if (!rc && nruns) {
        pv_str(&vars, "files", files.s);
        pv_str(&vars, "titles", titles.s);
        rc = pout_draw(c->o, "eval_acc", "eval_acc", &vars, NULL, err);
    }
    sb_free(&files);
    sb_free(&titles);
    sb_free(&vars);
    return rc;
}

/* ---- update sparsity per run (scan reports) ---- */

#define MAX_MEASURES 34

static int fig_sparsity(PlotCtx *c, SsError *err)
{
    if (!count_kind(c, PIN_SCAN)) {
        pout_skip(c->o, "sparsity", "no sparsity-scan report (IN.h5 of sparsity-scan --h5)");
        return 0;
    }
    /* The measures: exact, then every tolerance key in order of first appearance, then rtol. */
    char measures[MAX_MEASURES][48];
    size_t nm = 1;
    snprintf(measures[0], sizeof measures[0], "exact");
    int rc = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_SCAN)
            continue;
        size_t nk = 0;
        char **keys = NULL;
        if ((rc = h5r_attr_strings(in->h5.r, "/", "tolerance_keys", &nk, &keys, err)) != 0)
            break;
        for (size_t k = 0; k < nk; k++) {
            char m[48];
            snprintf(m, sizeof m, "|d|>%s", keys[k]);
            size_t j = 0;
            while (j < nm && strcmp(measures[j], m) != 0)
                j++;
            if (j == nm && nm < MAX_MEASURES - 1)
                snprintf(measures[nm++], sizeof measures[0], "%s", m);
        }
        h5r_free_strings(nk, keys);
        double rtol;
        if (h5r_attr_exists(in->h5.r, "/", "rtol") &&
            ph5_attr_f64(&in->h5, "/", "rtol", &rtol, err) == 0) {
            char m[48];
            snprintf(m, sizeof m, "|d|>%g*max", rtol);
            size_t j = 0;
            while (j < nm && strcmp(measures[j], m) != 0)
                j++;
            if (j == nm && nm < MAX_MEASURES)
                snprintf(measures[nm++], sizeof measures[0], "%s", m);
        }
    }
    if (rc)
        return rc;

    DataFile d;
    StrBuf vars = {0}, mw = {0}, runs = {0};
    if ((rc = pd_open(c->o, &d, "sparsity.dat",
                      "update sparsity per run (sparsity-scan totals over all compared tensors)\n"
                      "run_index  measure_index  changed_fraction(1-sparsity)  changed  numel  "
                      "sparsity_label  run  measure\n"
                      "measures: exact = stored bits differ; |d|>T = |B-A| > T (--tol); "
                      "|d|>E*max = |B-A| > E*max(|A|,|B|) (--rtol)", err)) != 0)
        return rc;
    Range r = range_new();
    size_t run = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_SCAN)
            continue;
        double numel, changed;
        PlotArray tol = {0};
        size_t nk = 0;
        char **keys = NULL;
        if ((rc = ph5_attr_f64(&in->h5, "totals", "numel", &numel, err)) ||
            (rc = ph5_attr_f64(&in->h5, "totals", "changed", &changed, err)) ||
            (rc = ph5_attr(&in->h5, "totals", "changed_tol", &tol, err)) ||
            (rc = h5r_attr_strings(in->h5.r, "/", "tolerance_keys", &nk, &keys, err)))
            break;
        for (size_t m = 0; m < nm; m++) {
            double ch = NAN;
            if (m == 0)
                ch = changed;
            for (size_t k = 0; k < nk && k < tol.n; k++) {
                char key[48];
                snprintf(key, sizeof key, "|d|>%s", keys[k]);
                if (strcmp(key, measures[m]) == 0)
                    ch = tol.v[k];
            }
            double rtol, crt;
            if (strstr(measures[m], "*max") && h5r_attr_exists(in->h5.r, "/", "rtol") &&
                ph5_attr_f64(&in->h5, "/", "rtol", &rtol, err) == 0 &&
                ph5_attr_f64(&in->h5, "totals", "changed_rtol", &crt, err) == 0) {
                char key[48];
                snprintf(key, sizeof key, "|d|>%g*max", rtol);
                if (strcmp(key, measures[m]) == 0)
                    ch = crt;
            }
            double fr = frac(ch, numel);
            range_add(&r, fr);
            char lab[48];
            if (isnan(ch))
                snprintf(lab, sizeof lab, "-");
            else
                fmt_sparsity(1 - fr, lab, sizeof lab);
            fprintf(d.f, "%zu %zu ", run, m);
            pd_num(d.f, fr);
            fputc(' ', d.f);
            pd_num(d.f, ch);
            fputc(' ', d.f);
            pd_num(d.f, numel);
            fprintf(d.f, " %s %s %s\n", lab, in->label, measures[m]);
        }
        h5r_free_strings(nk, keys);
        plot_array_free(&tol);
        words_add(&runs, in->label);
        run++;
    }
    if (!rc)
        rc = pd_close(&d, err);
    if (!rc) {
        for (size_t m = 0; m < nm; m++) {
            char t[96];
            const char *x = measures[m] + 4; /* after "|d|>" */
            if (m == 0)
                snprintf(t, sizeof t, "exact (stored bits differ)");
            else if (strstr(measures[m], "*max"))
                snprintf(t, sizeof t, "|ΔW| > %.*s·max(|A|,|B|)", (int)(strlen(x) - 4), x);
            else
                snprintf(t, sizeof t, "|ΔW| > %s", x);
            words_add(&mw, t);
        }
        pv_str(&vars, "file", d.rel);
        pv_str(&vars, "runs", runs.s);
        pv_str(&vars, "measures", mw.s);
        pv_int(&vars, "logy", range_log(r));
        pv_num(&vars, "ymin", r.hi > 0 ? pow(10, floor(log10(r.lo * 100)) - 1) : 1e-6);
        pv_num(&vars, "ymax", r.hi > 0 ? r.hi * 100 : 1);
        rc = pout_draw(c->o, "sparsity", "sparsity", &vars, NULL, err);
    }
    pd_free(&d);
    sb_free(&vars);
    sb_free(&mw);
    sb_free(&runs);
    return rc;
}

/* ---- series: sparsity vs step, consecutive; the never / restored / final split ---- */

static int fig_series(PlotCtx *c, SsError *err)
{
    if (!count_kind(c, PIN_SERIES)) {
        pout_skip(c->o, "series", "no sparsity-series report (sparsity-scan --series RUN --h5)");
        return 0;
    }
    StrBuf files = {0}, titles = {0}, vars = {0};
    int rc = 0;
    size_t nruns = 0;
    Range r = range_new();
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_SERIES)
            continue;
        PlotArray step = {0}, cb = {0}, cc = {0};
        double numel;
        if ((rc = rd(in, "series/step", &step, err)) ||
            (rc = rd(in, "series/changed_vs_base", &cb, err)) ||
            (rc = rd(in, "series/changed_consecutive", &cc, err)) ||
            (rc = ph5_attr_f64(&in->h5, "series", "numel", &numel, err))) {
            plot_array_free(&step);
            plot_array_free(&cb);
            plot_array_free(&cc);
            break;
        }
        if (cb.n != step.n || cc.n != step.n)
            rc = ss_err(err, SS_EINPUT, "%s: /series: datasets of different lengths", in->path);
        char name[200], header[512];
        snprintf(name, sizeof name, "series-%s.dat", in->flabel);
        snprintf(header, sizeof header,
                 "sparsity over the snapshots of run %s (%s: /series; %.0f elements)\n"
                 "step  changed_fraction_vs_base  changed_fraction_consecutive  changed_vs_base  "
                 "changed_consecutive  sparsity_vs_base  sparsity_consecutive", in->label,
                 in->path, numel);
        DataFile d;
        if (!rc && (rc = pd_open(c->o, &d, name, header, err)) == 0) {
            for (size_t s = 0; s < step.n; s++) {
                double fb = frac(cb.v[s], numel), fc = frac(cc.v[s], numel);
                range_add(&r, fb);
                range_add(&r, fc);
                double v[7] = {step.v[s], fb, fc, cb.v[s], cc.v[s], 1 - fb, 1 - fc};
                for (int k = 0; k < 7; k++) {
                    if (k)
                        fputc(' ', d.f);
                    pd_num(d.f, v[k]);
                }
                fputc('\n', d.f);
            }
            rc = pd_close(&d, err);
            words_add(&files, d.rel);
            words_add(&titles, in->label);
            pd_free(&d);
            nruns++;
        }
        plot_array_free(&step);
        plot_array_free(&cb);
        plot_array_free(&cc);
    }
    if (!rc && nruns) {
        pv_str(&vars, "files", files.s);
        pv_str(&vars, "titles", titles.s);
        pv_int(&vars, "logy", range_log(r));
        rc = pout_draw(c->o, "series", "series", &vars, NULL, err);
    }
    sb_free(&files);
    sb_free(&titles);
    sb_free(&vars);
    return rc;
}

static int fig_split(PlotCtx *c, SsError *err)
{
    int rc = 0;
    if (!count_kind(c, PIN_SERIES))
        pout_skip(c->o, "split", "no sparsity-series report (the never / restored / final split "
                  "comes from sparsity-scan --series RUN --h5)");
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_SERIES)
            continue;
        char fig[200];
        snprintf(fig, sizeof fig, "split-%s", in->flabel);
        if (!ph5_exists(&in->h5, "split/modules/module")) {
            pout_skip(c->o, fig, "%s has no /split (the never / restored / final split)",
                      in->path);
            continue;
        }
        size_t nmod = 0;
        char **mods = NULL;
        PlotArray num = {0}, nev = {0}, res = {0}, fin = {0};
        double t[4];
        if ((rc = rd_strings(in, "split/modules/module", &nmod, &mods, err)) ||
            (rc = rd(in, "split/modules/numel", &num, err)) ||
            (rc = rd(in, "split/modules/never", &nev, err)) ||
            (rc = rd(in, "split/modules/restored", &res, err)) ||
            (rc = rd(in, "split/modules/final", &fin, err)) ||
            (rc = ph5_attr_f64(&in->h5, "split", "numel", &t[0], err)) ||
            (rc = ph5_attr_f64(&in->h5, "split", "never", &t[1], err)) ||
            (rc = ph5_attr_f64(&in->h5, "split", "restored", &t[2], err)) ||
            (rc = ph5_attr_f64(&in->h5, "split", "final", &t[3], err)))
            goto next;
        if (num.n != nmod || nev.n != nmod || res.n != nmod || fin.n != nmod) {
            rc = ss_err(err, SS_EINPUT, "%s: /split/modules: datasets of different lengths",
                        in->path);
            goto next;
        }
        char name[220], header[512];
        snprintf(name, sizeof name, "%s.dat", fig);
        snprintf(header, sizeof header,
                 "never / restored / final split of run %s (%s: /split), per module and overall "
                 "(the last row)\nindex  module  numel  never  restored  final  never_fraction  "
                 "restored_fraction  final_fraction", in->label, in->path);
        DataFile d;
        if ((rc = pd_open(c->o, &d, name, header, err)) != 0)
            goto next;
        Range r = range_new();
        size_t row = 0;
        StrBuf rows = {0};
        for (size_t m = 0; m <= nmod; m++) {
            double v[4];
            const char *mod = m < nmod ? mods[m] : "all";
            if (m < nmod) {
                v[0] = num.v[m], v[1] = nev.v[m], v[2] = res.v[m], v[3] = fin.v[m];
                if (v[0] <= 0)
                    continue;
            } else {
                memcpy(v, t, sizeof v);
            }
            fprintf(d.f, "%zu %s", row++, mod);
            words_add(&rows, mod);
            for (int k = 0; k < 4; k++) {
                fputc(' ', d.f);
                pd_num(d.f, v[k]);
            }
            for (int k = 1; k < 4; k++) {
                fputc(' ', d.f);
                pd_num(d.f, frac(v[k], v[0]));
                range_add(&r, frac(v[k], v[0]));
            }
            fputc('\n', d.f);
        }
        rc = pd_close(&d, err);
        if (!rc) {
            StrBuf vars = {0};
            char note[160];
            snprintf(note, sizeof note, "never %.4g%%, restored %.4g%%, final %.4g%%",
                     100 * frac(t[1], t[0]), 100 * frac(t[2], t[0]), 100 * frac(t[3], t[0]));
            pv_str(&vars, "file", d.rel);
            pv_str(&vars, "label", in->label);
            pv_str(&vars, "summary", note);
            pv_str(&vars, "rows", rows.s);
            pv_int(&vars, "logy", range_log(r));
            rc = pout_draw(c->o, "split", fig, &vars, note, err);
            sb_free(&vars);
        }
        sb_free(&rows);
        pd_free(&d);
    next:
        h5r_free_strings(nmod, mods);
        plot_array_free(&num);
        plot_array_free(&nev);
        plot_array_free(&res);
        plot_array_free(&fin);
    }
    return rc;
}

/* ---- layer x module heat map and per-layer lines (scan reports) ---- */

static int fig_layers(PlotCtx *c, SsError *err)
{
    if (!count_kind(c, PIN_SCAN)) {
        pout_skip(c->o, "layers", "no sparsity-scan report");
        return 0;
    }
    int rc = 0;
    StrBuf files = {0}, titles = {0};
    Range rl = range_new();
    size_t nlines = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_SCAN)
            continue;
        PlotArray layer = {0}, sp = {0}, lsp = {0}, lmm = {0};
        size_t nmod = 0;
        char **mods = NULL;
        int *keep = NULL;
        if ((rc = rd(in, "layers/layer", &layer, err)) ||
            (rc = rd(in, "layers/sparsity", &sp, err)) ||
            (rc = rd(in, "layers/layer_sparsity", &lsp, err)) ||
            (rc = rd(in, "layers/layer_mean_matrix_sparsity", &lmm, err)) ||
            (rc = rd_strings(in, "layers/module", &nmod, &mods, err)))
            goto next;
        size_t L = layer.n;
        if (sp.rank != 2 || sp.dims[0] != L || sp.dims[1] != nmod || lsp.n != L || lmm.n != L) {
            rc = ss_err(err, SS_EINPUT, "%s: /layers: datasets of inconsistent shapes", in->path);
            goto next;
        }
        /* Only the layers >= 0 (the transformer blocks) and the modules present in them. */
        keep = calloc(nmod ? nmod : 1, sizeof *keep);
        if (!keep) {
            rc = ss_err(err, SS_EOUTPUT, "out of memory");
            goto next;
        }
        size_t nl = 0, nk = 0;
        for (size_t l = 0; l < L; l++) {
            if (layer.v[l] < 0)
                continue;
            nl++;
            for (size_t m = 0; m < nmod; m++)
                if (!isnan(sp.v[l * nmod + m]))
                    keep[m] = 1;
        }
        for (size_t m = 0; m < nmod; m++)
            nk += keep[m];
        char fig[200];
        snprintf(fig, sizeof fig, "layers-%s", in->flabel);
        if (!nl || !nk) {
            pout_skip(c->o, fig, "%s: no tensors in layers >= 0", in->path);
            goto next;
        }
        /* the heat map */
        char name[220], header[600];
        snprintf(name, sizeof name, "%s.dat", fig);
        snprintf(header, sizeof header,
                 "layer x module sparsity of run %s (%s: /layers/sparsity, parameter-weighted; "
                 "layers >= 0)\nlayer  module_index  changed_fraction(1-sparsity)  sparsity  "
                 "module   (NaN: the layer has no such module)", in->label, in->path);
        DataFile d;
        if ((rc = pd_open(c->o, &d, name, header, err)) != 0)
            goto next;
        Range r = range_new();
        for (size_t l = 0; l < L; l++) {
            if (layer.v[l] < 0)
                continue;
            size_t col = 0;
            for (size_t m = 0; m < nmod; m++) {
                if (!keep[m])
                    continue;
                double s = sp.v[l * nmod + m];
                range_add(&r, 1 - s);
                fprintf(d.f, "%.0f %zu ", layer.v[l], col++);
                pd_num(d.f, 1 - s);
                fputc(' ', d.f);
                pd_num(d.f, s);
                fprintf(d.f, " %s\n", mods[m]);
            }
            fputc('\n', d.f);
        }
        rc = pd_close(&d, err);
        if (!rc) {
            StrBuf vars = {0}, mw = {0};
            module_words(mods, nmod, keep, &mw);
            pv_str(&vars, "file", d.rel);
            pv_str(&vars, "label", in->label);
            pv_str(&vars, "modules", mw.s);
            pv_int(&vars, "logcb", range_log(r));
            pv_int(&vars, "cells", (long long)(nl * nk));
            rc = pout_draw(c->o, "layer_heatmap", fig, &vars, NULL, err);
            sb_free(&vars);
            sb_free(&mw);
        }
        pd_free(&d);
        if (rc)
            goto next;
        /* the per-layer lines */
        snprintf(name, sizeof name, "layer_lines-%s.dat", in->flabel);
        snprintf(header, sizeof header,
                 "per-layer sparsity of run %s (%s: /layers; layers >= 0)\n"
                 "layer  changed_fraction_weighted  changed_fraction_mean_matrix  "
                 "layer_sparsity(parameter-weighted)  layer_mean_matrix_sparsity(unweighted)",
                 in->label, in->path);
        if ((rc = pd_open(c->o, &d, name, header, err)) != 0)
            goto next;
        for (size_t l = 0; l < L; l++) {
            if (layer.v[l] < 0)
                continue;
            double v[5] = {layer.v[l], 1 - lsp.v[l], 1 - lmm.v[l], lsp.v[l], lmm.v[l]};
            range_add(&rl, v[1]);
            range_add(&rl, v[2]);
            for (int k = 0; k < 5; k++) {
                if (k)
                    fputc(' ', d.f);
                pd_num(d.f, v[k]);
            }
            fputc('\n', d.f);
        }
        rc = pd_close(&d, err);
        words_add(&files, d.rel);
        words_add(&titles, in->label);
        nlines++;
        pd_free(&d);
    next:
        free(keep);
        h5r_free_strings(nmod, mods);
        plot_array_free(&layer);
        plot_array_free(&sp);
        plot_array_free(&lsp);
        plot_array_free(&lmm);
    }
    if (!rc && nlines) {
        StrBuf vars = {0};
        pv_str(&vars, "files", files.s);
        pv_str(&vars, "titles", titles.s);
        pv_int(&vars, "logy", range_log(rl));
        rc = pout_draw(c->o, "layer_lines", "layer_lines", &vars, NULL, err);
        sb_free(&vars);
    }
    sb_free(&files);
    sb_free(&titles);
    return rc;
}

/* ---- tensor selection for maps and spectra ---- */

typedef struct TensorList {
    size_t n;
    char **names;
} TensorList;

static void tl_free(TensorList *t)
{
    h5r_free_strings(t->n, t->names);
    memset(t, 0, sizeof *t);
}

/* The tensors to draw from group (whose members are escaped tensor names): --tensor's names
 * present there, or those of modules[] in the middle layer (layers >= 0 of /tensors). */
static int select_tensors(PlotCtx *c, PlotInput *in, const char *group, const char *what,
                          const char *const *modules, TensorList *out, SsError *err)
{
    memset(out, 0, sizeof *out);
    size_t nt = 0;
    char **names = NULL;
    PlotArray layer = {0};
    int rc = 0;
    char **pick = calloc(c->ntensors > 16 ? c->ntensors : 16, sizeof *pick);
    if (!pick)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    size_t np = 0;
    char path[1200], esc[1024];
    if (c->ntensors) {
        for (size_t k = 0; k < c->ntensors; k++) {
            h5_escape(c->tensors[k], esc, sizeof esc);
            snprintf(path, sizeof path, "%s/%s", group, esc);
            if (ph5_exists(&in->h5, path))
                pick[np++] = strdup(c->tensors[k]);
            else
                pout_skip(c->o, what, "%s: no %s for tensor '%s'", in->path, group,
                          c->tensors[k]);
        }
    } else {
        if ((rc = rd_strings(in, "tensors/name", &nt, &names, err)) ||
            (rc = rd(in, "tensors/layer", &layer, err)))
            goto done;
        /* the middle one of the layers >= 0 present */
        long lmin = -1, lmax = -1;
        for (size_t i = 0; i < layer.n; i++)
            if (layer.v[i] >= 0) {
                if (lmin < 0 || layer.v[i] < lmin)
                    lmin = (long)layer.v[i];
                if (layer.v[i] > lmax)
                    lmax = (long)layer.v[i];
            }
        long mid = -1, best = -1;
        for (size_t i = 0; i < layer.n; i++) { /* the present layer nearest (lmin+lmax+1)/2 */
            if (layer.v[i] < 0)
                continue;
            long d = labs((long)layer.v[i] - (lmin + lmax + 1) / 2);
            if (best < 0 || d < best || (d == best && (long)layer.v[i] < mid)) {
                best = d;
                mid = (long)layer.v[i];
            }
        }
        for (size_t m = 0; modules[m] && np < 16; m++)
            for (size_t i = 0; i < nt && i < layer.n && np < 16; i++) {
                if ((long)layer.v[i] != mid || mid < 0)
                    continue;
                /* the module: the component before ".weight" */
                char comp[256];
                snprintf(comp, sizeof comp, ".%s.weight", modules[m]);
                size_t ln = strlen(names[i]), lc = strlen(comp);
                if (ln < lc || strcmp(names[i] + ln - lc, comp) != 0)
                    continue;
                h5_escape(names[i], esc, sizeof esc);
                snprintf(path, sizeof path, "%s/%s", group, esc);
                if (ph5_exists(&in->h5, path))
                    pick[np++] = strdup(names[i]);
            }
    }
    for (size_t k = 0; k < np; k++)
        if (!pick[k])
            rc = ss_err(err, SS_EOUTPUT, "out of memory");
done:
    h5r_free_strings(nt, names);
    plot_array_free(&layer);
    if (rc) {
        h5r_free_strings(np, pick);
        return rc;
    }
    out->n = np;
    out->names = pick;
    return 0;
}

/* ---- update maps (scan reports with /maps) ---- */

static const char *const attn_modules[] = {"q_proj", "k_proj", "v_proj", "o_proj", NULL};

static int fig_map_one(PlotCtx *c, PlotInput *in, const char *tensor, SsError *err)
{
    char esc[1024], g[1200], obj[1300], st[512], fig[700];
    h5_escape(tensor, esc, sizeof esc);
    snprintf(g, sizeof g, "maps/%s", esc);
    short_tensor(tensor, st, sizeof st);
    char fst[512];
    plot_file_label(st, fst, sizeof fst);
    snprintf(fig, sizeof fig, "map-%s-%s", in->flabel, fst);
    PlotArray rows = {0}, cols = {0}, dens = {0}, heads = {0};
    double R, C, changed, k, hd = 0;
    int rc;
    snprintf(obj, sizeof obj, "%s/row_changed", g);
    if ((rc = rd(in, obj, &rows, err)))
        goto done;
    snprintf(obj, sizeof obj, "%s/col_changed", g);
    if ((rc = rd(in, obj, &cols, err)))
        goto done;
    snprintf(obj, sizeof obj, "%s/density", g);
    if ((rc = rd(in, obj, &dens, err)))
        goto done;
    if ((rc = ph5_attr_f64(&in->h5, g, "rows", &R, err)) ||
        (rc = ph5_attr_f64(&in->h5, g, "cols", &C, err)) ||
        (rc = ph5_attr_f64(&in->h5, g, "changed", &changed, err)) ||
        (rc = ph5_attr_f64(&in->h5, g, "stripe_k", &k, err)))
        goto done;
    snprintf(obj, sizeof obj, "%s/head_fraction", g);
    if (ph5_exists(&in->h5, obj)) {
        if ((rc = rd(in, obj, &heads, err)) || (rc = ph5_attr_f64(&in->h5, g, "head_dim", &hd, err)))
            goto done;
    }
    if (rows.n != (size_t)R || cols.n != (size_t)C || dens.rank != 2) {
        rc = ss_err(err, SS_EINPUT, "%s: %s: shapes differ from rows/cols", in->path, g);
        goto done;
    }
    /* the four data files */
    const char *part[4] = {"rows", "cols", "density", "heads"};
    DataFile d[4];
    memset(d, 0, sizeof d);
    double mean = frac(changed, R * C);
    for (int p = 0; p < 4 && !rc; p++) {
        if (p == 3 && !heads.n)
            break;
        char name[800], header[1600];
        snprintf(name, sizeof name, "%s-%s.dat", fig, part[p]);
        static const char *const cols_doc[4] = {
            "row  row_changed  row_fraction_changed(row_changed/cols)",
            "column  col_changed  col_fraction_changed(col_changed/rows)",
            "density map: a matrix of cells (row i, column j) = fraction changed of the cell; "
            "cells split the rows and columns evenly (docs/metrics.md, Update maps)",
            "head  head_fraction_changed"};
        snprintf(header, sizeof header, "update map of %s in run %s (%s: /%s; %.0f x %.0f, "
                 "%.0f changed)\n%s", tensor, in->label, in->path, g, R, C, changed,
                 cols_doc[p]);
        if ((rc = pd_open(c->o, &d[p], name, header, err)))
            break;
        FILE *f = d[p].f;
        if (p == 0)
            for (size_t i = 0; i < rows.n; i++)
                fprintf(f, "%zu %.0f %.17g\n", i, rows.v[i], rows.v[i] / C);
        else if (p == 1)
            for (size_t j = 0; j < cols.n; j++)
                fprintf(f, "%zu %.0f %.17g\n", j, cols.v[j], cols.v[j] / R);
        else if (p == 2)
            for (size_t i = 0; i < dens.dims[0]; i++) {
                for (size_t j = 0; j < dens.dims[1]; j++) {
                    if (j)
                        fputc(' ', f);
                    fprintf(f, "%.6g", dens.v[i * dens.dims[1] + j]);
                }
                fputc('\n', f);
            }
        else
            for (size_t h = 0; h < heads.n; h++)
                fprintf(f, "%zu %.17g\n", h, heads.v[h]);
        rc = pd_close(&d[p], err);
    }
    if (!rc) {
        StrBuf vars = {0};
        char title[1200];
        snprintf(title, sizeof title, "%s, run %s", tensor, in->label);
        pv_str(&vars, "rowsfile", d[0].rel);
        pv_str(&vars, "colsfile", d[1].rel);
        pv_str(&vars, "densfile", d[2].rel);
        pv_str(&vars, "headsfile", heads.n ? d[3].rel : "");
        pv_str(&vars, "title", title);
        pv_num(&vars, "R", R);
        pv_num(&vars, "C", C);
        pv_int(&vars, "r", (long long)dens.dims[0]);
        pv_int(&vars, "c", (long long)dens.dims[1]);
        pv_num(&vars, "mean", mean);
        pv_num(&vars, "k", k);
        pv_num(&vars, "hd", hd);
        pv_int(&vars, "nh", (long long)heads.n);
        pv_str(&vars, "headaxis", strstr(tensor, "o_proj") ? "column" : "row");
        rc = pout_draw(c->o, "map", fig, &vars, NULL, err);
        sb_free(&vars);
    }
    for (int p = 0; p < 4; p++)
        pd_free(&d[p]);
done:
    plot_array_free(&rows);
    plot_array_free(&cols);
    plot_array_free(&dens);
    plot_array_free(&heads);
    return rc;
}

static int fig_maps(PlotCtx *c, SsError *err)
{
    if (!count_kind(c, PIN_SCAN)) {
        pout_skip(c->o, "map", "no sparsity-scan report");
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_SCAN)
            continue;
        char what[200];
        snprintf(what, sizeof what, "map-%s", in->flabel);
        if (!ph5_exists(&in->h5, "maps")) {
            pout_skip(c->o, what, "%s has no /maps (rerun sparsity-scan with --maps)", in->path);
            continue;
        }
        TensorList t;
        if ((rc = select_tensors(c, in, "maps", what, attn_modules, &t, err)))
            break;
        if (!t.n && !c->ntensors)
            pout_skip(c->o, what, "%s: no attention projection of the middle layer in /maps "
                      "(name tensors with --tensor)", in->path);
        for (size_t k = 0; k < t.n && !rc; k++)
            rc = fig_map_one(c, in, t.names[k], err);
        tl_free(&t);
    }
    return rc;
}

/* ---- tolerance curve (scan reports: /hist, or the tolerance counts) ---- */

/* Writes the tolerance curve of one histogram: changed at 2^k for every k over the used bins
 * (count, pow2 totals; exponent axis e[]) into d. Returns the number of rows. */
static size_t write_curve(FILE *f, const PlotArray *e, const PlotArray *count,
                          const PlotArray *pow2, double nonfinite, double numel, Range *r)
{
    size_t n = e->n, lo = n, hi = 0;
    for (size_t b = 0; b < n; b++)
        if (count->v[b] > 0) {
            if (lo == n)
                lo = b;
            hi = b;
        }
    if (lo == n)
        return 0;
    size_t first = lo >= 2 ? lo - 2 : 0, last = hi + 1 < n ? hi + 1 : hi, rows = 0;
    for (size_t k = first; k <= last; k++) {
        double above = nonfinite;
        for (size_t b = k + 1; b < n; b++)
            above += count->v[b];
        above += count->v[k] - pow2->v[k];
        double fr = frac(above, numel);
        range_add(r, fr);
        fprintf(f, "%.0f %.17g ", e->v[k], ldexp(1.0, (int)e->v[k]));
        pd_num(f, fr);
        fprintf(f, " %.0f\n", above);
        rows++;
    }
    return rows;
}

static int fig_tolerance(PlotCtx *c, SsError *err)
{
    if (!count_kind(c, PIN_SCAN)) {
        pout_skip(c->o, "tolerance", "no sparsity-scan report");
        return 0;
    }
    StrBuf absf = {0}, relf = {0}, ptsf = {0}, titles = {0}, exact = {0}, vars = {0};
    int rc = 0, anyhist = 0, anyrtol = 0;
    Range r = range_new(), tr = range_new();
    size_t nruns = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_SCAN)
            continue;
        double numel, changed;
        PlotArray tols = {0}, ctol = {0}, e = {0}, ac = {0}, ap = {0}, rcn = {0}, rp = {0};
        if ((rc = ph5_attr_f64(&in->h5, "totals", "numel", &numel, err)) ||
            (rc = ph5_attr_f64(&in->h5, "totals", "changed", &changed, err)) ||
            (rc = ph5_attr(&in->h5, "/", "tolerances", &tols, err)) ||
            (rc = ph5_attr(&in->h5, "totals", "changed_tol", &ctol, err)))
            goto next;
        int hist = ph5_exists(&in->h5, "hist/exponent");
        if (!hist)
            pout_skip(c->o, "tolerance curve", "%s has no /hist (rerun sparsity-scan with "
                      "--hist): only its --tol counts are drawn", in->path);
        char name[220], header[600];
        DataFile d;
        for (int part = 0; part < 3 && !rc; part++) {
            static const char *const kinds[3] = {"abs", "rel", "points"};
            snprintf(name, sizeof name, "tolerance_%s-%s.dat", kinds[part], in->flabel);
            if (part == 0)
                snprintf(header, sizeof header, "absolute tolerance curve of run %s (%s: /hist "
                         "totals; %.0f elements)\nexponent_k  tolerance(2^k)  changed_fraction  "
                         "changed(|B-A| > 2^k)", in->label, in->path, numel);
            else if (part == 1)
                snprintf(header, sizeof header, "relative tolerance curve of run %s (%s: /hist "
                         "totals; %.0f elements)\nexponent_k  eta(2^k)  changed_fraction  "
                         "changed(|B-A| > 2^k*max(|A|,|B|))", in->label, in->path, numel);
            else
                snprintf(header, sizeof header, "tolerance counts of run %s (%s: /totals "
                         "changed_tol, changed_rtol)\ntolerance  changed_fraction  changed  "
                         "kind(0: absolute --tol, 1: relative --rtol)", in->label, in->path);
            if ((rc = pd_open(c->o, &d, name, header, err)))
                break;
            if (part < 2 && hist) {
                double nonf = 0;
                const char *cn = part == 0 ? "hist/total_abs_count" : "hist/total_rel_count";
                const char *pn = part == 0 ? "hist/total_abs_pow2" : "hist/total_rel_pow2";
                PlotArray *cnt = part == 0 ? &ac : &rcn, *p2 = part == 0 ? &ap : &rp;
                if ((!e.v && (rc = rd(in, "hist/exponent", &e, err))) ||
                    (rc = rd(in, cn, cnt, err)) || (rc = rd(in, pn, p2, err)) ||
                    (rc = ph5_attr_f64(&in->h5, "hist", "total_nonfinite_changed", &nonf, err))) {
                    pd_abort(&d);
                    pd_free(&d);
                    break;
                }
                if (cnt->n != e.n || p2->n != e.n) {
                    rc = ss_err(err, SS_EINPUT, "%s: /hist: totals of different lengths",
                                in->path);
                    pd_free(&d);
                    break;
                }
                write_curve(d.f, &e, cnt, p2, nonf, numel, &r);
                anyhist = 1;
            } else if (part == 2) {
                for (size_t k = 0; k < tols.n && k < ctol.n; k++) {
                    range_add(&tr, tols.v[k]);
                    fprintf(d.f, "%.17g ", tols.v[k]);
                    pd_num(d.f, frac(ctol.v[k], numel));
                    fprintf(d.f, " %.0f 0\n", ctol.v[k]);
                    range_add(&r, frac(ctol.v[k], numel));
                }
                double rt, crt;
                if (h5r_attr_exists(in->h5.r, "/", "rtol") &&
                    ph5_attr_f64(&in->h5, "/", "rtol", &rt, err) == 0 &&
                    ph5_attr_f64(&in->h5, "totals", "changed_rtol", &crt, err) == 0) {
                    fprintf(d.f, "%.17g ", rt);
                    pd_num(d.f, frac(crt, numel));
                    fprintf(d.f, " %.0f 1\n", crt);
                    range_add(&r, frac(crt, numel));
                    anyrtol = 1;
                }
            }
            rc = pd_close(&d, err);
            words_add(part == 0 ? &absf : part == 1 ? &relf : &ptsf, d.rel);
            pd_free(&d);
        }
        if (!rc) {
            char ex[64];
            snprintf(ex, sizeof ex, "%.17g", frac(changed, numel));
            words_add(&exact, ex);
            range_add(&r, frac(changed, numel));
            words_add(&titles, in->label);
            nruns++;
        }
    next:
        plot_array_free(&tols);
        plot_array_free(&ctol);
        plot_array_free(&e);
        plot_array_free(&ac);
        plot_array_free(&ap);
        plot_array_free(&rcn);
        plot_array_free(&rp);
    }
    if (!rc && nruns) {
        pv_str(&vars, "absfiles", absf.s);
        pv_str(&vars, "relfiles", relf.s);
        pv_str(&vars, "ptsfiles", ptsf.s);
        pv_str(&vars, "titles", titles.s);
        pv_str(&vars, "exact", exact.s);
        pv_int(&vars, "hist", anyhist);
        pv_int(&vars, "hasrel", anyhist || anyrtol);
        pv_num(&vars, "tmin", tr.hi > 0 ? tr.lo : 1e-6);
        pv_num(&vars, "tmax", tr.hi > 0 ? tr.hi : 1e-4);
        pv_num(&vars, "ymin", r.hi > 0 ? 100 * r.lo : 1e-4);
        pv_num(&vars, "ymax", r.hi > 0 ? 100 * r.hi : 100);
        rc = pout_draw(c->o, "tolerance", "tolerance", &vars,
                       anyhist ? NULL : "--tol counts only: no /hist", err);
    }
    sb_free(&absf);
    sb_free(&relf);
    sb_free(&ptsf);
    sb_free(&titles);
    sb_free(&exact);
    sb_free(&vars);
    return rc;
}

/* ---- rank (scan reports with /rank) ---- */

static const char *const spectra_modules[] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                              "gate_proj", "up_proj", "down_proj", NULL};

/* Index of name in names[n], or n. */
static size_t find_name(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return n;
}

static int fig_rank_spectra(PlotCtx *c, PlotInput *in, char **rnames, size_t nr,
                            const PlotArray *rstar, SsError *err)
{
    char fig[200];
    snprintf(fig, sizeof fig, "rank_spectra-%s", in->flabel);
    TensorList t;
    int rc = select_tensors(c, in, "rank/singular_values", fig, spectra_modules, &t, err);
    if (rc)
        return rc;
    if (!t.n) {
        if (!c->ntensors)
            pout_skip(c->o, fig, "%s: no matrix of the middle layer in /rank/singular_values",
                      in->path);
        tl_free(&t);
        return 0;
    }
    StrBuf files = {0}, titles = {0}, rs = {0}, vars = {0};
    for (size_t k = 0; k < t.n && !rc; k++) {
        char esc[1024], obj[1200], st[512], fst[512], name[800], header[1600];
        h5_escape(t.names[k], esc, sizeof esc);
        snprintf(obj, sizeof obj, "rank/singular_values/%s", esc);
        PlotArray sv = {0};
        if ((rc = rd(in, obj, &sv, err)))
            break;
        short_tensor(t.names[k], st, sizeof st);
        plot_file_label(st, fst, sizeof fst);
        snprintf(name, sizeof name, "rank_sv-%s-%s.dat", in->flabel, fst);
        snprintf(header, sizeof header, "singular values of the update of %s, run %s (%s: /%s)\n"
                 "i(1-based)  sigma_i  sigma_i/sigma_1  energy(sum_{j<=i} sigma_j^2 / "
                 "sum sigma^2)", t.names[k], in->label, in->path, obj);
        DataFile d;
        if ((rc = pd_open(c->o, &d, name, header, err))) {
            plot_array_free(&sv);
            break;
        }
        double tot = 0, cum = 0;
        for (size_t i = 0; i < sv.n; i++)
            tot += sv.v[i] * sv.v[i];
        for (size_t i = 0; i < sv.n; i++) {
            cum += sv.v[i] * sv.v[i];
            fprintf(d.f, "%zu ", i + 1);
            pd_num(d.f, sv.v[i]);
            fputc(' ', d.f);
            pd_num(d.f, sv.v[0] > 0 ? sv.v[i] / sv.v[0] : NAN);
            fputc(' ', d.f);
            pd_num(d.f, tot > 0 ? cum / tot : NAN);
            fputc('\n', d.f);
        }
        plot_array_free(&sv);
        rc = pd_close(&d, err);
        words_add(&files, d.rel);
        words_add(&titles, st);
        size_t ri = find_name(rnames, nr, t.names[k]);
        char v[64];
        snprintf(v, sizeof v, "%.6g", ri < nr && ri < rstar->n ? rstar->v[ri] : NAN);
        words_add(&rs, v);
        pd_free(&d);
    }
    if (!rc) {
        pv_str(&vars, "files", files.s);
        pv_str(&vars, "titles", titles.s);
        pv_str(&vars, "rstar", rs.s);
        pv_str(&vars, "label", in->label);
        rc = pout_draw(c->o, "rank_spectra", fig, &vars, NULL, err);
    }
    sb_free(&files);
    sb_free(&titles);
    sb_free(&rs);
    sb_free(&vars);
    tl_free(&t);
    return rc;
}

static int fig_rank(PlotCtx *c, SsError *err)
{
    if (!count_kind(c, PIN_SCAN)) {
        pout_skip(c->o, "rank", "no sparsity-scan report");
        return 0;
    }
    int rc = 0;
    StrBuf efiles = {0}, titles = {0}, rstars = {0};
    size_t nruns = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_SCAN)
            continue;
        if (!ph5_exists(&in->h5, "rank/name")) {
            pout_skip(c->o, "rank", "%s has no /rank (rerun sparsity-scan with --rank)",
                      in->path);
            continue;
        }
        size_t nr = 0, nt = 0, ntm = 0;
        char **rn = NULL, **tn = NULL, **tmod = NULL;
        PlotArray m = {0}, n = {0}, nrf = {0}, e99 = {0}, energy = {0}, frob = {0}, rstar = {0},
                  tlayer = {0}, rr = {0};
        double model_rstar = NAN;
        if ((rc = rd_strings(in, "rank/name", &nr, &rn, err)) ||
            (rc = rd(in, "rank/m", &m, err)) || (rc = rd(in, "rank/n", &n, err)) ||
            (rc = rd(in, "rank/numerical_rank_fraction", &nrf, err)) ||
            (rc = rd(in, "rank/effective_rank_99", &e99, err)) ||
            (rc = rd(in, "rank/energy_at_r", &energy, err)) ||
            (rc = rd(in, "rank/frobenius", &frob, err)) ||
            (rc = rd(in, "rank/lora_r_star", &rstar, err)) ||
            (rc = ph5_attr(&in->h5, "rank", "r", &rr, err)) ||
            (rc = ph5_attr_f64(&in->h5, "rank", "lora_r_star", &model_rstar, err)) ||
            (rc = rd_strings(in, "tensors/name", &nt, &tn, err)) ||
            (rc = rd_strings(in, "tensors/module", &ntm, &tmod, err)) ||
            (rc = rd(in, "tensors/layer", &tlayer, err)))
            goto next;
        size_t R = rr.n;
        if (m.n != nr || n.n != nr || nrf.n != nr || e99.n != nr || frob.n != nr ||
            rstar.n != nr || energy.rank != 2 || energy.dims[0] != nr || energy.dims[1] != R ||
            ntm != nt || tlayer.n != nt) {
            rc = ss_err(err, SS_EINPUT, "%s: /rank: datasets of inconsistent shapes", in->path);
            goto next;
        }
        /* model energy at r: Frobenius-weighted over the matrices */
        char name[220], header[800];
        snprintf(name, sizeof name, "rank_energy-%s.dat", in->flabel);
        snprintf(header, sizeof header,
                 "energy of the best rank-r approximation of the update, run %s (%s: /rank)\n"
                 "over the %zu analysed matrices: weighted = sum_t energy_t(r)*frob_t^2 / "
                 "sum_t frob_t^2 (share of the whole update's squared norm kept), mean = "
                 "unweighted mean\nLoRA equivalence (model): r* = %.6g (a rank-r* LoRA trains as "
                 "many parameters as the update changed)\n"
                 "r  energy_weighted  energy_mean  lora_params_at_r(r*sum(m+n))",
                 in->label, in->path, nr, model_rstar);
        DataFile d;
        if ((rc = pd_open(c->o, &d, name, header, err)))
            goto next;
        double summn = 0;
        for (size_t t = 0; t < nr; t++)
            summn += m.v[t] + n.v[t];
        for (size_t j = 0; j < R; j++) {
            double wsum = 0, w = 0, msum = 0;
            size_t cnt = 0;
            int bad = 0;
            for (size_t t = 0; t < nr; t++) {
                double en = energy.v[t * R + j], f2 = frob.v[t] * frob.v[t];
                if (isnan(en) || isnan(f2)) {
                    bad = 1;
                    continue;
                }
                wsum += en * f2;
                w += f2;
                msum += en;
                cnt++;
            }
            fprintf(d.f, "%.0f ", rr.v[j]);
            pd_num(d.f, bad || w <= 0 ? NAN : wsum / w);
            fputc(' ', d.f);
            pd_num(d.f, bad || !cnt ? NAN : msum / (double)cnt);
            fprintf(d.f, " %.0f\n", rr.v[j] * summn);
        }
        rc = pd_close(&d, err);
        words_add(&efiles, d.rel);
        pd_free(&d);
        words_add(&titles, in->label);
        char v[64];
        snprintf(v, sizeof v, "%.6g", model_rstar);
        words_add(&rstars, v);
        nruns++;
        if (rc)
            goto next;
        /* numerical rank fractions by layer and module */
        snprintf(name, sizeof name, "rank_fraction-%s.dat", in->flabel);
        snprintf(header, sizeof header,
                 "rank of the update per matrix, run %s (%s: /rank; layer -1: outside the "
                 "layers)\nmodule_index  layer  numerical_rank_fraction  "
                 "effective_rank_99_fraction(effective_rank_99/min(m,n))  lora_r_star  m  n  "
                 "module  name", in->label, in->path);
        if ((rc = pd_open(c->o, &d, name, header, err)))
            goto next;
        /* modules in first-seen order of /tensors (the report's module order) */
        StrBuf mw = {0};
        char **seen = calloc(nr ? nr : 1, sizeof *seen);
        size_t nseen = 0;
        if (!seen) {
            pd_free(&d);
            rc = ss_err(err, SS_EOUTPUT, "out of memory");
            goto next;
        }
        size_t nmodorder = 0;
        char **modorder = NULL;
        if (h5r_strings(in->h5.r, "layers/module", &nmodorder, &modorder, err) != 0)
            nmodorder = 0;
        for (size_t pass = 0; pass < 2; pass++)
            for (size_t q = 0; q < (pass ? nr : nmodorder); q++) {
                const char *mod = NULL;
                if (!pass)
                    mod = modorder[q];
                else {
                    size_t ti = find_name(tn, nt, rn[q]);
                    mod = ti < nt ? tmod[ti] : "?";
                }
                int have = 0, used = 0;
                for (size_t s = 0; s < nseen; s++)
                    have |= strcmp(seen[s], mod) == 0;
                for (size_t t = 0; t < nr && !used; t++) {
                    size_t ti = find_name(tn, nt, rn[t]);
                    used = strcmp(ti < nt ? tmod[ti] : "?", mod) == 0;
                }
                if (!have && used)
                    seen[nseen++] = (char *)mod;
            }
        for (size_t s = 0; s < nseen; s++) {
            words_add(&mw, seen[s]);
            for (size_t t = 0; t < nr; t++) {
                size_t ti = find_name(tn, nt, rn[t]);
                const char *mod = ti < nt ? tmod[ti] : "?";
                if (strcmp(mod, seen[s]) != 0)
                    continue;
                double p = m.v[t] < n.v[t] ? m.v[t] : n.v[t];
                fprintf(d.f, "%zu %.0f ", s, ti < nt ? tlayer.v[ti] : -1.0);
                pd_num(d.f, nrf.v[t]);
                fputc(' ', d.f);
                pd_num(d.f, e99.v[t] >= 0 && p > 0 ? e99.v[t] / p : NAN);
                fputc(' ', d.f);
                pd_num(d.f, rstar.v[t]);
                fprintf(d.f, " %.0f %.0f %s %s\n", m.v[t], n.v[t], mod, rn[t]);
            }
            fputs("\n\n", d.f);
        }
        free(seen);
        rc = pd_close(&d, err);
        if (!rc) {
            StrBuf vars = {0};
            char fig[200];
            snprintf(fig, sizeof fig, "rank_fraction-%s", in->flabel);
            pv_str(&vars, "file", d.rel);
            pv_str(&vars, "modules", mw.s);
            pv_str(&vars, "label", in->label);
            rc = pout_draw(c->o, "rank_fraction", fig, &vars, NULL, err);
            sb_free(&vars);
        }
        h5r_free_strings(nmodorder, modorder);
        sb_free(&mw);
        pd_free(&d);
        if (!rc)
            rc = fig_rank_spectra(c, in, rn, nr, &rstar, err);
    next:
        h5r_free_strings(nr, rn);
        h5r_free_strings(nt, tn);
        h5r_free_strings(ntm, tmod);
        plot_array_free(&m);
        plot_array_free(&n);
        plot_array_free(&nrf);
        plot_array_free(&e99);
        plot_array_free(&energy);
        plot_array_free(&frob);
        plot_array_free(&rstar);
        plot_array_free(&tlayer);
        plot_array_free(&rr);
    }
    if (!rc && nruns) {
        StrBuf vars = {0};
        pv_str(&vars, "files", efiles.s);
        pv_str(&vars, "titles", titles.s);
        pv_str(&vars, "rstar", rstars.s);
        rc = pout_draw(c->o, "rank_energy", "rank_energy", &vars, NULL, err);
        sb_free(&vars);
    }
    sb_free(&efiles);
    sb_free(&titles);
    sb_free(&rstars);
    return rc;
}

/* ---- overlap (sparsity-overlap reports) ---- */

static int fig_overlap_pair(PlotCtx *c, PlotInput *in, const char *pair, char **runs,
                            size_t nruns, SsError *err)
{
    char g[300], obj[400];
    snprintf(g, sizeof g, "pairs/%s", pair);
    double ai, aj;
    int rc;
    if ((rc = ph5_attr_f64(&in->h5, g, "i", &ai, err)) ||
        (rc = ph5_attr_f64(&in->h5, g, "j", &aj, err)))
        return rc;
    size_t i = (size_t)ai, j = (size_t)aj;
    static const char *const cols[6] = {"o1", "o1_random", "o2", "o2_random", "jaccard",
                                        "jaccard_random"};
    PlotArray v[6], n1 = {0}, n2 = {0}, numel = {0};
    memset(v, 0, sizeof v);
    size_t nmod = 0;
    char **mods = NULL;
    snprintf(obj, sizeof obj, "%s/modules/module", g);
    if ((rc = rd_strings(in, obj, &nmod, &mods, err)))
        return rc;
    for (int k = 0; k < 6 && !rc; k++) {
        snprintf(obj, sizeof obj, "%s/modules/%s", g, cols[k]);
        rc = rd(in, obj, &v[k], err);
        if (!rc && v[k].n != nmod)
            rc = ss_err(err, SS_EINPUT, "%s: %s: %zu values for %zu modules", in->path, obj,
                        v[k].n, nmod);
    }
    snprintf(obj, sizeof obj, "%s/modules/n1", g);
    if (!rc)
        rc = rd(in, obj, &n1, err);
    snprintf(obj, sizeof obj, "%s/modules/n2", g);
    if (!rc)
        rc = rd(in, obj, &n2, err);
    snprintf(obj, sizeof obj, "%s/modules/numel", g);
    if (!rc)
        rc = rd(in, obj, &numel, err);
    double all[6];
    for (int k = 0; k < 6 && !rc; k++)
        rc = ph5_attr_f64(&in->h5, g, cols[k], &all[k], err);
    char fig[300], name[320], header[900];
    snprintf(fig, sizeof fig, "overlap-%s-%s", in->flabel, pair);
    snprintf(name, sizeof name, "%s.dat", fig);
    const char *x = i < nruns ? runs[i] : "?", *y = j < nruns ? runs[j] : "?";
    snprintf(header, sizeof header,
             "overlap of the changed elements of runs X = %s (run %zu) and Y = %s (run %zu) "
             "(%s: /%s), per module (those where X or Y changed something) and overall (last "
             "row)\no1 = |X&Y|/|X| (random baseline: Y's density q), o2 = |X&Y|/|Y| (random: "
             "p), jaccard = |X&Y|/|X|Y| (random: pq/(p+q-pq)); NaN where undefined\n"
             "index  module  o1  o1_random  o2  o2_random  jaccard  jaccard_random", x, i, y, j,
             in->path, g);
    DataFile d = {0};
    Range r = range_new();
    StrBuf rows = {0};
    if (!rc && (rc = pd_open(c->o, &d, name, header, err)) == 0) {
        size_t row = 0;
        for (size_t m = 0; m <= nmod; m++) {
            if (m < nmod && (numel.v[m] <= 0 || n1.v[m] + n2.v[m] <= 0))
                continue;
            fprintf(d.f, "%zu %s", row++, m < nmod ? mods[m] : "all");
            words_add(&rows, m < nmod ? mods[m] : "all");
            for (int k = 0; k < 6; k++) {
                double val = m < nmod ? v[k].v[m] : all[k];
                range_add(&r, val);
                fputc(' ', d.f);
                pd_num(d.f, val);
            }
            fputc('\n', d.f);
        }
        rc = pd_close(&d, err);
    }
    if (!rc) {
        StrBuf vars = {0};
        pv_str(&vars, "file", d.rel);
        pv_str(&vars, "rows", rows.s);
        pv_str(&vars, "xrun", x);
        pv_str(&vars, "yrun", y);
        pv_str(&vars, "label", in->label);
        pv_int(&vars, "logy", range_log(r));
        rc = pout_draw(c->o, "overlap", fig, &vars, NULL, err);
        sb_free(&vars);
    }
    sb_free(&rows);
    pd_free(&d);
    h5r_free_strings(nmod, mods);
    for (int k = 0; k < 6; k++)
        plot_array_free(&v[k]);
    plot_array_free(&n1);
    plot_array_free(&n2);
    plot_array_free(&numel);
    return rc;
}

static int fig_consensus(PlotCtx *c, PlotInput *in, SsError *err)
{
    char fig[200];
    snprintf(fig, sizeof fig, "consensus-%s", in->flabel);
    if (!ph5_exists(&in->h5, "consensus")) {
        pout_skip(c->o, fig, "%s has no /consensus (it needs 3 or more runs)", in->path);
        return 0;
    }
    PlotArray share = {0}, expd = {0}, gl = {0}, gshare = {0}, gexp = {0}, gnum = {0};
    size_t ngm = 0;
    char **gm = NULL;
    double k;
    int rc;
    if ((rc = ph5_attr_f64(&in->h5, "consensus", "k", &k, err)) ||
        (rc = ph5_attr(&in->h5, "consensus", "share", &share, err)) ||
        (rc = ph5_attr(&in->h5, "consensus", "expected", &expd, err)) ||
        (rc = rd(in, "consensus/groups/layer", &gl, err)) ||
        (rc = rd_strings(in, "consensus/groups/module", &ngm, &gm, err)) ||
        (rc = rd(in, "consensus/groups/share", &gshare, err)) ||
        (rc = rd(in, "consensus/groups/expected", &gexp, err)) ||
        (rc = rd(in, "consensus/groups/numel", &gnum, err)))
        goto done;
    size_t K = (size_t)k, G = gl.n;
    if (share.n != K + 1 || expd.n != K + 1 || ngm != G || gshare.rank != 2 ||
        gshare.dims[0] != G || gshare.dims[1] != K + 1 || gexp.n != gshare.n || gnum.n != G) {
        rc = ss_err(err, SS_EINPUT, "%s: /consensus: datasets of inconsistent shapes", in->path);
        goto done;
    }
    char name[220], header[700];
    DataFile d = {0}, h = {0};
    snprintf(name, sizeof name, "consensus-%s.dat", in->flabel);
    snprintf(header, sizeof header,
             "consensus of %zu runs (%s: /consensus): share of all elements changed by exactly j "
             "runs, and its Poisson-binomial expectation for independent runs with the runs' "
             "densities\nj  share  expected", K, in->path);
    if ((rc = pd_open(c->o, &d, name, header, err)))
        goto done;
    Range r = range_new();
    for (size_t j = 0; j <= K; j++) {
        fprintf(d.f, "%zu ", j);
        pd_num(d.f, share.v[j]);
        fputc(' ', d.f);
        pd_num(d.f, expd.v[j]);
        fputc('\n', d.f);
        range_add(&r, share.v[j]);
        range_add(&r, expd.v[j]);
    }
    if ((rc = pd_close(&d, err)))
        goto done2;
    /* the layer x module map of share(all k) / expected(all k), layers >= 0 */
    char **mods = calloc(G ? G : 1, sizeof *mods);
    size_t nm = 0;
    if (!mods) {
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
        goto done2;
    }
    for (size_t q = 0; q < G; q++) {
        if (gl.v[q] < 0)
            continue;
        size_t s = 0;
        while (s < nm && strcmp(mods[s], gm[q]) != 0)
            s++;
        if (s == nm)
            mods[nm++] = gm[q];
    }
    snprintf(name, sizeof name, "consensus_map-%s.dat", in->flabel);
    snprintf(header, sizeof header,
             "consensus per layer x module cell (%s: /consensus/groups, layers >= 0)\n"
             "layer  module_index  enrichment(share_all/expected_all)  share_all(changed by all "
             "%zu runs)  expected_all  numel  module", in->path, K);
    Range rm = range_new();
    if ((rc = pd_open(c->o, &h, name, header, err)) == 0) {
        double prev = NAN;
        for (size_t q = 0; q < G; q++) {
            if (gl.v[q] < 0)
                continue;
            if (!isnan(prev) && gl.v[q] != prev)
                fputc('\n', h.f);
            prev = gl.v[q];
            size_t s = 0;
            while (s < nm && strcmp(mods[s], gm[q]) != 0)
                s++;
            double sa = gshare.v[q * (K + 1) + K], ea = gexp.v[q * (K + 1) + K];
            double en = ea > 0 ? sa / ea : NAN;
            range_add(&rm, en);
            fprintf(h.f, "%.0f %zu ", gl.v[q], s);
            pd_num(h.f, en);
            fputc(' ', h.f);
            pd_num(h.f, sa);
            fputc(' ', h.f);
            pd_num(h.f, ea);
            fprintf(h.f, " %.0f %s\n", gnum.v[q], gm[q]);
        }
        rc = pd_close(&h, err);
    }
    if (!rc) {
        StrBuf vars = {0}, mw = {0};
        module_words(mods, nm, NULL, &mw);
        pv_str(&vars, "file", d.rel);
        pv_str(&vars, "mapfile", nm ? h.rel : "");
        pv_str(&vars, "modules", mw.s);
        pv_str(&vars, "label", in->label);
        pv_int(&vars, "k", (long long)K);
        pv_int(&vars, "logy", range_log(r));
        pv_int(&vars, "logcb", range_log(rm));
        rc = pout_draw(c->o, "consensus", fig, &vars, NULL, err);
        sb_free(&vars);
        sb_free(&mw);
    }
    free(mods);
done2:
    pd_free(&d);
    pd_free(&h);
done:
    plot_array_free(&share);
    plot_array_free(&expd);
    plot_array_free(&gl);
    plot_array_free(&gshare);
    plot_array_free(&gexp);
    plot_array_free(&gnum);
    h5r_free_strings(ngm, gm);
    return rc;
}

static int fig_overlap(PlotCtx *c, SsError *err)
{
    if (!count_kind(c, PIN_OVERLAP)) {
        pout_skip(c->o, "overlap", "no sparsity-overlap report (sparsity-overlap ... --h5)");
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_OVERLAP)
            continue;
        size_t nb = 0, np = 0;
        char **rb = NULL, **pairs = NULL;
        if ((rc = h5r_attr_strings(in->h5.r, "/", "run_b", &nb, &rb, err)) ||
            (rc = ph5_members(&in->h5, "pairs", &np, &pairs, err))) {
            h5r_free_strings(nb, rb);
            break;
        }
        char **labels = calloc(nb ? nb : 1, sizeof *labels);
        for (size_t k = 0; labels && k < nb; k++) {
            char l[256];
            pin_path_label(rb[k], l, sizeof l);
            labels[k] = strdup(l);
        }
        for (size_t p = 0; p < np && !rc && labels; p++)
            rc = fig_overlap_pair(c, in, pairs[p], labels, nb, err);
        if (!labels)
            rc = ss_err(err, SS_EOUTPUT, "out of memory");
        if (!rc)
            rc = fig_consensus(c, in, err);
        h5r_free_strings(nb, labels);
        h5r_free_strings(nb, rb);
        h5r_free_strings(np, pairs);
    }
    return rc;
}

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
