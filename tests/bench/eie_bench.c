/*
 * eie-bench - the nine EIE benchmark layers (EIE Table III: size, weight
 * density, activation density; random pruning mask, 4-bit codebook) on the
 * cpu backend against float baselines, in one process:
 *   cpu     the cpu backend (compressed per-PE layout, zero-activation
 *           skipping), with the kernel variant it selects
 *   csc, csc-s, csr, csr-g  float sparse baselines (baselines.h), built with
 *           -O3 -march=native -ffast-math
 *   blas    OpenBLAS sgemv (batch 1) / sgemm, the core it detects itself
 *   blas-f  OpenBLAS with OPENBLAS_CORETYPE forced (one instance per core
 *           type tried), shown where faster than blas
 * Every method's output is checked against a float64 reference before
 * anything is timed; a method that disagrees stops the program (exit 3).
 * Methods and thread counts are interleaved, their order rotating each
 * round (the machines here are shared and noisy: only ratios measured
 * together mean anything), and each timed run follows BENCH_WARM_US of
 * untimed runs of the same method (warm, as a served model's weights are)
 * or, with --cold, a flush of every core's caches. Prints medians.
 *
 *   eie-bench [--reps N] [--layers Alex-6,VGG-6] [--batches 1,4,16]
 *             [--threads 1,2] [--methods cpu,csc,csc-s,csr,csr-g,blas,blas-f]
 *             [--cold] [--flush-mb N] [--blas-core SkylakeX,Haswell|none]
 *             [--bits N] [--smoke] [--check-corrupt METHOD] [--conv] [--lstm]
 *             [--model PATH]
 *
 * --bits N: the layers' code width (default 4, EIE's; Deep Compression
 * gives AlexNet's and VGG-16's fc layers 5).
 * --smoke: one small layer, one rep, short warm-up: proves the checks pass
 * (a test). --check-corrupt METHOD: spoils one output of METHOD before the
 * check, which must then fail (a test that the check can fail). Exit
 * status: 0, 2 for a usage error, BENCH_EXIT_MISMATCH (3) when a method
 * disagrees with the reference, 1 for any other error. --conv: the
 * convolution table instead (conv_bench.c). --lstm: one LSTM step instead
 * (lstm_bench.c: NT-LSTM as I = H = 600, the matrix and the gates), at
 * batch 1 unless --batches (B sequences side by side, one lane each);
 * --model PATH (implies --lstm): the first lstm node of a .eie file, e.g.
 * models/charlm/1/model.eie.
 * --export DIR: times nothing; writes each layer as the table would build
 * it (the same seed, so the same weights as a run with the same --layers,
 * --bits and --conv) for a peer to run: DIR/NAME.onnx (the model as ONNX:
 * a dense Gemm, or with --conv a dense Conv), DIR/NAME.x.f32 (the inputs,
 * float32: 16 samples for fc, one for conv) and DIR/NAME.ref.f64 (the
 * float64 reference outputs, then their error bounds, float64).
 * tests/bench/ort-peer.mjs reads them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"
#include "bench_blas.h"
#include "bench_common.h"
#include "conv_bench.h"
#include "lstm_bench.h"
#include "cpu/kernels.h"
#include "pe/pool.h"

#include "../engine/format/model_helpers.h"

#ifndef ENGINE_CFLAGS
#define ENGINE_CFLAGS "(unknown)"
#endif

typedef struct bench_layer {
    const char *name;
    uint32_t in, out;
    double wdens, adens;
} bench_layer_t;

static const bench_layer_t layers[] = {
    {"Alex-6", 9216, 4096, 0.09, 0.351},
    {"Alex-7", 4096, 4096, 0.09, 0.353},
    {"Alex-8", 4096, 1000, 0.25, 0.375},
    {"VGG-6", 25088, 4096, 0.04, 0.183},
    {"VGG-7", 4096, 4096, 0.04, 0.375},
    {"VGG-8", 4096, 1000, 0.23, 0.411},
    {"NT-We", 4096, 600, 0.10, 1.0},
    {"NT-Wd", 600, 8791, 0.11, 1.0},
    {"NT-LSTM", 1201, 2400, 0.10, 1.0},
    /* not one of EIE's: the --smoke layer, odd sizes */
    {"tiny", 150, 203, 0.3, 0.5},
};
#define N_LAYERS  (sizeof layers / sizeof layers[0])
#define N_DEFAULT (N_LAYERS - 1)

/* Methods: cpu, the baselines in bl_method_t order, blas, then the forced
 * OpenBLAS instances. */
enum { M_CPU = 0, M_BL0 = 1, M_BLAS = M_BL0 + BL_METHOD_COUNT, M_BLASF0 };
#define MAX_FORCED 3
#define M_MAX      (M_BLASF0 + MAX_FORCED)

