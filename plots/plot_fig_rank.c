/* Rank figures (/rank): singular-value spectra, energy against rank with the LoRA-parameter
 * equivalence, numerical-rank fractions. */
#include "plots/plot_fig_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    PfTensorList t;
    int rc = pf_select_tensors(c, in, "rank/singular_values", fig, spectra_modules, &t, err);
    if (rc)
        return rc;
    if (!t.n) {
        if (!c->ntensors)
            pout_skip(c->o, fig, "%s: no matrix of the middle layer in /rank/singular_values",
                      in->path);
        pf_tl_free(&t);
        return 0;
    }
    StrBuf files = {0}, titles = {0}, rs = {0}, vars = {0};
    for (size_t k = 0; k < t.n && !rc; k++) {
        char esc[1024], obj[1200], st[512], fst[512], name[800], header[1600];
        pf_h5_escape(t.names[k], esc, sizeof esc);
        snprintf(obj, sizeof obj, "rank/singular_values/%s", esc);
        PlotArray sv = {0};
        if ((rc = pf_rd(in, obj, &sv, err)))
            break;
        pf_short_tensor(t.names[k], st, sizeof st);
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
        pf_words_add(&files, d.rel);
        pf_words_add(&titles, st);
        size_t ri = find_name(rnames, nr, t.names[k]);
        char v[64];
        snprintf(v, sizeof v, "%.6g", ri < nr && ri < rstar->n ? rstar->v[ri] : NAN);
        pf_words_add(&rs, v);
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
    pf_tl_free(&t);
    return rc;
}

int fig_rank(PlotCtx *c, SsError *err)
{
    if (!pf_count_kind(c, PIN_SCAN)) {
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
        if ((rc = pf_rd_strings(in, "rank/name", &nr, &rn, err)) ||
            (rc = pf_rd(in, "rank/m", &m, err)) || (rc = pf_rd(in, "rank/n", &n, err)) ||
            (rc = pf_rd(in, "rank/numerical_rank_fraction", &nrf, err)) ||
            (rc = pf_rd(in, "rank/effective_rank_99", &e99, err)) ||
            (rc = pf_rd(in, "rank/energy_at_r", &energy, err)) ||
            (rc = pf_rd(in, "rank/frobenius", &frob, err)) ||
            (rc = pf_rd(in, "rank/lora_r_star", &rstar, err)) ||
            (rc = ph5_attr(&in->h5, "rank", "r", &rr, err)) ||
            (rc = ph5_attr_f64(&in->h5, "rank", "lora_r_star", &model_rstar, err)) ||
            (rc = pf_rd_strings(in, "tensors/name", &nt, &tn, err)) ||
            (rc = pf_rd_strings(in, "tensors/module", &ntm, &tmod, err)) ||
            (rc = pf_rd(in, "tensors/layer", &tlayer, err)))
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
        pf_words_add(&efiles, d.rel);
        pd_free(&d);
        pf_words_add(&titles, in->label);
        char v[64];
        snprintf(v, sizeof v, "%.6g", model_rstar);
        pf_words_add(&rstars, v);
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
            pf_words_add(&mw, seen[s]);
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
