/*
 * The float sparse baselines of eie-bench (baselines.h). Written to be as
 * fast as their form allows on the machine they are built for: packed
 * vector code through GCC vector types (one FMA per entry for S lanes:
 * with -march=native a 16-lane batch is one 512-bit FMA on AVX-512, two
 * 256-bit ones on AVX2), gathers through intrinsics, every hot loop free
 * of branches but its trip count.
 */
#include "baselines.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "backend.h"
#include "cpu/kernels.h"

#ifndef BL_CFLAGS
#define BL_CFLAGS "(unknown)"
#endif

#define ALIGN 64

/* Entries (batch 1) below which a 2-thread run stays on one thread. */
#define BL_PARALLEL_MIN_WORK (1u << 15)

typedef float vf2 __attribute__((vector_size(8), may_alias));
typedef float vf4 __attribute__((vector_size(16), may_alias));
typedef float vf8 __attribute__((vector_size(32), may_alias));
typedef float vf16 __attribute__((vector_size(64), may_alias));
/* Sixteen floats at any 4-byte boundary (a column's values from any entry). */
typedef float vf16u __attribute__((vector_size(64), may_alias, aligned(4)));

/* One row block: rows [row0, row0 + rows) of the layer in CSC and CSR. */
typedef struct blk {
    uint32_t row0, rows;
    uint32_t *cptr; /* cols + 1 */
    int32_t *crow;  /* local row of each CSC entry */
    float *cval;
    uint32_t *rptr; /* rows + 1 */
    int32_t *rcol;
    float *rval;
    float *acc; /* rows * BL_MAX_BATCH, the CSC batch accumulators */
} blk_t;

/* Thread k's list of the nonzero columns of the input (CSC). */
typedef struct part {
    uint32_t n_act;
    uint32_t *act; /* the nonzero columns, increasing */
    float *xa;     /* their activations, [n_act][S] (CSC, B > 1) */
} part_t;

struct bl_fc {
    uint32_t rows, cols;
    unsigned T;
    eie_pool_t *pool;
    const float *bias; /* own copy */
    blk_t blk[BL_MAX_THREADS];
    part_t part[BL_MAX_THREADS];
    float *xt; /* [cols][S], the transposed input (CSR, B > 1) */
    uint64_t nnz;
    uint64_t busy_max_ns, busy_min_ns; /* the last run's (bl_fc_busy) */
};

const char *bl_cflags(void)
{
    return BL_CFLAGS;
}

const char *bl_isa(void)
{
#if defined(__AVX512F__)
    return "avx512f";
#elif defined(__AVX2__)
    return "avx2";
#else
    return "sse2";
#endif
}

const char *bl_method_name(bl_method_t m)
{
    static const char *const names[] = {"csc", "csc-s", "csr", "csr-g"};
    return m < BL_METHOD_COUNT ? names[m] : "?";
}

int bl_method_available(bl_method_t m, size_t B)
{
    if (m == BL_CSC_SCATTER) {
#if defined(__AVX512F__)
        return B == 1;
#else
        return 0;
#endif
    }
    if (m == BL_CSR_GATHER) {
#if defined(__AVX512F__) || defined(__AVX2__)
        return B == 1;
#else
        return 0;
#endif
    }
    return m < BL_METHOD_COUNT;
}

static void *alloc_aligned(size_t n)
{
    void *p = NULL;
    n = (n + ALIGN - 1) / ALIGN * ALIGN;
    return posix_memalign(&p, ALIGN, n ? n : ALIGN) == 0 ? p : NULL;
}

static size_t stride_of(size_t B)
{
    size_t s = 1;
    while (s < B)
        s *= 2;
    return s;
}

/* ---- build ------------------------------------------------------------- */

/* Entries past a column's or row's end that stay readable: the prefetches
 * and the unrolled loops never read past them. */
#define PAD 32

