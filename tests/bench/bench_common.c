/*
 * Shared parts of eie-bench (bench_common.h).
 */
#define _GNU_SOURCE /* pthread_setaffinity_np, for the core probe */
#include "bench_common.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "backend.h"
#include "eie/onnx.h"
#include "pe/pool.h"

double bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- the machine ---------------------------------------------------------- */

static int cpu_is_amd(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid(0, &a, &b, &c, &d))
        return b == 0x68747541u; /* "Auth"enticAMD */
#endif
    return 0;
}

/* The last-level cache one core can fill. A VM may report a whole AMD
 * package's L3 (508 MB on the EPYC here), but a Zen core's L3 is its
 * CCD's (32 MB; 96 MB with 3D V-Cache): take 32 MB then. */
static size_t llc_bytes(const char **note_out)
{
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    size_t llc = l3 > 0 ? (size_t)l3 : l2 > 0 ? (size_t)l2 : 0;
    *note_out = l3 > 0 ? "L3, as reported" : "L2 (no L3 reported)";
    if (llc == 0) {
        llc = (size_t)32 << 20;
        *note_out = "none reported; assumed";
    } else if (cpu_is_amd() && llc > ((size_t)96 << 20)) {
        llc = (size_t)32 << 20;
        *note_out = "one CCD's L3; the reported L3 is the package's";
    }
    return llc;
}

/* ---- the two cores -------------------------------------------------------- */

/* What two-thread times can be read against. On the shared VM here the
 * second vCPU sometimes adds little: for seconds to minutes two-thread runs
 * of the engine and of the baselines alike gained 1.1-1.4x over one, where
 * before and after they gained 1.8-2x. So a fixed load of the kernels'
 * kind (an entry read, then 64 bytes read at random in a 256 KiB buffer
 * of the thread's own and added: L2, as a batch's activations) is timed on
 * each of the first two cores the process may use, alone, and on both at
 * once, at the start and at the end of every run. */
#define PROBE_BYTES   (256u << 10)
#define PROBE_INDICES 4096u
#define PROBE_READS   (1u << 21)
#define PROBE_TRIES   3

/* 16 bytes, a vector every x86-64 has (a 64-byte generic vector would go
   through the stack in this file's plain -O build); four to a line */
typedef float probe_vec_t __attribute__((vector_size(16)));
#define PROBE_LINE 4

typedef struct probe {
    int cpu;
    const uint16_t *idx;
    probe_vec_t *buf;
    double ns; /* a read, the median of PROBE_TRIES; < 0: not pinned */
    float sink;
    pthread_barrier_t *start; /* both threads begin together, or NULL */
} probe_t;

static void *probe_run(void *arg)
{
    probe_t *pr = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(pr->cpu, &set);
    /* unpinned, it still meets the other thread at every try (and is not
       reported): returning early would leave that one at the barrier */
    int pinned = pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
    probe_vec_t s[PROBE_LINE] = {{0}};
    double tries[PROBE_TRIES];
    const uint16_t *idx = pr->idx;
    const probe_vec_t *buf = pr->buf;
    for (int t = 0; t < PROBE_TRIES; t++) {
        if (pr->start != NULL)
            pthread_barrier_wait(pr->start);
        double t0 = bench_now_us();
        /* four reads a step into four sums, so that throughput sets the
           pace, not the adds' latency (a loop bound by latency runs as fast
           on one core's two threads as on two cores: it would hide the
           sharing) */
        for (unsigned i = 0; i < PROBE_READS; i += PROBE_LINE)
            for (int q = 0; q < PROBE_LINE; q++) {
                const probe_vec_t *l = buf + (size_t)idx[(i + q) % PROBE_INDICES] * PROBE_LINE;
                s[q] += (l[0] + l[1]) + (l[2] + l[3]);
            }
        tries[t] = (bench_now_us() - t0) * 1e3 / PROBE_READS;
    }
    /* the median, not the best: a try of 1-2 ms can fall between the time
       slices of a vCPU that is being shared, and the runs cannot */
    pr->ns = pinned ? bench_median(tries, PROBE_TRIES) : -1;
    pr->sink = s[0][0] + s[1][1] + s[2][2] + s[3][3];
    return NULL;
}

