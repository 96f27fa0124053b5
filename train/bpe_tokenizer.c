/* The byte-level BPE tokenizer (train/bpe_tokenizer.h): tokenizer.json parsing, the split
 * patterns of GPT-2, Qwen2 and Llama 3 implemented by hand, the byte-to-unicode map, merging by
 * rank with hash maps, and decoding. */
#include "train/bpe_tokenizer.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the split patterns ---- */

/* Pattern kinds: GPT-2's, and the Qwen2 / Llama 3 family whose digit groups are 1..max long. */
typedef enum { PAT_GPT2, PAT_QWEN } PatKind;

#define PAT_GPT2_TEXT \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define PAT_QWEN_HEAD "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define PAT_QWEN_TAIL "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static const struct {
    const char *digits; /* the number alternative between head and tail */
    int max;
} pat_qwen_digits[] = {{"\\p{N}", 1}, {"\\p{N}{1,3}", 3}};

/* ---- hash maps ---- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* A token string (in the arena) and its id. */
typedef struct VocabSlot {
    size_t off, len;
    int32_t id; /* -1: empty */
} VocabSlot;

/* A merge (a, b) -> merged with its rank. */
typedef struct MergeSlot {
    uint64_t key; /* a << 32 | b */
    int32_t rank, merged; /* rank -1: empty */
} MergeSlot;

typedef struct AddedToken {
    size_t off, len;
    int32_t id;
} AddedToken;

struct BpeTokenizer {
    char *arena;           /* token strings */
    size_t arena_len, arena_cap;
    VocabSlot *vocab;      /* open addressing, vmask + 1 slots */
    size_t vmask;
    MergeSlot *merges;
    size_t mmask;
    AddedToken *added;     /* sorted by length, longest first */
    size_t nadded;
    size_t *dec_off, *dec_len; /* (nids) each id's decoded bytes in the arena (SIZE_MAX: none) */
    int nids;
    int32_t byte_id[256];  /* the id of each byte's byte-level symbol, -1 when none */
    uint32_t byte_cp[256]; /* bytes_to_unicode */
    int16_t cp_byte[512];  /* its inverse for code points < 512, -1 elsewhere */
    PatKind pat;
    int digit_max;
    bool ignore_merges;
    int32_t bos, eos;
};

static int arena_add(BpeTokenizer *t, const char *s, size_t n, size_t *off)
{
    if (t->arena_len + n + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 1 << 16;
        while (cap < t->arena_len + n + 1)
            cap *= 2;
        char *a = realloc(t->arena, cap);
        if (!a)
            return -1;
        t->arena = a;
        t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, n);
    t->arena[t->arena_len + n] = '\0';
    *off = t->arena_len;
    t->arena_len += n + 1;
    return 0;
}

static int32_t vocab_find(const BpeTokenizer *t, const char *s, size_t n)
{
    for (size_t i = hash_bytes(s, n) & t->vmask;; i = (i + 1) & t->vmask) {
        const VocabSlot *v = &t->vocab[i];
        if (v->id < 0)
            return -1;
        if (v->len == n && memcmp(t->arena + v->off, s, n) == 0)
            return v->id;
    }
}

/* Inserts (s, id); an existing entry keeps its id. */
static int vocab_put(BpeTokenizer *t, const char *s, size_t n, int32_t id)
{
    size_t i = hash_bytes(s, n) & t->vmask;
    for (;; i = (i + 1) & t->vmask) {
        VocabSlot *v = &t->vocab[i];
        if (v->id < 0)
            break;
        if (v->len == n && memcmp(t->arena + v->off, s, n) == 0)
            return 0;
    }
    size_t off;
    if (arena_add(t, s, n, &off))
        return -1;
    t->vocab[i] = (VocabSlot){off, n, id};
    return 0;
}

static const MergeSlot *merge_find(const BpeTokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = hash_u64(key) & t->mmask;; i = (i + 1) & t->mmask) {
        const MergeSlot *m = &t->merges[i];
        if (m->rank < 0)
            return NULL;
        if (m->key == key)
            return m;
    }
}

