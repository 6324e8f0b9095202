/* Dense training kernels; see kernels.h. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif
#include "train/kernels.h"

#include <math.h>
#include <string.h>

#include "act.h"

void eie_transpose(const float *w, uint32_t rows, uint32_t cols, float *wt)
{
    /* 32 x 32 tiles keep both sides in L1. */
    for (uint32_t r0 = 0; r0 < rows; r0 += 32)
        for (uint32_t c0 = 0; c0 < cols; c0 += 32) {
            uint32_t r1 = r0 + 32 < rows ? r0 + 32 : rows;
            uint32_t c1 = c0 + 32 < cols ? c0 + 32 : cols;
            for (uint32_t r = r0; r < r1; r++)
                for (uint32_t c = c0; c < c1; c++)
                    wt[(size_t)c * rows + r] = w[(size_t)r * cols + c];
        }
}

static void init_rows(float *y, size_t n, uint32_t out, const float *bias)
{
    for (size_t r = 0; r < n; r++) {
        if (bias)
            memcpy(y + r * out, bias, out * sizeof *y);
        else
            memset(y + r * out, 0, out * sizeof *y);
    }
}

EIE_TRAIN_SIMD void eie_fc_forward(const float *x, size_t batch, uint32_t in, const float *wt, const float *bias,
                    uint32_t out, float *y)
{
    init_rows(y, batch, out, bias);
    size_t r = 0;
    /* Four rows at a time: each row of wt is read once for four outputs. */
    for (; r + 4 <= batch; r += 4) {
        const float *x0 = x + r * in, *x1 = x0 + in, *x2 = x1 + in, *x3 = x2 + in;
        float *restrict y0 = y + r * out, *restrict y1 = y0 + out;
        float *restrict y2 = y1 + out, *restrict y3 = y2 + out;
        for (uint32_t i = 0; i < in; i++) {
            float a0 = x0[i], a1 = x1[i], a2 = x2[i], a3 = x3[i];
            if (a0 == 0.0f && a1 == 0.0f && a2 == 0.0f && a3 == 0.0f)
                continue;
            const float *restrict w = wt + (size_t)i * out;
            for (uint32_t o = 0; o < out; o++) {
                float v = w[o];
                y0[o] += a0 * v;
                y1[o] += a1 * v;
                y2[o] += a2 * v;
                y3[o] += a3 * v;
            }
        }
    }
    for (; r < batch; r++) {
        const float *x0 = x + r * in;
        float *restrict y0 = y + r * out;
        for (uint32_t i = 0; i < in; i++) {
            float a0 = x0[i];
            if (a0 == 0.0f)
                continue;
            const float *restrict w = wt + (size_t)i * out;
            for (uint32_t o = 0; o < out; o++)
                y0[o] += a0 * w[o];
        }
    }
}

EIE_TRAIN_SIMD void eie_fc_backward_weights(const float *dy, const float *x, size_t batch, uint32_t out,
                             uint32_t in, float *dw, float *db)
{
    memset(dw, 0, (size_t)out * in * sizeof *dw);
    memset(db, 0, out * sizeof *db);
    for (size_t r = 0; r < batch; r++)
        for (uint32_t o = 0; o < out; o++)
            db[o] += dy[r * out + o];
    uint32_t o = 0;
    for (; o + 4 <= out; o += 4) {
        float *restrict w0 = dw + (size_t)o * in, *restrict w1 = w0 + in;
        float *restrict w2 = w1 + in, *restrict w3 = w2 + in;
        for (size_t r = 0; r < batch; r++) {
            const float *d = dy + r * out + o;
            float d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
            if (d0 == 0.0f && d1 == 0.0f && d2 == 0.0f && d3 == 0.0f)
                continue;
            const float *restrict xr = x + r * in;
            for (uint32_t i = 0; i < in; i++) {
                float v = xr[i];
                w0[i] += d0 * v;
                w1[i] += d1 * v;
                w2[i] += d2 * v;
                w3[i] += d3 * v;
            }
        }
    }
    for (; o < out; o++) {
        float *restrict w0 = dw + (size_t)o * in;
        for (size_t r = 0; r < batch; r++) {
            float d0 = dy[r * out + o];
            if (d0 == 0.0f)
                continue;
            const float *restrict xr = x + r * in;
            for (uint32_t i = 0; i < in; i++)
                w0[i] += d0 * xr[i];
        }
    }
}

void eie_act_forward(eie_act_t act, float *a, size_t batch, uint32_t dim)
{
    size_t n = batch * dim;
    switch (act) {
    case EIE_ACT_IDENTITY:
        break;
    /* As inference computes them (act.h): a vectorized loop per activation. */
    case EIE_ACT_RELU:
    case EIE_ACT_SIGMOID:
    case EIE_ACT_TANH:
        eie_act_apply_n(act, a, a, n);
        break;
    case EIE_ACT_SOFTMAX:
        for (size_t r = 0; r < batch; r++) {
            float *v = a + r * dim, max = v[0], sum = 0.0f;
            for (uint32_t i = 1; i < dim; i++)
                max = v[i] > max ? v[i] : max;
            for (uint32_t i = 0; i < dim; i++) {
                v[i] = expf(v[i] - max);
                sum += v[i];
            }
            for (uint32_t i = 0; i < dim; i++)
                v[i] /= sum;
        }
        break;
    }
}

void eie_act_backward(eie_act_t act, const float *y, float *dy, size_t batch, uint32_t dim)
{
    size_t n = batch * dim;
    switch (act) {
    case EIE_ACT_IDENTITY:
        break;
    case EIE_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case EIE_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            dy[i] *= y[i] * (1.0f - y[i]);
        break;
    case EIE_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            dy[i] *= 1.0f - y[i] * y[i];
        break;
    case EIE_ACT_SOFTMAX:
        /* Jacobian-vector product: dx = y * (dy - <dy, y>). */
        for (size_t r = 0; r < batch; r++) {
            const float *yr = y + r * dim;
            float *d = dy + r * dim, dot = 0.0f;
            for (uint32_t i = 0; i < dim; i++)
                dot += d[i] * yr[i];
            for (uint32_t i = 0; i < dim; i++)
                d[i] = yr[i] * (d[i] - dot);
        }
        break;
    }
}
