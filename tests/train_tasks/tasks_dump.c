/* tasks_dump: the trainer's tasks (train/tasks.h) as text, for test_tasks_oracle.py.
 *
 *   tasks_dump problems SPEC SEED SPLIT START COUNT
 *       one line per problem: index TAB prompt TAB answer TAB kind TAB nums TAB target
 *       (SPLIT: train | eval; kind: add | mul | countdown; nums: comma-separated, may be empty)
 *   tasks_dump reward SPEC SEED
 *       reads lines "split TAB index TAB completion" from stdin and writes each reward (0 or 1)
 *   tasks_dump lengths SPEC          writes "prompt_max answer_max"
 *   tasks_dump spec SPEC             writes the canonical spec, or the error and exits 1 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/tasks.h"

static const char *kind_name(TaskKind k)
{
    return k == TASK_ADD ? "add" : k == TASK_MUL ? "mul" : "countdown";
}

static int parse_split(const char *s, TaskSplit *split)
{
    if (strcmp(s, "train") == 0)
        *split = TASK_TRAIN;
    else if (strcmp(s, "eval") == 0)
        *split = TASK_EVAL;
    else
        return -1;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: tasks_dump problems SPEC SEED SPLIT START COUNT | reward SPEC SEED |"
                    " lengths SPEC | spec SPEC\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    TaskSpec spec;
    SsError err;
    if (task_spec_parse(argv[2], &spec, &err) != 0) {
        fprintf(stderr, "tasks_dump: %s\n", err.msg);
        return 1;
    }
    const char *mode = argv[1];
    if (strcmp(mode, "spec") == 0) {
        char out[256];
        task_spec_format(&spec, out, sizeof out);
        printf("%s\n", out);
        return 0;
    }
    if (strcmp(mode, "lengths") == 0) {
        int pm, am;
        task_max_lengths(&spec, &pm, &am);
        printf("%d %d\n", pm, am);
        return 0;
    }
    if (strcmp(mode, "problems") == 0 && argc == 7) {
        uint64_t seed = strtoull(argv[3], NULL, 10);
        TaskSplit split;
        if (parse_split(argv[4], &split) != 0)
            return usage();
        uint64_t start = strtoull(argv[5], NULL, 10), count = strtoull(argv[6], NULL, 10);
        for (uint64_t i = start; i < start + count; i++) {
            TaskProblem p;
            task_problem(&spec, seed, split, i, &p);
            printf("%llu\t%s\t%s\t%s\t", (unsigned long long)i, p.prompt, p.answer,
                   kind_name(p.kind));
            for (int k = 0; k < p.nnums; k++)
                printf("%s%lld", k ? "," : "", p.nums[k]);
            printf("\t%lld\n", p.target);
        }
        return 0;
    }
    if (strcmp(mode, "reward") == 0 && argc == 4) {
        uint64_t seed = strtoull(argv[3], NULL, 10);
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int rc = 0;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            if (len > 0 && line[len - 1] == '\n')
                line[--len] = '\0';
            char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
            TaskSplit split;
            if (!t2) {
                rc = 2;
                break;
            }
            *t1 = *t2 = '\0';
            if (parse_split(line, &split) != 0) {
                rc = 2;
                break;
            }
            TaskProblem p;
            task_problem(&spec, seed, split, strtoull(t1 + 1, NULL, 10), &p);
            printf("%g\n", task_reward(&p, t2 + 1));
        }
        free(line);
        if (rc)
            fprintf(stderr, "tasks_dump: bad input line\n");
        return rc;
    }
    return usage();
}
