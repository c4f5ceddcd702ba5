/* fuzz.h: what every fuzz target shares: the entry points that libFuzzer
 * (make fuzz) or the replay driver (make check) calls, and FUZZ_ASSERT for
 * the properties a target checks beyond "no crash". */
#ifndef P11ID_TESTS_FUZZ_H
#define P11ID_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Called once before the first input; each target defines it. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
/* One input: returns 0; a broken property aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: property broken: %s\n", file, line, what);
    abort();
}

/* A property of the code under test: a violation is a finding, reported as
 * a crash (abort) so libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond)                                                      \
    ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))

#endif