/* Inserts a merge unless the pair has one already (the first, lowest rank, wins). */
static void merge_put(BpeTokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = hash_u64(key) & t->mmask;
    for (; t->merges[i].rank >= 0; i = (i + 1) & t->mmask)
        if (t->merges[i].key == key)
            return;
    t->merges[i] = (MergeSlot){key, rank, merged};
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c *= 2;
    return c;
}

/* ---- UTF-8 and Unicode classes ---- */

int bpe_char_class(uint32_t cp)
{
    size_t lo = 0, hi = bpe_unicode_nranges;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t first = bpe_unicode_ranges[mid][0], last = bpe_unicode_ranges[mid][1] & 0xffffff;
        if (cp < first)
            hi = mid;
        else if (cp > last)
            lo = mid + 1;
        else
            return (int)(bpe_unicode_ranges[mid][1] >> 24);
    }
    return BPE_CLASS_OTHER;
}

/* Decodes one UTF-8 character at s[0..n); returns its length (1 for an invalid byte, whose code
 * point is then 0xFFFFFFFF: class other). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = 0xFFFFFFFFu;
        return 1;
    }
    if (len > n) {
        *cp = 0xFFFFFFFFu;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = 0xFFFFFFFFu;
            return 1;
        }
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = 0xFFFFFFFFu;
        return 1;
    }
    *cp = v;
    return len;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    out[0] = (char)(0xe0 | cp >> 12);
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

/* A piece of text as characters: code point, class and byte offset (off[n] = the byte length). */
typedef struct Chars {
    uint32_t *cp;
    uint8_t *cls;
    size_t *off;
    size_t n;
} Chars;

static int chars_fill(Chars *c, const char *text, size_t len)
{
    c->cp = malloc((len + 1) * sizeof *c->cp);
    c->cls = malloc(len + 1);
    c->off = malloc((len + 1) * sizeof *c->off);
    if (!c->cp || !c->cls || !c->off)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = utf8_next((const unsigned char *)text + i, len - i, &cp);
        c->cp[n] = cp;
        c->cls[n] = cp == 0xFFFFFFFFu ? BPE_CLASS_OTHER : (uint8_t)bpe_char_class(cp);
        c->off[n++] = i;
        i += k;
    }
    c->off[n] = len;
    c->n = n;
    return 0;
}

static void chars_free(Chars *c)
{
    free(c->cp);
    free(c->cls);
    free(c->off);
}

static bool is_crlf(uint32_t cp)
{
    return cp == '\r' || cp == '\n';
}

/* ASCII lower case, and U+017F (long s), which Unicode case folding makes 's'. */
static uint32_t fold(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    return cp == 0x17F ? 's' : cp;
}

