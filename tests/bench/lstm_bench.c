/*
 * lstm_bench.c - eie-bench --lstm: one LSTM step, at batch 1 as EIE times
 * NT-LSTM (EIE Table III: 1201 x 2400, the input [x_t, h_{t-1}] and the
 * bias column against the four gates of H = 600 units), but the whole
 * step: the matrix and the element-wise unit; with --batches, a step of B
 * sequences at once (each one lane, its own input and state).
 *
 *   cpu     the engine: a net of one lstm node whose state h_{t-1}, c_{t-1}
 *           is fed by graph inputs (so each timed run is a step from a
 *           dense, nonzero state), Y and Y_c out; B sequences side by side
 *           in one run (eie_net_run_sequences)
 *   csc, csc-s, csr, csr-g  the float sparse baselines (baselines.h) on
 *           the same 4H x (I + H) matrix over z = [x_t, h_{t-1}] (B of
 *           them, batch-major), then the gates
 *   blas    OpenBLAS sgemv (sgemm for B > 1) on the dense matrix, then the
 *           gates
 *
 * The gates are the engine's own vector cells (the cpu kernel variant's
 * lstm_cells: eie_op_lstm_cells compiled for its registers) for every
 * method, on one thread for the baselines (the cpu backend spreads them over
 * its PEs with the units). The baselines' matrix has its rows in gate
 * blocks (i, o, f, c; ONNX's order), so their sums come out split by gate
 * as the cells take them; the model's rows interleave the gates unit by
 * unit (4j + q), as the engine's PEs own them. Every method's h_t and c_t
 * are checked against a float64 step before anything is timed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"
#include "bench_common.h"
#include "cpu/kernels.h"
#include "lstm_bench.h"

#include "../engine/format/graph_helpers.h"

typedef struct lstm_layer {
    const char *name;
    uint32_t I, H;
    double wdens, xdens;
} lstm_layer_t;

static const lstm_layer_t lstm_layers[] = {
    /* NT-LSTM: 600 inputs (NT-We's output) and 600 units; 10% of weights, 4-bit */
    {"NT-LSTM", 600, 600, 0.10, 1.0},
    /* not EIE's: the --smoke layer, odd sizes */
    {"tiny-LSTM", 7, 13, 0.3, 0.6},
};
#define N_LSTM (sizeof lstm_layers / sizeof lstm_layers[0])

const char *const lstm_bench_layer_names[] = {"NT-LSTM", "tiny-LSTM", NULL};

enum { M_CPU = 0, M_BL0 = 1, M_BLAS = M_BL0 + BL_METHOD_COUNT, M_BLASF0 };
#define MAX_SEQ BL_MAX_BATCH /* sequences a step at most (--batches) */
#define MAX_BLAS 4
#define M_MAX    (M_BLAS + MAX_BLAS)

/* One step's state and buffers; h_out, c_out receive the method's h_t, c_t. */
typedef struct step {
    eie_net_t *net;
    bl_fc_t *bl;
    const bench_blas_t *blas;
    /* x, h, c, h_out, c_out: B lanes, lane b at b I or b H; w, bias: the model's
       rows, 4j + q */
    const float *w, *bias, *x, *h, *c;
    const float *wm, *bm; /* the baselines': gate blocks, q H + j */
    eie_lstm_cells_fn cells;
    float *z, *g, *h_out, *c_out; /* z: B x (I + H), g: B x 4H, batch-major */
    uint32_t I, H;
    size_t B;
    int T;
} step_t;

static void gates(const step_t *s)
{
    size_t H = s->H;
    memcpy(s->c_out, s->c, s->B * H * sizeof(float));
    for (size_t b = 0; b < s->B; b++) {
        const float *g = s->g + b * 4 * H;
        s->cells(g, g + H, g + 2 * H, g + 3 * H, s->c_out + b * H, s->h_out + b * H, H);
    }
}

