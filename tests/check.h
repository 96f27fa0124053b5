/* The C unit tests' check macro: CHECK(cond) reports a failed condition with its file and line
 * and counts it in `failures`; a test's main returns non-zero when failures is not 0. Each test
 * program includes this once. */
#ifndef SS_TESTS_CHECK_H
#define SS_TESTS_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                               \
        }                                                                             \
    } while (0)

#endif
