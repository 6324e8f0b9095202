/*
 * ONNX conformance of the graph import: Debian's libonnx-testdata node cases
 * for the ops a graph takes (conv, pooling, concat, add, softmax over an
 * axis, flatten, gemm) must give their expected outputs after
 * eie_onnx_import_graph_*, on the dense reference and on the cpu backend.
 * Weights that the node tests pass as graph inputs are bound as constants.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eie/eie.h"
#include "eie/onnx.h"

#define TESTDATA "/usr/share/libonnx-testdata/data/node/"
#define MAX_IN   6

static eie_model_t *import_case(const char *dir, size_t n_data, eie_onnx_tensor_t **in,
                                size_t *n_in_out)
{
    char path[512];
    eie_error_t err;
    size_t n_in = 0;
    for (; n_in < MAX_IN; n_in++) {
        snprintf(path, sizeof path, TESTDATA "%s/test_data_set_0/input_%zu.pb", dir, n_in);
        if (access(path, R_OK) != 0)
            break;
        cr_assert_eq(eie_onnx_tensor_load_file(path, &in[n_in], &err), EIE_STATUS_OK, "%s",
                     err.msg);
    }
    cr_assert_geq(n_in, n_data, "%s: %zu inputs", dir, n_in);
    eie_onnx_binding_t binds[MAX_IN];
    for (size_t k = n_data; k < n_in; k++)
        binds[k - n_data] = (eie_onnx_binding_t){in[k]->name, in[k]};
    eie_onnx_opts_t opts = {.bindings = binds, .n_bindings = n_in - n_data};
    eie_builder_t *b;
    uint8_t *bytes;
    size_t len;
    eie_model_t *m;
    snprintf(path, sizeof path, TESTDATA "%s/model.onnx", dir);
    cr_assert_eq(eie_onnx_import_graph_file(path, &opts, &b, &err), EIE_STATUS_OK, "%s: %s", dir,
                 err.msg);
    cr_assert_eq(eie_builder_write_memory(b, &bytes, &len, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_model_load_memory(bytes, len, NULL, &m, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_builder_free(b);
    free(bytes);
    *n_in_out = n_in;
    return m;
}

static void check(const char *dir, const char *how, const float *y, const eie_onnx_tensor_t *want)
{
    float scale = 0.0f;
    for (size_t i = 0; i < want->count; i++)
        scale = fmaxf(scale, fabsf(want->data[i]));
    for (size_t i = 0; i < want->count; i++)
        cr_assert(fabsf(y[i] - want->data[i]) <= 1e-5f * scale + 1e-6f,
                  "%s (%s): output %zu is %.9g, expected %.9g", dir, how, i, y[i], want->data[i]);
}

static void run_case(const char *dir, size_t n_data)
{
    char path[512];
    snprintf(path, sizeof path, TESTDATA "%s/model.onnx", dir);
    if (access(path, R_OK) != 0)
        cr_skip_test("libonnx-testdata not installed (%s)", path);
    eie_onnx_tensor_t *in[MAX_IN] = {0}, *want;
    size_t n_in;
    eie_error_t err;
    eie_model_t *m = import_case(dir, n_data, in, &n_in);
    snprintf(path, sizeof path, TESTDATA "%s/test_data_set_0/output_0.pb", dir);
    cr_assert_eq(eie_onnx_tensor_load_file(path, &want, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_model_input_count(m), n_data);
    cr_assert_eq(eie_model_output_count(m), 1);
    /* The full shape of the graph input is the test tensor's. */
    eie_tensor_info_t ti;
    eie_model_input_info(m, 0, &ti);
    cr_assert_eq(ti.shape.rank, in[0]->rank, "%s", dir);
    for (uint32_t d = 0; d < ti.shape.rank; d++)
        cr_assert_eq(ti.shape.dims[d], in[0]->dims[d], "%s: dimension %u", dir, d);
    size_t batch = (size_t)in[0]->dims[0];
    const float *x[MAX_IN];
    for (size_t k = 0; k < n_data; k++)
        x[k] = in[k]->data;
    eie_model_output_info(m, 0, &ti);
    cr_assert_eq(batch * eie_shape_sample_elements(&ti.shape), want->count, "%s", dir);
    float *y = calloc(want->count, sizeof *y);
    float *outs[1] = {y};
    cr_assert_eq(eie_model_run_dense_multi(m, x, batch, outs, &err), EIE_STATUS_OK, "%s: %s", dir,
                 err.msg);
    check(dir, "dense", y, want);

    eie_engine_opts_t o = eie_engine_opts_default();
    o.n_pes = 2;
    eie_engine_t *e;
    eie_net_t *net;
    memset(y, 0, want->count * sizeof *y);
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_net_init(e, m, &net, &err), EIE_STATUS_OK, "%s: %s", dir, err.msg);
    cr_assert_eq(eie_net_run_multi(net, x, batch, outs, NULL, &err), EIE_STATUS_OK, "%s: %s", dir,
                 err.msg);
    check(dir, "cpu", y, want);
    eie_net_free(net);
    eie_engine_free(e);
    free(y);
    eie_model_free(m);
    for (size_t k = 0; k < n_in; k++)
        eie_onnx_tensor_free(in[k]);
    eie_onnx_tensor_free(want);
}

