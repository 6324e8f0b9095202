/*
 * Float convolution baselines of eie-bench --conv (baselines_conv.h).
 */
#include "baselines_conv.h"

#include <stdlib.h>
#include <string.h>

#include "backend.h"

typedef float vf16u __attribute__((vector_size(64), aligned(4), may_alias));

#define MAX_CHUNKS 4 /* 16-lane vectors per output row: OW <= 64 */

struct bl_conv {
    bl_conv_shape_t s;
    int OH, OW, chunks;
    int Hp, Wq; /* a phase plane: Hp rows of Wq, Wq a multiple of 16 */
    float *xph; /* [C][stride][Hp][Wq], padded, split by stride phase; then
                   copies 1 .. ncopy - 1 of it, copy s shifted left by s */
    int ncopy;
    size_t copy_floats; /* each copy's floats, a multiple of 16 */
    uint32_t *optr;     /* O + 1 */
    int32_t *off;       /* each nonzero's offset into xph */
    float *val;
    float *bias;
    unsigned T;
    int o0[3]; /* output channels of each share */
    eie_pool_t *pool;
    uint64_t nnz;
};

void bl_conv_im2col(const bl_conv_shape_t *s, const float *x, int g, float *col)
{
    const int OH = bl_conv_oh(s), OW = bl_conv_ow(s), Cg = s->C / s->groups, K = s->K;
    for (int cl = 0; cl < Cg; cl++) {
        const float *xc = x + (size_t)(g * Cg + cl) * s->H * s->W;
        for (int kh = 0; kh < K; kh++)
            for (int kw = 0; kw < K; kw++) {
                float *dst = col + ((size_t)(cl * K + kh) * K + kw) * OH * OW;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * s->stride + kh - s->pad;
                    float *d = dst + (size_t)oh * OW;
                    if (ih < 0 || ih >= s->H) {
                        memset(d, 0, (size_t)OW * sizeof(float));
                        continue;
                    }
                    const float *row = xc + (size_t)ih * s->W;
                    for (int ow = 0; ow < OW; ow++) {
                        int iw = ow * s->stride + kw - s->pad;
                        d[ow] = iw >= 0 && iw < s->W ? row[iw] : 0.0f;
                    }
                }
            }
    }
}

bl_conv_t *bl_conv_init(const bl_conv_shape_t *s, const float *w, const float *bias,
                        unsigned threads, eie_pool_t *pool, int aligned)
{
    if (threads < 1 || threads > 2 || (threads > 1 && pool == NULL))
        return NULL;
    bl_conv_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->s = *s;
    c->OH = bl_conv_oh(s);
    c->OW = bl_conv_ow(s);
    c->chunks = (c->OW + 15) / 16;
    c->T = threads;
    c->pool = pool;
    if (c->chunks > MAX_CHUNKS)
        goto error;
    c->Hp = s->H + 2 * s->pad;
    c->Wq = c->chunks * 16 + (s->K - 1) / s->stride + 1;
    if (aligned)
        c->Wq = (c->Wq + 15) / 16 * 16;
    const int Cg = s->C / s->groups, Og = s->O / s->groups, K = s->K, st = s->stride;
    size_t nw = (size_t)s->O * Cg * K * K;
    for (size_t i = 0; i < nw; i++)
        c->nnz += w[i] != 0.0f;
    /* aligned: loads on 64-byte boundaries, as the engine's direct conv (a
     * 64-byte load across two cache lines costs two): a nonzero at kernel
     * column kw reads copy (kw / st) mod 16 at its offset less that, a
     * multiple of 16 floats. It pays where the copies stay in cache. */
    c->ncopy = !aligned ? 1 : (K - 1) / st < 16 ? (K - 1) / st + 1 : 16;
    /* slack: the rows past OH that a last block of 4 rows computes */
    c->copy_floats =
        ((size_t)s->C * st * c->Hp * c->Wq + 4 * (size_t)st * c->Wq + 64 + 15) / 16 * 16;
    size_t xbytes = c->ncopy * c->copy_floats * sizeof(float);
    if ((c->xph = aligned_alloc(64, xbytes)) != NULL)
        memset(c->xph, 0, xbytes);
    c->optr = calloc((size_t)s->O + 1, sizeof(uint32_t));
    c->off = malloc((c->nnz + 1) * sizeof(int32_t));
    c->val = malloc((c->nnz + 1) * sizeof(float));
    c->bias = malloc((size_t)s->O * sizeof(float));
    if (!c->xph || !c->optr || !c->off || !c->val || !c->bias)
        goto error;
    memcpy(c->bias, bias, (size_t)s->O * sizeof(float));
    size_t k = 0;
    for (int o = 0; o < s->O; o++) {
        int g = o / Og;
        for (int cl = 0; cl < Cg; cl++)
            for (int kh = 0; kh < K; kh++)
                for (int kw = 0; kw < K; kw++) {
                    float v = w[(((size_t)o * Cg + cl) * K + kh) * K + kw];
                    if (v == 0.0f)
                        continue;
                    int ch = g * Cg + cl, sft = aligned ? kw / st % 16 : 0;
                    c->off[k] = (int32_t)(sft * c->copy_floats +
                                          (((size_t)ch * st + kw % st) * c->Hp + kh) * c->Wq +
                                          kw / st - sft);
                    c->val[k++] = v;
                }
        c->optr[o + 1] = (uint32_t)k;
    }
    /* Shares of equal nonzeros. */
    c->o0[0] = 0;
    c->o0[threads] = s->O;
    if (threads == 2) {
        int o = 0;
        while (o < s->O && c->optr[o] < c->nnz / 2)
            o++;
        c->o0[1] = o;
    }
    return c;
error:
    bl_conv_free(c);
    return NULL;
}

