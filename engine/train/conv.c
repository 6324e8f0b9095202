/* Dense image-layer kernels of training; see conv.h. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif
#include "train/conv.h"
#include "train/kernels.h"

#include <string.h>

uint32_t eie_conv_out_dim(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad_begin,
                          uint32_t pad_end, uint32_t dilation)
{
    uint64_t span = (uint64_t)in + pad_begin + pad_end;
    uint64_t k = (uint64_t)dilation * (kernel - 1) + 1;
    if (stride == 0 || k > span)
        return 0;
    return (uint32_t)((span - k) / stride + 1);
}

uint32_t eie_pool_out_dim(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad_begin,
                          uint32_t pad_end, int ceil_mode)
{
    uint64_t span = (uint64_t)in + pad_begin + pad_end;
    if (stride == 0 || kernel > span)
        return 0;
    uint64_t o = ceil_mode ? (span - kernel + stride - 1) / stride + 1 : (span - kernel) / stride + 1;
    /* A ceil-mode window that would start in the end padding is dropped (PyTorch, ONNX). */
    if (ceil_mode && o > 1 && (o - 1) * stride >= (uint64_t)in + pad_begin)
        o--;
    return (uint32_t)o;
}

size_t eie_conv_col_floats(const eie_conv_geom_t *g)
{
    size_t k = (size_t)(g->c / g->p.groups) * g->p.kernel_h * g->p.kernel_w;
    return k * g->ho * g->wo;
}

/* The outputs o in [*lo, *hi) whose tap o * stride + off falls inside [0, in). */
static void valid_range(uint32_t out, uint32_t stride, int64_t off, uint32_t in, uint32_t *lo,
                        uint32_t *hi)
{
    /* o * stride + off >= 0  and  o * stride + off < in */
    int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t h = (int64_t)in - off <= 0 ? 0 : ((int64_t)in - off + stride - 1) / stride;
    *lo = (uint32_t)(l < out ? l : out);
    *hi = (uint32_t)(h < out ? (h > *lo ? h : *lo) : out);
}

/*
 * The patches of group gi of one sample: element (k, p) at col[k * sk + p * sp],
 * k = (ci * kh + ky) * kw + kx, p = oy * wo + ox. sk = P, sp = 1 gives the
 * K x P matrix of the forward pass; sk = 1, sp = K its transpose. Taps in
 * the padding read 0; the in-range span of each output row is found once.
 */
EIE_TRAIN_SIMD static void im2col(const eie_conv_geom_t *g, const float *x, uint32_t gi,
                                  float *col, size_t sk, size_t sp)
{
    const eie_conv2d_params_t *p = &g->p;
    uint32_t cg = g->c / p->groups;
    size_t k = 0;
    for (uint32_t ci = 0; ci < cg; ci++) {
        const float *xc = x + (size_t)(gi * cg + ci) * g->h * g->w;
        for (uint32_t ky = 0; ky < p->kernel_h; ky++)
            for (uint32_t kx = 0; kx < p->kernel_w; kx++, k++) {
                int64_t offx = (int64_t)kx * p->dilation_w - p->pad_left;
                uint32_t lo, hi;
                valid_range(g->wo, p->stride_w, offx, g->w, &lo, &hi);
                float *dst = col + k * sk;
                for (uint32_t oy = 0; oy < g->ho; oy++) {
                    int64_t iy = (int64_t)oy * p->stride_h - p->pad_top + (int64_t)ky * p->dilation_h;
                    size_t row = (size_t)oy * g->wo;
                    if (iy < 0 || iy >= g->h) {
                        for (uint32_t ox = 0; ox < g->wo; ox++)
                            dst[(row + ox) * sp] = 0.0f;
                        continue;
                    }
                    /* Tap of ox: xr[ox * stride + offx], inside the row for lo <= ox < hi. */
                    const float *xr = xc + (size_t)iy * g->w;
                    for (uint32_t ox = 0; ox < lo; ox++)
                        dst[(row + ox) * sp] = 0.0f;
                    for (uint32_t ox = lo; ox < hi; ox++)
                        dst[(row + ox) * sp] = xr[(int64_t)ox * p->stride_w + offx];
                    for (uint32_t ox = hi; ox < g->wo; ox++)
                        dst[(row + ox) * sp] = 0.0f;
                }
            }
    }
}

