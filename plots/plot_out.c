/* The figure folder, data files and gnuplot runs of sparsity-plot (see plot_out.h). */
#include "plots/plot_out.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- strings ---- */

void sb_add(StrBuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) {
        b->oom = 1;
        return;
    }
    if (b->len + (size_t)need + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)need + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)need;
}

void sb_free(StrBuf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

static void sb_sep(StrBuf *vars)
{
    if (vars->len)
        sb_add(vars, "; ");
}

void pv_str(StrBuf *vars, const char *name, const char *value)
{
    sb_sep(vars);
    sb_add(vars, "%s='", name);
    for (const char *p = value; *p; p++) {
        if (*p == '\'')
            sb_add(vars, "''");
        else
            sb_add(vars, "%c", *p);
    }
    sb_add(vars, "'");
}

void pv_num(StrBuf *vars, const char *name, double value)
{
    sb_sep(vars);
    if (isfinite(value))
        sb_add(vars, "%s=%.17g", name, value);
    else
        sb_add(vars, "%s=NaN", name);
}

void pv_int(StrBuf *vars, const char *name, long long value)
{
    sb_sep(vars);
    sb_add(vars, "%s=%lld", name, value);
}

void plot_file_label(const char *in, char *out, size_t len)
{
    size_t j = 0;
    for (const char *p = in; *p && j + 1 < len; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '+' || c == '@' || c == '-';
        out[j++] = ok ? c : '_';
    }
    out[j] = '\0';
    if (j == 0 && len > 1)
        snprintf(out, len, "_");
}

/* ---- running gnuplot ---- */

/* Runs argv[0] with argv in folder dir (NULL: here), stdout to /dev/null, stderr captured into
 * *errout (malloc'd, the last 16 KiB). Returns the exit status (128 + signal when killed), or -1
 * with errno_out set when the program could not be started. */
static int run_capture(char *const argv[], const char *dir, char **errout, int *errno_out)
{
    *errout = NULL;
    *errno_out = 0;
    int errpipe[2], execpipe[2];
    if (pipe(errpipe) != 0) {
        *errno_out = errno;
        return -1;
    }
    if (pipe2(execpipe, O_CLOEXEC) != 0) {
        *errno_out = errno;
        close(errpipe[0]);
        close(errpipe[1]);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        *errno_out = errno;
        close(errpipe[0]);
        close(errpipe[1]);
        close(execpipe[0]);
        close(execpipe[1]);
        return -1;
    }
    if (pid == 0) {
        close(errpipe[0]);
        close(execpipe[0]);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        dup2(errpipe[1], STDERR_FILENO);
        int e = 0;
        if (dir && chdir(dir) != 0)
            e = errno;
        else {
            execvp(argv[0], argv);
            e = errno;
        }
        if (write(execpipe[1], &e, sizeof e) < 0) {
            /* nothing more to do */
        }
        _exit(127);
    }
    close(errpipe[1]);
    close(execpipe[1]);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    const size_t keep = 16384;
    char chunk[4096];
    for (;;) {
        ssize_t k = read(errpipe[0], chunk, sizeof chunk);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (len + (size_t)k + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            while (ncap < len + (size_t)k + 1)
                ncap *= 2;
            char *nb = realloc(buf, ncap);
            if (!nb)
                continue; /* drop the text, keep draining */
            buf = nb;
            cap = ncap;
        }
        memcpy(buf + len, chunk, (size_t)k);
        len += (size_t)k;
        if (len > 2 * keep) { /* keep the tail */
            memmove(buf, buf + len - keep, keep);
            len = keep;
        }
    }
    close(errpipe[0]);
    if (buf)
        buf[len] = '\0';
    int child_errno = 0;
    ssize_t k;
    while ((k = read(execpipe[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
    }
    close(execpipe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = 127 << 8;
            break;
        }
    }
    if (k == (ssize_t)sizeof child_errno) {
        free(buf);
        *errno_out = child_errno ? child_errno : ENOEXEC;
        return -1;
    }
    *errout = buf;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 127;
}

/* The last few non-empty lines of text, joined with " | ", into out. */
static void tail_lines(const char *text, char *out, size_t len, int nlines)
{
    out[0] = '\0';
    if (!text)
        return;
    const char *end = text + strlen(text);
    while (end > text && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\r'))
        end--;
    const char *start = end;
    for (int lines = 0; start > text && lines < nlines;) {
        start--;
        if (*start == '\n') {
            lines++;
            if (lines == nlines) {
                start++;
                break;
            }
        }
    }
    size_t j = 0;
    for (const char *p = start; p < end && j + 4 < len; p++) {
        if (*p == '\n') {
            while (j && out[j - 1] == ' ')
                j--;
            memcpy(out + j, " | ", 3);
            j += 3;
            while (p + 1 < end && (p[1] == ' ' || p[1] == '\n'))
                p++;
        } else if (*p != '\r') {
            out[j++] = *p;
        }
    }
    out[j] = '\0';
}

static int gnuplot_fail(SsError *err, const PlotOut *o, int e)
{
    return ss_err(err, PLOT_EGNUPLOT,
                  "cannot run gnuplot '%s': %s (install gnuplot, or set SS_GNUPLOT to its path)",
                  o->gnuplot, strerror(e));
}

/* ---- the figure folder ---- */

static int mkdir_p(const char *path, SsError *err)
{
    char *p = strdup(path);
    if (!p)
        return ss_err(err, SS_EOUTPUT, "out of memory");
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                int rc = ss_err(err, SS_EOUTPUT, "%s: cannot create the folder: %s", p,
                                strerror(errno));
                free(p);
                return rc;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    int ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    int rc = ok ? 0 : ss_err(err, SS_EOUTPUT, "%s: not a folder", p);
    free(p);
    return rc;
}

int pout_init(PlotOut *o, const char *figdir, const char *format, const char *gnuplot,
              const char *scripts, SsError *err)
{
    memset(o, 0, sizeof *o);
    o->figdir = figdir;
    o->gnuplot = gnuplot;
    o->scripts = scripts;
    const char *terms[2] = {NULL, NULL};
    if (strcmp(format, "png") == 0) {
        terms[0] = "pngcairo size 1500,1000 font 'Sans,13' linewidth 1.5";
        terms[1] = "png size 1500,1000 font 'Sans,12'";
    } else if (strcmp(format, "svg") == 0) {
        terms[0] = "svg size 1500,1000 dynamic font 'Sans,13' linewidth 1.5";
    } else if (strcmp(format, "pdf") == 0) {
        terms[0] = "pdfcairo size 15in,10in font 'Sans,13' linewidth 1.5";
    } else {
        return ss_err(err, SS_EUSAGE, "--format must be png, svg or pdf, not '%s'", format);
    }
    o->ext = format;
    char last[512] = "";
    for (int i = 0; i < 2 && terms[i]; i++) {
        char probe[256];
        snprintf(probe, sizeof probe, "set terminal %s", terms[i]);
        char *argv[] = {(char *)gnuplot, "-e", probe, NULL};
        char *errtext = NULL;
        int e = 0;
        int st = run_capture(argv, NULL, &errtext, &e);
        if (st < 0)
            return gnuplot_fail(err, o, e);
        tail_lines(errtext, last, sizeof last, 3);
        free(errtext);
        if (st == 0) {
            snprintf(o->term, sizeof o->term, "%s", terms[i]);
            break;
        }
    }
    if (!o->term[0])
        return ss_err(err, PLOT_EGNUPLOT, "gnuplot '%s' has no terminal for %s: %s", gnuplot,
                      format, last[0] ? last : "(no message)");
    int rc = mkdir_p(figdir, err);
    for (int i = 0; i < 2 && !rc; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", figdir, i ? "scripts" : "data");
        rc = mkdir_p(path, err);
    }
    return rc;
}

/* Writes text to path through path.tmp.<pid> and a rename. */
static int write_atomic(const char *path, const char *text, size_t len, int mode, SsError *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", path, strerror(errno));
    int bad = len && fwrite(text, 1, len, f) != len;
    bad |= fflush(f) != 0 || ferror(f);
    bad |= fclose(f) != 0;
    if (!bad && mode)
        chmod(tmp, (mode_t)mode);
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", path, strerror(e));
    }
    return 0;
}

int pout_finish(PlotOut *o, SsError *err)
{
    StrBuf sh = {0};
    sb_add(&sh, "#!/bin/sh\n"
                "# Redraws the figures of this folder from data/ with the scripts in scripts/\n"
                "# (written by sparsity-plot; edit the scripts and run this again).\n"
                "cd \"$(dirname \"$0\")\" || exit 1\n"
                "GNUPLOT=${GNUPLOT:-gnuplot}\n");
    if (o->replot.len)
        sb_add(&sh, "%s", o->replot.s);
    int rc = 0;
    if (sh.oom)
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
    else {
        char path[4096];
        snprintf(path, sizeof path, "%s/replot.sh", o->figdir);
        rc = write_atomic(path, sh.s, sh.len, 0755, err);
    }
    sb_free(&sh);
    return rc;
}

void pout_free(PlotOut *o)
{
    sb_free(&o->replot);
}

/* ---- data files ---- */

int pd_open(PlotOut *o, DataFile *d, const char *name, const char *header, SsError *err)
{
    memset(d, 0, sizeof *d);
    size_t n = strlen(o->figdir) + strlen(name) + 64;
    d->path = malloc(n);
    d->tmp = malloc(n + 32);
    d->rel = malloc(strlen(name) + 8);
    if (!d->path || !d->tmp || !d->rel) {
        pd_free(d);
        return ss_err(err, SS_EOUTPUT, "out of memory");
    }
    snprintf(d->path, n, "%s/data/%s", o->figdir, name);
    snprintf(d->tmp, n + 32, "%s/data/.%s.tmp.%ld", o->figdir, name, (long)getpid());
    snprintf(d->rel, strlen(name) + 8, "data/%s", name);
    d->f = fopen(d->tmp, "w");
    if (!d->f) {
        int rc = ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", d->path, strerror(errno));
        pd_free(d);
        return rc;
    }
    fputs("# ", d->f);
    for (const char *p = header; *p; p++) {
        fputc(*p, d->f);
        if (*p == '\n')
            fputs("# ", d->f);
    }
    fputc('\n', d->f);
    return 0;
}

int pd_close(DataFile *d, SsError *err)
{
    int bad = fflush(d->f) != 0 || ferror(d->f);
    bad |= fclose(d->f) != 0;
    d->f = NULL;
    if (bad || rename(d->tmp, d->path) != 0) {
        int e = errno;
        unlink(d->tmp);
        return ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", d->path, strerror(e));
    }
    return 0;
}

void pd_abort(DataFile *d)
{
    if (d->f) {
        fclose(d->f);
        d->f = NULL;
        unlink(d->tmp);
    }
}

void pd_free(DataFile *d)
{
    pd_abort(d);
    free(d->path);
    free(d->tmp);
    free(d->rel);
    memset(d, 0, sizeof *d);
}

void pd_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.17g", v);
    else
        fputs("NaN", f);
}

/* ---- figures ---- */

/* Copies scripts/KIND.gp from o->scripts into FIGDIR/scripts/ (once per run). */
static int copy_script(PlotOut *o, const char *kind, SsError *err)
{
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/%s.gp", o->scripts, kind);
    snprintf(dst, sizeof dst, "%s/scripts/%s.gp", o->figdir, kind);
    FILE *f = fopen(src, "r");
    if (!f)
        return ss_err(err, SS_EINPUT, "%s: cannot read the gnuplot script: %s (set "
                      "SS_PLOT_SCRIPTS or --scripts to the folder of the *.gp files)", src,
                      strerror(errno));
    StrBuf text = {0};
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf - 1, f)) > 0) {
        buf[k] = '\0';
        sb_add(&text, "%s", buf);
    }
    int bad = ferror(f);
    fclose(f);
    int rc;
    if (bad)
        rc = ss_err(err, SS_EINPUT, "%s: cannot read the gnuplot script", src);
    else if (text.oom)
        rc = ss_err(err, SS_EOUTPUT, "out of memory");
    else
        rc = write_atomic(dst, text.s ? text.s : "", text.len, 0, err);
    sb_free(&text);
    return rc;
}

