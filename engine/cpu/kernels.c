/*
 * The spmv kernels. The bodies are written once as always-inline functions
 * and instantiated per instruction set: the scalar reference in portable C,
 * the AVX2 variant compiled with target("avx2,fma,bmi"), the AVX-512 one
 * with AVX-512 F, BW and VL. Selection happens once, through
 * __builtin_cpu_supports, or by name (eie_cpu_kernel_select).
 */
#include "cpu/kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_ops.h"

#define INLINE static inline __attribute__((always_inline))

/* p if keep, else +0.0, by masking p's bits (a ?: became branches around
 * the products). */
INLINE float keep_if(float p, int keep)
{
    uint32_t u;
    memcpy(&u, &p, sizeof u);
    u &= (uint32_t)0 - (uint32_t)keep;
    memcpy(&p, &u, sizeof p);
    return p;
}

/* Columns are visited in activation order, so each one starts a new stream
 * in the entry array and the hardware prefetcher only catches up after a few
 * lines: profiling showed the entry loads missing the cache. Prefetch the
 * whole column PREFETCH_AHEAD active columns ahead (EIE hides the same
 * latency with its activation FIFO, sec. III-B). */
#define PREFETCH_AHEAD     2
#define PREFETCH_PTR_AHEAD 8
#define PREFETCH_MAX_LINES 64

/* The column pointers, further ahead: the column prefetch reads them. */
INLINE void prefetch_pointers(const uint32_t *ptr, const uint32_t *active, size_t k,
                              size_t n_active)
{
    if (k + PREFETCH_PTR_AHEAD < n_active)
        __builtin_prefetch(&ptr[active[k + PREFETCH_PTR_AHEAD]], 0, 3);
}

INLINE void prefetch_column(const void *ent, size_t esz, const uint32_t *ptr,
                            const uint32_t *active, size_t k, size_t n_active)
{
    prefetch_pointers(ptr, active, k, n_active);
    if (k + PREFETCH_AHEAD >= n_active)
        return;
    uint32_t j = active[k + PREFETCH_AHEAD];
    const char *p = (const char *)ent + (size_t)ptr[j] * esz;
    const char *end = (const char *)ent + (size_t)ptr[j + 1] * esz;
    for (int l = 0; p < end && l < PREFETCH_MAX_LINES; p += 64, l++)
        __builtin_prefetch(p, 0, 3);
}

/* Batch 1. Columns are visited in activation order, so each starts a new
 * stream and the hardware prefetcher catches up a few lines late; on this
 * VM's shared last-level cache the layout is often partly evicted between
 * runs, and then those misses go to DRAM. So the kernel streams a prefetch
 * through column k + STREAM_AHEAD while it walks column k, at the rate it
 * consumes column k (columns of one layer have similar lengths): one
 * prefetch per STREAM_BYTES of entries, after the coming column's first two
 * lines. One PE's slice, same process, against prefetching only the coming
 * column's first two lines: Alex-7 1 PE 311 vs 338 us warm, 721 vs 978 us
 * after the cache was flushed; VGG-6 at 2 PEs 278 vs 301 warm, 682 vs 838
 * flushed. */
#define STREAM_AHEAD 4
#define STREAM_BYTES 32

INLINE const char *prefetch_stream_start(const void *ent, size_t esz, const uint32_t *ptr,
                                         const uint32_t *active, size_t k, size_t n_active)
{
    prefetch_pointers(ptr, active, k, n_active);
    if (k + STREAM_AHEAD >= n_active)
        return (const char *)ent; /* nothing ahead: harmless re-prefetches */
    const char *p = (const char *)ent + (size_t)ptr[active[k + STREAM_AHEAD]] * esz;
    __builtin_prefetch(p, 0, 3);
    __builtin_prefetch(p + 64, 0, 3);
    return p + 128;
}

/* Narrow entries: a 16-entry codebook pre-scaled by a_j turns each entry
 * into one table load and one add (no multiply on the per-entry path); four
 * entries come from one 64-bit load, sixteen (STREAM_BYTES) per step. Rows
 * within a column are distinct, so the adds of one step are independent.
 *
 * Columns are short (30-80 entries a PE on the benchmark layers at 2 PEs),
 * so what a column costs besides its entries shows: the last 0-3 entries
 * take no loop but one 64-bit load (the layout keeps EIE_ENTRY_SLACK
 * entries readable past the last column) and a branch-free select per lane
 * between the entry's row and a sink slot past the PE's rows (NT-We, one
 * PE's slice: 6% faster than a loop).
 *
 * The loop is bound by instructions, not by loads; FIELD(w, start, len)
 * takes a bit field of w. With shifts and masks an entry costs about ten
 * instructions; BMI's bextr takes each field in one (one PE's slice, same
 * process, NT-We 16% faster at 1 PE, Alex-7 20%, VGG-6 at 2 PEs 16%). The
 * SIMD variants go further with a permute (PERMUTE_B1_BODY); this body is
 * the scalar reference. */
#define FIELD_SHIFT(w, start, len) (((w) >> (start)) & ((UINT64_C(1) << (len)) - 1))
#define MADD_SEPARATE(a, b, c)     ((c) + (a) * (b))

/* An entry is row << CS | code (CS 4, or 5 for 5-bit codes: layout.h). */
#define ADD4_NARROW(w, FIELD, CS)                                                                  \
    do {                                                                                           \
        acc[FIELD(w, (CS), 16 - (CS))] += s[FIELD(w, 0, (CS))];                                    \
        acc[FIELD(w, 16 + (CS), 16 - (CS))] += s[FIELD(w, 16, (CS))];                              \
        acc[FIELD(w, 32 + (CS), 16 - (CS))] += s[FIELD(w, 32, (CS))];                              \
        acc[FIELD(w, 48 + (CS), 16 - (CS))] += s[FIELD(w, 48, (CS))];                              \
    } while (0)

#define SPMV_NARROW_B1_BODY(FIELD, CS)                                                             \
    uint64_t walked = 0;                                                                           \
    const uint16_t *ent = L->ent;                                                                  \
    const uint32_t *ptr = L->ptr;                                                                  \
    float s[1 << (CS)];                                                                            \
    const size_t nr = L->n_rows;                                                                   \
    for (size_t k = 0; k < n_active; k++) {                                                        \
        uint32_t j = active[k];                                                                    \
        float a = in[(size_t)j * is_j];                                                            \
        const char *pf = prefetch_stream_start(ent, sizeof *ent, ptr, active, k, n_active);        \
        for (int q = 0; q < (1 << (CS)); q++)                                                      \
            s[q] = cb[q] * a;                                                                      \
        const uint16_t *e = ent + ptr[j], *end = ent + ptr[j + 1];                                 \
        walked += (uint64_t)(end - e);                                                             \
        uint64_t w, w1, w2, w3;                                                                    \
        for (; end - e >= STREAM_BYTES / 2; e += STREAM_BYTES / 2) {                               \
            __builtin_prefetch(pf, 0, 3);                                                          \
            pf += STREAM_BYTES;                                                                    \
            memcpy(&w, e, 8);                                                                      \
            memcpy(&w1, e + 4, 8);                                                                 \
            memcpy(&w2, e + 8, 8);                                                                 \
            memcpy(&w3, e + 12, 8);                                                                \
            ADD4_NARROW(w, FIELD, CS);                                                             \
            ADD4_NARROW(w1, FIELD, CS);                                                            \
            ADD4_NARROW(w2, FIELD, CS);                                                            \
            ADD4_NARROW(w3, FIELD, CS);                                                            \
        }                                                                                          \
        for (; end - e >= 4; e += 4) {                                                             \
            memcpy(&w, e, 8);                                                                      \
            ADD4_NARROW(w, FIELD, CS);                                                             \
        }                                                                                          \
        size_t t = (size_t)(end - e);                                                              \
        memcpy(&w, e, 8);                                                                          \
        for (unsigned i = 0; i < 3; i++) {                                                         \
            size_t ei = (size_t)(w >> (16 * i)) & 0xffffu;                                         \
            size_t keep = (size_t)0 - (size_t)(i < t); /* all ones for a real entry */             \
            acc[((ei >> (CS)) & keep) | ((nr + i) & ~keep)] += s[ei & ((1u << (CS)) - 1)];         \
        }                                                                                          \
    }                                                                                              \
    return walked;

/* clang-format off */
INLINE uint64_t spmv_narrow_b1(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                               size_t n_active, const float *in, size_t is_j, float *acc)
{
    SPMV_NARROW_B1_BODY(FIELD_SHIFT, 4)
}

INLINE uint64_t spmv_narrow5_b1(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                                size_t n_active, const float *in, size_t is_j, float *acc)
{
    SPMV_NARROW_B1_BODY(FIELD_SHIFT, 5)
}
/* clang-format on */

/* Wide entries (more than 4096 local rows, or codes over 4 bits): the same
 * stream, two entries a 64-bit load (NT-Wd, one PE's slice at 1 and 2 PEs:
 * 12-15% faster than the one-entry loop with a whole-column prefetch it
 * replaced), fields taken with bextr in the SIMD variant (NT-Wd 536 vs 649
 * us at 1 PE, 242 vs 309 at 2). The codebook is not pre-scaled: 256
 * products a column would cost more than a short column's entries, and for
 * 4-bit codes pre-scaling measured 1-2%. */
#define ADD2_WIDE(w, FIELD)                                                                        \
    do {                                                                                           \
        acc[FIELD(w, 8, 24)] += cb[FIELD(w, 0, 8)] * a;                                            \
        acc[FIELD(w, 40, 24)] += cb[FIELD(w, 32, 8)] * a;                                          \
    } while (0)

#define SPMV_WIDE_B1_BODY(FIELD)                                                                   \
    const uint32_t *ent = L->ent;                                                                  \
    const uint32_t *ptr = L->ptr;                                                                  \
    uint64_t walked = 0;                                                                           \
    for (size_t k = 0; k < n_active; k++) {                                                        \
        uint32_t j = active[k];                                                                    \
        float a = in[(size_t)j * is_j];                                                            \
        const char *pf = prefetch_stream_start(ent, sizeof *ent, ptr, active, k, n_active);        \
        const uint32_t *e = ent + ptr[j], *end = ent + ptr[j + 1];                                 \
        walked += (uint64_t)(end - e);                                                             \
        uint64_t w, w1, w2, w3;                                                                    \
        for (; end - e >= STREAM_BYTES / 4; e += STREAM_BYTES / 4) {                               \
            __builtin_prefetch(pf, 0, 3);                                                          \
            pf += STREAM_BYTES;                                                                    \
            memcpy(&w, e, 8);                                                                      \
            memcpy(&w1, e + 2, 8);                                                                 \
            memcpy(&w2, e + 4, 8);                                                                 \
            memcpy(&w3, e + 6, 8);                                                                 \
            ADD2_WIDE(w, FIELD);                                                                   \
            ADD2_WIDE(w1, FIELD);                                                                  \
            ADD2_WIDE(w2, FIELD);                                                                  \
            ADD2_WIDE(w3, FIELD);                                                                  \
        }                                                                                          \
        for (; e < end; e++)                                                                       \
            acc[*e >> 8] += cb[*e & 255] * a;                                                      \
    }                                                                                              \
    return walked;

/* clang-format off */
INLINE uint64_t spmv_wide_b1(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                             size_t n_active, const float *in, size_t is_j, float *acc)
{
    SPMV_WIDE_B1_BODY(FIELD_SHIFT)
}
/* clang-format on */

/* Four narrow row entries (col << SH | code, SH 4 or 5) of one 64-bit word,
 * of weights W0..W3, into four running sums; the columns count from xin. */
#define ROWS_B1_STEP4(FIELD, MADD, SH, w, W0, W1, W2, W3, s0, s1, s2, s3)                          \
    do {                                                                                           \
        s0 = MADD(W0, xin[FIELD(w, (SH), 16 - (SH))], s0);                                         \
        s1 = MADD(W1, xin[FIELD(w, 16 + (SH), 16 - (SH))], s1);                                    \
        s2 = MADD(W2, xin[FIELD(w, 32 + (SH), 16 - (SH))], s2);                                    \
        s3 = MADD(W3, xin[FIELD(w, 48 + (SH), 16 - (SH))], s3);                                    \
    } while (0)
/* The same, the weights loaded from cb by the entries' codes. */
#define ROWS_B1_STEP4_CB(FIELD, MADD, SH, w, s0, s1, s2, s3)                                       \
    ROWS_B1_STEP4(FIELD, MADD, SH, w, cb[FIELD(w, 0, (SH))], cb[FIELD(w, 16, (SH))],               \
                  cb[FIELD(w, 32, (SH))], cb[FIELD(w, 48, (SH))], s0, s1, s2, s3)

/* The batch-1 row form walks a row span by span (layout.h), its sums
 * carried across them, so that a row is summed as one; SPANNED 0 walks
 * whole rows (no rspan) in a body of their own, the loop over one span
 * gone (NT-LSTM-sized, one thread: 94-95 us whole against 98-99 through
 * the span loop). ROWS_B1_SPAN(r, t) names row r's entries in span t, [e,
 * end), and the input from the span's base column, xin. */
#define ROWS_B1_SPANS(SPANNED)                                                                     \
    const uint32_t nr = L->n_rows, n_spans = (SPANNED) ? L->n_rspans : 1;                          \
    const uint32_t *spans = (SPANNED) ? L->rspan : L->rptr;                                        \
    const size_t next = (SPANNED) ? nr : 1; /* spans[i + next]: where spans[i]'s ends */          \
    const size_t span_cols = (SPANNED) ? eie_pe_span_cols(L) : 0 /* eie_pe_span_base's step */
#define ROWS_B1_SPAN(r, t)                                                                         \
    const uint32_t *st_ = spans + (size_t)(t)*nr;                                                  \
    const uint16_t *e = L->rent + st_[(r)], *end = L->rent + st_[(r) + next];                      \
    const float *xin = in + (size_t)(t)*span_cols

/* A batch-1 row form's four bodies, BODY(SH, ARG, SPANNED): 4- or 5-bit
 * codes (ARG4, ARG5), whole rows or spans. */
#define ROWS_B1_DISPATCH(BODY, ARG5, ARG4)                                                         \
    if (eie_pe_row_shift(L) == 5) {                                                                \
        if (L->rspan != NULL) {                                                                    \
            BODY(5, ARG5, 1)                                                                       \
        }                                                                                          \
        BODY(5, ARG5, 0)                                                                           \
    }                                                                                              \
    if (L->rspan != NULL) {                                                                        \
        BODY(4, ARG4, 1)                                                                           \
    }                                                                                              \
    BODY(4, ARG4, 0)