void bl_conv_free(bl_conv_t *c)
{
    if (c == NULL)
        return;
    free(c->xph);
    free(c->optr);
    free(c->off);
    free(c->val);
    free(c->bias);
    free(c);
}

uint64_t bl_conv_bytes(const bl_conv_t *c)
{
    return c->nnz * 8 + ((uint64_t)c->s.O + 1) * 4;
}

/* Channels [c0, c1) of x into the padded phase planes (the zero padding
 * around them was written once, at init, and is never overwritten). */
static void prepare(bl_conv_t *c, const float *x, int c0, int c1)
{
    const bl_conv_shape_t *s = &c->s;
    const int st = s->stride;
    for (int ch = c0; ch < c1; ch++)
        for (int p = 0; p < st; p++)
            for (int h = 0; h < s->H; h++) {
                float *dst = c->xph + (((size_t)ch * st + p) * c->Hp + h + s->pad) * c->Wq;
                const float *src = x + ((size_t)ch * s->H + h) * s->W;
                for (int q = 0; q < c->Wq; q++) {
                    int iw = q * st + p - s->pad;
                    dst[q] = iw >= 0 && iw < s->W ? src[iw] : 0.0f;
                }
                for (int sft = 1; sft < c->ncopy; sft++) {
                    float *to = dst + sft * c->copy_floats;
                    memcpy(to, dst + sft, (size_t)(c->Wq - sft) * sizeof(float));
                    memset(to + c->Wq - sft, 0, (size_t)sft * sizeof(float));
                }
            }
}

/* Output channels [o0, o1), RB output rows at a time: each nonzero's
 * offset and value are loaded once for RB rows of N 16-lane vectors, and
 * two interleaved accumulator sets break the FMA latency chain. Rows past
 * OH in the last block are computed (into the slack of xph) and dropped. */
