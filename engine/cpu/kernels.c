/*
 * The spmv kernels. The bodies are written once as always-inline functions
 * and instantiated per instruction set: the scalar reference in portable C,
 * the AVX2 variant compiled with target("avx2,fma") so the batch loops
 * vectorise 8 wide. Selection happens once, through __builtin_cpu_supports.
 */
#include "cpu/kernels.h"

#include <stdatomic.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

/* Batch 1, narrow entries: a 16-entry codebook pre-scaled by a_j turns each
 * entry into one table load and one add (no multiply on the per-entry path);
 * four entries come from one 64-bit load, so the loop is not bound by loads
 * of the entry stream. Rows within a column are distinct, so the adds of one
 * group are independent. */
INLINE void spmv_narrow_b1(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                           size_t n_active, const float *in, size_t is_j, float *acc)
{
    const uint16_t *ent = L->ent;
    const uint32_t *ptr = L->ptr;
    float s[16];
    for (size_t k = 0; k < n_active; k++) {
        uint32_t j = active[k];
        float a = in[(size_t)j * is_j];
        for (int q = 0; q < 16; q++)
            s[q] = cb[q] * a;
        const uint16_t *e = ent + ptr[j], *end = ent + ptr[j + 1];
        for (; end - e >= 4; e += 4) {
            uint64_t w;
            memcpy(&w, e, 8);
            acc[(w >> 4) & 0xfff] += s[w & 15];
            acc[(w >> 20) & 0xfff] += s[(w >> 16) & 15];
            acc[(w >> 36) & 0xfff] += s[(w >> 32) & 15];
            acc[(w >> 52) & 0xfff] += s[(w >> 48) & 15];
        }
        for (; e < end; e++)
            acc[*e >> 4] += s[*e & 15];
    }
}

INLINE void spmv_wide_b1(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                         size_t n_active, const float *in, size_t is_j, float *acc)
{
    const uint32_t *ent = L->ent;
    const uint32_t *ptr = L->ptr;
    for (size_t k = 0; k < n_active; k++) {
        uint32_t j = active[k];
        float a = in[(size_t)j * is_j];
        for (uint32_t q = ptr[j]; q < ptr[j + 1]; q++)
            acc[ent[q] >> 8] += cb[ent[q] & 255] * a;
    }
}

/* Batch B: the entry is decoded once, its weight multiplies B activations
 * into B contiguous accumulators (EIE amortises nothing here; a CPU can). */
#define SPMV_BATCH_BODY(ETYPE, SHIFT, MASK, BEXPR)                                             \
    const ETYPE *ent = L->ent;                                                                 \
    const uint32_t *ptr = L->ptr;                                                              \
    float av[EIE_KERNEL_MAX_BATCH];                                                            \
    for (size_t k = 0; k < n_active; k++) {                                                    \
        uint32_t j = active[k];                                                                \
        for (size_t b = 0; b < (BEXPR); b++)                                                   \
            av[b] = in[(size_t)j * is_j + b * is_b];                                           \
        for (uint32_t q = ptr[j]; q < ptr[j + 1]; q++) {                                       \
            float v = cb[ent[q] & (MASK)];                                                     \
            float *ar = acc + (size_t)(ent[q] >> (SHIFT)) * (BEXPR);                           \
            for (size_t b = 0; b < (BEXPR); b++)                                               \
                ar[b] += v * av[b];                                                            \
        }                                                                                      \
    }

INLINE void spmv_narrow_bn(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                           size_t n_active, const float *in, size_t is_j, size_t is_b, size_t B,
                           float *acc)
{
    SPMV_BATCH_BODY(uint16_t, 4, 15, B)
}

INLINE void spmv_narrow_b16(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                            size_t n_active, const float *in, size_t is_j, size_t is_b,
                            float *acc)
{
    SPMV_BATCH_BODY(uint16_t, 4, 15, 16)
}

INLINE void spmv_wide_bn(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                         size_t n_active, const float *in, size_t is_j, size_t is_b, size_t B,
                         float *acc)
{
    SPMV_BATCH_BODY(uint32_t, 8, 255, B)
}

INLINE void spmv_wide_b16(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                          size_t n_active, const float *in, size_t is_j, size_t is_b, float *acc)
{
    SPMV_BATCH_BODY(uint32_t, 8, 255, 16)
}

#define DEFINE_KERNELS(SUFFIX, ATTR)                                                           \
    ATTR static void spmv_narrow_##SUFFIX(const eie_pe_layer_t *L, const float *cb,            \
                                          const uint32_t *active, size_t n_active,             \
                                          const float *in, size_t is_j, size_t is_b, size_t B, \
                                          float *acc)                                          \
    {                                                                                          \
        if (B == 1)                                                                            \
            spmv_narrow_b1(L, cb, active, n_active, in, is_j, acc);                            \
        else if (B == 16)                                                                      \
            spmv_narrow_b16(L, cb, active, n_active, in, is_j, is_b, acc);                     \
        else                                                                                   \
            spmv_narrow_bn(L, cb, active, n_active, in, is_j, is_b, B, acc);                   \
    }                                                                                          \
    ATTR static void spmv_wide_##SUFFIX(const eie_pe_layer_t *L, const float *cb,              \
                                        const uint32_t *active, size_t n_active,               \
                                        const float *in, size_t is_j, size_t is_b, size_t B,   \
                                        float *acc)                                            \
    {                                                                                          \
        if (B == 1)                                                                            \
            spmv_wide_b1(L, cb, active, n_active, in, is_j, acc);                              \
        else if (B == 16)                                                                      \
            spmv_wide_b16(L, cb, active, n_active, in, is_j, is_b, acc);                       \
        else                                                                                   \
            spmv_wide_bn(L, cb, active, n_active, in, is_j, is_b, B, acc);                     \
    }

DEFINE_KERNELS(scalar, )

static int supported_always(void) { return 1; }

#if defined(__x86_64__) && defined(__GNUC__)
DEFINE_KERNELS(avx2, __attribute__((target("avx2,fma"))))

static int supported_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

const eie_cpu_kernel_t eie_cpu_kernels[] = {
    {.name = "scalar", .supported = supported_always, .spmv_narrow = spmv_narrow_scalar,
     .spmv_wide = spmv_wide_scalar},
#if defined(__x86_64__) && defined(__GNUC__)
    {.name = "avx2", .supported = supported_avx2, .spmv_narrow = spmv_narrow_avx2,
     .spmv_wide = spmv_wide_avx2},
#endif
};
const size_t eie_cpu_kernel_count = sizeof eie_cpu_kernels / sizeof eie_cpu_kernels[0];

const eie_cpu_kernel_t *eie_cpu_kernel_best(void)
{
    static _Atomic(const eie_cpu_kernel_t *) best;
    const eie_cpu_kernel_t *k = atomic_load(&best);
    if (k == NULL) {
        /* The list is ordered from reference to fastest. */
        for (size_t i = 0; i < eie_cpu_kernel_count; i++)
            if (eie_cpu_kernels[i].supported())
                k = &eie_cpu_kernels[i];
        atomic_store(&best, k);
    }
    return k;
}

const eie_cpu_kernel_t *eie_cpu_kernel_find(const char *name)
{
    for (size_t i = 0; i < eie_cpu_kernel_count; i++)
        if (strcmp(eie_cpu_kernels[i].name, name) == 0 && eie_cpu_kernels[i].supported())
            return &eie_cpu_kernels[i];
    return NULL;
}