/* The row form (kernels.h): four partial sums, so that the adds of one step
 * are independent. MADD(a, b, c) is c + a * b: rounded twice in the scalar
 * reference, fused in the SIMD variant (the build stops the compiler from
 * contracting on its own). A row's last 0-3 entries come from one 64-bit
 * load (the row form keeps EIE_ENTRY_SLACK zeroed entries past its end)
 * and are masked, not branched on: the products of lanes past the row
 * (the next row's entries) are dropped whatever they are, NaN included;
 * those lanes read entry 0 (column 0, code 0), since in a span's column
 * base the next span's or row's columns may lie past the input.
 * Rows are short (66 entries on NT-Wd); one PE's slice, same process,
 * fused with the masked tail against fused with a tail loop: NT-Wd 423-508
 * vs 486-570 us, NT-We 140-203 vs 167-210, NT-LSTM 215-223 vs 243-248.
 * The row form against the column kernel, every activation nonzero (before
 * fusing and masking): NT-We 158 vs 245 us at 1 PE and 84 vs 165 at 2,
 * Alex-7-sized 348 vs 452 at 2, NT-LSTM 232 vs 263 at 1, NT-Wd (short
 * rows) 490 vs 538 at 1 and even at 2. */
#define SPMV_ROWS_B1_BODY(SH, CB, SPANNED)                                                         \
    ROWS_B1_SPANS(SPANNED);                                                                        \
    for (uint32_t r = 0; r < nr; r++) {                                                            \
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;                                          \
        for (uint32_t t = 0; t < n_spans; t++) {                                                   \
            ROWS_B1_SPAN(r, t);                                                                    \
            uint64_t w;                                                                            \
            for (; end - e >= 4; e += 4) {                                                         \
                memcpy(&w, e, 8);                                                                  \
                ROWS_B1_STEP4_CB(FIELD_SHIFT, MADD_SEPARATE, SH, w, s0, s1, s2, s3);               \
            }                                                                                      \
            size_t n = (size_t)(end - e);                                                          \
            memcpy(&w, e, 8);                                                                      \
            w &= (UINT64_C(1) << (16 * n)) - 1; /* past a span, xin + col may pass the input */    \
            s1 += keep_if(CB[FIELD_SHIFT(w, 0, SH)] * xin[FIELD_SHIFT(w, SH, 16 - SH)], n > 0);    \
            s2 += keep_if(CB[FIELD_SHIFT(w, 16, SH)] * xin[FIELD_SHIFT(w, 16 + SH, 16 - SH)],      \
                          n > 1);                                                                  \
            s3 += keep_if(CB[FIELD_SHIFT(w, 32, SH)] * xin[FIELD_SHIFT(w, 32 + SH, 16 - SH)],      \
                          n > 2);                                                                  \
        }                                                                                          \
        acc[r] = (s0 + s1) + (s2 + s3);                                                            \
    }                                                                                              \
    return L->rptr[nr];

/* clang-format off */
static uint64_t rows_b1_scalar(const eie_pe_layer_t *L, const float *cb, const float *in,
                               float *acc)
{
    ROWS_B1_DISPATCH(SPMV_ROWS_B1_BODY, cb, cb)
}
/* clang-format on */

/* The row form at batch B (kernels.h), the reference: a row's S sums in a
 * local array, one entry at a time, span after span (layout.h; one span
 * without rspan), each entry's column counted from its span's base. */
#define ROWS_BATCH_BODY(ETYPE, ENT, SHIFT, MASK)                                                   \
    const ETYPE *ent = (ENT);                                                                      \
    const uint32_t nr = L->n_rows, n_spans = L->rspan != NULL ? L->n_rspans : 1;                   \
    const size_t S = eie_cpu_batch_stride(B);                                                      \
    for (uint32_t r = 0; r < nr; r++) {                                                            \
        float sum[EIE_KERNEL_MAX_BATCH] = {0};                                                     \
        for (uint32_t t = 0; t < n_spans; t++) {                                                   \
            uint32_t beg = L->rspan != NULL ? L->rspan[(size_t)t * nr + r] : L->rptr[r];           \
            uint32_t end = L->rspan != NULL ? L->rspan[(size_t)(t + 1) * nr + r] : L->rptr[r + 1]; \
            const float *xin = in + eie_pe_span_base(L, t) * S;                                    \
            for (uint32_t q = beg; q < end; q++) {                                                 \
                float v = cb[ent[q] & (MASK)];                                                     \
                const float *x = xin + (size_t)(ent[q] >> (SHIFT)) * S;                            \
                for (size_t b = 0; b < S; b++)                                                     \
                    sum[b] += v * x[b];                                                            \
            }                                                                                      \
        }                                                                                          \
        memcpy(acc + (size_t)r * S, sum, S * sizeof(float));                                       \
    }                                                                                              \
    return L->rptr[nr];

static uint64_t rows_conv_scalar(const eie_conv_rows_t *R, const float *cb, const float *in,
                                 float *acc, int add, unsigned lanes)
{
    uint64_t walked = 0;
    for (uint32_t r = 0; r < R->n_rows; r++) {
        float sum[EIE_CONV_LANES] = {0};
        if (add)
            memcpy(sum, acc + (size_t)r * lanes, lanes * sizeof(float));
        for (uint32_t q = R->beg[r]; q < R->end[r]; q++) {
            float v = cb[R->ent[q] & 255];
            const float *x = in + (R->ent[q] >> 8);
            for (size_t b = 0; b < lanes; b++)
                sum[b] += v * x[b];
        }
        memcpy(acc + (size_t)r * lanes, sum, lanes * sizeof(float));
        walked += R->end[r] - R->beg[r];
    }
    return walked;
}

#define CONV_OUT_BODY                                                                              \
    for (uint32_t r = 0; r < n_rows; r++) {                                                        \
        const float *a = acc + (size_t)r * lanes;                                                  \
        float *d = dst + r * dst_stride, bb = bias[r * bias_stride];                               \
        for (size_t k = 0; k < n_runs; k++)                                                        \
            for (uint32_t i = 0; i < runs[k].len; i++)                                             \
                d[runs[k].at + i] = a[runs[k].lane + i] + bb;                                      \
    }

static void conv_out_scalar(const float *acc, unsigned lanes, uint32_t n_rows,
                            const eie_conv_run_t *runs, size_t n_runs, const float *bias,
                            size_t bias_stride, float *dst, size_t dst_stride)
{
    CONV_OUT_BODY
}

/* A plane's shifted copies: copy s is the plane from its element s on
 * (kernels.h); one contiguous move each, as libc copies it. */
static void conv_plane_copies(const eie_conv_plane_t *P)
{
    size_t n = P->Hq * P->Wq;
    for (uint32_t s = 1; s < P->n_copies && s < n; s++)
        memcpy(P->dst + s * P->copy_floats, P->dst + s, (n - s) * sizeof(float));
}

static uint64_t conv_plane_scalar(const eie_conv_plane_t *P, int count)
{
    int64_t H = P->H, W = P->W, Wq = (int64_t)P->Wq, sx = P->sx, x0 = P->x0;
    uint64_t nz = 0;
    for (int64_t i = 0; count && i < H * W; i++)
        nz += P->src[i] != 0.0f;
    /* columns j with 0 <= x0 + j sx < W: [j0, j1) */
    int64_t j0 = x0 >= 0 ? 0 : (-x0 + sx - 1) / sx;
    int64_t j1 = W - x0 <= 0 ? 0 : (W - x0 + sx - 1) / sx;
    j1 = j1 < Wq ? j1 : Wq;
    j0 = j0 < j1 ? j0 : j1;
    float *dst = P->dst;
    for (size_t i = 0; i < P->Hq; i++, dst += Wq) {
        int64_t y = P->y0 + (int64_t)i * P->sy;
        if (y < 0 || y >= H) {
            memset(dst, 0, (size_t)Wq * sizeof(float));
            continue;
        }
        const float *row = P->src + y * W;
        for (int64_t j = 0; j < j0; j++)
            dst[j] = 0.0f;
        for (int64_t j = j0; j < j1; j++)
            dst[j] = row[x0 + j * sx];
        for (int64_t j = j1; j < Wq; j++)
            dst[j] = 0.0f;
    }
    conv_plane_copies(P);
    return nz;
}

static uint64_t rows_batch_scalar(const eie_pe_layer_t *L, const float *cb, const float *in,
                                  size_t B, float *acc)
{
    if (L->rentw != NULL) {
        ROWS_BATCH_BODY(uint32_t, L->rentw, 8, 255)
    }
    if (eie_pe_row_shift(L) == 5) {
        ROWS_BATCH_BODY(uint16_t, L->rent, 5, 31)
    }
    ROWS_BATCH_BODY(uint16_t, L->rent, 4, 15)
}

/* Batch B: the entry is decoded once, its weight multiplies B activations
 * into B contiguous accumulators (EIE amortises nothing here; a CPU can). */
#define SPMV_BATCH_BODY(ETYPE, SHIFT, MASK, BP)                                                    \
    const ETYPE *ent = L->ent;                                                                     \
    const uint32_t *ptr = L->ptr;                                                                  \
    float av[EIE_KERNEL_MAX_BATCH];                                                                \
    uint64_t walked = 0;                                                                           \
    for (size_t k = 0; k < n_active; k++) {                                                        \
        uint32_t j = active[k];                                                                    \
        prefetch_column(ent, sizeof(ETYPE), ptr, active, k, n_active);                             \
        walked += ptr[j + 1] - ptr[j];                                                             \
        for (size_t b = 0; b < (BP); b++)                                                          \
            av[b] = b < B ? in[(size_t)j * is_j + b * is_b] : 0.0f;                                \
        for (uint32_t q = ptr[j]; q < ptr[j + 1]; q++) {                                           \
            float v = cb[ent[q] & (MASK)];                                                         \
            float *ar = acc + (size_t)(ent[q] >> (SHIFT)) * (BP);                                  \
            for (size_t b = 0; b < (BP); b++)                                                      \
                ar[b] += v * av[b];                                                                \
        }                                                                                          \
    }                                                                                              \
    return walked;

/* Batch B, computed BP = eie_cpu_batch_stride(B) wide with zero activations
 * in the padding lanes, BP a constant at each call site (the bodies are
 * always inline) so the lane loop is unrolled and vectorised whole. With B
 * known only at run time the loop stayed generic, and a batch of 15 cost as
 * much per row as batch 1 (Alex-7-sized layer, dense inputs, 2 PEs: 682 vs
 * 139 us a row at batch 16); micro-batches of uneven size lost most of what
 * batching buys. */
/* clang-format off */
INLINE uint64_t spmv_narrow_bp(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                               size_t n_active, const float *in, size_t is_j, size_t is_b,
                               size_t B, size_t BP, float *acc)
{
    SPMV_BATCH_BODY(uint16_t, 4, 15, BP)
}

INLINE uint64_t spmv_narrow5_bp(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                                size_t n_active, const float *in, size_t is_j, size_t is_b,
                                size_t B, size_t BP, float *acc)
{
    SPMV_BATCH_BODY(uint16_t, 5, 31, BP)
}

INLINE uint64_t spmv_wide_bp(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                             size_t n_active, const float *in, size_t is_j, size_t is_b, size_t B,
                             size_t BP, float *acc)
{
    SPMV_BATCH_BODY(uint32_t, 8, 255, BP)
}
/* clang-format on */

size_t eie_cpu_batch_stride(size_t B)
{
    return B <= 2 ? B : B <= 4 ? 4 : B <= 8 ? 8 : EIE_KERNEL_MAX_BATCH;
}

/* Per entry, kernels alone, Alex-7-sized, 1 PE, dense inputs, same process:
 * S 16 0.55 vs 0.88 ns (row vs column form), S 8 0.48 vs 0.64, S 2 0.65 vs
 * 0.63. At S 4 the two were level (0.55) until the row form took its
 * weights from the codebook register (rows_batch_book); in place, eie-bench
 * batch 4, one thread, every row walked against only the active columns'
 * entries, three alternations: Alex-6 (82% of columns active) 1432-2258 vs
 * 1769-2954 us, Alex-7 (83%) 641-940 vs 790-1344, Alex-8 (85%) 369-608 vs
 * 552-881, VGG-7 (85%) 273-486 vs 398-605; the two meet near two thirds
 * active (VGG-6's 56% stays faster in the column form: 1619-2621 vs
 * 2424-4884). So from S 4 on the row form pays with three quarters of the
 * columns active; at S 2 and 1 only where nearly all are (as at batch 1,
 * where skipping would save at most an eighth of the work).
 *
 * At batch 1 the two forms cost about the same an entry (AVX-512: a gather
 * of 16 activations against a permute and 16 scalar adds, 0.32-0.36 ns
 * each), so what decides is the fixed cost: the row form's per row (a
 * reduction, a masked tail) on a PE's rows / N rows, the column form's per
 * column on every column, on every PE. eie-bench, batch 1, dense inputs,
 * row vs column form, two runs: NT-We (600 x 4096) 84 vs 107 us on 1 PE,
 * 44 vs 77 on 2; NT-LSTM (2400 x 1201) 103 vs 93 on 1, 57 vs 57 on 2;
 * NT-Wd (8791 x 600) 214-218 vs 194-195 on 1, 114-115 vs 105 on 2. The
 * form must not depend on the PE count (a layer's bits do not), so the
 * column form takes the layers with twice as many rows as columns, which
 * it wins up to about rows / cols PEs. */
bool eie_cpu_rows_pay(size_t S, size_t n_active, size_t cols, size_t rows)
{
    if (S >= 4)
        return n_active * 4 >= cols * 3;
    return n_active >= cols - cols / 8 && (S > 1 || rows < 2 * cols);
}

/* kernels.h */
void eie_cpu_prefetch_heads(const void *ent, size_t esz, const uint32_t *ptr,
                            const uint32_t *active, size_t n_active)
{
    for (size_t k = 0; k < n_active; k++)
        __builtin_prefetch((const char *)ent + (size_t)ptr[active[k]] * esz, 0, 3);
}

/* kernels.h; the row blocks: layout.h */
uint64_t eie_cpu_spmv(const eie_cpu_kernel_t *k, const eie_cpu_fc_t *cf, const eie_pe_layer_t *L,
                      const uint32_t *active, size_t n_active, const float *in, size_t is_j,
                      size_t is_b, size_t B, float *acc)
{
    eie_spmv_fn narrow = cf->narrow_shift == 5 ? k->spmv_narrow5 : k->spmv_narrow;
    if (L->n_blocks == 0) {
        eie_cpu_prefetch_heads(L->ent, cf->wide ? sizeof(uint32_t) : sizeof(uint16_t), L->ptr,
                               active, n_active);
        return (cf->wide ? k->spmv_wide : narrow)(L, cf->codebook, active, n_active, in, is_j, is_b,
                                                  B, acc);
    }
    size_t S = eie_cpu_batch_stride(B);
    uint64_t walked = 0;
    for (uint32_t b = 0; b < L->n_blocks; b++) {
        const eie_pe_layer_t *K = &L->blocks[b];
        float *a = acc + (size_t)b * L->block_rows * S;
        /* The batch-1 walks' sink slots past a block's rows (EIE_ACC_SLACK)
         * are the next block's first rows: kept. */
        float keep[EIE_ACC_SLACK];
        int last = b + 1 == L->n_blocks;
        if (!last)
            memcpy(keep, a + (size_t)K->n_rows * S, sizeof keep);
        eie_cpu_prefetch_heads(K->ent, sizeof(uint16_t), K->ptr, active, n_active);
        walked += narrow(K, cf->codebook, active, n_active, in, is_j, is_b, B, a);
        if (!last)
            memcpy(a + (size_t)K->n_rows * S, keep, sizeof keep);
    }
    return walked;
}