static void run_step(const step_t *s, int m)
{
    if (m == M_CPU) {
        const float *in[3] = {s->x, s->h, s->c};
        float *out[2] = {s->h_out, s->c_out};
        eie_error_t err;
        eie_net_run_sequences(s->net, in, s->B, 1, NULL, out, NULL, &err);
        return;
    }
    /* z = [x_t, h_{t-1}] a lane: the copy is part of a step */
    size_t C = (size_t)s->I + s->H;
    for (size_t b = 0; b < s->B; b++) {
        memcpy(s->z + b * C, s->x + b * s->I, s->I * sizeof(float));
        memcpy(s->z + b * C + s->I, s->h + b * s->H, s->H * sizeof(float));
    }
    if (m < M_BLAS)
        bl_fc_run(s->bl, (bl_method_t)(m - M_BL0), s->z, s->B, s->g);
    else
        bench_blas_fc(s->blas, s->wm, s->bm, 4 * s->H, s->I + s->H, s->z, s->B, s->T, s->g);
    gates(s);
}

/*
 * The float64 step and, per output, the bound a float32 evaluation must
 * meet: each pre-activation's sum within gamma_n (sum |w z| + |b|) (Higham,
 * sec. 3.1, as eie-bench's layer check), carried through the gates (the
 * sigmoid's slope is at most 1/4, tanh's 1), plus 16 units in the last
 * place of |c| + |c_t| + 1 for the float gate functions and products.
 */
typedef struct lstm_ref {
    double *h, *c, *tol_h, *tol_c;
} lstm_ref_t;

static double sigm(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

/* The reference of s's B lanes, lane b's unit j at b H + j. */
static int lstm_ref_init(const step_t *s, lstm_ref_t *r)
{
    uint32_t H = s->H, C = s->I + s->H;
    size_t n_all = s->B * H;
    r->h = calloc(n_all, sizeof(double));
    r->c = calloc(n_all, sizeof(double));
    r->tol_h = calloc(n_all, sizeof(double));
    r->tol_c = calloc(n_all, sizeof(double));
    if (!r->h || !r->c || !r->tol_h || !r->tol_c)
        return -1;
    const double u = ldexp(1.0, -24);
    for (size_t at = 0; at < n_all; at++) {
        size_t b = at / H, j = at % H;
        const float *x = s->x + b * s->I, *h = s->h + b * H;
        double g[4], e[4];
        for (int q = 0; q < 4; q++) {
            size_t row = 4 * j + (size_t)q;
            double sum = s->bias[row], mag = fabs(s->bias[row]);
            unsigned n = 2;
            for (uint32_t k = 0; k < C; k++) {
                double zk = k < s->I ? x[k] : h[k - s->I];
                double p = (double)s->w[row * C + k] * zk;
                sum += p;
                mag += fabs(p);
                n += p != 0.0;
            }
            g[q] = sum;
            e[q] = n * u / (1 - n * u) * mag + 1e-30;
        }
        double i = sigm(g[0]), o = sigm(g[1]), f = sigm(g[2]), cand = tanh(g[3]);
        double cp = s->c[at], ct = f * cp + i * cand;
        double ulps = 16 * u * (1.0 + fabs(cp) + fabs(ct));
        r->c[at] = ct;
        r->h[at] = o * tanh(ct);
        r->tol_c[at] = fabs(cp) * 0.25 * e[2] + fabs(cand) * 0.25 * e[0] + i * e[3] + ulps;
        r->tol_h[at] = 0.25 * e[1] * fabs(tanh(ct)) + o * r->tol_c[at] + ulps;
    }
    return 0;
}

static void lstm_ref_free(lstm_ref_t *r)
{
    free(r->h);
    free(r->c);
    free(r->tol_h);
    free(r->tol_c);
}

static int lstm_ref_check(const lstm_ref_t *r, const step_t *s, const char *layer,
                          const char *method)
{
    for (int k = 0; k < 2; k++)
        for (size_t j = 0; j < s->B * s->H; j++) {
            double got = k ? s->c_out[j] : s->h_out[j], want = k ? r->c[j] : r->h[j];
            double tol = k ? r->tol_c[j] : r->tol_h[j];
            if (!(fabs(got - want) <= tol)) {
                fprintf(stderr,
                        "eie-bench: %s, %d thread(s), %zu sequence(s): method %s disagrees with "
                        "the float64 LSTM step: %s[%zu] of sequence %zu = %.9g, reference %.9g, "
                        "bound %.3g\n",
                        layer, s->T, s->B, method, k ? "c_t" : "h_t", j % s->H, j / s->H, got,
                        want, tol);
                return -1;
            }
        }
    return 0;
}

/* The layer as eie runs it: X [-1,1,I], h0 and c0 [1,1,H] fed, Y and Y_c out. */
static eie_model_t *step_model(const char *name, uint32_t I, uint32_t H, const eie_weights_t *w,
                               eie_error_t *err)
{
    eie_builder_t *b;
    eie_model_t *m = NULL;
    if (eie_builder_init_graph(name, "one lstm step", &b, err) != EIE_STATUS_OK)
        return NULL;
    eie_shape_t xs = {.rank = 3, .dims = {-1, 1, I}}, ss = {.rank = 3, .dims = {1, 1, H}};
    const char *ins[1] = {"x"};
    eie_node_desc_t d = {.kind = EIE_LAYER_LSTM,
                         .name = "lstm",
                         .n_inputs = 1,
                         .inputs = ins,
                         .output = "Y",
                         .rows = 4 * H,
                         .weights = *w};
    d.lstm = (eie_lstm_desc_t){.hidden_size = H,
                               .initial_h_input = "h0",
                               .initial_c_input = "c0",
                               .output_h = "Y_h",
                               .output_c = "Y_c"};
    if (eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &xs, err) == EIE_STATUS_OK &&
        eie_builder_add_input(b, "h0", EIE_DTYPE_FP32, &ss, err) == EIE_STATUS_OK &&
        eie_builder_add_input(b, "c0", EIE_DTYPE_FP32, &ss, err) == EIE_STATUS_OK &&
        eie_builder_add_node(b, &d, err) == EIE_STATUS_OK &&
        eie_builder_add_output(b, "Y", err) == EIE_STATUS_OK &&
        eie_builder_add_output(b, "Y_c", err) == EIE_STATUS_OK)
        m = th_load_builder(b);
    eie_builder_free(b);
    return m;
}

