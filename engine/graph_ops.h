/*
 * graph_ops.h - the dense graph operations shared by the backends and the
 * dense reference (internal): pooling, global average pooling, concat and
 * softmax over an axis, on one sample in row-major order
 * (engine/FORMAT.md, "Nodes"). Each takes a slice of the work (channels
 * c0, c0 + cs, ...) so PEs can share a node.
 */
#ifndef EIE_GRAPH_OPS_H
#define EIE_GRAPH_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "act.h"
#include "eie/model.h"

/* max/avg pooling of channels c0, c0+cs, ... < C: in [C,H,W] -> out [C,Ho,Wo]. */
static inline void eie_op_pool2d(int is_max, const eie_pool2d_params_t *p, const float *in,
                                 uint32_t C, uint32_t H, uint32_t W, float *out, uint32_t Ho,
                                 uint32_t Wo, uint32_t c0, uint32_t cs)
{
    for (uint32_t c = c0; c < C; c += cs) {
        const float *x = in + (size_t)c * H * W;
        float *y = out + (size_t)c * Ho * Wo;
        for (uint32_t oy = 0; oy < Ho; oy++) {
            int64_t hs = (int64_t)oy * p->stride_h - p->pad_top;
            int64_t he = hs + p->kernel_h;
            if (he > (int64_t)H + p->pad_bottom)
                he = (int64_t)H + p->pad_bottom;
            for (uint32_t ox = 0; ox < Wo; ox++) {
                int64_t ws = (int64_t)ox * p->stride_w - p->pad_left;
                int64_t we = ws + p->kernel_w;
                if (we > (int64_t)W + p->pad_right)
                    we = (int64_t)W + p->pad_right;
                /* The divisor with padding counted: the window within the padded input. */
                int64_t padded = (he - hs) * (we - ws);
                int64_t y0 = hs < 0 ? 0 : hs, y1 = he > (int64_t)H ? (int64_t)H : he;
                int64_t x0 = ws < 0 ? 0 : ws, x1 = we > (int64_t)W ? (int64_t)W : we;
                if (is_max) {
                    float m = x[(size_t)y0 * W + (size_t)x0];
                    for (int64_t yy = y0; yy < y1; yy++)
                        for (int64_t xx = x0; xx < x1; xx++) {
                            float v = x[(size_t)yy * W + (size_t)xx];
                            m = v > m ? v : m;
                        }
                    y[(size_t)oy * Wo + ox] = m;
                } else {
                    float s = 0.0f;
                    for (int64_t yy = y0; yy < y1; yy++)
                        for (int64_t xx = x0; xx < x1; xx++)
                            s += x[(size_t)yy * W + (size_t)xx];
                    int64_t n = p->count_include_pad ? padded : (y1 - y0) * (x1 - x0);
                    y[(size_t)oy * Wo + ox] = s / (float)n;
                }
            }
        }
    }
}

/* Global average pooling of channels c0, c0+cs, ...: in [C,HW] -> out [C]. */
static inline void eie_op_global_avgpool(const float *in, uint32_t C, size_t HW, float *out,
                                         uint32_t c0, uint32_t cs)
{
    for (uint32_t c = c0; c < C; c += cs) {
        float s = 0.0f;
        for (size_t i = 0; i < HW; i++)
            s += in[(size_t)c * HW + i];
        out[c] = s / (float)HW;
    }
}

/* The sizes around an axis of a full shape: outer = dims[1..axis), n = dims[axis],
   inner = dims(axis..rank). */
static inline void eie_op_axis_split(const eie_shape_t *s, int32_t axis, size_t *outer, size_t *n,
                                     size_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int32_t k = 1; k < axis; k++)
        *outer *= (size_t)s->dims[k];
    *n = (size_t)s->dims[axis];
    for (uint32_t k = (uint32_t)axis + 1; k < s->rank; k++)
        *inner *= (size_t)s->dims[k];
}

/* Softmax over axis of one sample x of shape s, in place, for the vectors
   v = v0, v0+vs, ... of the outer*inner vectors. */
static inline void eie_op_softmax_axis(float *x, const eie_shape_t *s, int32_t axis, size_t v0,
                                       size_t vs)
{
    size_t outer, n, inner;
    eie_op_axis_split(s, axis, &outer, &n, &inner);
    for (size_t v = v0; v < outer * inner; v += vs) {
        size_t o = v / inner, i = v % inner;
        eie_act_softmax(x + o * n * inner + i, n, inner);
    }
}

/* Concat of one sample, one input: its outer slices o = o0, o0+os, ... of chunk floats
   land at out + o * out_stride (out already offset to the input's place on the axis). */
static inline void eie_op_concat_one(const float *in, size_t chunk, size_t outer,
                                     size_t out_stride, float *out, size_t o0, size_t os)
{
    for (size_t o = o0; o < outer; o += os)
        memcpy(out + o * out_stride, in + o * chunk, chunk * sizeof(float));
}

/*
 * One LSTM hidden unit's element-wise step (ONNX LSTM, default activations):
 * g holds the unit's four pre-activations in the stored row order i, o, f, c
 * (W x_t + R h_{t-1} + Wb + Rb); updates the cell *c and returns h_t.
 */
static inline float eie_op_lstm_unit(const float *g, float *c)
{
    float i = eie_sigmoidf(g[0]);
    float o = eie_sigmoidf(g[1]);
    float f = eie_sigmoidf(g[2]);
    float cand = eie_tanhf(g[3]);
    float cn = f * *c + i * cand;
    *c = cn;
    return o * eie_tanhf(cn);
}

/*
 * n units' steps at once, the gates split by kind: gi, go, gf, gc[j] unit
 * j's four pre-activations, c[j] its cell (updated), h[j] <- h_t. The
 * arithmetic of eie_op_lstm_unit, unit by unit, so the same bits, through
 * the select forms of act.h: a loop without branches or calls, which the
 * compiler vectorizes (an LSTM step's five exponentials a unit, one at a
 * time, were a third of models/charlm's step). Always inlined, so that
 * each cpu kernel variant compiles its own for its registers.
 */
static inline __attribute__((always_inline)) void
eie_op_lstm_cells(const float *restrict gi, const float *restrict go, const float *restrict gf,
                  const float *restrict gc, float *restrict c, float *restrict h, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        float i = eie_sigmoidf_sel(gi[j]);
        float o = eie_sigmoidf_sel(go[j]);
        float f = eie_sigmoidf_sel(gf[j]);
        float cand = eie_tanhf_sel(gc[j]);
        float cn = f * c[j] + i * cand;
        c[j] = cn;
        h[j] = o * eie_tanhf_sel(cn);
    }
}

#endif