/*
 * A batch of 2 sparse samples, one sample at a time (kernels.h): the
 * batch-1 column walk (a permute for 16 products, one scalar add an entry:
 * 0.30-0.32 ns an entry on Zen 5) costs about half what an entry of the
 * 2-lane column walk does (a pair of sums loaded, added and stored: 0.57
 * ns) and 0.72 of the batch row form's (0.43, over every entry). So a
 * batch of 2 whose samples each find few columns active walks fewer
 * entry-nanoseconds sample by sample, though the union of their columns is
 * larger than each: Alex-7, whose ReLU inputs are 35% nonzero, finds 58% of
 * its columns active in the union and 70% summed over the two. The
 * estimate compares the summed columns with what the batch would walk, in
 * units of the batch-1 entry, with 15% margin: SPLIT_ROWS (the row form,
 * every column) 1.39 / 1.15, SPLIT_COLS (the column walk) 1.84 / 1.15. At
 * batch 3 and 4 the same estimate (2.06 for the 4-lane column walk) chose
 * the split where it was up to 20% slower in place (Alex-8, VGG-7, VGG-8),
 * so those batches stay whole. Every form rounds each product and adds a
 * row's products in column order, so the bits are those of the batch; the
 * fused batch-1 row form is never taken here.
 */
#define SPLIT_ROWS 121u
#define SPLIT_COLS 160u

bool eie_cpu_split_pays(const eie_cpu_kernel_t *k, const eie_cpu_fc_t *cf, const eie_pe_layer_t *L,
                        const float *in, size_t is_j, size_t is_b, size_t B, size_t n_active,
                        bool rows, uint32_t *scratch)
{
    if (B != 2 || L->n_rows < 8 || n_active == 0)
        return false;
    uint64_t batch = rows ? (uint64_t)SPLIT_ROWS * cf->cols : (uint64_t)SPLIT_COLS * n_active;
    uint64_t sum = 0;
    for (size_t b = 0; b < B; b++)
        sum += 100u * k->active(in + b * is_b, cf->cols, is_j, 0, 1, scratch);
    return sum < batch;
}

uint64_t eie_cpu_run_split(const eie_cpu_kernel_t *k, const eie_cpu_fc_t *cf,
                           const eie_pe_layer_t *L, const float *in, size_t is_j, size_t is_b,
                           size_t B, uint32_t *active, float *acc)
{
    size_t S = eie_cpu_batch_stride(B), blk = (size_t)L->n_rows + EIE_ACC_SLACK;
    float *one = acc + (size_t)L->n_rows * S; /* the samples' batch-1 sums */
    uint64_t walked = 0;
    for (size_t b = 0; b < B; b++) {
        float *ab = one + b * blk;
        size_t n = k->active(in + b * is_b, cf->cols, is_j, 0, 1, active);
        memset(ab, 0, (size_t)L->n_rows * sizeof(float));
        walked += eie_cpu_spmv(k, cf, L, active, n, in + b * is_b, is_j, 0, 1, ab);
    }
    for (uint32_t r = 0; r < L->n_rows; r++)
        for (size_t b = 0; b < S; b++)
            acc[(size_t)r * S + b] = b < B ? one[b * blk + r] : 0.0f;
    return walked;
}

/* Columns or rows moved between batch-major and feature-major sixteen at a
 * time, so that each sample's sixteen values are one contiguous run. */
#define MOVE_BLOCK 16u
#define GATHER_AHEAD 4u

void eie_cpu_transpose_share(const eie_cpu_kernel_t *k, const float *x, size_t dim, size_t B,
                             size_t S, unsigned p0, unsigned p1, unsigned N, float *xt)
{
    /* sixteen columns of the B samples a step, through the variant's
       transpose: element by element, NT-We's 4096 x 16 took a fifth of its
       batch-16 run on two PEs */
    size_t j0 = dim * p0 / N, j1 = dim * p1 / N;
    const float *rows[MOVE_BLOCK];
    for (size_t c0 = j0; c0 < j1; c0 += MOVE_BLOCK) {
        size_t n = j1 - c0 < MOVE_BLOCK ? j1 - c0 : MOVE_BLOCK;
        for (size_t b = 0; b < B; b++)
            rows[b] = x + b * dim + c0;
        k->transpose16(rows, B, n, xt + c0 * S, S);
    }
}

/* The row after PE q's local row r in the interleave (row j is PE j mod N's
 * local row j / N). */
INLINE void next_row(unsigned *q, size_t *r, unsigned N)
{
    if (++*q == N) {
        *q = 0;
        ++*r;
    }
}

void eie_cpu_gather_share(const eie_cpu_kernel_t *k, float *const *acc, unsigned N,
                          size_t dim, size_t B, size_t S, unsigned p0, unsigned p1, float *x)
{
    size_t j0 = dim * p0 / N / MOVE_BLOCK * MOVE_BLOCK;
    size_t j1 = p1 == N ? dim : dim * p1 / N / MOVE_BLOCK * MOVE_BLOCK;
    unsigned q = (unsigned)(j0 % N);
    size_t r = j0 / N;
    /* The rows up to GATHER_AHEAD blocks on are prefetched (row pj is PE
     * pq's local row pr): the other PEs' rows are lines in their caches,
     * and the sixteen rows of a block waited on one such latency after
     * another (NT-Wd-sized, batch 16, 2 PEs, instrumented: 22-23 us a
     * share, 12-13 prefetched). */
    unsigned pq = q;
    size_t pr = r, pj = j0;
    /* row by row, a row's lanes went to sixteen lines: VGG-7 at batch 16 on
       2 PEs took 337 us, sixteen rows a sample at a time 262 */
    for (size_t c0 = j0; c0 < j1; c0 += MOVE_BLOCK) {
        for (; pj < j1 && pj < c0 + (GATHER_AHEAD + 1) * MOVE_BLOCK; pj++) {
            __builtin_prefetch(acc[pq] + pr * S, 0, 3);
            next_row(&pq, &pr, N);
        }
        size_t n = j1 - c0 < MOVE_BLOCK ? j1 - c0 : MOVE_BLOCK;
        const float *row[MOVE_BLOCK];
        for (size_t t = 0; t < n; t++) {
            row[t] = acc[q] + r * S;
            next_row(&q, &r, N);
        }
        k->transpose16(row, n, B, x + c0, dim);
    }
}

static void transpose16_scalar(const float *const *rows, size_t n, size_t B, float *out, size_t ob)
{
    for (size_t b = 0; b < B; b++) {
        float *o = out + b * ob;
        for (size_t t = 0; t < n; t++)
            o[t] = rows[t][b];
    }
}

/* clang-format off */
#define BATCH_SWITCH(FN, B1)                                                                       \
    switch (eie_cpu_batch_stride(B)) {                                                             \
    case 1: return B1(L, cb, active, n_active, in, is_j, acc);                                     \
    case 2: return FN(L, cb, active, n_active, in, is_j, is_b, B, 2, acc);                         \
    case 4: return FN(L, cb, active, n_active, in, is_j, is_b, B, 4, acc);                         \
    case 8: return FN(L, cb, active, n_active, in, is_j, is_b, B, 8, acc);                         \
    default: return FN(L, cb, active, n_active, in, is_j, is_b, B, 16, acc);                       \
    }

#define DEFINE_KERNELS(SUFFIX, ATTR, NARROW_B1, NARROW5_B1, WIDE_B1, NARROW_BP, NARROW5_BP,        \
                       WIDE_BP)                                                                    \
    ATTR static uint64_t spmv_narrow_##SUFFIX(                                                     \
        const eie_pe_layer_t *L, const float *cb, const uint32_t *active, size_t n_active,         \
        const float *in, size_t is_j, size_t is_b, size_t B, float *acc)                           \
    {                                                                                              \
        BATCH_SWITCH(NARROW_BP, NARROW_B1)                                                         \
    }                                                                                              \
    ATTR static uint64_t spmv_narrow5_##SUFFIX(                                                    \
        const eie_pe_layer_t *L, const float *cb, const uint32_t *active, size_t n_active,         \
        const float *in, size_t is_j, size_t is_b, size_t B, float *acc)                           \
    {                                                                                              \
        BATCH_SWITCH(NARROW5_BP, NARROW5_B1)                                                       \
    }                                                                                              \
    ATTR static uint64_t spmv_wide_##SUFFIX(                                                       \
        const eie_pe_layer_t *L, const float *cb, const uint32_t *active, size_t n_active,         \
        const float *in, size_t is_j, size_t is_b, size_t B, float *acc)                           \
    {                                                                                              \
        BATCH_SWITCH(WIDE_BP, WIDE_B1)                                                             \
    }
/* clang-format on */

DEFINE_KERNELS(scalar, , spmv_narrow_b1, spmv_narrow5_b1, spmv_wide_b1, spmv_narrow_bp,
               spmv_narrow5_bp, spmv_wide_bp)

/* The reference leading-non-zero detection, from column j on, appending to
 * active after n_active entries; branch-free, since activations are zero or
 * not at random (ReLU outputs). */
static inline size_t active_from(const float *in, size_t j, size_t n, size_t is_j, size_t is_b,
                                 size_t B, uint32_t *active, size_t n_active)
{
    for (; j < n; j++) {
        int nz = 0;
        for (size_t b = 0; b < B; b++)
            nz |= in[j * is_j + b * is_b] != 0.0f;
        active[n_active] = (uint32_t)j;
        n_active += (size_t)nz;
    }
    return n_active;
}

static size_t active_scalar(const float *in, size_t n, size_t is_j, size_t is_b, size_t B,
                            uint32_t *active)
{
    return active_from(in, 0, n, is_j, is_b, B, active, 0);
}

static int supported_always(void)
{
    return 1;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Each SIMD kernel starts on a 64-byte boundary, so that where its loops
 * fall in the fetch blocks depends on its own code alone: an unrelated
 * change elsewhere in the file moved the column walk's start from 0x50 to
 * 0xb0 past a line and made Alex-7 at batch 2 run 511-531 us instead of
 * 589-606 (the same instructions). */
#define AVX2_BMI                   __attribute__((target("avx2,fma,bmi"), aligned(64)))
#define FIELD_BEXTR(w, start, len) _bextr_u64((w), (start), (len))
#define MADD_FUSED(a, b, c)        __builtin_fmaf((a), (b), (c))

/* clang-format off */
AVX2_BMI INLINE uint64_t
spmv_wide_b1_bmi(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                 size_t n_active, const float *in, size_t is_j, float *acc)
{
    SPMV_WIDE_B1_BODY(FIELD_BEXTR)
}

/* clang-format on */

/* Batch B in the SIMD variants: a row's BP accumulators are one vector of
 * GCC's generic vector type (BP 16: one zmm under AVX-512, two ymm under
 * AVX2; BP 8 one ymm, 4 one xmm, 2 half of one), so every entry is one
 * packed multiply of the broadcast weight by the column's BP activations
 * and one packed add into its row, whatever the compiler's vectoriser
 * decides. The lane loop of the scalar body left that to the vectoriser,
 * which kept BP 2 scalar (vmulss, vaddss). At BP 2, a table of the
 * codebook times the column's two activations, built once per column,
 * saves the multiply and the broadcast (Alex-7-sized layer, kernel alone,
 * same process: 0.51-0.61 vs 0.87-1.18 ns an entry); at BP 4 to 16 the
 * table measured no faster (its 16 vector multiplies a column and its
 * lines' loads against one multiply an entry), so they multiply.
 *
 * The product is rounded before the add, not fused: that is what the scalar
 * reference and the batch-1 kernels compute (the batch-1 codebook holds
 * rounded products), so a row's result depends neither on the batch it
 * ran in nor on the variant (the daemon's micro-batching is tested to
 * change no bit of a request's output). The multiply is not the bound
 * anyway: keeping a PE's accumulators in L1 by walking its rows in blocks
 * (a cursor per column) measured no faster, and a layer whose
 * accumulators fit L1 costs as much per entry (Alex-7-sized, batch 16:
 * about 1 ns an entry either way). */
typedef float vf2 __attribute__((vector_size(8)));
typedef float vf4 __attribute__((vector_size(16)));
typedef float vf8 __attribute__((vector_size(32)));
typedef float vf16 __attribute__((vector_size(64)));
typedef int32_t vi2 __attribute__((vector_size(8)));
typedef int32_t vi4 __attribute__((vector_size(16)));
typedef int32_t vi8 __attribute__((vector_size(32)));
typedef int32_t vi16 __attribute__((vector_size(64)));
/* A column's BP activations as one vector, loaded into registers. Built
 * lane by lane on the stack and read back as a vector (a load the lanes'
 * stores cannot be forwarded to, the likely cost), batch 4 under AVX2
 * measured 0.88 against 0.60 ns an entry. */
/* clang-format off */
#define INIT2  {col[off[0]], col[off[1]]}
#define INIT4  {col[off[0]], col[off[1]], col[off[2]], col[off[3]]}
#define INIT8  {col[off[0]], col[off[1]], col[off[2]], col[off[3]],                                \
                col[off[4]], col[off[5]], col[off[6]], col[off[7]]}
#define INIT16 {col[off[0]],  col[off[1]],  col[off[2]],  col[off[3]],                             \
                col[off[4]],  col[off[5]],  col[off[6]],  col[off[7]],                             \
                col[off[8]],  col[off[9]],  col[off[10]], col[off[11]],                            \
                col[off[12]], col[off[13]], col[off[14]], col[off[15]]}
/* clang-format on */

/* One entry: its row's BP accumulators += the vector of products. */
#define ADD_ROW(V, BP, row, PRODUCT)                                                               \
    do {                                                                                           \
        float *ar_ = acc + (size_t)(row) * (BP);                                                   \
        V x_;                                                                                      \
        memcpy(&x_, ar_, sizeof x_);                                                               \
        x_ += (PRODUCT);                                                                           \
        memcpy(ar_, &x_, sizeof x_);                                                               \
    } while (0)

