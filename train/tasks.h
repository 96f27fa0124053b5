/* The trainer's tasks: procedurally generated problems with exact verifiers, the
 * character-level tokenizer over their alphabet, and the text form of the problems for real
 * models (prompts asking for a \boxed{} answer).
 *
 * Tasks (spec strings as given to grpo-train --task):
 *   "add:N"        a+b with a, b of 1..N digits              prompt "123+45="      answer "168"
 *   "mul:N"        a*b with a of 1..N digits, b of 1..N     prompt "12*34="       answer "408"
 *   "countdown:N"  reach a target with N given numbers (each used at most once) and + - * /,
 *                  parentheses allowed; division must be exact
 *                                                  prompt "3,7,25>46:"  an answer "25+3*7"
 *   "a,b,..."      a mixture: problem i is drawn from task i % count
 * N: 1..9 for add and mul (the digit count of each operand is uniform in 1..N), 2..6 for
 * countdown (numbers uniform in 1..25, listed sorted in the prompt; the answer is a random
 * expression over all of them with every intermediate value in 1..999, so the target is in
 * 1..999, and it is never one of the numbers).
 * The verifier checks the text before the first EOS: for add and mul the exact decimal result
 * (no leading zeros, no spaces); for countdown an expression over the given numbers, each at most
 * once, that evaluates exactly (integer arithmetic, every division exact) to the target. Countdown
 * answers: digits, + - * / and parentheses only (no spaces, no unary minus, no leading zeros,
 * parentheses nested at most 32 deep); any int64 overflow, a zero divisor or a remainder rejects;
 * negative intermediate values are allowed.
 *
 * Splits: problem (split, index) is a pure function of (seed, task, split, index). Train and eval
 * problems are disjoint: a problem belongs to eval exactly when a hash of its canonical text (the
 * prompt) falls in the eval share, and each split draws until it gets one of its own. The hash
 * (independent of the seed, so every seed has the same eval set): u = (rng_mix64(FNV-1a-64(prompt
 * bytes)) >> 11) * 2^-53, eval exactly when u < eval_share (details in train/tasks.c).
 *
 * Tokenizer: ids 0 PAD, 1 BOS, 2 EOS, then the characters "0123456789+-*()/=,>:" and space in
 * that order. A sequence is BOS prompt answer EOS. */
#ifndef SS_TRAIN_TASKS_H
#define SS_TRAIN_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "formats/ss_error.h"

#define TOK_PAD 0
#define TOK_BOS 1
#define TOK_EOS 2

/* Number of token ids. */
int tok_vocab_size(void);

/* Encodes text (no BOS/EOS added) into ids[0..cap); returns the count, or -1 when a character is
 * outside the alphabet or the text does not fit. */
int tok_encode(const char *text, int32_t *ids, int cap);

/* Decodes ids, stopping before the first EOS or PAD; BOS is skipped; an id out of range becomes
 * '?'. Writes a NUL-terminated string into text[0..cap) and returns its length (truncated to
 * cap-1). */
size_t tok_decode(const int32_t *ids, int n, char *text, size_t cap);

typedef enum TaskKind { TASK_ADD, TASK_MUL, TASK_COUNTDOWN } TaskKind;

typedef enum TaskSplit { TASK_TRAIN = 0, TASK_EVAL = 1 } TaskSplit;

#define TASK_MAX_PARTS 8
#define TASK_TEXT_MAX 64
#define TASK_MAX_NUMS 6

typedef struct TaskSpec {
    int nparts;
    struct {
        TaskKind kind;
        int n;               /* digits (add, mul) or how many numbers (countdown, 2..6) */
    } part[TASK_MAX_PARTS];
    double eval_share;       /* share of the problem space held out for eval; 0.1 (parse sets it;
                                keep it in (0, 1): at 0 or 1 one split cannot be drawn) */
} TaskSpec;

/* Parses a spec string ("add:3", "mul:2,countdown:4"). SS_EUSAGE with the reason when bad. */
int task_spec_parse(const char *text, TaskSpec *spec, SsError *err);

/* Writes the canonical spec string back (for run.json). */
void task_spec_format(const TaskSpec *spec, char *out, size_t cap);

typedef struct TaskProblem {
    TaskKind kind;
    char prompt[TASK_TEXT_MAX];   /* the text after BOS */
    char answer[TASK_TEXT_MAX];   /* one correct answer (for supervised warm-up) */
    long long nums[TASK_MAX_NUMS]; /* countdown: the given numbers */
    int nnums;
    long long target;             /* add, mul: the result; countdown: the target */
} TaskProblem;

/* Problem number index of split split. */
void task_problem(const TaskSpec *spec, uint64_t seed, TaskSplit split, uint64_t index,
                  TaskProblem *out);

/* 1.0 when completion (the response text, up to but excluding EOS) is a correct answer to p,
 * 0.0 otherwise. */
double task_reward(const TaskProblem *p, const char *completion);

/* Longest prompt and longest answer (in tokens, without BOS/EOS) that spec can produce. */
void task_max_lengths(const TaskSpec *spec, int *prompt_max, int *answer_max);

/* ---- text form, for real models with a BPE tokenizer (grpo-train --init HF_DIR) ----
 * Prompt (add, mul):  "What is 123+45? Put the final answer in \boxed{}.\n"
 * Prompt (countdown): "Using the numbers 3, 7, 25, each at most once, with + - * / and
 *                      parentheses, write an expression equal to 46. Put the final answer in
 *                      \boxed{}.\n"   (one line)
 * Answer:             "\boxed{168}" (the reference answer inside \boxed{})
 * The verifier takes the content of the response's last \boxed{...} (braces nested inside it are
 * kept), trims spaces around it, and checks that with task_reward. */

/* Writes the text prompt / answer NUL-terminated into out[0..cap); returns the length, or -1
 * when it does not fit. */
int task_text_prompt(const TaskProblem *p, char *out, size_t cap);
int task_text_answer(const TaskProblem *p, char *out, size_t cap);

/* 1.0 when the content of the last \boxed{...} of response is a correct answer, else 0.0 (also
 * without a complete \boxed{...}). */
double task_reward_boxed(const TaskProblem *p, const char *response);

/* Longest text prompt and answer (in bytes) that spec can produce. */
void task_max_text_lengths(const TaskSpec *spec, int *prompt_max, int *answer_max);

#endif