/* The first lstm node of the model at path, as a step model and its dense form. */
static eie_model_t *model_layer(const char *path, uint32_t *I, uint32_t *H, eie_error_t *err)
{
    eie_model_t *src, *m = NULL;
    if (eie_model_load_file(path, NULL, &src, err) != EIE_STATUS_OK)
        return NULL;
    for (size_t i = 0; i < eie_model_layer_count(src) && m == NULL; i++) {
        eie_layer_info_t li;
        eie_model_layer_info(src, i, &li);
        if (li.kind != EIE_LAYER_LSTM)
            continue;
        *H = li.hidden_size;
        *I = li.cols - li.hidden_size;
        size_t n = (size_t)li.rows * li.cols;
        eie_weights_t w = {
            .storage = li.storage, .code_bits = li.code_bits, .bias = eie_model_fc_bias(src, i)};
        float *dense = NULL;
        uint8_t *codes = NULL;
        if (li.storage == EIE_STORAGE_EXACT) {
            if ((dense = malloc(n * sizeof *dense)) != NULL &&
                eie_model_fc_dense(src, i, dense) == EIE_STATUS_OK)
                w.values = dense;
        } else if ((codes = malloc(n)) != NULL &&
                   eie_model_fc_codes(src, i, codes) == EIE_STATUS_OK) {
            w.codes = codes;
            w.codebook = eie_model_fc_codebook(src, i);
        }
        if (w.values != NULL || w.codes != NULL)
            m = step_model(eie_model_name(src), *I, *H, &w, err);
        else
            eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory reading %s", path);
        free(dense);
        free(codes);
        if (m == NULL)
            break;
    }
    if (m == NULL && err->status == EIE_STATUS_OK)
        eie_error_set(err, EIE_STATUS_NOT_FOUND, "%s has no lstm node", path);
    eie_model_free(src);
    return m;
}

