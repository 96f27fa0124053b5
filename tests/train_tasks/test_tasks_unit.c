/* Unit tests of the trainer's tasks (train/tasks.h): the tokenizer, spec strings, generated
 * problems and their answers, the verifiers on wrong and hostile answers, determinism, the
 * train/eval split and the length bounds. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/rng.h"
#include "train/tasks.h"
#include "tests/check.h"


/* A check in a loop: reports the first few failures with a context string only. */
#define CHECK_CTX(cond, ...)                                                          \
    do {                                                                              \
        if (!(cond)) {                                                                \
            if (failures < 20) {                                                      \
                fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
                fprintf(stderr, __VA_ARGS__);                                         \
                fputc('\n', stderr);                                                  \
            }                                                                         \
            failures++;                                                               \
        }                                                                             \
    } while (0)

static TaskSpec spec_of(const char *text)
{
    TaskSpec s;
    SsError err;
    if (task_spec_parse(text, &s, &err) != 0) {
        fprintf(stderr, "cannot parse '%s': %s\n", text, err.msg);
        exit(1);
    }
    return s;
}

/* ---- tokenizer ---- */

static void test_tokenizer(void)
{
    const char *alphabet = "0123456789+-*()/=,>: ";
    CHECK(tok_vocab_size() == 3 + 21);
    int32_t ids[64];
    CHECK(tok_encode(alphabet, ids, 64) == 21);
    for (int i = 0; i < 21; i++)
        CHECK(ids[i] == 3 + i);
    char text[64];
    CHECK(tok_decode(ids, 21, text, sizeof text) == 21 && strcmp(text, alphabet) == 0);

    CHECK(tok_encode("12+34=46", ids, 64) == 8);
    CHECK(ids[0] == 4 && ids[1] == 5 && ids[2] == 13 && ids[7] == 9);
    CHECK(tok_encode("", ids, 0) == 0);
    CHECK(tok_encode("12a", ids, 64) == -1);
    CHECK(tok_encode("x", ids, 64) == -1);
    CHECK(tok_encode("1.5", ids, 64) == -1);
    CHECK(tok_encode("1\n", ids, 64) == -1);
    CHECK(tok_encode("\xff", ids, 64) == -1);
    CHECK(tok_encode("12345", ids, 4) == -1);
    CHECK(tok_encode("1234", ids, 4) == 4);
    CHECK(tok_encode(NULL, ids, 4) == -1);

    /* BOS skipped, stop at EOS or PAD, out-of-range ids become '?'. */
    int32_t seq[] = {TOK_BOS, 4, 5, 13, TOK_EOS, 6, 7};
    CHECK(tok_decode(seq, 7, text, sizeof text) == 3 && strcmp(text, "12+") == 0);
    int32_t seq2[] = {4, TOK_PAD, 5};
    CHECK(tok_decode(seq2, 3, text, sizeof text) == 1 && strcmp(text, "1") == 0);
    int32_t seq3[] = {4, 24, -1, 1000, 5};
    CHECK(tok_decode(seq3, 5, text, sizeof text) == 5 && strcmp(text, "1???2") == 0);
    /* Truncation to cap - 1. */
    CHECK(tok_decode(ids, 4, text, 3) == 2 && strcmp(text, "12") == 0);
    CHECK(tok_decode(ids, 4, text, 1) == 0 && text[0] == '\0');
    text[0] = 'x';
    CHECK(tok_decode(ids, 4, text, 0) == 0 && text[0] == 'x');
    CHECK(tok_decode(ids, 0, text, sizeof text) == 0 && text[0] == '\0');

    /* Round trip of random texts over the alphabet. */
    uint64_t key = rng_stream(1, 2, 3, 4);
    for (int t = 0; t < 1000; t++) {
        char s[40];
        int n = (int)rng_below(key, 100 * (uint64_t)t, 40);
        for (int i = 0; i < n; i++)
            s[i] = alphabet[rng_below(key, 100 * (uint64_t)t + 1 + (uint64_t)i, 21)];
        s[n] = '\0';
        CHECK(tok_encode(s, ids, 64) == n);
        CHECK(tok_decode(ids, n, text, sizeof text) == (size_t)n && strcmp(text, s) == 0);
    }
}

/* ---- spec strings ---- */