static const char *const method_names[] = {"cpu",   "csc",  "csc-s",  "csr",
                                           "csr-g", "blas", "blas-f", NULL};

typedef struct run_ctx {
    eie_net_t *net;
    bl_fc_t *bl;
    const bench_blas_t *blas[1 + MAX_FORCED];
    const float *w, *bias, *x;
    float *y;
    size_t B;
    int T;
    uint32_t R, C;
    uint64_t *walked; /* the entries the cpu backend's last run walked */
} run_ctx_t;

/* Runs method m once; busy (when not NULL) gets the run's busiest and least
 * busy thread's time in it (ns; 0 and 0 on one thread, and for BLAS, whose
 * threads are its own). */
static void run_method(const run_ctx_t *c, int m, uint64_t busy[2])
{
    if (busy != NULL)
        busy[0] = busy[1] = 0;
    if (m == M_CPU) {
        eie_error_t err;
        eie_run_info_t info;
        eie_net_run(c->net, c->x, c->B, c->y, &info, &err);
        *c->walked = info.entries;
        if (busy != NULL) {
            busy[0] = info.pe_busy_max_ns;
            busy[1] = info.pe_busy_min_ns;
        }
    } else if (m < M_BLAS) {
        bl_fc_run(c->bl, (bl_method_t)(m - M_BL0), c->x, c->B, c->y);
        if (busy != NULL)
            bl_fc_busy(c->bl, &busy[0], &busy[1]);
    } else {
        bench_blas_fc(c->blas[m - M_BLAS], c->w, c->bias, c->R, c->C, c->x, c->B, c->T, c->y);
    }
}

/*
 * The float64 reference of y = W x + b for 16 inputs, and for each output
 * the bound any float32 evaluation of the sum must meet: with n terms
 * (nonzero products, the bias, one rounding of the product), summed in any
 * order with or without FMA, |y - ref| <= gamma_n * (sum |w x| + |b|),
 * gamma_n = n u / (1 - n u), u = 2^-24 (Higham, Accuracy and Stability of
 * Numerical Algorithms, 2nd ed., sec. 3.1 and 4.2). Adding an exact zero
 * rounds nothing, so dense BLAS's zero terms do not count. A kernel that
 * drops or repeats a term, reads the wrong activation or rounds to a
 * narrower type misses it by orders of magnitude.
 */
typedef struct reference {
    double *y, *tol;
} reference_t;

static int reference_init(const float *w, const float *bias, const float *x, uint32_t R, uint32_t C,
                          reference_t *ref)
{
    ref->y = calloc((size_t)16 * R, sizeof(double));
    ref->tol = calloc((size_t)16 * R, sizeof(double));
    double *mag = calloc(16, sizeof(double));
    unsigned *n = calloc(16, sizeof(unsigned));
    if (!ref->y || !ref->tol || !mag || !n)
        return -1;
    const double u = ldexp(1.0, -24);
    for (uint32_t r = 0; r < R; r++) {
        double s[16];
        for (int b = 0; b < 16; b++) {
            s[b] = bias[r];
            mag[b] = fabs(bias[r]);
            n[b] = 2;
        }
        const float *wr = w + (size_t)r * C;
        for (uint32_t j = 0; j < C; j++) {
            if (wr[j] == 0.0f)
                continue;
            for (int b = 0; b < 16; b++) {
                double p = (double)wr[j] * x[(size_t)b * C + j];
                s[b] += p;
                mag[b] += fabs(p);
                n[b] += p != 0.0;
            }
        }
        for (int b = 0; b < 16; b++) {
            ref->y[(size_t)b * R + r] = s[b];
            ref->tol[(size_t)b * R + r] = n[b] * u / (1 - n[b] * u) * mag[b] + 1e-30;
        }
    }
    free(mag);
    free(n);
    return 0;
}

/* 0 if y (B x R) meets the reference, else prints the worst output and -1. */
static int reference_check(const reference_t *ref, const float *y, size_t B, uint32_t R,
                           const char *layer, const char *method, int T)
{
    size_t bad = 0, worst = 0;
    double worst_ratio = 0;
    for (size_t i = 0; i < B * R; i++) {
        double e = fabs((double)y[i] - ref->y[i]);
        double ratio = e / ref->tol[i];
        if (!(e <= ref->tol[i])) {
            bad++;
            if (!(ratio <= worst_ratio)) {
                worst_ratio = ratio;
                worst = i;
            }
        }
    }
    if (bad == 0)
        return 0;
    fprintf(stderr,
            "eie-bench: %s batch %zu, %d thread(s): method %s disagrees with the float64 "
            "reference at %zu of %zu outputs; worst: input %zu row %zu: %.9g, reference %.9g, "
            "bound %.3g\n",
            layer, B, T, method, bad, B * R, worst / R, worst % R, (double)y[worst], ref->y[worst],
            ref->tol[worst]);
    return -1;
}

