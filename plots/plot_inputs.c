/* Opening sparsity-plot's inputs and naming them (see plot_inputs.h). */
#include "plots/plot_inputs.h"

#include "plots/plot_out.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

const char *pin_kind_name(PlotInKind k)
{
    switch (k) {
    case PIN_SCAN: return "sparsity-scan report";
    case PIN_SERIES: return "sparsity-series report";
    case PIN_OVERLAP: return "sparsity-overlap report";
    case PIN_RUN: return "run folder";
    }
    return "?";
}

/* ---- metrics.jsonl ---- */

static void metrics_free(RunMetrics *m)
{
    free(m->step);
    free(m->reward);
    free(m->kl);
    free(m->entropy);
    free(m->resp_len);
    free(m->eval_step);
    free(m->eval_acc);
    memset(m, 0, sizeof *m);
}

static int grow(double **p, size_t n)
{
    if (n & (n - 1))
        return 0; /* grow at powers of two */
    double *q = realloc(*p, (n ? 2 * n : 1) * sizeof *q);
    if (!q)
        return -1;
    *p = q;
    return 0;
}

static double jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int metrics_read(const char *path, RunMetrics *m, SsError *err)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        return ss_err(err, SS_EINPUT, "%s: cannot read: %s", path, strerror(errno));
    }
    m->present = 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    for (size_t lineno = 1; (len = getline(&line, &cap, f)) >= 0; lineno++) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            continue;
        json_error_t jerr;
        json_t *o = json_loads(p, JSON_REJECT_DUPLICATES, &jerr);
        if (!o || !json_is_object(o)) {
            json_decref(o);
            rc = ss_err(err, SS_EINPUT, "%s: line %zu: not a JSON object%s%s", path, lineno,
                        o ? "" : ": ", o ? "" : jerr.text);
            break;
        }
        json_t *jstep = json_object_get(o, "step");
        if (!json_is_number(jstep)) {
            json_decref(o);
            rc = ss_err(err, SS_EINPUT, "%s: line %zu: no numeric \"step\"", path, lineno);
            break;
        }
        double step = json_number_value(jstep);
        if (json_object_get(o, "eval_acc")) {
            if (grow(&m->eval_step, m->neval) || grow(&m->eval_acc, m->neval)) {
                json_decref(o);
                rc = ss_err(err, SS_EOUTPUT, "out of memory");
                break;
            }
            m->eval_step[m->neval] = step;
            m->eval_acc[m->neval] = jnum(o, "eval_acc");
            m->neval++;
        } else {
            if (grow(&m->step, m->nstep) || grow(&m->reward, m->nstep) ||
                grow(&m->kl, m->nstep) || grow(&m->entropy, m->nstep) ||
                grow(&m->resp_len, m->nstep)) {
                json_decref(o);
                rc = ss_err(err, SS_EOUTPUT, "out of memory");
                break;
            }
            m->step[m->nstep] = step;
            m->reward[m->nstep] = jnum(o, "reward_mean");
            m->kl[m->nstep] = jnum(o, "kl");
            m->entropy[m->nstep] = jnum(o, "entropy");
            m->resp_len[m->nstep] = jnum(o, "resp_len_mean");
            m->nstep++;
        }
        json_decref(o);
    }
    if (!rc && ferror(f))
        rc = ss_err(err, SS_EINPUT, "%s: cannot read: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (rc)
        metrics_free(m);
    return rc;
}

/* ---- opening ---- */

