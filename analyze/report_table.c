/* The human-readable reports of sparsity-scan: a summary, then a table of tensors with the least
 * sparse first and a totals line, or (--by-layer) one row per layer. */
#include "analyze/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Row {
    double sparsity;
    const char *name;
    size_t index;  /* into r->pairs.pairs / r->counts */
} Row;

static int row_compare(const void *x, const void *y)
{
    const Row *p = x, *q = y;
    if (p->sparsity != q->sparsity)
        return p->sparsity < q->sparsity ? -1 : 1;
    return strcmp(p->name, q->name);
}

static void print_header(FILE *f, const ScanReport *r)
{
    char key[64];
    fprintf(f, "%10s %15s %15s", "sparsity", "changed", "numel");
    for (size_t k = 0; k < r->cfg.ntol; k++) {
        char col[80];
        scan_tol_key(r->cfg.tol[k], key, sizeof key);
        snprintf(col, sizeof col, ">%s", key);
        fprintf(f, " %15s", col);
    }
    if (r->cfg.has_rtol) {
        char col[80];
        scan_tol_key(r->cfg.rtol, key, sizeof key);
        snprintf(col, sizeof col, ">%s*max", key);
        fprintf(f, " %15s", col);
    }
    fprintf(f, " %9s %11s %11s  %-5s %-14s %s\n", "nonfinite", "max|B-A|", "|B-A|/|A|", "dtype",
            "shape", "name");
}

/* Sparsity as a percentage with 4 decimals, never shown as 100% while something changed. */
static void print_sparsity(FILE *f, const ScanCounts *c)
{
    double pct = 100.0 * scan_sparsity(c);
    if (c->changed > 0 && pct >= 99.99995)
        fprintf(f, "%10s", ">99.9999%");
    else
        fprintf(f, "%9.4f%%", pct);
}

static void print_counts(FILE *f, const ScanReport *r, const ScanCounts *c)
{
    print_sparsity(f, c);
    fprintf(f, " %15llu %15llu", (unsigned long long)c->changed, (unsigned long long)c->numel);
    for (size_t k = 0; k < r->cfg.ntol; k++)
        fprintf(f, " %15llu", (unsigned long long)c->changed_tol[k]);
    if (r->cfg.has_rtol)
        fprintf(f, " %15llu", (unsigned long long)c->changed_rtol);
    double rel = scan_rel_l2_delta(c);
    fprintf(f, " %9llu %11.4g ", (unsigned long long)c->nonfinite, c->max_abs_delta);
    if (isnan(rel))
        fprintf(f, "%11s", "-");
    else
        fprintf(f, "%11.4g", rel);
}

static void print_names(FILE *f, const char *what, const char *const *names, size_t n)
{
    if (n == 0)
        return;
    fprintf(f, "%s (%zu):", what, n);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? ", " : " ", names[i]);
    fputc('\n', f);
}

static void print_summary(FILE *f, const ScanReport *r)
{
    const PairList *pl = &r->pairs;
    fprintf(f, "A: %s\nB: %s\n", r->path_a, r->path_b);
    fprintf(f, "compared %zu tensors, %llu elements (%.3f GB of A+B in %.2f s)\n", pl->npairs,
            (unsigned long long)r->total.numel, (double)r->bytes_scanned / 1e9, r->seconds);
    if (r->delta_dtype)
        fprintf(f, "tolerances tested on B-A rounded to %s (--delta-dtype)\n",
                scan_delta_dtype_name(r->delta_dtype));
    print_names(f, "only in A", pl->only_a, pl->nonly_a);
    print_names(f, "only in B", pl->only_b, pl->nonly_b);
    print_names(f, "skipped, dtype or shape differ", pl->mismatched, pl->nmismatched);
    fputc('\n', f);
}

void report_write_table(FILE *f, const ScanReport *r, size_t top)
{
    const PairList *pl = &r->pairs;
    print_summary(f, r);

    Row *rows = malloc((pl->npairs ? pl->npairs : 1) * sizeof *rows);
    if (!rows) {
        fprintf(f, "(out of memory sorting the table)\n");
        return;
    }
    for (size_t i = 0; i < pl->npairs; i++)
        rows[i] = (Row){scan_sparsity(&r->counts[i]), pl->pairs[i].a->name, i};
    qsort(rows, pl->npairs, sizeof *rows, row_compare);

    size_t shown = top && top < pl->npairs ? top : pl->npairs;
    print_header(f, r);
    for (size_t k = 0; k < shown; k++) {
        const StTensor *t = pl->pairs[rows[k].index].a;
        char shape[128];
        st_format_shape(shape, sizeof shape, t->ndim, t->shape);
        print_counts(f, r, &r->counts[rows[k].index]);
        fprintf(f, "  %-5s %-14s %s\n", dtype_name(t->dtype), shape, t->name);
    }
    if (shown < pl->npairs)
        fprintf(f, "... %zu more tensors, sparser than those above (--top 0 shows all)\n",
                pl->npairs - shown);
    print_counts(f, r, &r->total);
    fprintf(f, "  %-5s %-14s %s\n", "", "", "TOTAL");
    free(rows);
}

/* A mean sparsity as a percentage in width 10 like print_sparsity (never 100% below 1), or "-"
 * for NaN (no matrices). */
static void print_mean(FILE *f, double x)
{
    double pct = 100.0 * x;
    if (isnan(x))
        fprintf(f, "%10s", "-");
    else if (x < 1.0 && pct >= 99.99995)
        fprintf(f, "%10s", ">99.9999%");
    else
        fprintf(f, "%9.4f%%", pct);
}

void report_write_by_layer(FILE *f, const ScanReport *r, const Grouping *g)
{
    print_summary(f, r);
    if (g->pattern)
        fprintf(f, "grouped by --group-regex '%s', names it does not match by the default rule\n\n",
                g->pattern);
    fprintf(f, "%6s %8s %8s %10s %10s %15s %15s  %s\n", "layer", "tensors", "matrices",
            "sparsity", "mean(mat)", "changed", "numel", "least sparse module");
    for (size_t l = 0; l < g->nlayers; l++) {
        const GroupLayer *L = &g->layers[l];
        const GroupCell *c = &g->cells[L->least_sparse_cell];
        fprintf(f, "%6lld %8zu %8zu ", (long long)L->layer, L->ntensors, L->nmatrices);
        print_sparsity(f, &L->counts);
        fputc(' ', f);
        print_mean(f, L->mean_matrix_sparsity);
        fprintf(f, " %15llu %15llu  %s (", (unsigned long long)L->counts.changed,
                (unsigned long long)L->counts.numel, g->modules[c->module_index]);
        double pct = 100.0 * scan_sparsity(&c->counts);
        if (c->counts.changed > 0 && pct >= 99.99995)
            fprintf(f, ">99.9999%%)\n");
        else
            fprintf(f, "%.4f%%)\n", pct);
    }
    fprintf(f, "%6s %8zu %8zu ", "TOTAL", r->pairs.npairs, g->layers_nmatrices);
    print_sparsity(f, &r->total);
    fputc(' ', f);
    print_mean(f, g->layers_mean_matrix_sparsity);
    fprintf(f, " %15llu %15llu\n", (unsigned long long)r->total.changed,
            (unsigned long long)r->total.numel);
    fprintf(f, "(layer -1: tensors outside the layers; mean(mat): unweighted mean of the sparsity of "
               "the 2-D tensors; TOTAL mean(mat) over layers >= 0 only)\n");
}
