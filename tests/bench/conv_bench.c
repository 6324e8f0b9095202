/*
 * eie-bench --conv (conv_bench.h): convolution layers at batch 1, timed and
 * checked the way the fc table is (methods and thread counts interleaved,
 * rotating order, warm or --cold, float64 reference check first):
 *   cpu     the engine's conv path (conv_engine below): sparse conv2d on
 *           the compressed weights
 *   sparse  direct sparse convolution (baselines_conv.h); sparse-a the
 *           same reading aligned copies of the input; the table's sparse
 *           column is the faster of the two, named in column sp-kind
 *   blas    im2col + OpenBLAS sgemm per group, the core OpenBLAS detects
 *   blas-f  the same with OPENBLAS_CORETYPE forced, where faster
 */
#include "conv_bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baselines_conv.h"
#include "bench_common.h"

#include "../engine/format/model_helpers.h"

/*
 * Shapes: LeNet-5 as in Caffe's example (Deep Compression's LeNet-5),
 * AlexNet as in Caffe (groups of 2 on conv2, conv4, conv5). Weight
 * densities: Han et al., Deep Compression (ICLR 2016), Table 2 (LeNet-5:
 * conv1 66%, conv2 12%) and Table 4 (AlexNet: 84%, 38%, 35%, 37%, 37%).
 * Input densities are assumptions, not from the paper: a first layer sees
 * an image (MNIST: about 19% of the pixels nonzero; ImageNet: dense), later
 * layers a ReLU output, taken as half nonzero. Neither baseline skips zero
 * activations; only an engine that does would gain from them.
 */
static const bl_conv_shape_t shapes[] = {
    {"LeNet-c1", 1, 28, 28, 20, 5, 1, 0, 1, 0.66, 0.19},
    {"LeNet-c2", 20, 12, 12, 50, 5, 1, 0, 1, 0.12, 0.5},
    {"Alex-c1", 3, 227, 227, 96, 11, 4, 0, 1, 0.84, 1.0},
    {"Alex-c2", 96, 27, 27, 256, 5, 1, 2, 2, 0.38, 0.5},
    {"Alex-c3", 256, 13, 13, 384, 3, 1, 1, 1, 0.35, 0.5},
    {"Alex-c4", 384, 13, 13, 384, 3, 1, 1, 2, 0.37, 0.5},
    {"Alex-c5", 384, 13, 13, 256, 3, 1, 1, 2, 0.37, 0.5},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

const char *const conv_bench_layer_names[] = {"LeNet-c1", "LeNet-c2", "Alex-c1", "Alex-c2",
                                              "Alex-c3",  "Alex-c4",  "Alex-c5", NULL};

/*
 * The cpu backend's convolution path: the layer as a one-node graph
 * (input [-1, C, H, W], conv2d, output [-1, O, OH, OW]) whose weights keep
 * the 4-bit codebook they were drawn from, on an engine of T PEs. The
 * engine lowers the input to patches and walks the compressed weights with
 * its batch kernels (engine/cpu/graph.c).
 */
typedef struct conv_net {
    eie_engine_t *engine;
    eie_net_t *net;
} conv_net_t;

static void conv_engine_release(void *p)
{
    conv_net_t *c = p;
    if (c == NULL)
        return;
    eie_net_free(c->net);
    eie_engine_free(c->engine);
    free(c);
}

/* The layer as a one-node graph model (the engine's, and --export's);
 * NULL, with the reason on stderr, on failure. */
static eie_model_t *conv_model(const bl_conv_shape_t *s, const float *w, const float *bias)
{
    const uint32_t cols = (uint32_t)(s->C / s->groups * s->K * s->K);
    const size_t nw = (size_t)s->O * cols;
    float cb[256] = {0};
    unsigned ncb = 1;
    uint8_t *codes = malloc(nw);
    eie_builder_t *b = NULL;
    eie_model_t *m = NULL;
    uint8_t *file = NULL;
    size_t len = 0;
    eie_error_t err = {0};
    int ok = codes != NULL;
    /* the distinct nonzero values are the codebook (at most 255) */
    for (size_t i = 0; ok && i < nw; i++) {
        unsigned k = 0;
        if (w[i] != 0.0f) {
            for (k = 1; k < ncb && cb[k] != w[i]; k++)
                ;
            if (k == ncb) {
                ok = ncb < 256;
                if (ok)
                    cb[ncb++] = w[i];
            }
        }
        codes[i] = (uint8_t)k;
    }
    unsigned bits = 1;
    while ((1u << bits) < ncb)
        bits++;
    eie_shape_t in = {.rank = 4, .dims = {-1, s->C, s->H, s->W}};
    const char *inputs[] = {"x"};
    eie_node_desc_t d = {.kind = EIE_LAYER_CONV2D,
                         .name = s->name,
                         .n_inputs = 1,
                         .inputs = inputs,
                         .output = "y",
                         .rows = (uint32_t)s->O,
                         .weights = {.storage = EIE_STORAGE_SHARED,
                                     .code_bits = bits,
                                     .codebook = cb,
                                     .codes = codes,
                                     .bias = bias},
                         .conv = {.kernel_h = (uint32_t)s->K,
                                  .kernel_w = (uint32_t)s->K,
                                  .stride_h = (uint32_t)s->stride,
                                  .stride_w = (uint32_t)s->stride,
                                  .pad_top = (uint32_t)s->pad,
                                  .pad_left = (uint32_t)s->pad,
                                  .pad_bottom = (uint32_t)s->pad,
                                  .pad_right = (uint32_t)s->pad,
                                  .dilation_h = 1,
                                  .dilation_w = 1,
                                  .groups = (uint32_t)s->groups}};
    ok = ok && eie_builder_init_graph(s->name, "", &b, &err) == EIE_STATUS_OK &&
         eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &in, &err) == EIE_STATUS_OK &&
         eie_builder_add_node(b, &d, &err) == EIE_STATUS_OK &&
         eie_builder_add_output(b, "y", &err) == EIE_STATUS_OK &&
         eie_builder_write_memory(b, &file, &len, &err) == EIE_STATUS_OK &&
         eie_model_load_memory(file, len, NULL, &m, &err) == EIE_STATUS_OK;
    if (!ok && err.msg[0])
        fprintf(stderr, "eie-bench: %s: engine conv: %s\n", s->name, err.msg);
    free(codes);
    free(file);
    eie_builder_free(b);
    return ok ? m : NULL;
}

