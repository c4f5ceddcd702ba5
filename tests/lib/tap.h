/* tap.h: the TAP output of the C unit tests (tests/unit): ok() and is_str()
 * count and print the points; main prints "1..n_tests" at the end and
 * returns n_failed == 0 ? 0 : 1. One test program per file includes it. */
#ifndef P11ID_TESTS_TAP_H
#define P11ID_TESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int n_tests;
static int n_failed;

static inline void ok(int cond, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void ok(int cond, const char *fmt, ...)
{
    va_list ap;

    n_tests++;
    if (!cond)
        n_failed++;
    printf("%sok %d - ", cond ? "" : "not ", n_tests);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* A string is the one wanted (both NULL counts as the same). */
static inline void is_str(const char *got, const char *want, const char *what)
{
    int same = got != NULL && want != NULL && strcmp(got, want) == 0;

    if (got == NULL && want == NULL)
        same = 1;
    ok(same, "%s is \"%s\"", what, want != NULL ? want : "(null)");
    if (!same)
        printf("# got \"%s\"\n", got != NULL ? got : "(null)");
}

#endif
