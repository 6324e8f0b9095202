/*
 * graph_helpers.h - test helpers for version-2 graphs: random sparse
 * weights (shared or exact) and a model that holds every node kind.
 */
#ifndef EIE_TEST_GRAPH_HELPERS_H
#define EIE_TEST_GRAPH_HELPERS_H

#include "model_helpers.h"

/* Random weights for a rows x cols matrix; free with th_weights_free. */
static inline eie_weights_t th_random_weights(uint32_t rows, uint32_t cols, double density,
                                              eie_storage_t storage, uint32_t bits, uint64_t *seed)
{
    eie_weights_t w = {.storage = storage, .code_bits = bits};
    size_t n = (size_t)rows * cols;
    float *bias = malloc(rows * sizeof(float));
    for (uint32_t r = 0; r < rows; r++)
        bias[r] = th_uniform(seed) - 0.5f;
    w.bias = bias;
    if (storage == EIE_STORAGE_EXACT) {
        float *v = calloc(n, sizeof(float));
        for (size_t i = 0; i < n; i++)
            if (th_uniform(seed) < density)
                v[i] = th_uniform(seed) * 2.0f - 1.0f + (i % 2 ? 1e-3f : -1e-3f);
        w.values = v;
        return w;
    }
    size_t ncb = (size_t)1 << bits;
    float *cb = malloc(ncb * sizeof(float));
    uint8_t *codes = calloc(n, 1);
    cb[0] = 0.0f;
    for (size_t k = 1; k < ncb; k++)
        cb[k] = (th_uniform(seed) * 2.0f - 1.0f) + (k % 2 ? 0.1f : -0.1f);
    for (size_t i = 0; i < n; i++)
        if (th_uniform(seed) < density)
            codes[i] = (uint8_t)(1 + th_rand(seed) % (ncb - 1));
    w.codebook = cb;
    w.codes = codes;
    return w;
}

static inline void th_weights_free(eie_weights_t *w)
{
    free((void *)w->bias);
    free((void *)w->values);
    free((void *)w->codebook);
    free((void *)w->codes);
}

static inline eie_shape_t th_shape4(int64_t n, int64_t c, int64_t h, int64_t w)
{
    return (eie_shape_t){.rank = 4, .dims = {n, c, h, w}};
}

/* Adds a node of one input (kind-specific fields already in d). */
static inline eie_status_t th_node1(eie_builder_t *b, eie_node_desc_t d, const char *in,
                                    const char *out, eie_error_t *err)
{
    const char *ins[1] = {in};
    d.name = out;
    d.n_inputs = 1;
    d.inputs = ins;
    d.output = out;
    return eie_builder_add_node(b, &d, err);
}

/* A conv node with random weights. */
static inline eie_status_t th_conv(eie_builder_t *b, const char *in, const char *out,
                                   uint32_t cout, eie_conv2d_params_t p, double density,
                                   eie_storage_t storage, uint64_t *seed, eie_error_t *err)
{
    eie_shape_t xs;
    eie_status_t st = eie_builder_tensor_shape(b, in, &xs, err);
    if (st != EIE_STATUS_OK)
        return st;
    uint32_t cols = (uint32_t)xs.dims[1] / p.groups * p.kernel_h * p.kernel_w;
    eie_node_desc_t d = {.kind = EIE_LAYER_CONV2D, .rows = cout, .conv = p};
    d.weights = th_random_weights(cout, cols, density, storage, 4, seed);
    st = th_node1(b, d, in, out, err);
    th_weights_free(&d.weights);
    return st;
}