/* dx of group gi of one sample += the K x P matrix dcol folded back onto the image. */
EIE_TRAIN_SIMD static void col2im_add(const eie_conv_geom_t *g, const float *dcol, uint32_t gi, float *dx)
{
    const eie_conv2d_params_t *p = &g->p;
    uint32_t cg = g->c / p->groups;
    size_t P = (size_t)g->ho * g->wo, k = 0;
    for (uint32_t ci = 0; ci < cg; ci++) {
        float *xc = dx + (size_t)(gi * cg + ci) * g->h * g->w;
        for (uint32_t ky = 0; ky < p->kernel_h; ky++)
            for (uint32_t kx = 0; kx < p->kernel_w; kx++, k++) {
                const float *row = dcol + k * P;
                size_t pi = 0;
                for (uint32_t oy = 0; oy < g->ho; oy++) {
                    int64_t iy = (int64_t)oy * p->stride_h - p->pad_top + (int64_t)ky * p->dilation_h;
                    for (uint32_t ox = 0; ox < g->wo; ox++, pi++) {
                        int64_t ix =
                            (int64_t)ox * p->stride_w - p->pad_left + (int64_t)kx * p->dilation_w;
                        if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
                            xc[(size_t)iy * g->w + (size_t)ix] += row[pi];
                    }
                }
            }
    }
}

/* Eight floats as one value: GCC lowers it to what the target has (AVX, or two SSE halves). */
typedef float v8f __attribute__((vector_size(32)));

/* v = eight floats from p (a macro: a function returning v8f would change the ABI). */
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(v))

/*
 * C (m x n, row stride ldc) += A (m x k, row stride lda) . B (k x n, rows
 * contiguous). A 4 x 16 tile of C stays in registers over all of k; a zero
 * in A skips its row of B. Each element is c + a0*b0 + a1*b1 + ... in the
 * order of k, whatever the tile, so every path gives the same bits.
 */
EIE_TRAIN_SIMD static void sgemm_nn(size_t m, size_t n, size_t k, const float *a, size_t lda,
                                    const float *b, float *c, size_t ldc)
{
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const float *a0 = a + i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        float *c0 = c + i * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
        size_t j = 0;
        for (; j + 16 <= n; j += 16) {
            v8f t00, t01, t10, t11, t20, t21, t30, t31, b0, b1;
            LOAD8(t00, c0 + j), LOAD8(t01, c0 + j + 8), LOAD8(t10, c1 + j);
            LOAD8(t11, c1 + j + 8), LOAD8(t20, c2 + j), LOAD8(t21, c2 + j + 8);
            LOAD8(t30, c3 + j), LOAD8(t31, c3 + j + 8);
            for (size_t q = 0; q < k; q++) {
                float v0 = a0[q], v1 = a1[q], v2 = a2[q], v3 = a3[q];
                if (v0 == 0.0f && v1 == 0.0f && v2 == 0.0f && v3 == 0.0f)
                    continue;
                LOAD8(b0, b + q * n + j), LOAD8(b1, b + q * n + j + 8);
                t00 += v0 * b0, t01 += v0 * b1;
                t10 += v1 * b0, t11 += v1 * b1;
                t20 += v2 * b0, t21 += v2 * b1;
                t30 += v3 * b0, t31 += v3 * b1;
            }
            memcpy(c0 + j, &t00, 32), memcpy(c0 + j + 8, &t01, 32);
            memcpy(c1 + j, &t10, 32), memcpy(c1 + j + 8, &t11, 32);
            memcpy(c2 + j, &t20, 32), memcpy(c2 + j + 8, &t21, 32);
            memcpy(c3 + j, &t30, 32), memcpy(c3 + j + 8, &t31, 32);
        }
        if (j == n)
            continue;
        /* The last n - j columns, a row of B at a time. */
        for (size_t q = 0; q < k; q++) {
            float v0 = a0[q], v1 = a1[q], v2 = a2[q], v3 = a3[q];
            if (v0 == 0.0f && v1 == 0.0f && v2 == 0.0f && v3 == 0.0f)
                continue;
            const float *restrict br = b + q * n;
            for (size_t u = j; u < n; u++) {
                float bv = br[u];
                c0[u] += v0 * bv;
                c1[u] += v1 * bv;
                c2[u] += v2 * bv;
                c3[u] += v3 * bv;
            }
        }
    }
    for (; i < m; i++) {
        const float *a0 = a + i * lda;
        float *restrict c0 = c + i * ldc;
        for (size_t q = 0; q < k; q++) {
            float v0 = a0[q];
            if (v0 == 0.0f)
                continue;
            const float *restrict br = b + q * n;
            for (size_t j = 0; j < n; j++)
                c0[j] += v0 * br[j];
        }
    }
}

