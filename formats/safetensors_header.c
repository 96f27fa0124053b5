/* Validating one safetensors JSON header: byte-level pre-checks (UTF-8, nesting depth, "-0"), the
 * jansson parse (duplicate keys rejected), each entry's dtype, shape and data_offsets, and the
 * contiguous coverage of the data section. Every rule and its message is listed in
 * docs/safetensors-validation.md; keep the two in step. */
#include "formats/st_internal.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* A valid header nests object > tensor entry > shape array: 3 levels, never more. */
#define ST_MAX_DEPTH 3

/* ---- message helpers (shared with the other safetensors_*.c through st_internal.h) ---- */

char *st_quote(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (o + 8 > cap) { /* room for "\xNN", "..." and NUL */
            memcpy(dst + o, "...", 4);
            return dst;
        }
        if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", *p);
        else
            dst[o++] = (char)*p;
    }
    dst[o] = '\0';
    return dst;
}

char *st_format_shape(char *dst, size_t cap, int ndim, const uint64_t *shape)
{
    size_t o = 0;
    dst[o++] = '[';
    for (int i = 0; i < ndim; i++) {
        char num[32];
        int n = snprintf(num, sizeof num, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
        if (o + (size_t)n + 5 > cap) {
            memcpy(dst + o, "...]", 5);
            return dst;
        }
        memcpy(dst + o, num, (size_t)n);
        o += (size_t)n;
    }
    dst[o++] = ']';
    dst[o] = '\0';
    return dst;
}

const char *st_json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a JSON object";
    case JSON_ARRAY: return "a JSON array";
    case JSON_STRING: return "a JSON string";
    case JSON_INTEGER: return "a JSON integer";
    case JSON_REAL: return "a JSON real number";
    case JSON_TRUE: return "JSON true";
    case JSON_FALSE: return "JSON false";
    default: return "JSON null";
    }
}

/* Fills err with "<path>: [tensor '<name>': ]<reason>" and returns SS_EINPUT. */
__attribute__((format(printf, 4, 5))) static int header_fail(SsError *err, const char *path,
                                                            const char *tensor, const char *fmt,
                                                            ...)
{
    char reason[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (tensor) {
        char q[200];
        return ss_err(err, SS_EINPUT, "%s: tensor '%s': %s", path, st_quote(q, sizeof q, tensor),
                      reason);
    }
    return ss_err(err, SS_EINPUT, "%s: %s", path, reason);
}

/* ---- byte-level pre-checks ---- */

/* Offset of the first byte that does not start a valid UTF-8 sequence, or len. Overlong forms,
 * surrogates and code points past U+10FFFF are invalid, as for Rust's str::from_utf8. */
static size_t utf8_find_invalid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;              /* continuation bytes */
        unsigned lo = 0x80, hi = 0xbf; /* allowed range of the first continuation byte */
        if (c >= 0xc2 && c <= 0xdf)
            more = 1;
        else if (c == 0xe0)
            more = 2, lo = 0xa0;
        else if (c == 0xed)
            more = 2, hi = 0x9f;
        else if (c >= 0xe1 && c <= 0xef)
            more = 2;
        else if (c == 0xf0)
            more = 3, lo = 0x90;
        else if (c == 0xf4)
            more = 3, hi = 0x8f;
        else if (c >= 0xf1 && c <= 0xf3)
            more = 3;
        else
            return i;
        if (len - i - 1 < more || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= more; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
        i += more + 1;
    }
    return len;
}

/* One linear pass outside JSON strings, before jansson builds anything: rejects nesting deeper
 * than ST_MAX_DEPTH (a 100 MB header of '[' fails at its 4th byte), arrays at the deepest level
 * (shapes, data_offsets) longer than ST_MAX_NDIM (a 100 MB shape would cost jansson gigabytes),
 * and the integer -0, which jansson reads as 0 while the reference rejects it. Other malformed
 * JSON passes through to jansson. */