static void shell_quote(StrBuf *b, const char *s)
{
    sb_add(b, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            sb_add(b, "'\\''");
        else
            sb_add(b, "%c", *p);
    }
    sb_add(b, "'");
}

int pout_draw(PlotOut *o, const char *kind, const char *fig, const StrBuf *vars, const char *note,
              SsError *err)
{
    int rc = copy_script(o, "common", err);
    if (!rc)
        rc = copy_script(o, kind, err);
    if (rc)
        return rc;
    char final[4096], tmpname[1024], tmppath[4096], script[512];
    snprintf(final, sizeof final, "%s/%s.%s", o->figdir, fig, o->ext);
    snprintf(tmpname, sizeof tmpname, ".%s.tmp.%ld.%s", fig, (long)getpid(), o->ext);
    snprintf(tmppath, sizeof tmppath, "%s/%s", o->figdir, tmpname);
    snprintf(script, sizeof script, "scripts/%s.gp", kind);

    char outname[1024];
    snprintf(outname, sizeof outname, "%s.%s", fig, o->ext);
    StrBuf run = {0}, keep = {0};
    pv_str(&run, "term", o->term);
    pv_str(&run, "out", tmpname);
    pv_str(&keep, "term", o->term);
    pv_str(&keep, "out", outname);
    if (vars && vars->len) {
        sb_add(&run, "; %s", vars->s);
        sb_add(&keep, "; %s", vars->s);
    }
    if (run.oom || keep.oom) {
        sb_free(&run);
        sb_free(&keep);
        return ss_err(err, SS_EOUTPUT, "out of memory");
    }
    char *argv[] = {(char *)o->gnuplot, "-e", run.s, script, NULL};
    char *errtext = NULL;
    int e = 0;
    int st = run_capture(argv, o->figdir, &errtext, &e);
    struct stat sbuf;
    if (st < 0) {
        rc = gnuplot_fail(err, o, e);
    } else if (st != 0) {
        char last[700];
        tail_lines(errtext, last, sizeof last, 4);
        rc = ss_err(err, PLOT_EGNUPLOT, "%s: gnuplot failed (exit %d) on %s: %s", final, st,
                    script, last[0] ? last : "(no message)");
    } else if (stat(tmppath, &sbuf) != 0 || sbuf.st_size == 0) {
        rc = ss_err(err, PLOT_EGNUPLOT, "%s: gnuplot wrote no figure (%s)", final, script);
    } else if (rename(tmppath, final) != 0) {
        rc = ss_err(err, SS_EOUTPUT, "%s: cannot write: %s", final, strerror(errno));
    }
    if (rc)
        unlink(tmppath);
    else {
        /* gnuplot's warnings (an empty data set, a log axis without positive values) */
        if (errtext) {
            char *save = NULL;
            for (char *line = strtok_r(errtext, "\n", &save); line;
                 line = strtok_r(NULL, "\n", &save))
                if (strstr(line, "arning"))
                    fprintf(stderr, "sparsity-plot: gnuplot (%s): %s\n", fig, line);
        }
        fprintf(stderr, "sparsity-plot: drawn: %s%s%s%s\n", final, note ? " (" : "",
                note ? note : "", note ? ")" : "");
        o->ndrawn++;
        sb_add(&o->replot, "\"$GNUPLOT\" -e ");
        shell_quote(&o->replot, keep.s);
        sb_add(&o->replot, " %s\n", script);
    }
    free(errtext);
    sb_free(&run);
    sb_free(&keep);
    return rc;
}

void pout_skip(PlotOut *o, const char *what, const char *fmt, ...)
{
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sparsity-plot: skipped: %s: %s\n", what, why);
    o->nskipped++;
}