/*
 * C (k x n) += A^T . B with A (m x k, row stride lda) and B (m x n): row q
 * of C gathers column q of A. Tiled as sgemm_nn, 4 rows of C by 16 columns
 * in registers over all of m, each element summed in the order of m.
 */
EIE_TRAIN_SIMD static void sgemm_tn(size_t m, size_t n, size_t k, const float *a, size_t lda,
                                    const float *b, float *c)
{
    size_t q = 0;
    for (; q + 4 <= k; q += 4) {
        float *c0 = c + q * n, *c1 = c0 + n, *c2 = c1 + n, *c3 = c2 + n;
        size_t j = 0;
        for (; j + 16 <= n; j += 16) {
            v8f t00, t01, t10, t11, t20, t21, t30, t31, b0, b1;
            LOAD8(t00, c0 + j), LOAD8(t01, c0 + j + 8), LOAD8(t10, c1 + j);
            LOAD8(t11, c1 + j + 8), LOAD8(t20, c2 + j), LOAD8(t21, c2 + j + 8);
            LOAD8(t30, c3 + j), LOAD8(t31, c3 + j + 8);
            for (size_t i = 0; i < m; i++) {
                const float *ai = a + i * lda + q;
                float v0 = ai[0], v1 = ai[1], v2 = ai[2], v3 = ai[3];
                if (v0 == 0.0f && v1 == 0.0f && v2 == 0.0f && v3 == 0.0f)
                    continue;
                LOAD8(b0, b + i * n + j), LOAD8(b1, b + i * n + j + 8);
                t00 += v0 * b0, t01 += v0 * b1;
                t10 += v1 * b0, t11 += v1 * b1;
                t20 += v2 * b0, t21 += v2 * b1;
                t30 += v3 * b0, t31 += v3 * b1;
            }
            memcpy(c0 + j, &t00, 32), memcpy(c0 + j + 8, &t01, 32);
            memcpy(c1 + j, &t10, 32), memcpy(c1 + j + 8, &t11, 32);
            memcpy(c2 + j, &t20, 32), memcpy(c2 + j + 8, &t21, 32);
            memcpy(c3 + j, &t30, 32), memcpy(c3 + j + 8, &t31, 32);
        }
        for (size_t i = 0; j < n && i < m; i++) {
            const float *ai = a + i * lda + q;
            float v0 = ai[0], v1 = ai[1], v2 = ai[2], v3 = ai[3];
            if (v0 == 0.0f && v1 == 0.0f && v2 == 0.0f && v3 == 0.0f)
                continue;
            const float *restrict bi = b + i * n;
            for (size_t u = j; u < n; u++) {
                float bv = bi[u];
                c0[u] += v0 * bv;
                c1[u] += v1 * bv;
                c2[u] += v2 * bv;
                c3[u] += v3 * bv;
            }
        }
    }
    for (; q < k; q++) {
        float *restrict cq = c + q * n;
        for (size_t i = 0; i < m; i++) {
            float v = a[i * lda + q];
            if (v == 0.0f)
                continue;
            const float *restrict bi = b + i * n;
            for (size_t j = 0; j < n; j++)
                cq[j] += v * bi[j];
        }
    }
}

void eie_conv2d_forward(const eie_conv_geom_t *g, const float *x, size_t n, const float *w,
                        const float *b, float *y, float *col)
{
    uint32_t groups = g->p.groups, cg_out = g->cout / groups;
    size_t K = (size_t)(g->c / groups) * g->p.kernel_h * g->p.kernel_w;
    size_t P = (size_t)g->ho * g->wo, in_size = (size_t)g->c * g->h * g->w;
    for (size_t r = 0; r < n; r++) {
        float *yr = y + r * g->cout * P;
        for (uint32_t co = 0; co < g->cout; co++)
            for (size_t q = 0; q < P; q++)
                yr[co * P + q] = b ? b[co] : 0.0f;
        for (uint32_t gi = 0; gi < groups; gi++) {
            im2col(g, x + r * in_size, gi, col, P, 1);
            sgemm_nn(cg_out, P, K, w + (size_t)gi * cg_out * K, K, col, yr + gi * cg_out * P, P);
        }
    }
}