#define SPMV_BATCH_VEC_BODY(ETYPE, SHIFT, MASK, V, VI, BP, INIT)                                   \
    const ETYPE *ent = L->ent;                                                                     \
    const uint32_t *ptr = L->ptr;                                                                  \
    const int scaled = (BP) <= 2 && L->n_codes != 0 && L->n_codes <= 16;                           \
    V tab[16];                                                                                     \
    /* a column's activations: BP loads in bounds (lanes past B load lane                          \
       B - 1), masked to zero past B, built in registers */                                        \
    size_t off[BP];                                                                                \
    VI keep;                                                                                       \
    for (size_t b = 0; b < (BP); b++) {                                                            \
        off[b] = (b < B ? b : B - 1) * is_b;                                                       \
        keep[b] = b < B ? -1 : 0;                                                                  \
    }                                                                                              \
    uint64_t walked = 0;                                                                           \
    for (size_t k = 0; k < n_active; k++) {                                                        \
        uint32_t j = active[k];                                                                    \
        prefetch_column(ent, sizeof(ETYPE), ptr, active, k, n_active);                             \
        const float *col = in + (size_t)j * is_j;                                                  \
        V a = (V)((VI)(V)INIT & keep);                                                             \
        const ETYPE *e = ent + ptr[j], *end = ent + ptr[j + 1];                                    \
        walked += (uint64_t)(end - e);                                                             \
        if (scaled) {                                                                              \
            for (int q = 0; q < 16; q++)                                                           \
                tab[q] = cb[q] * a;                                                                \
            for (; e < end; e++) {                                                                 \
                uint32_t w = *e; /* 32-bit: no 16-bit shift and re-extension */                    \
                ADD_ROW(V, BP, w >> (SHIFT), tab[w & 15]);                                         \
            }                                                                                      \
        } else {                                                                                   \
            for (; e < end; e++) {                                                                 \
                uint32_t w = *e;                                                                   \
                ADD_ROW(V, BP, w >> (SHIFT), cb[w & (MASK)] * a);                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    return walked;

/* clang-format off */
#define DEFINE_BATCH_VEC(NAME, ETYPE, SHIFT, MASK)                                                 \
    INLINE uint64_t NAME##_v2(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,    \
                              size_t n_active, const float *in, size_t is_j, size_t is_b,          \
                              size_t B, float *acc)                                                \
    {                                                                                              \
        SPMV_BATCH_VEC_BODY(ETYPE, SHIFT, MASK, vf2, vi2, 2, INIT2)                                            \
    }                                                                                              \
    INLINE uint64_t NAME##_v4(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,    \
                              size_t n_active, const float *in, size_t is_j, size_t is_b,          \
                              size_t B, float *acc)                                                \
    {                                                                                              \
        SPMV_BATCH_VEC_BODY(ETYPE, SHIFT, MASK, vf4, vi4, 4, INIT4)                                            \
    }                                                                                              \
    INLINE uint64_t NAME##_v8(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,    \
                              size_t n_active, const float *in, size_t is_j, size_t is_b,          \
                              size_t B, float *acc)                                                \
    {                                                                                              \
        SPMV_BATCH_VEC_BODY(ETYPE, SHIFT, MASK, vf8, vi8, 8, INIT8)                                            \
    }                                                                                              \
    INLINE uint64_t NAME##_v16(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,   \
                               size_t n_active, const float *in, size_t is_j, size_t is_b,         \
                               size_t B, float *acc)                                               \
    {                                                                                              \
        SPMV_BATCH_VEC_BODY(ETYPE, SHIFT, MASK, vf16, vi16, 16, INIT16)                                          \
    }                                                                                              \
    INLINE uint64_t NAME(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,         \
                         size_t n_active, const float *in, size_t is_j, size_t is_b, size_t B,     \
                         size_t BP, float *acc)                                                    \
    {                                                                                              \
        switch (BP) {                                                                              \
        case 2: return NAME##_v2(L, cb, active, n_active, in, is_j, is_b, B, acc);                 \
        case 4: return NAME##_v4(L, cb, active, n_active, in, is_j, is_b, B, acc);                 \
        case 8: return NAME##_v8(L, cb, active, n_active, in, is_j, is_b, B, acc);                 \
        default: return NAME##_v16(L, cb, active, n_active, in, is_j, is_b, B, acc);               \
        }                                                                                          \
    }
/* clang-format on */

DEFINE_BATCH_VEC(spmv_narrow_vec, uint16_t, 4, 15)
DEFINE_BATCH_VEC(spmv_narrow5_vec, uint16_t, 5, 31)
DEFINE_BATCH_VEC(spmv_wide_vec, uint32_t, 8, 255)

/* The row forms in the SIMD variants, at batch B (kernels.h,
 * eie_rows_batch_fn) and for a direct convolution (eie_rows_conv_fn): a
 * row's lanes' sums are NV vectors of V, the variant's native vector (vf8
 * for AVX2, vf16 for AVX-512: GCC moves a 64-byte generic vector's halves
 * through the stack under AVX2, and built a vf16 broadcast from sixteen
 * scalar stores; the batch kernels ran 5x slower, the conv form 17-20x).
 * Each entry is NV vector loads of its column's activations, a multiply
 * by the broadcast weight and an add: no accumulator traffic. A row's adds
 * form one dependent chain (its order is fixed, see kernels.h), so with
 * LOCK4 four rows are walked in lock step, four independent chains, until
 * the shortest ends; the rest of each row follows alone (AVX-512: its 32
 * registers hold sixteen sums at 64 lanes; AVX2 walks a conv row alone,
 * its eight ymm sums at 64 lanes being chains enough). With AVX-512, 64
 * lanes read six times (entry, weight, four vectors) for four products,
 * 32 lanes four times for two: loads bound this loop (two a cycle on
 * Zen 5). At batch 16 on one PE's rows the loop runs at 0.44-0.46 ns an
 * entry (NT-We- and NT-LSTM-sized, kernel alone), 0.38 with the input in
 * L1 instead of L2; the rows walked alone after a lock step are not what
 * bounds it: a ring of four slots, each taking the next row as its own
 * ends (only a span's last three rows alone), measured 0.46 / 0.44 / 0.48
 * against 0.45 / 0.44 / 0.44 (NT-We, NT-LSTM, NT-Wd-sized). Nor is the
 * weight's permute: a row's sixteen weights permuted at once into a stack
 * buffer, each then read by the multiply's embedded broadcast (a uop less
 * an entry), ran 0.52 against 0.46 ns an entry (NT-LSTM-sized, same
 * harness for both).
 *
 * The lock step is unrolled four times: its pointer steps and branch were
 * 1.5 of the 7.5 instructions an entry (the float CSR issues 5), which a
 * core shared with another guest's thread feels. Pinned with taskset,
 * builds alternating, one thread, per round against the float CSR: batch
 * 16 on a shared vCPU VGG-7 1.04-1.05 -> 0.95, NT-We 1.06-1.07 ->
 * 0.99-1.03, NT-LSTM 1.05-1.06 -> 0.94-0.99; on a quiet one NT-LSTM
 * 0.97-0.99 -> 0.90, NT-Wd 0.91-0.92 -> 0.85-0.87; batch 4 NT-LSTM 0.99 ->
 * 0.73-0.88, VGG-7 0.96-0.98 -> 0.84-0.86. Unrolled twice measured level
 * to 2% slower than four times.
 *
 * ROWS_SPAN_BODY walks one span of every row: row r's entries
 * ent[beg[r]] .. ent[end[r] - 1], its sums starting at +0, or with add at
 * acc's (the earlier spans'), so a row walked in spans gets the bits of
 * the row walked whole. STEP(V, NV, s, w) adds entry w's products to s. */
/* s[i] += v * the NV vectors at x: one entry's products, the weight rounded
 * into each product before the add; v a float, or (NV 1) a V of it. The
 * activations are read through a may_alias vector type: GCC loaded a
 * memcpy of 8 bytes (2 lanes) into a general register and moved it over
 * (vmovq), which made batch 2 slower than batch 4 (NT-We 116-119 us
 * against 100-105). */
#define ROW_MADD(V, NV, s, v, x)                                                                   \
    do {                                                                                           \
        const __typeof__(v) mv_ = (v); /* names apart from the callers' */                        \
        const float *mx_ = (x);                                                                    \
        typedef V vload_t_ __attribute__((aligned(4), may_alias));                                 \
        for (int i_ = 0; i_ < (NV); i_++) {                                                        \
            V xi_ = *(const vload_t_ *)(mx_ + i_ * (sizeof(V) / sizeof(float)));                   \
            (s)[i_] += mv_ * xi_;                                                                  \
        }                                                                                          \
    } while (0)
/* Entry w's products (w_ = col << SHIFT | code) with weight WEIGHT, an
 * expression of w_ or of w itself. The activations' byte offset, col * S *
 * 4, is col << SHIFT scaled by a power of two, which an address takes as
 * its index scale (1, 2, 4 or 8) where it fits: 5-bit entries at 16 lanes
 * are [xin + c * 2], where a float index took a shift more an entry. */
#define ROWS_STEP_W(V, NV, s, w, SHIFT, WEIGHT)                                                    \
    do {                                                                                           \
        uint64_t w_ = (w);                                                                         \
        const size_t W_ = sizeof(V) / sizeof(float);                                               \
        const int lg_ = __builtin_ctz((unsigned)((NV)*W_)) + 2; /* S * 4 = 1 << lg_ bytes */       \
        uint64_t c_ = w_ & ~(uint64_t)((1u << (SHIFT)) - 1);    /* col << SHIFT */                 \
        __asm__("" : "+r"(c_)); /* kept as is: GCC would shift it first and scale by 1 */          \
        const float *x_ =                                                                          \
            (const float *)((const char *)xin +                                                    \
                            (lg_ >= (SHIFT) ? c_ << (lg_ - (SHIFT)) : c_ >> ((SHIFT)-lg_)));       \
        ROW_MADD(V, NV, s, WEIGHT, x_);                                                            \
    } while (0)
#define ROWS_STEP(V, NV, s, w, SHIFT)                                                              \
    ROWS_STEP_W(V, NV, s, w, SHIFT, cb[_bextr_u64(w_, 0, (SHIFT))])
#define ROWS_STEP4(V, NV, s, w) ROWS_STEP(V, NV, s, w, 4)
#define ROWS_STEP5(V, NV, s, w) ROWS_STEP(V, NV, s, w, 5)
#define ROWS_STEP8(V, NV, s, w) ROWS_STEP(V, NV, s, w, 8)
/* The conv form's entry: off << 8 | code, its activations at in + off. */
#define CONV_ROW_STEP(V, NV, s, w)                                                                 \
    do {                                                                                           \
        uint32_t w_ = (w);                                                                         \
        ROW_MADD(V, NV, s, cb[_bextr_u32(w_, 0, 8)], in + (w_ >> 8));                              \
    } while (0)
/* Row r's sums: +0, or with add those in acc; and back. */
#define ROW_SUMS_LOAD(V, NV, s, r)                                                                 \
    for (int i_ = 0; i_ < (NV); i_++) {                                                            \
        (s)[i_] = (V){0};                                                                          \
        if (add)                                                                                   \
            memcpy(&(s)[i_], acc + ((size_t)(r) * (NV) + i_) * (sizeof(V) / sizeof(float)),        \
                   sizeof(V));                                                                     \
    }
#define ROW_SUMS_STORE(V, NV, s, r)                                                                \
    for (int i_ = 0; i_ < (NV); i_++)                                                              \
        memcpy(acc + ((size_t)(r) * (NV) + i_) * (sizeof(V) / sizeof(float)), &(s)[i_], sizeof(V))

/* The lock step's first entries two at a time, a row's two 32-bit
 * entries one load (PAIRS: LOCK_PAIRS, the AVX-512 conv form), or none
 * (NO_PAIRS); from entry q0 on, one at a time. The same entries in the
 * same order: the same bits. */
#define NO_PAIRS(STEP, V, NV) (void)0
#define LOCK_PAIRS(STEP, V, NV)                                                                    \
    _Pragma("GCC unroll 2") for (; q0 + 2 <= m; q0 += 2)                                           \
    {                                                                                              \
        uint64_t v0_, v1_, v2_, v3_;                                                               \
        memcpy(&v0_, e0 + q0, 8);                                                                  \
        memcpy(&v1_, e1 + q0, 8);                                                                  \
        memcpy(&v2_, e2 + q0, 8);                                                                  \
        memcpy(&v3_, e3 + q0, 8);                                                                  \
        STEP(V, NV, s0, (uint32_t)v0_);                                                            \
        STEP(V, NV, s1, (uint32_t)v1_);                                                            \
        STEP(V, NV, s2, (uint32_t)v2_);                                                            \
        STEP(V, NV, s3, (uint32_t)v3_);                                                            \
        STEP(V, NV, s0, (uint32_t)(v0_ >> 32));                                                    \
        STEP(V, NV, s1, (uint32_t)(v1_ >> 32));                                                    \
        STEP(V, NV, s2, (uint32_t)(v2_ >> 32));                                                    \
        STEP(V, NV, s3, (uint32_t)(v3_ >> 32));                                                    \
    }
#define ROWS_SPAN_BODY(ETYPE, STEP, V, NV, LOCK4)                                                  \
    ROWS_SPAN_BODY_P(ETYPE, STEP, V, NV, LOCK4, NO_PAIRS)
#define ROWS_SPAN_BODY_P(ETYPE, STEP, V, NV, LOCK4, PAIRS)                                         \
    do {                                                                                           \
        uint32_t r = 0;                                                                            \
        for (; (LOCK4) && r + 4 <= nr; r += 4) {                                                   \
            const ETYPE *e0 = ent + beg[r], *e1 = ent + beg[r + 1];                                \
            const ETYPE *e2 = ent + beg[r + 2], *e3 = ent + beg[r + 3];                            \
            size_t n0 = end[r] - beg[r], n1 = end[r + 1] - beg[r + 1];                             \
            size_t n2 = end[r + 2] - beg[r + 2], n3 = end[r + 3] - beg[r + 3];                     \
            size_t m = n0 < n1 ? n0 : n1;                                                          \
            m = m < n2 ? m : n2;                                                                   \
            m = m < n3 ? m : n3;                                                                   \
            V s0[NV], s1[NV], s2[NV], s3[NV];                                                      \
            ROW_SUMS_LOAD(V, NV, s0, r);                                                           \
            ROW_SUMS_LOAD(V, NV, s1, r + 1);                                                       \
            ROW_SUMS_LOAD(V, NV, s2, r + 2);                                                       \
            ROW_SUMS_LOAD(V, NV, s3, r + 3);                                                       \
            size_t q0 = 0;                                                                         \
            PAIRS(STEP, V, NV);                                                                    \
            _Pragma("GCC unroll 4") for (size_t q = q0; q < m; q++) {                              \
                STEP(V, NV, s0, e0[q]);                                                            \
                STEP(V, NV, s1, e1[q]);                                                            \
                STEP(V, NV, s2, e2[q]);                                                            \
                STEP(V, NV, s3, e3[q]);                                                            \
            }                                                                                      \
            for (size_t q = m; q < n0; q++)                                                        \
                STEP(V, NV, s0, e0[q]);                                                            \
            for (size_t q = m; q < n1; q++)                                                        \
                STEP(V, NV, s1, e1[q]);                                                            \
            for (size_t q = m; q < n2; q++)                                                        \
                STEP(V, NV, s2, e2[q]);                                                            \
            for (size_t q = m; q < n3; q++)                                                        \
                STEP(V, NV, s3, e3[q]);                                                            \
            ROW_SUMS_STORE(V, NV, s0, r);                                                          \
            ROW_SUMS_STORE(V, NV, s1, r + 1);                                                      \
            ROW_SUMS_STORE(V, NV, s2, r + 2);                                                      \
            ROW_SUMS_STORE(V, NV, s3, r + 3);                                                      \
            walked += n0 + n1 + n2 + n3;                                                           \
        }                                                                                          \
        for (; r < nr; r++) {                                                                      \
            V s0[NV];                                                                              \
            ROW_SUMS_LOAD(V, NV, s0, r);                                                           \
            for (uint32_t q = beg[r]; q < end[r]; q++)                                             \
                STEP(V, NV, s0, ent[q]);                                                           \
            ROW_SUMS_STORE(V, NV, s0, r);                                                          \
            walked += end[r] - beg[r];                                                             \
        }                                                                                          \
    } while (0)

