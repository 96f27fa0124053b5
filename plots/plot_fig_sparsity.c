/* Sparsity figures from scan and series reports: update sparsity per run, sparsity over training
 * and between snapshots, the never / restored / final split, layer x module heat maps and
 * per-layer lines. */
#include "plots/plot_fig_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- update sparsity per run (scan reports) ---- */

#define MAX_MEASURES 34

int fig_sparsity(PlotCtx *c, SsError *err)
{
    if (!pf_count_kind(c, PIN_SCAN)) {
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
    PfRange r = pf_range_new();
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
            double fr = pf_frac(ch, numel);
            pf_range_add(&r, fr);
            char lab[48];
            if (isnan(ch))
                snprintf(lab, sizeof lab, "-");
            else
                pf_fmt_sparsity(1 - fr, lab, sizeof lab);
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
        pf_words_add(&runs, in->label);
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
            pf_words_add(&mw, t);
        }
        pv_str(&vars, "file", d.rel);
        pv_str(&vars, "runs", runs.s);
        pv_str(&vars, "measures", mw.s);
        pv_int(&vars, "logy", pf_range_log(r));
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

int fig_series(PlotCtx *c, SsError *err)
{
    if (!pf_count_kind(c, PIN_SERIES)) {
        pout_skip(c->o, "series", "no sparsity-series report (sparsity-scan --series RUN --h5)");
        return 0;
    }
    StrBuf files = {0}, titles = {0}, vars = {0};
    int rc = 0;
    size_t nruns = 0;
    PfRange r = pf_range_new();
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_SERIES)
            continue;
        PlotArray step = {0}, cb = {0}, cc = {0};
        double numel;
        if ((rc = pf_rd(in, "series/step", &step, err)) ||
            (rc = pf_rd(in, "series/changed_vs_base", &cb, err)) ||
            (rc = pf_rd(in, "series/changed_consecutive", &cc, err)) ||
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
                double fb = pf_frac(cb.v[s], numel), fc = pf_frac(cc.v[s], numel);
                pf_range_add(&r, fb);
                pf_range_add(&r, fc);
                double v[7] = {step.v[s], fb, fc, cb.v[s], cc.v[s], 1 - fb, 1 - fc};
                for (int k = 0; k < 7; k++) {
                    if (k)
                        fputc(' ', d.f);
                    pd_num(d.f, v[k]);
                }
                fputc('\n', d.f);
            }
            rc = pd_close(&d, err);
            pf_words_add(&files, d.rel);
            pf_words_add(&titles, in->label);
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
        pv_int(&vars, "logy", pf_range_log(r));
        rc = pout_draw(c->o, "series", "series", &vars, NULL, err);
    }
    sb_free(&files);
    sb_free(&titles);
    sb_free(&vars);
    return rc;
}

int fig_split(PlotCtx *c, SsError *err)
{
    int rc = 0;
    if (!pf_count_kind(c, PIN_SERIES))
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
        if ((rc = pf_rd_strings(in, "split/modules/module", &nmod, &mods, err)) ||
            (rc = pf_rd(in, "split/modules/numel", &num, err)) ||
            (rc = pf_rd(in, "split/modules/never", &nev, err)) ||
            (rc = pf_rd(in, "split/modules/restored", &res, err)) ||
            (rc = pf_rd(in, "split/modules/final", &fin, err)) ||
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
        PfRange r = pf_range_new();
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
            pf_words_add(&rows, mod);
            for (int k = 0; k < 4; k++) {
                fputc(' ', d.f);
                pd_num(d.f, v[k]);
            }
            for (int k = 1; k < 4; k++) {
                fputc(' ', d.f);
                pd_num(d.f, pf_frac(v[k], v[0]));
                pf_range_add(&r, pf_frac(v[k], v[0]));
            }
            fputc('\n', d.f);
        }
        rc = pd_close(&d, err);
        if (!rc) {
            StrBuf vars = {0};
            char note[160];
            snprintf(note, sizeof note, "never %.4g%%, restored %.4g%%, final %.4g%%",
                     100 * pf_frac(t[1], t[0]), 100 * pf_frac(t[2], t[0]), 100 * pf_frac(t[3], t[0]));
            pv_str(&vars, "file", d.rel);
            pv_str(&vars, "label", in->label);
            pv_str(&vars, "summary", note);
            pv_str(&vars, "rows", rows.s);
            pv_int(&vars, "logy", pf_range_log(r));
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

int fig_layers(PlotCtx *c, SsError *err)
{
    if (!pf_count_kind(c, PIN_SCAN)) {
        pout_skip(c->o, "layers", "no sparsity-scan report");
        return 0;
    }
    int rc = 0;
    StrBuf files = {0}, titles = {0};
    PfRange rl = pf_range_new();
    size_t nlines = 0;
    for (size_t i = 0; i < c->n && !rc; i++) {
        PlotInput *in = &c->in[i];
        if (in->kind != PIN_SCAN)
            continue;
        PlotArray layer = {0}, sp = {0}, lsp = {0}, lmm = {0};
        size_t nmod = 0;
        char **mods = NULL;
        int *keep = NULL;
        if ((rc = pf_rd(in, "layers/layer", &layer, err)) ||
            (rc = pf_rd(in, "layers/sparsity", &sp, err)) ||
            (rc = pf_rd(in, "layers/layer_sparsity", &lsp, err)) ||
            (rc = pf_rd(in, "layers/layer_mean_matrix_sparsity", &lmm, err)) ||
            (rc = pf_rd_strings(in, "layers/module", &nmod, &mods, err)))
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
        PfRange r = pf_range_new();
        for (size_t l = 0; l < L; l++) {
            if (layer.v[l] < 0)
                continue;
            size_t col = 0;
            for (size_t m = 0; m < nmod; m++) {
                if (!keep[m])
                    continue;
                double s = sp.v[l * nmod + m];
                pf_range_add(&r, 1 - s);
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
            pf_module_words(mods, nmod, keep, &mw);
            pv_str(&vars, "file", d.rel);
            pv_str(&vars, "label", in->label);
            pv_str(&vars, "modules", mw.s);
            pv_int(&vars, "logcb", pf_range_log(r));
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
            pf_range_add(&rl, v[1]);
            pf_range_add(&rl, v[2]);
            for (int k = 0; k < 5; k++) {
                if (k)
                    fputc(' ', d.f);
                pd_num(d.f, v[k]);
            }
            fputc('\n', d.f);
        }
        rc = pd_close(&d, err);
        pf_words_add(&files, d.rel);
        pf_words_add(&titles, in->label);
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
        pv_int(&vars, "logy", pf_range_log(rl));
        rc = pout_draw(c->o, "layer_lines", "layer_lines", &vars, NULL, err);
        sb_free(&vars);
    }
    sb_free(&files);
    sb_free(&titles);
    return rc;
}