/* The contractions 's 't 're 've 'm 'll 'd at i (case-insensitive when ci): their length or 0. */
static size_t match_contraction(const Chars *c, size_t i, bool ci)
{
    if (c->cp[i] != '\'' || i + 1 >= c->n)
        return 0;
    uint32_t a = ci ? fold(c->cp[i + 1]) : c->cp[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (i + 2 >= c->n)
        return 0;
    uint32_t b = ci ? fold(c->cp[i + 2]) : c->cp[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* The end of the run of class cls starting at i (at most max characters when max > 0). */
static size_t run_end(const Chars *c, size_t i, int cls, size_t max)
{
    size_t j = i;
    while (j < c->n && c->cls[j] == cls && (max == 0 || j - i < max))
        j++;
    return j;
}

/* \s*[\r\n]+ | \s+(?!\S) | \s+ at i, a whitespace character; crlf: try the first alternative. */
static size_t match_space(const Chars *c, size_t i, bool crlf)
{
    size_t e = run_end(c, i, BPE_CLASS_SPACE, 0);
    if (crlf) /* \s* greedy, then [\r\n]+: ends after the run's last \r or \n */
        for (size_t k = e; k-- > i;)
            if (is_crlf(c->cp[k]))
                return k + 1 - i;
    if (e == c->n || e - i == 1) /* (?!\S) holds at the end; a single space: \s+ */
        return e - i;
    return e - i - 1; /* backs off one, so the next character (whitespace) is not \S */
}

/* The length of the pattern's match at i (i < c->n): every character starts a match. */
static size_t match_at(const BpeTokenizer *t, const Chars *c, size_t i)
{
    size_t k, n = c->n;
    int cl = c->cls[i];
    if (t->pat == PAT_GPT2) {
        if ((k = match_contraction(c, i, false)))
            return k;
        size_t j = i + (c->cp[i] == ' ' && i + 1 < n && c->cls[i + 1] != BPE_CLASS_SPACE);
        if (c->cls[j] != BPE_CLASS_SPACE) /* ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' */
            return run_end(c, j, c->cls[j], 0) - i;
        return match_space(c, i, false);
    }
    if ((k = match_contraction(c, i, true)))
        return k;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (cl != BPE_CLASS_L && cl != BPE_CLASS_N && !is_crlf(c->cp[i]) && i + 1 < n &&
        c->cls[i + 1] == BPE_CLASS_L)
        return run_end(c, i + 1, BPE_CLASS_L, 0) - i;
    if (cl == BPE_CLASS_L)
        return run_end(c, i, BPE_CLASS_L, 0) - i;
    if (cl == BPE_CLASS_N) /* \p{N} or \p{N}{1,3} */
        return run_end(c, i, BPE_CLASS_N, (size_t)t->digit_max) - i;
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    size_t j = i + (c->cp[i] == ' ' && i + 1 < n && c->cls[i + 1] == BPE_CLASS_OTHER);
    if (c->cls[j] == BPE_CLASS_OTHER) {
        j = run_end(c, j, BPE_CLASS_OTHER, 0);
        while (j < n && is_crlf(c->cp[j]))
            j++;
        return j - i;
    }
    return match_space(c, i, true);
}

/* ---- BPE over one pre-token ---- */

/* Appends the ids of one pre-token (bytes s[0..len)) to ids[*n..cap), with sym (len entries) as
 * scratch. -1: no room, or a byte without a symbol. */
static int bpe_word(const BpeTokenizer *t, const char *s, size_t len, int32_t *ids, int cap,
                    int *n, int32_t *sym)
{
    if (t->ignore_merges) { /* the whole pre-token in the vocabulary: one id */
        char *buf = (char *)sym; /* 4 len bytes; the byte-level form takes at most 2 len */
        size_t bl = 0;
        for (size_t i = 0; i < len; i++)
            bl += utf8_put(t->byte_cp[(unsigned char)s[i]], buf + bl);
        int32_t id = vocab_find(t, buf, bl);
        if (id >= 0) {
            if (*n >= cap)
                return -1;
            ids[(*n)++] = id;
            return 0;
        }
    }
    size_t m = len;
    for (size_t i = 0; i < len; i++)
        if ((sym[i] = t->byte_id[(unsigned char)s[i]]) < 0)
            return -1;
    while (m > 1) {
        int32_t best_rank = INT32_MAX, merged = -1;
        size_t at = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            const MergeSlot *ms = merge_find(t, sym[i], sym[i + 1]);
            if (ms && ms->rank < best_rank) {
                best_rank = ms->rank;
                merged = ms->merged;
                at = i;
            }
        }
        if (merged < 0)
            break;
        sym[at] = merged;
        memmove(sym + at + 1, sym + at + 2, (m - at - 2) * sizeof *sym);
        m--;
    }
    if ((size_t)(cap - *n) < m)
        return -1;
    memcpy(ids + *n, sym, m * sizeof *sym);
    *n += (int)m;
    return 0;
}

/* Pre-tokenizes and encodes text without added tokens. */
static int encode_piece(const BpeTokenizer *t, const char *text, size_t len, int32_t *ids,
                        int cap, int *n)
{
    if (len == 0)
        return 0;
    Chars c = {0};
    int32_t *sym = malloc(len * sizeof *sym);
    int rc = 0;
    if (!sym || chars_fill(&c, text, len) != 0)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < c.n;) {
        size_t k = match_at(t, &c, i);
        rc = bpe_word(t, text + c.off[i], c.off[i + k] - c.off[i], ids, cap, n, sym);
        i += k;
    }
    chars_free(&c);
    free(sym);
    return rc;
}

int bpe_encode(const BpeTokenizer *t, const char *text, size_t len, int32_t *ids, int cap)
{
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i < len;) {
        const AddedToken *hit = NULL;
        for (size_t a = 0; a < t->nadded && !hit; a++) /* longest first */
            if (t->added[a].len <= len - i &&
                memcmp(text + i, t->arena + t->added[a].off, t->added[a].len) == 0)
                hit = &t->added[a];
        if (!hit) {
            i++;
            continue;
        }
        if (encode_piece(t, text + start, i - start, ids, cap, &n) != 0 || n >= cap)
            return -1;
        ids[n++] = hit->id;
        i += hit->len;
        start = i;
    }
    if (encode_piece(t, text + start, len - start, ids, cap, &n) != 0)
        return -1;
    return n;
}

