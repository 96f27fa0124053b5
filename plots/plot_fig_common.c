/* Helpers the figure files share (plots/plot_fig_internal.h): ranges, formatting, reading
 * report datasets, tensor selection. */
#include "plots/plot_fig_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* Adds one word to a gnuplot word list: "w" (double quotes and backslashes become '_'). */
void pf_words_add(StrBuf *b, const char *w)
{
    if (b->len)
        sb_add(b, " ");
    sb_add(b, "\"");
    for (const char *p = w; *p; p++)
        sb_add(b, "%c", (*p == '"' || *p == '\\' || *p == '\'') ? '_' : *p);
    sb_add(b, "\"");
}


PfRange pf_range_new(void)
{
    return (PfRange){INFINITY, 0};
}

void pf_range_add(PfRange *r, double v)
{
    if (isfinite(v) && v > 0) {
        if (v < r->lo)
            r->lo = v;
        if (v > r->hi)
            r->hi = v;
    }
}

int pf_range_log(PfRange r)
{
    return r.hi > 0 && r.hi / r.lo >= 20;
}

/* "99.9905%": the sparsity with enough decimals that 1 - s shows three significant digits. */
void pf_fmt_sparsity(double s, char *out, size_t len)
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

double pf_frac(double part, double whole)
{
    return whole > 0 ? part / whole : NAN;
}

/* Reads dataset obj of in's report. */
int pf_rd(PlotInput *in, const char *obj, PlotArray *a, SsError *err)
{
    return ph5_dataset(&in->h5, obj, a, err);
}

int pf_rd_strings(PlotInput *in, const char *obj, size_t *n, char ***v, SsError *err)
{
    return h5r_strings(in->h5.r, obj, n, v, err);
}

/* The HDF5 member name of a tensor (docs/hdf5-schema.md, /masks): '%' -> %25, '/' -> %2F. */
void pf_h5_escape(const char *name, char *out, size_t len)
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

size_t pf_count_kind(const PlotCtx *c, PlotInKind k)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++)
        n += c->in[i].kind == k;
    return n;
}

/* A short tensor name for file names and titles: "model.layers." dropped, ".weight" dropped. */
void pf_short_tensor(const char *name, char *out, size_t len)
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
void pf_module_words(char **mods, size_t n, const int *keep, StrBuf *b)
{
    for (size_t i = 0; i < n; i++)
        if (!keep || keep[i])
            pf_words_add(b, mods[i]);
}

/* ---- tensor selection for maps and spectra ---- */


void pf_tl_free(PfTensorList *t)
{
    h5r_free_strings(t->n, t->names);
    memset(t, 0, sizeof *t);
}

/* The tensors to draw from group (whose members are escaped tensor names): --tensor's names
 * present there, or those of modules[] in the middle layer (layers >= 0 of /tensors). */
int pf_select_tensors(PlotCtx *c, PlotInput *in, const char *group, const char *what,
                          const char *const *modules, PfTensorList *out, SsError *err)
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
            pf_h5_escape(c->tensors[k], esc, sizeof esc);
            snprintf(path, sizeof path, "%s/%s", group, esc);
            if (ph5_exists(&in->h5, path))
                pick[np++] = strdup(c->tensors[k]);
            else
                pout_skip(c->o, what, "%s: no %s for tensor '%s'", in->path, group,
                          c->tensors[k]);
        }
    } else {
        if ((rc = pf_rd_strings(in, "tensors/name", &nt, &names, err)) ||
            (rc = pf_rd(in, "tensors/layer", &layer, err)))
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
                pf_h5_escape(names[i], esc, sizeof esc);
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
