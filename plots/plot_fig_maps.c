/* Update maps of chosen tensors (/maps) and the tolerance curve (/hist or the tolerance counts). */
#include "plots/plot_fig_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- update maps (scan reports with /maps) ---- */

static const char *const attn_modules[] = {"q_proj", "k_proj", "v_proj", "o_proj", NULL};

static int fig_map_one(PlotCtx *c, PlotInput *in, const char *tensor, SsError *err)
{
    char esc[1024], g[1200], obj[1300], st[512], fig[700];
    pf_h5_escape(tensor, esc, sizeof esc);
    snprintf(g, sizeof g, "maps/%s", esc);
    pf_short_tensor(tensor, st, sizeof st);
    char fst[512];
    plot_file_label(st, fst, sizeof fst);
    snprintf(fig, sizeof fig, "map-%s-%s", in->flabel, fst);
    PlotArray rows = {0}, cols = {0}, dens = {0}, heads = {0}, redge = {0}, cedge = {0};
    double R, C, changed, k, hd = 0;
    int rc;
    snprintf(obj, sizeof obj, "%s/row_changed", g);
    if ((rc = pf_rd(in, obj, &rows, err)))
        goto done;
    snprintf(obj, sizeof obj, "%s/col_changed", g);
    if ((rc = pf_rd(in, obj, &cols, err)))
        goto done;
    /* the density map: each cell's changed count over its size (row_edges x col_edges); reports
     * written before 2026-11-28 stored the densities themselves (f64 "density") */
    snprintf(obj, sizeof obj, "%s/density", g);
    int stored_density = ph5_exists(&in->h5, obj);
    if (!stored_density)
        snprintf(obj, sizeof obj, "%s/cell_changed", g);
    if ((rc = pf_rd(in, obj, &dens, err)))
        goto done;
    if (!stored_density) {
        snprintf(obj, sizeof obj, "%s/row_edges", g);
        if ((rc = pf_rd(in, obj, &redge, err)))
            goto done;
        snprintf(obj, sizeof obj, "%s/col_edges", g);
        if ((rc = pf_rd(in, obj, &cedge, err)))
            goto done;
    }
    if ((rc = ph5_attr_f64(&in->h5, g, "rows", &R, err)) ||
        (rc = ph5_attr_f64(&in->h5, g, "cols", &C, err)) ||
        (rc = ph5_attr_f64(&in->h5, g, "changed", &changed, err)) ||
        (rc = ph5_attr_f64(&in->h5, g, "stripe_k", &k, err)))
        goto done;
    snprintf(obj, sizeof obj, "%s/head_fraction", g);
    if (ph5_exists(&in->h5, obj)) {
        if ((rc = pf_rd(in, obj, &heads, err)) || (rc = ph5_attr_f64(&in->h5, g, "head_dim", &hd, err)))
            goto done;
    }
    if (rows.n != (size_t)R || cols.n != (size_t)C || dens.rank != 2 ||
        (!stored_density && (redge.n != dens.dims[0] + 1 || cedge.n != dens.dims[1] + 1))) {
        rc = ss_err(err, SS_EINPUT, "%s: %s: shapes differ from rows/cols", in->path, g);
        goto done;
    }
    for (size_t i = 0; !stored_density && i < dens.dims[0]; i++)
        for (size_t j = 0; j < dens.dims[1]; j++)
            dens.v[i * dens.dims[1] + j] = pf_frac(dens.v[i * dens.dims[1] + j],
                                                   (redge.v[i + 1] - redge.v[i]) *
                                                       (cedge.v[j + 1] - cedge.v[j]));
    /* the four data files */
    const char *part[4] = {"rows", "cols", "density", "heads"};
    DataFile d[4];
    memset(d, 0, sizeof d);
    double mean = pf_frac(changed, R * C);
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
    plot_array_free(&redge);
    plot_array_free(&cedge);
    return rc;
}

int fig_maps(PlotCtx *c, SsError *err)
{
    if (!pf_count_kind(c, PIN_SCAN)) {
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
        PfTensorList t;
        if ((rc = pf_select_tensors(c, in, "maps", what, attn_modules, &t, err)))
            break;
        if (!t.n && !c->ntensors)
            pout_skip(c->o, what, "%s: no attention projection of the middle layer in /maps "
                      "(name tensors with --tensor)", in->path);
        for (size_t k = 0; k < t.n && !rc; k++)
            rc = fig_map_one(c, in, t.names[k], err);
        pf_tl_free(&t);
    }
    return rc;
}

/* ---- tolerance curve (scan reports: /hist, or the tolerance counts) ---- */

/* Writes the tolerance curve of one histogram: changed at 2^k for every k over the used bins
 * (count, pow2 totals; exponent axis e[]) into d. Returns the number of rows. */
static size_t write_curve(FILE *f, const PlotArray *e, const PlotArray *count,
                          const PlotArray *pow2, double nonfinite, double numel, PfRange *r)
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
        double fr = pf_frac(above, numel);
        pf_range_add(r, fr);
        fprintf(f, "%.0f %.17g ", e->v[k], ldexp(1.0, (int)e->v[k]));
        pd_num(f, fr);
        fprintf(f, " %.0f\n", above);
        rows++;
    }
    return rows;
}

int fig_tolerance(PlotCtx *c, SsError *err)
{
    if (!pf_count_kind(c, PIN_SCAN)) {
        pout_skip(c->o, "tolerance", "no sparsity-scan report");
        return 0;
    }
    StrBuf absf = {0}, relf = {0}, ptsf = {0}, titles = {0}, exact = {0}, vars = {0};
    int rc = 0, anyhist = 0, anyrtol = 0;
    PfRange r = pf_range_new(), tr = pf_range_new();
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
                if ((!e.v && (rc = pf_rd(in, "hist/exponent", &e, err))) ||
                    (rc = pf_rd(in, cn, cnt, err)) || (rc = pf_rd(in, pn, p2, err)) ||
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
                    pf_range_add(&tr, tols.v[k]);
                    fprintf(d.f, "%.17g ", tols.v[k]);
                    pd_num(d.f, pf_frac(ctol.v[k], numel));
                    fprintf(d.f, " %.0f 0\n", ctol.v[k]);
                    pf_range_add(&r, pf_frac(ctol.v[k], numel));
                }
                double rt, crt;
                if (h5r_attr_exists(in->h5.r, "/", "rtol") &&
                    ph5_attr_f64(&in->h5, "/", "rtol", &rt, err) == 0 &&
                    ph5_attr_f64(&in->h5, "totals", "changed_rtol", &crt, err) == 0) {
                    fprintf(d.f, "%.17g ", rt);
                    pd_num(d.f, pf_frac(crt, numel));
                    fprintf(d.f, " %.0f 1\n", crt);
                    pf_range_add(&r, pf_frac(crt, numel));
                    anyrtol = 1;
                }
            }
            rc = pd_close(&d, err);
            pf_words_add(part == 0 ? &absf : part == 1 ? &relf : &ptsf, d.rel);
            pd_free(&d);
        }
        if (!rc) {
            char ex[64];
            snprintf(ex, sizeof ex, "%.17g", pf_frac(changed, numel));
            pf_words_add(&exact, ex);
            pf_range_add(&r, pf_frac(changed, numel));
            pf_words_add(&titles, in->label);
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
