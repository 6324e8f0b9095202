/*
 * report.h - what eiectl prints about results: exact latency percentiles,
 * top-K of an output vector, and the small JSON writer the --json outputs
 * share.
 */
#ifndef EIECTL_REPORT_H
#define EIECTL_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Sorts n latencies ascending in place. */
void eiectl_latency_sort(uint64_t *v, size_t n);

/*
 * Nearest-rank percentile p in [0, 100] of n > 0 ascending values: the
 * smallest recorded value that at least p% of the values do not exceed.
 * Always one of the recorded values, never an interpolation.
 */
uint64_t eiectl_percentile(const uint64_t *sorted, size_t n, double p);

/* Latency summary of a run, in nanoseconds; all zero when count is 0. */
typedef struct eiectl_latency_summary {
    size_t count;
    uint64_t min, p50, p90, p99, max;
    double mean;
} eiectl_latency_summary_t;

/* Sorts v (n values) and summarises it into summary_out. */
void eiectl_latency_summarize(uint64_t *v, size_t n, eiectl_latency_summary_t *summary_out);

/*
 * Writes to idx_out the indices of the min(k, n) largest values of v, best
 * first; ties go to the lower index, NaN ranks last. Returns how many were
 * written. idx_out must hold min(k, n) entries.
 */
size_t eiectl_top_k(const float *v, size_t n, size_t k, size_t *idx_out);

/* Writes s as a JSON string literal (quoted, escaped; invalid UTF-8 bytes become U+FFFD). */
void eiectl_json_string(FILE *out, const char *s);

/* Same for n bytes that need not be NUL-terminated. */
void eiectl_json_string_n(FILE *out, const char *s, size_t n);

/* Writes a float32 value so it reads back exactly; NaN and infinities become null. */
void eiectl_json_float(FILE *out, float v);

/* Writes a double with up to 17 significant digits; NaN and infinities become null. */
void eiectl_json_double(FILE *out, double v);

/* Prints "eiectl NAME: msg" and a pointer to --help to stderr; returns 2, for use as
   `return eiectl_usage_error(...)`. */
int eiectl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