static int blk_build(blk_t *b, const float *w, uint32_t cols, uint32_t r0, uint32_t r1)
{
    b->row0 = r0;
    b->rows = r1 - r0;
    size_t nnz = 0;
    for (size_t i = (size_t)r0 * cols; i < (size_t)r1 * cols; i++)
        nnz += w[i] != 0.0f;
    b->cptr = calloc((size_t)cols + 1, sizeof(uint32_t));
    b->rptr = calloc((size_t)b->rows + 1, sizeof(uint32_t));
    b->crow = alloc_aligned((nnz + PAD) * sizeof(int32_t));
    b->cval = alloc_aligned((nnz + PAD) * sizeof(float));
    b->rcol = alloc_aligned((nnz + PAD) * sizeof(int32_t));
    b->rval = alloc_aligned((nnz + PAD) * sizeof(float));
    b->acc = alloc_aligned(((size_t)b->rows + 1) * BL_MAX_BATCH * sizeof(float));
    if (!b->cptr || !b->rptr || !b->crow || !b->cval || !b->rcol || !b->rval || !b->acc)
        return -1;
    memset(b->crow + nnz, 0, PAD * sizeof(int32_t));
    memset(b->cval + nnz, 0, PAD * sizeof(float));
    memset(b->rcol + nnz, 0, PAD * sizeof(int32_t));
    memset(b->rval + nnz, 0, PAD * sizeof(float));
    size_t k = 0;
    for (uint32_t i = r0; i < r1; i++) {
        for (uint32_t j = 0; j < cols; j++) {
            float v = w[(size_t)i * cols + j];
            if (v != 0.0f) {
                b->rcol[k] = (int32_t)j;
                b->rval[k++] = v;
                b->cptr[j + 1]++;
            }
        }
        b->rptr[i - r0 + 1] = (uint32_t)k;
    }
    for (uint32_t j = 0; j < cols; j++)
        b->cptr[j + 1] += b->cptr[j];
    uint32_t *fill = malloc(((size_t)cols + 1) * sizeof(uint32_t));
    if (fill == NULL)
        return -1;
    memcpy(fill, b->cptr, ((size_t)cols + 1) * sizeof(uint32_t));
    for (uint32_t i = r0; i < r1; i++)
        for (uint32_t j = 0; j < cols; j++) {
            float v = w[(size_t)i * cols + j];
            if (v != 0.0f) {
                uint32_t p = fill[j]++;
                b->crow[p] = (int32_t)(i - r0);
                b->cval[p] = v;
            }
        }
    free(fill);
    return 0;
}

static void blk_free(blk_t *b)
{
    free(b->cptr);
    free(b->rptr);
    free(b->crow);
    free(b->cval);
    free(b->rcol);
    free(b->rval);
    free(b->acc);
}

bl_fc_t *bl_fc_init(const float *w, const float *bias, uint32_t rows, uint32_t cols,
                    unsigned threads, eie_pool_t *pool)
{
    if (threads < 1 || threads > BL_MAX_THREADS || (threads > 1 && pool == NULL))
        return NULL;
    bl_fc_t *fc = calloc(1, sizeof *fc);
    if (fc == NULL)
        return NULL;
    fc->rows = rows;
    fc->cols = cols;
    fc->T = threads;
    fc->pool = pool;
    float *b = malloc(((size_t)rows + 1) * sizeof(float));
    fc->bias = b;
    fc->xt = alloc_aligned(((size_t)cols + 1) * BL_MAX_BATCH * sizeof(float));
    if (b == NULL || fc->xt == NULL)
        goto error;
    /* the lanes past a batch's B are summed (not stored): keep them finite */
    memset(fc->xt, 0, ((size_t)cols + 1) * BL_MAX_BATCH * sizeof(float));
    memcpy(b, bias, (size_t)rows * sizeof(float));
    /* Row blocks of equal nonzeros: both forms' work is proportional to them. */
    uint64_t total = 0;
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        total += w[i] != 0.0f;
    fc->nnz = total;
    uint32_t r0 = 0;
    uint64_t seen = 0;
    for (unsigned k = 0; k < threads; k++) {
        uint32_t r1 = r0;
        if (k + 1 == threads) {
            r1 = rows;
        } else {
            uint64_t goal = total * (k + 1) / threads;
            while (r1 < rows && seen < goal) {
                for (uint32_t j = 0; j < cols; j++)
                    seen += w[(size_t)r1 * cols + j] != 0.0f;
                r1++;
            }
        }
        if (blk_build(&fc->blk[k], w, cols, r0, r1) != 0)
            goto error;
        r0 = r1;
        fc->part[k].act = alloc_aligned(((size_t)cols + 16) * sizeof(uint32_t));
        fc->part[k].xa = alloc_aligned(((size_t)cols + 1) * BL_MAX_BATCH * sizeof(float));
        if (fc->part[k].act == NULL || fc->part[k].xa == NULL)
            goto error;
    }
    return fc;
error:
    bl_fc_free(fc);
    return NULL;
}

