/* Graphs on the cpu backend against the dense reference: every node kind,
 * both storages, several inputs and outputs, 1/2/3/7 PEs bit-identical. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../format/graph_helpers.h"
#include "cpu/graph.h"
#include "cpu/kernels.h"

typedef struct run {
    size_t n_out;
    float *out[8];
    size_t n[8];
} run_t;

static eie_model_t *load(eie_builder_t *b)
{
    eie_model_t *m = th_load_builder(b);
    cr_assert_not_null(m);
    return m;
}

/* Random inputs for every graph input of m (batch samples, ~30% zeros). */
static float **inputs_for(const eie_model_t *m, size_t batch, uint64_t seed)
{
    float **in = calloc(eie_model_input_count(m), sizeof *in);
    for (size_t i = 0; i < eie_model_input_count(m); i++) {
        eie_tensor_info_t ti;
        eie_model_input_info(m, i, &ti);
        size_t n = eie_shape_sample_elements(&ti.shape) * batch;
        in[i] = malloc(n * sizeof(float));
        th_random_input(in[i], n, 0.7, &seed);
    }
    return in;
}

static void outputs_alloc(const eie_model_t *m, size_t batch, run_t *r)
{
    r->n_out = eie_model_output_count(m);
    for (size_t i = 0; i < r->n_out; i++) {
        eie_tensor_info_t ti;
        eie_model_output_info(m, i, &ti);
        r->n[i] = eie_shape_sample_elements(&ti.shape) * batch;
        r->out[i] = calloc(r->n[i], sizeof(float));
    }
}

static void run_free(run_t *r)
{
    for (size_t i = 0; i < r->n_out; i++)
        free(r->out[i]);
}