static int header_prescan(const char *path, const unsigned char *s, size_t len, SsError *err)
{
    int depth = 0;
    size_t commas = 0; /* in the current container at depth ST_MAX_DEPTH */
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped byte cannot end the string */
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '[':
        case '{':
            if (++depth > ST_MAX_DEPTH)
                return header_fail(err, path, NULL,
                                   "header nests deeper than %d levels (at header byte %zu)",
                                   ST_MAX_DEPTH, i);
            commas = 0;
            break;
        case ',':
            if (depth == ST_MAX_DEPTH && ++commas >= ST_MAX_NDIM)
                return header_fail(err, path, NULL,
                                   "header holds an array of more than %d entries (at header "
                                   "byte %zu); no shape has that many dimensions",
                                   ST_MAX_NDIM, i);
            break;
        case ']':
        case '}':
            depth--;
            break;
        case '-': {
            unsigned char next = i + 2 < len ? s[i + 2] : ' '; /* the byte after "-0" */
            bool longer = (next >= '0' && next <= '9') || next == '.' || next == 'e' || next == 'E';
            if (i + 1 < len && s[i + 1] == '0' && !longer)
                return header_fail(err, path, NULL,
                                   "header holds the integer -0 (at header byte %zu); sizes and "
                                   "offsets must be non-negative integers",
                                   i);
            break;
        }
        default:
            break;
        }
    }
    return 0;
}

/* ---- entry validation ---- */

/* Reads a non-negative JSON integer; what names it in messages ("shape[1]", "data_offsets[0]"). */
static int header_get_size(SsError *err, const char *path, const char *tensor, const char *what,
                           const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v))
        return header_fail(err, path, tensor, "%s is %s, not a non-negative integer", what,
                           st_json_kind(v));
    json_int_t x = json_integer_value(v);
    if (x < 0)
        return header_fail(err, path, tensor, "%s is negative (%lld)", what, (long long)x);
    *out = (uint64_t)x;
    return 0;
}

/* Validates one tensor entry and fills t (name, dtype, ndim, shape into shapes, numel, nbytes,
 * offset). data_len is the data section's size; end receives data_offsets[1]. */
static int header_parse_entry(SsError *err, const char *path, const char *name, const json_t *entry,
                              uint64_t data_len, uint64_t *shapes, StTensor *t, uint64_t *end)
{
    if (!json_is_object(entry))
        return header_fail(err, path, name, "entry is %s, not an object", st_json_kind(entry));
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)entry, key, val) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets")) {
            char q[200];
            return header_fail(err, path, name,
                               "unknown key '%s' in entry (allowed: dtype, shape, data_offsets)",
                               st_quote(q, sizeof q, key));
        }
    }

    const json_t *jdtype = json_object_get(entry, "dtype");
    const json_t *jshape = json_object_get(entry, "shape");
    const json_t *joffs = json_object_get(entry, "data_offsets");
    if (!jdtype || !jshape || !joffs)
        return header_fail(err, path, name, "entry has no '%s'",
                           !jdtype ? "dtype" : !jshape ? "shape" : "data_offsets");

    if (!json_is_string(jdtype))
        return header_fail(err, path, name, "dtype is %s, not a string", st_json_kind(jdtype));
    if (dtype_from_name(json_string_value(jdtype), &t->dtype) != 0) {
        char q[64];
        return header_fail(err, path, name, "unknown dtype '%s'",
                           st_quote(q, sizeof q, json_string_value(jdtype)));
    }

    if (!json_is_array(jshape))
        return header_fail(err, path, name, "shape is %s, not an array", st_json_kind(jshape));
    size_t ndim = json_array_size(jshape);
    if (ndim > ST_MAX_NDIM)
        return header_fail(err, path, name, "shape has %zu dimensions, more than the %d supported",
                           ndim, ST_MAX_NDIM);
    for (size_t i = 0; i < ndim; i++) {
        char what[32];
        snprintf(what, sizeof what, "shape[%zu]", i);
        int rc = header_get_size(err, path, name, what, json_array_get(jshape, i), &shapes[i]);
        if (rc)
            return rc;
    }
    t->ndim = (int)ndim;
    t->shape = shapes;

    if (!json_is_array(joffs))
        return header_fail(err, path, name,
                           "data_offsets is %s, not an array of 2 integers [begin, end]",
                           st_json_kind(joffs));
    if (json_array_size(joffs) != 2)
        return header_fail(err, path, name,
                           "data_offsets has %zu entries, not 2 integers [begin, end]",
                           json_array_size(joffs));
    uint64_t begin = 0, stop = 0;
    int rc = header_get_size(err, path, name, "data_offsets[0]", json_array_get(joffs, 0), &begin);
    if (!rc)
        rc = header_get_size(err, path, name, "data_offsets[1]", json_array_get(joffs, 1), &stop);
    if (rc)
        return rc;
    if (begin > stop)
        return header_fail(err, path, name,
                           "data_offsets [%llu, %llu] are reversed (begin after end)",
                           (unsigned long long)begin, (unsigned long long)stop);

    char shp[160];
    uint64_t numel = 1;
    for (size_t i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(numel, shapes[i], &numel))
            return header_fail(err, path, name, "shape %s has more than 2^64 elements",
                               st_format_shape(shp, sizeof shp, t->ndim, shapes));
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)dtype_size(t->dtype), &nbytes))
        return header_fail(err, path, name, "dtype %s and shape %s need more than 2^64 bytes",
                           dtype_name(t->dtype), st_format_shape(shp, sizeof shp, t->ndim, shapes));
    if (stop - begin != nbytes)
        return header_fail(err, path, name,
                           "data_offsets [%llu, %llu] hold %llu bytes but dtype %s and shape %s "
                           "need %llu",
                           (unsigned long long)begin, (unsigned long long)stop,
                           (unsigned long long)(stop - begin), dtype_name(t->dtype),
                           st_format_shape(shp, sizeof shp, t->ndim, shapes),
                           (unsigned long long)nbytes);
    if (stop > data_len)
        return header_fail(err, path, name,
                           "data_offsets [%llu, %llu] run past the end of the %llu-byte data "
                           "section",
                           (unsigned long long)begin, (unsigned long long)stop,
                           (unsigned long long)data_len);
    t->numel = numel;
    t->nbytes = nbytes;
    t->offset = begin;
    *end = stop;
    return 0;
}