void bl_fc_free(bl_fc_t *fc)
{
    if (fc == NULL)
        return;
    for (unsigned k = 0; k < BL_MAX_THREADS; k++) {
        blk_free(&fc->blk[k]);
        free(fc->part[k].act);
        free(fc->part[k].xa);
    }
    free((void *)fc->bias);
    free(fc->xt);
    free(fc);
}

uint64_t bl_fc_csc_bytes(const bl_fc_t *fc)
{
    return fc->nnz * 8 + (uint64_t)fc->T * ((uint64_t)fc->cols + 1) * 4;
}

/* ---- per-run input work ------------------------------------------------ */

/* The nonzero columns of x in [c0, c1), batch 1: a compress store of the
 * column indices where x is nonzero, 16 at a time on AVX-512. */
static uint32_t active_b1(const float *x, uint32_t c0, uint32_t c1, uint32_t *act)
{
    uint32_t n = 0, j = c0;
#if defined(__AVX512F__)
    __m512i idx =
        _mm512_add_epi32(_mm512_set1_epi32((int)c0),
                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m512i step = _mm512_set1_epi32(16);
    for (; j + 16 <= c1; j += 16) {
        __mmask16 nz = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + j), _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_mask_compressstoreu_epi32(act + n, nz, idx);
        n += (uint32_t)__builtin_popcount(nz);
        idx = _mm512_add_epi32(idx, step);
    }
#endif
    for (; j < c1; j++) {
        act[n] = j;
        n += x[j] != 0.0f;
    }
    return n;
}

/* Batch B > 1, S lanes: the columns where some input is nonzero, and their
 * activations gathered to [n][S] (lanes past B zero). */
static uint32_t active_batch(const float *x, uint32_t cols, size_t B, size_t S, uint32_t c0,
                             uint32_t c1, uint32_t *act, float *xa)
{
    uint32_t n = 0;
    for (uint32_t j = c0; j < c1; j++) {
        float *dst = xa + (size_t)n * S;
        int nz = 0;
        for (size_t b = 0; b < B; b++) {
            float v = x[b * cols + j];
            dst[b] = v;
            nz |= v != 0.0f;
        }
        for (size_t b = B; b < S; b++)
            dst[b] = 0.0f;
        act[n] = j;
        n += (uint32_t)nz;
    }
    return n;
}

/* ---- CSC ----------------------------------------------------------------- */

/* While walking one column, prefetch the next active column line by line at
 * the rate this one is consumed (columns of a layer have similar lengths),
 * and the first line of the one after it. */
#define PF(p) __builtin_prefetch((p), 0, 3)

/* Before the walk, the first line of every active column of both arrays in
 * one burst, through the same pass as the engine's column walk
 * (eie_cpu_prefetch_heads): with caches and TLBs cold the prefetches above,
 * a column or two ahead, leave most of the misses on the walk's path
 * (eie-bench --cold, one thread: Alex-6 1079-1141 us -> 812-828, VGG-6
 * 1196-1261 -> 805-867). */
static void csc_heads(const blk_t *c, const uint32_t *act, uint32_t n)
{
    eie_cpu_prefetch_heads(c->crow, sizeof *c->crow, c->cptr, act, n);
    eie_cpu_prefetch_heads(c->cval, sizeof *c->cval, c->cptr, act, n);
}

static void csc_b1(const blk_t *c, const part_t *part, const float *x, const float *bias, float *y)
{
    float *acc = c->acc;
    memcpy(acc, bias + c->row0, (size_t)c->rows * sizeof(float));
    const uint32_t *ptr = c->cptr;
    const uint32_t *act = part->act;
    const uint32_t n = part->n_act;
    csc_heads(c, act, n);
    for (uint32_t t = 0; t < n; t++) {
        uint32_t j = act[t];
        uint32_t nxt = t + 1 < n ? ptr[act[t + 1]] : ptr[j];
        uint32_t nxt2 = t + 2 < n ? ptr[act[t + 2]] : ptr[j];
        PF(c->crow + nxt2);
        PF(c->cval + nxt2);
        const float a = x[j];
        const int32_t *ri = c->crow + ptr[j];
        const float *v = c->cval + ptr[j];
        const int32_t *pri = c->crow + nxt;
        const float *pv = c->cval + nxt;
        uint32_t len = ptr[j + 1] - ptr[j], k = 0;
        /* Sixteen products in one vector multiply, then one scalar add
           each into its row (the engine's batch-1 walk does the same with
           its codebook): against one multiply-add an entry, Alex-7 198-210
           us against 276, Alex-6 528-553 against 649-669 (one thread). */
        for (; k + 16 <= len; k += 16) {
            PF(pri + k + 16);
            PF(pv + k + 16);
            vf16u p = *(const vf16u *)(v + k) * a;
            for (int i = 0; i < 16; i++)
                acc[ri[k + i]] += p[i];
        }
        for (; k < len; k++)
            acc[ri[k]] += v[k] * a;
    }
    memcpy(y + c->row0, acc, (size_t)c->rows * sizeof(float));
}