/* Runs the probe on cpu[0] and cpu[1] alone, then on both at once; 0 when
 * every run was pinned. */
static int probe_cores(const int cpu[2], const uint16_t *idx, probe_vec_t *const bufs[2],
                       double alone[2], double both[2])
{
    for (int c = 0; c < 2; c++) {
        probe_t pr = {.cpu = cpu[c], .idx = idx, .buf = bufs[c]};
        pthread_t th;
        if (pthread_create(&th, NULL, probe_run, &pr) != 0)
            return -1;
        pthread_join(th, NULL);
        alone[c] = pr.ns;
    }
    pthread_barrier_t start;
    if (pthread_barrier_init(&start, NULL, 2) != 0)
        return -1;
    probe_t pr[2] = {{.cpu = cpu[0], .idx = idx, .buf = bufs[0], .start = &start},
                     {.cpu = cpu[1], .idx = idx, .buf = bufs[1], .start = &start}};
    pthread_t th[2];
    int made = 0;
    for (; made < 2; made++)
        if (pthread_create(&th[made], NULL, probe_run, &pr[made]) != 0)
            break;
    if (made == 1) /* the one thread meets a second at every try: be it */
        for (int t = 0; t < PROBE_TRIES; t++)
            pthread_barrier_wait(&start);
    for (int i = 0; i < made; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    both[0] = pr[0].ns;
    both[1] = pr[1].ns;
    return made == 2 && alone[0] > 0 && alone[1] > 0 && both[0] > 0 && both[1] > 0 ? 0 : -1;
}

/* The clock a core gives this process: a chain of dependent adds, one a
 * cycle on every x86-64 core, timed while pinned there (the median of
 * PROBE_TRIES of about a millisecond each). It turns a time into cycles
 * where the machine offers no cycle counter (the VMs here: perf reports
 * cycles and instructions as not supported). 0 where it cannot run. */
#define CLOCK_ADDS (1u << 22)
static double last_ghz;

static void *clock_run(void *arg)
{
    double *ghz = arg;
    *ghz = 0;
#if defined(__x86_64__)
    double tries[PROBE_TRIES];
    uint64_t x = 1;
    for (int t = 0; t < PROBE_TRIES; t++) {
        double t0 = bench_now_us();
        for (unsigned i = 0; i < CLOCK_ADDS; i += 8)
            __asm__ volatile("add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                             "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0"
                             : "+r"(x)
                             : "r"((uint64_t)i));
        tries[t] = CLOCK_ADDS / ((bench_now_us() - t0) * 1e3);
    }
    *ghz = bench_median(tries, PROBE_TRIES);
#endif
    return NULL;
}

/* The clock of core cpu in GHz (the thread starts pinned there), or 0. */
static double clock_ghz(int cpu)
{
    pthread_attr_t attr;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    double ghz = 0;
    pthread_t th;
    if (pthread_attr_init(&attr) != 0)
        return 0;
    int ok = pthread_attr_setaffinity_np(&attr, sizeof set, &set) == 0 &&
             pthread_create(&th, &attr, clock_run, &ghz) == 0;
    pthread_attr_destroy(&attr);
    if (!ok)
        return 0;
    pthread_join(th, NULL);
    return ghz;
}

double bench_clock_ghz(void)
{
    return last_ghz;
}

static void print_clock(const char *when, const int cpu[2], int n)
{
    double g[2] = {0, 0};
    for (int c = 0; c < n; c++)
        g[c] = clock_ghz(cpu[c]);
    if (g[0] <= 0 || (n == 2 && g[1] <= 0)) {
        printf("clock %s: not measured (no x86-64 add chain, or not allowed to pin)\n", when);
        last_ghz = 0;
        return;
    }
    last_ghz = n == 2 ? 0.5 * (g[0] + g[1]) : g[0];
    if (n == 2)
        printf("clock %s: a chain of dependent adds (one a cycle) ran at %.2f and %.2f GHz on "
               "cores %d and %d; cyc/nz below uses their mean, %.2f\n",
               when, g[0], g[1], cpu[0], cpu[1], last_ghz);
    else
        printf("clock %s: a chain of dependent adds (one a cycle) ran at %.2f GHz on core %d\n",
               when, g[0], cpu[0]);
}

static void print_cores(const char *when)
{
    /* the first two cores this process may run on */
    cpu_set_t allowed;
    int cpu[2], n = 0;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
        for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
            if (CPU_ISSET(c, &allowed))
                cpu[n++] = c;
    print_clock(when, cpu, n);
    if (n < 2) {
        printf("cores %s: one core to run on, no two-thread probe\n", when);
        return;
    }
    uint16_t *idx = malloc(PROBE_INDICES * sizeof *idx);
    probe_vec_t *bufs[2] = {aligned_alloc(64, PROBE_BYTES), aligned_alloc(64, PROBE_BYTES)};
    double alone[2], both[2];
    int ok = idx != NULL && bufs[0] != NULL && bufs[1] != NULL;
    if (ok) {
        uint32_t x = 2463534242u; /* xorshift32: any fixed sequence */
        for (unsigned i = 0; i < PROBE_INDICES; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            idx[i] = (uint16_t)(x % (PROBE_BYTES / (PROBE_LINE * sizeof(probe_vec_t))));
        }
        for (int c = 0; c < 2; c++)
            memset(bufs[c], 0, PROBE_BYTES);
        ok = probe_cores(cpu, idx, bufs, alone, both) == 0;
    }
    if (ok) {
        double faster = alone[0] < alone[1] ? alone[0] : alone[1];
        printf("cores %s: a probe (64-byte reads at random in 256 KiB) took %.2f and %.2f ns "
               "a read on cores %d and %d alone, %.2f and %.2f on both at once: two threads "
               "did %.2fx the faster core's reads\n",
               when, alone[0], alone[1], cpu[0], cpu[1], both[0], both[1],
               faster / both[0] + faster / both[1]);
    } else {
        printf("cores %s: the probe could not run on cores %d and %d (no memory, or not "
               "allowed to pin there)\n",
               when, cpu[0], cpu[1]);
    }
    free(idx);
    free(bufs[0]);
    free(bufs[1]);
}

void bench_print_load(const char *when)
{
    print_cores(when);
    double l1 = -1, l5 = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf %lf", &l1, &l5) != 2)
            l1 = l5 = -1;
        fclose(f);
    }
    if (l1 < 0) {
        printf("load average %s: unknown\n", when);
        return;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("load average %s: %.2f (1 min), %.2f (5 min) on %ld cores%s\n", when, l1, l5, cores,
           l1 > 0.5 * (double)cores ? ": other work shares the cores; two-thread times "
                                      "measure contention too"
                                    : "");
}

/* ---- the scatter-add floor ------------------------------------------------- */

/* EIE's column walk adds each entry's product into its row's accumulator:
 * one read-modify-write of a float an entry, wherever the rows fall. A
 * loop of nothing else, over columns as the benchmark layers have them
 * (SCATTER_COL distinct rows of SCATTER_ROWS, ascending, a 16-bit row index
 * an entry), is the floor a batch-1 column walk runs against. The same
 * loop with an integer add into memory (x86's one-instruction
 * read-modify-write) and with a plain store, printed beside it, tell
 * whether the store or the float add's load-add-store bounds it: on the
 * Zen 5 VM the float add took 1.00-1.07 cycles, the integer add 0.65-0.70
 * and the store 0.65. */
#define SCATTER_ROWS    4096u
#define SCATTER_COL     369u /* Alex-7's 9% of 4096 */
#define SCATTER_ENTRIES (1u << 20)

static double scatter_floor;

typedef enum { SCATTER_FLOAT_ADD, SCATTER_INT_ADD, SCATTER_STORE } scatter_kind_t;

/* Four entries a step, so that the loop's own branch costs little. */
#define SCATTER_LOOP(STMT)                                                                         \
    for (unsigned i = 0; i < SCATTER_ENTRIES; i += 4) {                                            \
        STMT(idx[i]);                                                                              \
        STMT(idx[i + 1]);                                                                          \
        STMT(idx[i + 2]);                                                                          \
        STMT(idx[i + 3]);                                                                          \
    }
#define FLOAT_ADD(r) (acc[r] += 1.0f)
#define INT_ADD(r)   (iacc[r] += 1u)
#define STORE(r)     (acc[r] = 1.0f)

/* Cycles an entry of one kind of loop, median of PROBE_TRIES; 0 when out
 * of memory or the clock is unknown. */
static double scatter_cycles(double ghz, scatter_kind_t kind)
{
    uint16_t *idx = malloc(SCATTER_ENTRIES * sizeof *idx);
    float *acc = aligned_alloc(64, SCATTER_ROWS * sizeof *acc);
    uint32_t *iacc = aligned_alloc(64, SCATTER_ROWS * sizeof *iacc);
    if (idx == NULL || acc == NULL || iacc == NULL || ghz <= 0) {
        free(idx);
        free(acc);
        free(iacc);
        return 0;
    }
    uint32_t x = 2463534242u; /* xorshift32: any fixed sequence */
    for (unsigned i = 0; i < SCATTER_ENTRIES;) {
        /* a column: each row in with probability SCATTER_COL / SCATTER_ROWS */
        for (unsigned r = 0; r < SCATTER_ROWS && i < SCATTER_ENTRIES; r++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if (x % SCATTER_ROWS < SCATTER_COL)
                idx[i++] = (uint16_t)r;
        }
    }
    memset(acc, 0, SCATTER_ROWS * sizeof *acc);
    memset(iacc, 0, SCATTER_ROWS * sizeof *iacc);
    double tries[PROBE_TRIES];
    for (int t = 0; t < PROBE_TRIES; t++) {
        double t0 = bench_now_us();
        switch (kind) {
        case SCATTER_FLOAT_ADD:
            SCATTER_LOOP(FLOAT_ADD)
            break;
        case SCATTER_INT_ADD:
            SCATTER_LOOP(INT_ADD)
            break;
        case SCATTER_STORE:
            SCATTER_LOOP(STORE)
            break;
        }
        tries[t] = (bench_now_us() - t0) * 1e3 * ghz / SCATTER_ENTRIES;
    }
    volatile float sink = acc[0] + (float)iacc[0];
    (void)sink;
    free(idx);
    free(acc);
    free(iacc);
    return bench_median(tries, PROBE_TRIES);
}

double bench_scatter_floor(void)
{
    return scatter_floor;
}

void bench_print_machine(void)
{
    char brand[49] = "(unknown)";
#if defined(__x86_64__) || defined(__i386__)
    unsigned r[12];
    if (__get_cpuid(0x80000004, &r[0], &r[1], &r[2], &r[3])) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        memcpy(brand, r, 48);
        brand[48] = 0;
    }
    unsigned a = 0, b, c, d;
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned family = ((a >> 8) & 0xf) + (((a >> 8) & 0xf) == 0xf ? (a >> 20) & 0xff : 0);
    unsigned model = ((a >> 4) & 0xf) | (((a >> 8) & 0xf) >= 6 ? ((a >> 16) & 0xf) << 4 : 0);
    char *s = brand;
    while (*s == ' ')
        s++;
    printf("cpu: %s (family %u model %u), %ld online cores\n", s, family, model,
           sysconf(_SC_NPROCESSORS_ONLN));
    __builtin_cpu_init();
    printf("isa: avx2 %d fma %d avx512f %d avx512bw %d avx512vl %d avx512vbmi %d "
           "avx512vpopcntdq %d\n",
           !!__builtin_cpu_supports("avx2"), !!__builtin_cpu_supports("fma"),
           !!__builtin_cpu_supports("avx512f"), !!__builtin_cpu_supports("avx512bw"),
           !!__builtin_cpu_supports("avx512vl"), !!__builtin_cpu_supports("avx512vbmi"),
           !!__builtin_cpu_supports("avx512vpopcntdq"));
#else
    printf("cpu: %s, %ld online cores\n", brand, sysconf(_SC_NPROCESSORS_ONLN));
#endif
    struct timespec res;
    clock_getres(CLOCK_MONOTONIC, &res);
    /* Measured: the smallest step between two readings that differ, and
     * what one reading costs. */
    double step = 1e9, t0 = bench_now_us(), prev = t0;
    int n = 0;
    for (; n < 100000; n++) {
        double t = bench_now_us();
        if (t > prev && t - prev < step)
            step = t - prev;
        prev = t;
    }
    printf("timer: CLOCK_MONOTONIC, clock_getres %ld ns, smallest step seen %.0f ns, "
           "%.0f ns a reading\n",
           res.tv_nsec + res.tv_sec * 1000000000L, step * 1e3, (prev - t0) * 1e3 / n);
    const char *note;
    size_t llc = llc_bytes(&note);
    printf("last-level cache: %zu KB (%s)\n", llc >> 10, note);
    bench_print_load("at start");
    scatter_floor = scatter_cycles(last_ghz, SCATTER_FLOAT_ADD);
    if (scatter_floor > 0)
        printf("scatter-add floor: a loop of nothing but acc[row] += c (columns of %u sorted "
               "rows of %u) took %.2f cycles an add at the clock above; over the same rows an "
               "integer add into memory took %.2f, a plain store %.2f\n",
               SCATTER_COL, SCATTER_ROWS, scatter_floor, scatter_cycles(last_ghz, SCATTER_INT_ADD),
               scatter_cycles(last_ghz, SCATTER_STORE));
}

