/*
 * baselines_conv.h - float convolution baselines for eie-bench --conv,
 * compiled like the fc baselines (-O3 -march=native -ffast-math):
 *   im2col    the input unfolded to [C/G * K * K][OH * OW] per group, for a
 *             dense sgemm (the Caffe way; the sgemm is OpenBLAS's)
 *   sparse    direct sparse convolution (the weights' nonzeros only, as in
 *             Park et al., "Faster CNNs with direct sparse convolutions",
 *             ICLR 2017): the input is padded and split by stride phase
 *             once per run, so that for each nonzero w[o][c][kh][kw] an
 *             output row y[o][oh][0..OW) += w * a contiguous input run,
 *             16 lanes per FMA, the row's accumulators in registers;
 *             sparse-a keeps the input in shifted copies so that every load
 *             is aligned (as the engine's direct conv does).
 * Batch 1; layout CHW, weights [O][C/G][K][K], output [O][OH][OW].
 */
#ifndef EIE_BENCH_BASELINES_CONV_H
#define EIE_BENCH_BASELINES_CONV_H

#include <stdint.h>

#include "pe/pool.h"

typedef struct bl_conv_shape {
    const char *name;
    int C, H, W; /* input */
    int O, K;    /* output channels, square kernel */
    int stride, pad, groups;
    double wdens; /* weights kept (Deep Compression, Han et al. 2016, Table 2 and 4) */
    double adens; /* nonzero input activations (assumed, see conv_bench.c) */
} bl_conv_shape_t;

static inline int bl_conv_oh(const bl_conv_shape_t *s)
{
    return (s->H + 2 * s->pad - s->K) / s->stride + 1;
}

static inline int bl_conv_ow(const bl_conv_shape_t *s)
{
    return (s->W + 2 * s->pad - s->K) / s->stride + 1;
}

/* Unfolds group g of x into col [C/G * K * K][OH * OW]. */
void bl_conv_im2col(const bl_conv_shape_t *s, const float *x, int g, float *col);

typedef struct bl_conv bl_conv_t;
/* The sparse form of w (threads 1..2; with 2, pool is a 2-PE pool, the
 * output channels split in halves of equal nonzeros); aligned: the input
 * in shifted copies so that every load is aligned. NULL on out of memory,
 * or when OW exceeds 64 (the accumulators of a row are 4 vectors). */
bl_conv_t *bl_conv_init(const bl_conv_shape_t *s, const float *w, const float *bias,
                        unsigned threads, eie_pool_t *pool, int aligned);
void bl_conv_free(bl_conv_t *c);
void bl_conv_sparse_run(bl_conv_t *c, const float *x, float *y);
/* Bytes of the sparse form (offsets and values). */
uint64_t bl_conv_bytes(const bl_conv_t *c);

#endif