size_t bpe_decode(const BpeTokenizer *t, const int32_t *ids, int n, char *text, size_t cap)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->nids || t->dec_len[ids[i]] == SIZE_MAX)
            continue;
        size_t k = t->dec_len[ids[i]];
        if (cap > 0 && len < cap - 1)
            memcpy(text + len, t->arena + t->dec_off[ids[i]],
                   len + k < cap - 1 ? k : cap - 1 - len);
        len += k;
    }
    if (cap > 0)
        text[len < cap - 1 ? len : cap - 1] = '\0';
    return len;
}

/* ---- loading ---- */

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256, 257, ... */
static void byte_map(BpeTokenizer *t)
{
    int next = 256;
    for (int i = 0; i < 512; i++)
        t->cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->byte_cp[b] = keep ? (uint32_t)b : (uint32_t)next++;
        t->cp_byte[t->byte_cp[b]] = (int16_t)b;
    }
}

/* A token's decoded bytes: each character through cp_byte, or its own UTF-8 when one is not in
 * the map. Written into the arena. */
static int set_decoded(BpeTokenizer *t, int32_t id, const char *s, size_t n)
{
    char *buf = malloc(n + 1);
    if (!buf)
        return -1;
    size_t k = 0;
    bool mapped = true;
    for (size_t i = 0; i < n && mapped;) {
        uint32_t cp;
        i += utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (cp >= 512 || t->cp_byte[cp] < 0)
            mapped = false;
        else
            buf[k++] = (char)t->cp_byte[cp];
    }
    size_t off;
    int rc = mapped ? arena_add(t, buf, k, &off) : arena_add(t, s, n, &off);
    free(buf);
    if (rc)
        return -1;
    t->dec_off[id] = off;
    t->dec_len[id] = mapped ? k : n;
    return 0;
}

/* Absent, null, false or "" (Qwen2's tokenizer.json has "continuing_subword_prefix": ""). */
static bool json_false_or_absent(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return !v || json_is_null(v) || json_is_false(v) ||
           (json_is_string(v) && json_string_length(v) == 0);
}