/* An engine of n_pes PEs (the column form alone if column_only) and m on it. */
static eie_net_t *open_net(const eie_model_t *m, unsigned n_pes, bool column_only,
                           eie_engine_t **e)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    o.n_pes = n_pes;
    o.cpu_column_only = column_only;
    eie_net_t *net;
    eie_error_t err;
    cr_assert_eq(eie_engine_init(&o, e, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_init(*e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    return net;
}

static void run_cpu(const eie_model_t *m, unsigned n_pes, float **in, size_t batch, run_t *r,
                    eie_run_info_t *info)
{
    eie_engine_t *e;
    eie_net_t *net = open_net(m, n_pes, false, &e);
    eie_error_t err;
    outputs_alloc(m, batch, r);
    cr_assert_eq(eie_net_run_multi(net, (const float *const *)in, batch, r->out, info, &err),
                 EIE_STATUS_OK, "%s", err.msg);
    eie_net_free(net);
    eie_engine_free(e);
}

static void check_against_dense(const eie_model_t *m, size_t batch, float tol)
{
    float **in = inputs_for(m, batch, 99);
    run_t ref, r1;
    outputs_alloc(m, batch, &ref);
    eie_error_t err;
    cr_assert_eq(eie_model_run_dense_multi(m, (const float *const *)in, batch, ref.out, &err),
                 EIE_STATUS_OK, "%s", err.msg);
    const unsigned pes[] = {1, 2, 3, 7};
    for (size_t k = 0; k < 4; k++) {
        run_t r;
        eie_run_info_t info;
        run_cpu(m, pes[k], in, batch, &r, &info);
        for (size_t i = 0; i < r.n_out; i++) {
            long bad = th_mismatch(r.out[i], ref.out[i], r.n[i], tol);
            cr_assert(bad < 0, "%u PEs, output %zu [%ld]: %g vs dense %g", pes[k], i, bad,
                      bad < 0 ? 0.0 : (double)r.out[i][bad], bad < 0 ? 0.0 : (double)ref.out[i][bad]);
            if (k > 0)
                cr_assert(memcmp(r.out[i], r1.out[i], r.n[i] * sizeof(float)) == 0,
                          "%u PEs differ from 1 PE in output %zu", pes[k], i);
        }
        cr_assert(info.entries > 0);
        if (k == 0)
            r1 = r;
        else
            run_free(&r);
    }
    run_free(&r1);
    run_free(&ref);
    for (size_t i = 0; i < eie_model_input_count(m); i++)
        free(in[i]);
    free(in);
}

Test(graph_run, every_node_kind_matches_dense_on_1_2_3_7_pes)
{
    eie_builder_t *b = NULL;
    eie_error_t err;
    cr_assert_eq(th_build_zoo(&b, 11, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_model_t *m = load(b);
    check_against_dense(m, 1, 1e-5f);
    check_against_dense(m, 5, 1e-5f);
    check_against_dense(m, 37, 1e-5f); /* several chunks */
    eie_model_free(m);
    eie_builder_free(b);
}

static void run_one(const eie_model_t *m, unsigned n_pes, bool column_only, const float *x,
                    size_t batch, float *y, eie_run_info_t *info);

/* A wide conv: several im2col tiles, run on the PEs in parallel, which
 * report their busy times (one PE: none). */
static void wide_conv(eie_storage_t storage)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 5;
    cr_assert_eq(eie_builder_init_graph("wide", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t s = th_shape4(-1, 512, 21, 19);
    cr_assert_eq(eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    cr_assert_eq(th_act(b, "x", "r", EIE_ACT_RELU, 0, &err), EIE_STATUS_OK);
    eie_conv2d_params_t p = {.kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1,
                             .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
                             .dilation_h = 1, .dilation_w = 1, .groups = 1};
    cr_assert_eq(th_conv(b, "r", "y", 40, p, 0.1, storage, &seed, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    cr_assert_eq(eie_builder_add_output(b, "y", &err), EIE_STATUS_OK);
    eie_model_t *m = load(b);
    check_against_dense(m, 2, 1e-5f);
    size_t n_in = (size_t)2 * 512 * 21 * 19, n_out = (size_t)2 * 40 * 21 * 19;
    float *x = calloc(n_in, sizeof(float)), *y = malloc(n_out * sizeof(float));
    for (size_t i = 0; i < n_in; i++)
        x[i] = (float)(i % 7) - 3.0f;
    eie_run_info_t info;
    run_one(m, 2, false, x, 2, y, &info);
    cr_assert(th_busy_times_ok(&info, 1), "2 PEs: both busy times");
    memset(&info, 0xff, sizeof info);
    run_one(m, 1, false, x, 2, y, &info);
    cr_assert(th_busy_times_ok(&info, 0), "1 PE: none");
    free(x);
    free(y);
    eie_model_free(m);
    eie_builder_free(b);
}

/* Depthwise: one output channel a group, so each group's matrix has one row. */
Test(graph_run, depthwise_conv_matches_dense_on_1_2_3_7_pes)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 9;
    cr_assert_eq(eie_builder_init_graph("dw", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t s = th_shape4(-1, 10, 6, 7);
    cr_assert_eq(eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    eie_conv2d_params_t p = {.kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 2,
                             .pad_top = 1, .pad_left = 0, .pad_bottom = 2, .pad_right = 1,
                             .dilation_h = 1, .dilation_w = 1, .groups = 10};
    cr_assert_eq(th_conv(b, "x", "y", 10, p, 0.8, EIE_STORAGE_SHARED, &seed, &err),
                 EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_builder_add_output(b, "y", &err), EIE_STATUS_OK);
    eie_model_t *m = load(b);
    check_against_dense(m, 3, 1e-5f);
    eie_model_free(m);
    eie_builder_free(b);
}

/* Output channel i of a grouped conv runs on PE i mod N, as an fc row does. */
Test(graph_run, grouped_conv_channel_i_runs_on_pe_i_mod_n)
{
    const unsigned pes[] = {1, 2, 3, 7};
    const uint32_t rows_g[] = {1, 2, 5, 7, 16};
    for (size_t a = 0; a < 4; a++)
        for (size_t c = 0; c < 5; c++)
            for (uint32_t q = 0; q < 9; q++)
                for (unsigned p = 0; p < pes[a]; p++) {
                    unsigned v = eie_cpu_group_slot(pes[a], q, rows_g[c], p);
                    cr_assert_lt(v, pes[a]);
                    /* slot v holds rows v, v + N, ... of the group */
                    for (uint32_t r = v; r < rows_g[c]; r += pes[a])
                        cr_assert_eq((q * rows_g[c] + r) % pes[a], p,
                                     "N=%u rows_g=%u group %u: channel %u on PE %u", pes[a],
                                     rows_g[c], q, q * rows_g[c] + r, p);
                }
}

Test(graph_run, wide_conv_shared_over_several_tiles) { wide_conv(EIE_STORAGE_SHARED); }
Test(graph_run, wide_conv_exact_over_several_tiles) { wide_conv(EIE_STORAGE_EXACT); }

/* A convolution runs direct (the conv form) where a sixteenth or more of
 * its input is nonzero, else on patches; both give the bits of the patch
 * path alone (cpu_column_only: no conv form), on 1, 2, 3 and 7 PEs, and
 * match the dense reference. Shapes: stride 1 with pads; stride 2 and
 * dilation 2 with asymmetric pads and groups (four stride phases); stride
 * 4, kernel 11, as AlexNet's conv1. A direct run walks every entry once
 * per block of EIE_CONV_LANES (or a last 32) positions of a phase image
 * row-major (Wq wide, rounded up to a multiple of 16 where that adds little).
 */
typedef struct conv_case {
    int64_t C, H, W;
    uint32_t cout;
    eie_conv2d_params_t p;
    bool threads; /* large enough that a dense run goes over the PE threads, each PE
                     phasing the whole input into a copy of its own (cpu/graph.c) */
} conv_case_t;

static void direct_conv_case(const conv_case_t *cc)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 17;
    cr_assert_eq(eie_builder_init_graph("direct", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t s = th_shape4(-1, cc->C, cc->H, cc->W);
    cr_assert_eq(eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    cr_assert_eq(th_conv(b, "x", "y", cc->cout, cc->p, 0.4, EIE_STORAGE_SHARED, &seed, &err),
                 EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_builder_add_output(b, "y", &err), EIE_STATUS_OK);
    eie_model_t *m = load(b);
    eie_layer_info_t li;
    eie_model_layer_info(m, 0, &li);
    eie_tensor_info_t yi;
    eie_model_output_info(m, 0, &yi);
    const eie_conv2d_params_t *p = &cc->p;
    int64_t Wq = (cc->W + p->pad_left + p->pad_right + p->stride_w - 1) / p->stride_w;
    uint64_t Ho = (uint64_t)yi.shape.dims[2];
    /* Wq rounded up to 16 (aligned loads) where that adds at most a quarter */
    int64_t Wq16 = (Wq + 15) / 16 * 16;
    Wq = Wq16 * 4 <= Wq * 5 ? Wq16 : Wq;
    /* blocks of EIE_CONV_LANES, the last one 32 or 16 where no more are left */
    uint64_t Pq = Ho * (uint64_t)Wq, rest = Pq % EIE_CONV_LANES;
    uint64_t blocks = Pq / EIE_CONV_LANES + (rest > 0);
    enum { BATCH = 3 };
    size_t nx = (size_t)(cc->C * cc->H * cc->W) * BATCH;
    size_t ny = eie_shape_sample_elements(&yi.shape) * BATCH;
    float *x = malloc(nx * sizeof(float)), *ref = malloc(ny * sizeof(float));
    float *y0 = malloc(ny * sizeof(float)), *y = malloc(ny * sizeof(float));
    for (int dense = 0; dense < 2; dense++) {
        th_random_input(x, nx, dense ? 0.7 : 0.02, &seed);
        const float *in[1] = {x};
        float *out[1] = {ref};
        cr_assert_eq(eie_model_run_dense_multi(m, in, BATCH, out, &err), EIE_STATUS_OK);
        static const unsigned pes[] = {1, 2, 3, 7};
        for (int k = -1; k < 4; k++) {
            eie_engine_opts_t o = eie_engine_opts_default();
            o.n_pes = k < 0 ? 1 : pes[k];
            o.cpu_column_only = k < 0;
            eie_engine_t *e;
            eie_net_t *net;
            eie_run_info_t info;
            cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK, "%s", err.msg);
            cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
            out[0] = k < 0 ? y0 : y;
            cr_assert_eq(eie_net_run_multi(net, in, BATCH, out, &info, &err), EIE_STATUS_OK,
                         "%s", err.msg);
            if (k < 0) {
                long bad = th_mismatch(y0, ref, ny, 1e-5f);
                cr_assert(bad < 0, "patch path [%ld]: %g vs dense %g", bad,
                          bad < 0 ? 0.0 : (double)y0[bad], bad < 0 ? 0.0 : (double)ref[bad]);
            } else {
                cr_assert(memcmp(y, y0, ny * sizeof(float)) == 0,
                          "%u PEs, input %s: differs from the patch path", pes[k],
                          dense ? "dense" : "sparse");
                if (dense)
                    cr_assert_eq(info.entries, li.nnz * blocks * BATCH,
                                 "%u PEs: a direct run walks every entry once a block", pes[k]);
                else if (!cc->threads) /* (on the large cases the counts come close) */
                    cr_assert_lt(info.entries, li.nnz * blocks * BATCH,
                                 "%u PEs: a sparse input takes the patch path", pes[k]);
                if (dense && cc->threads && pes[k] > 1)
                    cr_assert_gt(info.pe_busy_max_ns, 0, "%u PEs: the run stayed on one thread",
                                 pes[k]);
            }
            eie_net_free(net);
            eie_engine_free(e);
        }
    }
    free(x);
    free(ref);
    free(y0);
    free(y);
    eie_model_free(m);
    eie_builder_free(b);
}

Test(graph_run, direct_conv_gives_the_patch_paths_bits)
{
    static const conv_case_t cases[] = {
        {8, 9, 13, 12, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, false},
        {6, 14, 11, 10, {3, 2, 2, 2, 0, 1, 2, 1, 2, 2, 2}, false},
        {3, 35, 37, 8, {11, 11, 4, 4, 0, 0, 0, 0, 1, 1, 1}, false},
        /* aligned loads, five shifted copies: stride 2, dilation, groups */
        {4, 10, 57, 6, {5, 5, 2, 2, 2, 2, 1, 3, 1, 2, 2}, false},
        /* column offsets past 16 floats (kx dw = 18): all sixteen copies */
        {2, 6, 40, 4, {1, 3, 1, 1, 0, 9, 0, 9, 1, 9, 1}, false},
        /* over the PE threads: stride 1 with pads, and stride 2 in groups
         * (each PE phases its own copy); a phased input over 4 MiB (one
         * copy, each PE phasing a share) */
        {32, 29, 29, 24, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, true},
        {24, 31, 30, 16, {5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 2}, true},
        {4, 300, 300, 4, {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        direct_conv_case(&cases[i]);
}

/* 1x1x3x3 input 1..9 through one pooling node on 2 PEs, against hand-computed values. */
static void pool_case(eie_layer_kind_t kind, eie_pool2d_params_t p, const float *want, size_t n)
{
    eie_builder_t *b;
    eie_error_t err;
    cr_assert_eq(eie_builder_init_graph("pool", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t s = th_shape4(1, 1, 3, 3);
    cr_assert_eq(eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    cr_assert_eq(th_pool(b, kind, "x", "y", p, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_builder_add_output(b, "y", &err), EIE_STATUS_OK);
    eie_model_t *m = load(b);
    eie_tensor_info_t ti;
    eie_model_output_info(m, 0, &ti);
    cr_assert_eq(eie_shape_sample_elements(&ti.shape), n);
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float *in[1] = {x};
    run_t r;
    run_cpu(m, 2, in, 1, &r, NULL);
    for (size_t i = 0; i < n; i++)
        cr_assert_float_eq(r.out[0][i], want[i], 1e-6f, "y[%zu] = %g, want %g", i,
                           (double)r.out[0][i], (double)want[i]);
    run_free(&r);
    eie_model_free(m);
    eie_builder_free(b);
}

Test(graph_run, avgpool_count_include_pad_both_ways)
{
    eie_pool2d_params_t p = {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2,
                             .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1};
    const float no_pad[4] = {1.0f, 2.5f, 5.5f, 7.0f};
    pool_case(EIE_LAYER_AVGPOOL2D, p, no_pad, 4);
    p.count_include_pad = 1;
    const float with_pad[4] = {0.25f, 1.25f, 2.75f, 7.0f};
    pool_case(EIE_LAYER_AVGPOOL2D, p, with_pad, 4);
}

Test(graph_run, maxpool_ceil_mode_keeps_partial_windows)
{
    eie_pool2d_params_t p = {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2};
    const float floor_mode[1] = {5.0f};
    pool_case(EIE_LAYER_MAXPOOL2D, p, floor_mode, 1);
    p.ceil_mode = 1;
    const float ceil_mode[4] = {5.0f, 6.0f, 8.0f, 9.0f};
    pool_case(EIE_LAYER_MAXPOOL2D, p, ceil_mode, 4);
    /* with pads 1, ceil((3 + 2 - 2) / 2) + 1 = 3 windows, but the third would start in the
     * end padding: dropped, 2x2 */
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
    const float dropped[4] = {1.0f, 3.0f, 7.0f, 9.0f};
    pool_case(EIE_LAYER_MAXPOOL2D, p, dropped, 4);
}

Test(graph_run, single_array_run_needs_one_input_and_one_output)
{
    eie_builder_t *b = NULL;
    eie_error_t err;
    cr_assert_eq(th_build_zoo(&b, 11, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_model_t *m = load(b);
    eie_engine_t *e;
    eie_net_t *net;
    cr_assert_eq(eie_engine_init(NULL, &e, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_input_count(net), 2);
    cr_assert_eq(eie_net_output_count(net), 4);
    cr_assert_eq(eie_net_input_elements(net, 0), 3 * 11 * 10);
    float x[330] = {0}, y[7];
    cr_assert_eq(eie_net_run(net, x, 1, y, NULL, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "2 inputs and 4 outputs: use eie_net_run_multi") != NULL, "%s",
              err.msg);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
    eie_builder_free(b);
}

Test(graph_run, fixed_batch_dimension_is_enforced)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 2;
    cr_assert_eq(eie_builder_init_graph("fixed", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t s = {.rank = 2, .dims = {1, 6}};
    cr_assert_eq(eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    cr_assert_eq(th_fc(b, "x", "y", 4, 0.5, EIE_STORAGE_SHARED, &seed, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_builder_add_output(b, "y", &err), EIE_STATUS_OK);
    eie_model_t *m = load(b);
    eie_engine_t *e;
    eie_net_t *net;
    cr_assert_eq(eie_engine_init(NULL, &e, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK);
    float x[12] = {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6}, y[8], ref[4];
    cr_assert_eq(eie_net_run(net, x, 2, y, NULL, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "take exactly 1") != NULL, "%s", err.msg);
    cr_assert_eq(eie_net_run(net, x, 1, y, NULL, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_model_run_dense(m, x, 1, ref, &err), EIE_STATUS_OK);
    cr_assert_eq(th_mismatch(y, ref, 4, 1e-5f), -1);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
    eie_builder_free(b);
}

/* Files the reader accepts after random byte changes (other attributes, shapes, weights)
 * still run, and still match the dense reference. */
Test(graph_run, mutated_files_that_load_run_like_the_dense_reference)
{
    eie_builder_t *b = NULL;
    eie_error_t err;
    cr_assert_eq(th_build_zoo(&b, 11, &err), EIE_STATUS_OK, "%s", err.msg);
    uint8_t *d, *x;
    size_t len;
    cr_assert_eq(eie_builder_write_memory(b, &d, &len, &err), EIE_STATUS_OK);
    x = malloc(len);
    eie_limits_t lim = eie_limits_default();
    lim.max_elements = 4096; /* keeps every accepted mutant small */
    uint64_t seed = 5;
    int loaded = 0;
    for (int k = 0; k < 1500; k++) {
        memcpy(x, d, len);
        x[th_rand(&seed) % (len - 32)] = (uint8_t)th_rand(&seed);
        th_fix_checksum(x, len);
        eie_model_t *m = NULL;
        if (eie_model_load_memory(x, len, &lim, &m, &err) != EIE_STATUS_OK)
            continue;
        loaded++;
        float **in = inputs_for(m, 2, (uint64_t)k + 1);
        run_t ref, r;
        outputs_alloc(m, 2, &ref);
        cr_assert_eq(eie_model_run_dense_multi(m, (const float *const *)in, 2, ref.out, &err),
                     EIE_STATUS_OK, "%s", err.msg);
        run_cpu(m, 3, in, 2, &r, NULL);
        for (size_t i = 0; i < r.n_out; i++) {
            /* a mutated weight may be huge: compare relative to the output's scale */
            float scale = 1.0f;
            for (size_t j = 0; j < r.n[i]; j++)
                scale = fabsf(ref.out[i][j]) > scale ? fabsf(ref.out[i][j]) : scale;
            for (size_t j = 0; j < r.n[i]; j++)
                cr_assert(fabsf(r.out[i][j] - ref.out[i][j]) <= 1e-4f * scale ||
                              (isnan(r.out[i][j]) && isnan(ref.out[i][j])),
                          "mutant %d output %zu[%zu]: %g vs %g", k, i, j, (double)r.out[i][j],
                          (double)ref.out[i][j]);
        }
        run_free(&r);
        run_free(&ref);
        for (size_t i = 0; i < eie_model_input_count(m); i++)
            free(in[i]);
        free(in);
        eie_model_free(m);
    }
    cr_assert(loaded > 100, "only %d of 1500 mutants loaded", loaded);
    free(x);
    free(d);
    eie_builder_free(b);
}

/* A graph's layout is bounded like a chain's: a small file of one wide,
 * nearly empty layer would claim PEs x columns pointers at load. */
Test(graph_run, layout_over_the_limit_is_refused_before_it_is_packed)
{
    eie_builder_t *b = NULL;
    eie_error_t err;
    uint64_t seed = 7;
    eie_shape_t s = {.rank = 2, .dims = {-1, 1 << 20}};
    cr_assert_eq(eie_builder_init_graph("wide", "", &b, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    cr_assert_eq(th_fc(b, "x", "y", 1, 1e-5, EIE_STORAGE_SHARED, &seed, &err), EIE_STATUS_OK,
                 "%s", err.msg);
    cr_assert_eq(eie_builder_add_output(b, "y", &err), EIE_STATUS_OK);
    eie_model_t *m = load(b);
    eie_engine_opts_t o = eie_engine_opts_default();
    o.n_pes = 64;
    o.max_layout_bytes = 64u << 20;
    eie_engine_t *e;
    eie_net_t *net = NULL;
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_LIMIT);
    cr_assert(strstr(err.msg, "layout bytes on 64 PEs") != NULL, "%s", err.msg);
    cr_assert_null(net);
    eie_engine_free(e);
    /* the same file within the limit loads */
    o.n_pes = 2;
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
    eie_builder_free(b);
}

/* Runs m on n_pes PEs (column form alone if column_only); one input, one output. */
static void run_one(const eie_model_t *m, unsigned n_pes, bool column_only, const float *x,
                    size_t batch, float *y, eie_run_info_t *info)
{
    eie_engine_t *e;
    eie_net_t *net = open_net(m, n_pes, column_only, &e);
    eie_error_t err;
    const float *in[1] = {x};
    float *out[1] = {y};
    cr_assert_eq(eie_net_run_multi(net, in, batch, out, info, &err), EIE_STATUS_OK, "%s",
                 err.msg);
    eie_net_free(net);
    eie_engine_free(e);
}

/* x (in_cols) -> fc (FC2_HID, 4-bit, 40% dense) -> [relu] -> fc (FC2_OUT),
 * weights drawn from *seed; *b is the builder, freed by the caller. */
enum { FC2_COLS = 96, FC2_HID = 64, FC2_OUT = 10 };
static eie_model_t *fc2_graph(const char *name, uint32_t in_cols, bool relu, uint64_t *seed,
                              eie_builder_t **b)
{
    eie_error_t err;
    eie_shape_t s = {.rank = 2, .dims = {-1, in_cols}};
    cr_assert_eq(eie_builder_init_graph(name, "", b, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_builder_add_input(*b, "x", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    const uint32_t rows[2] = {FC2_HID, FC2_OUT}, cols[2] = {in_cols, FC2_HID};
    const char *ins[2] = {"x", relu ? "r" : "h"}, *outs[2] = {"h", "y"};
    for (int l = 0; l < 2; l++) {
        eie_node_desc_t d = {.kind = EIE_LAYER_FC, .rows = rows[l]};
        d.weights = th_random_weights(rows[l], cols[l], 0.4, EIE_STORAGE_SHARED, 4, seed);
        cr_assert_eq(th_node1(*b, d, ins[l], outs[l], &err), EIE_STATUS_OK, "%s", err.msg);
        th_weights_free(&d.weights);
        if (l == 0 && relu)
            cr_assert_eq(th_act(*b, "h", "r", EIE_ACT_RELU, 0, &err), EIE_STATUS_OK);
    }
    cr_assert_eq(eie_builder_add_output(*b, "y", &err), EIE_STATUS_OK);
    return load(*b);
}

static eie_model_t *two_fc_graph(const char *name, bool relu, uint64_t *seed, eie_builder_t **b)
{
    return fc2_graph(name, FC2_COLS, relu, seed, b);
}

/* A graph's fc nodes take the row form where it pays, as a chain's layers
 * do: x (every eighth column zero in every sample, the rest nonzero) -> fc
 * (4-bit) -> relu -> fc (4-bit). The row form walks the entries of the zero
 * columns too, so a run that takes it walks more entries than the column
 * form alone. At batch 16 (feature-major copy, both layers) the bits are
 * the column form's; at batch 1 the first layer (dense input) sums its rows
 * fused, within 1e-5, and the second (a ReLU's output) keeps the column
 * form. Both bit-identical on 1, 2, 3 and 7 PEs. */
Test(graph_run, fc_nodes_take_the_row_form_where_it_pays)
{
    enum { COLS = FC2_COLS, OUT = FC2_OUT, BATCH = 16 };
    eie_builder_t *b = NULL;
    uint64_t seed = 23;
    eie_model_t *m = two_fc_graph("rows", true, &seed, &b);
    float x[BATCH * COLS], y_col[BATCH * OUT], y[BATCH * OUT], y1[BATCH * OUT];
    for (size_t i = 0; i < BATCH * COLS; i++)
        x[i] = i % COLS % 8 == 0 ? 0.0f : th_uniform(&seed) + 0.25f;
    static const size_t batches[] = {1, BATCH};
    static const unsigned pes[] = {1, 2, 3, 7};
    for (size_t bi = 0; bi < 2; bi++) {
        size_t B = batches[bi];
        eie_run_info_t col_info, info;
        run_one(m, 1, true, x, B, y_col, &col_info);
        for (size_t k = 0; k < 4; k++) {
            run_one(m, pes[k], false, x, B, y, &info);
            cr_assert_gt(info.entries, col_info.entries,
                         "batch %zu, %u PEs: %llu entries walked, the column form's %llu: the "
                         "row form was not taken",
                         B, pes[k], (unsigned long long)info.entries,
                         (unsigned long long)col_info.entries);
            if (B > 1)
                cr_assert(memcmp(y, y_col, B * OUT * sizeof(float)) == 0,
                          "batch %zu, %u PEs: the row form changed bits", B, pes[k]);
            else
                cr_assert(th_mismatch(y, y_col, B * OUT, 1e-5f) < 0, "batch 1, %u PEs", pes[k]);
            if (k == 0)
                memcpy(y1, y, B * OUT * sizeof(float));
            else
                cr_assert(memcmp(y, y1, B * OUT * sizeof(float)) == 0,
                          "batch %zu: %u PEs differ from 1 PE", B, pes[k]);
        }
    }
    eie_model_free(m);
    eie_builder_free(b);
}

/* An fc node over more than 4096 inputs with 4-bit codes keeps its row
 * form in spans of 4096 columns, each span's entries counting from its
 * first column (layout.h), which the batch-1 row form cannot read: a dense
 * sample takes the column walk there (the node after it, 64 wide, may
 * still sum its rows fused: within 1e-5), and a batch of 16 walks the spans
 * with the column form's bits, on 1, 2, 3 and 7 PEs. */
Test(graph_run, fc_nodes_over_4096_inputs_walk_narrow_row_spans)
{
    enum { COLS = 2 * 4096 + 300, OUT = FC2_OUT, BATCH = 16 };
    eie_builder_t *b = NULL;
    uint64_t seed = 29;
    eie_model_t *m = fc2_graph("spans", COLS, false, &seed, &b);
    float *x = malloc(BATCH * COLS * sizeof(float));
    float y_col[BATCH * OUT], y[BATCH * OUT];
    cr_assert_not_null(x);
    for (size_t i = 0; i < BATCH * COLS; i++)
        x[i] = th_uniform(&seed) + 0.25f;
    static const size_t batches[] = {1, BATCH};
    static const unsigned pes[] = {1, 2, 3, 7};
    for (size_t bi = 0; bi < 2; bi++) {
        size_t B = batches[bi];
        eie_run_info_t info;
        run_one(m, 1, true, x, B, y_col, &info);
        for (size_t k = 0; k < 4; k++) {
            run_one(m, pes[k], false, x, B, y, &info);
            if (B > 1)
                cr_assert(memcmp(y, y_col, B * OUT * sizeof(float)) == 0,
                          "batch %zu, %u PEs: the row spans changed bits", B, pes[k]);
            else
                cr_assert(th_mismatch(y, y_col, B * OUT, 1e-5f) < 0, "batch 1, %u PEs", pes[k]);
        }
    }
    free(x);
    eie_model_free(m);
    eie_builder_free(b);
}

/* With cpu_batch_invariant a graph's fc node on a dense input keeps the
 * column walk at batch 1 (the model above without the ReLU: both layers'
 * inputs may be dense, 7/8 of x's columns active), so each sample's
 * outputs are the bits of its row in a batch of 16, which takes the row
 * form, on 1, 2 and 3 PEs. Without the option the batch-1 run sums the
 * rows fused and this fails. */
Test(graph_run, batch_invariant_fc_nodes_give_a_dense_sample_the_bits_of_its_batch)
{
    enum { COLS = FC2_COLS, OUT = FC2_OUT, BATCH = 16 };
    eie_builder_t *b = NULL;
    eie_error_t err;
    uint64_t seed = 31;
    eie_model_t *m = two_fc_graph("inv", false, &seed, &b);
    float x[BATCH * COLS], y[BATCH * OUT], one[OUT];
    for (size_t i = 0; i < BATCH * COLS; i++)
        x[i] = i % COLS % 8 == 0 ? 0.0f : th_uniform(&seed) - 0.5f;
    static const unsigned pes[] = {1, 2, 3};
    for (size_t k = 0; k < 3; k++) {
        eie_engine_opts_t o = eie_engine_opts_default();
        o.n_pes = pes[k];
        o.cpu_batch_invariant = 1;
        eie_engine_t *e;
        eie_net_t *net;
        cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK, "%s", err.msg);
        cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
        const float *in[1] = {x};
        float *out[1] = {y};
        cr_assert_eq(eie_net_run_multi(net, in, BATCH, out, NULL, &err), EIE_STATUS_OK);
        for (size_t i = 0; i < BATCH; i++) {
            in[0] = x + i * COLS;
            out[0] = one;
            cr_assert_eq(eie_net_run_multi(net, in, 1, out, NULL, &err), EIE_STATUS_OK);
            cr_assert(memcmp(one, y + i * OUT, sizeof one) == 0,
                      "%u PEs: sample %zu alone differs from its row of the batch", pes[k], i);
        }
        eie_net_free(net);
        eie_engine_free(e);
    }
    eie_model_free(m);
    eie_builder_free(b);
}

/* A graph's fc node runs a batch of 2 sparse samples sample by sample, as
 * a chain's layer does (kernels.h, eie_cpu_split_pays): x -> fc (4-bit),
 * sample 0 nonzero in columns 0..39, sample 1 in 30..69 (70 of 96 active
 * in the union, 80 summed). It walks the entries each sample walks alone,
 * and each sample's outputs are the bits of that sample run alone, on 1, 2
 * and 3 PEs. */
Test(graph_run, fc_nodes_run_a_sparse_pair_sample_by_sample)
{
    enum { COLS = 96, OUT = 64 };
    eie_builder_t *b = NULL;
    eie_error_t err;
    uint64_t seed = 29;
    eie_shape_t s = {.rank = 2, .dims = {-1, COLS}};
    cr_assert_eq(eie_builder_init_graph("pair", "", &b, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    eie_node_desc_t d = {.kind = EIE_LAYER_FC, .rows = OUT};
    d.weights = th_random_weights(OUT, COLS, 0.4, EIE_STORAGE_SHARED, 4, &seed);
    cr_assert_eq(th_node1(b, d, "x", "y", &err), EIE_STATUS_OK, "%s", err.msg);
    th_weights_free(&d.weights);
    cr_assert_eq(eie_builder_add_output(b, "y", &err), EIE_STATUS_OK);
    eie_model_t *m = load(b);
    float x[2 * COLS] = {0}, y[2 * OUT], alone[2 * OUT];
    for (size_t j = 0; j < 40; j++) {
        x[j] = th_uniform(&seed) + 0.25f;
        x[COLS + 30 + j] = th_uniform(&seed) - 1.25f;
    }
    static const unsigned pes[] = {1, 2, 3};
    for (size_t k = 0; k < 3; k++) {
        eie_run_info_t info;
        uint64_t alone_entries = 0;
        for (size_t sm = 0; sm < 2; sm++) {
            run_one(m, pes[k], false, x + sm * COLS, 1, alone + sm * OUT, &info);
            alone_entries += info.entries;
        }
        run_one(m, pes[k], false, x, 2, y, &info);
        cr_assert_eq(info.entries, alone_entries,
                     "%u PEs: %llu entries walked, the samples alone %llu", pes[k],
                     (unsigned long long)info.entries, (unsigned long long)alone_entries);
        cr_assert(memcmp(y, alone, sizeof y) == 0, "%u PEs: not each sample's bits alone",
                  pes[k]);
    }
    eie_model_free(m);
    eie_builder_free(b);
}