/* ---- the flush ------------------------------------------------------------- */

static struct {
    eie_pool_t *pool;
    unsigned cores;
    size_t bytes;
    char **buf;
    atomic_uint_fast64_t sink;
} fl;

static void flush_run(eie_pool_job_t *job, unsigned pe, eie_pool_t *pool)
{
    (void)job;
    (void)pool;
    /* Reads one word a line: the whole line comes in and another leaves.
     * No writes: a dirty line would cost the timed run its write-back. */
    const volatile uint64_t *p = (const uint64_t *)fl.buf[pe];
    uint64_t s = 0;
    for (size_t i = 0; i < fl.bytes / 8; i += 8)
        s += p[i];
    atomic_fetch_add_explicit(&fl.sink, s, memory_order_relaxed);
}

static void flush_finish(eie_pool_job_t *base);

typedef struct flush_job {
    eie_pool_job_t base;
    eie_waiter_t w;
} flush_job_t;

static void flush_finish(eie_pool_job_t *base)
{
    flush_job_t *job = (flush_job_t *)base;
    eie_run_info_t info = {0};
    eie_waiter_done(&job->w, EIE_STATUS_OK, &info, NULL);
}

int bench_flush_init(size_t per_core_bytes)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    fl.cores = n > 0 ? (unsigned)(n < 256 ? n : 256) : 1;
    const char *note;
    /* Four times the last-level cache: after twice it (64 MB a core here),
     * the engine's layout, read on every run, partly survived (the L3 keeps
     * reused lines against a stream): with the engine alone in the run
     * (--methods cpu), Alex-7 cold took 173-211 us, against 221-293 after
     * 128, 256 or 512 MB, where runs between other methods' read 240-270. */
    fl.bytes = per_core_bytes ? per_core_bytes : 4 * llc_bytes(&note);
    fl.bytes = (fl.bytes + 63) / 64 * 64;
    fl.buf = calloc(fl.cores, sizeof *fl.buf);
    if (fl.buf == NULL)
        return -1;
    for (unsigned i = 0; i < fl.cores; i++) {
        fl.buf[i] = malloc(fl.bytes);
        if (fl.buf[i] == NULL)
            return -1;
        memset(fl.buf[i], (int)i + 1, fl.bytes);
    }
    return eie_pool_init(fl.cores, &fl.pool) == 0 ? 0 : -1;
}