/* Checks the pre_tokenizer and sets the pattern. */
static int parse_pre(BpeTokenizer *t, json_t *pre, const char *path, SsError *err)
{
    const char *type = json_string_value(json_object_get(pre, "type"));
    json_t *bl = NULL, *split = NULL;
    if (type && strcmp(type, "ByteLevel") == 0) {
        bl = pre;
        if (!json_is_true(json_object_get(pre, "use_regex")) &&
            json_object_get(pre, "use_regex"))
            return ss_err(err, SS_EINPUT, "%s: pre_tokenizer ByteLevel without use_regex alone "
                          "is not supported", path);
        t->pat = PAT_GPT2;
    } else if (type && strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(pre, "pretokenizers");
        if (json_array_size(list) != 2)
            return ss_err(err, SS_EINPUT, "%s: pre_tokenizer Sequence must be [Split, ByteLevel]",
                          path);
        split = json_array_get(list, 0);
        bl = json_array_get(list, 1);
        const char *t0 = json_string_value(json_object_get(split, "type"));
        const char *t1 = json_string_value(json_object_get(bl, "type"));
        if (!t0 || !t1 || strcmp(t0, "Split") != 0 || strcmp(t1, "ByteLevel") != 0)
            return ss_err(err, SS_EINPUT, "%s: pre_tokenizer Sequence must be [Split, ByteLevel]",
                          path);
        if (json_is_true(json_object_get(bl, "use_regex")))
            return ss_err(err, SS_EINPUT, "%s: pre_tokenizer: ByteLevel after Split must have "
                          "use_regex false", path);
        const char *beh = json_string_value(json_object_get(split, "behavior"));
        const char *re = json_string_value(json_object_get(json_object_get(split, "pattern"),
                                                           "Regex"));
        if (!beh || strcmp(beh, "Isolated") != 0 || json_is_true(json_object_get(split, "invert")))
            return ss_err(err, SS_EINPUT, "%s: pre_tokenizer Split must have behavior Isolated "
                          "and invert false", path);
        if (!re)
            return ss_err(err, SS_EINPUT, "%s: pre_tokenizer Split needs a Regex pattern", path);
        bool known = false;
        if (strcmp(re, PAT_GPT2_TEXT) == 0) {
            t->pat = PAT_GPT2;
            known = true;
        }
        for (size_t i = 0; !known && i < sizeof pat_qwen_digits / sizeof pat_qwen_digits[0]; i++) {
            char want[512];
            snprintf(want, sizeof want, "%s%s%s", PAT_QWEN_HEAD, pat_qwen_digits[i].digits,
                     PAT_QWEN_TAIL);
            if (strcmp(re, want) == 0) {
                t->pat = PAT_QWEN;
                t->digit_max = pat_qwen_digits[i].max;
                known = true;
            }
        }
        if (!known)
            return ss_err(err, SS_EINPUT, "%s: pre_tokenizer Split pattern '%s' is not GPT-2's, "
                          "Qwen2's or Llama 3's", path, re);
    } else {
        return ss_err(err, SS_EINPUT, "%s: pre_tokenizer %s is not supported (ByteLevel, or "
                      "Sequence [Split, ByteLevel])", path, type ? type : "(missing)");
    }
    if (!json_false_or_absent(bl, "add_prefix_space"))
        return ss_err(err, SS_EINPUT, "%s: pre_tokenizer ByteLevel add_prefix_space true is not "
                      "supported", path);
    return SS_OK;
}

static int parse_model(BpeTokenizer *t, json_t *model, const char *path, SsError *err)
{
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!type || strcmp(type, "BPE") != 0)
        return ss_err(err, SS_EINPUT, "%s: model type %s is not BPE", path,
                      type ? type : "(missing)");
    static const char *const refused[] = {"dropout", "continuing_subword_prefix",
                                          "end_of_word_suffix", "byte_fallback"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (!json_false_or_absent(model, refused[i]))
            return ss_err(err, SS_EINPUT, "%s: model.%s is not supported", path, refused[i]);
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab) || !json_is_array(merges))
        return ss_err(err, SS_EINPUT, "%s: model needs a vocab object and a merges array", path);
    t->vmask = pow2_at_least(2 * (json_object_size(vocab) + 1024)) - 1;
    t->vocab = malloc((t->vmask + 1) * sizeof *t->vocab);
    t->mmask = pow2_at_least(2 * json_array_size(merges) + 16) - 1;
    t->merges = malloc((t->mmask + 1) * sizeof *t->merges);
    if (!t->vocab || !t->merges)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    for (size_t i = 0; i <= t->vmask; i++)
        t->vocab[i].id = -1;
    for (size_t i = 0; i <= t->mmask; i++)
        t->merges[i].rank = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;
        if (id < 0 || id >= INT32_MAX / 2)
            return ss_err(err, SS_EINPUT, "%s: vocab entry '%s': id must be a non-negative "
                          "integer", path, key);
        if (vocab_put(t, key, strlen(key), (int32_t)id))
            return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
        if (id >= t->nids)
            t->nids = (int)id + 1;
    }
    size_t i;
    json_array_foreach(merges, i, v) {
        const char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        if (json_is_string(v)) { /* "a b" */
            const char *s = json_string_value(v), *sp = strchr(s, ' ');
            if (sp && sp != s) {
                a = s, la = (size_t)(sp - s), b = sp + 1, lb = strlen(sp + 1);
                if (strchr(b, ' '))
                    a = NULL;
            }
        } else if (json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) {
            a = json_string_value(json_array_get(v, 0)), la = strlen(a);
            b = json_string_value(json_array_get(v, 1)), lb = strlen(b);
        }
        if (!a || la + lb >= 1024)
            return ss_err(err, SS_EINPUT, "%s: merge %zu: not \"a b\" or [a, b]", path, i);
        char buf[1024];
        memcpy(buf, a, la);
        memcpy(buf + la, b, lb);
        int32_t ia = vocab_find(t, a, la), ib = vocab_find(t, b, lb),
                im = vocab_find(t, buf, la + lb);
        if (ia < 0 || ib < 0 || im < 0)
            return ss_err(err, SS_EINPUT, "%s: merge %zu ('%.*s' '%.*s'): a part or the result "
                          "is not in the vocab", path, i, (int)la, a, (int)lb, b);
        merge_put(t, ia, ib, (int32_t)i, im);
    }
    return SS_OK;
}