/* An fc node with random weights. */
static inline eie_status_t th_fc(eie_builder_t *b, const char *in, const char *out,
                                 uint32_t rows, double density, eie_storage_t storage,
                                 uint64_t *seed, eie_error_t *err)
{
    eie_shape_t xs;
    eie_status_t st = eie_builder_tensor_shape(b, in, &xs, err);
    if (st != EIE_STATUS_OK)
        return st;
    eie_node_desc_t d = {.kind = EIE_LAYER_FC, .rows = rows};
    d.weights = th_random_weights(rows, (uint32_t)xs.dims[1], density, storage, 5, seed);
    st = th_node1(b, d, in, out, err);
    th_weights_free(&d.weights);
    return st;
}

static inline eie_status_t th_act(eie_builder_t *b, const char *in, const char *out,
                                  eie_act_t act, int32_t axis, eie_error_t *err)
{
    eie_node_desc_t d = {.kind = EIE_LAYER_ACTIVATION, .act = act, .axis = axis};
    return th_node1(b, d, in, out, err);
}

static inline eie_status_t th_pool(eie_builder_t *b, eie_layer_kind_t kind, const char *in,
                                   const char *out, eie_pool2d_params_t p, eie_error_t *err)
{
    eie_node_desc_t d = {.kind = kind, .pool = p};
    return th_node1(b, d, in, out, err);
}

static inline eie_status_t th_node2(eie_builder_t *b, eie_layer_kind_t kind, const char *a,
                                    const char *c, int32_t axis, const char *out,
                                    eie_error_t *err)
{
    const char *ins[2] = {a, c};
    eie_node_desc_t d = {.kind = kind, .name = out, .n_inputs = 2, .inputs = ins, .output = out,
                         .axis = axis};
    return eie_builder_add_node(b, &d, err);
}

/*
 * A graph with every node kind and both storages, two inputs and four
 * outputs: asymmetric pads, dilation with stride, groups, ceil-mode pooling,
 * count_include_pad both ways, concat, a residual add, softmax over axes 1
 * and 2, flatten and reshape, dilation with stride.
 */