#define CONV_ROWS(N, RB)                                                                           \
    static void rows_##N(const bl_conv_t *c, int o0, int o1, float *y)                             \
    {                                                                                              \
        const size_t row_step = (size_t)c->s.stride * c->Wq;                                       \
        for (int o = o0; o < o1; o++) {                                                            \
            const int32_t *off = c->off + c->optr[o];                                              \
            const float *v = c->val + c->optr[o];                                                  \
            const uint32_t n = c->optr[o + 1] - c->optr[o];                                        \
            for (int oh0 = 0; oh0 < c->OH; oh0 += (RB)) {                                          \
                const float *base = c->xph + oh0 * row_step;                                       \
                vf16u a[2][RB][N];                                                                 \
                for (int q = 0; q < 2; q++)                                                        \
                    for (int r = 0; r < (RB); r++)                                                 \
                        for (int j = 0; j < (N); j++)                                              \
                            a[q][r][j] = (vf16u){0};                                               \
                uint32_t k = 0;                                                                    \
                for (; k + 2 <= n; k += 2)                                                         \
                    for (int q = 0; q < 2; q++) {                                                  \
                        const float *p = base + off[k + q];                                        \
                        const float wv = v[k + q];                                                 \
                        for (int r = 0; r < (RB); r++)                                             \
                            for (int j = 0; j < (N); j++)                                          \
                                a[q][r][j] += wv * *(const vf16u *)(p + r * row_step + 16 * j);    \
                    }                                                                              \
                for (; k < n; k++) {                                                               \
                    const float *p = base + off[k];                                                \
                    for (int r = 0; r < (RB); r++)                                                 \
                        for (int j = 0; j < (N); j++)                                              \
                            a[0][r][j] += v[k] * *(const vf16u *)(p + r * row_step + 16 * j);      \
                }                                                                                  \
                for (int r = 0; r < (RB) && oh0 + r < c->OH; r++) {                                \
                    float out[16 * (N)];                                                           \
                    for (int j = 0; j < (N); j++)                                                  \
                        *(vf16u *)(out + 16 * j) = a[0][r][j] + a[1][r][j];                        \
                    float *yr = y + ((size_t)o * c->OH + oh0 + r) * c->OW;                         \
                    for (int w = 0; w < c->OW; w++)                                                \
                        yr[w] = out[w] + c->bias[o];                                               \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

CONV_ROWS(1, 4)
CONV_ROWS(2, 2)
CONV_ROWS(3, 2)
CONV_ROWS(4, 2)

static void share_rows(bl_conv_t *c, float *y, unsigned k)
{
    switch (c->chunks) {
    case 1:
        rows_1(c, c->o0[k], c->o0[k + 1], y);
        break;
    case 2:
        rows_2(c, c->o0[k], c->o0[k + 1], y);
        break;
    case 3:
        rows_3(c, c->o0[k], c->o0[k + 1], y);
        break;
    default:
        rows_4(c, c->o0[k], c->o0[k + 1], y);
        break;
    }
}

static void share(bl_conv_t *c, const float *x, float *y, unsigned k, eie_pool_t *pool)
{
    int c0 = (int)((long)c->s.C * k / c->T), c1 = (int)((long)c->s.C * (k + 1) / c->T);
    prepare(c, x, c0, c1);
    if (c->T > 1)
        eie_pool_barrier(pool);
    share_rows(c, y, k);
}

typedef struct conv_job {
    eie_pool_job_t base;
    bl_conv_t *c;
    const float *x;
    float *y;
    eie_waiter_t w;
} conv_job_t;

static void job_run(eie_pool_job_t *base, unsigned pe, eie_pool_t *pool)
{
    conv_job_t *job = (conv_job_t *)base;
    share(job->c, job->x, job->y, pe, pool);
}

static void job_finish(eie_pool_job_t *base)
{
    conv_job_t *job = (conv_job_t *)base;
    eie_run_info_t info = {0};
    eie_waiter_done(&job->w, EIE_STATUS_OK, &info, NULL);
}

void bl_conv_sparse_run(bl_conv_t *c, const float *x, float *y)
{
    /* Too little work for a hand-off (as the engine's PARALLEL_MIN_WORK,
     * counted in multiply-adds of 16 lanes): one thread does every share. */
    if (c->T == 1 || c->nnz * (uint64_t)c->OH * c->chunks < (1u << 15)) {
        prepare(c, x, 0, c->s.C);
        for (unsigned k = 0; k < c->T; k++)
            share_rows(c, y, k);
        return;
    }
    conv_job_t job = {.base = {.run = job_run, .finish = job_finish}, .c = c, .x = x, .y = y};
    eie_waiter_init(&job.w);
    eie_pool_submit_join(c->pool, &job.base);
    eie_error_t err;
    eie_waiter_wait(&job.w, 8 * eie_pool_spin(c->pool), NULL, &err);
}