static void test_spec(void)
{
    TaskSpec s;
    SsError err;
    char out[256];
    CHECK(task_spec_parse("add:3", &s, &err) == 0 && s.nparts == 1 && s.part[0].kind == TASK_ADD &&
          s.part[0].n == 3 && s.eval_share == 0.1);
    CHECK(task_spec_parse("mul:2,countdown:4", &s, &err) == 0 && s.nparts == 2 &&
          s.part[0].kind == TASK_MUL && s.part[0].n == 2 && s.part[1].kind == TASK_COUNTDOWN &&
          s.part[1].n == 4);
    task_spec_format(&s, out, sizeof out);
    CHECK(strcmp(out, "mul:2,countdown:4") == 0);
    const char *eight = "add:1,add:9,mul:1,mul:9,countdown:2,countdown:6,add:2,mul:3";
    CHECK(task_spec_parse(eight, &s, &err) == 0 && s.nparts == 8);
    task_spec_format(&s, out, sizeof out);
    CHECK(strcmp(out, eight) == 0);
    task_spec_format(&s, out, 8);
    CHECK(strlen(out) == 7);

    const char *bad[] = {
        "", "add", "add:", "add:0", "add:10", "mul:0", "mul:10", "countdown:1", "countdown:7",
        "sub:3", "add:3,", ",add:3", "add:3,,mul:2", "add:03", "add:3x", "add: 3", " add:3",
        "ADD:3", "add:-1", "add:+3", "add:3 ", "add::3", "add:3:4", "countdown", ":3",
        "add:99999999999999999999", "add:1,add:1,add:1,add:1,add:1,add:1,add:1,add:1,add:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.code = 0;
        err.msg[0] = '\0';
        CHECK_CTX(task_spec_parse(bad[i], &s, &err) == SS_EUSAGE, "'%s'", bad[i]);
        CHECK_CTX(err.code == SS_EUSAGE && strlen(err.msg) > 0, "'%s'", bad[i]);
    }
    CHECK(task_spec_parse(NULL, &s, &err) == SS_EUSAGE);
    CHECK(task_spec_parse("sub:3", &s, NULL) == SS_EUSAGE);
    CHECK(task_spec_parse("mul:2,foo:1", &s, &err) == SS_EUSAGE && strstr(err.msg, "foo"));
}

/* ---- generated problems ---- */

