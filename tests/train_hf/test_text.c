/* Unit tests of the tasks' text form (train/tasks.h) for real models:
 *   prompts   the add / mul / countdown wording, and task_max_text_lengths bounds every prompt
 *             and answer of many problems of each task
 *   boxed     the verifier reads the last \boxed{...} (nested braces kept, spaces trimmed), and
 *             gives 0 without one, unclosed, or with a wrong answer; the reference answer's text
 *             form scores 1
 *   classes   the generated Unicode classes (train/unicode_tables.c) on sample code points
 * Exit status: 0 pass, 1 fail. */
#include <string.h>

#include "tests/check.h"
#include "train/bpe_tokenizer.h"
#include "train/tasks.h"

static void test_prompts(void)
{
    const char *specs[] = {"add:3", "mul:4", "countdown:4", "add:9,countdown:6"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        TaskSpec spec;
        SsError err = {0};
        CHECK(task_spec_parse(specs[k], &spec, &err) == 0);
        int pmax, amax;
        task_max_text_lengths(&spec, &pmax, &amax);
        for (uint64_t i = 0; i < 2000; i++) {
            TaskProblem p;
            task_problem(&spec, 1, i % 2 ? TASK_EVAL : TASK_TRAIN, i, &p);
            char prompt[1024], answer[256];
            int pl = task_text_prompt(&p, prompt, sizeof prompt);
            int al = task_text_answer(&p, answer, sizeof answer);
            CHECK(pl > 0 && pl <= pmax && al > 0 && al <= amax);
            CHECK(task_reward_boxed(&p, answer) == 1.0);
            CHECK(strstr(prompt, "Put the final answer in \\boxed{}.\n") != NULL);
            CHECK(task_text_prompt(&p, prompt, 10) == -1);
        }
    }
    TaskProblem p = {.kind = TASK_ADD, .prompt = "123+45=", .answer = "168", .target = 168};
    char text[256];
    CHECK(task_text_prompt(&p, text, sizeof text) > 0 &&
          strcmp(text, "What is 123+45? Put the final answer in \\boxed{}.\n") == 0);
    CHECK(task_text_answer(&p, text, sizeof text) > 0 && strcmp(text, "\\boxed{168}") == 0);
    TaskProblem c = {.kind = TASK_COUNTDOWN, .nums = {3, 7, 25}, .nnums = 3, .target = 46};
    CHECK(task_text_prompt(&c, text, sizeof text) > 0 &&
          strcmp(text, "Using the numbers 3, 7, 25, each at most once, with + - * / and "
                       "parentheses, write an expression equal to 46. Put the final answer in "
                       "\\boxed{}.\n") == 0);
}

static void test_boxed(void)
{
    TaskProblem p = {.kind = TASK_ADD, .prompt = "123+45=", .answer = "168", .target = 168};
    CHECK(task_reward_boxed(&p, "\\boxed{168}") == 1.0);
    CHECK(task_reward_boxed(&p, "so 123+45 = \\boxed{ 168 }.") == 1.0);
    CHECK(task_reward_boxed(&p, "\\boxed{100} no, \\boxed{168}") == 1.0);
    CHECK(task_reward_boxed(&p, "\\boxed{168} no, \\boxed{100}") == 0.0);
    CHECK(task_reward_boxed(&p, "168") == 0.0);
    CHECK(task_reward_boxed(&p, "\\boxed{168") == 0.0);
    CHECK(task_reward_boxed(&p, "\\boxed{0168}") == 0.0);
    CHECK(task_reward_boxed(&p, "\\boxed{{168}}") == 0.0);
    CHECK(task_reward_boxed(&p, "") == 0.0 && task_reward_boxed(&p, NULL) == 0.0);
    TaskProblem c = {.kind = TASK_COUNTDOWN, .nums = {3, 7, 25}, .nnums = 3, .target = 46};
    CHECK(task_reward_boxed(&c, "\\boxed{25+3*7}") == 1.0);
    CHECK(task_reward_boxed(&c, "\\boxed{(25+3*7)}") == 1.0);
    CHECK(task_reward_boxed(&c, "\\boxed{25+3*7+1}") == 0.0);
}

static void test_classes(void)
{
    CHECK(bpe_char_class('a') == BPE_CLASS_L && bpe_char_class('Z') == BPE_CLASS_L);
    CHECK(bpe_char_class('7') == BPE_CLASS_N && bpe_char_class(0x0661) == BPE_CLASS_N);
    CHECK(bpe_char_class(0x00BD) == BPE_CLASS_N && bpe_char_class(0x216B) == BPE_CLASS_N);
    CHECK(bpe_char_class(0x65E5) == BPE_CLASS_L && bpe_char_class(0x00E9) == BPE_CLASS_L);
    CHECK(bpe_char_class(' ') == BPE_CLASS_SPACE && bpe_char_class('\t') == BPE_CLASS_SPACE);
    CHECK(bpe_char_class('\n') == BPE_CLASS_SPACE && bpe_char_class(0x3000) == BPE_CLASS_SPACE);
    CHECK(bpe_char_class(0x00A0) == BPE_CLASS_SPACE && bpe_char_class(0x0085) == BPE_CLASS_SPACE);
    CHECK(bpe_char_class('!') == BPE_CLASS_OTHER && bpe_char_class(0x1F600) == BPE_CLASS_OTHER);
    CHECK(bpe_char_class(0x0301) == BPE_CLASS_OTHER && bpe_char_class(0x10FFFF) == BPE_CLASS_OTHER);
    CHECK(bpe_char_class(0x1D518) == BPE_CLASS_L); /* mathematical fraktur U */
}

int main(void)
{
    test_prompts();
    test_boxed();
    test_classes();
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("text tasks: ok\n");
    return 0;
}
