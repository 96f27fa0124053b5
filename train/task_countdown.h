/* Internal to train/: the countdown task's generator and verifier (task_countdown.c), used by
 * tasks.c. See train/tasks.h for the task itself. */
#ifndef SS_TRAIN_TASK_COUNTDOWN_H
#define SS_TRAIN_TASK_COUNTDOWN_H

#include <stdint.h>

#include "train/tasks.h"

/* The given numbers are drawn uniformly from [CD_NUM_MIN, CD_NUM_MAX]; every intermediate value
 * of the generated solution, and so the target, lies in [1, CD_VALUE_MAX]. */
#define CD_NUM_MIN 1
#define CD_NUM_MAX 25
#define CD_VALUE_MAX 999
/* The verifier rejects parentheses nested deeper than this. */
#define CD_DEPTH_MAX 32

/* Draws one candidate countdown problem with n numbers (2..TASK_MAX_NUMS) from stream key: the
 * numbers (sorted in the prompt), a random expression over all of them as the answer, and its
 * value as the target. Returns 0, or -1 when the candidate is degenerate (the target equals one
 * of the numbers) and the caller should draw another. */
int task_countdown_draw(uint64_t key, int n, TaskProblem *out);

/* 1 when text is an expression over p's numbers (each at most once) whose value is exactly
 * p->target, 0 otherwise. Grammar (no spaces, no unary minus):
 *   expr := term (('+' | '-') term)*      left-associative
 *   term := factor (('*' | '/') factor)*  left-associative; every division exact, divisor != 0
 *   factor := number | '(' expr ')'        number: "0" or [1-9][0-9]*, fits in int64
 * Arithmetic is in int64 with every overflow rejected. */
int task_countdown_check(const TaskProblem *p, const char *text);

#endif