void eie_conv2d_backward(const eie_conv_geom_t *g, const float *x, const float *dy, size_t n,
                         const float *w, float *dw, float *db, float *dx, float *col,
                         float *dcol)
{
    uint32_t groups = g->p.groups, cg_out = g->cout / groups;
    size_t K = (size_t)(g->c / groups) * g->p.kernel_h * g->p.kernel_w;
    size_t P = (size_t)g->ho * g->wo, in_size = (size_t)g->c * g->h * g->w;
    memset(dw, 0, (size_t)g->cout * K * sizeof *dw);
    memset(db, 0, g->cout * sizeof *db);
    if (dx)
        memset(dx, 0, n * in_size * sizeof *dx);
    for (size_t r = 0; r < n; r++) {
        const float *dyr = dy + r * g->cout * P;
        for (uint32_t co = 0; co < g->cout; co++) {
            float s = 0.0f;
            for (size_t q = 0; q < P; q++)
                s += dyr[co * P + q];
            db[co] += s;
        }
        for (uint32_t gi = 0; gi < groups; gi++) {
            const float *dyg = dyr + (size_t)gi * cg_out * P;
            /* dW (cout_g x K) += dy (cout_g x P) . col^T, col^T laid out P x K. */
            im2col(g, x + r * in_size, gi, col, 1, K);
            sgemm_nn(cg_out, K, P, dyg, P, col, dw + (size_t)gi * cg_out * K, K);
            if (dx == NULL)
                continue;
            /* dcol (K x P) = W^T . dy, folded back onto dx. */
            memset(dcol, 0, K * P * sizeof *dcol);
            sgemm_tn(cg_out, P, K, w + (size_t)gi * cg_out * K, K, dyg, dcol);
            col2im_add(g, dcol, gi, dx + r * in_size);
        }
    }
}