/* The batch's row form: the whole rows (rptr), or their spans (rspan,
 * layout.h) one after the other, a span's input (xin, which STEP reads)
 * from its base column on. */
#define ROWS_BATCH_VEC_BODY(ETYPE, ENT, STEP, V, NV)                                               \
    const ETYPE *ent = (ENT);                                                                      \
    const uint32_t nr = L->n_rows;                                                                 \
    const uint32_t n_spans = L->rspan != NULL ? L->n_rspans : 1;                                   \
    uint64_t walked = 0;                                                                           \
    for (uint32_t t = 0; t < n_spans; t++) {                                                       \
        const uint32_t *beg = L->rspan != NULL ? L->rspan + (size_t)t * nr : L->rptr;              \
        const uint32_t *end = L->rspan != NULL ? beg + nr : L->rptr + 1;                           \
        const float *xin = in + eie_pe_span_base(L, t) * (NV) * (sizeof(V) / sizeof(float));       \
        int add = t > 0;                                                                           \
        ROWS_SPAN_BODY(ETYPE, STEP, V, NV, 1);                                                     \
    }                                                                                              \
    return walked;

/* clang-format off */
#define DEFINE_ROWS_BATCH_VEC(V, NV)                                                               \
    AVX2_BMI INLINE uint64_t rows_batch_##V##x##NV(const eie_pe_layer_t *L, const float *cb,       \
                                                   const float *in, float *acc)                    \
    {                                                                                              \
        if (L->rentw != NULL) {                                                                    \
            ROWS_BATCH_VEC_BODY(uint32_t, L->rentw, ROWS_STEP8, V, NV)                             \
        }                                                                                          \
        if (eie_pe_row_shift(L) == 5) {                                                            \
            ROWS_BATCH_VEC_BODY(uint16_t, L->rent, ROWS_STEP5, V, NV)                              \
        }                                                                                          \
        ROWS_BATCH_VEC_BODY(uint16_t, L->rent, ROWS_STEP4, V, NV)                                  \
    }
/* clang-format on */

#define ROWS_CONV_BODY(STEP, V, NV, LOCK4, PAIRS)                                                  \
    const uint32_t *ent = R->ent, *beg = R->beg, *end = R->end;                                    \
    const uint32_t nr = R->n_rows;                                                                 \
    uint64_t walked = 0;                                                                           \
    ROWS_SPAN_BODY_P(uint32_t, STEP, V, NV, LOCK4, PAIRS);                                         \
    return walked;

DEFINE_ROWS_BATCH_VEC(vf2, 1)
DEFINE_ROWS_BATCH_VEC(vf4, 1)
DEFINE_ROWS_BATCH_VEC(vf8, 1)
DEFINE_ROWS_BATCH_VEC(vf8, 2)
DEFINE_ROWS_BATCH_VEC(vf16, 1)

#define DEFINE_ROWS_BATCH(SUFFIX, ATTR, LOCK4, PAIRS, V, B2, B4, B8, B16)                          \
    ATTR static uint64_t rows_batch_##SUFFIX(const eie_pe_layer_t *L, const float *cb,             \
                                             const float *in, size_t B, float *acc)                \
    {                                                                                              \
        switch (eie_cpu_batch_stride(B)) {                                                         \
        case 2: return B2(L, cb, in, acc);                                                         \
        case 4: return B4(L, cb, in, acc);                                                         \
        case 8: return B8(L, cb, in, acc);                                                         \
        default: return B16(L, cb, in, acc);                                                       \
        }                                                                                          \
    }                                                                                              \
    /* V: the variant's native vector */                                                       \
    ATTR static uint64_t rows_conv16_##SUFFIX(const eie_conv_rows_t *R, const float *cb,           \
                                              const float *in, float *acc, int add)                \
    {                                                                                              \
        ROWS_CONV_BODY(CONV_ROW_STEP, V, (int)(16 / (sizeof(V) / sizeof(float))), LOCK4, PAIRS)    \
    }                                                                                              \
    ATTR static uint64_t rows_conv32_##SUFFIX(const eie_conv_rows_t *R, const float *cb,           \
                                              const float *in, float *acc, int add)                \
    {                                                                                              \
        ROWS_CONV_BODY(CONV_ROW_STEP, V, (int)(32 / (sizeof(V) / sizeof(float))), LOCK4, PAIRS)    \
    }                                                                                              \
    ATTR static uint64_t rows_conv64_##SUFFIX(const eie_conv_rows_t *R, const float *cb,           \
                                              const float *in, float *acc, int add)                \
    {                                                                                              \
        ROWS_CONV_BODY(CONV_ROW_STEP, V, (int)(64 / (sizeof(V) / sizeof(float))), LOCK4, PAIRS)    \
    }                                                                                              \
    ATTR static uint64_t rows_conv_##SUFFIX(const eie_conv_rows_t *R, const float *cb,             \
                                            const float *in, float *acc, int add, unsigned lanes)  \
    {                                                                                              \
        return lanes == 64   ? rows_conv64_##SUFFIX(R, cb, in, acc, add)                           \
               : lanes == 32 ? rows_conv32_##SUFFIX(R, cb, in, acc, add)                           \
                             : rows_conv16_##SUFFIX(R, cb, in, acc, add);                          \
    }
/* clang-format on */

/* For each 8-bit mask, the positions of its set bits packed to the front,
 * one per byte: the shuffle that appends a block's active columns at once. */
static uint64_t compact_lut[256];
static pthread_once_t compact_once = PTHREAD_ONCE_INIT;

static void compact_lut_build(void)
{
    for (unsigned m = 0; m < 256; m++) {
        uint64_t v = 0;
        unsigned n = 0;
        for (unsigned l = 0; l < 8; l++)
            if (m >> l & 1u)
                v |= (uint64_t)l << (8 * n++);
        compact_lut[m] = v;
    }
}

/* Eight columns per step when they are contiguous (is_j = 1: batch 1, or
 * the batch-major input of the first layer): one compare per input row,
 * a movemask, then the set lanes appended with one permute and one store
 * (a lane at a time, the appends cost ~2 cycles a column: 20 us of a
 * VGG-6 run's 25088 columns, on every PE). Where B values of a column are
 * contiguous instead (feature-major hidden layers), B/8 compares decide one
 * column. NaN != 0 under the unordered compare, as in the scalar test. */
__attribute__((target("avx2,fma,popcnt"))) static size_t
active_avx2(const float *in, size_t n, size_t is_j, size_t is_b, size_t B, uint32_t *active)
{
    const __m256 zero = _mm256_setzero_ps();
    size_t n_active = 0, j = 0;
    if (is_j == 1) {
        pthread_once(&compact_once, compact_lut_build);
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (; j + 8 <= n; j += 8) {
            __m256 nz = zero;
            for (size_t b = 0; b < B; b++)
                nz = _mm256_or_ps(
                    nz, _mm256_cmp_ps(_mm256_loadu_ps(in + j + b * is_b), zero, _CMP_NEQ_UQ));
            unsigned mask = (unsigned)_mm256_movemask_ps(nz);
            __m256i cols = _mm256_add_epi32(lane, _mm256_set1_epi32((int)j));
            if (mask == 0xff) { /* dense activations: all eight as they are */
                _mm256_storeu_si256((__m256i *)(active + n_active), cols);
                n_active += 8;
                continue;
            }
            __m256i pick =
                _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)&compact_lut[mask]));
            _mm256_storeu_si256((__m256i *)(active + n_active),
                                _mm256_permutevar8x32_epi32(cols, pick));
            n_active += (size_t)__builtin_popcount(mask);
        }
    } else if (is_b == 1 && B % 8 == 0) {
        for (; j < n; j++) {
            __m256 nz = zero;
            for (size_t b = 0; b < B; b += 8)
                nz = _mm256_or_ps(
                    nz, _mm256_cmp_ps(_mm256_loadu_ps(in + j * is_j + b), zero, _CMP_NEQ_UQ));
            active[n_active] = (uint32_t)j;
            n_active += _mm256_movemask_ps(nz) != 0;
        }
    }
    /* the tail, or a layout without a vector form */
    return active_from(in, j, n, is_j, is_b, B, active, n_active);
}

static int supported_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi") && __builtin_cpu_supports("popcnt");
}

/* Batch 1 with codes of at most 4 bits, in the SIMD variants: the
 * column's 16 products in registers, the codebook scaled by a_j (the
 * "pre-scaled codebook in one 512-bit register"), and a permute picks the
 * products of NL entries by their codes (vpermps reads only an index's low
 * bits: AVX-512 one permute of 16 lanes; AVX2 two of 8, the halves of the
 * book, and a blend on the code's bit 3); then each entry is one scalar
 * add into its row, its product taken from a lane (p[] stays in
 * registers: GCC extracts the lanes with shuffles) and its row by bextr
 * from a 64-bit word of entries (one load and one op an entry, against a
 * 16-bit load and two; 0.30 against 0.33 ns an entry). Against the bextr
 * body's table load per entry (code and row by bextr, the product loaded
 * from s[code]) this saves a load and two ALU ops an entry. Narrow entries, kernel alone, Alex-7-sized slice, same
 * process, ns an entry: AVX-512 0.32, AVX2 0.34, the bextr body 0.45;
 * with 2 PEs' short columns (VGG-6-sized) 0.36 against 0.47. A column's
 * last 0..NL-1 entries take one step more whose lanes past the column go
 * to NL sink slots past the PE's rows, branch-free. Same products, same
 * order of adds a row: the same bits as the scalar reference.
 * SETUP declares what every column uses; SCALE(a) the column's products;
 * STEP(e, p) stores the products of NL entries at e; TAIL(e, t, p, r)
 * those of the t < NL entries at e and their rows, sinks past t. An entry
 * is row << SHIFT | code. */
#define PERMUTE_B1_BODY(ETYPE, SHIFT, NL, SETUP, SCALE, STEP, TAIL)                                \
    enum { EPW_ = 8 / sizeof(ETYPE), EBITS_ = 8 * sizeof(ETYPE) }; /* entries a word, bits */      \
    const ETYPE *ent = L->ent;                                                                     \
    const uint32_t *ptr = L->ptr;                                                                  \
    SETUP;                                                                                         \
    uint64_t walked = 0;                                                                           \
    for (size_t k = 0; k < n_active; k++) {                                                        \
        uint32_t j = active[k];                                                                    \
        SCALE(in[(size_t)j * is_j]);                                                               \
        const char *pf = prefetch_stream_start(ent, sizeof *ent, ptr, active, k, n_active);        \
        const ETYPE *e = ent + ptr[j], *end = ent + ptr[j + 1];                                    \
        walked += (uint64_t)(end - e);                                                             \
        float p[NL];                                                                               \
        uint32_t r[NL];                                                                            \
        for (; end - e >= (NL); e += (NL)) {                                                       \
            __builtin_prefetch(pf, 0, 3); /* at the rate the column is read */                 \
            pf += (NL) * sizeof *e;                                                                \
            STEP(e, p);                                                                            \
            for (int q = 0; q < (NL); q += EPW_) {                                                 \
                uint64_t w_;                                                                       \
                memcpy(&w_, e + q, sizeof w_);                                                     \
                for (int i = 0; i < EPW_; i++)                                                     \
                    acc[_bextr_u64(w_, (SHIFT) + i * EBITS_, EBITS_ - (SHIFT))] += p[q + i];       \
            }                                                                                      \
        }                                                                                          \
        TAIL(e, (size_t)(end - e), p, r);                                                          \
        for (int i = 0; i < (NL); i++)                                                             \
            acc[r[i]] += p[i];                                                                     \
    }                                                                                              \
    return walked;

/* AVX2: 8 entries a step, read whole in the tail too (the layout keeps
 * EIE_ENTRY_SLACK entries readable past the last column). */
/* The tail's sink slots: lane i past the column goes to row n_rows + i. */
#define AVX2_SINK                                                                                  \
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                \
    const __m256i sink = _mm256_add_epi32(lane, _mm256_set1_epi32((int)L->n_rows))
#define AVX2_SETUP                                                                                 \
    const __m256 book_lo = _mm256_loadu_ps(cb), book_hi = _mm256_loadu_ps(cb + 8);                 \
    AVX2_SINK;                                                                                     \
    __m256 s_lo, s_hi
#define AVX2_SCALE(a)                                                                              \
    do {                                                                                           \
        __m256 a_ = _mm256_set1_ps(a);                                                             \
        s_lo = _mm256_mul_ps(book_lo, a_);                                                         \
        s_hi = _mm256_mul_ps(book_hi, a_);                                                         \
    } while (0)
/* Lanes of a 16-entry table held as two ymm (lo, hi), picked by the low 4
 * bits of w's lanes: bit 3 chooses the half. */
#define AVX2_BOOK(lo, hi, w)                                                                       \
    _mm256_blendv_ps(_mm256_permutevar8x32_ps((lo), (w)), _mm256_permutevar8x32_ps((hi), (w)),     \
                     _mm256_castsi256_ps(_mm256_slli_epi32((w), 28)))
#define AVX2_PRODUCTS(w)       AVX2_BOOK(s_lo, s_hi, w)
#define AVX2_LOAD8_NARROW(e) _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(e)))
#define AVX2_LOAD8_WIDE(e)   _mm256_loadu_si256((const __m256i *)(e))
#define AVX2_STEP(LOAD8, PRODUCTS, e, p) _mm256_storeu_ps((p), PRODUCTS(LOAD8(e)))
#define AVX2_TAIL(LOAD8, SHIFT, PRODUCTS, e, t, p, r)                                              \
    do {                                                                                           \
        __m256i w_ = LOAD8(e);                                                                     \
        __m256i in_ = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(t)), lane);                       \
        _mm256_storeu_si256((__m256i *)(r),                                                        \
                            _mm256_blendv_epi8(sink, _mm256_srli_epi32(w_, (SHIFT)), in_));        \
        _mm256_storeu_ps((p), PRODUCTS(w_));                                                       \
    } while (0)