void bench_flush(void)
{
    flush_job_t job = {.base = {.run = flush_run, .finish = flush_finish}};
    eie_waiter_init(&job.w);
    eie_pool_submit_join(fl.pool, &job.base);
    eie_error_t err;
    eie_waiter_wait(&job.w, 8 * eie_pool_spin(fl.pool), NULL, &err);
}

void bench_flush_free(void)
{
    eie_pool_free(fl.pool);
    if (fl.buf)
        for (unsigned i = 0; i < fl.cores; i++)
            free(fl.buf[i]);
    free(fl.buf);
    memset(&fl, 0, sizeof fl);
}

size_t bench_flush_bytes_per_core(void)
{
    return fl.bytes;
}

unsigned bench_flush_cores(void)
{
    return fl.cores;
}

/* ---- options ----------------------------------------------------------------- */

int bench_parse_ints(const char *opt, const char *arg, int lo, int hi, int *out, int max)
{
    int n = 0;
    const char *p = arg;
    for (;;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || v < lo || v > hi) {
            fprintf(stderr, "eie-bench: %s '%s': expected a list of integers in %d..%d\n", opt, arg,
                    lo, hi);
            return -1;
        }
        if (n == max) {
            fprintf(stderr, "eie-bench: %s '%s': at most %d values\n", opt, arg, max);
            return -1;
        }
        out[n++] = (int)v;
        if (*end == '\0')
            return n;
        p = end + 1;
    }
}

