/*
 * backend_suite.h - the consistency suite every backend passes against the
 * dense reference (as ggml's test-backend-ops). A backend's tests call
 * these with its registry name, e.g. backend_suite_case("eie-sim", ...).
 */
#ifndef EIE_TEST_BACKEND_SUITE_H
#define EIE_TEST_BACKEND_SUITE_H

#include <stddef.h>

#include "eie/eie.h"

typedef enum {
    SUITE_MLP,             /* 3 FC layers with relu, sigmoid, tanh, softmax */
    SUITE_FILLERS,         /* tall sparse layer: zero runs longer than 15 everywhere */
    SUITE_ZERO_COLUMNS,    /* whole columns pruned away */
    SUITE_ZERO_INPUTS,     /* every input activation is zero */
    SUITE_ONE_BY_ONE,      /* 1x1 layers */
    SUITE_NON_SQUARE,      /* wide then tall */
    SUITE_WIDE_CODES,      /* 8-bit codes */
    SUITE_PARALLEL,        /* big enough (~90k nonzeros) that a batch-1 run is split over PEs */
    SUITE_CASE_COUNT_
} suite_case_t;

/* Builds the case's model, runs it on backend with n_pes PEs at batch 1 and
 * batch 19, and asserts agreement with eie_model_run_dense within 1e-5
 * relative. */
void backend_suite_case(const char *backend, unsigned n_pes, suite_case_t c);

/* The same with a backend's own documented tolerance (relative to max(1, |dense|)). */
void backend_suite_case_tol(const char *backend, unsigned n_pes, suite_case_t c, float tol);

/* Runs every case for n_pes = 1, 2, 3, 7, 64. */
void backend_suite_all(const char *backend);

/* The model of a case, loaded through the reader; the caller frees it. */
eie_model_t *backend_suite_model(suite_case_t c);

#endif