#define AVX2_STEP_NARROW(e, p)       AVX2_STEP(AVX2_LOAD8_NARROW, AVX2_PRODUCTS, e, p)
#define AVX2_STEP_WIDE(e, p)         AVX2_STEP(AVX2_LOAD8_WIDE, AVX2_PRODUCTS, e, p)
#define AVX2_TAIL_NARROW(e, t, p, r) AVX2_TAIL(AVX2_LOAD8_NARROW, 4, AVX2_PRODUCTS, e, t, p, r)
#define AVX2_TAIL_WIDE(e, t, p, r)   AVX2_TAIL(AVX2_LOAD8_WIDE, 8, AVX2_PRODUCTS, e, t, p, r)
/* 5-bit codes: the 32 products as four ymm, two 16-entry books of two
 * halves each, and bit 4 of the code chooses the book. */
#define AVX2_SETUP5                                                                                \
    const __m256 book0 = _mm256_loadu_ps(cb), book1 = _mm256_loadu_ps(cb + 8);                     \
    const __m256 book2 = _mm256_loadu_ps(cb + 16), book3 = _mm256_loadu_ps(cb + 24);               \
    AVX2_SINK;                                                                                     \
    __m256 s0, s1, s2, s3
#define AVX2_SCALE5(a)                                                                             \
    do {                                                                                           \
        __m256 a_ = _mm256_set1_ps(a);                                                             \
        s0 = _mm256_mul_ps(book0, a_);                                                             \
        s1 = _mm256_mul_ps(book1, a_);                                                             \
        s2 = _mm256_mul_ps(book2, a_);                                                             \
        s3 = _mm256_mul_ps(book3, a_);                                                             \
    } while (0)
#define AVX2_BOOK5(b0, b1, b2, b3, w)                                                              \
    _mm256_blendv_ps(AVX2_BOOK(b0, b1, w), AVX2_BOOK(b2, b3, w),                                   \
                     _mm256_castsi256_ps(_mm256_slli_epi32((w), 27)))
#define AVX2_PRODUCTS5(w)             AVX2_BOOK5(s0, s1, s2, s3, w)
#define AVX2_STEP_NARROW5(e, p)       AVX2_STEP(AVX2_LOAD8_NARROW, AVX2_PRODUCTS5, e, p)
#define AVX2_TAIL_NARROW5(e, t, p, r) AVX2_TAIL(AVX2_LOAD8_NARROW, 5, AVX2_PRODUCTS5, e, t, p, r)

/* The AVX2 row form at batch 1, 16 entries a step: eight take their weights
 * from the codebook held in two registers (AVX2_BOOK) and their activations
 * by one 8-lane gather, one FMA into eight partial sums; the other eight
 * take scalar loads into eight more sums (the scalar body's four sums bound
 * it by the FMA's latency). A row's last 0-15 entries take two masked
 * gathers, no branch (masked-off lanes are not loaded; their +-0 products
 * leave a sum that started at +0 unchanged). eie-bench on Zen 5 with the
 * baselines built -march=x86-64-v3 (-Dbench_march), per round cpu / float
 * CSR, one thread, three alternations: NT-We 1.02-1.20 with the scalar body,
 * 0.90-1.00 with this; NT-LSTM 1.13-1.25 against 0.91-1.03 (eight sums
 * without the gather: NT-We 0.99-1.09). The sums are added at the row's end,
 * so the order differs from the other variants' row forms (the same on every
 * PE count). */
#define ROWS_B1_AVX2_BODY(SH, PICK, SPANNED)                                                       \
    ROWS_B1_SPANS(SPANNED);                                                                        \
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                \
    for (uint32_t r = 0; r < nr; r++) {                                                            \
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;                                          \
        float s4 = 0.0f, s5 = 0.0f, s6 = 0.0f, s7 = 0.0f;                                          \
        __m256 vs = _mm256_setzero_ps();                                                           \
        for (uint32_t t = 0; t < n_spans; t++) {                                                   \
            ROWS_B1_SPAN(r, t);                                                                    \
            for (; end - e >= 16; e += 16) {                                                       \
                __m256i w8 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)e));           \
                __m256 x = _mm256_i32gather_ps(xin, _mm256_srli_epi32(w8, (SH)), 4);               \
                vs = _mm256_fmadd_ps(PICK(w8), x, vs);                                             \
                uint64_t w, v;                                                                     \
                memcpy(&w, e + 8, 8);                                                              \
                memcpy(&v, e + 12, 8);                                                             \
                ROWS_B1_STEP4_CB(FIELD_BEXTR, MADD_FUSED, SH, w, s0, s1, s2, s3);                  \
                ROWS_B1_STEP4_CB(FIELD_BEXTR, MADD_FUSED, SH, v, s4, s5, s6, s7);                  \
            }                                                                                      \
            int n = (int)(end - e);                                                                \
            for (int h = 0; h < 16; h += 8) {                                                      \
                /* at most 7 entries read past the span (EIE_ENTRY_SLACK): a                       \
                   second eight with no entry in it reread the first, all masked */                \
                const uint16_t *eh = n > h ? e + h : e;                                            \
                __m256i w8 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)eh));          \
                __m256 m =                                                                         \
                    _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - h), lane));       \
                __m256 x = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), xin,                      \
                                                    _mm256_srli_epi32(w8, (SH)), m, 4);            \
                vs = _mm256_fmadd_ps(PICK(w8), x, vs);                                             \
            }                                                                                      \
        }                                                                                          \
        __m128 q = _mm_add_ps(_mm256_castps256_ps128(vs), _mm256_extractf128_ps(vs, 1));           \
        q = _mm_add_ps(q, _mm_movehl_ps(q, q));                                                    \
        q = _mm_add_ss(q, _mm_movehdup_ps(q));                                                     \
        acc[r] = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)) + _mm_cvtss_f32(q);             \
    }                                                                                              \
    return L->rptr[nr];

/* A step's eight weights: from the 16-entry codebook in two registers, or
 * for 5-bit codes (col << 5 | code) the 32-entry one in four. */
#define ROWS_B1_PICK4_AVX2(w8) AVX2_BOOK(book0, book1, w8)
#define ROWS_B1_PICK5_AVX2(w8) AVX2_BOOK5(book0, book1, book2, book3, w8)
AVX2_BMI static uint64_t rows_b1_avx2(const eie_pe_layer_t *L, const float *cb, const float *in,
                                      float *acc)
{
    const __m256 book0 = _mm256_loadu_ps(cb), book1 = _mm256_loadu_ps(cb + 8);
    const __m256 book2 = _mm256_loadu_ps(cb + 16), book3 = _mm256_loadu_ps(cb + 24);
    ROWS_B1_DISPATCH(ROWS_B1_AVX2_BODY, ROWS_B1_PICK5_AVX2, ROWS_B1_PICK4_AVX2)
}

AVX2_BMI __attribute__((noinline)) static uint64_t
spmv_narrow_b1_avx2(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                    size_t n_active, const float *in, size_t is_j, float *acc)
{
    PERMUTE_B1_BODY(uint16_t, 4, 8, AVX2_SETUP, AVX2_SCALE, AVX2_STEP_NARROW, AVX2_TAIL_NARROW)
}

/* Wide entries (more than 4096 local rows) whose codes fit 4 bits take
 * the permute as narrow ones do; wider codes the bextr body. */
AVX2_BMI __attribute__((noinline)) static uint64_t
spmv_wide_b1_avx2(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                  size_t n_active, const float *in, size_t is_j, float *acc)
{
    if (L->n_codes == 0 || L->n_codes > 16)
        return spmv_wide_b1_bmi(L, cb, active, n_active, in, is_j, acc);
    PERMUTE_B1_BODY(uint32_t, 8, 8, AVX2_SETUP, AVX2_SCALE, AVX2_STEP_WIDE, AVX2_TAIL_WIDE)
}

/* 5-bit codes: four permutes and three blends for 8 entries' products.
 * The bextr body over a table of the 32 products instead ran 5-12% slower
 * than the wide walk it replaced on VGG-7 and NT-Wd (one thread). */
/* clang-format off */
AVX2_BMI __attribute__((noinline)) static uint64_t
spmv_narrow5_b1_avx2(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                     size_t n_active, const float *in, size_t is_j, float *acc)
{
    PERMUTE_B1_BODY(uint16_t, 5, 8, AVX2_SETUP5, AVX2_SCALE5, AVX2_STEP_NARROW5,
                    AVX2_TAIL_NARROW5)
}

DEFINE_KERNELS(avx2, AVX2_BMI, spmv_narrow_b1_avx2, spmv_narrow5_b1_avx2, spmv_wide_b1_avx2,
               spmv_narrow_vec, spmv_narrow5_vec, spmv_wide_vec)
DEFINE_ROWS_BATCH(avx2, AVX2_BMI, 0, NO_PAIRS, vf8, rows_batch_vf2x1, rows_batch_vf4x1,
                  rows_batch_vf8x1, rows_batch_vf8x2)
/* clang-format on */

AVX2_BMI static void transpose16_avx2(const float *const *rows, size_t n, size_t B, float *out,
                                      size_t ob)
{
    transpose16_scalar(rows, n, B, out, ob);
}

/* A plane 8 floats a step (conv_plane_avx512, which see). */
AVX2_BMI static uint64_t conv_plane_avx2(const eie_conv_plane_t *P, int count)
{
    if (P->sx != 1)
        return conv_plane_scalar(P, count);
    const int64_t H = P->H, W = P->W, x0 = P->x0, Wq = (int64_t)P->Wq;
    const __m256 zero = _mm256_setzero_ps();
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    uint64_t nz = 0;
    if (count) {
        int64_t n = H * W, i = 0;
        for (; i + 8 <= n; i += 8)
            nz += (uint64_t)__builtin_popcount((unsigned)_mm256_movemask_ps(
                _mm256_cmp_ps(_mm256_loadu_ps(P->src + i), zero, _CMP_NEQ_UQ)));
        for (; i < n; i++)
            nz += P->src[i] != 0.0f;
    }
    float *dst = P->dst;
    for (size_t i = 0; i < P->Hq; i++, dst += Wq) {
        int64_t y = P->y0 + (int64_t)i * P->sy;
        const float *row = y >= 0 && y < H ? P->src + y * W : NULL;
        int64_t j = 0;
        for (; j < Wq; j += 8) {
            __m256 v = zero;
            if (row != NULL) {
                /* lanes l with 0 <= x0 + j + l < W: masked-off lanes are not read */
                __m256i x = _mm256_add_epi32(lane, _mm256_set1_epi32((int)(x0 + j)));
                __m256i m = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), x),
                                                _mm256_cmpgt_epi32(_mm256_set1_epi32((int)W), x));
                v = _mm256_maskload_ps((const float *)((uintptr_t)row + (uintptr_t)((x0 + j) * 4)),
                                       m);
            }
            if (j + 8 <= Wq) {
                _mm256_storeu_ps(dst + j, v);
            } else {
                float t[8];
                _mm256_storeu_ps(t, v);
                memcpy(dst + j, t, (size_t)(Wq - j) * sizeof(float));
            }
        }
    }
    conv_plane_copies(P);
    return nz;
}

AVX2_BMI static void conv_out_avx2(const float *acc, unsigned lanes, uint32_t n_rows,
                                   const eie_conv_run_t *runs, size_t n_runs, const float *bias,
                                   size_t bias_stride, float *dst, size_t dst_stride)
{
    CONV_OUT_BODY
}

/* AVX-512 (F, BW, VL): the same bodies compiled for 512-bit registers, so a
 * 16-lane batch row is one zmm, and a leading-non-zero detection that takes
 * 16 columns a step and appends them with one compress. */
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,bmi,popcnt"), aligned(64)))

/* AVX-512: 16 entries a step; the tail's one masked load reads no entry
 * past the column (masked lanes do not fault). */
/* The tail's sink slots: lane i past the column goes to row n_rows + i. */
#define AVX512_SINK                                                                                \
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);  \
    const __m512i sink = _mm512_add_epi32(lane, _mm512_set1_epi32((int)L->n_rows))
#define AVX512_SETUP                                                                               \
    const __m512 book = _mm512_loadu_ps(cb); /* cb holds 256 floats */                             \
    AVX512_SINK;                                                                                   \
    __m512 s16
#define AVX512_SCALE(a)               (s16 = _mm512_mul_ps(book, _mm512_set1_ps(a)))
#define AVX512_PICK(w)                _mm512_permutexvar_ps((w), s16)
#define AVX512_LOAD16_NARROW(e)       _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(e)))
#define AVX512_LOADZ16_NARROW(m, e)   _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16((m), (e)))
#define AVX512_LOAD16_WIDE(e)         _mm512_loadu_si512((e))
#define AVX512_LOADZ16_WIDE(m, e)     _mm512_maskz_loadu_epi32((m), (e))
#define AVX512_STEP(LOAD16, PICK, e, p) _mm512_storeu_ps((p), PICK(LOAD16(e)))
#define AVX512_TAIL(LOADZ16, SHIFT, PICK, e, t, p, r)                                              \
    do {                                                                                           \
        __mmask16 m_ = (__mmask16)((1u << (t)) - 1);                                               \
        __m512i w_ = LOADZ16(m_, e);                                                               \
        _mm512_storeu_si512((r), _mm512_mask_blend_epi32(m_, sink, _mm512_srli_epi32(w_, (SHIFT))));\
        _mm512_storeu_ps((p), PICK(w_));                                                           \
    } while (0)
#define AVX512_STEP_NARROW(e, p) AVX512_STEP(AVX512_LOAD16_NARROW, AVX512_PICK, e, p)
#define AVX512_STEP_WIDE(e, p)   AVX512_STEP(AVX512_LOAD16_WIDE, AVX512_PICK, e, p)
#define AVX512_TAIL_NARROW(e, t, p, r)                                                             \
    AVX512_TAIL(AVX512_LOADZ16_NARROW, 4, AVX512_PICK, e, t, p, r)
#define AVX512_TAIL_WIDE(e, t, p, r) AVX512_TAIL(AVX512_LOADZ16_WIDE, 8, AVX512_PICK, e, t, p, r)

AVX512 __attribute__((noinline)) static uint64_t
spmv_narrow_b1_avx512(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                      size_t n_active, const float *in, size_t is_j, float *acc)
{
    PERMUTE_B1_BODY(uint16_t, 4, 16, AVX512_SETUP, AVX512_SCALE, AVX512_STEP_NARROW,
                    AVX512_TAIL_NARROW)
}

