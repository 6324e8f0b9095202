/*
 * conv_bench.h - eie-bench --conv: convolution layers (LeNet-5's, AlexNet's
 * conv1-conv5 at Deep Compression's densities) against float baselines.
 */
#ifndef EIE_BENCH_CONV_H
#define EIE_BENCH_CONV_H

/* Runs the conv table; returns the process's exit status. */
int conv_bench_main(int reps, int cold, double warm_us, long flush_mb, const char *methods);

#endif
