/*
 * model_helpers.h - test helpers: random compressed models through the
 * public builder, and a SHA-256 fix-up for hand-crafted files.
 */
#ifndef EIE_TEST_MODEL_HELPERS_H
#define EIE_TEST_MODEL_HELPERS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "eie/eie.h"

static inline uint64_t th_rand(uint64_t *s)
{
    /* xorshift64*: deterministic across platforms */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static inline float th_uniform(uint64_t *s) /* [0, 1) */
{
    return (float)(th_rand(s) >> 40) / (float)(1u << 24);
}

/* Adds a random rows x cols FC layer of the given density to b. */
static inline eie_status_t th_add_random_fc(eie_builder_t *b, uint32_t rows, uint32_t cols,
                                            double density, uint32_t bits, uint64_t *seed,
                                            eie_error_t *err)
{
    size_t ncb = (size_t)1 << bits;
    float *cb = malloc(ncb * sizeof(float));
    uint8_t *codes = calloc((size_t)rows * cols, 1);
    float *bias = malloc(rows * sizeof(float));
    cb[0] = 0.0f;
    for (size_t k = 1; k < ncb; k++)
        cb[k] = (th_uniform(seed) * 2.0f - 1.0f) + (k % 2 ? 0.1f : -0.1f);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        if (th_uniform(seed) < density)
            codes[i] = (uint8_t)(1 + th_rand(seed) % (ncb - 1));
    for (uint32_t r = 0; r < rows; r++)
        bias[r] = th_uniform(seed) - 0.5f;
    eie_status_t st = eie_builder_add_fc(b, rows, cols, bits, cb, codes, bias, err);
    free(cb);
    free(codes);
    free(bias);
    return st;
}

/* Writes the builder to memory and loads it back; aborts the test on error. */
static inline eie_model_t *th_load_builder(const eie_builder_t *b)
{
    uint8_t *data;
    size_t len;
    eie_error_t err;
    eie_model_t *m = NULL;
    if (eie_builder_write_memory(b, &data, &len, &err) != EIE_STATUS_OK)
        return NULL;
    if (eie_model_load_memory(data, len, NULL, &m, &err) != EIE_STATUS_OK)
        m = NULL;
    free(data);
    return m;
}

/* Recomputes the SHA-256 trailer of a crafted file. */
static inline void th_fix_checksum(uint8_t *data, size_t len)
{
    unsigned sl;
    EVP_Digest(data, len - 32, data + len - 32, &sl, EVP_sha256(), NULL);
}

/* Random input with a given fraction of nonzeros. */
static inline void th_random_input(float *x, size_t n, double density, uint64_t *seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = th_uniform(seed) < density ? th_uniform(seed) * 2.0f - 1.0f : 0.0f;
}

/* |a - b| <= tol * max(1, |b|) for all n values; returns the first bad index or -1. */
static inline long th_mismatch(const float *a, const float *b, size_t n, float tol)
{
    for (size_t i = 0; i < n; i++) {
        float scale = fabsf(b[i]) > 1.0f ? fabsf(b[i]) : 1.0f;
        if (!(fabsf(a[i] - b[i]) <= tol * scale))
            return (long)i;
    }
    return -1;
}

/* Whether a run's PE busy times are what a run split over the PE threads
 * (split) or one kept on one thread reports: both set, the busiest at least
 * the least busy; or both 0. */
static inline int th_busy_times_ok(const eie_run_info_t *info, int split)
{
    if (!split)
        return info->pe_busy_max_ns == 0 && info->pe_busy_min_ns == 0;
    return info->pe_busy_min_ns > 0 && info->pe_busy_max_ns >= info->pe_busy_min_ns;
}

#endif