int pin_open(const char *path, PlotInput *in, SsError *err)
{
    memset(in, 0, sizeof *in);
    in->path = path;
    in->h5.fid = -1;
    struct stat st;
    if (stat(path, &st) != 0)
        return ss_err(err, SS_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        in->kind = PIN_RUN;
        size_t n = strlen(path) + 32;
        char *mpath = malloc(n);
        if (!mpath)
            return ss_err(err, SS_EOUTPUT, "out of memory");
        snprintf(mpath, n, "%s/metrics.jsonl", path);
        int rc = metrics_read(mpath, &in->m, err);
        free(mpath);
        return rc;
    }
    int rc = ph5_open(path, &in->h5, err);
    if (rc)
        return rc;
    char *schema = NULL;
    if (h5r_attr_string(in->h5.r, "/", "schema", &schema, err) != 0) {
        ph5_close(&in->h5);
        return ss_err(err, SS_EINPUT, "%s: not a sparsity-scan, sparsity-series or "
                      "sparsity-overlap report (no schema attribute)", path);
    }
    if (strcmp(schema, "sparsity-scan/1") == 0)
        in->kind = PIN_SCAN;
    else if (strcmp(schema, "sparsity-series/1") == 0)
        in->kind = PIN_SERIES;
    else if (strcmp(schema, "sparsity-overlap/1") == 0)
        in->kind = PIN_OVERLAP;
    else
        rc = ss_err(err, SS_EINPUT, "%s: unknown report schema '%s'", path, schema);
    free(schema);
    if (rc)
        ph5_close(&in->h5);
    return rc;
}

void pin_close(PlotInput *in)
{
    if (in->kind != PIN_RUN)
        ph5_close(&in->h5);
    metrics_free(&in->m);
}

/* ---- labels ---- */

void pin_path_label(const char *path, char *out, size_t len)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    char *base = strrchr(buf, '/');
    base = base ? base + 1 : buf;
    const char *suffix = ".safetensors";
    size_t bl = strlen(base), sl = strlen(suffix);
    if (strcmp(base, "model.safetensors") == 0 && base > buf + 1) {
        base[-1] = '\0';
        char *up = strrchr(buf, '/');
        base = up ? up + 1 : buf;
    } else if (bl > sl && strcmp(base + bl - sl, suffix) == 0) {
        base[bl - sl] = '\0';
    } else if (bl > 3 && strcmp(base + bl - 3, ".h5") == 0) {
        base[bl - 3] = '\0';
    }
    snprintf(out, len, "%s", *base ? base : path);
}

static void display_label(const char *in, char *out, size_t len)
{
    size_t j = 0;
    for (const char *p = in; *p && j + 1 < len; p++)
        out[j++] = (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\'' || *p == '"') ? '_' : *p;
    out[j] = '\0';
    if (!j)
        snprintf(out, len, "run");
}

static void default_label(PlotInput *in, char *out, size_t len)
{
    SsError err = {0};
    char *s = NULL;
    char **v = NULL;
    size_t n = 0;
    if (in->kind == PIN_SCAN && h5r_attr_strings(in->h5.r, "/", "inputs", &n, &v, &err) == 0 &&
        n == 2) {
        pin_path_label(v[1], out, len);
    } else if (in->kind == PIN_SERIES && h5r_attr_string(in->h5.r, "/", "run", &s, &err) == 0) {
        pin_path_label(s, out, len);
    } else {
        pin_path_label(in->path, out, len);
    }
    if (v)
        h5r_free_strings(n, v);
    free(s);
}

void pin_labels(PlotInput *in, size_t n, char *const *labels, size_t nlabels)
{
    for (size_t i = 0; i < n; i++) {
        char raw[256];
        if (i < nlabels && labels[i][0])
            snprintf(raw, sizeof raw, "%s", labels[i]);
        else
            default_label(&in[i], raw, sizeof raw);
        display_label(raw, in[i].label, sizeof in[i].label);
    }
    /* Labels repeat among inputs of one kind (two reports of the same run): number them. */
    for (size_t i = 1; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            if (in[j].kind == in[i].kind && strcmp(in[j].label, in[i].label) == 0)
                dup++;
        if (dup) {
            char tmp[128];
            snprintf(tmp, sizeof tmp, "%.100s-%d", in[i].label, dup + 1);
            snprintf(in[i].label, sizeof in[i].label, "%s", tmp);
        }
    }
    for (size_t i = 0; i < n; i++)
        plot_file_label(in[i].label, in[i].flabel, sizeof in[i].flabel);
}
