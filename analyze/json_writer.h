/* A small streaming JSON writer for the tools' --json output: objects, arrays, strings (UTF-8
 * passed through, control characters escaped), unsigned integers, and doubles in the shortest
 * form that reads back to the same value ("null" for NaN and infinities). Commas are inserted
 * automatically; nesting deeper than JW_MAX_DEPTH is a caller bug (extra levels are not tracked). */
#ifndef SS_JSON_WRITER_H
#define SS_JSON_WRITER_H

#include <stdint.h>
#include <stdio.h>

#define JW_MAX_DEPTH 32

typedef struct JsonWriter {
    FILE *f;
    int depth;
    int count[JW_MAX_DEPTH]; /* items written at each level, for commas */
    char kind[JW_MAX_DEPTH]; /* '{' or '[' at each level */
    char multiline[JW_MAX_DEPTH]; /* an item at that level started a new line */
    int after_key;           /* a key was just written: the next value needs no comma */
    int pretty;              /* one line per member of the two outer levels, and per object
                                in an array there; deeper levels stay on one line */
} JsonWriter;

void jw_init(JsonWriter *w, FILE *f, int pretty);
void jw_object_begin(JsonWriter *w);
void jw_object_end(JsonWriter *w);
void jw_array_begin(JsonWriter *w);
void jw_array_end(JsonWriter *w);
void jw_key(JsonWriter *w, const char *key);
void jw_string(JsonWriter *w, const char *s);
void jw_uint(JsonWriter *w, uint64_t v);
void jw_double(JsonWriter *w, double v);
void jw_null(JsonWriter *w);

/* Shortest "%.{15,16,17}g" rendering of v that strtod reads back exactly. */
void jw_format_double(double v, char *buf, size_t len);

#endif