/* 5-bit codes: the 32 products in two registers, and vpermt2ps picks 16
 * entries' products by the low 5 bits of their codes, as vpermps does
 * from one register for 4-bit codes. */
#define AVX512_SETUP5                                                                              \
    const __m512 book_lo = _mm512_loadu_ps(cb), book_hi = _mm512_loadu_ps(cb + 16);                \
    AVX512_SINK;                                                                                   \
    __m512 s_lo, s_hi
#define AVX512_SCALE5(a)                                                                           \
    do {                                                                                           \
        __m512 a_ = _mm512_set1_ps(a);                                                             \
        s_lo = _mm512_mul_ps(book_lo, a_);                                                         \
        s_hi = _mm512_mul_ps(book_hi, a_);                                                         \
    } while (0)
#define AVX512_PICK5(w)          _mm512_permutex2var_ps(s_lo, (w), s_hi)
#define AVX512_STEP5(e, p)       AVX512_STEP(AVX512_LOAD16_NARROW, AVX512_PICK5, e, p)
#define AVX512_TAIL5(e, t, p, r) AVX512_TAIL(AVX512_LOADZ16_NARROW, 5, AVX512_PICK5, e, t, p, r)

/* clang-format off */
AVX512 __attribute__((noinline)) static uint64_t
spmv_narrow5_b1_avx512(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                       size_t n_active, const float *in, size_t is_j, float *acc)
{
    PERMUTE_B1_BODY(uint16_t, 5, 16, AVX512_SETUP5, AVX512_SCALE5, AVX512_STEP5, AVX512_TAIL5)
}
/* clang-format on */

/* Wide entries with codes over 4 bits at batch 1 are the AVX2 variant's
 * code, called, not inlined: that body compiled for AVX-512 ran 5-10%
 * slower (narrow, kernel alone, Alex-7-sized layer, same process:
 * 0.44-0.46 vs 0.41-0.42 ns an entry). */
/* clang-format off */
AVX2_BMI __attribute__((noinline)) static uint64_t
spmv_wide_b1_call(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                  size_t n_active, const float *in, size_t is_j, float *acc)
{
    return spmv_wide_b1_bmi(L, cb, active, n_active, in, is_j, acc);
}
/* clang-format on */

/* Wide entries whose codes fit 4 bits take the permute; wider codes the
 * bextr body, compiled for AVX2 (as below). */
AVX512 __attribute__((noinline)) static uint64_t
spmv_wide_b1_avx512(const eie_pe_layer_t *L, const float *cb, const uint32_t *active,
                    size_t n_active, const float *in, size_t is_j, float *acc)
{
    if (L->n_codes == 0 || L->n_codes > 16)
        return spmv_wide_b1_call(L, cb, active, n_active, in, is_j, acc);
    PERMUTE_B1_BODY(uint32_t, 8, 16, AVX512_SETUP, AVX512_SCALE, AVX512_STEP_WIDE,
                    AVX512_TAIL_WIDE)
}

/* The row form at batch 1, 24 entries a step. Sixteen of them: their
 * codes pick their weights out of the 16-entry codebook held in one
 * register (vpermps), their columns gather their activations (vgatherdps),
 * one FMA adds the 16 products to 16 partial sums. The other eight take
 * their weights from the same register (one more vpermps, its lanes moved
 * out by shuffles) and their activations by scalar loads, into four more
 * sums. A gather here costs about 1.1 cycles an element however it is
 * unrolled (16-element gathers, activations in L1: 0.345 ns an element,
 * scalar loads 0.18), and the scalar loads run beside it. A row's last
 * 0-23 entries take masked gather steps (masked-off lanes are not loaded).
 * The sums are added at the row's end, so a row sums in another order than
 * in the other variants' row form (still the same order on every PE
 * count).
 *
 * eie-bench, NT-We-sized, one PE, cpu / float CSR per round: gathers only
 * 0.95-0.97; 16 + 8 with the eight's weights loaded through the entry
 * (cb[code]) 0.85-0.86; with them from the register 0.79-0.80 (16 + 16
 * the same, 0.78-0.79). Loaded weights also cost the most in this VM's
 * slow stretches (the cores probe's reads 40% slower, likely a busy
 * sibling thread on the core), where scalar loads slow far more than
 * gathers: the loop alone ran 0.48-0.52 ns an entry with loaded weights,
 * 0.44-0.45 with the register's, 0.41-0.43 gathers only (fast: 0.32-0.35,
 * 0.30-0.32, 0.34-0.36). All 24 gathered (the eight by an 8-lane gather:
 * the same bits) ran 25% slower than gathers only, so it cannot stand in
 * where the loads slow down. 5-bit codes (col << 5 | code) pick from the
 * 32-entry codebook in two registers by one vpermt2ps instead (PICK). A
 * permute reads only an index's low 4 (vpermps) or 5 (vpermt2ps) bits, so
 * the entries index it as they are. */
#define ROWS_B1_AVX512_BODY(SH, PICK, SPANNED)                                                     \
    ROWS_B1_SPANS(SPANNED);                                                                        \
    enum { STEP = 24 }; /* 16 gathered, 8 loaded */                                                \
    for (uint32_t r = 0; r < nr; r++) {                                                            \
        __m512 v = _mm512_setzero_ps();                                                            \
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;                                          \
        for (uint32_t t = 0; t < n_spans; t++) {                                                   \
            ROWS_B1_SPAN(r, t);                                                                    \
            for (; end - e >= STEP; e += STEP) {                                                   \
                __m512i w16 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)e));       \
                __m512 x = _mm512_i32gather_ps(_mm512_srli_epi32(w16, (SH)), xin, 4);              \
                v = _mm512_fmadd_ps(PICK(w16), x, v);                                              \
                /* the eight's weights by one permute too, their activations by                    \
                   scalar loads */                                                                 \
                __m256i w8 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(e + 16)));    \
                vf8 wt = (vf8)_mm512_castps512_ps256(PICK(_mm512_castsi256_si512(w8)));            \
                uint64_t a, b;                                                                     \
                memcpy(&a, e + 16, sizeof a);                                                      \
                memcpy(&b, e + 20, sizeof b);                                                      \
                ROWS_B1_STEP4(FIELD_BEXTR, MADD_FUSED, SH, a, wt[0], wt[1], wt[2], wt[3], s0, s1,  \
                              s2, s3);                                                             \
                ROWS_B1_STEP4(FIELD_BEXTR, MADD_FUSED, SH, b, wt[4], wt[5], wt[6], wt[7], s0, s1,  \
                              s2, s3);                                                             \
            }                                                                                      \
            for (; e < end; e += 16) {                                                             \
                size_t n = (size_t)(end - e);                                                      \
                __mmask16 m = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);            \
                __m512i w16 = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, e));               \
                __m512 x = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m,                        \
                                                    _mm512_srli_epi32(w16, (SH)), xin, 4);         \
                v = _mm512_mask3_fmadd_ps(PICK(w16), x, v, m);                                     \
            }                                                                                      \
        }                                                                                          \
        acc[r] = _mm512_reduce_add_ps(v) + ((s0 + s1) + (s2 + s3));                                \
    }                                                                                              \
    return L->rptr[nr];

#define ROWS_B1_PICK4_AVX512(w) _mm512_permutexvar_ps((w), book)
#define ROWS_B1_PICK5_AVX512(w) _mm512_permutex2var_ps(book, (w), book_hi)
AVX512 static uint64_t rows_b1_avx512(const eie_pe_layer_t *L, const float *cb, const float *in,
                                      float *acc)
{
    const __m512 book = _mm512_loadu_ps(cb); /* cb holds 256 floats */
    const __m512 book_hi = _mm512_loadu_ps(cb + 16);
    ROWS_B1_DISPATCH(ROWS_B1_AVX512_BODY, ROWS_B1_PICK5_AVX512, ROWS_B1_PICK4_AVX512)
}

/* As active_avx2, 16 columns a step where they are contiguous: the set
 * lanes of the compare mask are packed with vpcompressd, no table. Where a
 * column's B values are contiguous, one masked load and compare decides the
 * column for any B up to 16 (masked-off lanes do not fault). */
AVX512 static size_t active_avx512(const float *in, size_t n, size_t is_j, size_t is_b, size_t B,
                                   uint32_t *active)
{
    const __m512 zero = _mm512_setzero_ps();
    size_t n_active = 0, j = 0;
    if (is_j == 1) {
        const __m512i lane =
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (; j + 16 <= n; j += 16) {
            __mmask16 nz = 0;
            for (size_t b = 0; b < B; b++)
                nz |= _mm512_cmp_ps_mask(_mm512_loadu_ps(in + j + b * is_b), zero, _CMP_NEQ_UQ);
            __m512i cols = _mm512_add_epi32(lane, _mm512_set1_epi32((int)j));
            /* n_active <= j: the 16 stored lanes stay below n */
            _mm512_storeu_si512(active + n_active, _mm512_maskz_compress_epi32(nz, cols));
            n_active += (size_t)__builtin_popcount(nz);
        }
    } else if (is_b == 1 && B <= 16) {
        const __mmask16 lanes = (__mmask16)((1u << B) - 1);
        for (; j < n; j++) {
            __m512 v = _mm512_maskz_loadu_ps(lanes, in + j * is_j);
            active[n_active] = (uint32_t)j;
            n_active += _mm512_mask_cmp_ps_mask(lanes, v, zero, _CMP_NEQ_UQ) != 0;
        }
    }
    return active_from(in, j, n, is_j, is_b, B, active, n_active);
}

/* The batch row form where the codes fit 4 bits (S of 2, 4, 8 or 16 lanes):
 * the codebook is one register, and an entry's weight is that register
 * permuted by the entry broadcast (vpermps reads each index's low 4 bits:
 * the code, in the narrow and the wide entry alike), its low S lanes. The
 * generic step loads the weight through the entry (the load's address
 * waits on the entry's load); this one loads the entry twice,
 * independently. Same weight, same products: the same bits. The loop alone
 * (four rows in lock step, 64 entries a row, one Zen 5 core, activations
 * in L1): 16 lanes 0.43 -> 0.40 ns an entry (in L2 0.68 -> 0.65), 8 lanes
 * 0.365 -> 0.348, 4 lanes 0.363 -> 0.308; with no weight at all (one add
 * an entry, 16 lanes) it is 0.32, the floor of the activations' loads.
 * At 2 lanes, in place (eie-bench, one thread, dense inputs): NT-We 99-102
 * us against 116-119 for the generic step, NT-LSTM 124-128 against
 * 146-160, level with 4 lanes (the same instructions, a narrower load). */
typedef struct {
    unsigned char b[4];
} bytes4_t;

/* p's first four bytes in every 32-bit lane, as a load: written as an
 * intrinsic GCC reuses the entry's scalar load and broadcasts from that
 * register, a move between register files that held the loop up (the wide
 * form, where both loads are 32 bits). */
AVX512 INLINE __m512i broadcast4_avx512(const void *p)
{
    __m512i v;
    __asm__("vpbroadcastd %1, %0" : "=v"(v) : "m"(*(const bytes4_t *)p));
    return v;
}

/* A V of the codebook register's low lanes (vf2: 8 bytes, in an xmm). */
AVX512 INLINE vf2 book_vf2(__m512 w)
{
    __m128 lo = _mm512_castps512_ps128(w);
    vf2 v;
    memcpy(&v, &lo, sizeof v);
    return v;
}
AVX512 INLINE vf4 book_vf4(__m512 w)
{
    return (vf4)_mm512_castps512_ps128(w);
}
AVX512 INLINE vf8 book_vf8(__m512 w)
{
    return (vf8)_mm512_castps512_ps256(w);
}
AVX512 INLINE vf16 book_vf16(__m512 w)
{
    return (vf16)w;
}

/* the narrow entry's four bytes hold the next one too (EIE_ENTRY_SLACK
   keeps them readable past the last); its low 4 bits are the code. At 16
   lanes the entry's column comes out of its broadcast (vmovd), not from a
   second load of the entry: an entry is then two loads (the broadcast,
   16 activations), not three, and loads bound this loop. eie-bench, one
   thread, batch 16, three alternations, us: Alex-7 723-736 -> 697-709,
   VGG-6 2518-2680 -> 2356-2473, NT-Wd 246-248 -> 224-245, NT-LSTM
   124-125 -> 115-125; 2-7% on the nine layers. At 4 lanes it ran 0-6%
   slower (the move's latency on a shorter step): narrower vectors keep
   the load. */
#define ROWS_STEP_BOOK(V, NV, s, w, SHIFT)                                                         \
    do {                                                                                           \
        __m512i b_ = broadcast4_avx512(&(w));                                                      \
        ROWS_STEP_W(V, 1, s,                                                                       \
                    sizeof(V) == 64 ? (__typeof__(w))_mm_cvtsi128_si32(_mm512_castsi512_si128(b_)) \
                                    : (w),                                                         \
                    SHIFT, book_##V(_mm512_permutexvar_ps(b_, book)));                             \
    } while (0)
#define ROWS_STEP_BOOK4(V, NV, s, w) ROWS_STEP_BOOK(V, NV, s, w, 4)
#define ROWS_STEP_BOOK8(V, NV, s, w) ROWS_STEP_BOOK(V, NV, s, w, 8)
/* 5-bit codes: the 32-entry codebook in two registers (book, book_hi),
   one vpermt2ps */
#define ROWS_STEP_BOOK5(V, NV, s, w)                                                               \
    ROWS_STEP_W(V, 1, s, w, 5,                                                                     \
                book_##V(_mm512_permutex2var_ps(book, broadcast4_avx512(&(w)), book_hi)))

/* clang-format off */
#define DEFINE_ROWS_BATCH_BOOK(V, GENERIC)                                                         \
    AVX512 static uint64_t rows_batch_book_##V(const eie_pe_layer_t *L, const float *cb,           \
                                               const float *in, float *acc)                        \
    {                                                                                              \
        const __m512 book = _mm512_loadu_ps(cb); /* cb holds 256 floats */                         \
        if (L->rentw != NULL) {                                                                    \
            ROWS_BATCH_VEC_BODY(uint32_t, L->rentw, ROWS_STEP_BOOK8, V, 1)                         \
        }                                                                                          \
        ROWS_BATCH_VEC_BODY(uint16_t, L->rent, ROWS_STEP_BOOK4, V, 1)                              \
    }                                                                                              \
    AVX512 static uint64_t rows_batch_book5_##V(const eie_pe_layer_t *L, const float *cb,          \
                                                const float *in, float *acc)                       \
    {                                                                                              \
        const __m512 book = _mm512_loadu_ps(cb), book_hi = _mm512_loadu_ps(cb + 16);               \
        ROWS_BATCH_VEC_BODY(uint16_t, L->rent, ROWS_STEP_BOOK5, V, 1)                              \
    }                                                                                              \
    AVX512 static uint64_t rows_batch_##V##_avx512(const eie_pe_layer_t *L, const float *cb,       \
                                                   const float *in, float *acc)                    \
    {                                                                                              \
        if (L->n_codes != 0 && L->n_codes <= 16)                                                   \
            return rows_batch_book_##V(L, cb, in, acc);                                            \
        if (L->rent != NULL && eie_pe_row_shift(L) == 5)                                           \
            return rows_batch_book5_##V(L, cb, in, acc);                                           \
        return GENERIC(L, cb, in, acc);                                                            \
    }
