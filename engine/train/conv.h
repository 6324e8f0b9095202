/*
 * conv.h - the dense loops of training for image layers: conv2d (im2col and
 * a row-blocked sgemm), max and average pooling, global average pooling,
 * add and channel concat, forward and backward. One sample is C x H x W,
 * row-major; a batch is n samples one after the other (NCHW).
 *
 * The sgemm loops are axpy rows (c[i,:] += a * b[k,:]) so that -O2
 * vectorises them and a zero a (a pruned weight, a ReLU zero) costs nothing.
 */
#ifndef EIE_TRAIN_CONV_H
#define EIE_TRAIN_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "eie/model.h"

/* The shapes of a conv2d: input c x h x w, output cout x ho x wo. */
typedef struct eie_conv_geom {
    uint32_t c, h, w, cout, ho, wo;
    eie_conv2d_params_t p;
} eie_conv_geom_t;

/* Output size per axis of a convolution (FORMAT.md); 0 when the window does not fit. */
uint32_t eie_conv_out_dim(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad_begin,
                          uint32_t pad_end, uint32_t dilation);
/* Output size per axis of a pooling window, floor or ceil mode (FORMAT.md); 0 if none fits. */
uint32_t eie_pool_out_dim(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad_begin,
                          uint32_t pad_end, int ceil_mode);

/* Floats of the im2col buffer one sample needs: (C/groups*kh*kw) x (ho*wo). */
size_t eie_conv_col_floats(const eie_conv_geom_t *g);

/*
 * y (n x cout x ho x wo) = conv(x (n x c x h x w), w (cout x C/groups*kh*kw)) + b.
 * col: eie_conv_col_floats floats of scratch.
 */
void eie_conv2d_forward(const eie_conv_geom_t *g, const float *x, size_t n, const float *w,
                        const float *b, float *y, float *col);

/*
 * Given dy (n x cout x ho x wo): overwrites dw (cout x K) and db (cout) with
 * the batch sums, and, when dx is not NULL, overwrites dx (n x c x h x w).
 * col and dcol: eie_conv_col_floats floats each.
 */
void eie_conv2d_backward(const eie_conv_geom_t *g, const float *x, const float *dy, size_t n,
                         const float *w, float *dw, float *db, float *dx, float *col,
                         float *dcol);

/* Pooling of n samples of c x h x w into c x ho x wo. */
void eie_maxpool_forward(const eie_pool2d_params_t *p, const float *x, size_t n, uint32_t c,
                         uint32_t h, uint32_t w, uint32_t ho, uint32_t wo, float *y);
/* dx (overwritten) from dy: each output's gradient goes to the first maximum of its window. */
void eie_maxpool_backward(const eie_pool2d_params_t *p, const float *x, const float *dy, size_t n,
                          uint32_t c, uint32_t h, uint32_t w, uint32_t ho, uint32_t wo,
                          float *dx);
void eie_avgpool_forward(const eie_pool2d_params_t *p, const float *x, size_t n, uint32_t c,
                         uint32_t h, uint32_t w, uint32_t ho, uint32_t wo, float *y);
/* dx (overwritten) from dy: each output's gradient spread evenly over its divisor. */
void eie_avgpool_backward(const eie_pool2d_params_t *p, const float *dy, size_t n, uint32_t c,
                          uint32_t h, uint32_t w, uint32_t ho, uint32_t wo, float *dx);

/* y (n x c) = mean of each channel's hw values; backward spreads dy / hw (dx overwritten). */
void eie_gap_forward(const float *x, size_t n, uint32_t c, uint32_t hw, float *y);
void eie_gap_backward(const float *dy, size_t n, uint32_t c, uint32_t hw, float *dx);

/* Channel concat of two batches: sample r is a's na floats then b's nb floats. */
void eie_concat_forward(const float *a, size_t na, const float *b, size_t nb, size_t n, float *y);
/* Splits dy back into da and db (either may be NULL: not needed). */
void eie_concat_backward(const float *dy, size_t na, size_t nb, size_t n, float *da, float *db);

/* y += x over count floats (add's forward with y = a copy of a, and gradient accumulation). */
void eie_add_into(float *y, const float *x, size_t count);

#endif