#if defined(__AVX512F__)
/* Batch 1, 16 entries at once: the rows of one column are distinct, so a
 * gather of their accumulators, one FMA and a scatter back cannot
 * conflict (the next column's gather sees the scatter: x86 orders them). */
static void csc_scatter_b1(const blk_t *c, const part_t *part, const float *x, const float *bias,
                           float *y)
{
    float *acc = c->acc;
    memcpy(acc, bias + c->row0, (size_t)c->rows * sizeof(float));
    const uint32_t *ptr = c->cptr, *act = part->act;
    uint32_t n = part->n_act;
    csc_heads(c, act, n);
    for (uint32_t t = 0; t < n; t++) {
        uint32_t j = act[t];
        uint32_t nxt = t + 1 < n ? ptr[act[t + 1]] : ptr[j];
        const __m512 a = _mm512_set1_ps(x[j]);
        const int32_t *ri = c->crow + ptr[j];
        const float *v = c->cval + ptr[j];
        uint32_t len = ptr[j + 1] - ptr[j], k = 0;
        for (; k + 16 <= len; k += 16) {
            PF(c->crow + nxt + k + 16);
            PF(c->cval + nxt + k + 16);
            __m512i idx = _mm512_loadu_si512(ri + k);
            __m512 g = _mm512_i32gather_ps(idx, acc, 4);
            _mm512_i32scatter_ps(acc, idx, _mm512_fmadd_ps(_mm512_loadu_ps(v + k), a, g), 4);
        }
        if (k < len) {
            __mmask16 m = (__mmask16)((1u << (len - k)) - 1);
            __m512i idx = _mm512_maskz_loadu_epi32(m, ri + k);
            __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, acc, 4);
            _mm512_mask_i32scatter_ps(acc, m, idx,
                                      _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, v + k), a, g), 4);
        }
    }
    memcpy(y + c->row0, acc, (size_t)c->rows * sizeof(float));
}
#endif

/* Batch: accumulators [row][S], one S-lane FMA per entry. */
#define CSC_BATCH(S, VT)                                                                           \
    static void csc_batch_##S(const blk_t *c, const part_t *part, float *acc)                      \
    {                                                                                              \
        memset(acc, 0, (size_t)c->rows *(S) * sizeof(float));                                      \
        const uint32_t *ptr = c->cptr;                                                             \
        const uint32_t *act = part->act;                                                           \
        const float *xa = part->xa;                                                                \
        const uint32_t n = part->n_act;                                                            \
        csc_heads(c, act, n);                                                                      \
        for (uint32_t t = 0; t < n; t++) {                                                         \
            uint32_t j = act[t];                                                                   \
            uint32_t nxt = t + 1 < n ? ptr[act[t + 1]] : ptr[j];                                   \
            const VT a = *(const VT *)(xa + (size_t)t * (S));                                      \
            const int32_t *ri = c->crow + ptr[j];                                                  \
            const float *v = c->cval + ptr[j];                                                     \
            const int32_t *pri = c->crow + nxt;                                                    \
            const float *pv = c->cval + nxt;                                                       \
            uint32_t len = ptr[j + 1] - ptr[j], k = 0;                                             \
            PF(pri);                                                                               \
            PF(pv);                                                                                \
            for (; k + 4 <= len; k += 4) {                                                         \
                if ((k & 15) == 0) {                                                               \
                    PF(pri + k + 16);                                                              \
                    PF(pv + k + 16);                                                               \
                }                                                                                  \
                *(VT *)(acc + (size_t)ri[k] * (S)) += v[k] * a;                                    \
                *(VT *)(acc + (size_t)ri[k + 1] * (S)) += v[k + 1] * a;                            \
                *(VT *)(acc + (size_t)ri[k + 2] * (S)) += v[k + 2] * a;                            \
                *(VT *)(acc + (size_t)ri[k + 3] * (S)) += v[k + 3] * a;                            \
            }                                                                                      \
            for (; k < len; k++)                                                                   \
                *(VT *)(acc + (size_t)ri[k] * (S)) += v[k] * a;                                    \
        }                                                                                          \
    }