static void *conv_engine_prepare(const bl_conv_shape_t *s, const float *w, const float *bias, int T)
{
    conv_net_t *c = calloc(1, sizeof *c);
    eie_model_t *m = c != NULL ? conv_model(s, w, bias) : NULL;
    eie_error_t err = {0};
    eie_engine_opts_t o = eie_engine_opts_default();
    o.n_pes = (unsigned)T;
    int ok = m != NULL && eie_engine_init(&o, &c->engine, &err) == EIE_STATUS_OK &&
             eie_net_init(c->engine, m, &c->net, &err) == EIE_STATUS_OK;
    if (!ok && err.msg[0])
        fprintf(stderr, "eie-bench: %s: engine conv: %s\n", s->name, err.msg);
    eie_model_free(m);
    if (!ok) {
        conv_engine_release(c);
        return NULL;
    }
    return c;
}

static void conv_engine_run(void *p, const float *x, float *y)
{
    conv_net_t *c = p;
    eie_error_t err;
    if (eie_net_run(c->net, x, 1, y, NULL, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eie-bench: engine conv: %s\n", err.msg);
        exit(1);
    }
}

typedef struct conv_engine {
    void *(*prepare)(const bl_conv_shape_t *s, const float *w, const float *bias, int T);
    void (*run)(void *net, const float *x, float *y);
    void (*release)(void *net);
} conv_engine_t;
static const conv_engine_t conv_engine = {
    .prepare = conv_engine_prepare, .run = conv_engine_run, .release = conv_engine_release};

enum { C_CPU, C_SPARSE, C_SPARSE_A, C_BLAS, C_BLASF0 };
#define C_MAX (C_BLASF0 + 4)

typedef struct conv_ctx {
    const bl_conv_shape_t *s;
    void *net;
    bl_conv_t *sp[2]; /* plain, aligned */
    const bench_blas_t *blas;
    const float *w, *bias, *x;
    float *col, *y;
    int T;
} conv_ctx_t;

static void blas_conv(const conv_ctx_t *c, const bench_blas_t *bl)
{
    const bl_conv_shape_t *s = c->s;
    const int OH = bl_conv_oh(s), OW = bl_conv_ow(s), G = s->groups;
    const int Og = s->O / G, Kd = s->C / G * s->K * s->K, N = OH * OW;
    bl->set_num_threads(c->T);
    for (int o = 0; o < s->O; o++)
        for (int i = 0; i < N; i++)
            c->y[(size_t)o * N + i] = c->bias[o];
    for (int g = 0; g < G; g++) {
        bl_conv_im2col(s, c->x, g, c->col);
        /* cblas row major (101), no transpose (111) */
        bl->sgemm(101, 111, 111, Og, N, Kd, 1.0f, c->w + (size_t)g * Og * Kd, Kd, c->col, N, 1.0f,
                  c->y + (size_t)g * Og * N, N);
    }
}

static void run_conv(const conv_ctx_t *c, int m)
{
    if (m == C_CPU)
        conv_engine.run(c->net, c->x, c->y);
    else if (m == C_SPARSE || m == C_SPARSE_A)
        bl_conv_sparse_run(c->sp[m - C_SPARSE], c->x, c->y);
    else
        blas_conv(c, &c->blas[m - C_BLAS]);
}

/* float64 reference and the bound of eie_bench.c's reference_init. */
static void conv_reference(const bl_conv_shape_t *s, const float *w, const float *bias,
                           const float *x, double *ref, double *tol)
{
    const int OH = bl_conv_oh(s), OW = bl_conv_ow(s), Cg = s->C / s->groups;
    const int Og = s->O / s->groups, K = s->K;
    const double u = ldexp(1.0, -24);
    for (int o = 0; o < s->O; o++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double sum = bias[o], mag = fabs(bias[o]);
                unsigned n = 2;
                for (int cl = 0; cl < Cg; cl++)
                    for (int kh = 0; kh < K; kh++)
                        for (int kw = 0; kw < K; kw++) {
                            int ih = oh * s->stride + kh - s->pad;
                            int iw = ow * s->stride + kw - s->pad;
                            if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
                                continue;
                            int ch = o / Og * Cg + cl;
                            double p = (double)w[(((size_t)o * Cg + cl) * K + kh) * K + kw] *
                                       x[((size_t)ch * s->H + ih) * s->W + iw];
                            sum += p;
                            mag += fabs(p);
                            n += p != 0.0;
                        }
                size_t i = ((size_t)o * OH + oh) * OW + ow;
                ref[i] = sum;
                tol[i] = n * u / (1 - n * u) * mag + 1e-30;
            }
}

/* What conv_bench_main allocates for a layer. */
static void free_layer(float *w, float *bias, float *x, float *y, float *col, double *ref,
                       double *tol)
{
    free(w);
    free(bias);
    free(x);
    free(y);
    free(col);
    free(ref);
    free(tol);
}

int conv_bench_main(const conv_bench_opts_t *o)
{
    static const char *const names[] = {"cpu", "sparse", "sparse-a", "blas", "blas-f", NULL};
    if (o->methods && bench_check_list("--methods", o->methods, names) < 0)
        return 2;
    if (o->corrupt && bench_check_list("--check-corrupt", o->corrupt, names) < 0)
        return 2;
    int n_methods = C_BLAS + o->n_blas;
    int on[C_MAX];
    for (int m = 0; m < n_methods; m++)
        on[m] = bench_listed(o->methods, m < C_BLAS ? names[m] : m == C_BLAS ? "blas" : "blas-f");
    eie_pool_t *pool = NULL;
    if (eie_pool_init(2, &pool) != 0) {
        fprintf(stderr, "eie-bench: cannot start the baselines' threads\n");
        return 1;
    }
    if (o->export_dir == NULL) {
        printf("batch 1, reps %d, medians in us; blas = im2col + sgemm per group; sparse/blas = "
               "sparse time / best OpenBLAS time\n",
               o->reps);
        printf("%-9s %1s %9s %9s %-7s %9s %9s %-8s %11s %9s %9s %5s %5s\n", "layer", "T", "cpu",
               "sparse", "sp-kind", "blas", "blas-f", "f-core", "sparse/blas", "cpu/sp", "MMACs",
               "wdens", "adens");
    }
    uint64_t seed = 4242;
    for (size_t li = 0; li < N_SHAPES; li++) {
        const bl_conv_shape_t *s = &shapes[li];
        if (!bench_listed(o->layers, s->name))
            continue;
        const int OH = bl_conv_oh(s), OW = bl_conv_ow(s), Cg = s->C / s->groups;
        const size_t nw = (size_t)s->O * Cg * s->K * s->K;
        const size_t nx = (size_t)s->C * s->H * s->W, ny = (size_t)s->O * OH * OW;
        float *w = malloc(nw * sizeof(float)), *bias = malloc((size_t)s->O * sizeof(float));
        float *x = malloc(nx * sizeof(float)), *y = malloc(ny * sizeof(float));
        float *col = malloc((size_t)Cg * s->K * s->K * OH * OW * sizeof(float));
        double *ref = malloc(ny * sizeof(double)), *tol = malloc(ny * sizeof(double));
        if (!w || !bias || !x || !y || !col || !ref || !tol) {
            fprintf(stderr, "eie-bench: %s: out of memory\n", s->name);
            return 1;
        }
        /* As th_add_random_fc: a 4-bit codebook, random pruning mask. */
        float cb[16];
        for (int k = 1; k < 16; k++)
            cb[k] = (th_uniform(&seed) * 2.0f - 1.0f) + (k % 2 ? 0.1f : -0.1f);
        for (size_t i = 0; i < nw; i++)
            w[i] = th_uniform(&seed) < s->wdens ? cb[1 + th_rand(&seed) % 15] : 0.0f;
        for (int i = 0; i < s->O; i++)
            bias[i] = th_uniform(&seed) - 0.5f;
        for (size_t i = 0; i < nx; i++)
            x[i] = th_uniform(&seed) < s->adens ? th_uniform(&seed) : 0.0f;
        conv_reference(s, w, bias, x, ref, tol);
        if (o->export_dir != NULL) {
            eie_model_t *m = conv_model(s, w, bias);
            int rc =
                m == NULL ? -1 : bench_export_layer(o->export_dir, s->name, m, x, nx, ref, tol, ny);
            eie_model_free(m);
            free_layer(w, bias, x, y, col, ref, tol);
            if (rc != 0) {
                eie_pool_free(pool);
                return 1;
            }
            continue;
        }
        conv_ctx_t ctx[2];
        for (int ti = 0; ti < o->nt; ti++) {
            int T = o->threads[ti];
            ctx[ti] = (conv_ctx_t){
                .s = s, .blas = o->blas, .w = w, .bias = bias, .x = x, .col = col, .y = y, .T = T};
            for (int a = 0; a < 2; a++)
                ctx[ti].sp[a] = bl_conv_init(s, w, bias, (unsigned)T, pool, a);
            ctx[ti].net = on[C_CPU] ? conv_engine.prepare(s, w, bias, T) : NULL;
            if (!ctx[ti].sp[0] || !ctx[ti].sp[1] || (on[C_CPU] && ctx[ti].net == NULL)) {
                fprintf(stderr, "eie-bench: %s: cannot prepare the layer\n", s->name);
                return 1;
            }
        }
        /* Checked before anything is timed. */
        for (int ti = 0; ti < o->nt; ti++)
            for (int m = 0; m < n_methods; m++) {
                if (!on[m])
                    continue;
                for (size_t i = 0; i < ny; i++)
                    y[i] = NAN;
                run_conv(&ctx[ti], m);
                const char *mname = m < C_BLAS ? names[m] : m == C_BLAS ? "blas" : "blas-f";
                if (o->corrupt && strcmp(o->corrupt, mname) == 0)
                    y[ny / 2] += 1e-3f * (1.0f + fabsf(y[ny / 2]));
                size_t bad = 0, worst = 0;
                for (size_t i = 0; i < ny; i++)
                    if (!(fabs((double)y[i] - ref[i]) <= tol[i]) && bad++ == 0)
                        worst = i;
                if (bad) {
                    fprintf(stderr,
                            "eie-bench: %s, %d thread(s): method %s%s%s disagrees with the "
                            "float64 reference at %zu of %zu outputs; first: output %zu: %.9g, "
                            "reference %.9g, bound %.3g\n",
                            s->name, ctx[ti].T, mname, m >= C_BLAS ? " core " : "",
                            m >= C_BLAS ? o->blas[m - C_BLAS].core : "", bad, ny, worst,
                            (double)y[worst], ref[worst], tol[worst]);
                    return BENCH_EXIT_MISMATCH;
                }
            }
        double *times[2][C_MAX];
        for (int ti = 0; ti < o->nt; ti++)
            for (int m = 0; m < n_methods; m++)
                times[ti][m] = calloc((size_t)o->reps, sizeof(double));
        for (int r = -2; r < o->reps; r++)
            for (int ti = 0; ti < o->nt; ti++)
                for (int mj = 0; mj < n_methods; mj++) {
                    int m = (mj + r + 2) % n_methods;
                    if (!on[m])
                        continue;
                    if (o->cold) {
                        bench_flush();
                    } else {
                        double w0 = bench_now_us();
                        do
                            run_conv(&ctx[ti], m);
                        while (bench_now_us() - w0 < o->warm_us);
                    }
                    double t0 = bench_now_us();
                    run_conv(&ctx[ti], m);
                    double t1 = bench_now_us();
                    if (r >= 0)
                        times[ti][m][r] = t1 - t0;
                }
        for (int ti = 0; ti < o->nt; ti++) {
            double t[C_MAX] = {0};
            for (int m = 0; m < n_methods; m++)
                t[m] = on[m] ? bench_median(times[ti][m], o->reps) : 0;
            int bf = -1;
            for (int k = 1; k < o->n_blas; k++)
                if (t[C_BLAS + k] > 0 && (bf < 0 || t[C_BLAS + k] < t[C_BLAS + bf]))
                    bf = k;
            double f = bf > 0 ? t[C_BLAS + bf] : 0;
            int show_f = f > 0 && (t[C_BLAS] <= 0 || f < t[C_BLAS]);
            double bb = show_f ? f : t[C_BLAS];
            /* the faster sparse form */
            int sa = t[C_SPARSE_A] > 0 && (t[C_SPARSE] <= 0 || t[C_SPARSE_A] < t[C_SPARSE]);
            double sp = t[sa ? C_SPARSE_A : C_SPARSE];
            char cpu[16], fcol[16], cr[16];
            snprintf(cpu, sizeof cpu, t[C_CPU] > 0 ? "%.1f" : "n/a", t[C_CPU]);
            snprintf(cr, sizeof cr, t[C_CPU] > 0 && sp > 0 ? "%.2f" : "n/a",
                     sp > 0 ? t[C_CPU] / sp : 0);
            snprintf(fcol, sizeof fcol, show_f ? "%.1f" : "-", f);
            printf("%-9s %d %9s %9.1f %-7s %9.1f %9s %-8s %11.2f %9s %9.1f %5.2f %5.2f\n", s->name,
                   ctx[ti].T, cpu, sp,
                   sp <= 0 ? "-"
                   : sa    ? "aligned"
                           : "plain",
                   t[C_BLAS], fcol, show_f ? o->blas[bf].core : "-", bb > 0 ? sp / bb : 0, cr,
                   (double)s->O * OH * OW * Cg * s->K * s->K / 1e6, s->wdens, s->adens);
            for (int m = 0; m < n_methods; m++)
                free(times[ti][m]);
        }
        fflush(stdout);
        for (int ti = 0; ti < o->nt; ti++) {
            bl_conv_free(ctx[ti].sp[0]);
            bl_conv_free(ctx[ti].sp[1]);
            if (ctx[ti].net)
                conv_engine.release(ctx[ti].net);
        }
        free_layer(w, bias, x, y, col, ref, tol);
    }
    eie_pool_free(pool);
    return 0;
}
