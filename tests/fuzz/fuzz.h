/*
 * fuzz.h - the one entry point every target in tests/fuzz defines. libFuzzer
 * calls it with each input (fuzz builds); replay.c calls it with every file
 * of the seed corpus and the regressions (the normal test suite).
 *
 * A target returns 0 and must never crash, hang, leak or trip a sanitizer,
 * whatever the bytes; a broken invariant is an abort() with a message.
 */
#ifndef EIE_TESTS_FUZZ_H
#define EIE_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: say which and abort, so libFuzzer keeps the input. */
#define FUZZ_CHECK(cond, ...)                                                                   \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "fuzz invariant broken: %s: ", #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fputc('\n', stderr);                                                                \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

#endif
