/*
 * The lstm node: its file form (round trip, reader errors) and the cpu
 * backend against a float64 LSTM written here from the ONNX definition
 * (gates i, o, f, c; B = [Wb, Rb]; sigmoid, tanh, tanh), for one and many
 * steps, with and without an initial state (stored in the file or fed by a
 * graph input each run), several lanes, and 1/2/3/7 PEs bit-identical.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../format/graph_helpers.h"
#include "eie/sim.h"
#include "format/format.h"

/* An ONNX LSTM's parameters (forward, one direction), row-major as ONNX stores them. */
typedef struct onnx_lstm {
    uint32_t I, H, N;
    float *W;  /* [4H, I], gate blocks i, o, f, c */
    float *R;  /* [4H, H] */
    float *Wb, *Rb; /* [4H] each: ONNX's B = [Wb, Rb] */
    float *h0, *c0; /* [N, H] or NULL */
} onnx_lstm_t;

static float *rnd(size_t n, float scale, double density, uint64_t *seed)
{
    float *v = calloc(n ? n : 1, sizeof(float));
    for (size_t i = 0; i < n; i++)
        if (th_uniform(seed) < density)
            v[i] = (th_uniform(seed) * 2.0f - 1.0f) * scale;
    return v;
}

static onnx_lstm_t onnx_random(uint32_t I, uint32_t H, uint32_t N, int init, uint64_t seed)
{
    onnx_lstm_t p = {.I = I, .H = H, .N = N};
    p.W = rnd((size_t)4 * H * I, 0.6f, 0.5, &seed);
    p.R = rnd((size_t)4 * H * H, 0.6f, 0.5, &seed);
    p.Wb = rnd(4 * H, 0.3f, 1.0, &seed);
    p.Rb = rnd(4 * H, 0.3f, 1.0, &seed);
    if (init) {
        p.h0 = rnd((size_t)N * H, 0.8f, 1.0, &seed);
        p.c0 = rnd((size_t)N * H, 0.8f, 1.0, &seed);
    }
    return p;
}

static void onnx_free(onnx_lstm_t *p)
{
    free(p->W);
    free(p->R);
    free(p->Wb);
    free(p->Rb);
    free(p->h0);
    free(p->c0);
}

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ONNX LSTM, float64: X [T, N, I] -> Y [T, 1, N, H], Y_h, Y_c [1, N, H]. */
static void onnx_reference(const onnx_lstm_t *p, const float *X, size_t T, double *Y, double *Yh,
                           double *Yc)
{
    uint32_t I = p->I, H = p->H, N = p->N;
    double *h = calloc((size_t)N * H, sizeof(double)), *c = calloc((size_t)N * H, sizeof(double));
    double *hn = calloc((size_t)N * H, sizeof(double));
    for (size_t i = 0; i < (size_t)N * H; i++) {
        h[i] = p->h0 ? p->h0[i] : 0.0;
        c[i] = p->c0 ? p->c0[i] : 0.0;
    }
    for (size_t t = 0; t < T; t++) {
        for (uint32_t n = 0; n < N; n++)
            for (uint32_t j = 0; j < H; j++) {
                double g[4];
                for (uint32_t q = 0; q < 4; q++) { /* q: 0 i, 1 o, 2 f, 3 c */
                    size_t r = (size_t)q * H + j;
                    double s = (double)p->Wb[r] + p->Rb[r];
                    for (uint32_t k = 0; k < I; k++)
                        s += (double)p->W[r * I + k] * X[(t * N + n) * I + k];
                    for (uint32_t k = 0; k < H; k++)
                        s += (double)p->R[r * H + k] * h[(size_t)n * H + k];
                    g[q] = s;
                }
                double ct = sigm(g[2]) * c[(size_t)n * H + j] + sigm(g[0]) * tanh(g[3]);
                c[(size_t)n * H + j] = ct;
                hn[(size_t)n * H + j] = sigm(g[1]) * tanh(ct);
            }
        memcpy(h, hn, (size_t)N * H * sizeof(double));
        memcpy(Y + t * N * H, h, (size_t)N * H * sizeof(double));
    }
    memcpy(Yh, h, (size_t)N * H * sizeof(double));
    memcpy(Yc, c, (size_t)N * H * sizeof(double));
    free(h);
    free(c);
    free(hn);
}

/*
 * The eie form of p: one 4H x (I + H) matrix, row 4j + g = gate g of unit j
 * (unit-major), columns [W row, R row], bias Wb + Rb. EXACT storage keeps
 * every weight; SHARED rounds them to a 16-entry codebook (then only the
 * PE-count tests use it).
 */
/* The graph inputs a fed state comes from: "h0", "c0" [1,N,H]. */
enum { FED_H = 1, FED_C = 2, FED_FIRST = 4 /* "h0" listed before "X" */ };

/* As lstm_model, the states in fed (FED_H, FED_C) taken from graph inputs, not stored. */
static eie_model_t *lstm_model_fed(const onnx_lstm_t *p, eie_storage_t storage, int states,
                                   int fed)
{
    uint32_t I = p->I, H = p->H, cols = I + H;
    float *dense = calloc((size_t)4 * H * cols, sizeof(float));
    float *bias = malloc(4 * H * sizeof(float));
    for (uint32_t j = 0; j < H; j++)
        for (uint32_t q = 0; q < 4; q++) {
            size_t src = (size_t)q * H + j, dst = (size_t)4 * j + q;
            memcpy(dense + dst * cols, p->W + src * I, I * sizeof(float));
            memcpy(dense + dst * cols + I, p->R + src * H, H * sizeof(float));
            bias[dst] = p->Wb[src] + p->Rb[src];
        }
    eie_weights_t w = {.storage = storage, .bias = bias};
    float cb[16];
    uint8_t *codes = NULL;
    if (storage == EIE_STORAGE_EXACT) {
        w.values = dense;
    } else {
        codes = calloc((size_t)4 * H * cols, 1);
        cb[0] = 0.0f;
        for (int k = 1; k < 16; k++)
            cb[k] = -0.6f + 1.2f * (float)(k - 1) / 14.0f;
        for (size_t i = 0; i < (size_t)4 * H * cols; i++)
            if (dense[i] != 0.0f) {
                int k = 1 + (int)lroundf((dense[i] + 0.6f) / 1.2f * 14.0f);
                codes[i] = (uint8_t)(k < 1 ? 1 : k > 15 ? 15 : k);
            }
        w.code_bits = 4;
        w.codebook = cb;
        w.codes = codes;
    }
    eie_builder_t *b;
    eie_error_t err;
    cr_assert_eq(eie_builder_init_graph("lstm", "test", &b, &err), EIE_STATUS_OK);
    eie_shape_t xs = {.rank = 3, .dims = {-1, p->N, I}};
    eie_shape_t ss = {.rank = 3, .dims = {1, p->N, H}};
    if (fed & FED_FIRST)
        cr_assert_eq(eie_builder_add_input(b, "h0", EIE_DTYPE_FP32, &ss, &err), EIE_STATUS_OK,
                     "%s", err.msg);
    cr_assert_eq(eie_builder_add_input(b, "X", EIE_DTYPE_FP32, &xs, &err), EIE_STATUS_OK);
    if ((fed & FED_H) && !(fed & FED_FIRST))
        cr_assert_eq(eie_builder_add_input(b, "h0", EIE_DTYPE_FP32, &ss, &err), EIE_STATUS_OK,
                     "%s", err.msg);
    if (fed & FED_C)
        cr_assert_eq(eie_builder_add_input(b, "c0", EIE_DTYPE_FP32, &ss, &err), EIE_STATUS_OK,
                     "%s", err.msg);
    const char *ins[1] = {"X"};
    eie_node_desc_t d = {.kind = EIE_LAYER_LSTM, .name = "lstm", .n_inputs = 1, .inputs = ins,
                         .output = "Y", .rows = 4 * H, .weights = w};
    d.lstm = (eie_lstm_desc_t){.hidden_size = H,
                               .initial_h = fed & FED_H ? NULL : p->h0,
                               .initial_c = fed & FED_C ? NULL : p->c0,
                               .initial_h_input = fed & FED_H ? "h0" : NULL,
                               .initial_c_input = fed & FED_C ? "c0" : NULL,
                               .output_h = states ? "Y_h" : NULL,
                               .output_c = states ? "Y_c" : NULL};
    eie_status_t st = eie_builder_add_node(b, &d, &err);
    cr_assert_eq(st, EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_builder_add_output(b, "Y", &err), EIE_STATUS_OK);
    if (states) {
        cr_assert_eq(eie_builder_add_output(b, "Y_h", &err), EIE_STATUS_OK);
        cr_assert_eq(eie_builder_add_output(b, "Y_c", &err), EIE_STATUS_OK);
    }
    eie_model_t *m = th_load_builder(b);
    cr_assert_not_null(m);
    eie_builder_free(b);
    free(dense);
    free(bias);
    free(codes);
    return m;
}

