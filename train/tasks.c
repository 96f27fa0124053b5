/* The trainer's tasks (train/tasks.h): spec strings, problem generation with the train/eval
 * split, the verifiers of add and mul, and the length bounds. Countdown's generator and verifier
 * are in task_countdown.c, the tokenizer in tokenizer.c.
 *
 * Problem (split, index) of a spec: part = index % nparts; candidates are drawn from the counter
 * stream rng_stream(seed, TASK_RNG_PURPOSE | kind << 16 | n, index, attempt << 1 | split) for
 * attempt = 0, 1, ... and the first whose prompt hashes into the split is taken. The hash does
 * not depend on the seed, so the eval set is the same for every seed:
 *   h = rng_mix64(fnv1a64(prompt bytes))   FNV-1a 64: offset 0xcbf29ce484222325,
 *                                            prime 0x100000001b3; rng_mix64 from train/rng.h
 *   u = (h >> 11) * 2^-53                    in [0, 1)
 *   eval exactly when u < eval_share
 * After TASK_DRAW_MAX attempts without a candidate of its own (only possible with an eval_share at
 * or near 0 or 1), the split takes the last candidate, and disjointness no longer holds. */
#include "train/tasks.h"

#include <stdio.h>
#include <string.h>

#include "train/rng.h"
#include "train/task_countdown.h"

#define TASK_RNG_PURPOSE 0x7461736B00000000ull /* "task" */
#define TASK_DRAW_MAX 4096
#define TASK_EVAL_SHARE 0.1
#define TASK_DIGITS_MAX 9 /* add and mul operands: products of two 9-digit numbers fit in int64 */

static const struct {
    const char *name;
    TaskKind kind;
    int nmin, nmax;
} task_kinds[] = {
    {"add", TASK_ADD, 1, TASK_DIGITS_MAX},
    {"mul", TASK_MUL, 1, TASK_DIGITS_MAX},
    {"countdown", TASK_COUNTDOWN, 2, TASK_MAX_NUMS},
};
#define TASK_NKINDS ((int)(sizeof task_kinds / sizeof task_kinds[0]))

/* ---- helpers ---- */

static int task_kind_index(TaskKind kind)
{
    for (int i = 0; i < TASK_NKINDS; i++)
        if (task_kinds[i].kind == kind)
            return i;
    return 0;
}