CSC_BATCH(2, vf2)
CSC_BATCH(4, vf4)
CSC_BATCH(8, vf8)
CSC_BATCH(16, vf16)

static void csc_batch(const blk_t *c, const part_t *part, size_t S, float *acc)
{
    switch (S) {
    case 2:
        csc_batch_2(c, part, acc);
        break;
    case 4:
        csc_batch_4(c, part, acc);
        break;
    case 8:
        csc_batch_8(c, part, acc);
        break;
    default:
        csc_batch_16(c, part, acc);
        break;
    }
}

/* acc [rows][S] + bias to y [B][rows_total]. */
static void store_batch(const blk_t *c, const float *acc, size_t B, size_t S, const float *bias,
                        uint32_t rows_total, float *y)
{
    for (size_t b = 0; b < B; b++) {
        float *yb = y + b * rows_total + c->row0;
        const float *bb = bias + c->row0;
        for (uint32_t r = 0; r < c->rows; r++)
            yb[r] = acc[(size_t)r * S + b] + bb[r];
    }
}

/* ---- CSR ----------------------------------------------------------------- */

/* Batch 1, scalar: four partial sums break the FMA latency chain. Kept
 * scalar so that csr-g (gathers) is the vector form of the same walk. */
__attribute__((optimize("no-tree-vectorize"))) static void csr_b1(const blk_t *c, const float *x,
                                                                  const float *bias, float *y)
{
    for (uint32_t r = 0; r < c->rows; r++) {
        const int32_t *ci = c->rcol + c->rptr[r];
        const float *v = c->rval + c->rptr[r];
        uint32_t len = c->rptr[r + 1] - c->rptr[r], k = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (; k + 4 <= len; k += 4) {
            s0 += v[k] * x[ci[k]];
            s1 += v[k + 1] * x[ci[k + 1]];
            s2 += v[k + 2] * x[ci[k + 2]];
            s3 += v[k + 3] * x[ci[k + 3]];
        }
        for (; k < len; k++)
            s0 += v[k] * x[ci[k]];
        y[c->row0 + r] = bias[c->row0 + r] + ((s0 + s1) + (s2 + s3));
    }
}

#if defined(__AVX512F__)
/* Batch 1 with 16-wide gathers, two partial sums, a masked tail. */
static void csr_gather_b1(const blk_t *c, const float *x, const float *bias, float *y)
{
    for (uint32_t r = 0; r < c->rows; r++) {
        const int32_t *ci = c->rcol + c->rptr[r];
        const float *v = c->rval + c->rptr[r];
        uint32_t len = c->rptr[r + 1] - c->rptr[r], k = 0;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        for (; k + 32 <= len; k += 32) {
            __m512i i0 = _mm512_loadu_si512(ci + k), i1 = _mm512_loadu_si512(ci + k + 16);
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(v + k), _mm512_i32gather_ps(i0, x, 4), s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(v + k + 16), _mm512_i32gather_ps(i1, x, 4), s1);
        }
        if (k + 16 <= len) {
            __m512i i0 = _mm512_loadu_si512(ci + k);
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(v + k), _mm512_i32gather_ps(i0, x, 4), s0);
            k += 16;
        }
        if (k < len) {
            __mmask16 m = (__mmask16)((1u << (len - k)) - 1);
            __m512i i0 = _mm512_maskz_loadu_epi32(m, ci + k);
            __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, i0, x, 4);
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, v + k), g, s1);
        }
        y[c->row0 + r] = bias[c->row0 + r] + _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    }
}
#elif defined(__AVX2__)
/* Batch 1 with 8-wide gathers, two partial sums, a scalar tail. */
static void csr_gather_b1(const blk_t *c, const float *x, const float *bias, float *y)
{
    for (uint32_t r = 0; r < c->rows; r++) {
        const int32_t *ci = c->rcol + c->rptr[r];
        const float *v = c->rval + c->rptr[r];
        uint32_t len = c->rptr[r + 1] - c->rptr[r], k = 0;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        for (; k + 16 <= len; k += 16) {
            __m256i i0 = _mm256_loadu_si256((const __m256i *)(ci + k));
            __m256i i1 = _mm256_loadu_si256((const __m256i *)(ci + k + 8));
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + k), _mm256_i32gather_ps(x, i0, 4), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(v + k + 8), _mm256_i32gather_ps(x, i1, 4), s1);
        }
        __m256 s = _mm256_add_ps(s0, s1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        float t = _mm_cvtss_f32(h);
        for (; k < len; k++)
            t += v[k] * x[ci[k]];
        y[c->row0 + r] = bias[c->row0 + r] + t;
    }
}
#endif