static eie_model_t *lstm_model(const onnx_lstm_t *p, eie_storage_t storage, int states)
{
    return lstm_model_fed(p, storage, states, 0);
}

/* Runs m on backend with n_pes PEs: out[0] = Y (T rows), out[1], out[2] = Y_h, Y_c. */
static eie_status_t run(const eie_model_t *m, const char *backend, unsigned n_pes,
                        unsigned max_seq, const float *X, size_t T, float **out,
                        eie_error_t *err)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    o.backend = backend;
    o.n_pes = n_pes;
    o.max_sequence = max_seq;
    o.cpu_one_layout = 1; /* these small nets on the PEs' layout, not its one-PE copy */
    eie_engine_t *e;
    eie_net_t *net;
    cr_assert_eq(eie_engine_init(&o, &e, err), EIE_STATUS_OK);
    cr_assert_eq(eie_net_init(e, m, &net, err), EIE_STATUS_OK, "%s", err->msg);
    const float *ins[1] = {X};
    eie_status_t st = eie_net_run_multi(net, ins, T, out, NULL, err);
    eie_net_free(net);
    eie_engine_free(e);
    return st;
}

static float *input(size_t n, uint64_t seed)
{
    float *x = malloc(n * sizeof(float));
    th_random_input(x, n, 0.7, &seed); /* ~30% zeros: skipped columns */
    return x;
}

/* cpu and dense against the float64 ONNX LSTM. */
static void check_reference(uint32_t I, uint32_t H, uint32_t N, size_t T, int init,
                            unsigned n_pes)
{
    onnx_lstm_t p = onnx_random(I, H, N, init, 7 + I + H + N + T + (uint64_t)init);
    eie_model_t *m = lstm_model(&p, EIE_STORAGE_EXACT, 1);
    float *X = input(T * N * I, 99 + T);
    size_t nh = (size_t)N * H;
    double *Y = malloc(T * nh * sizeof(double)), *Yh = malloc(nh * sizeof(double)),
           *Yc = malloc(nh * sizeof(double));
    onnx_reference(&p, X, T, Y, Yh, Yc);
    float *out[3] = {calloc(T * nh, sizeof(float)), calloc(T * nh, sizeof(float)),
                     calloc(T * nh, sizeof(float))};
    float *dn[3] = {calloc(T * nh, sizeof(float)), calloc(T * nh, sizeof(float)),
                    calloc(T * nh, sizeof(float))};
    eie_error_t err;
    cr_assert_eq(run(m, "cpu", n_pes, 0, X, T, out, &err), EIE_STATUS_OK, "%s", err.msg);
    const float *ins[1] = {X};
    cr_assert_eq(eie_model_run_dense_multi(m, ins, T, dn, &err), EIE_STATUS_OK, "%s", err.msg);
    for (size_t i = 0; i < T * nh; i++) {
        cr_assert(fabs(out[0][i] - Y[i]) < 2e-5, "Y[%zu] cpu %.8g ref %.8g", i, out[0][i], Y[i]);
        cr_assert(fabs(dn[0][i] - Y[i]) < 2e-5, "Y[%zu] dense %.8g ref %.8g", i, dn[0][i], Y[i]);
    }
    for (size_t i = 0; i < nh; i++) {
        cr_assert(fabs(out[1][i] - Yh[i]) < 2e-5, "Y_h[%zu] %.8g ref %.8g", i, out[1][i], Yh[i]);
        cr_assert(fabs(out[2][i] - Yc[i]) < 5e-5, "Y_c[%zu] %.8g ref %.8g", i, out[2][i], Yc[i]);
        cr_assert(fabs(dn[2][i] - Yc[i]) < 5e-5, "dense Y_c[%zu] %.8g ref %.8g", i, dn[2][i],
                  Yc[i]);
    }
    /* Y_h is the last step of Y */
    cr_assert(memcmp(out[1], out[0] + (T - 1) * nh, nh * sizeof(float)) == 0);
    for (int k = 0; k < 3; k++) {
        free(out[k]);
        free(dn[k]);
    }
    free(X);
    free(Y);
    free(Yh);
    free(Yc);
    eie_model_free(m);
    onnx_free(&p);
}

Test(lstm_cpu, one_step_no_initial_state_matches_onnx_reference)
{
    check_reference(5, 4, 1, 1, 0, 1);
}

Test(lstm_cpu, one_step_with_initial_state_matches_onnx_reference)
{
    check_reference(6, 5, 2, 1, 1, 2);
}

Test(lstm_cpu, forty_steps_over_chunks_match_onnx_reference)
{
    check_reference(7, 9, 3, 40, 0, 3);
}

Test(lstm_cpu, many_steps_with_state_and_twenty_lanes_match_onnx_reference)
{
    check_reference(4, 11, 20, 23, 1, 7);
}

/* Every output on n PEs bit for bit equal to 1 PE, both storages. */
/* density: of x_t's elements that are nonzero */
static void check_pes(eie_storage_t storage, uint32_t N, size_t T, double density)
{
    onnx_lstm_t p = onnx_random(13, 10, N, 1, 1234 + N);
    eie_model_t *m = lstm_model(&p, storage, 1);
    float *X = malloc(T * N * 13 * sizeof(float));
    uint64_t seed = 5;
    th_random_input(X, T * N * 13, density, &seed);
    size_t nh = (size_t)N * 10;
    float *ref[3], *got[3];
    eie_error_t err;
    for (int k = 0; k < 3; k++)
        ref[k] = calloc(T * nh, sizeof(float));
    cr_assert_eq(run(m, "cpu", 1, 0, X, T, ref, &err), EIE_STATUS_OK, "%s", err.msg);
    unsigned pes[] = {2, 3, 7};
    for (size_t q = 0; q < 3; q++) {
        for (int k = 0; k < 3; k++)
            got[k] = calloc(T * nh, sizeof(float));
        cr_assert_eq(run(m, "cpu", pes[q], 0, X, T, got, &err), EIE_STATUS_OK, "%s", err.msg);
        cr_assert(memcmp(got[0], ref[0], T * nh * sizeof(float)) == 0, "Y differs on %u PEs",
                  pes[q]);
        cr_assert(memcmp(got[1], ref[1], nh * sizeof(float)) == 0, "Y_h differs on %u PEs",
                  pes[q]);
        cr_assert(memcmp(got[2], ref[2], nh * sizeof(float)) == 0, "Y_c differs on %u PEs",
                  pes[q]);
        for (int k = 0; k < 3; k++)
            free(got[k]);
    }
    for (int k = 0; k < 3; k++)
        free(ref[k]);
    free(X);
    eie_model_free(m);
    onnx_free(&p);
}

Test(lstm_cpu, pes_1_2_3_7_bit_identical_shared)
{
    check_pes(EIE_STORAGE_SHARED, 3, 37, 0.7);
}

Test(lstm_cpu, pes_1_2_3_7_bit_identical_exact_eighteen_lanes)
{
    check_pes(EIE_STORAGE_EXACT, 18, 5, 0.7);
}

/* One lane over dense inputs: a step is the batch-1 form over a dense
 * [x_t, h_{t-1}], and whether the row form pays is decided by the matrix's
 * rows (40 against 23 columns: it does). On 7 PEs each holds 2 units' rows
 * padded to 8, 56 rows in all; deciding by those took the column form
 * there, other bits. */
Test(lstm_cpu, pes_1_2_3_7_bit_identical_one_lane)
{
    check_pes(EIE_STORAGE_SHARED, 1, 9, 1.0);
}