/* clang-format on */
DEFINE_ROWS_BATCH_BOOK(vf2, rows_batch_vf2x1)
DEFINE_ROWS_BATCH_BOOK(vf4, rows_batch_vf4x1)
DEFINE_ROWS_BATCH_BOOK(vf8, rows_batch_vf8x1)
DEFINE_ROWS_BATCH_BOOK(vf16, rows_batch_vf16x1)

static int supported_avx512(void)
{
    __builtin_cpu_init();
    return supported_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

DEFINE_KERNELS(avx512, AVX512, spmv_narrow_b1_avx512, spmv_narrow5_b1_avx512, spmv_wide_b1_avx512,
               spmv_narrow_vec, spmv_narrow5_vec, spmv_wide_vec)
DEFINE_ROWS_BATCH(avx512, AVX512, 1, LOCK_PAIRS, vf16, rows_batch_vf2_avx512,
                  rows_batch_vf4_avx512, rows_batch_vf8_avx512, rows_batch_vf16_avx512)

/* The conv form with the codebook in registers (up to 32 codes): an
 * entry's weight is a permute of the book by the entry itself (its low
 * bits are the code), not a load, and a row's entries are read two to a
 * 64-bit load (LOCK_PAIRS). Loads bound the conv form: on Zen 5 about two
 * a cycle of any width (4 zmm loads of activations and one scalar an
 * entry, adds only: 3.0 cycles), and an entry took six (its word, its
 * weight, four vectors of 16 lanes); now 4.5. The loop alone, activations
 * in L1 (four rows of 40 entries in lock step): 3.75-3.85 -> 2.94-3.01
 * cycles an entry at 64 lanes; weight by permute alone 3.26-3.36, pairs
 * alone 3.38-3.51. An Alex-c3-sized PE's rows (80 rows in spans of 12
 * input channels, kernel alone): 3.56-4.1 -> 3.35-3.4. */
#define CONV_STEP_BOOK(V, NV, s, w)                                                                \
    do {                                                                                           \
        uint32_t w_ = (w);                                                                         \
        ROW_MADD(V, NV, s, (V)_mm512_permutexvar_ps(_mm512_set1_epi32((int)w_), book),             \
                 in + (w_ >> 8));                                                                  \
    } while (0)
#define CONV_STEP_BOOK5(V, NV, s, w)                                                               \
    do {                                                                                           \
        uint32_t w_ = (w);                                                                         \
        ROW_MADD(V, NV, s, (V)_mm512_permutex2var_ps(book, _mm512_set1_epi32((int)w_), book_hi),   \
                 in + (w_ >> 8));                                                                  \
    } while (0)
#define DEFINE_CONV_BOOK_AVX512(LANES)                                                             \
    AVX512 static uint64_t rows_conv##LANES##_book_avx512(                                         \
        const eie_conv_rows_t *R, const float *cb, const float *in, float *acc, int add)           \
    {                                                                                              \
        const __m512 book = _mm512_loadu_ps(cb);                                                   \
        ROWS_CONV_BODY(CONV_STEP_BOOK, vf16, (LANES) / 16, 1, LOCK_PAIRS)                          \
    }                                                                                              \
    AVX512 static uint64_t rows_conv##LANES##_book5_avx512(                                        \
        const eie_conv_rows_t *R, const float *cb, const float *in, float *acc, int add)           \
    {                                                                                              \
        const __m512 book = _mm512_loadu_ps(cb), book_hi = _mm512_loadu_ps(cb + 16);               \
        ROWS_CONV_BODY(CONV_STEP_BOOK5, vf16, (LANES) / 16, 1, LOCK_PAIRS)                         \
    }
DEFINE_CONV_BOOK_AVX512(16)
DEFINE_CONV_BOOK_AVX512(32)
DEFINE_CONV_BOOK_AVX512(64)

AVX512 static uint64_t rows_conv_book_avx512(const eie_conv_rows_t *R, const float *cb,
                                             const float *in, float *acc, int add, unsigned lanes)
{
    if (R->n_codes != 0 && R->n_codes <= 16)
        return lanes == 64   ? rows_conv64_book_avx512(R, cb, in, acc, add)
               : lanes == 32 ? rows_conv32_book_avx512(R, cb, in, acc, add)
                             : rows_conv16_book_avx512(R, cb, in, acc, add);
    if (R->n_codes != 0 && R->n_codes <= 32)
        return lanes == 64   ? rows_conv64_book5_avx512(R, cb, in, acc, add)
               : lanes == 32 ? rows_conv32_book5_avx512(R, cb, in, acc, add)
                             : rows_conv16_book5_avx512(R, cb, in, acc, add);
    return rows_conv_avx512(R, cb, in, acc, add, lanes);
}

/* A 16 x 16 transpose in registers: pairs of rows interleaved (unpack),
 * then quads (shuffle), then 128-bit lanes twice; rows past n read as
 * zeros, lanes past n and samples past B are not stored. Four-step
 * shuffle network as in any 16 x 16 float transpose. */
AVX512 static void transpose16_avx512(const float *const *rows, size_t n, size_t B, float *out,
                                      size_t ob)
{
    __m512 r[16], t[16], u[16];
    __mmask16 lanes = B >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << B) - 1);
    for (size_t i = 0; i < 16; i++)
        r[i] = i < n ? _mm512_maskz_loadu_ps(lanes, rows[i]) : _mm512_setzero_ps();
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* u[4g + c]: rows 4g .. 4g + 3 at column 4k + c of each 128-bit lane k */
    for (int g = 0; g < 4; g++) {
        __m512 a = t[4 * g], b = t[4 * g + 1], c = t[4 * g + 2], d = t[4 * g + 3];
        u[4 * g] = _mm512_shuffle_ps(a, c, 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(a, c, 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(b, d, 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(b, d, 0xEE);
    }
    __mmask16 m = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        __m512 col[4] = {_mm512_shuffle_f32x4(v0, w0, 0x88), _mm512_shuffle_f32x4(v1, w1, 0x88),
                         _mm512_shuffle_f32x4(v0, w0, 0xDD), _mm512_shuffle_f32x4(v1, w1, 0xDD)};
        for (int k = 0; k < 4; k++) {
            size_t b = (size_t)(4 * k + c);
            if (b < B)
                _mm512_mask_storeu_ps(out + b * ob, m, col[k]);
        }
    }
}

/* A run is at most four vectors: masked loads and stores, no tail loop
 * (LeNet-5's conv1, 24 outputs a run: the block's outputs took a fifth of
 * the layer in SSE loops). */
AVX512 static void conv_out_avx512(const float *acc, unsigned lanes, uint32_t n_rows,
                                   const eie_conv_run_t *runs, size_t n_runs, const float *bias,
                                   size_t bias_stride, float *dst, size_t dst_stride)
{
    for (uint32_t r = 0; r < n_rows; r++) {
        const float *a = acc + (size_t)r * lanes;
        float *d = dst + r * dst_stride;
        __m512 bb = _mm512_set1_ps(bias[r * bias_stride]);
        for (size_t k = 0; k < n_runs; k++) {
            const float *from = a + runs[k].lane;
            float *to = d + runs[k].at;
            for (uint32_t i = 0; i < runs[k].len; i += 16) {
                uint32_t t = runs[k].len - i;
                __mmask16 m = t >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << t) - 1);
                __m512 v = _mm512_maskz_loadu_ps(m, from + i);
                _mm512_mask_storeu_ps(to + i, m, _mm512_add_ps(v, bb));
            }
        }
    }
}

/* A plane 16 floats a step: masked loads read the row's columns in the
 * channel (masked-off lanes are not read) as zeros elsewhere; the copies
 * read the plane just written, in L1 (conv_plane_copies). Strided
 * columns (sx > 1) take the scalar body. The scalar body's calls and
 * loops per row of 16 floats bound it: one PE phasing every channel,
 * instrumented, eie-bench --conv, one thread: Alex-c5 (384 channels of
 * 13 x 13 into three copies of 15 x 16) 55 us -> 30, Alex-c2 54 -> 38. */
AVX512 static uint64_t conv_plane_avx512(const eie_conv_plane_t *P, int count)
{
    if (P->sx != 1)
        return conv_plane_scalar(P, count);
    const int64_t H = P->H, W = P->W, x0 = P->x0, Wq = (int64_t)P->Wq;
    const __m512 zero = _mm512_setzero_ps();
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    uint64_t nz = 0;
    if (count) {
        int64_t n = H * W, i = 0;
        for (; i + 16 <= n; i += 16)
            nz += (uint64_t)__builtin_popcount(
                _mm512_cmp_ps_mask(_mm512_loadu_ps(P->src + i), zero, _CMP_NEQ_UQ));
        __mmask16 t = (__mmask16)((1u << (n - i)) - 1);
        nz += (uint64_t)__builtin_popcount(
            _mm512_mask_cmp_ps_mask(t, _mm512_maskz_loadu_ps(t, P->src + i), zero, _CMP_NEQ_UQ));
    }
    float *dst = P->dst;
    for (size_t i = 0; i < P->Hq; i++, dst += Wq) {
        int64_t y = P->y0 + (int64_t)i * P->sy;
        const float *row = y >= 0 && y < H ? P->src + y * W : NULL;
        for (int64_t j = 0; j < Wq; j += 16) {
            __mmask16 in_plane = j + 16 <= Wq ? 0xffff : (__mmask16)((1u << (Wq - j)) - 1);
            __m512 v = zero;
            if (row != NULL) {
                /* lanes l with 0 <= x0 + j + l < W */
                __m512i x = _mm512_add_epi32(lane, _mm512_set1_epi32((int)(x0 + j)));
                __mmask16 m = _mm512_mask_cmpge_epi32_mask(in_plane, x, _mm512_setzero_si512());
                m = _mm512_mask_cmplt_epi32_mask(m, x, _mm512_set1_epi32((int)W));
                /* the address as an integer: x0 + j may be before the row */
                v = _mm512_maskz_loadu_ps(
                    m, (const float *)((uintptr_t)row + (uintptr_t)((x0 + j) * 4)));
            }
            _mm512_mask_storeu_ps(dst + j, in_plane, v);
        }
    }
    conv_plane_copies(P);
    return nz;
}
#endif

/* LSTM cells and activations, one body for every variant (kernels.h): the
 * scalar reference is what the compiler makes of it for the base ISA. */
#define DEFINE_ELEMENTWISE(SUFFIX, ATTR)                                                           \
    ATTR static void lstm_cells_##SUFFIX(const float *gi, const float *go, const float *gf,        \
                                         const float *gc, float *c, float *h, size_t n)            \
    {                                                                                              \
        eie_op_lstm_cells(gi, go, gf, gc, c, h, n);                                                \
    }                                                                                              \
    ATTR static void act_n_##SUFFIX(eie_act_t act, const float *x, float *y, size_t n)             \
    {                                                                                              \
        eie_act_apply_n(act, x, y, n);                                                             \
    }
DEFINE_ELEMENTWISE(scalar, )
#if defined(__x86_64__) && defined(__GNUC__)
DEFINE_ELEMENTWISE(avx2, AVX2_BMI)
DEFINE_ELEMENTWISE(avx512, AVX512)
#endif

const eie_cpu_kernel_t eie_cpu_kernels[] = {
    {.name = "scalar",
     .supported = supported_always,
     .spmv_narrow = spmv_narrow_scalar,
     .spmv_narrow5 = spmv_narrow5_scalar,
     .spmv_wide = spmv_wide_scalar,
     .active = active_scalar,
     .rows_b1 = rows_b1_scalar,
     .rows_batch = rows_batch_scalar,
     .rows_conv = rows_conv_scalar,
     .conv_out = conv_out_scalar,
     .conv_plane = conv_plane_scalar,
     .transpose16 = transpose16_scalar,
     .lstm_cells = lstm_cells_scalar,
     .act_n = act_n_scalar},
#if defined(__x86_64__) && defined(__GNUC__)
    {.name = "avx2",
     .supported = supported_avx2,
     .spmv_narrow = spmv_narrow_avx2,
     .spmv_narrow5 = spmv_narrow5_avx2,
     .spmv_wide = spmv_wide_avx2,
     .active = active_avx2,
     .rows_b1 = rows_b1_avx2,
     .rows_batch = rows_batch_avx2,
     .rows_conv = rows_conv_avx2,
     .conv_out = conv_out_avx2,
     .conv_plane = conv_plane_avx2,
     .transpose16 = transpose16_avx2,
     .lstm_cells = lstm_cells_avx2,
     .act_n = act_n_avx2},
    {.name = "avx512",
     .supported = supported_avx512,
     .spmv_narrow = spmv_narrow_avx512,
     .spmv_narrow5 = spmv_narrow5_avx512,
     .spmv_wide = spmv_wide_avx512,
     .active = active_avx512,
     .rows_b1 = rows_b1_avx512,
     .rows_batch = rows_batch_avx512,
     .rows_conv = rows_conv_book_avx512,
     .conv_out = conv_out_avx512,
     .conv_plane = conv_plane_avx512,
     .transpose16 = transpose16_avx512,
     .lstm_cells = lstm_cells_avx512,
     .act_n = act_n_avx512},
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

/* The names of the kernels this CPU runs, comma-separated, into buf. */
static void supported_names(char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < eie_cpu_kernel_count && at < size; i++)
        if (eie_cpu_kernels[i].supported()) {
            int w = snprintf(buf + at, size - at, "%s%s", at ? ", " : "", eie_cpu_kernels[i].name);
            at += w > 0 ? (size_t)w : 0;
        }
}

eie_status_t eie_cpu_kernel_select(const char *name, const eie_cpu_kernel_t **out, eie_error_t *err)
{
    const char *from = "";
    if (name == NULL || name[0] == '\0') {
        name = getenv("EIE_KERNEL");
        from = " (from EIE_KERNEL)";
    }
    *out = name == NULL || name[0] == '\0' ? eie_cpu_kernel_best() : eie_cpu_kernel_find(name);
    if (*out != NULL)
        return EIE_STATUS_OK;
    int known = 0;
    for (size_t i = 0; i < eie_cpu_kernel_count; i++)
        known |= strcmp(eie_cpu_kernels[i].name, name) == 0;
    char names[128];
    supported_names(names, sizeof names);
    return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                         "cpu: kernel \"%.40s\"%s: %s; this CPU runs %s", name, from,
                         known ? "not supported by this CPU" : "no such kernel", names);
}
