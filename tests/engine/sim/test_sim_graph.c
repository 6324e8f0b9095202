/* Graphs with convolutions on eie-sim: within the fixed-point bound of the
 * cpu backend, the same bits on any PE count, and cycles for conv layers. */
#include <criterion/criterion.h>
#include <string.h>

#include "../format/graph_helpers.h"
#include "eie/sim.h"

/* engine/sim/README.md, "Error bound". */
#define SIM_TOL (1.0f / 32.0f)

/* A small LeNet-like graph: conv, relu, maxpool, grouped exact conv, relu,
 * avgpool, add, flatten, fc, softmax. */
static eie_model_t *small_cnn(void)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 21;
    cr_assert_eq(eie_builder_init_graph("cnn", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t s = th_shape4(-1, 1, 12, 12);
    cr_assert_eq(eie_builder_add_input(b, "img", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    eie_conv2d_params_t c1 = {.kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1,
                              .pad_top = 1, .pad_left = 0, .pad_bottom = 0, .pad_right = 1,
                              .dilation_h = 1, .dilation_w = 1, .groups = 1};
    cr_assert_eq(th_conv(b, "img", "c1", 8, c1, 0.6, EIE_STORAGE_SHARED, &seed, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(th_act(b, "c1", "r1", EIE_ACT_RELU, 0, &err), 0);
    eie_pool2d_params_t mp = {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2,
                              .ceil_mode = 1};
    cr_assert_eq(th_pool(b, EIE_LAYER_MAXPOOL2D, "r1", "p1", mp, &err), 0, "%s", err.msg);
    eie_conv2d_params_t c2 = {.kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1,
                              .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
                              .dilation_h = 1, .dilation_w = 1, .groups = 2};
    cr_assert_eq(th_conv(b, "p1", "c2", 8, c2, 0.5, EIE_STORAGE_EXACT, &seed, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(th_act(b, "c2", "r2", EIE_ACT_RELU, 0, &err), 0);
    cr_assert_eq(th_node2(b, EIE_LAYER_ADD, "r2", "p1", 0, "res", &err), 0, "%s", err.msg);
    eie_pool2d_params_t ap = {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2,
                              .count_include_pad = 1};
    cr_assert_eq(th_pool(b, EIE_LAYER_AVGPOOL2D, "res", "p2", ap, &err), 0, "%s", err.msg);
    eie_node_desc_t fl = {.kind = EIE_LAYER_FLATTEN};
    cr_assert_eq(th_node1(b, fl, "p2", "flat", &err), 0);
    cr_assert_eq(th_fc(b, "flat", "fc", 10, 0.4, EIE_STORAGE_SHARED, &seed, &err), 0);
    cr_assert_eq(th_act(b, "fc", "prob", EIE_ACT_SOFTMAX, 1, &err), 0);
    cr_assert_eq(eie_builder_add_output(b, "prob", &err), 0);
    eie_model_t *m = th_load_builder(b);
    cr_assert_not_null(m);
    eie_builder_free(b);
    return m;
}

static void run_backend(const eie_model_t *m, const char *backend, unsigned n_pes,
                        const float *x, size_t batch, float *y, eie_run_info_t *info)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    o.backend = backend;
    o.n_pes = n_pes;
    eie_engine_t *e;
    eie_net_t *net;
    eie_error_t err;
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_run(net, x, batch, y, info, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_net_free(net);
    eie_engine_free(e);
}

Test(sim_graph, conv_net_within_the_fixed_point_bound_of_cpu)
{
    eie_model_t *m = small_cnn();
    enum { B = 3 };
    float x[B * 144], ref[B * 10], y[B * 10], y1[B * 10];
    uint64_t seed = 4;
    for (size_t i = 0; i < B * 144; i++)
        x[i] = th_uniform(&seed) < 0.6f ? th_uniform(&seed) : 0.0f;
    run_backend(m, "cpu", 2, x, B, ref, NULL);
    const unsigned pes[] = {1, 2, 3, 7, 64};
    for (size_t k = 0; k < 5; k++) {
        eie_run_info_t info;
        run_backend(m, "eie-sim", pes[k], x, B, y, &info);
        long bad = th_mismatch(y, ref, B * 10, SIM_TOL);
        cr_assert_eq(bad, -1, "%u PEs: y[%ld] = %g, cpu %g", pes[k], bad,
                     bad >= 0 ? (double)y[bad] : 0.0, bad >= 0 ? (double)ref[bad] : 0.0);
        cr_assert(info.cycles > 0 && info.entries > 0);
        if (k == 0)
            memcpy(y1, y, sizeof y);
        else
            cr_assert(memcmp(y, y1, sizeof y) == 0, "%u PEs differ from 1 PE", pes[k]);
    }
    eie_model_free(m);
}

Test(sim_graph, conv_layers_are_timed_at_every_position)
{
    eie_model_t *m = small_cnn();
    eie_sim_t *sim;
    eie_error_t err;
    eie_sim_params_t p = eie_sim_params_default();
    p.n_pes = 4;
    cr_assert_eq(eie_sim_init(m, &p, &sim, &err), EIE_STATUS_OK, "%s", err.msg);
    float x[144], y[10];
    for (size_t i = 0; i < 144; i++)
        x[i] = (float)(i % 7) / 7.0f;
    eie_sim_report_t rep;
    cr_assert_eq(eie_sim_run(sim, x, y, &rep, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(rep.n_layers, 3); /* two convs and the fc */
    /* conv1: 12x12 output positions, one application each, each broadcast + bias column */
    cr_assert_eq(rep.layers[0].rows, 8);
    cr_assert_eq(rep.layers[0].cols, 9);
    cr_assert(rep.layers[0].broadcasts >= 144);
    cr_assert(rep.layers[0].cycles >= 144 * (uint64_t)(p.pipeline_depth + 1));
    cr_assert(rep.layers[0].macs > 0 && rep.layers[1].macs > 0);
    cr_assert_eq(rep.total.cycles,
                 rep.layers[0].cycles + rep.layers[1].cycles + rep.layers[2].cycles);
    eie_sim_report_clear(&rep);
    eie_sim_free(sim);
    eie_model_free(m);
}

/* Patches and fc inputs longer than the register files run in input batches
 * (engine/sim/README.md, "Batches"): with 2 activations per PE on 4 PEs
 * (8 a batch) conv1's 9-value patch takes 2 batches, conv2's 36 (4 channels
 * a group x 3 x 3) 5, the fc's 72 inputs 9; the bits do not change. */
Test(sim_graph, long_patches_run_in_input_batches_with_the_same_bits)
{
    eie_model_t *m = small_cnn();
    float x[144], y[2][10];
    for (size_t i = 0; i < 144; i++)
        x[i] = (float)(i % 5) / 5.0f;
    eie_sim_report_t rep[2];
    for (int k = 0; k < 2; k++) {
        eie_sim_t *sim;
        eie_error_t err;
        eie_sim_params_t p = eie_sim_params_default();
        p.n_pes = 4;
        p.act_regs = k == 0 ? 64 : 2;
        cr_assert_eq(eie_sim_init(m, &p, &sim, &err), EIE_STATUS_OK, "%s", err.msg);
        cr_assert_eq(eie_sim_run(sim, x, y[k], &rep[k], &err), EIE_STATUS_OK, "%s", err.msg);
        eie_sim_free(sim);
    }
    cr_assert(memcmp(y[0], y[1], sizeof y[0]) == 0);
    /* One batch per application (output position and group) when all fits. */
    static const uint64_t per_app[3] = {2, 5, 9};
    for (int l = 0; l < 3; l++) {
        cr_assert_eq(rep[1].layers[l].act_batches, per_app[l] * rep[0].layers[l].act_batches,
                     "layer %d", l);
        cr_assert_gt(rep[1].layers[l].cycles, rep[0].layers[l].cycles, "layer %d", l);
        cr_assert_eq(rep[1].layers[l].entries, rep[0].layers[l].entries, "layer %d", l);
    }
    eie_sim_report_clear(&rep[0]);
    eie_sim_report_clear(&rep[1]);
    eie_model_free(m);
}