Test(lstm_cpu, sequence_over_max_sequence_is_refused_naming_the_limit)
{
    onnx_lstm_t p = onnx_random(3, 2, 1, 0, 3);
    eie_model_t *m = lstm_model(&p, EIE_STORAGE_EXACT, 0);
    float *X = input(9 * 3, 1);
    float *y = calloc(9 * 2, sizeof(float));
    eie_error_t err;
    cr_assert_eq(run(m, "cpu", 2, 8, X, 8, &y, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(run(m, "cpu", 2, 8, X, 9, &y, &err), EIE_STATUS_LIMIT);
    cr_assert(strstr(err.msg, "9 steps") && strstr(err.msg, "max_sequence 8"), "%s", err.msg);
    free(X);
    free(y);
    eie_model_free(m);
    onnx_free(&p);
}

/* ---- several sequences in one run ----------------------------------------- */

/* The net of m on n_pes PEs, bit-invariant across batches where invariant. */
static eie_net_t *seq_net(const eie_model_t *m, unsigned n_pes, int invariant,
                          eie_engine_t **e)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    o.n_pes = n_pes;
    o.cpu_batch_invariant = invariant;
    o.cpu_one_layout = 1; /* these small nets on the PEs' layout, not its one-PE copy */
    eie_net_t *net;
    eie_error_t err;
    cr_assert_eq(eie_engine_init(&o, e, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_init(*e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    return net;
}

/* Which of X, h0, c0 graph input i of m is. */
static int seq_input(const eie_model_t *m, size_t i)
{
    eie_tensor_info_t ti;
    eie_model_input_info(m, i, &ti);
    return strcmp(ti.name, "X") == 0 ? 0 : strcmp(ti.name, "h0") == 0 ? 1 : 2;
}

/*
 * K sequences of T steps in one run (eie_net_run_sequences, inputs and
 * outputs time-major) against each run alone (eie_net_run_multi): every
 * output of every sequence, Y and the final states, bit for bit with
 * cpu_batch_invariant on 1, 2 and 3 PEs, and within the backend's 1e-5
 * without it (a sequence alone may take the fused batch-1 form). Each
 * sequence gets its own inputs and, where fed, its own initial state.
 * mixed: sequence k is T - k % 4 * T / 5 steps long, run alone with its
 * own; its Y past its length must be zeros, its final states its own last
 * (the padding samples hold NaN: never read into a live sequence).
 */
static void check_sequences(uint32_t I, uint32_t H, uint32_t N, size_t T, size_t K, int fed,
                            eie_storage_t storage, int mixed)
{
    size_t lens[16];
    for (size_t k = 0; k < K; k++)
        lens[k] = mixed ? T - k % 4 * T / 5 : T;
    onnx_lstm_t p = onnx_random(I, H, N, 1, 71 + I + H + N + T + K + (uint64_t)fed);
    eie_model_t *m = lstm_model_fed(&p, storage, 1, fed);
    size_t nx = (size_t)N * I, nh = (size_t)N * H, n_in = eie_model_input_count(m);
    float *X = input(K * T * nx, 3 + K), *S[3] = {NULL, input(K * nh, 5), input(K * nh, 6)};
    /* time-major: step t of sequence k is sample t K + k */
    float *Xt = malloc(K * T * nx * sizeof(float));
    for (size_t k = 0; k < K; k++)
        for (size_t t = 0; t < T; t++)
            for (size_t j = 0; j < nx; j++)
                Xt[(t * K + k) * nx + j] = t < lens[k] ? X[(k * T + t) * nx + j] : NAN;
    for (int inv = 1; inv >= 0; inv--)
        for (unsigned n_pes = 1; n_pes <= (inv ? 3u : 2u); n_pes++) {
            eie_engine_t *e;
            eie_net_t *net = seq_net(m, n_pes, inv, &e);
            cr_assert_eq(eie_net_max_sequences(net), N >= 16 ? 1 : 16 / N);
            /* Y per step, Y_h and Y_c one sample a sequence; the batch (time) free */
            cr_assert(!eie_net_output_is_state(net, 0) && eie_net_output_is_state(net, 1) &&
                      eie_net_output_is_state(net, 2) && !eie_net_output_is_state(net, 3));
            cr_assert_eq(eie_net_batch_size(net), 0);
            const float *ins[3];
            float *all[3] = {calloc(K * T * nh, sizeof(float)), calloc(K * nh, sizeof(float)),
                             calloc(K * nh, sizeof(float))};
            for (size_t i = 0; i < n_in; i++)
                ins[i] = seq_input(m, i) == 0 ? Xt : S[seq_input(m, i)];
            eie_error_t err;
            cr_assert_eq(eie_net_run_sequences(net, ins, K, T, lens, all, NULL, &err),
                         EIE_STATUS_OK, "%s", err.msg);
            for (size_t k = 0; k < K; k++) {
                float *one[3] = {calloc(T * nh, sizeof(float)), calloc(T * nh, sizeof(float)),
                                 calloc(T * nh, sizeof(float))};
                for (size_t i = 0; i < n_in; i++)
                    ins[i] = seq_input(m, i) == 0 ? X + k * T * nx : S[seq_input(m, i)] + k * nh;
                cr_assert_eq(eie_net_run_multi(net, ins, lens[k], one, NULL, &err),
                             EIE_STATUS_OK, "%s", err.msg);
                for (size_t t = 0; t < T + 2; t++) {
                    /* Y's step t, then Y_h and Y_c */
                    const float *a = t < T ? all[0] + (t * K + k) * nh : all[t - T + 1] + k * nh;
                    const float *b = t < T ? one[0] + t * nh : one[t - T + 1];
                    for (size_t j = 0; j < nh && t >= lens[k] && t < T; j++)
                        cr_assert(a[j] == 0.0f && !signbit(a[j]),
                                  "sequence %zu of %zu steps: Y at step %zu is %g, not +0", k,
                                  lens[k], t, a[j]);
                    for (size_t j = 0; j < nh && (t < lens[k] || t >= T); j++) {
                        if (inv)
                            cr_assert(memcmp(&a[j], &b[j], sizeof(float)) == 0,
                                      "sequence %zu of %zu, %s %zu, element %zu on %u PEs: %.9g "
                                      "in the run of all, %.9g alone",
                                      k, K, t < T ? "step" : "state", t, j, n_pes, a[j], b[j]);
                        else
                            cr_assert(fabsf(a[j] - b[j]) <= 1e-5f * fmaxf(1.0f, fabsf(b[j])),
                                      "sequence %zu, %zu, element %zu: %.9g against %.9g", k, t,
                                      j, a[j], b[j]);
                    }
                }
                for (int q = 0; q < 3; q++)
                    free(one[q]);
            }
            for (int q = 0; q < 3; q++)
                free(all[q]);
            eie_net_free(net);
            eie_engine_free(e);
        }
    free(X);
    free(Xt);
    free(S[1]);
    free(S[2]);
    eie_model_free(m);
    onnx_free(&p);
}

Test(lstm_sequences, sixteen_one_lane_sequences_each_as_alone_stored_state)
{
    check_sequences(9, 7, 1, 6, 16, 0, EIE_STORAGE_SHARED, 0);
}

Test(lstm_sequences, three_sequences_over_several_chunks_fed_state_exact)
{
    /* chunks of 15 samples: 5 steps of the 3 sequences */
    check_sequences(5, 6, 1, 12, 3, FED_H | FED_C, EIE_STORAGE_EXACT, 0);
}

Test(lstm_sequences, two_lane_sequences_h_fed_first)
{
    check_sequences(6, 5, 2, 9, 8, FED_H | FED_FIRST, EIE_STORAGE_SHARED, 0);
}

Test(lstm_sequences, sequences_of_four_lengths_end_at_their_own_last_step)
{
    check_sequences(7, 6, 1, 10, 13, FED_H | FED_C, EIE_STORAGE_SHARED, 1);
}

Test(lstm_sequences, two_lane_sequences_of_mixed_lengths_stored_state)
{
    check_sequences(5, 4, 2, 15, 6, 0, EIE_STORAGE_EXACT, 1);
}

Test(lstm_sequences, more_than_the_net_takes_none_or_a_bad_length_is_refused)
{
    onnx_lstm_t p = onnx_random(3, 2, 4, 0, 3);
    eie_model_t *m = lstm_model(&p, EIE_STORAGE_EXACT, 0);
    eie_engine_t *e;
    eie_net_t *net = seq_net(m, 2, 0, &e);
    cr_assert_eq(eie_net_max_sequences(net), 4); /* 16 lanes of 4-lane sequences */
    float *X = input(5 * 3 * 4 * 3, 1), *y = calloc(5 * 3 * 4 * 2, sizeof(float));
    const float *ins[1] = {X};
    eie_error_t err;
    cr_assert_eq(eie_net_run_sequences(net, ins, 5, 3, NULL, &y, NULL, &err),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "5 sequences") && strstr(err.msg, "1..4"), "%s", err.msg);
    cr_assert_eq(eie_net_run_sequences(net, ins, 0, 3, NULL, &y, NULL, &err),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert_eq(eie_net_run_sequences(net, ins, 4, 3, NULL, &y, NULL, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    /* each sequence's length 1 .. the run's steps */
    size_t bad[2][2] = {{3, 4}, {0, 3}};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(eie_net_run_sequences(net, ins, 2, 3, bad[i], &y, NULL, &err),
                     EIE_STATUS_INVALID_ARGUMENT);
        cr_assert(strstr(err.msg, "not in 1..3"), "%s", err.msg);
    }
    eie_net_free(net);
    eie_engine_free(e);
    /* eie-sim runs one at a time */
    eie_engine_opts_t o = eie_engine_opts_default();
    o.backend = "eie-sim";
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_max_sequences(net), 1);
    cr_assert_eq(eie_net_run_sequences(net, ins, 1, 3, NULL, &y, NULL, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    cr_assert_eq(eie_net_run_sequences(net, ins, 2, 3, NULL, &y, NULL, &err),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "1..1") && strstr(err.msg, "eie-sim"), "%s", err.msg);
    eie_net_free(net);
    eie_engine_free(e);
    free(X);
    free(y);
    eie_model_free(m);
    onnx_free(&p);
}

Test(lstm_sequences, a_net_without_lstm_takes_no_sequences)
{
    uint64_t seed = 5;
    eie_builder_t *b;
    eie_error_t err;
    cr_assert_eq(eie_builder_init("fc", "test", "x", "y", &b, &err), EIE_STATUS_OK);
    cr_assert_eq(th_add_random_fc(b, 3, 6, 0.5, 4, &seed, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_model_t *m = th_load_builder(b);
    eie_builder_free(b);
    cr_assert_not_null(m);
    eie_engine_t *e;
    eie_net_t *net = seq_net(m, 1, 0, &e);
    cr_assert_eq(eie_net_max_sequences(net), 0);
    float x[12] = {0}, y[6];
    const float *ins[1] = {x};
    float *outs[1] = {y};
    cr_assert_eq(eie_net_run_sequences(net, ins, 1, 2, NULL, outs, NULL, &err),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "no lstm node"), "%s", err.msg);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
}

/* ---- eie-sim ------------------------------------------------------------ */

#define SIM_TOL (1.0f / 32.0f) /* as tests/engine/sim: 16-bit fixed point */

static void run_info(const eie_model_t *m, const char *backend, unsigned n_pes, const float *X,
                     size_t T, float *y, eie_run_info_t *info)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    o.backend = backend;
    o.n_pes = n_pes;
    eie_engine_t *e;
    eie_net_t *net;
    eie_error_t err;
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_run(net, X, T, y, info, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_net_free(net);
    eie_engine_free(e);
}

Test(lstm_sim, sequence_within_the_fixed_point_bound_of_cpu_on_1_3_64_pes)
{
    onnx_lstm_t p = onnx_random(8, 10, 2, 1, 77);
    eie_model_t *m = lstm_model(&p, EIE_STORAGE_SHARED, 0);
    enum { T = 30, NH = 20 };
    float *X = input(T * 2 * 8, 8);
    float ref[T * NH], y[T * NH], y1[T * NH];
    eie_run_info_t info;
    run_info(m, "cpu", 2, X, T, ref, &info);
    const unsigned pes[] = {1, 3, 64};
    for (size_t k = 0; k < 3; k++) {
        run_info(m, "eie-sim", pes[k], X, T, y, &info);
        long bad = th_mismatch(y, ref, T * NH, SIM_TOL);
        cr_assert_eq(bad, -1, "%u PEs: y[%ld] = %g, cpu %g", pes[k], bad,
                     bad >= 0 ? (double)y[bad] : 0.0, bad >= 0 ? (double)ref[bad] : 0.0);
        cr_assert(info.cycles > 0 && info.entries > 0 && info.energy_uj > 0.0);
        if (k == 0)
            memcpy(y1, y, sizeof y);
        else
            cr_assert(memcmp(y, y1, sizeof y) == 0, "%u PEs differ from 1 PE", pes[k]);
    }
    free(X);
    eie_model_free(m);
    onnx_free(&p);
}

Test(lstm_sim, a_sequence_reports_one_pass_per_lane_and_step_plus_the_unit)
{
    onnx_lstm_t p = onnx_random(6, 9, 3, 0, 5);
    eie_model_t *m = lstm_model(&p, EIE_STORAGE_SHARED, 0);
    eie_sim_params_t sp = eie_sim_params_default();
    sp.n_pes = 4;
    eie_sim_t *sim;
    eie_error_t err;
    cr_assert_eq(eie_sim_init(m, &sp, &sim, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_sim_is_sequence(sim), 1);
    enum { T = 5 };
    float *X = input(T * 3 * 6, 3);
    float y[T * 27], y1[27];
    eie_sim_report_t rep, one;
    cr_assert_eq(eie_sim_run_sequence(sim, X, T, y, &rep, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(rep.steps, T);
    cr_assert_eq(rep.n_layers, 1);
    cr_assert_eq(rep.layers[0].rows, 36); /* 4H (the PE layout pads it to 48) */
    cr_assert_eq(rep.layers[0].cols, 15);
    /* each lane and step: the pass (pipeline fill at least) and ceil(9/4) = 3 unit cycles */
    cr_assert(rep.layers[0].cycles >= (uint64_t)T * 3 * (sp.pipeline_depth + 1 + 3));
    /* step 0 alone is the first step of the same sequence */
    cr_assert_eq(eie_sim_run_sequence(sim, X, 1, y1, &one, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert(memcmp(y1, y, sizeof y1) == 0);
    cr_assert(one.total.cycles < rep.total.cycles && one.total.energy_uj < rep.total.energy_uj);
    cr_assert_eq(eie_sim_run_sequence(sim, X, 0, y, NULL, &err), EIE_STATUS_INVALID_ARGUMENT);
    eie_sim_report_clear(&rep);
    eie_sim_report_clear(&one);
    eie_sim_free(sim);
    free(X);
    eie_model_free(m);
    onnx_free(&p);
}

/* ---- the file form ------------------------------------------------------- */

static uint8_t *write_model(const onnx_lstm_t *p, int states, size_t *len)
{
    uint32_t H = p->H, cols = p->I + H;
    uint64_t seed = 5;
    eie_weights_t w = th_random_weights(4 * H, cols, 0.3, EIE_STORAGE_SHARED, 4, &seed);
    eie_builder_t *b;
    eie_error_t err;
    cr_assert_eq(eie_builder_init_graph("lstm", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t xs = {.rank = 3, .dims = {-1, p->N, p->I}};
    eie_builder_add_input(b, "X", EIE_DTYPE_FP32, &xs, &err);
    const char *ins[1] = {"X"};
    eie_node_desc_t d = {.kind = EIE_LAYER_LSTM, .name = "l", .n_inputs = 1, .inputs = ins,
                         .output = "Y", .rows = 4 * H, .weights = w};
    d.lstm = (eie_lstm_desc_t){.hidden_size = H, .initial_h = p->h0,
                               .output_h = states ? "Y_h" : NULL};
    cr_assert_eq(eie_builder_add_node(b, &d, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_builder_add_output(b, "Y", &err);
    if (states)
        eie_builder_add_output(b, "Y_h", &err);
    uint8_t *data;
    cr_assert_eq(eie_builder_write_memory(b, &data, len, &err), EIE_STATUS_OK);
    eie_builder_free(b);
    th_weights_free(&w);
    return data;
}

Test(lstm_format, round_trip_is_byte_exact_and_describes_the_node)
{
    onnx_lstm_t p = onnx_random(6, 3, 2, 1, 11);
    size_t len;
    uint8_t *data = write_model(&p, 1, &len);
    eie_model_t *m;
    eie_error_t err;
    cr_assert_eq(eie_model_load_memory(data, len, NULL, &m, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_layer_info_t li;
    cr_assert_eq(eie_model_layer_info(m, 0, &li), EIE_STATUS_OK);
    cr_assert_eq(li.kind, EIE_LAYER_LSTM);
    cr_assert_eq(li.rows, 12);
    cr_assert_eq(li.cols, 9);
    cr_assert_eq(li.hidden_size, 3);
    cr_assert_eq(li.lstm_initial[0], 1);
    cr_assert_eq(li.lstm_initial[1], 0);
    cr_assert_neq(li.lstm_state[0], UINT32_MAX);
    cr_assert_eq(li.lstm_state[1], UINT32_MAX);
    cr_assert(memcmp(eie_model_lstm_initial(m, 0, 0), p.h0, 6 * sizeof(float)) == 0);
    cr_assert_null(eie_model_lstm_initial(m, 0, 1));
    eie_tensor_info_t ti;
    eie_model_output_info(m, 0, &ti);
    cr_assert_eq(ti.shape.rank, 4);
    cr_assert(ti.shape.dims[0] == -1 && ti.shape.dims[1] == 1 && ti.shape.dims[2] == 2 &&
              ti.shape.dims[3] == 3);
    eie_model_output_info(m, 1, &ti);
    cr_assert(ti.shape.rank == 3 && ti.shape.dims[0] == 1 && ti.shape.dims[1] == 2 &&
              ti.shape.dims[2] == 3);
    eie_model_free(m);
    free(data);
    onnx_free(&p);
}

/* Offset of the first occurrence of needle (n bytes) in data. */
static size_t find(const uint8_t *data, size_t len, const void *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(data + i, needle, n) == 0)
            return i;
    cr_assert_fail("pattern not found");
    return 0;
}

/* The lstm attributes sit right after the wiring "Y" output index; find them by the
   node name "l" (u32 1, 'l') and the wiring that follows: inputs 1, X, outputs k. */
static size_t attr_offset(const uint8_t *data, size_t len, uint32_t n_out)
{
    uint8_t pat[] = {1, 0, 0, 0, 'l', 1, 0, 0, 0, 0, 0, 0, 0, (uint8_t)n_out, 0, 0, 0};
    return find(data, len, pat, sizeof pat) + sizeof pat + 4 * n_out;
}

static eie_status_t load_patched(uint8_t *data, size_t len, eie_error_t *err)
{
    th_fix_checksum(data, len);
    eie_model_t *m = NULL;
    eie_status_t st = eie_model_load_memory(data, len, NULL, &m, err);
    eie_model_free(m);
    return st;
}

Test(lstm_format, zero_hidden_size_is_refused_naming_field_and_offset)
{
    onnx_lstm_t p = onnx_random(6, 3, 2, 0, 11);
    size_t len;
    uint8_t *data = write_model(&p, 0, &len);
    size_t at = attr_offset(data, len, 1);
    cr_assert_eq(data[at], 3);
    memset(data + at, 0, 4);
    eie_error_t err;
    cr_assert_neq(load_patched(data, len, &err), EIE_STATUS_OK);
    char want[64];
    snprintf(want, sizeof want, "byte offset %zu", at);
    cr_assert(strstr(err.msg, "hidden_size") && strstr(err.msg, want), "%s", err.msg);
    free(data);
    onnx_free(&p);
}

Test(lstm_format, unknown_initial_flags_are_refused)
{
    onnx_lstm_t p = onnx_random(6, 3, 2, 0, 11);
    size_t len;
    uint8_t *data = write_model(&p, 0, &len);
    size_t at = attr_offset(data, len, 1) + 4;
    data[at] = 16;
    eie_error_t err;
    cr_assert_eq(load_patched(data, len, &err), EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, "initial") && strstr(err.msg, "flags 16"), "%s", err.msg);
    free(data);
    onnx_free(&p);
}

Test(lstm_format, four_outputs_are_refused)
{
    onnx_lstm_t p = onnx_random(6, 3, 2, 0, 11);
    size_t len;
    uint8_t *data = write_model(&p, 0, &len);
    size_t at = attr_offset(data, len, 1) - 8;
    cr_assert_eq(data[at], 1);
    data[at] = 4;
    eie_error_t err;
    cr_assert_eq(load_patched(data, len, &err), EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, "4 outputs, must be 1..3"), "%s", err.msg);
    free(data);
    onnx_free(&p);
}

Test(lstm_format, wrong_matrix_size_is_refused_by_the_builder)
{
    uint64_t seed = 3;
    eie_weights_t w = th_random_weights(12, 10, 0.3, EIE_STORAGE_SHARED, 4, &seed);
    eie_builder_t *b;
    eie_error_t err;
    eie_builder_init_graph("lstm", "", &b, &err);
    eie_shape_t xs = {.rank = 3, .dims = {-1, 1, 6}};
    eie_builder_add_input(b, "X", EIE_DTYPE_FP32, &xs, &err);
    const char *ins[1] = {"X"};
    eie_node_desc_t d = {.kind = EIE_LAYER_LSTM, .n_inputs = 1, .inputs = ins, .output = "Y",
                         .rows = 12, .weights = w};
    d.lstm.hidden_size = 4; /* 12 rows given, needs 16 x 10 */
    cr_assert_neq(eie_builder_add_node(b, &d, &err), EIE_STATUS_OK);
    cr_assert(strstr(err.msg, "16x10"), "%s", err.msg);
    eie_builder_free(b);
    th_weights_free(&w);
}

Test(lstm_format, a_node_reading_the_final_state_is_refused)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 9;
    eie_weights_t w = th_random_weights(12, 9, 0.3, EIE_STORAGE_SHARED, 4, &seed);
    eie_builder_init_graph("lstm", "", &b, &err);
    eie_shape_t xs = {.rank = 3, .dims = {-1, 2, 6}};
    eie_builder_add_input(b, "X", EIE_DTYPE_FP32, &xs, &err);
    const char *ins[1] = {"X"};
    eie_node_desc_t d = {.kind = EIE_LAYER_LSTM, .name = "l", .n_inputs = 1, .inputs = ins,
                         .output = "Y", .rows = 12, .weights = w};
    d.lstm = (eie_lstm_desc_t){.hidden_size = 3, .output_h = "Y_h"};
    cr_assert_eq(eie_builder_add_node(b, &d, &err), EIE_STATUS_OK, "%s", err.msg);
    /* the builder refuses it ... */
    cr_assert_eq(th_act(b, "Y_h", "A", EIE_ACT_RELU, 0, &err), EIE_STATUS_UNSUPPORTED);
    cr_assert(strstr(err.msg, "\"Y_h\" is an lstm's final state"), "%s", err.msg);
    /* ... and so does the reader: tensors X 0, Y 1, Y_h 2, A 3; A's input patched to 2 */
    cr_assert_eq(th_act(b, "Y", "A", EIE_ACT_RELU, 0, &err), EIE_STATUS_OK);
    eie_builder_add_output(b, "A", &err);
    eie_builder_add_output(b, "Y_h", &err);
    uint8_t *bytes;
    size_t len;
    cr_assert_eq(eie_builder_write_memory(b, &bytes, &len, &err), EIE_STATUS_OK);
    uint8_t pat[] = {1, 0, 0, 0, 'A', 1, 0, 0, 0, 1, 0, 0, 0};
    size_t at = find(bytes, len, pat, sizeof pat) + 9;
    bytes[at] = 2;
    cr_assert_eq(load_patched(bytes, len, &err), EIE_STATUS_UNSUPPORTED);
    char want[64];
    snprintf(want, sizeof want, "byte offset %zu", at);
    cr_assert(strstr(err.msg, "\"Y_h\" is an lstm's final state") && strstr(err.msg, want),
              "%s", err.msg);
    free(bytes);
    eie_builder_free(b);
    th_weights_free(&w);
}

/* ---- the initial state fed by graph inputs -------------------------------- */

/* Runs m (inputs X, then h0 / c0 in the model's order) on backend: out as run(). */
static eie_status_t run_fed(const eie_model_t *m, const char *backend, unsigned n_pes,
                            const float *X, const float *h0, const float *c0, size_t T,
                            float **out, eie_error_t *err)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    o.backend = backend;
    o.n_pes = n_pes;
    o.cpu_one_layout = 1; /* these small nets on the PEs' layout, not its one-PE copy */
    eie_engine_t *e;
    eie_net_t *net;
    cr_assert_eq(eie_engine_init(&o, &e, err), EIE_STATUS_OK);
    cr_assert_eq(eie_net_init(e, m, &net, err), EIE_STATUS_OK, "%s", err->msg);
    const float *ins[3];
    for (size_t i = 0; i < eie_model_input_count(m); i++) {
        eie_tensor_info_t ti;
        eie_model_input_info(m, i, &ti);
        ins[i] = strcmp(ti.name, "X") == 0 ? X : strcmp(ti.name, "h0") == 0 ? h0 : c0;
    }
    eie_status_t st = eie_net_run_multi(net, ins, T, out, NULL, err);
    eie_net_free(net);
    eie_engine_free(e);
    return st;
}

/*
 * The state fed by graph inputs: the float64 reference (cpu and dense), the
 * same outputs bit for bit as the state stored in the file, on 1, 2, 3, 7
 * PEs bit-identical.
 */
static void check_fed(uint32_t I, uint32_t H, uint32_t N, size_t T, int fed,
                      eie_storage_t storage)
{
    onnx_lstm_t p = onnx_random(I, H, N, 1, 31 + I + H + N + T + (uint64_t)fed);
    eie_model_t *stored = lstm_model_fed(&p, storage, 1, 0);
    eie_model_t *m = lstm_model_fed(&p, storage, 1, fed);
    cr_assert_eq(eie_model_input_count(m),
                 1 + (size_t)((fed & FED_H) != 0) + (size_t)((fed & FED_C) != 0));
    float *X = input(T * N * I, 17 + T);
    size_t nh = (size_t)N * H;
    double *Y = malloc(T * nh * sizeof(double)), *Yh = malloc(nh * sizeof(double)),
           *Yc = malloc(nh * sizeof(double));
    onnx_reference(&p, X, T, Y, Yh, Yc);
    float *ref[3], *got[3], *dn[3];
    for (int k = 0; k < 3; k++) {
        ref[k] = calloc(T * nh, sizeof(float));
        dn[k] = calloc(T * nh, sizeof(float));
    }
    eie_error_t err;
    cr_assert_eq(run(stored, "cpu", 1, 0, X, T, ref, &err), EIE_STATUS_OK, "%s", err.msg);
    const float *ins[3];
    for (size_t i = 0; i < eie_model_input_count(m); i++) {
        eie_tensor_info_t ti;
        eie_model_input_info(m, i, &ti);
        ins[i] = strcmp(ti.name, "X") == 0 ? X : strcmp(ti.name, "h0") == 0 ? p.h0 : p.c0;
    }
    cr_assert_eq(eie_model_run_dense_multi(m, ins, T, dn, &err), EIE_STATUS_OK, "%s", err.msg);
    if (storage == EIE_STORAGE_EXACT)
        for (size_t i = 0; i < T * nh; i++) {
            cr_assert(fabs(ref[0][i] - Y[i]) < 2e-5, "Y[%zu] cpu %.8g ref %.8g", i, ref[0][i],
                      Y[i]);
            cr_assert(fabs(dn[0][i] - Y[i]) < 2e-5, "Y[%zu] dense %.8g ref %.8g", i, dn[0][i],
                      Y[i]);
            cr_assert(i >= nh || fabs(dn[2][i] - Yc[i]) < 5e-5, "dense Y_c[%zu] %.8g ref %.8g",
                      i, dn[2][i], Yc[i]);
        }
    unsigned pes[] = {1, 2, 3, 7};
    for (size_t q = 0; q < 4; q++) {
        for (int k = 0; k < 3; k++)
            got[k] = calloc(T * nh, sizeof(float));
        cr_assert_eq(run_fed(m, "cpu", pes[q], X, p.h0, p.c0, T, got, &err), EIE_STATUS_OK,
                     "%s", err.msg);
        cr_assert(memcmp(got[0], ref[0], T * nh * sizeof(float)) == 0,
                  "Y fed differs from Y stored on %u PEs", pes[q]);
        cr_assert(memcmp(got[1], ref[1], nh * sizeof(float)) == 0, "Y_h differs on %u PEs",
                  pes[q]);
        cr_assert(memcmp(got[2], ref[2], nh * sizeof(float)) == 0, "Y_c differs on %u PEs",
                  pes[q]);
        for (int k = 0; k < 3; k++)
            free(got[k]);
    }
    /* a second run with another state reads it afresh: zeros fed give what no stored
       state gives */
    onnx_lstm_t q = p;
    if (fed & FED_H)
        q.h0 = NULL;
    if (fed & FED_C)
        q.c0 = NULL;
    eie_model_t *none = lstm_model_fed(&q, storage, 1, 0);
    float *zeros = calloc(nh, sizeof(float));
    for (int k = 0; k < 3; k++)
        got[k] = calloc(T * nh, sizeof(float));
    cr_assert_eq(run(none, "cpu", 3, 0, X, T, ref, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(run_fed(m, "cpu", 3, X, zeros, zeros, T, got, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    cr_assert(memcmp(got[0], ref[0], T * nh * sizeof(float)) == 0);
    for (int k = 0; k < 3; k++) {
        free(got[k]);
        free(ref[k]);
        free(dn[k]);
    }
    free(zeros);
    free(X);
    free(Y);
    free(Yh);
    free(Yc);
    eie_model_free(none);
    eie_model_free(stored);
    eie_model_free(m);
    onnx_free(&p);
}

Test(lstm_fed, one_step_both_states_fed_match_reference_and_stored_state)
{
    check_fed(5, 4, 3, 1, FED_H | FED_C, EIE_STORAGE_EXACT);
}

Test(lstm_fed, many_steps_several_lanes_match_reference_and_stored_state)
{
    check_fed(7, 9, 5, 37, FED_H | FED_C, EIE_STORAGE_EXACT);
}

Test(lstm_fed, h_fed_listed_before_x_c_stored_shared_weights)
{
    check_fed(6, 10, 4, 12, FED_H | FED_FIRST, EIE_STORAGE_SHARED);
}

Test(lstm_fed, only_c_fed_many_steps)
{
    check_fed(4, 11, 20, 9, FED_C, EIE_STORAGE_SHARED);
}

Test(lstm_fed, eie_sim_fed_state_equals_stored_state_and_stays_near_cpu)
{
    onnx_lstm_t p = onnx_random(8, 10, 2, 1, 77);
    eie_model_t *stored = lstm_model(&p, EIE_STORAGE_SHARED, 0);
    eie_model_t *m = lstm_model_fed(&p, EIE_STORAGE_SHARED, 0, FED_H | FED_C);
    enum { T = 30, NH = 20 };
    float *X = input(T * 2 * 8, 8);
    float ref[T * NH], cpu[T * NH], y[T * NH];
    float *o[1];
    eie_error_t err;
    eie_run_info_t info;
    run_info(stored, "eie-sim", 3, X, T, ref, &info);
    o[0] = cpu;
    cr_assert_eq(run_fed(m, "cpu", 2, X, p.h0, p.c0, T, o, &err), EIE_STATUS_OK, "%s", err.msg);
    o[0] = y;
    cr_assert_eq(run_fed(m, "eie-sim", 3, X, p.h0, p.c0, T, o, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    cr_assert(memcmp(y, ref, sizeof y) == 0, "eie-sim: fed state differs from stored state");
    long bad = th_mismatch(y, cpu, T * NH, SIM_TOL);
    cr_assert_eq(bad, -1, "y[%ld] = %g, cpu %g", bad, bad >= 0 ? (double)y[bad] : 0.0,
                 bad >= 0 ? (double)cpu[bad] : 0.0);
    /* the direct sim API: the single-input form names the multi-input one */
    eie_sim_params_t sp = eie_sim_params_default();
    sp.n_pes = 3;
    eie_sim_t *sim;
    cr_assert_eq(eie_sim_init(m, &sp, &sim, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_sim_input_count(sim), 3);
    cr_assert_eq(eie_sim_run_sequence(sim, X, T, y, NULL, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "eie_sim_run_sequence_multi"), "%s", err.msg);
    const float *ins[3] = {X, p.h0, p.c0};
    eie_sim_report_t rep;
    float *yo[1] = {y};
    cr_assert_eq(eie_sim_run_sequence_multi(sim, ins, T, yo, &rep, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    cr_assert(memcmp(y, ref, sizeof y) == 0);
    cr_assert(rep.total.cycles > 0);
    eie_sim_report_clear(&rep);
    eie_sim_free(sim);
    free(X);
    eie_model_free(stored);
    eie_model_free(m);
    onnx_free(&p);
}

/* Y, Y_h and Y_c on eie-sim, a stored and a fed state: Y within the
 * fixed-point bound of cpu, Y_h its last step bit for bit, Y_c near cpu's
 * (the cell state stays float in the sim); the single-array forms refuse
 * the model, naming the multi one. */
Test(lstm_sim, final_states_come_out_beside_the_steps)
{
    onnx_lstm_t p = onnx_random(8, 10, 2, 1, 91);
    enum { T = 12, NH = 20 };
    float *X = input(T * 2 * 8, 5);
    for (int fed = 0; fed < 2; fed++) {
        eie_model_t *m = lstm_model_fed(&p, EIE_STORAGE_SHARED, 1, fed ? FED_H | FED_C : 0);
        float cpu[3][T * NH], sim[3][T * NH];
        float *oc[3] = {cpu[0], cpu[1], cpu[2]}, *os[3] = {sim[0], sim[1], sim[2]};
        eie_error_t err;
        cr_assert_eq(run_fed(m, "cpu", 2, X, p.h0, p.c0, T, oc, &err), EIE_STATUS_OK, "%s",
                     err.msg);
        cr_assert_eq(run_fed(m, "eie-sim", 3, X, p.h0, p.c0, T, os, &err), EIE_STATUS_OK, "%s",
                     err.msg);
        for (int k = 0; k < 3; k++) {
            size_t n = k ? NH : T * NH;
            long bad = th_mismatch(sim[k], cpu[k], n, SIM_TOL);
            cr_assert_eq(bad, -1, "fed %d, output %d [%ld]: sim %g, cpu %g", fed, k, bad,
                         bad >= 0 ? (double)sim[k][bad] : 0.0,
                         bad >= 0 ? (double)cpu[k][bad] : 0.0);
        }
        cr_assert(memcmp(sim[1], sim[0] + (T - 1) * NH, NH * sizeof(float)) == 0,
                  "fed %d: Y_h is not Y's last step", fed);
        eie_sim_params_t sp = eie_sim_params_default();
        sp.n_pes = 3;
        eie_sim_t *s;
        cr_assert_eq(eie_sim_init(m, &sp, &s, &err), EIE_STATUS_OK, "%s", err.msg);
        cr_assert_eq(eie_sim_output_count(s), 3);
        cr_assert_eq(eie_sim_output_dim_of(s, 2), NH);
        cr_assert_eq(eie_sim_run_sequence(s, X, T, sim[0], NULL, &err),
                     EIE_STATUS_INVALID_ARGUMENT);
        cr_assert(strstr(err.msg, "3 outputs; use eie_sim_run_sequence_multi"), "%s", err.msg);
        eie_sim_free(s);
        eie_model_free(m);
    }
    free(X);
    onnx_free(&p);
}

Test(lstm_fed, round_trip_is_byte_exact_and_names_the_inputs)
{
    onnx_lstm_t p = onnx_random(6, 3, 2, 1, 11);
    eie_model_t *m = lstm_model_fed(&p, EIE_STORAGE_SHARED, 1, FED_H | FED_C | FED_FIRST);
    eie_layer_info_t li;
    cr_assert_eq(eie_model_layer_info(m, 0, &li), EIE_STATUS_OK);
    cr_assert_eq(li.n_inputs, 3);
    cr_assert(li.lstm_initial[0] == 0 && li.lstm_initial[1] == 0);
    cr_assert_eq(li.lstm_initial_input[0], (uint32_t)eie_model_find_tensor(m, "h0"));
    cr_assert_eq(li.lstm_initial_input[1], (uint32_t)eie_model_find_tensor(m, "c0"));
    /* inputs h0, X, c0 */
    cr_assert(eie_model_input_is_state(m, 0) && !eie_model_input_is_state(m, 1) &&
              eie_model_input_is_state(m, 2) && !eie_model_input_is_state(m, 3));
    uint8_t *a, *b2;
    size_t la, lb;
    eie_error_t err;
    cr_assert_eq(eie_format_write(m, &a, &la, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_model_t *m2;
    cr_assert_eq(eie_model_load_memory(a, la, NULL, &m2, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_format_write(m2, &b2, &lb, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert(la == lb && memcmp(a, b2, la) == 0);
    /* the engine takes the sequence's batch from X alone */
    eie_engine_t *e;
    eie_net_t *net;
    cr_assert_eq(eie_engine_init(NULL, &e, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_net_init(e, m2, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_input_elements(net, 0), 6);
    cr_assert_eq(eie_net_input_elements(net, 1), 12);
    eie_net_free(net);
    eie_engine_free(e);
    free(a);
    free(b2);
    eie_model_free(m2);
    eie_model_free(m);
    onnx_free(&p);
}

/* A builder for the refusals: X [-1,2,6], an lstm H = 3, the given fed tensor names. */
static eie_status_t fed_node(eie_builder_t *b, const char *h_in, const char *c_in,
                             const float *h_stored, eie_error_t *err)
{
    uint64_t seed = 9;
    eie_weights_t w = th_random_weights(12, 9, 0.3, EIE_STORAGE_SHARED, 4, &seed);
    const char *ins[1] = {"X"};
    eie_node_desc_t d = {.kind = EIE_LAYER_LSTM, .name = "l", .n_inputs = 1, .inputs = ins,
                         .output = "Y", .rows = 12, .weights = w};
    d.lstm = (eie_lstm_desc_t){.hidden_size = 3, .initial_h_input = h_in,
                               .initial_c_input = c_in, .initial_h = h_stored};
    eie_status_t st = eie_builder_add_node(b, &d, err);
    th_weights_free(&w);
    return st;
}

static eie_builder_t *fed_builder(const eie_shape_t *h0)
{
    eie_builder_t *b;
    eie_error_t err;
    cr_assert_eq(eie_builder_init_graph("lstm", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t xs = {.rank = 3, .dims = {-1, 2, 6}};
    cr_assert_eq(eie_builder_add_input(b, "X", EIE_DTYPE_FP32, &xs, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_builder_add_input(b, "h0", EIE_DTYPE_FP32, h0, &err), EIE_STATUS_OK,
                 "%s", err.msg);
    return b;
}

Test(lstm_fed, builder_refuses_a_wrong_shape_naming_node_and_tensor)
{
    eie_shape_t bad = {.rank = 3, .dims = {1, 2, 4}};
    eie_builder_t *b = fed_builder(&bad);
    eie_error_t err;
    cr_assert_eq(fed_node(b, "h0", NULL, NULL, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "node 0 (lstm)") && strstr(err.msg, "initial_h \"h0\" is [1,2,4]") &&
                  strstr(err.msg, "[1,2,3]"),
              "%s", err.msg);
    eie_builder_free(b);
}

Test(lstm_fed, builder_refuses_a_state_both_stored_and_fed)
{
    eie_shape_t ss = {.rank = 3, .dims = {1, 2, 3}};
    eie_builder_t *b = fed_builder(&ss);
    eie_error_t err;
    float h[6] = {0};
    cr_assert_eq(fed_node(b, "h0", NULL, h, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "initial_h is both stored and fed by \"h0\""), "%s", err.msg);
    eie_builder_free(b);
}

Test(lstm_fed, builder_refuses_a_state_that_is_no_graph_input)
{
    eie_shape_t ss = {.rank = 3, .dims = {1, 2, 3}};
    eie_builder_t *b = fed_builder(&ss);
    eie_error_t err;
    cr_assert_eq(th_act(b, "h0", "h0r", EIE_ACT_RELU, 0, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(fed_node(b, "h0r", NULL, NULL, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "node 1 (lstm)") &&
                  strstr(err.msg, "initial_h \"h0r\" is not a graph input"),
              "%s", err.msg);
    cr_assert_eq(fed_node(b, "nothing", NULL, NULL, &err), EIE_STATUS_NOT_FOUND);
    cr_assert(strstr(err.msg, "initial_h input \"nothing\" is no tensor"), "%s", err.msg);
    eie_builder_free(b);
}

Test(lstm_fed, a_node_reading_the_fed_state_per_step_is_refused_at_write)
{
    eie_shape_t ss = {.rank = 3, .dims = {1, 2, 3}};
    eie_builder_t *b = fed_builder(&ss);
    eie_error_t err;
    cr_assert_eq(fed_node(b, "h0", NULL, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(th_act(b, "h0", "A", EIE_ACT_RELU, 0, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_builder_add_output(b, "Y", &err);
    eie_builder_add_output(b, "A", &err);
    uint8_t *bytes;
    size_t len;
    cr_assert_eq(eie_builder_write_memory(b, &bytes, &len, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "node 1 (activation) reads \"h0\" per step"), "%s", err.msg);
    eie_builder_free(b);
}

Test(lstm_fed, an_unused_one_row_input_still_follows_the_batch_rule)
{
    eie_shape_t ss = {.rank = 3, .dims = {1, 2, 3}};
    eie_builder_t *b = fed_builder(&ss);
    eie_error_t err;
    cr_assert_eq(fed_node(b, NULL, NULL, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_builder_add_output(b, "Y", &err);
    uint8_t *bytes;
    size_t len;
    cr_assert_eq(eie_builder_write_memory(b, &bytes, &len, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "input \"h0\" has batch dimension 1 but \"X\" has -1"), "%s",
              err.msg);
    eie_builder_free(b);
}

/* The file of the fed model: tensors X, h0, c0, Y, ...; returns it and its length. */
static uint8_t *fed_bytes(const onnx_lstm_t *p, size_t *len)
{
    eie_model_t *m = lstm_model_fed(p, EIE_STORAGE_SHARED, 0, FED_H | FED_C);
    uint8_t *data;
    eie_error_t err;
    cr_assert_eq(eie_format_write(m, &data, len, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_model_free(m);
    return data;
}

Test(lstm_fed, reader_refuses_a_fed_state_of_the_wrong_shape)
{
    onnx_lstm_t p = onnx_random(6, 3, 2, 0, 11);
    size_t len;
    uint8_t *data = fed_bytes(&p, &len);
    /* tensor "h0": name, dtype 1, rank 3, dims 1, 2, 3 (int64): make H 4 */
    uint8_t pat[] = {2, 0, 0, 0, 'h', '0', 1, 0, 0, 0, 3, 0, 0, 0};
    size_t at = find(data, len, pat, sizeof pat) + sizeof pat + 16;
    cr_assert_eq(data[at], 3);
    data[at] = 4;
    eie_error_t err;
    cr_assert_eq(load_patched(data, len, &err), EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, "node 0 (lstm \"lstm\")") &&
                  strstr(err.msg, "initial_h \"h0\" is [1,2,4]"),
              "%s", err.msg);
    /* and a datatype other than FP32, named by its tensor */
    data[at] = 3;
    data[at - 24] = 2;
    cr_assert_eq(load_patched(data, len, &err), EIE_STATUS_UNSUPPORTED);
    cr_assert(strstr(err.msg, "tensor \"h0\": datatype 2"), "%s", err.msg);
    free(data);
    onnx_free(&p);
}

Test(lstm_fed, reader_refuses_flags_that_do_not_match_the_inputs)
{
    onnx_lstm_t p = onnx_random(6, 3, 2, 0, 11);
    size_t len;
    uint8_t *data = fed_bytes(&p, &len);
    /* the node "lstm": inputs 3 (X 0, h0 1, c0 2), then outputs 1, Y 3, hidden 3, flags 12 */
    uint8_t pat[] = {4, 0, 0, 0, 'l', 's', 't', 'm', 3, 0, 0, 0};
    size_t at = find(data, len, pat, sizeof pat) + sizeof pat + 12 + 8 + 4;
    cr_assert_eq(data[at], 12);
    eie_error_t err;
    data[at] = 4; /* h fed, c not: 2 inputs named, 3 given */
    cr_assert_eq(load_patched(data, len, &err), EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, "3 inputs but the initial flags 4 name 2"), "%s", err.msg);
    data[at] = 5; /* h stored and fed */
    cr_assert_eq(load_patched(data, len, &err), EIE_STATUS_BAD_FORMAT);
    cr_assert(strstr(err.msg, "flags 5") && strstr(err.msg, "not both"), "%s", err.msg);
    free(data);
    onnx_free(&p);
}

/* ---- the one-PE copy of a small graph ------------------------------------ */

/* A net of m on n_pes PEs with or without the one-PE copy; its layout bytes. */
static eie_net_t *copy_net(const eie_model_t *m, unsigned n_pes, int one_layout, int invariant,
                           eie_engine_t **e, uint64_t *bytes)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    o.n_pes = n_pes;
    o.cpu_one_layout = one_layout;
    o.cpu_batch_invariant = invariant;
    eie_net_t *net;
    eie_error_t err;
    cr_assert_eq(eie_engine_init(&o, e, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_init(*e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    *bytes = eie_net_layout_bytes(net);
    return net;
}

/* Y, Y_h, Y_c of one sequence (out: T H + 2 H floats) and of K side by side
 * (then T K H + 2 K H) of X on net; X holds T K samples, time-major. */
static void copy_runs(eie_net_t *net, const float *X, size_t T, size_t K, size_t H, float *one,
                      float *many)
{
    eie_error_t err;
    const float *ins[1] = {X};
    float *o1[3] = {one, one + T * H, one + T * H + H};
    cr_assert_eq(eie_net_run_multi(net, ins, T, o1, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    float *ok[3] = {many, many + T * K * H, many + T * K * H + K * H};
    cr_assert_eq(eie_net_run_sequences(net, ins, K, T, NULL, ok, NULL, &err), EIE_STATUS_OK,
                 "%s", err.msg);
}

/* A small LSTM graph on 2 and 3 PEs keeps a one-PE copy (more layout
 * bytes) and runs its small runs on it, with the bits of the PEs' layout:
 * one sequence and four side by side, with and without batch-invariant
 * bits. On one PE there is no copy, nor for a graph whose step is large
 * enough for the pool. */
Test(lstm_one_pe_copy, small_graph_runs_on_it_with_the_same_bits)
{
    enum { I = 8, H = 10, T = 9, K = 4 };
    onnx_lstm_t p = onnx_random(I, H, 1, 0, 91);
    eie_model_t *m = lstm_model(&p, EIE_STORAGE_SHARED, 1); /* Y, Y_h, Y_c */
    float *X = input(T * K * I, 13);
    for (unsigned n_pes = 1; n_pes <= 3; n_pes++)
        for (int inv = 0; inv <= 1; inv++) {
            float one[2][T * H + 2 * H], many[2][T * K * H + 2 * K * H];
            uint64_t bytes[2];
            for (int single = 0; single <= 1; single++) {
                eie_engine_t *e;
                eie_net_t *net = copy_net(m, n_pes, single, inv, &e, &bytes[single]);
                copy_runs(net, X, T, K, H, one[single], many[single]);
                eie_net_free(net);
                eie_engine_free(e);
            }
            if (n_pes == 1)
                cr_assert_eq(bytes[0], bytes[1], "1 PE: no copy");
            else
                cr_assert_gt(bytes[0], bytes[1], "%u PEs: the copy adds layout bytes", n_pes);
            cr_assert(memcmp(one[0], one[1], sizeof one[0]) == 0,
                      "%u PEs, invariant %d: one sequence's bits differ", n_pes, inv);
            cr_assert(memcmp(many[0], many[1], sizeof many[0]) == 0,
                      "%u PEs, invariant %d: four sequences' bits differ", n_pes, inv);
        }
    free(X);
    eie_model_free(m);
    onnx_free(&p);
    /* 4 x 256 x 320 at half density: a step's 164k entries pay for the pool */
    p = onnx_random(64, 256, 1, 0, 92);
    m = lstm_model(&p, EIE_STORAGE_SHARED, 0);
    uint64_t bytes[2];
    for (int single = 0; single <= 1; single++) {
        eie_engine_t *e;
        eie_net_free(copy_net(m, 2, single, 0, &e, &bytes[single]));
        eie_engine_free(e);
    }
    cr_assert_eq(bytes[0], bytes[1], "a large step: no copy");
    eie_model_free(m);
    onnx_free(&p);
}