static inline eie_status_t th_build_zoo(eie_builder_t **b_out, uint64_t seed, eie_error_t *err)
{
    eie_builder_t *b;
    eie_status_t st = eie_builder_init_graph("zoo", "every node kind", &b, err);
    if (st != EIE_STATUS_OK)
        return st;
    eie_shape_t xs = th_shape4(-1, 3, 11, 10);
#define Z(call)                                                                                \
    do {                                                                                       \
        if ((st = (call)) != EIE_STATUS_OK)                                                    \
            goto fail;                                                                         \
    } while (0)
    Z(eie_builder_add_input(b, "image", EIE_DTYPE_FP32, &xs, err));
    eie_conv2d_params_t c1 = {.kernel_h = 3, .kernel_w = 2, .stride_h = 2, .stride_w = 1,
                              .pad_top = 1, .pad_left = 0, .pad_bottom = 2, .pad_right = 1,
                              .dilation_h = 1, .dilation_w = 2, .groups = 3};
    Z(th_conv(b, "image", "c1", 6, c1, 0.7, EIE_STORAGE_SHARED, &seed, err));
    Z(th_act(b, "c1", "r1", EIE_ACT_RELU, 0, err));
    eie_pool2d_params_t mp = {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2,
                              .pad_top = 1, .pad_left = 0, .pad_bottom = 0, .pad_right = 1,
                              .ceil_mode = 1};
    Z(th_pool(b, EIE_LAYER_MAXPOOL2D, "r1", "p1", mp, err));
    eie_pool2d_params_t ap = {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2,
                              .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 2,
                              .ceil_mode = 1, .count_include_pad = 0};
    Z(th_pool(b, EIE_LAYER_AVGPOOL2D, "r1", "a0", ap, err));
    ap.count_include_pad = 1;
    ap.ceil_mode = 0;
    Z(th_pool(b, EIE_LAYER_AVGPOOL2D, "r1", "a1", ap, err));
    eie_shape_t s0, s1;
    Z(eie_builder_tensor_shape(b, "a0", &s0, err));
    Z(eie_builder_tensor_shape(b, "a1", &s1, err));
    /* concat needs equal spatial sizes: a valid conv brings the ceil-mode a0 (the
     * larger) to a1's */
    const char *a0 = "a0";
    if (!(s0.dims[2] == s1.dims[2] && s0.dims[3] == s1.dims[3])) {
        eie_conv2d_params_t fit = {.kernel_h = (uint32_t)(s0.dims[2] - s1.dims[2] + 1),
                                   .kernel_w = (uint32_t)(s0.dims[3] - s1.dims[3] + 1),
                                   .stride_h = 1, .stride_w = 1, .dilation_h = 1,
                                   .dilation_w = 1, .groups = 1};
        Z(th_conv(b, "a0", "a0fit", 6, fit, 0.5, EIE_STORAGE_EXACT, &seed, err));
        a0 = "a0fit";
    }
    Z(th_node2(b, EIE_LAYER_CONCAT, a0, "a1", 1, "cat", err));
    eie_conv2d_params_t c2 = {.kernel_h = 1, .kernel_w = 1, .stride_h = 1, .stride_w = 1,
                              .dilation_h = 1, .dilation_w = 1, .groups = 2};
    Z(th_conv(b, "cat", "c2", 4, c2, 0.8, EIE_STORAGE_EXACT, &seed, err));
    eie_shape_t c2s;
    Z(eie_builder_tensor_shape(b, "c2", &c2s, err));
    Z(eie_builder_add_input(b, "skip", EIE_DTYPE_FP32, &c2s, err));
    Z(th_node2(b, EIE_LAYER_ADD, "c2", "skip", 0, "res", err));
    Z(th_act(b, "res", "sig", EIE_ACT_SIGMOID, 0, err));
    eie_node_desc_t gap = {.kind = EIE_LAYER_GLOBAL_AVGPOOL};
    Z(th_node1(b, gap, "sig", "gap", err));
    eie_node_desc_t fl = {.kind = EIE_LAYER_FLATTEN};
    Z(th_node1(b, fl, "gap", "flat", err));
    Z(th_fc(b, "flat", "fc1", 7, 0.9, EIE_STORAGE_EXACT, &seed, err));
    Z(th_act(b, "fc1", "t1", EIE_ACT_TANH, 0, err));
    Z(th_act(b, "t1", "probs", EIE_ACT_SOFTMAX, 1, err));
    eie_shape_t ps;
    Z(eie_builder_tensor_shape(b, "p1", &ps, err));
    eie_node_desc_t rs = {.kind = EIE_LAYER_RESHAPE,
                          .shape = {.rank = 2,
                                    .dims = {-1, ps.dims[1] * ps.dims[2] * ps.dims[3]}}};
    Z(th_node1(b, rs, "p1", "p1flat", err));
    Z(th_fc(b, "p1flat", "fc2", 9, 0.3, EIE_STORAGE_SHARED, &seed, err));
    Z(th_act(b, "fc2", "feat", EIE_ACT_IDENTITY, 0, err));
    Z(th_act(b, "c1", "colsoft", EIE_ACT_SOFTMAX, 2, err));
    /* dilation with stride on the same axes */
    eie_conv2d_params_t c3 = {.kernel_h = 2, .kernel_w = 3, .stride_h = 2, .stride_w = 3,
                              .pad_top = 0, .pad_left = 2, .pad_bottom = 1, .pad_right = 0,
                              .dilation_h = 3, .dilation_w = 2, .groups = 1};
    Z(th_conv(b, "image", "dilated", 5, c3, 0.6, EIE_STORAGE_SHARED, &seed, err));
    Z(eie_builder_add_output(b, "probs", err));
    Z(eie_builder_add_output(b, "feat", err));
    Z(eie_builder_add_output(b, "colsoft", err));
    Z(eie_builder_add_output(b, "dilated", err));
#undef Z
    *b_out = b;
    return EIE_STATUS_OK;
fail:
    eie_builder_free(b);
    return st;
}

#endif