/* The window of output o along one axis: [start, end) in input coordinates. */
static void window(uint32_t o, uint32_t kernel, uint32_t stride, uint32_t pad_begin, int64_t *start,
                   int64_t *end)
{
    *start = (int64_t)o * stride - pad_begin;
    *end = *start + kernel;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Offset in the h x w plane of the first maximum of output (oy, ox)'s window. */
static inline size_t argmax(const eie_pool2d_params_t *p, const float *xc, uint32_t h, uint32_t w,
                            uint32_t oy, uint32_t ox)
{
    int64_t y0, y1, x0, x1;
    window(oy, p->kernel_h, p->stride_h, p->pad_top, &y0, &y1);
    window(ox, p->kernel_w, p->stride_w, p->pad_left, &x0, &x1);
    size_t ya = (size_t)max64(y0, 0), yb = (size_t)min64(y1, h);
    size_t xa = (size_t)max64(x0, 0), xb = (size_t)min64(x1, w);
    size_t best = ya * w + xa;
    float m = xc[best];
    for (size_t iy = ya; iy < yb; iy++) {
        const float *row = xc + iy * w;
        for (size_t ix = xa; ix < xb; ix++)
            if (row[ix] > m)
                m = row[ix], best = iy * w + ix;
    }
    return best;
}

void eie_maxpool_forward(const eie_pool2d_params_t *p, const float *x, size_t n, uint32_t c,
                         uint32_t h, uint32_t w, uint32_t ho, uint32_t wo, float *y)
{
    for (size_t plane = 0; plane < n * c; plane++) {
        const float *xc = x + plane * h * w;
        float *yc = y + plane * ho * wo;
        for (uint32_t oy = 0; oy < ho; oy++)
            for (uint32_t ox = 0; ox < wo; ox++)
                yc[oy * wo + ox] = xc[argmax(p, xc, h, w, oy, ox)];
    }
}

void eie_maxpool_backward(const eie_pool2d_params_t *p, const float *x, const float *dy, size_t n,
                          uint32_t c, uint32_t h, uint32_t w, uint32_t ho, uint32_t wo, float *dx)
{
    memset(dx, 0, n * c * h * w * sizeof *dx);
    for (size_t plane = 0; plane < n * c; plane++) {
        const float *xc = x + plane * h * w;
        const float *dyc = dy + plane * ho * wo;
        float *dxc = dx + plane * h * w;
        for (uint32_t oy = 0; oy < ho; oy++)
            for (uint32_t ox = 0; ox < wo; ox++)
                dxc[argmax(p, xc, h, w, oy, ox)] += dyc[oy * wo + ox];
    }
}

/*
 * The divisor of an average (FORMAT.md): the window's elements inside the
 * input, or inside the padded input with count_include_pad.
 */
static int64_t avg_divisor(const eie_pool2d_params_t *p, uint32_t h, uint32_t w, int64_t y0,
                           int64_t y1, int64_t x0, int64_t x1)
{
    int64_t lo_y = p->count_include_pad ? -(int64_t)p->pad_top : 0;
    int64_t hi_y = p->count_include_pad ? (int64_t)h + p->pad_bottom : h;
    int64_t lo_x = p->count_include_pad ? -(int64_t)p->pad_left : 0;
    int64_t hi_x = p->count_include_pad ? (int64_t)w + p->pad_right : w;
    int64_t dy = min64(y1, hi_y) - max64(y0, lo_y), dx = min64(x1, hi_x) - max64(x0, lo_x);
    return dy > 0 && dx > 0 ? dy * dx : 0;
}

void eie_avgpool_forward(const eie_pool2d_params_t *p, const float *x, size_t n, uint32_t c,
                         uint32_t h, uint32_t w, uint32_t ho, uint32_t wo, float *y)
{
    for (size_t plane = 0; plane < n * c; plane++) {
        const float *xc = x + plane * h * w;
        float *yc = y + plane * ho * wo;
        for (uint32_t oy = 0; oy < ho; oy++)
            for (uint32_t ox = 0; ox < wo; ox++) {
                int64_t y0, y1, x0, x1;
                window(oy, p->kernel_h, p->stride_h, p->pad_top, &y0, &y1);
                window(ox, p->kernel_w, p->stride_w, p->pad_left, &x0, &x1);
                int64_t div = avg_divisor(p, h, w, y0, y1, x0, x1);
                float s = 0.0f;
                for (int64_t iy = max64(y0, 0); iy < min64(y1, h); iy++)
                    for (int64_t ix = max64(x0, 0); ix < min64(x1, w); ix++)
                        s += xc[(size_t)iy * w + (size_t)ix];
                yc[oy * wo + ox] = div ? s / (float)div : 0.0f;
            }
    }
}

void eie_avgpool_backward(const eie_pool2d_params_t *p, const float *dy, size_t n, uint32_t c,
                          uint32_t h, uint32_t w, uint32_t ho, uint32_t wo, float *dx)
{
    memset(dx, 0, n * c * h * w * sizeof *dx);
    for (size_t plane = 0; plane < n * c; plane++) {
        const float *dyc = dy + plane * ho * wo;
        float *dxc = dx + plane * h * w;
        for (uint32_t oy = 0; oy < ho; oy++)
            for (uint32_t ox = 0; ox < wo; ox++) {
                int64_t y0, y1, x0, x1;
                window(oy, p->kernel_h, p->stride_h, p->pad_top, &y0, &y1);
                window(ox, p->kernel_w, p->stride_w, p->pad_left, &x0, &x1);
                int64_t div = avg_divisor(p, h, w, y0, y1, x0, x1);
                if (div == 0)
                    continue;
                float v = dyc[oy * wo + ox] / (float)div;
                for (int64_t iy = max64(y0, 0); iy < min64(y1, h); iy++)
                    for (int64_t ix = max64(x0, 0); ix < min64(x1, w); ix++)
                        dxc[(size_t)iy * w + (size_t)ix] += v;
            }
    }
}

void eie_gap_forward(const float *x, size_t n, uint32_t c, uint32_t hw, float *y)
{
    for (size_t plane = 0; plane < n * c; plane++) {
        float s = 0.0f;
        for (uint32_t i = 0; i < hw; i++)
            s += x[plane * hw + i];
        y[plane] = s / (float)hw;
    }
}

void eie_gap_backward(const float *dy, size_t n, uint32_t c, uint32_t hw, float *dx)
{
    for (size_t plane = 0; plane < n * c; plane++) {
        float v = dy[plane] / (float)hw;
        for (uint32_t i = 0; i < hw; i++)
            dx[plane * hw + i] = v;
    }
}

void eie_concat_forward(const float *a, size_t na, const float *b, size_t nb, size_t n, float *y)
{
    for (size_t r = 0; r < n; r++) {
        memcpy(y + r * (na + nb), a + r * na, na * sizeof *y);
        memcpy(y + r * (na + nb) + na, b + r * nb, nb * sizeof *y);
    }
}

void eie_concat_backward(const float *dy, size_t na, size_t nb, size_t n, float *da, float *db)
{
    for (size_t r = 0; r < n; r++) {
        if (da)
            memcpy(da + r * na, dy + r * (na + nb), na * sizeof *da);
        if (db)
            memcpy(db + r * nb, dy + r * (na + nb) + na, nb * sizeof *db);
    }
}

void eie_add_into(float *y, const float *x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        y[i] += x[i];
}