/* Decimal digits of v >= 0. */
static int task_ndigits(long long v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

static long long task_pow10(int d)
{
    long long p = 1;
    while (d-- > 0)
        p *= 10;
    return p;
}

/* A number of 1..n digits: the digit count uniform, then the number uniform among those with
 * that many digits (0..9 for one digit). Uses draws ctr and ctr+1. */
static long long task_draw_operand(uint64_t key, uint64_t ctr, int n)
{
    int d = 1 + (int)rng_below(key, ctr, (uint64_t)n);
    long long lo = d == 1 ? 0 : task_pow10(d - 1), hi = task_pow10(d) - 1;
    return lo + (long long)rng_below(key, ctr + 1, (uint64_t)(hi - lo + 1));
}

static uint64_t task_fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The split a prompt belongs to (see the top of this file). */
static TaskSplit task_prompt_split(const char *prompt, double eval_share)
{
    double u = (double)(rng_mix64(task_fnv1a64(prompt)) >> 11) * 0x1.0p-53;
    return u < eval_share ? TASK_EVAL : TASK_TRAIN;
}

/* One candidate of part (kind, n) from stream key; -1 when degenerate (draw another). */
static int task_draw(TaskKind kind, int n, uint64_t key, TaskProblem *out)
{
    if (kind == TASK_COUNTDOWN)
        return task_countdown_draw(key, n, out);
    memset(out, 0, sizeof *out);
    out->kind = kind;
    long long a = task_draw_operand(key, 0, n), b = task_draw_operand(key, 2, n);
    char op = kind == TASK_ADD ? '+' : '*';
    out->target = kind == TASK_ADD ? a + b : a * b;
    snprintf(out->prompt, sizeof out->prompt, "%lld%c%lld=", a, op, b);
    snprintf(out->answer, sizeof out->answer, "%lld", out->target);
    return 0;
}

/* ---- spec strings ---- */

/* Parses one part "name:n" of length len. */
static int task_part_parse(const char *s, size_t len, TaskKind *kind, int *n, SsError *err)
{
    const char *colon = memchr(s, ':', len);
    if (!colon)
        return ss_err(err, SS_EUSAGE, "part '%.*s': expected NAME:N (add:3, mul:2, countdown:4)",
                      (int)len, s);
    size_t nlen = (size_t)(colon - s);
    int k = 0;
    while (k < TASK_NKINDS && !(strlen(task_kinds[k].name) == nlen &&
                                memcmp(task_kinds[k].name, s, nlen) == 0))
        k++;
    if (k == TASK_NKINDS)
        return ss_err(err, SS_EUSAGE, "part '%.*s': unknown task '%.*s' (add, mul, countdown)",
                      (int)len, s, (int)nlen, s);
    const char *d = colon + 1, *end = s + len;
    int v = 0;
    if (d == end || end - d > 2 || *d == '0')
        v = -1;
    for (const char *c = d; v >= 0 && c < end; c++)
        v = *c >= '0' && *c <= '9' ? v * 10 + (*c - '0') : -1;
    if (v < task_kinds[k].nmin || v > task_kinds[k].nmax)
        return ss_err(err, SS_EUSAGE, "part '%.*s': N must be an integer in %d..%d", (int)len, s,
                      task_kinds[k].nmin, task_kinds[k].nmax);
    *kind = task_kinds[k].kind;
    *n = v;
    return SS_OK;
}

int task_spec_parse(const char *text, TaskSpec *spec, SsError *err)
{
    memset(spec, 0, sizeof *spec);
    spec->eval_share = TASK_EVAL_SHARE;
    if (!text || !*text)
        return ss_err(err, SS_EUSAGE,
                      "task spec: empty (expected e.g. add:3 or mul:2,countdown:4)");
    const char *s = text;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (spec->nparts == TASK_MAX_PARTS)
            return ss_err(err, SS_EUSAGE, "task spec '%s': more than %d parts", text,
                          TASK_MAX_PARTS);
        if (len == 0)
            return ss_err(err, SS_EUSAGE, "task spec '%s': empty part", text);
        int rc = task_part_parse(s, len, &spec->part[spec->nparts].kind,
                                 &spec->part[spec->nparts].n, err);
        if (rc != 0) {
            ss_err_prefix(err, "task spec '%s'", text);
            return rc;
        }
        spec->nparts++;
        if (!comma)
            return SS_OK;
        s = comma + 1;
    }
}

void task_spec_format(const TaskSpec *spec, char *out, size_t cap)
{
    if (cap == 0)
        return;
    out[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < spec->nparts && i < TASK_MAX_PARTS && len < cap; i++) {
        int w = snprintf(out + len, cap - len, "%s%s:%d", i ? "," : "",
                         task_kinds[task_kind_index(spec->part[i].kind)].name, spec->part[i].n);
        if (w < 0)
            return;
        len += (size_t)w;
    }
}

/* ---- problems ---- */

void task_problem(const TaskSpec *spec, uint64_t seed, TaskSplit split, uint64_t index,
                  TaskProblem *out)
{
    memset(out, 0, sizeof *out);
    if (spec->nparts <= 0 || spec->nparts > TASK_MAX_PARTS)
        return;
    int part = (int)(index % (uint64_t)spec->nparts);
    TaskKind kind = spec->part[part].kind;
    int n = spec->part[part].n;
    uint64_t purpose = TASK_RNG_PURPOSE | (uint64_t)kind << 16 | (uint64_t)n;
    for (uint64_t attempt = 0; attempt < TASK_DRAW_MAX; attempt++) {
        uint64_t key = rng_stream(seed, purpose, index, attempt << 1 | (uint64_t)split);
        if (task_draw(kind, n, key, out) != 0)
            continue;
        if (task_prompt_split(out->prompt, spec->eval_share) == split)
            return;
    }
}

double task_reward(const TaskProblem *p, const char *completion)
{
    if (!p || !completion)
        return 0.0;
    if (p->kind == TASK_COUNTDOWN)
        return task_countdown_check(p, completion) ? 1.0 : 0.0;
    char want[32];
    snprintf(want, sizeof want, "%lld", p->target);
    return strcmp(completion, want) == 0 ? 1.0 : 0.0;
}

