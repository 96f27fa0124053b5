/* Overlap figures (sparsity-overlap reports): one-sided overlaps and Jaccard against their random
 * baselines, and consensus maps. */
#include "plots/plot_fig_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if ((rc = pf_rd_strings(in, obj, &nmod, &mods, err)))
        return rc;
    for (int k = 0; k < 6 && !rc; k++) {
        snprintf(obj, sizeof obj, "%s/modules/%s", g, cols[k]);
        rc = pf_rd(in, obj, &v[k], err);
        if (!rc && v[k].n != nmod)
            rc = ss_err(err, SS_EINPUT, "%s: %s: %zu values for %zu modules", in->path, obj,
                        v[k].n, nmod);
    }
    snprintf(obj, sizeof obj, "%s/modules/n1", g);
    if (!rc)
        rc = pf_rd(in, obj, &n1, err);
    snprintf(obj, sizeof obj, "%s/modules/n2", g);
    if (!rc)
        rc = pf_rd(in, obj, &n2, err);
    snprintf(obj, sizeof obj, "%s/modules/numel", g);
    if (!rc)
        rc = pf_rd(in, obj, &numel, err);
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
    PfRange r = pf_range_new();
    StrBuf rows = {0};
    if (!rc && (rc = pd_open(c->o, &d, name, header, err)) == 0) {
        size_t row = 0;
        for (size_t m = 0; m <= nmod; m++) {
            if (m < nmod && (numel.v[m] <= 0 || n1.v[m] + n2.v[m] <= 0))
                continue;
            fprintf(d.f, "%zu %s", row++, m < nmod ? mods[m] : "all");
            pf_words_add(&rows, m < nmod ? mods[m] : "all");
            for (int k = 0; k < 6; k++) {
                double val = m < nmod ? v[k].v[m] : all[k];
                pf_range_add(&r, val);
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
        pv_int(&vars, "logy", pf_range_log(r));
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
        (rc = pf_rd(in, "consensus/groups/layer", &gl, err)) ||
        (rc = pf_rd_strings(in, "consensus/groups/module", &ngm, &gm, err)) ||
        (rc = pf_rd(in, "consensus/groups/share", &gshare, err)) ||
        (rc = pf_rd(in, "consensus/groups/expected", &gexp, err)) ||
        (rc = pf_rd(in, "consensus/groups/numel", &gnum, err)))
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
    PfRange r = pf_range_new();
    for (size_t j = 0; j <= K; j++) {
        fprintf(d.f, "%zu ", j);
        pd_num(d.f, share.v[j]);
        fputc(' ', d.f);
        pd_num(d.f, expd.v[j]);
        fputc('\n', d.f);
        pf_range_add(&r, share.v[j]);
        pf_range_add(&r, expd.v[j]);
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
    PfRange rm = pf_range_new();
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
            pf_range_add(&rm, en);
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
        pf_module_words(mods, nm, NULL, &mw);
        pv_str(&vars, "file", d.rel);
        pv_str(&vars, "mapfile", nm ? h.rel : "");
        pv_str(&vars, "modules", mw.s);
        pv_str(&vars, "label", in->label);
        pv_int(&vars, "k", (long long)K);
        pv_int(&vars, "logy", pf_range_log(r));
        pv_int(&vars, "logcb", pf_range_log(rm));
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

int fig_overlap(PlotCtx *c, SsError *err)
{
    if (!pf_count_kind(c, PIN_OVERLAP)) {
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
