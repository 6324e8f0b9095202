/*
 * conv_bench.h - eie-bench --conv: convolution layers (LeNet-5's conv1-2,
 * AlexNet's conv1-5 at the densities Deep Compression reports) at batch 1,
 * on float baselines; the cpu column is a hook for the engine's conv path.
 */
#ifndef EIE_BENCH_CONV_H
#define EIE_BENCH_CONV_H

#include "bench_blas.h"

typedef struct conv_bench_opts {
    int reps, cold;
    double warm_us;
    const int *threads;
    int nt;
    const char *layers;       /* NULL: all */
    const char *methods;      /* NULL: all of cpu, sparse, blas, blas-f */
    const char *corrupt;      /* a method whose output is spoilt before the check */
    const char *export_dir;   /* --export: write each layer there, time nothing */
    const bench_blas_t *blas; /* [0] own detection, then forced cores */
    int n_blas;
} conv_bench_opts_t;

/* Names --layers accepts with --conv (NULL-terminated). */
extern const char *const conv_bench_layer_names[];
/* Runs the conv table; returns the process's exit status. */
int conv_bench_main(const conv_bench_opts_t *o);

#endif