/* What main allocates for a layer. */
static void free_layer(reference_t *ref, float *w, float *x, float *y, eie_model_t *m)
{
    free(ref->y);
    free(ref->tol);
    free(w);
    free(x);
    free(y);
    eie_model_free(m);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: eie-bench [--reps N] [--layers Alex-6,VGG-6,...] [--batches 1,4,16]\n"
               "                 [--threads 1,2] [--methods cpu,csc,csc-s,csr,csr-g,blas,blas-f]\n"
               "                 [--cold] [--flush-mb N] [--blas-core CORE,...|none]\n"
               "                 [--bits N] [--smoke] [--check-corrupt METHOD] [--conv]\n"
               "                 [--lstm] [--model PATH] [--export DIR]\n");
}

typedef struct opts {
    int reps, bits;
    const char *layers, *methods, *blas_cores, *corrupt, *model, *export_dir;
    int batches[8], nb, threads[2], nt;
    int cold, smoke, conv, lstm, bits_given, batches_given;
    long flush_mb;
    double warm_us;
} opts_t;

static int parse_opts(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){.reps = 15,
                  .bits = 4,
                  .batches = {1, 4, 16},
                  .nb = 3,
                  .threads = {1, 2},
                  .nt = 2,
                  .warm_us = BENCH_WARM_US};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        int v;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--cold") == 0) {
            o->cold = 1;
        } else if (strcmp(a, "--smoke") == 0) {
            o->smoke = 1;
        } else if (strcmp(a, "--conv") == 0) {
            o->conv = 1;
        } else if (strcmp(a, "--lstm") == 0) {
            o->lstm = 1;
        } else if (!has) {
            fprintf(stderr, "eie-bench: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return -1;
        } else if (strcmp(a, "--reps") == 0) {
            if (bench_parse_ints(a, argv[++i], 1, 100000, &o->reps, 1) < 0)
                return -1;
        } else if (strcmp(a, "--bits") == 0) {
            if (bench_parse_ints(a, argv[++i], 1, 8, &o->bits, 1) < 0)
                return -1;
            o->bits_given = 1;
        } else if (strcmp(a, "--flush-mb") == 0) {
            if (bench_parse_ints(a, argv[++i], 1, 65536, &v, 1) < 0)
                return -1;
            o->flush_mb = v;
        } else if (strcmp(a, "--batches") == 0) {
            if ((o->nb = bench_parse_ints(a, argv[++i], 1, (int)BL_MAX_BATCH, o->batches, 8)) < 0)
                return -1;
            o->batches_given = 1;
        } else if (strcmp(a, "--threads") == 0) {
            if ((o->nt = bench_parse_ints(a, argv[++i], 1, 2, o->threads, 2)) < 0)
                return -1;
            if (o->nt == 2 && o->threads[0] == o->threads[1])
                o->nt = 1;
        } else if (strcmp(a, "--layers") == 0) {
            o->layers = argv[++i];
        } else if (strcmp(a, "--methods") == 0) {
            o->methods = argv[++i];
        } else if (strcmp(a, "--blas-core") == 0) {
            o->blas_cores = argv[++i];
        } else if (strcmp(a, "--check-corrupt") == 0) {
            o->corrupt = argv[++i];
        } else if (strcmp(a, "--export") == 0) {
            o->export_dir = argv[++i];
        } else if (strcmp(a, "--model") == 0) {
            o->model = argv[++i];
            o->lstm = 1;
        } else {
            fprintf(stderr, "eie-bench: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (o->layers != NULL) {
        const char *names[N_LAYERS + 1];
        for (size_t i = 0; i < N_LAYERS; i++)
            names[i] = layers[i].name;
        names[N_LAYERS] = NULL;
        if (o->layers[0] == '\0') {
            fprintf(stderr, "eie-bench: --layers '': no layer named\n");
            return -1;
        }
        if (bench_check_list("--layers", o->layers,
                             o->conv   ? conv_bench_layer_names
                             : o->lstm ? lstm_bench_layer_names
                                       : names) < 0)
            return -1;
    }
    if (!o->conv && o->methods && bench_check_list("--methods", o->methods, method_names) < 0)
        return -1;
    if (!o->conv && o->corrupt && bench_check_list("--check-corrupt", o->corrupt, method_names) < 0)
        return -1;
    if (o->conv && o->lstm) {
        fprintf(stderr, "eie-bench: --conv and --lstm are two tables; give one\n");
        return -1;
    }
    if (o->export_dir && (o->lstm || o->cold || o->smoke)) {
        fprintf(stderr, "eie-bench: --export writes the fc or --conv table's layers; it takes "
                        "--layers, --bits and --conv only\n");
        return -1;
    }
    if (o->bits_given && (o->conv || o->lstm)) {
        fprintf(stderr, "eie-bench: --bits sets the fc table's codes; the %s table has its own\n",
                o->conv ? "--conv" : "--lstm");
        return -1;
    }
    if (o->smoke) {
        if (o->layers == NULL && o->model == NULL)
            o->layers = o->conv ? "LeNet-c1,LeNet-c2" : o->lstm ? "tiny-LSTM" : "tiny";
        o->reps = 1;
        o->warm_us = 200;
        o->nb = 3;
        o->batches[0] = 1;
        o->batches[1] = 3;
        o->batches[2] = 16;
    }
    return 0;
}

/* The OpenBLAS instances: [0] its own detection, then each forced core. */
static int load_blas(const opts_t *o, bench_blas_t *bl, int *n_out)
{
    char err[512];
    const char *env_core = getenv("OPENBLAS_CORETYPE");
    const char *env_l2 = getenv("OPENBLAS_L2_SIZE");
    if (bench_blas_load(NULL, &bl[0], err, sizeof err) != 0) {
        fprintf(stderr, "eie-bench: %s\n", err);
        return -1;
    }
    printf("openblas: %s; environment OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s; "
           "blas: own detection (OPENBLAS_CORETYPE unset): core %s\n",
           bl[0].path, env_core ? env_core : "(unset)", env_l2 ? env_l2 : "(unset)", bl[0].core);
    /* Forced cores to try: the one the environment names, and SkylakeX
     * where the CPU has AVX-512 (BENCH_NOTES: Debian's OpenBLAS fell back
     * to Prescott on a SkylakeX-class machine unless told). */
    const char *cand[MAX_FORCED];
    int nc = 0;
    char list[256] = "";
    if (o->blas_cores != NULL) {
        snprintf(list, sizeof list, "%s", strcmp(o->blas_cores, "none") == 0 ? "" : o->blas_cores);
        for (char *s = strtok(list, ","); s && nc < MAX_FORCED; s = strtok(NULL, ","))
            cand[nc++] = s;
    } else {
        if (env_core && *env_core)
            cand[nc++] = env_core;
        if (__builtin_cpu_supports("avx512f"))
            cand[nc++] = "SkylakeX";
    }
    int n = 1;
    for (int i = 0; i < nc; i++) {
        int dup = strcasecmp(cand[i], bl[0].core) == 0;
        for (int k = 1; k < n; k++)
            dup |= strcasecmp(cand[i], bl[k].core) == 0;
        if (dup)
            continue;
        if (bench_blas_load(cand[i], &bl[n], err, sizeof err) != 0) {
            fprintf(stderr, "eie-bench: %s\n", err);
            return -1;
        }
        if (strcasecmp(bl[n].core, cand[i]) != 0) {
            fprintf(stderr, "eie-bench: --blas-core '%s': OpenBLAS ran core %s instead\n", cand[i],
                    bl[n].core);
            return -1;
        }
        printf("blas-f: OPENBLAS_CORETYPE=%s forced: core %s\n", cand[i], bl[n].core);
        n++;
    }
    if (n == 1)
        printf("blas-f: no core forced\n");
    *n_out = n;
    return 0;
}

static void print_engine(void)
{
    /* The variant the engine runs, chosen by the engine's own rule. */
    const char *forced = getenv("EIE_KERNEL");
    const eie_cpu_kernel_t *k = NULL;
    eie_error_t err;
    if (eie_cpu_kernel_select(NULL, &k, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eie-bench: %s\n", err.msg);
        exit(2);
    }
    printf("engine: built with %s; cpu kernel: %s (EIE_KERNEL=%s); available:", ENGINE_CFLAGS,
           k->name, forced ? forced : "(unset)");
    for (size_t i = 0; i < eie_cpu_kernel_count; i++)
        printf(" %s%s", eie_cpu_kernels[i].name,
               eie_cpu_kernels[i].supported() ? "" : " (not on this cpu)");
    printf("\n");
}

/* What one table row reports, kept for the summary. */
typedef struct row {
    const char *layer;
    size_t B;
    int T;
    double t[M_MAX];
    int best_bl, best_forced;
    double per_round; /* median of cpu / best within a round; 0 if none */
    int won, rounds;  /* rounds cpu was the faster of the two */
} row_t;

static double best_blas(const row_t *r, int n_blas)
{
    double b = r->t[M_BLAS];
    for (int k = 1; k < n_blas; k++)
        if (r->t[M_BLAS + k] > 0 && (b <= 0 || r->t[M_BLAS + k] < b))
            b = r->t[M_BLAS + k];
    return b;
}

int main(int argc, char **argv)
{
    opts_t o;
    if (parse_opts(argc, argv, &o) < 0)
        return 2;
    bench_blas_t blas[1 + MAX_FORCED];
    int n_blas = 0;
    /* --export times nothing: no probes, no OpenBLAS */
    if (o.export_dir == NULL) {
        bench_print_machine();
        printf("baselines: %s, compiled %s\n", bl_isa(), bl_cflags());
        print_engine();
        if (load_blas(&o, blas, &n_blas) < 0)
            return 1;
    }
    if (o.export_dir != NULL) {
        printf("export: into %s\n", o.export_dir);
    } else if (o.cold) {
        if (bench_flush_init((size_t)o.flush_mb << 20) != 0) {
            fprintf(stderr, "eie-bench: no memory or threads for the cache flush\n");
            return 1;
        }
        printf("cold: before each timed run every core streams %zu MB (%u cores)\n",
               bench_flush_bytes_per_core() >> 20, bench_flush_cores());
    } else {
        printf("warm: each timed run follows %.0f us of untimed runs of the same method\n",
               o.warm_us);
    }
    if (o.conv) {
        conv_bench_opts_t co = {.reps = o.reps,
                                .cold = o.cold,
                                .warm_us = o.warm_us,
                                .threads = o.threads,
                                .nt = o.nt,
                                .layers = o.layers,
                                .methods = o.methods,
                                .corrupt = o.corrupt,
                                .export_dir = o.export_dir,
                                .blas = blas,
                                .n_blas = n_blas};
        int rc = conv_bench_main(&co);
        if (o.export_dir == NULL)
            bench_print_load("at the end");
        bench_flush_free();
        return rc;
    }
    if (o.lstm) {
        static const int one[1] = {1};
        lstm_bench_opts_t lo = {.reps = o.reps,
                                .batches = o.batches_given || o.smoke ? o.batches : one,
                                .nb = o.batches_given || o.smoke ? o.nb : 1,
                                .cold = o.cold,
                                .warm_us = o.warm_us,
                                .threads = o.threads,
                                .nt = o.nt,
                                .layers = o.layers,
                                .model = o.model,
                                .methods = o.methods,
                                .corrupt = o.corrupt,
                                .blas = blas,
                                .n_blas = n_blas};
        int rc = lstm_bench_main(&lo);
        bench_print_load("at the end");
        bench_flush_free();
        return rc;
    }
    int n_methods = M_BLAS + n_blas;
    int on[M_MAX];
    for (int m = 0; m < n_methods; m++) {
        const char *name = m < M_BLAS    ? (m == M_CPU ? "cpu" : bl_method_name(m - M_BL0))
                           : m == M_BLAS ? "blas"
                                         : "blas-f";
        on[m] = bench_listed(o.methods, name);
    }
    eie_pool_t *bl_pool = NULL;
    if (eie_pool_init(2, &bl_pool) != 0) {
        fprintf(stderr, "eie-bench: cannot start the baselines' threads\n");
        return 1;
    }
    printf("codes: %d bits (the float methods use the same decoded weights)\n", o.bits);
    if (o.export_dir == NULL) {
        printf("reps %d; medians in us; cpu/best = cpu time / best float sparse time (below 1: "
               "cpu faster); blas/cpu = best OpenBLAS time / cpu time; blas-f shown where faster "
               "than blas; B/nz = bytes per nonzero; cyc/nz (one thread) = median time x the "
               "clock above / the layer's nonzeros, cycles a nonzero for the whole batch\n",
               o.reps);
        printf("%-8s %2s %1s %9s %9s %9s %9s %9s %-5s %9s %9s %-8s %8s %8s %6s %6s\n", "layer", "B",
               "T", "cpu", "csc", "csc-s", "csr", "csr-g", "best", "blas", "blas-f", "f-core",
               "cpu/best", "blas/cpu", "B/nz", "csc");
    }
    row_t *rows = calloc(N_LAYERS * 8 * 2, sizeof *rows);
    size_t n_rows = 0;
    int status = 0;
    uint64_t seed = 12345;
    for (size_t li = 0; li < N_LAYERS; li++) {
        const bench_layer_t *L = &layers[li];
        if (o.layers == NULL ? li >= N_DEFAULT : !bench_listed(o.layers, L->name))
            continue;
        uint32_t R = L->out, C = L->in;
        /* the layer: random mask, an o.bits-bit codebook (code 0 = pruned) */
        eie_builder_t *b;
        eie_error_t err;
        eie_builder_init(L->name, "", "x", "y", &b, &err); /* names: --export */
        if (th_add_random_fc(b, R, C, L->wdens, (uint32_t)o.bits, &seed, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eie-bench: %s\n", err.msg);
            return 1;
        }
        eie_model_t *m = th_load_builder(b);
        eie_builder_free(b);
        float *w = malloc((size_t)R * C * sizeof(float));
        float *x = malloc(16 * (size_t)C * sizeof(float));
        float *y = malloc(16 * (size_t)R * sizeof(float));
        if (m == NULL || w == NULL || x == NULL || y == NULL) {
            fprintf(stderr, "eie-bench: %s: out of memory\n", L->name);
            return 1;
        }
        eie_model_fc_dense(m, 0, w);
        const float *bias = eie_model_fc_bias(m, 0);
        eie_layer_info_t info;
        eie_model_layer_info(m, 0, &info);
        for (size_t i = 0; i < 16 * (size_t)C; i++)
            x[i] = th_uniform(&seed) < L->adens ? th_uniform(&seed) : 0.0f;
        reference_t ref;
        if (reference_init(w, bias, x, R, C, &ref) != 0) {
            fprintf(stderr, "eie-bench: %s: out of memory\n", L->name);
            return 1;
        }
        if (o.export_dir != NULL) {
            int rc = bench_export_layer(o.export_dir, L->name, m, x, 16 * (size_t)C, ref.y, ref.tol,
                                        16 * (size_t)R);
            free_layer(&ref, w, x, y, m);
            if (rc != 0) {
                free(rows);
                eie_pool_free(bl_pool);
                return 1;
            }
            continue;
        }
        eie_engine_t *eng[2];
        eie_net_t *nets[2];
        bl_fc_t *bls[2];
        for (int ti = 0; ti < o.nt; ti++) {
            eie_engine_opts_t eo = eie_engine_opts_default();
            eo.n_pes = (unsigned)o.threads[ti];
            if (eie_engine_init(&eo, &eng[ti], &err) != EIE_STATUS_OK ||
                eie_net_init(eng[ti], m, &nets[ti], &err) != EIE_STATUS_OK) {
                fprintf(stderr, "eie-bench: %s\n", err.msg);
                return 1;
            }
            bls[ti] = bl_fc_init(w, bias, R, C, (unsigned)o.threads[ti], bl_pool);
            if (bls[ti] == NULL) {
                fprintf(stderr, "eie-bench: %s: out of memory for the baselines\n", L->name);
                return 1;
            }
        }
        for (int bi = 0; bi < o.nb; bi++) {
            size_t B = (size_t)o.batches[bi];
            run_ctx_t ctx[2];
            uint64_t walked[2] = {0, 0};
            for (int ti = 0; ti < o.nt; ti++) {
                ctx[ti] = (run_ctx_t){.net = nets[ti],
                                      .bl = bls[ti],
                                      .w = w,
                                      .bias = bias,
                                      .x = x,
                                      .y = y,
                                      .B = B,
                                      .T = o.threads[ti],
                                      .R = R,
                                      .C = C,
                                      .walked = &walked[ti]};
                for (int k = 0; k < n_blas; k++)
                    ctx[ti].blas[k] = &blas[k];
            }
            int avail[M_MAX];
            for (int mi = 0; mi < n_methods; mi++)
                avail[mi] = on[mi] && (mi < M_BL0 || mi >= M_BLAS ||
                                       bl_method_available((bl_method_t)(mi - M_BL0), B));
            /* Every method, every thread count: checked before any timing. */
            for (int ti = 0; ti < o.nt; ti++)
                for (int mi = 0; mi < n_methods; mi++) {
                    if (!avail[mi])
                        continue;
                    for (size_t i = 0; i < B * R; i++)
                        y[i] = NAN;
                    run_method(&ctx[ti], mi, NULL);
                    const char *name = mi >= M_BLAS  ? blas[mi - M_BLAS].core
                                       : mi == M_CPU ? "cpu"
                                                     : bl_method_name(mi - M_BL0);
                    const char *cname = mi > M_BLAS ? "blas-f" : mi == M_BLAS ? "blas" : name;
                    if (o.corrupt && strcmp(o.corrupt, cname) == 0)
                        y[B * R / 2] += 1e-3f * (1.0f + fabsf(y[B * R / 2]));
                    char label[96];
                    snprintf(label, sizeof label, "%s%s%s", cname, mi >= M_BLAS ? " core " : "",
                             mi >= M_BLAS ? name : "");
                    if (reference_check(&ref, y, B, R, L->name, label, o.threads[ti]) != 0)
                        status = BENCH_EXIT_MISMATCH;
                }
            if (status != 0)
                return status;
            double *times[2][M_MAX], *busy_max[2][M_MAX], *busy_min[2][M_MAX];
            for (int ti = 0; ti < o.nt; ti++)
                for (int mi = 0; mi < n_methods; mi++) {
                    times[ti][mi] = calloc((size_t)o.reps, sizeof(double));
                    busy_max[ti][mi] = calloc((size_t)o.reps, sizeof(double));
                    busy_min[ti][mi] = calloc((size_t)o.reps, sizeof(double));
                }
            for (int r = -2; r < o.reps; r++) /* two rounds untimed */
                for (int ti = 0; ti < o.nt; ti++)
                    for (int mj = 0; mj < n_methods; mj++) {
                        /* The order rotates each round, so that every method
                         * follows each of the others equally often. */
                        int mi = (mj + r + 2) % n_methods;
                        if (!avail[mi])
                            continue;
                        if (o.cold) {
                            bench_flush();
                        } else {
                            /* Warm: untimed runs of the same method first,
                             * so that no method pays for the one before it
                             * (BLAS streams 400 MB on VGG-6). After two
                             * Alex-7 sgemv calls the cpu backend's next runs
                             * took 521, 503, 477, 456, 441, 436 us and only
                             * then levelled off: one untimed run was not
                             * enough. */
                            double w0 = bench_now_us();
                            do
                                run_method(&ctx[ti], mi, NULL);
                            while (bench_now_us() - w0 < o.warm_us);
                        }
                        uint64_t busy[2];
                        double t0 = bench_now_us();
                        run_method(&ctx[ti], mi, busy);
                        double t1 = bench_now_us();
                        if (r >= 0) {
                            times[ti][mi][r] = t1 - t0;
                            busy_max[ti][mi][r] = (double)busy[0] / 1e3;
                            busy_min[ti][mi][r] = (double)busy[1] / 1e3;
                        }
                    }
            row_t *first = &rows[n_rows];
            for (int ti = 0; ti < o.nt; ti++) {
                row_t *rw = &rows[n_rows++];
                *rw = (row_t){
                    .layer = L->name, .B = B, .T = o.threads[ti], .best_bl = -1, .best_forced = -1};
                /* cpu against each float method round by round, before the
                   medians sort the times: the methods of one round ran
                   back to back, so a slow stretch of the machine weighs on
                   both sides of each ratio. */
                double *paired[M_MAX] = {0};
                for (int mi = M_BL0; mi < M_BLAS; mi++) {
                    if (!avail[mi] || !avail[M_CPU])
                        continue;
                    paired[mi] = calloc((size_t)o.reps, sizeof(double));
                    for (int r = 0; paired[mi] != NULL && r < o.reps; r++)
                        paired[mi][r] = times[ti][M_CPU][r] / times[ti][mi][r];
                }
                for (int mi = 0; mi < n_methods; mi++)
                    rw->t[mi] = avail[mi] ? bench_median(times[ti][mi], o.reps) : 0;
                for (int mi = M_BL0; mi < M_BLAS; mi++)
                    if (rw->t[mi] > 0 &&
                        (rw->best_bl < 0 || rw->t[mi] < rw->t[M_BL0 + rw->best_bl]))
                        rw->best_bl = mi - M_BL0;
                for (int k = 1; k < n_blas; k++)
                    if (rw->t[M_BLAS + k] > 0 &&
                        (rw->best_forced < 0 ||
                         rw->t[M_BLAS + k] < rw->t[M_BLAS + rw->best_forced]))
                        rw->best_forced = k;
                double cpu = rw->t[M_CPU];
                double best = rw->best_bl >= 0 ? rw->t[M_BL0 + rw->best_bl] : 0;
                double f = rw->best_forced > 0 ? rw->t[M_BLAS + rw->best_forced] : 0;
                int show_f = f > 0 && (rw->t[M_BLAS] <= 0 || f < rw->t[M_BLAS]);
                double bb = best_blas(rw, n_blas);
                char col[M_BLAS][16];
                for (int k = 0; k < M_BLAS; k++) {
                    double t = rw->t[M_CPU + k];
                    snprintf(col[k], sizeof col[k], t > 0 ? "%.1f" : "-", t);
                }
                char fcol[16], fcore[16];
                snprintf(fcol, sizeof fcol, show_f ? "%.1f" : "-", f);
                snprintf(fcore, sizeof fcore, "%s", show_f ? blas[rw->best_forced].core : "-");
                printf("%-8s %2zu %d %9s %9s %9s %9s %9s %-5s %9.1f %9s %-8s %8.2f %8.2f %6.2f "
                       "%6.2f",
                       L->name, B, rw->T, col[0], col[1], col[2], col[3], col[4],
                       rw->best_bl >= 0 ? bl_method_name(rw->best_bl) : "-", rw->t[M_BLAS], fcol,
                       fcore, cpu > 0 && best > 0 ? cpu / best : 0,
                       cpu > 0 && bb > 0 ? bb / cpu : 0,
                       (double)eie_net_layout_bytes(nets[ti]) / (double)info.nnz,
                       (double)bl_fc_csc_bytes(bls[ti]) / (double)info.nnz);
                if (rw->best_bl >= 0 && paired[M_BL0 + rw->best_bl] != NULL) {
                    double *pr = paired[M_BL0 + rw->best_bl];
                    int ahead = 0;
                    for (int r = 0; r < o.reps; r++)
                        ahead += pr[r] < 1.0;
                    rw->per_round = bench_median(pr, o.reps);
                    rw->won = ahead;
                    rw->rounds = o.reps;
                    printf("  per round: cpu/%s %.2f, cpu ahead %d/%d",
                           bl_method_name(rw->best_bl), rw->per_round, ahead, o.reps);
                }
                for (int mi = M_BL0; mi < M_BLAS; mi++)
                    free(paired[mi]);
                double ghz = bench_clock_ghz();
                if (rw->T == 1 && ghz > 0 && info.nnz > 0 && cpu > 0 && best > 0)
                    printf("  cyc/nz cpu %.2f %s %.2f", cpu * 1e3 * ghz / (double)info.nnz,
                           bl_method_name(rw->best_bl), best * 1e3 * ghz / (double)info.nnz);
                /* At batch 1 against the scatter-add floor: the cpu's
                   cycles an entry it walked (the column walk visits the
                   active columns' entries only; the row form every one). */
                if (rw->T == 1 && B == 1 && ghz > 0 && cpu > 0 && walked[ti] > 0 &&
                    bench_scatter_floor() > 0)
                    printf("  walked %.0f%%: cpu %.2f cyc an entry (floor %.2f)",
                           100.0 * (double)walked[ti] / (double)info.nnz,
                           cpu * 1e3 * ghz / (double)walked[ti], bench_scatter_floor());
                if (rw->T == 2 && first->T == 1) {
                    double b1 = first->best_bl >= 0 ? first->t[M_BL0 + first->best_bl] : 0;
                    printf("  2T/1T cpu %.2fx best %.2fx", cpu > 0 ? first->t[M_CPU] / cpu : 0,
                           best > 0 ? b1 / best : 0);
                }
                if (rw->T > 1) {
                    /* Each thread's own time, medians: how evenly the two
                       cores ran the two halves, and what the hand-off and
                       the wait for the slower half cost on top. */
                    int ms[2] = {M_CPU, rw->best_bl >= 0 ? M_BL0 + rw->best_bl : -1};
                    for (int k = 0; k < 2; k++) {
                        double hi = ms[k] >= 0 && avail[ms[k]]
                                        ? bench_median(busy_max[ti][ms[k]], o.reps)
                                        : 0;
                        double lo = hi > 0 ? bench_median(busy_min[ti][ms[k]], o.reps) : 0;
                        if (hi > 0)
                            printf("%s %s %.1f/%.1f", k == 0 ? "  threads busy max/min us:" : ",",
                                   k == 0 ? "cpu" : bl_method_name(rw->best_bl), hi, lo);
                    }
                }
                printf("\n");
                for (int mi = 0; mi < n_methods; mi++) {
                    free(times[ti][mi]);
                    free(busy_max[ti][mi]);
                    free(busy_min[ti][mi]);
                }
            }
            fflush(stdout);
        }
        for (int ti = 0; ti < o.nt; ti++) {
            eie_net_free(nets[ti]);
            eie_engine_free(eng[ti]);
            bl_fc_free(bls[ti]);
        }
        free_layer(&ref, w, x, y, m);
    }
    if (o.export_dir != NULL) {
        free(rows);
        eie_pool_free(bl_pool);
        return 0;
    }
    /* Where the cpu backend loses, in words. */
    int lost = 0;
    for (size_t i = 0; i < n_rows; i++) {
        const row_t *rw = &rows[i];
        double cpu = rw->t[M_CPU];
        double best = rw->best_bl >= 0 ? rw->t[M_BL0 + rw->best_bl] : 0;
        double bb = best_blas(rw, n_blas);
        if (cpu <= 0)
            continue;
        if (best > 0 && cpu > best) {
            printf("%s %s B%zu T%d: cpu %.2fx slower than %s", lost++ ? "  " : "cpu loses:",
                   rw->layer, rw->B, rw->T, cpu / best, bl_method_name(rw->best_bl));
            if (rw->rounds > 0)
                printf(" (per round %.2f, cpu ahead in %d of %d)", rw->per_round, rw->won,
                       rw->rounds);
            printf("\n");
        }
        if (bb > 0 && cpu > bb)
            printf("%s %s B%zu T%d: cpu %.2fx slower than OpenBLAS\n",
                   lost++ ? "  " : "cpu loses:", rw->layer, rw->B, rw->T, cpu / bb);
    }
    if (lost == 0 && n_rows > 0 && on[M_CPU])
        printf("cpu loses: nowhere in this run\n");
    bench_print_load("at the end");
    free(rows);
    eie_pool_free(bl_pool);
    bench_flush_free();
    return 0;
}
