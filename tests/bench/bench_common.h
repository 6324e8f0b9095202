/*
 * bench_common.h - what eie-bench's fc and conv tables share: the clock,
 * medians, the machine description printed at the top, the cache flush of
 * --cold, and option parsing that names the bad value.
 */
#ifndef EIE_BENCH_COMMON_H
#define EIE_BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Untimed runs of a method before each timed one (warm), in us; at least
 * one run. */
#define BENCH_WARM_US 3000.0

/* The exit status when a method's output disagrees with the reference. */
#define BENCH_EXIT_MISMATCH 3

double bench_now_us(void);
/* Median of v[0..n) (sorts v). */
double bench_median(double *v, int n);

/* Prints the CPU model, the ISA flags that matter to the kernels, the
 * timer's resolution (clock_getres and measured) and the last-level cache
 * size the flush assumes. */
void bench_print_machine(void);

/*
 * The --cold flush: every online core streams its own buffer of
 * per_core_bytes (0: twice the last-level cache a core can use, so that the
 * cores together stream several times it), so that no line of the timed
 * run's data is left in any core's L1/L2 or in the shared L3. Returns 0 or
 * -1 (out of memory, no threads).
 */
int bench_flush_init(size_t per_core_bytes);
void bench_flush(void);
void bench_flush_free(void);
/* What the flush streams, per core and cores; 0 before bench_flush_init. */
size_t bench_flush_bytes_per_core(void);
unsigned bench_flush_cores(void);

/* Prints the speed of the first two cores the process may use, alone and
 * together (a probe of a few tens of milliseconds, bench_common.c), and the
 * system's load average: other processes on the same cores make two-thread
 * runs measure contention; the reader should know. */
void bench_print_load(const char *when);
/* The clock the last bench_print_load measured, in GHz: the mean of the
 * two cores' (a chain of dependent adds, one a cycle), or 0 where it could
 * not be measured. */
double bench_clock_ghz(void);
/* Cycles an add of a loop of nothing but acc[row] += c over columns of
 * sorted rows, as bench_print_machine measured it at start: the floor of a
 * batch-1 column walk (one read-modify-write an entry); 0 if not measured. */
double bench_scatter_floor(void);

/* Parses a comma-separated list of at most max integers in [lo, hi] into
 * out; returns how many, or -1 after printing an error naming opt and the
 * bad value. */
int bench_parse_ints(const char *opt, const char *arg, int lo, int hi, int *out, int max);
/* Whether name is in the comma-separated list (NULL: every name). */
int bench_listed(const char *list, const char *name);
/* -1 after printing an error if some entry of the list is not in names
 * (NULL-terminated), else 0. */
int bench_check_list(const char *opt, const char *list, const char *const *names);

/* --export (eie_bench.c, conv_bench.c): writes dir/name.onnx (model as ONNX),
 * dir/name.x.f32 (nx floats of x) and dir/name.ref.f64 (ny doubles of ref,
 * then ny of tol); 0, or -1 with the path and the reason on stderr. */
struct eie_model;
int bench_export_layer(const char *dir, const char *name, const struct eie_model *model,
                       const float *x, size_t nx, const double *ref, const double *tol,
                       size_t ny);

#endif
