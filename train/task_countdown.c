/* The countdown task (train/task_countdown.h): a generator that builds a random expression over
 * the given numbers, so that every problem is solvable and its answer is one solution, and a
 * strict recursive-descent verifier with checked int64 arithmetic. */
#include "train/task_countdown.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/rng.h"

/* ---- generator ---- */

/* One partial expression while the generator combines numbers. */
typedef struct CdItem {
    long long value;
    int prec;                 /* 1: + or - at the top, 2: * or /, 3: a number */
    char text[TASK_TEXT_MAX];
} CdItem;

static int cd_prec(char op)
{
    return op == '+' || op == '-' ? 1 : 2;
}

/* Whether a op b is allowed in a generated solution: positive exact values up to CD_VALUE_MAX,
 * no multiplication or division by 1. */
static int cd_op_ok(long long a, long long b, char op)
{
    switch (op) {
    case '+': return a + b <= CD_VALUE_MAX;
    case '-': return a - b >= 1;
    case '*': return a > 1 && b > 1 && a * b <= CD_VALUE_MAX;
    default: return b > 1 && a % b == 0;
    }
}

/* Writes "L op R" with the fewest parentheses that keep the left-associative reading equal to
 * the tree: the left side in parentheses when it binds more loosely than op, the right side also
 * when it binds equally and op is - or /. (a*(b/c) is written a*b/c: the same value, still
 * exact.) */
static void cd_combine(CdItem *dst, const CdItem *l, const CdItem *r, char op)
{
    int p = cd_prec(op);
    int lpar = l->prec < p;
    int rpar = r->prec < p || (r->prec == p && (op == '-' || op == '/'));
    char text[TASK_TEXT_MAX];
    /* At most 5N-5 characters for N numbers (task_max_lengths), so this never truncates; the
     * length is checked for the compiler's sake. */
    int len = snprintf(text, sizeof text, "%s%s%s%c%s%s%s", lpar ? "(" : "", l->text,
                       lpar ? ")" : "", op, rpar ? "(" : "", r->text, rpar ? ")" : "");
    if (len < 0 || (size_t)len >= sizeof text)
        text[0] = '\0';
    long long v = op == '+' ? l->value + r->value
                : op == '-' ? l->value - r->value
                : op == '*' ? l->value * r->value : l->value / r->value;
    dst->value = v;
    dst->prec = p;
    memcpy(dst->text, text, sizeof text);
}

static int cd_cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int task_countdown_draw(uint64_t key, int n, TaskProblem *out)
{
    static const char ops[4] = {'+', '-', '*', '/'};
    uint64_t ctr = 0;
    CdItem items[TASK_MAX_NUMS];
    memset(items, 0, sizeof items);
    memset(out, 0, sizeof *out);
    n = n < 1 ? 1 : n > TASK_MAX_NUMS ? TASK_MAX_NUMS : n;
    out->kind = TASK_COUNTDOWN;
    out->nnums = n;
    for (int k = 0; k < n; k++) {
        long long v = CD_NUM_MIN + (long long)rng_below(key, ctr++, CD_NUM_MAX - CD_NUM_MIN + 1);
        out->nums[k] = v;
        items[k].value = v;
        items[k].prec = 3;
        snprintf(items[k].text, sizeof items[k].text, "%lld", v);
    }
    /* Combine two random items with a random allowed operator until one is left. Some operator
     * is always allowed for a >= b > 0: a-b when a > b, a/b = 1 when a == b. */
    for (int count = n; count > 1; count--) {
        int i = (int)rng_below(key, ctr++, (uint64_t)count);
        int j = (int)rng_below(key, ctr++, (uint64_t)count - 1);
        if (j >= i)
            j++;
        char op = 0;
        for (int t = 0; t < 16 && !op; t++) {
            char o = ops[rng_below(key, ctr++, 4)];
            if (cd_op_ok(items[i].value, items[j].value, o))
                op = o;
        }
        if (!op) {
            if (items[i].value < items[j].value) {
                int s = i;
                i = j;
                j = s;
            }
            op = items[i].value > items[j].value ? '-' : '/';
        }
        CdItem c;
        cd_combine(&c, &items[i], &items[j], op);
        /* Keep the result in the lower slot, move the last item into the upper one. */
        int lo = i < j ? i : j, hi = i < j ? j : i;
        items[lo] = c;
        items[hi] = items[count - 1];
    }
    out->target = items[0].value;
    memcpy(out->answer, items[0].text, sizeof out->answer);

    long long sorted[TASK_MAX_NUMS];
    memcpy(sorted, out->nums, sizeof sorted);
    qsort(sorted, (size_t)n, sizeof sorted[0], cd_cmp_ll);
    size_t len = 0;
    for (int k = 0; k < n; k++)
        len += (size_t)snprintf(out->prompt + len, sizeof out->prompt - len, "%s%lld",
                                k ? "," : "", sorted[k]);
    snprintf(out->prompt + len, sizeof out->prompt - len, ">%lld:", out->target);
    for (int k = 0; k < n; k++)
        if (out->nums[k] == out->target)
            return -1;
    return 0;
}

