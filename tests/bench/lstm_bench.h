/*
 * lstm_bench.h - eie-bench --lstm: one step of an LSTM (the sparse 4H x
 * (I + H) matrix over [x_t, h_{t-1}] plus the element-wise gates) for B
 * sequences, B = 1 as EIE times it, on the cpu backend (B > 1: the
 * sequences side by side, eie_net_run_sequences) against the float sparse
 * baselines and OpenBLAS at batch B, every method doing the same gate math.
 */
#ifndef EIE_BENCH_LSTM_H
#define EIE_BENCH_LSTM_H

#include "bench_blas.h"

typedef struct lstm_bench_opts {
    int reps, cold;
    const int *batches; /* sequences a step: 1 .. 16 */
    int nb;
    double warm_us;
    const int *threads;
    int nt;
    const char *layers;       /* NULL: NT-LSTM, unless model is given */
    const char *model;        /* a .eie file: its first lstm node is a layer too */
    const char *methods;      /* NULL: all of cpu, csc, csc-s, csr, csr-g, blas, blas-f */
    const char *corrupt;      /* a method whose output is spoilt before the check */
    const bench_blas_t *blas; /* [0] own detection, then forced cores */
    int n_blas;
} lstm_bench_opts_t;

/* Names --layers accepts with --lstm (NULL-terminated). */
extern const char *const lstm_bench_layer_names[];
/* Runs the lstm table; returns the process's exit status. */
int lstm_bench_main(const lstm_bench_opts_t *o);

#endif