/* add:N:        prompt a+b= up to 2N+2, answer up to N+1 digits (99..9 + 99..9).
 * mul:N:        prompt a*b= up to 2N+2, answer up to 2N digits (99..9 * 99..9).
 * countdown:N:  prompt "n1,...,nN>T:" up to 2N + (N-1) + 1 + 3 + 1 = 3N+4 (two-digit numbers, a
 *               target up to CD_VALUE_MAX); answer up to 2N digits, N-1 operators and a pair of
 *               parentheses around each of the N-2 inner nodes of the expression tree: 5N-5
 *               (reached, e.g. by 25-(24-(23-(22-(21-20))))). */
void task_max_lengths(const TaskSpec *spec, int *prompt_max, int *answer_max)
{
    int pm = 0, am = 0;
    for (int i = 0; i < spec->nparts && i < TASK_MAX_PARTS; i++) {
        int n = spec->part[i].n, p, a;
        switch (spec->part[i].kind) {
        case TASK_ADD: p = 2 * n + 2; a = n + 1; break;
        case TASK_MUL: p = 2 * n + 2; a = 2 * n; break;
        default:
            p = n * task_ndigits(CD_NUM_MAX) + (n - 1) + 2 + task_ndigits(CD_VALUE_MAX);
            a = n * task_ndigits(CD_NUM_MAX) + (n - 1) + 2 * (n - 2);
            break;
        }
        pm = p > pm ? p : pm;
        am = a > am ? a : am;
    }
    *prompt_max = pm;
    *answer_max = am;
}

/* ---- text form (real models) ---- */

#define TASK_BOXED_TAIL " Put the final answer in \\boxed{}.\n"
#define TASK_CD_HEAD "Using the numbers "
#define TASK_CD_MID ", each at most once, with + - * / and parentheses, write an expression " \
                    "equal to "

int task_text_prompt(const TaskProblem *p, char *out, size_t cap)
{
    int n;
    if (p->kind == TASK_COUNTDOWN) {
        char nums[TASK_MAX_NUMS * 24] = "";
        size_t k = 0;
        for (int i = 0; i < p->nnums && i < TASK_MAX_NUMS; i++)
            k += (size_t)snprintf(nums + k, sizeof nums - k, "%s%lld", i ? ", " : "", p->nums[i]);
        n = snprintf(out, cap, TASK_CD_HEAD "%s" TASK_CD_MID "%lld." TASK_BOXED_TAIL, nums,
                     p->target);
    } else {
        size_t len = strlen(p->prompt); /* "a+b=" without its '=' */
        n = snprintf(out, cap, "What is %.*s?" TASK_BOXED_TAIL,
                     (int)(len > 0 && p->prompt[len - 1] == '=' ? len - 1 : len), p->prompt);
    }
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int task_text_answer(const TaskProblem *p, char *out, size_t cap)
{
    int n = snprintf(out, cap, "\\boxed{%s}", p->answer);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

double task_reward_boxed(const TaskProblem *p, const char *response)
{
    if (!p || !response)
        return 0.0;
    const char *at = NULL;
    for (const char *s = strstr(response, "\\boxed{"); s; s = strstr(s + 1, "\\boxed{"))
        at = s;
    if (!at)
        return 0.0;
    const char *b = at + 7, *e = b;
    for (int depth = 1; *e; e++) {
        depth += *e == '{' ? 1 : *e == '}' ? -1 : 0;
        if (depth == 0)
            break;
    }
    if (!*e)
        return 0.0; /* unclosed */
    while (b < e && (*b == ' ' || *b == '\t' || *b == '\n'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n'))
        e--;
    char content[4 * TASK_TEXT_MAX];
    if ((size_t)(e - b) >= sizeof content)
        return 0.0;
    memcpy(content, b, (size_t)(e - b));
    content[e - b] = '\0';
    return task_reward(p, content);
}

void task_max_text_lengths(const TaskSpec *spec, int *prompt_max, int *answer_max)
{
    int pm, am;
    task_max_lengths(spec, &pm, &am);
    int over = (int)(sizeof "What is ?" TASK_BOXED_TAIL);
    for (int i = 0; i < spec->nparts && i < TASK_MAX_PARTS; i++)
        if (spec->part[i].kind == TASK_COUNTDOWN) {
            /* the numbers gain a space each; the target a period */
            int cd = (int)(sizeof TASK_CD_HEAD TASK_CD_MID "." TASK_BOXED_TAIL) + TASK_MAX_NUMS;
            over = cd > over ? cd : over;
        }
    *prompt_max = pm + over;
    *answer_max = am + (int)(sizeof "\\boxed{}" - 1);
}