/* Batch: S lanes per row from xt [cols][S], four partial sums (an FMA's
 * latency is 4 cycles: two sums held the 16-lane CSR at 2 cycles an entry). */
#define CSR_BATCH(S, VT)                                                                           \
    static void csr_batch_##S(const blk_t *c, const float *xt, size_t B, const float *bias,        \
                              uint32_t rows_total, float *y)                                       \
    {                                                                                              \
        for (uint32_t r = 0; r < c->rows; r++) {                                                   \
            const int32_t *ci = c->rcol + c->rptr[r];                                              \
            const float *v = c->rval + c->rptr[r];                                                 \
            uint32_t len = c->rptr[r + 1] - c->rptr[r], k = 0;                                     \
            VT s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};                                             \
            for (; k + 4 <= len; k += 4) {                                                         \
                s0 += v[k] * *(const VT *)(xt + (size_t)ci[k] * (S));                              \
                s1 += v[k + 1] * *(const VT *)(xt + (size_t)ci[k + 1] * (S));                      \
                s2 += v[k + 2] * *(const VT *)(xt + (size_t)ci[k + 2] * (S));                      \
                s3 += v[k + 3] * *(const VT *)(xt + (size_t)ci[k + 3] * (S));                      \
            }                                                                                      \
            for (; k < len; k++)                                                                   \
                s0 += v[k] * *(const VT *)(xt + (size_t)ci[k] * (S));                              \
            s0 = (s0 + s1) + (s2 + s3);                                                            \
            float bb = bias[c->row0 + r];                                                          \
            for (size_t b = 0; b < B; b++)                                                         \
                y[b * rows_total + c->row0 + r] = s0[b] + bb;                                      \
        }                                                                                          \
    }

CSR_BATCH(2, vf2)
CSR_BATCH(4, vf4)
CSR_BATCH(8, vf8)
CSR_BATCH(16, vf16)

static void csr_batch(const blk_t *c, const float *xt, size_t B, size_t S, const float *bias,
                      uint32_t rows_total, float *y)
{
    switch (S) {
    case 2:
        csr_batch_2(c, xt, B, bias, rows_total, y);
        break;
    case 4:
        csr_batch_4(c, xt, B, bias, rows_total, y);
        break;
    case 8:
        csr_batch_8(c, xt, B, bias, rows_total, y);
        break;
    default:
        csr_batch_16(c, xt, B, bias, rows_total, y);
        break;
    }
}

/* ---- one thread's share, and the pool job ------------------------------ */

typedef struct run_args {
    bl_fc_t *fc;
    bl_method_t m;
    const float *x;
    size_t B;
    float *y;
} run_args_t;

/* Phase 1: thread k's part of the per-run input work. */
static void share_input(const run_args_t *a, unsigned k)
{
    bl_fc_t *fc = a->fc;
    const size_t B = a->B, S = stride_of(B);
    if (a->m == BL_CSC || a->m == BL_CSC_SCATTER) {
        /* Each thread finds every nonzero column itself: a few microseconds
         * of work (16 columns an instruction at batch 1), where a barrier
         * costs a wake-up whenever the other thread has gone to sleep. */
        part_t *p = &fc->part[k];
        p->n_act = B == 1 ? active_b1(a->x, 0, fc->cols, p->act)
                          : active_batch(a->x, fc->cols, B, S, 0, fc->cols, p->act, p->xa);
    } else if (B > 1) {
        /* x [B][cols] to xt [cols][S], thread k's share of the columns,
         * through the engine's own transpose: element by element, NT-We's
         * csr at batch 16 took 164-168 us against 135-143 through it. Each
         * thread transposing the whole into its own copy ran the same. */
        eie_cpu_transpose_share(eie_cpu_kernel_best(), a->x, fc->cols, B, S, k, k + 1, fc->T,
                                fc->xt);
    }
}