static void refused(const char *dir, size_t n_data, const char *needle)
{
    char path[512];
    snprintf(path, sizeof path, TESTDATA "%s/model.onnx", dir);
    if (access(path, R_OK) != 0)
        cr_skip_test("libonnx-testdata not installed (%s)", path);
    eie_onnx_tensor_t *in[MAX_IN] = {0};
    eie_error_t err;
    size_t n_in = 0;
    for (; n_in < MAX_IN; n_in++) {
        snprintf(path, sizeof path, TESTDATA "%s/test_data_set_0/input_%zu.pb", dir, n_in);
        if (access(path, R_OK) != 0 || eie_onnx_tensor_load_file(path, &in[n_in], &err) != 0)
            break;
    }
    eie_onnx_binding_t binds[MAX_IN];
    for (size_t k = n_data; k < n_in; k++)
        binds[k - n_data] = (eie_onnx_binding_t){in[k]->name, in[k]};
    eie_onnx_opts_t opts = {.bindings = binds, .n_bindings = n_in > n_data ? n_in - n_data : 0};
    eie_builder_t *b;
    snprintf(path, sizeof path, TESTDATA "%s/model.onnx", dir);
    cr_assert_neq(eie_onnx_import_graph_file(path, &opts, &b, &err), EIE_STATUS_OK, "%s", dir);
    cr_assert(strstr(err.msg, needle) != NULL, "%s: %s", dir, err.msg);
    for (size_t k = 0; k < n_in; k++)
        eie_onnx_tensor_free(in[k]);
}

#define CASE(name, n_data)                                                                         \
    Test(onnx_graph_conformance, name)                                                             \
    {                                                                                              \
        run_case("test_" #name, n_data);                                                           \
    }

CASE(basic_conv_with_padding, 1)
CASE(basic_conv_without_padding, 1)
CASE(conv_with_autopad_same, 1)
CASE(conv_with_strides_and_asymmetric_padding, 1)
CASE(conv_with_strides_no_padding, 1)
CASE(conv_with_strides_padding, 1)
CASE(maxpool_2d_ceil, 1)
CASE(maxpool_2d_default, 1)
CASE(maxpool_2d_pads, 1)
CASE(maxpool_2d_precomputed_pads, 1)
CASE(maxpool_2d_precomputed_same_upper, 1)
CASE(maxpool_2d_precomputed_strides, 1)
CASE(maxpool_2d_same_lower, 1)
CASE(maxpool_2d_same_upper, 1)
CASE(maxpool_2d_strides, 1)
CASE(averagepool_2d_ceil, 1)
CASE(averagepool_2d_default, 1)
CASE(averagepool_2d_pads, 1)
CASE(averagepool_2d_pads_count_include_pad, 1)
CASE(averagepool_2d_precomputed_pads, 1)
CASE(averagepool_2d_precomputed_pads_count_include_pad, 1)
CASE(averagepool_2d_precomputed_same_upper, 1)
CASE(averagepool_2d_precomputed_strides, 1)
CASE(averagepool_2d_same_lower, 1)
CASE(averagepool_2d_same_upper, 1)
CASE(averagepool_2d_strides, 1)
CASE(globalaveragepool, 1)
CASE(globalaveragepool_precomputed, 1)
CASE(concat_2d_axis_1, 2)
CASE(concat_2d_axis_negative_1, 2)
CASE(concat_3d_axis_1, 2)
CASE(concat_3d_axis_2, 2)
CASE(concat_3d_axis_negative_1, 2)
CASE(concat_3d_axis_negative_2, 2)
CASE(add, 2)
CASE(softmax_axis_1, 1)
CASE(softmax_axis_2, 1)
CASE(softmax_default_axis, 1)
CASE(softmax_negative_axis, 1)
CASE(flatten_axis1, 1)
CASE(flatten_default_axis, 1)
CASE(flatten_negative_axis3, 1)
CASE(relu, 1)
CASE(gemm_alpha, 1)
CASE(gemm_beta, 1)
CASE(gemm_default_no_bias, 1)
CASE(gemm_default_scalar_bias, 1)
CASE(gemm_default_single_elem_vector_bias, 1)
CASE(gemm_default_vector_bias, 1)
CASE(gemm_default_zero_bias, 1)
CASE(gemm_transposeB, 1)
CASE(matmul_2d, 1)

Test(onnx_graph_conformance, refusals_name_node_op_and_attribute)
{
    refused("test_maxpool_2d_dilations", 1, "attribute 'dilations'");
    refused("test_concat_3d_axis_negative_3", 2, "attribute 'axis' = 0");
    refused("test_softmax_axis_0", 1, "attribute 'axis' = 0");
    refused("test_flatten_axis2", 1, "attribute 'axis' = 2");
    refused("test_gemm_all_attributes", 1, "attribute 'transA'");
    refused("test_batchnorm_example", 1, "folds BatchNormalization");
    refused("test_convtranspose", 1, "op type 'ConvTranspose' is not supported");
    refused("test_averagepool_3d_default", 1, "attribute 'kernel_shape' has 3 values");
    refused("test_add_bcast", 2, "input \"y\" has batch dimension 5");
}