static int added_cmp(const void *a, const void *b)
{
    const AddedToken *x = a, *y = b;
    return x->len != y->len ? (x->len < y->len ? 1 : -1) : (x->id > y->id) - (x->id < y->id);
}

static int parse_added(BpeTokenizer *t, json_t *added, const char *path, SsError *err)
{
    if (!added || json_is_null(added))
        return SS_OK;
    if (!json_is_array(added))
        return ss_err(err, SS_EINPUT, "%s: added_tokens must be an array", path);
    t->added = calloc(json_array_size(added) + 1, sizeof *t->added);
    if (!t->added)
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *jid = json_object_get(a, "id"), *jc = json_object_get(a, "content");
        if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
            json_integer_value(jid) >= INT32_MAX / 2 || !json_is_string(jc) ||
            json_string_length(jc) == 0)
            return ss_err(err, SS_EINPUT, "%s: added_tokens[%zu]: needs an id and a content",
                          path, i);
        const char *c = json_string_value(jc);
        AddedToken *at = &t->added[t->nadded++];
        at->id = (int32_t)json_integer_value(jid);
        at->len = strlen(c);
        if (arena_add(t, c, at->len, &at->off) || vocab_put(t, c, at->len, at->id))
            return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
        if (at->id >= t->nids)
            t->nids = at->id + 1;
    }
    qsort(t->added, t->nadded, sizeof *t->added, added_cmp);
    return SS_OK;
}

