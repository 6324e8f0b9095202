/*
 * rng.h - a small seeded generator (splitmix64) so that every run with the
 * same --seed makes the same network, shuffles and k-means initialisation.
 */
#ifndef EIE_TRAIN_RNG_H
#define EIE_TRAIN_RNG_H

#include <stdint.h>

typedef struct eie_rng {
    uint64_t state;
} eie_rng_t;

static inline void eie_rng_seed(eie_rng_t *rng, uint64_t seed)
{
    rng->state = seed ^ 0x9e3779b97f4a7c15ull;
}

static inline uint64_t eie_rng_next(eie_rng_t *rng)
{
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline float eie_rng_float(eie_rng_t *rng)
{
    return (float)(eie_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform in [0, n), n > 0. */
static inline uint64_t eie_rng_below(eie_rng_t *rng, uint64_t n)
{
    return eie_rng_next(rng) % n;
}

#endif
