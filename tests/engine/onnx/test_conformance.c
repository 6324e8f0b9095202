/*
 * ONNX conformance: Debian's libonnx-testdata cases that fall inside what eie
 * imports must reproduce their expected outputs after import (compression
 * off). Weights that the node tests pass as graph inputs are bound as
 * constants from their input_K.pb files.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eie/onnx.h"

#define TESTDATA "/usr/share/libonnx-testdata/data/"

static void run_case(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, TESTDATA "%s/model.onnx", dir);
    if (access(path, R_OK) != 0)
        cr_skip_test("libonnx-testdata not installed (%s)", path);
    eie_error_t err;
    eie_onnx_tensor_t *in[4] = {0}, *expect;
    size_t n_in = 0;
    for (; n_in < 4; n_in++) {
        snprintf(path, sizeof path, TESTDATA "%s/test_data_set_0/input_%zu.pb", dir, n_in);
        if (access(path, R_OK) != 0)
            break;
        cr_assert_eq(eie_onnx_tensor_load_file(path, &in[n_in], &err), EIE_STATUS_OK, "%s",
                     err.msg);
    }
    snprintf(path, sizeof path, TESTDATA "%s/test_data_set_0/output_0.pb", dir);
    cr_assert_eq(eie_onnx_tensor_load_file(path, &expect, &err), EIE_STATUS_OK, "%s", err.msg);

    eie_onnx_binding_t binds[3];
    for (size_t k = 1; k < n_in; k++)
        binds[k - 1] = (eie_onnx_binding_t){in[k]->name, in[k]};
    eie_onnx_opts_t opts = {.bindings = binds, .n_bindings = n_in - 1};
    eie_mlp_t *net;
    eie_onnx_info_t info;
    snprintf(path, sizeof path, TESTDATA "%s/model.onnx", dir);
    cr_assert_eq(eie_onnx_import_file(path, &opts, &net, &info, &err), EIE_STATUS_OK, "%s: %s",
                 dir, err.msg);

    /* (batch, features...) -> rows of features; transA inputs are (features, batch). */
    const eie_onnx_tensor_t *x = in[0];
    size_t batch = x->rank >= 2 ? (size_t)(info.input_transposed ? x->dims[1] : x->dims[0]) : 1;
    size_t feat = x->count / batch;
    cr_assert_eq(feat, net->input_dim, "%s: %zu features, net takes %u", dir, feat, net->input_dim);
    float *rows = malloc(x->count * sizeof *rows);
    for (size_t r = 0; r < batch; r++)
        for (size_t f = 0; f < feat; f++)
            rows[r * feat + f] = info.input_transposed ? x->data[f * batch + r] : x->data[r * feat + f];
    uint32_t out_dim = eie_mlp_output_dim(net);
    cr_assert_eq(batch * out_dim, expect->count, "%s: output %zu x %u, expected %zu values", dir,
                 batch, out_dim, expect->count);
    float *y = malloc(expect->count * sizeof *y);
    cr_assert_eq(eie_mlp_forward(net, rows, batch, y, &err), EIE_STATUS_OK);
    for (size_t i = 0; i < expect->count; i++)
        cr_assert(fabsf(y[i] - expect->data[i]) <= 1e-4f + 1e-4f * fabsf(expect->data[i]),
                  "%s: output %zu is %g, expected %g", dir, i, y[i], expect->data[i]);
    free(rows);
    free(y);
    eie_mlp_free(net);
    for (size_t k = 0; k < n_in; k++)
        eie_onnx_tensor_free(in[k]);
    eie_onnx_tensor_free(expect);
}

#define CASE(name, dir)                                                                        \
    Test(onnx_conformance, name)                                                               \
    {                                                                                          \
        run_case(dir);                                                                         \
    }

CASE(gemm_all_attributes, "node/test_gemm_all_attributes")
CASE(gemm_alpha, "node/test_gemm_alpha")
CASE(gemm_beta, "node/test_gemm_beta")
CASE(gemm_default_no_bias, "node/test_gemm_default_no_bias")
CASE(gemm_default_scalar_bias, "node/test_gemm_default_scalar_bias")
CASE(gemm_default_single_elem_vector_bias, "node/test_gemm_default_single_elem_vector_bias")
CASE(gemm_default_vector_bias, "node/test_gemm_default_vector_bias")
CASE(gemm_default_zero_bias, "node/test_gemm_default_zero_bias")
CASE(gemm_transpose_a, "node/test_gemm_transposeA")
CASE(gemm_transpose_b, "node/test_gemm_transposeB")
CASE(matmul_2d, "node/test_matmul_2d")
CASE(relu, "node/test_relu")
CASE(sigmoid, "node/test_sigmoid")
CASE(sigmoid_example, "node/test_sigmoid_example")
CASE(tanh, "node/test_tanh")
CASE(tanh_example, "node/test_tanh_example")
CASE(softmax_example, "node/test_softmax_example")
CASE(softmax_large_number, "node/test_softmax_large_number")
CASE(identity, "node/test_identity")
CASE(flatten_axis1, "node/test_flatten_axis1")
CASE(flatten_default_axis, "node/test_flatten_default_axis")
CASE(dropout_default, "node/test_dropout_default")
CASE(pytorch_linear, "pytorch-converted/test_Linear")
CASE(pytorch_linear_no_bias, "pytorch-converted/test_Linear_no_bias")
CASE(pytorch_relu, "pytorch-converted/test_ReLU")
CASE(pytorch_sigmoid, "pytorch-converted/test_Sigmoid")
CASE(pytorch_tanh, "pytorch-converted/test_Tanh")
CASE(pytorch_softmax, "pytorch-converted/test_Softmax")

/* Out of scope cases are refused with a message, not imported wrongly. */
static void refused(const char *dir, const char *needle)
{
    char path[512];
    snprintf(path, sizeof path, TESTDATA "%s/model.onnx", dir);
    if (access(path, R_OK) != 0)
        cr_skip_test("libonnx-testdata not installed");
    eie_onnx_tensor_t *b, *c;
    eie_error_t err;
    snprintf(path, sizeof path, TESTDATA "%s/test_data_set_0/input_1.pb", dir);
    cr_assert_eq(eie_onnx_tensor_load_file(path, &b, &err), EIE_STATUS_OK);
    snprintf(path, sizeof path, TESTDATA "%s/test_data_set_0/input_2.pb", dir);
    cr_assert_eq(eie_onnx_tensor_load_file(path, &c, &err), EIE_STATUS_OK);
    eie_onnx_binding_t binds[2] = {{b->name, b}, {c->name, c}};
    eie_onnx_opts_t opts = {.bindings = binds, .n_bindings = 2};
    eie_mlp_t *net;
    snprintf(path, sizeof path, TESTDATA "%s/model.onnx", dir);
    cr_assert_neq(eie_onnx_import_file(path, &opts, &net, NULL, &err), EIE_STATUS_OK);
    cr_assert(strstr(err.msg, needle) != NULL, "%s", err.msg);
    eie_onnx_tensor_free(b);
    eie_onnx_tensor_free(c);
}

Test(onnx_conformance, gemm_matrix_bias_varying_by_row_is_refused)
{
    refused("node/test_gemm_default_matrix_bias", "varies along the batch axis");
}