/* ---- verifier ---- */

typedef struct CdParser {
    const TaskProblem *p;
    const char *s;
    size_t pos;
    int depth;
    int used[TASK_MAX_NUMS];
} CdParser;

static int cd_expr(CdParser *ps, long long *v);

/* number := "0" | [1-9][0-9]*, in int64, and one of the given numbers not used yet. */
static int cd_number(CdParser *ps, long long *v)
{
    const char *s = ps->s + ps->pos;
    if (*s < '0' || *s > '9')
        return -1;
    if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
        return -1;
    long long x = 0;
    size_t k = 0;
    for (; s[k] >= '0' && s[k] <= '9'; k++)
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, s[k] - '0', &x))
            return -1;
    ps->pos += k;
    for (int i = 0; i < ps->p->nnums && i < TASK_MAX_NUMS; i++)
        if (!ps->used[i] && ps->p->nums[i] == x) {
            ps->used[i] = 1;
            *v = x;
            return 0;
        }
    return -1;
}

static int cd_factor(CdParser *ps, long long *v)
{
    if (ps->s[ps->pos] != '(')
        return cd_number(ps, v);
    if (++ps->depth > CD_DEPTH_MAX)
        return -1;
    ps->pos++;
    if (cd_expr(ps, v) != 0 || ps->s[ps->pos] != ')')
        return -1;
    ps->pos++;
    ps->depth--;
    return 0;
}

static int cd_term(CdParser *ps, long long *v)
{
    if (cd_factor(ps, v) != 0)
        return -1;
    for (;;) {
        char op = ps->s[ps->pos];
        if (op != '*' && op != '/')
            return 0;
        ps->pos++;
        long long r;
        if (cd_factor(ps, &r) != 0)
            return -1;
        if (op == '*') {
            if (__builtin_mul_overflow(*v, r, v))
                return -1;
        } else {
            if (r == 0 || (*v == LLONG_MIN && r == -1) || *v % r != 0)
                return -1;
            *v /= r;
        }
    }
}

static int cd_expr(CdParser *ps, long long *v)
{
    if (cd_term(ps, v) != 0)
        return -1;
    for (;;) {
        char op = ps->s[ps->pos];
        if (op != '+' && op != '-')
            return 0;
        ps->pos++;
        long long r;
        if (cd_term(ps, &r) != 0)
            return -1;
        if (op == '+' ? __builtin_add_overflow(*v, r, v) : __builtin_sub_overflow(*v, r, v))
            return -1;
    }
}

int task_countdown_check(const TaskProblem *p, const char *text)
{
    CdParser ps = {.p = p, .s = text};
    long long v;
    if (cd_expr(&ps, &v) != 0 || text[ps.pos] != '\0')
        return 0;
    return v == p->target;
}