static int is_number(const char *s)
{
    if (!*s || (s[0] == '0' && s[1]))
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static void test_generated(void)
{
    const char *specs[] = {"add:1", "add:3", "add:9", "mul:1", "mul:2", "mul:9", "countdown:2",
                           "countdown:3", "countdown:4", "countdown:6",
                           "add:2,mul:2,countdown:3"};
    for (size_t si = 0; si < sizeof specs / sizeof specs[0]; si++) {
        TaskSpec s = spec_of(specs[si]);
        int pmax, amax, pseen = 0, aseen = 0;
        task_max_lengths(&s, &pmax, &amax);
        CHECK(pmax + amax + 2 <= TASK_TEXT_MAX);
        for (int split = 0; split < 2; split++)
            for (uint64_t i = 0; i < 4000; i++) {
                TaskProblem p;
                task_problem(&s, 7, (TaskSplit)split, i, &p);
                CHECK_CTX(p.kind == s.part[i % (uint64_t)s.nparts].kind, "%s %llu", specs[si],
                          (unsigned long long)i);
                CHECK_CTX(task_reward(&p, p.answer) == 1.0, "%s: '%s' '%s'", specs[si], p.prompt,
                          p.answer);
                int32_t ids[TASK_TEXT_MAX];
                int pl = tok_encode(p.prompt, ids, TASK_TEXT_MAX);
                int al = tok_encode(p.answer, ids, TASK_TEXT_MAX);
                CHECK_CTX(pl > 0 && pl <= pmax && al > 0 && al <= amax, "%s: '%s' '%s' %d %d",
                          specs[si], p.prompt, p.answer, pmax, amax);
                pseen = pl > pseen ? pl : pseen;
                aseen = al > aseen ? al : aseen;
                CHECK(p.target > 0 || p.kind != TASK_COUNTDOWN);
                if (p.kind != TASK_COUNTDOWN) {
                    CHECK(is_number(p.answer));
                    CHECK(p.prompt[strlen(p.prompt) - 1] == '=');
                } else {
                    CHECK(p.prompt[strlen(p.prompt) - 1] == ':');
                    CHECK(p.target <= 999 && p.nnums == s.part[i % (uint64_t)s.nparts].n);
                    for (int k = 0; k < p.nnums; k++)
                        CHECK(p.nums[k] >= 1 && p.nums[k] <= 25 && p.nums[k] != p.target);
                }
            }
        /* The bounds are exact: 8000 problems reach them (countdown:6's answer bound needs a
         * rare tree shape and is only an upper bound in practice). */
        CHECK_CTX(pseen == pmax, "%s: prompt max %d, seen %d", specs[si], pmax, pseen);
        if (strcmp(specs[si], "countdown:6") != 0)
            CHECK_CTX(aseen == amax, "%s: answer max %d, seen %d", specs[si], amax, aseen);
    }
    int pm, am;
    TaskSpec s = spec_of("add:3");
    task_max_lengths(&s, &pm, &am);
    CHECK(pm == 8 && am == 4);
    s = spec_of("mul:2");
    task_max_lengths(&s, &pm, &am);
    CHECK(pm == 6 && am == 4);
    s = spec_of("countdown:4");
    task_max_lengths(&s, &pm, &am);
    CHECK(pm == 16 && am == 15);
    s = spec_of("add:3,countdown:2,mul:5");
    task_max_lengths(&s, &pm, &am);
    CHECK(pm == 12 && am == 10);
}

/* ---- verifiers ---- */

static TaskProblem arith(TaskKind kind, long long target)
{
    TaskProblem p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.target = target;
    return p;
}

static TaskProblem countdown(long long target, int n, const long long *nums)
{
    TaskProblem p;
    memset(&p, 0, sizeof p);
    p.kind = TASK_COUNTDOWN;
    p.target = target;
    p.nnums = n;
    memcpy(p.nums, nums, (size_t)n * sizeof nums[0]);
    return p;
}

static char *nested(int depth, const char *inner)
{
    size_t n = strlen(inner);
    char *s = malloc(2 * (size_t)depth + n + 1);
    memset(s, '(', (size_t)depth);
    memcpy(s + depth, inner, n);
    memset(s + depth + n, ')', (size_t)depth);
    s[2 * depth + n] = '\0';
    return s;
}

static void test_verify_arith(void)
{
    TaskProblem p = arith(TASK_ADD, 168);
    CHECK(task_reward(&p, "168") == 1.0);
    const char *wrong[] = {"167", "169", "1680", "0168", "168 ", " 168", "+168", "168=", "16 8",
                           "", "1", "68", "168\n", "abc", "1.68e2", "168.0", "-168", "(168)",
                           "160+8", "99999999999999999999999999"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        CHECK_CTX(task_reward(&p, wrong[i]) == 0.0, "'%s'", wrong[i]);
    p = arith(TASK_MUL, 0);
    CHECK(task_reward(&p, "0") == 1.0);
    CHECK(task_reward(&p, "00") == 0.0 && task_reward(&p, "-0") == 0.0);
    CHECK(task_reward(&p, "") == 0.0);
    p = arith(TASK_MUL, 998001);
    CHECK(task_reward(&p, "998001") == 1.0 && task_reward(&p, "998002") == 0.0);
    CHECK(task_reward(&p, NULL) == 0.0 && task_reward(NULL, "1") == 0.0);

    /* Generated problems: off by one, extra characters, leading zeros. */
    TaskSpec s = spec_of("add:3,mul:3");
    for (uint64_t i = 0; i < 2000; i++) {
        TaskProblem q;
        task_problem(&s, 3, TASK_TRAIN, i, &q);
        char buf[160];
        snprintf(buf, sizeof buf, "%lld", q.target + 1);
        CHECK(task_reward(&q, buf) == 0.0);
        snprintf(buf, sizeof buf, "%lld", q.target - 1);
        CHECK(task_reward(&q, buf) == 0.0);
        snprintf(buf, sizeof buf, "0%s", q.answer);
        CHECK(task_reward(&q, buf) == 0.0);
        snprintf(buf, sizeof buf, "%s0", q.answer);
        CHECK(task_reward(&q, buf) == 0.0);
        snprintf(buf, sizeof buf, "%s%s", q.prompt, q.answer);
        CHECK(task_reward(&q, buf) == 0.0);
    }
}

static void test_verify_countdown(void)
{
    const long long n3[] = {3, 7, 25};
    TaskProblem p = countdown(46, 3, n3);
    const char *right[] = {"25+3*7", "3*7+25", "7*3+25", "(3*7)+25", "((25))+(7*(3))"};
    for (size_t i = 0; i < sizeof right / sizeof right[0]; i++)
        CHECK_CTX(task_reward(&p, right[i]) == 1.0, "'%s'", right[i]);
    const char *wrong[] = {
        "25+3*7+3",   /* 3 used twice */
        "25+21",      /* 21 not given */
        "25+3*7 ",    /* space */
        " 25+3*7",
        "25+3*7=",    /* extra characters */
        "025+3*7",    /* leading zero */
        "25+03*7",
        "25+3*7)",    /* unbalanced */
        "(25+3*7",
        "()",
        "(25+3*7)(",
        "25+3**7",
        "25++3*7",
        "-25+3*7",    /* no unary minus */
        "+25+3*7",
        "25+3*7-0",   /* 0 not given */
        "(25+3)*7",   /* wrong value */
        "25+3",
        "",
        "3,7,25>46:25+3*7",
        "25+3x7",
        "25+3*7\n",
        "25 + 3*7",
        "25-(-0+0)+21",
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        CHECK_CTX(task_reward(&p, wrong[i]) == 0.0, "'%s'", wrong[i]);

    /* Negative intermediate values are fine; the arithmetic is over the integers. */
    p = countdown(21, 3, n3);
    CHECK(task_reward(&p, "3-7+25") == 1.0);
    CHECK(task_reward(&p, "25-7+3") == 1.0);
    /* Exact division only: 7/2 is not 3. */
    const long long n2[] = {7, 2, 6, 3};
    p = countdown(3, 4, n2);
    CHECK(task_reward(&p, "7/2") == 0.0);
    CHECK(task_reward(&p, "6/2") == 1.0);
    CHECK(task_reward(&p, "(7-6)*3") == 1.0);
    CHECK(task_reward(&p, "7/2*2-3") == 0.0);
    p = countdown(1, 4, n2);
    CHECK(task_reward(&p, "6/2/3") == 1.0);
    CHECK(task_reward(&p, "6/(2*3)") == 1.0);
    CHECK(task_reward(&p, "6/2*3") == 0.0);
    /* Division by zero. */
    const long long nz[] = {1, 0, 5, 0};
    p = countdown(1, 4, nz);
    CHECK(task_reward(&p, "1/0") == 0.0);
    CHECK(task_reward(&p, "0/0+1") == 0.0);
    CHECK(task_reward(&p, "1+0/5") == 1.0);
    CHECK(task_reward(&p, "1+00") == 0.0);
    CHECK(task_reward(&p, "5/(0-0)") == 0.0);
    /* Multiset: a number given twice may be used twice, not three times. */
    const long long nd[] = {5, 5, 2};
    p = countdown(10, 3, nd);
    CHECK(task_reward(&p, "5+5") == 1.0);
    CHECK(task_reward(&p, "5*2") == 1.0);
    p = countdown(15, 3, nd);
    CHECK(task_reward(&p, "5+5+5") == 0.0);
    /* Overflow anywhere is rejected, not wrapped. */
    const long long nbig[] = {LLONG_MAX, 1, 0, 0, 1, 2};
    p = countdown(LLONG_MIN + 1, 6, nbig);
    CHECK(task_reward(&p, "0-9223372036854775807") == 1.0);
    p = countdown(LLONG_MIN, 6, nbig);
    CHECK(task_reward(&p, "0-9223372036854775807-1") == 1.0);
    p = countdown(LLONG_MAX, 6, nbig);
    CHECK(task_reward(&p, "(0-9223372036854775807-1)/(0-1)") == 0.0);
    CHECK(task_reward(&p, "9223372036854775807+1-1") == 0.0);
    CHECK(task_reward(&p, "9223372036854775807*2/2") == 0.0);
    CHECK(task_reward(&p, "9223372036854775807") == 1.0);
    CHECK(task_reward(&p, "9223372036854775808") == 0.0);
    /* A wrapped result would equal the target: each must still be rejected. */
    p = countdown(LLONG_MIN, 6, nbig);
    CHECK(task_reward(&p, "9223372036854775807+1") == 0.0);
    CHECK(task_reward(&p, "1+9223372036854775807") == 0.0);
    p = countdown(LLONG_MAX, 6, nbig);
    CHECK(task_reward(&p, "0-9223372036854775807-1-1") == 0.0);
    CHECK(task_reward(&p, "(0-9223372036854775807-1)*(0-1)") == 0.0);
    const long long npow[] = {4611686018427387904LL, 2, 4294967296LL, 4294967296LL};
    p = countdown(LLONG_MIN, 4, npow);
    CHECK(task_reward(&p, "4611686018427387904*2") == 0.0);
    p = countdown(0, 4, npow);
    CHECK(task_reward(&p, "4294967296*4294967296") == 0.0);
    CHECK(task_reward(&p, "4294967296*4294967296/2") == 0.0);
    p = countdown(LLONG_MAX - 1, 6, nbig);
    CHECK(task_reward(&p, "9223372036854775807-1") == 1.0);
    p = countdown(5, 3, n3);
    CHECK(task_reward(&p, "99999999999999999999999999999999-99999999999999999999999999999994") ==
          0.0);
    /* Nesting: bounded depth, no stack overflow on deep junk. */
    const long long n1[] = {5, 1};
    p = countdown(5, 2, n1);
    char *s = nested(32, "5");
    CHECK(task_reward(&p, s) == 1.0);
    free(s);
    s = nested(33, "5");
    CHECK(task_reward(&p, s) == 0.0);
    free(s);
    s = nested(1000, "5");
    CHECK(task_reward(&p, s) == 0.0);
    free(s);
    s = nested(100000, "5*1");
    CHECK(task_reward(&p, s) == 0.0);
    free(s);
    s = malloc(200001);
    memset(s, '(', 200000);
    s[200000] = '\0';
    CHECK(task_reward(&p, s) == 0.0);
    free(s);
    CHECK(task_reward(&p, "(5)*(1)") == 1.0);
    CHECK(task_reward(&p, "5*1*1") == 0.0);

    /* Generated problems: the answer with a number reused, a changed number, a dropped
     * character, junk appended; random strings over the alphabet never crash. */
    TaskSpec sp = spec_of("countdown:2,countdown:3,countdown:4,countdown:5,countdown:6");
    for (uint64_t i = 0; i < 5000; i++) {
        TaskProblem q;
        task_problem(&sp, 11, TASK_TRAIN, i, &q);
        char buf[160];
        snprintf(buf, sizeof buf, "%s+%lld-%lld", q.answer, q.nums[0], q.nums[0]);
        CHECK_CTX(task_reward(&q, buf) == 0.0, "'%s' '%s'", q.prompt, buf);
        snprintf(buf, sizeof buf, "(%s)*1", q.answer);
        int has1 = 0;
        for (int k = 0; k < q.nnums; k++)
            has1 |= q.nums[k] == 1;
        if (!has1)
            CHECK_CTX(task_reward(&q, buf) == 0.0, "'%s' '%s'", q.prompt, buf);
        snprintf(buf, sizeof buf, "(%s)", q.answer);
        CHECK(task_reward(&q, buf) == 1.0);
        snprintf(buf, sizeof buf, "%s ", q.answer);
        CHECK(task_reward(&q, buf) == 0.0);
        snprintf(buf, sizeof buf, "%s)", q.answer);
        CHECK(task_reward(&q, buf) == 0.0);
        snprintf(buf, sizeof buf, "0%s", q.answer);
        CHECK(task_reward(&q, buf) == 0.0);
        snprintf(buf, sizeof buf, "%s%s", q.prompt, q.answer);
        CHECK(task_reward(&q, buf) == 0.0);
    }
    uint64_t key = rng_stream(5, 6, 7, 8);
    const char *chars = "0123456789+-*()/=,>: ";
    TaskProblem q;
    task_problem(&sp, 11, TASK_TRAIN, 3, &q);
    int hits = 0;
    for (uint64_t t = 0; t < 200000; t++) {
        char buf[32];
        int n = (int)rng_below(key, 64 * t, 31);
        for (int i = 0; i < n; i++)
            buf[i] = chars[rng_below(key, 64 * t + 1 + (uint64_t)i, 16)]; /* no '=,>:' or space */
        buf[n] = '\0';
        double r = task_reward(&q, buf);
        CHECK(r == 0.0 || r == 1.0);
        hits += r == 1.0;
    }
    CHECK(hits < 200000);
}

/* ---- determinism and splits ---- */

static int prob_eq(const TaskProblem *a, const TaskProblem *b)
{
    return a->kind == b->kind && strcmp(a->prompt, b->prompt) == 0 &&
           strcmp(a->answer, b->answer) == 0 && a->target == b->target && a->nnums == b->nnums &&
           memcmp(a->nums, b->nums, sizeof a->nums) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_determinism(void)
{
    TaskSpec s = spec_of("add:3,mul:2,countdown:4");
    enum { N = 3000 };
    static TaskProblem first[N];
    for (uint64_t i = 0; i < N; i++)
        task_problem(&s, 42, TASK_TRAIN, i, &first[i]);
    int same_seed1 = 0, same_eval = 0;
    for (uint64_t k = 0; k < N; k++) {
        uint64_t i = (k * 7919) % N; /* another order */
        TaskProblem p;
        task_problem(&s, 42, TASK_TRAIN, i, &p);
        CHECK(prob_eq(&p, &first[i]));
        task_problem(&s, 43, TASK_TRAIN, i, &p);
        same_seed1 += prob_eq(&p, &first[i]);
        task_problem(&s, 42, TASK_EVAL, i, &p);
        same_eval += prob_eq(&p, &first[i]);
    }
    CHECK(same_seed1 < N / 20);
    CHECK(same_eval == 0);
    /* A part's problems do not depend on the other parts of the mixture at the same index. */
    TaskSpec a = spec_of("countdown:4,add:3");
    TaskProblem p, q;
    task_problem(&s, 42, TASK_TRAIN, 2, &p);
    task_problem(&a, 42, TASK_TRAIN, 2, &q);
    CHECK(prob_eq(&p, &q));
}

static void check_disjoint(const char *spec, int ntrain, int neval)
{
    TaskSpec s = spec_of(spec);
    char **train = malloc((size_t)ntrain * sizeof *train);
    TaskProblem p;
    for (int i = 0; i < ntrain; i++) {
        task_problem(&s, 9, TASK_TRAIN, (uint64_t)i, &p);
        train[i] = strdup(p.prompt);
    }
    qsort(train, (size_t)ntrain, sizeof *train, cmp_str);
    int overlap = 0;
    for (int i = 0; i < neval; i++) {
        /* eval problems of several seeds: the eval set does not depend on the seed */
        task_problem(&s, (uint64_t)(i % 3) * 1000 + 9, TASK_EVAL, (uint64_t)i, &p);
        const char *key = p.prompt;
        overlap += bsearch(&key, train, (size_t)ntrain, sizeof *train, cmp_str) != NULL;
    }
    CHECK_CTX(overlap == 0, "%s: %d eval prompts among the train prompts", spec, overlap);
    for (int i = 0; i < ntrain; i++)
        free(train[i]);
    free(train);
}

static void test_splits(void)
{
    check_disjoint("add:1", 2000, 2000);
    check_disjoint("add:2", 20000, 5000);
    check_disjoint("add:3", 20000, 5000);
    check_disjoint("mul:2", 20000, 5000);
    check_disjoint("countdown:2", 20000, 5000);
    check_disjoint("countdown:4", 20000, 5000);
    check_disjoint("add:2,mul:1,countdown:3", 20000, 5000);

    /* add:1 has 100 prompts; about 10 are eval, and eval draws find only those. */
    TaskSpec s = spec_of("add:1");
    int seen[10][10] = {{0}};
    for (uint64_t i = 0; i < 3000; i++) {
        TaskProblem p;
        task_problem(&s, 1, TASK_EVAL, i, &p);
        seen[p.prompt[0] - '0'][p.prompt[2] - '0'] = 1;
    }
    int distinct = 0;
    for (int a = 0; a < 10; a++)
        for (int b = 0; b < 10; b++)
            distinct += seen[a][b];
    CHECK_CTX(distinct >= 3 && distinct <= 20, "%d distinct eval prompts for add:1", distinct);

    /* eval_share moves the split; shares of 0 and 1 still return a problem of the spec. */
    s = spec_of("add:2");
    TaskSpec half = s;
    half.eval_share = 0.5;
    int both = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        TaskProblem p, q;
        task_problem(&s, 1, TASK_EVAL, i, &p);
        task_problem(&half, 1, TASK_EVAL, i, &q);
        both += strcmp(p.prompt, q.prompt) == 0;
        /* an eval prompt at share 0.1 is an eval prompt at 0.5 too */
        TaskProblem r;
        task_problem(&half, 1, TASK_TRAIN, i, &r);
        CHECK(strcmp(r.prompt, p.prompt) != 0);
    }
    CHECK(both > 0);
    TaskSpec none = s;
    none.eval_share = 0.0;
    TaskProblem p;
    task_problem(&none, 1, TASK_EVAL, 0, &p);
    CHECK(p.kind == TASK_ADD && task_reward(&p, p.answer) == 1.0);
}

int main(void)
{
    test_tokenizer();
    test_spec();
    test_generated();
    test_verify_arith();
    test_verify_countdown();
    test_determinism();
    test_splits();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