/* Validates "__metadata__": an object of string -> string. */
static int header_check_meta(SsError *err, const char *path, const json_t *meta)
{
    if (!json_is_object(meta))
        return header_fail(err, path, NULL, "__metadata__ is %s, not an object",
                           st_json_kind(meta));
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)meta, key, val) {
        if (!json_is_string(val)) {
            char q[200];
            return header_fail(err, path, NULL, "__metadata__ key '%s': value is %s, not a string",
                               st_quote(q, sizeof q, key), st_json_kind(val));
        }
    }
    return 0;
}

/* Orders tensors by (begin, end, name): zero-size tensors sort before a tensor starting at the
 * same byte, so contiguity is a single comparison per tensor. */
static int header_cmp_offset(const void *a, const void *b)
{
    const StTensor *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The sorted tensors must tile [0, data_len): no hole, no overlap, no trailing bytes. */
static int header_check_coverage(SsError *err, const char *path, const StHeader *h,
                                 uint64_t data_len)
{
    uint64_t pos = 0;
    const StTensor *prev = NULL;
    for (size_t i = 0; i < h->ntensors; i++) {
        const StTensor *t = &h->tensors[i];
        unsigned long long b = t->offset, e = t->offset + t->nbytes;
        if (t->offset > pos)
            return header_fail(err, path, t->name,
                               "data_offsets [%llu, %llu] leave a hole: bytes [%llu, %llu) of the "
                               "data section belong to no tensor",
                               b, e, (unsigned long long)pos, b);
        if (t->offset < pos) {
            char q[200];
            return header_fail(err, path, t->name, "data_offsets [%llu, %llu] overlap tensor '%s' "
                               "[%llu, %llu]", b, e, st_quote(q, sizeof q, prev->name),
                               (unsigned long long)prev->offset,
                               (unsigned long long)(prev->offset + prev->nbytes));
        }
        pos = e;
        if (t->nbytes)
            prev = t;
    }
    if (pos != data_len)
        return header_fail(err, path, NULL,
                           "the tensors end at byte %llu of the %llu-byte data section: %llu "
                           "trailing bytes belong to no tensor",
                           (unsigned long long)pos, (unsigned long long)data_len,
                           (unsigned long long)(data_len - pos));
    return 0;
}

/* ---- the parse ---- */

void st_header_free(StHeader *h)
{
    if (!h)
        return;
    free(h->tensors);
    free(h->meta);
    free(h->strings);
    free(h->shapes);
    memset(h, 0, sizeof *h);
}

/* Copies s into the arena at *pos; returns the copy. */
static const char *header_arena_put(char *arena, size_t *pos, const char *s)
{
    size_t n = strlen(s) + 1;
    char *dst = arena + *pos;
    memcpy(dst, s, n);
    *pos += n;
    return dst;
}

int st_header_parse(const char *path, const unsigned char *json, size_t len, uint64_t data_len,
                    StHeader *out, SsError *err)
{
    memset(out, 0, sizeof *out);
    size_t bad = utf8_find_invalid(json, len);
    if (bad != len)
        return header_fail(err, path, NULL, "header is not valid UTF-8 (byte 0x%02x at header "
                           "byte %zu)", json[bad], bad);
    int rc = header_prescan(path, json, len, err);
    if (rc)
        return rc;

    json_error_t jerr;
    json_t *root =
        json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        char q[300];
        return header_fail(err, path, NULL, "header is not valid JSON: %s (at header byte %d)",
                           st_quote(q, sizeof q, jerr.text), jerr.position);
    }
    if (!json_is_object(root)) {
        rc = header_fail(err, path, NULL, "header is %s, not an object", st_json_kind(root));
        json_decref(root);
        return rc;
    }

    /* Pass 1: validate __metadata__ and size the arrays and arenas. */
    const json_t *jmeta = json_object_get(root, "__metadata__");
    if (jmeta && (rc = header_check_meta(err, path, jmeta))) {
        json_decref(root);
        return rc;
    }
    size_t ntensors = 0, ndims = 0, nstr = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        nstr += strlen(key) + 1;
        if (strcmp(key, "__metadata__") == 0)
            continue;
        ntensors++;
        const json_t *shape = json_is_object(val) ? json_object_get(val, "shape") : NULL;
        if (json_is_array(shape) && json_array_size(shape) <= ST_MAX_NDIM)
            ndims += json_array_size(shape);
    }
    if (jmeta) {
        json_object_foreach((json_t *)jmeta, key, val)
            nstr += strlen(key) + 1 + strlen(json_string_value(val)) + 1;
    }
    out->nmeta = jmeta ? json_object_size(jmeta) : 0;
    out->tensors = calloc(ntensors ? ntensors : 1, sizeof *out->tensors);
    out->meta = calloc(out->nmeta ? out->nmeta : 1, sizeof *out->meta);
    out->shapes = calloc(ndims ? ndims : 1, sizeof *out->shapes);
    out->strings = malloc(nstr ? nstr : 1);
    if (!out->tensors || !out->meta || !out->shapes || !out->strings) {
        json_decref(root);
        st_header_free(out);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory reading the header", path);
    }

    /* Pass 2: validate every entry and fill the table. */
    size_t spos = 0, dpos = 0;
    if (jmeta) {
        size_t i = 0;
        json_object_foreach((json_t *)jmeta, key, val) {
            out->meta[i].key = header_arena_put(out->strings, &spos, key);
            out->meta[i].value = header_arena_put(out->strings, &spos, json_string_value(val));
            i++;
        }
    }
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        StTensor *t = &out->tensors[out->ntensors];
        uint64_t end;
        rc = header_parse_entry(err, path, key, val, data_len, out->shapes + dpos, t, &end);
        if (rc)
            break;
        dpos += (size_t)t->ndim;
        t->name = header_arena_put(out->strings, &spos, key);
        out->ntensors++;
    }
    json_decref(root);
    if (!rc) {
        qsort(out->tensors, out->ntensors, sizeof *out->tensors, header_cmp_offset);
        rc = header_check_coverage(err, path, out, data_len);
    }
    if (rc)
        st_header_free(out);
    return rc;
}
