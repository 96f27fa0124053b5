/* Streaming JSON output (see json_writer.h). */
#include "analyze/json_writer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void jw_init(JsonWriter *w, FILE *f, int pretty)
{
    memset(w, 0, sizeof *w);
    w->f = f;
    w->pretty = pretty;
}

static void indent(JsonWriter *w)
{
    fputc('\n', w->f);
    for (int i = 0; i < w->depth; i++)
        fputs("  ", w->f);
}

/* Whether an item at the current level starts on its own line. */
static int item_on_new_line(const JsonWriter *w, int is_key, int opens_object)
{
    if (!w->pretty || w->depth < 1 || w->depth > 2)
        return 0;
    return is_key || (w->kind[w->depth - 1] == '[' && opens_object);
}

/* Separator (and line break) before a value or key at the current level. */
static void before_item(JsonWriter *w, int is_key, int opens_object)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth < 1 || w->depth > JW_MAX_DEPTH)
        return;
    int new_line = item_on_new_line(w, is_key, opens_object);
    if (w->count[w->depth - 1]++ > 0)
        fputs(new_line ? "," : ", ", w->f);
    if (new_line) {
        w->multiline[w->depth - 1] = 1;
        indent(w);
    }
}

static void open_level(JsonWriter *w, char c)
{
    before_item(w, 0, c == '{');
    fputc(c, w->f);
    if (w->depth < JW_MAX_DEPTH) {
        w->count[w->depth] = 0;
        w->kind[w->depth] = c;
        w->multiline[w->depth] = 0;
    }
    w->depth++;
}

static void close_level(JsonWriter *w, char c)
{
    w->depth--;
    if (w->depth < JW_MAX_DEPTH && w->multiline[w->depth])
        indent(w);
    fputc(c, w->f);
}

void jw_object_begin(JsonWriter *w) { open_level(w, '{'); }
void jw_object_end(JsonWriter *w) { close_level(w, '}'); }
void jw_array_begin(JsonWriter *w) { open_level(w, '['); }
void jw_array_end(JsonWriter *w) { close_level(w, ']'); }

static void write_escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void jw_key(JsonWriter *w, const char *key)
{
    before_item(w, 1, 0);
    write_escaped(w->f, key);
    fputs(": ", w->f);
    w->after_key = 1;
}

void jw_string(JsonWriter *w, const char *s)
{
    before_item(w, 0, 0);
    write_escaped(w->f, s);
}

void jw_uint(JsonWriter *w, uint64_t v)
{
    before_item(w, 0, 0);
    fprintf(w->f, "%llu", (unsigned long long)v);
}

void jw_format_double(double v, char *buf, size_t len)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

void jw_double(JsonWriter *w, double v)
{
    if (!isfinite(v)) {
        jw_null(w);
        return;
    }
    char buf[40];
    jw_format_double(v, buf, sizeof buf);
    before_item(w, 0, 0);
    fputs(buf, w->f); /* finite %g output is valid JSON ("3", "-1.5e-05") */
}

void jw_null(JsonWriter *w)
{
    before_item(w, 0, 0);
    fputs("null", w->f);
}