int bench_listed(const char *list, const char *name)
{
    if (list == NULL)
        return 1;
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len && strncmp(p, name, len) == 0)
            return 1;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return 0;
}

int bench_check_list(const char *opt, const char *list, const char *const *names)
{
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        int ok = 0;
        for (size_t i = 0; names[i]; i++)
            ok |= strlen(names[i]) == l && strncmp(names[i], p, l) == 0;
        if (!ok) {
            fprintf(stderr, "eie-bench: %s: unknown name '%.*s' (known:", opt, (int)l, p);
            for (size_t i = 0; names[i]; i++)
                fprintf(stderr, " %s", names[i]);
            fprintf(stderr, ")\n");
            return -1;
        }
        if (e == NULL)
            break;
        p = e + 1;
    }
    return 0;
}

/* ---- --export ---------------------------------------------------------- */

/* a (na bytes) then b (nb) to path; 0, or -1 with the reason on stderr. */
static int write_two(const char *path, const void *a, size_t na, const void *b, size_t nb)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(a, 1, na, f) != na || (nb > 0 && fwrite(b, 1, nb, f) != nb) ||
        fclose(f) != 0) {
        fprintf(stderr, "eie-bench: cannot write %s: %s\n", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return -1;
    }
    return 0;
}

int bench_export_layer(const char *dir, const char *name, const struct eie_model *model,
                       const float *x, size_t nx, const double *ref, const double *tol, size_t ny)
{
    char path[4096];
    eie_error_t err;
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    if (eie_onnx_export_model_file(model, path, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eie-bench: %s: %s\n", path, err.msg);
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s.x.f32", dir, name);
    if (write_two(path, x, nx * sizeof *x, NULL, 0) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/%s.ref.f64", dir, name);
    if (write_two(path, ref, ny * sizeof *ref, tol, ny * sizeof *tol) != 0)
        return -1;
    printf("exported %s: %s/%s.{onnx,x.f32,ref.f64}\n", name, dir, name);
    return 0;
}
