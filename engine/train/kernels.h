/*
 * kernels.h - the dense loops of training: FC forward and backward, and the
 * element-wise activations. Written as row-blocked axpy loops so that -O2
 * vectorises them and zero inputs (ReLU outputs, blank pixels) are skipped.
 */
#ifndef EIE_TRAIN_KERNELS_H
#define EIE_TRAIN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "eie/model.h"

/*
 * The hot loops are element-wise (c[j] += a * b[j]), so a vector unit of any
 * width gives the same bits as scalar code (-ffp-contract=off: no fused
 * multiply-add). Each is built for AVX2 and for the baseline, chosen when
 * the program loads; the files ask GCC for its full vectoriser cost model,
 * which -O2 does not use.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define EIE_TRAIN_SIMD __attribute__((target_clones("avx2", "default")))
#else
#define EIE_TRAIN_SIMD
#endif

/* wt (cols x rows) = transpose of w (rows x cols). */
void eie_transpose(const float *w, uint32_t rows, uint32_t cols, float *wt);

/* y (batch x out) = x (batch x in) . wt (in x out) + bias (out, may be NULL). */
void eie_fc_forward(const float *x, size_t batch, uint32_t in, const float *wt, const float *bias,
                    uint32_t out, float *y);

/* dw (out x in) = dy^T . x; db (out) = column sums of dy. Overwrites both. */
void eie_fc_backward_weights(const float *dy, const float *x, size_t batch, uint32_t out,
                             uint32_t in, float *dw, float *db);

/* In place on a (batch x dim). */
void eie_act_forward(eie_act_t act, float *a, size_t batch, uint32_t dim);

/* dy (batch x dim) becomes the gradient before the activation, given its output y. */
void eie_act_backward(eie_act_t act, const float *y, float *dy, size_t batch, uint32_t dim);

#endif