int lstm_bench_main(const lstm_bench_opts_t *o)
{
    int n_methods = M_BLAS + o->n_blas, on[M_MAX];
    for (int m = 0; m < n_methods; m++) {
        const char *name = m < M_BLAS    ? (m == M_CPU ? "cpu" : bl_method_name(m - M_BL0))
                           : m == M_BLAS ? "blas"
                                         : "blas-f";
        on[m] = bench_listed(o->methods, name);
    }
    eie_pool_t *pool = NULL;
    if (eie_pool_init(2, &pool) != 0) {
        fprintf(stderr, "eie-bench: cannot start the baselines' threads\n");
        return 1;
    }
    printf("lstm: one step of B sequences (the 4H x (I+H) matrix over [x_t, h_{t-1}] and the "
           "gates; cpu: B > 1 side by side in one run); reps %d; medians in us for the B; "
           "cpu/best = cpu / best float sparse; blas/cpu = best OpenBLAS / cpu\n",
           o->reps);
    printf("%-10s %4s %4s %6s %2s %1s %8s %8s %8s %8s %8s %-5s %8s %8s %8s %8s\n", "layer", "I",
           "H", "nnz", "B", "T", "cpu", "csc", "csc-s", "csr", "csr-g", "best", "blas", "blas-f",
           "cpu/best", "blas/cpu");
    int status = 0;
    uint64_t seed = 4242;
    for (size_t li = 0; li <= N_LSTM && status == 0; li++) {
        /* the table's layers, then the model's */
        const char *lname;
        uint32_t I, H;
        double xdens = 1.0;
        eie_error_t err = {0};
        eie_model_t *m;
        if (li < N_LSTM) {
            const lstm_layer_t *L = &lstm_layers[li];
            if (o->layers == NULL ? (o->model != NULL || li > 0)
                                  : !bench_listed(o->layers, L->name))
                continue;
            lname = L->name;
            I = L->I;
            H = L->H;
            xdens = L->xdens;
            eie_weights_t w =
                th_random_weights(4 * H, I + H, L->wdens, EIE_STORAGE_SHARED, 4, &seed);
            m = step_model(L->name, I, H, &w, &err);
            th_weights_free(&w);
        } else {
            if (o->model == NULL)
                continue;
            m = model_layer(o->model, &I, &H, &err);
            lname = m != NULL ? eie_model_name(m) : o->model;
        }
        if (m == NULL) {
            fprintf(stderr, "eie-bench: %s: %s\n", lname,
                    err.msg[0] ? err.msg : "cannot build the step model");
            status = 1;
            break;
        }
        uint32_t C = I + H, R = 4 * H;
        eie_layer_info_t info;
        eie_model_layer_info(m, 0, &info);
        float *w = malloc((size_t)R * C * sizeof(float));
        float *x = malloc(MAX_SEQ * I * sizeof(float)), *h = malloc(MAX_SEQ * H * sizeof(float));
        float *c = malloc(MAX_SEQ * H * sizeof(float)), *z = malloc(MAX_SEQ * C * sizeof(float));
        float *g = malloc(MAX_SEQ * R * sizeof(float)), *ho = malloc(MAX_SEQ * H * sizeof(float));
        float *co = malloc(MAX_SEQ * H * sizeof(float));
        float *wm = malloc((size_t)R * C * sizeof(float)), *bm = malloc(R * sizeof(float));
        if (!w || !x || !h || !c || !z || !g || !ho || !co || !wm || !bm) {
            fprintf(stderr, "eie-bench: %s: out of memory\n", lname);
            return 1;
        }
        eie_model_fc_dense(m, 0, w);
        const float *bias = eie_model_fc_bias(m, 0);
        for (uint32_t j = 0; j < H; j++)
            for (uint32_t q = 0; q < 4; q++) {
                size_t from = 4 * (size_t)j + q, to = (size_t)q * H + j;
                memcpy(wm + to * C, w + from * C, C * sizeof(float));
                bm[to] = bias[from];
            }
        const eie_cpu_kernel_t *kern;
        if (eie_cpu_kernel_select(NULL, &kern, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eie-bench: %s\n", err.msg);
            return 1;
        }
        /* a step from the middle of each sequence: h in (-1, 1), c in (-2, 2), both
           dense */
        for (size_t b = 0; b < MAX_SEQ; b++) {
            for (uint32_t k = 0; k < I; k++)
                x[b * I + k] = th_uniform(&seed) < xdens ? th_uniform(&seed) * 2.0f - 1.0f : 0.0f;
            for (uint32_t k = 0; k < H; k++) {
                h[b * H + k] = (th_uniform(&seed) * 2.0f - 1.0f) * 0.95f;
                c[b * H + k] = (th_uniform(&seed) * 2.0f - 1.0f) * 2.0f;
            }
        }
        step_t base = {.w = w,
                       .bias = bias,
                       .wm = wm,
                       .bm = bm,
                       .cells = kern->lstm_cells,
                       .x = x,
                       .h = h,
                       .c = c,
                       .z = z,
                       .g = g,
                       .h_out = ho,
                       .c_out = co,
                       .I = I,
                       .H = H,
                       .B = MAX_SEQ};
        lstm_ref_t ref; /* of every lane; a run of B checks the first B */
        if (lstm_ref_init(&base, &ref) != 0) {
            fprintf(stderr, "eie-bench: %s: out of memory\n", lname);
            return 1;
        }
        eie_engine_t *eng[2];
        step_t st[2];
        for (int ti = 0; ti < o->nt; ti++) {
            eie_engine_opts_t eo = eie_engine_opts_default();
            eo.n_pes = (unsigned)o->threads[ti];
            st[ti] = base;
            st[ti].T = o->threads[ti];
            if (eie_engine_init(&eo, &eng[ti], &err) != EIE_STATUS_OK ||
                eie_net_init(eng[ti], m, &st[ti].net, &err) != EIE_STATUS_OK) {
                fprintf(stderr, "eie-bench: %s\n", err.msg);
                return 1;
            }
            if ((st[ti].bl = bl_fc_init(wm, bm, R, C, (unsigned)o->threads[ti], pool)) == NULL) {
                fprintf(stderr, "eie-bench: %s: out of memory for the baselines\n", lname);
                return 1;
            }
        }
        for (int bi = 0; bi < o->nb && status == 0; bi++) {
            size_t B = (size_t)o->batches[bi];
            for (int ti = 0; ti < o->nt; ti++)
                st[ti].B = B;
            if (B > eie_net_max_sequences(st[0].net)) {
                fprintf(stderr, "eie-bench: %s: %zu sequences, over the %zu one run takes\n", lname,
                        B, eie_net_max_sequences(st[0].net));
                return 1;
            }
            int avail[M_MAX];
            for (int mi = 0; mi < n_methods; mi++)
                avail[mi] = on[mi] && (mi < M_BL0 || mi >= M_BLAS ||
                                       bl_method_available((bl_method_t)(mi - M_BL0), B));
            for (int ti = 0; ti < o->nt; ti++)
                for (int mi = 0; mi < n_methods; mi++) {
                    if (!avail[mi])
                        continue;
                    step_t s = st[ti];
                    s.blas = mi >= M_BLAS ? &o->blas[mi - M_BLAS] : NULL;
                    for (size_t j = 0; j < B * H; j++)
                        ho[j] = co[j] = NAN;
                    run_step(&s, mi);
                    const char *cname = mi > M_BLAS    ? "blas-f"
                                        : mi == M_BLAS ? "blas"
                                        : mi == M_CPU  ? "cpu"
                                                       : bl_method_name(mi - M_BL0);
                    if (o->corrupt && strcmp(o->corrupt, cname) == 0)
                        ho[H / 2] += 1e-3f * (1.0f + fabsf(ho[H / 2]));
                    if (lstm_ref_check(&ref, &s, lname, cname) != 0)
                        status = BENCH_EXIT_MISMATCH;
                }
            if (status != 0)
                return status; /* as eie-bench's layer check: the layers stay allocated */
            double *times[2][M_MAX];
            for (int ti = 0; ti < o->nt; ti++)
                for (int mi = 0; mi < n_methods; mi++)
                    times[ti][mi] = calloc((size_t)o->reps, sizeof(double));
            for (int r = -2; r < o->reps; r++)
                for (int ti = 0; ti < o->nt; ti++)
                    for (int mj = 0; mj < n_methods; mj++) {
                        int mi = (mj + r + 2) % n_methods; /* the order rotates each round */
                        if (!avail[mi])
                            continue;
                        step_t s = st[ti];
                        s.blas = mi >= M_BLAS ? &o->blas[mi - M_BLAS] : NULL;
                        if (o->cold) {
                            bench_flush();
                        } else {
                            double w0 = bench_now_us();
                            do
                                run_step(&s, mi);
                            while (bench_now_us() - w0 < o->warm_us);
                        }
                        double t0 = bench_now_us();
                        run_step(&s, mi);
                        double t1 = bench_now_us();
                        if (r >= 0)
                            times[ti][mi][r] = t1 - t0;
                    }
            for (int ti = 0; ti < o->nt; ti++) {
                double t[M_MAX] = {0};
                int best = -1, bf = -1;
                for (int mi = 0; mi < n_methods; mi++)
                    t[mi] = avail[mi] ? bench_median(times[ti][mi], o->reps) : 0;
                for (int mi = M_BL0; mi < M_BLAS; mi++)
                    if (t[mi] > 0 && (best < 0 || t[mi] < t[best]))
                        best = mi;
                for (int mi = M_BLAS + 1; mi < n_methods; mi++)
                    if (t[mi] > 0 && (bf < 0 || t[mi] < t[bf]))
                        bf = mi;
                double bb = t[M_BLAS] > 0 && (bf < 0 || t[M_BLAS] <= t[bf]) ? t[M_BLAS]
                            : bf >= 0                                       ? t[bf]
                                                                            : 0;
                char col[M_BLAS + 2][16];
                for (int k = 0; k < M_BLAS + 1; k++)
                    snprintf(col[k], sizeof col[k], t[k] > 0 ? "%.1f" : "-", t[k]);
                snprintf(col[M_BLAS + 1], sizeof col[0],
                         bf >= 0 && t[bf] < t[M_BLAS] ? "%.1f" : "-", bf >= 0 ? t[bf] : 0.0);
                printf("%-10s %4u %4u %6llu %2zu %d %8s %8s %8s %8s %8s %-5s %8s %8s %8.2f %8.2f\n",
                       lname, I, H, (unsigned long long)info.nnz, B, o->threads[ti], col[0], col[1],
                       col[2], col[3], col[4], best >= 0 ? bl_method_name(best - M_BL0) : "-",
                       col[M_BLAS], col[M_BLAS + 1],
                       t[M_CPU] > 0 && best >= 0 ? t[M_CPU] / t[best] : 0,
                       t[M_CPU] > 0 && bb > 0 ? bb / t[M_CPU] : 0);
                for (int mi = 0; mi < n_methods; mi++)
                    free(times[ti][mi]);
            }
            fflush(stdout);
        }
        for (int ti = 0; ti < o->nt; ti++) {
            eie_net_free(st[ti].net);
            eie_engine_free(eng[ti]);
            bl_fc_free(st[ti].bl);
        }
        lstm_ref_free(&ref);
        free(w);
        free(wm);
        free(bm);
        free(x);
        free(h);
        free(c);
        free(z);
        free(g);
        free(ho);
        free(co);
        eie_model_free(m);
    }
    eie_pool_free(pool);
    return status;
}