/* Phase 2: thread k's rows. */
static void share_rows(const run_args_t *a, unsigned k)
{
    bl_fc_t *fc = a->fc;
    const size_t B = a->B, S = stride_of(B);
    const blk_t *c = &fc->blk[k];
    switch (a->m) {
    case BL_CSC:
        if (B == 1) {
            csc_b1(c, &fc->part[k], a->x, fc->bias, a->y);
        } else {
            csc_batch(c, &fc->part[k], S, c->acc);
            store_batch(c, c->acc, B, S, fc->bias, fc->rows, a->y);
        }
        break;
    case BL_CSC_SCATTER:
#if defined(__AVX512F__)
        csc_scatter_b1(c, &fc->part[k], a->x, fc->bias, a->y);
#endif
        break;
    case BL_CSR:
        if (B == 1)
            csr_b1(c, a->x, fc->bias, a->y);
        else
            csr_batch(c, fc->xt, B, S, fc->bias, fc->rows, a->y);
        break;
    case BL_CSR_GATHER:
#if defined(__AVX512F__) || defined(__AVX2__)
        csr_gather_b1(c, a->x, fc->bias, a->y);
#endif
        break;
    default:
        break;
    }
}

static void share(const run_args_t *a, unsigned k, eie_pool_t *pool)
{
    share_input(a, k);
    if (a->fc->T > 1 && a->m != BL_CSC && a->m != BL_CSC_SCATTER && a->B > 1)
        eie_pool_barrier(pool);
    share_rows(a, k);
}

typedef struct fc_job {
    eie_pool_job_t base;
    run_args_t args;
    eie_waiter_t *w;
} fc_job_t;

static void job_run(eie_pool_job_t *base, unsigned pe, eie_pool_t *pool)
{
    fc_job_t *job = (fc_job_t *)base;
    share(&job->args, pe, pool);
}

static void job_finish(eie_pool_job_t *base)
{
    fc_job_t *job = (fc_job_t *)base;
    eie_run_info_t info = {
        .pe_busy_max_ns = atomic_load_explicit(&base->busy_max_ns, memory_order_relaxed),
        .pe_busy_min_ns = atomic_load_explicit(&base->busy_min_ns, memory_order_relaxed)};
    eie_waiter_done(job->w, EIE_STATUS_OK, &info, NULL);
}

void bl_fc_run(bl_fc_t *fc, bl_method_t m, const float *x, size_t B, float *y)
{
    run_args_t a = {.fc = fc, .m = m, .x = x, .B = B, .y = y};
    /* As the engine (PARALLEL_MIN_WORK in engine/cpu/cpu.c): too little
     * work for a hand-off to another thread, and one thread runs every
     * block in turn. */
    fc->busy_max_ns = fc->busy_min_ns = 0;
    if (fc->T == 1 || fc->nnz * (B > 1 ? 2 : 1) < BL_PARALLEL_MIN_WORK) {
        for (unsigned k = 0; k < fc->T; k++)
            share_input(&a, k);
        for (unsigned k = 0; k < fc->T; k++)
            share_rows(&a, k);
        return;
    }
    /* As the engine's synchronous run: the caller takes one block, then
     * spins a while for the other before it sleeps. */
    eie_waiter_t w;
    fc_job_t job = {.base = {.run = job_run, .finish = job_finish}, .args = a, .w = &w};
    eie_waiter_init(&w);
    eie_pool_submit_join(fc->pool, &job.base);
    eie_error_t err;
    eie_run_info_t info;
    eie_waiter_wait(&w, 8 * eie_pool_spin(fc->pool), &info, &err);
    fc->busy_max_ns = info.pe_busy_max_ns;
    fc->busy_min_ns = info.pe_busy_min_ns;
}

void bl_fc_busy(const bl_fc_t *fc, uint64_t *max_ns, uint64_t *min_ns)
{
    *max_ns = fc->busy_max_ns;
    *min_ns = fc->busy_min_ns;
}