int bpe_open(const char *path, BpeTokenizer **out, SsError *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        return ss_err(err, SS_EINPUT, "%s: cannot read tokenizer: %s (line %d)", path, je.text,
                      je.line);
    BpeTokenizer *t = calloc(1, sizeof *t);
    int rc = SS_OK;
    if (!t) {
        json_decref(root);
        return ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
    }
    t->bos = t->eos = -1;
    byte_map(t);
    json_t *norm = json_object_get(root, "normalizer");
    const char *ntype = json_string_value(json_object_get(norm, "type"));
    json_t *dec = json_object_get(root, "decoder");
    const char *dtype = json_string_value(json_object_get(dec, "type"));
    if (norm && !json_is_null(norm) && (!ntype || strcmp(ntype, "NFC") != 0))
        rc = ss_err(err, SS_EINPUT, "%s: normalizer %s is not supported (null or NFC)", path,
                    ntype ? ntype : "(no type)");
    else if (dec && !json_is_null(dec) && (!dtype || strcmp(dtype, "ByteLevel") != 0))
        rc = ss_err(err, SS_EINPUT, "%s: decoder %s is not supported (ByteLevel)", path,
                    dtype ? dtype : "(no type)");
    else if ((rc = parse_pre(t, json_object_get(root, "pre_tokenizer"), path, err)) == SS_OK &&
             (rc = parse_model(t, json_object_get(root, "model"), path, err)) == SS_OK)
        rc = parse_added(t, json_object_get(root, "added_tokens"), path, err);
    if (rc == SS_OK) {
        t->dec_off = calloc((size_t)t->nids + 1, sizeof *t->dec_off);
        t->dec_len = malloc(((size_t)t->nids + 1) * sizeof *t->dec_len);
        if (!t->dec_off || !t->dec_len)
            rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
        for (int i = 0; rc == SS_OK && i < t->nids; i++)
            t->dec_len[i] = SIZE_MAX;
        for (size_t i = 0; rc == SS_OK && i <= t->vmask; i++) {
            VocabSlot v = t->vocab[i];
            if (v.id >= 0 && t->dec_len[v.id] == SIZE_MAX &&
                set_decoded(t, v.id, t->arena + v.off, v.len) != 0)
                rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
        }
        for (size_t a = 0; rc == SS_OK && a < t->nadded; a++) { /* added tokens decode as added */
            const AddedToken *at = &t->added[a];
            if (set_decoded(t, at->id, t->arena + at->off, at->len) != 0)
                rc = ss_err(err, SS_EOUTPUT, "%s: out of memory", path);
        }
        for (int b = 0; rc == SS_OK && b < 256; b++) {
            char s[4];
            size_t k = utf8_put(t->byte_cp[b], s);
            t->byte_id[b] = vocab_find(t, s, k);
        }
    }
    json_decref(root);
    if (rc != SS_OK) {
        bpe_free(t);
        return rc;
    }
    *out = t;
    return SS_OK;
}

/* A special token field of tokenizer_config.json: a string, {"content": string}, or none. */
static const char *special_content(json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    return json_string_value(json_object_get(v, "content"));
}

static int read_special(BpeTokenizer *t, const char *dir, SsError *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *tc = json_load_file(path, 0, NULL);
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *mc = json_load_file(path, 0, NULL);
    int rc = SS_OK;
    const char *keys[2] = {"bos_token", "eos_token"};
    int32_t *dst[2] = {&t->bos, &t->eos};
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(tc, keys[k]);
        const char *content = special_content(v);
        if (content) {
            if ((*dst[k] = bpe_token_id(t, content)) < 0)
                rc = ss_err(err, SS_EINPUT, "%s/tokenizer_config.json: %s '%s' is not a token",
                            dir, keys[k], content);
            continue;
        }
        if (v) /* present but null: none */
            continue;
        char idkey[32];
        snprintf(idkey, sizeof idkey, "%s_id", keys[k]);
        json_t *id = json_object_get(mc, idkey);
        if (json_is_integer(id) && json_integer_value(id) >= 0 &&
            json_integer_value(id) < t->nids)
            *dst[k] = (int32_t)json_integer_value(id);
    }
    json_decref(tc);
    json_decref(mc);
    return rc;
}

int bpe_open_dir(const char *dir, BpeTokenizer **out, SsError *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= sizeof path)
        return ss_err(err, SS_EUSAGE, "%s: path too long", dir);
    int rc = bpe_open(path, out, err);
    if (rc == SS_OK && (rc = read_special(*out, dir, err)) != SS_OK) {
        bpe_free(*out);
        *out = NULL;
    }
    return rc;
}

void bpe_free(BpeTokenizer *t)
{
    if (!t)
        return;
    free(t->arena);
    free(t->vocab);
    free(t->merges);
    free(t->added);
    free(t->dec_off);
    free(t->dec_len);
    free(t);
}

int bpe_vocab_size(const BpeTokenizer *t)
{
    return t->nids;
}

int32_t bpe_bos(const BpeTokenizer *t)
{
    return t->bos;
}

int32_t bpe_eos(const BpeTokenizer *t)
{
    return t->eos;
}

int32_t bpe_token_id(const BpeTokenizer *t, const char *token)
{
    for (size_t a = 0; a < t->nadded; a++)
        if (t->added[a].len == strlen(token) && memcmp(t->arena + t->added[a].off, token,
                                                       t->added[a].len) == 0)
            return t->added[a].id;
    return vocab_find(t, token, strlen(token));
}
