/* The C unit tests' check macros: CHECK(cond) reports a failed condition with its file and line
 * and counts it in `failures`; EXPECT(cond, fmt, ...) does the same with a printf-style message;
 * a test's main returns non-zero when failures is not 0. Each test program includes this once. */
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

#define EXPECT(cond, ...)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            failures++;                                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                              \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, "\n");                                                            \
        }                                                                                     \
    } while (0)

#endif
