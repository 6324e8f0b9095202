/* Format version 2: round trips of every node kind and both storages, the
 * accessors, and malformed graph files each with its message. */
#include <criterion/criterion.h>
#include <string.h>

#include "format/format.h"
#include "graph_helpers.h"

static uint8_t *zoo_bytes(size_t *len)
{
    eie_builder_t *b = NULL;
    eie_error_t err;
    eie_status_t st = th_build_zoo(&b, 7, &err);
    cr_assert_eq(st, EIE_STATUS_OK, "%s", err.msg);
    uint8_t *d;
    cr_assert_eq(eie_builder_write_memory(b, &d, len, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_builder_free(b);
    return d;
}

static void assert_msg_has(const eie_error_t *err, const char *s)
{
    cr_assert(strstr(err->msg, s) != NULL, "message \"%s\" lacks \"%s\"", err->msg, s);
}

Test(graph_format, zoo_round_trip_is_byte_identical)
{
    size_t len, len2;
    uint8_t *d = zoo_bytes(&len), *d2;
    eie_model_t *m;
    eie_error_t err;
    cr_assert_eq(eie_model_load_memory(d, len, NULL, &m, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_format_write(m, &d2, &len2, &err), EIE_STATUS_OK);
    cr_assert_eq(len2, len);
    cr_assert(memcmp(d, d2, len) == 0);
    cr_assert_eq(eie_model_format_version(m), 2);
    /* every kind and both storages are in it */
    int kinds[11] = {0}, storages[2] = {0};
    for (size_t i = 0; i < eie_model_layer_count(m); i++) {
        eie_layer_info_t li;
        cr_assert_eq(eie_model_layer_info(m, i, &li), EIE_STATUS_OK);
        kinds[li.kind]++;
        if (li.kind == EIE_LAYER_FC || li.kind == EIE_LAYER_CONV2D)
            storages[li.storage]++;
    }
    for (int k = 1; k <= 10; k++)
        cr_assert(kinds[k] > 0, "kind %s missing", eie_layer_kind_name((eie_layer_kind_t)k));
    cr_assert(storages[0] > 0 && storages[1] > 0);
    eie_model_free(m);
    free(d);
    free(d2);
}

Test(graph_format, names_shapes_and_io_survive)
{
    size_t len;
    uint8_t *d = zoo_bytes(&len);
    eie_model_t *m;
    eie_error_t err;
    cr_assert_eq(eie_model_load_memory(d, len, NULL, &m, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_model_input_count(m), 2);
    cr_assert_eq(eie_model_output_count(m), 4);
    eie_tensor_info_t ti;
    cr_assert_eq(eie_model_input_info(m, 0, &ti), EIE_STATUS_OK);
    cr_assert_str_eq(ti.name, "image");
    cr_assert_eq(ti.dtype, EIE_DTYPE_FP32);
    cr_assert_eq(ti.shape.rank, 4);
    cr_assert(ti.shape.dims[0] == -1 && ti.shape.dims[1] == 3 && ti.shape.dims[2] == 11 &&
              ti.shape.dims[3] == 10);
    cr_assert_eq(eie_model_input_info(m, 1, &ti), EIE_STATUS_OK);
    cr_assert_str_eq(ti.name, "skip");
    cr_assert_eq(eie_model_output_info(m, 0, &ti), EIE_STATUS_OK);
    cr_assert_str_eq(ti.name, "probs");
    cr_assert(ti.shape.rank == 2 && ti.shape.dims[1] == 7);
    cr_assert_eq(eie_model_output_info(m, 2, &ti), EIE_STATUS_OK);
    cr_assert_str_eq(ti.name, "colsoft");
    cr_assert_str_eq(eie_model_input_name(m), "image");
    cr_assert_str_eq(eie_model_output_name(m), "probs");
    cr_assert_eq(eie_model_input_dim(m), 3 * 11 * 10);
    long c1 = eie_model_find_tensor(m, "c1");
    cr_assert(c1 >= 0);
    eie_layer_info_t li;
    cr_assert_eq(eie_model_layer_info(m, 0, &li), EIE_STATUS_OK);
    cr_assert_eq(li.kind, EIE_LAYER_CONV2D);
    cr_assert_str_eq(eie_model_layer_name(m, 0), "c1");
    cr_assert_eq(li.output, (uint32_t)c1);
    cr_assert(li.conv.pad_top == 1 && li.conv.pad_bottom == 2 && li.conv.pad_right == 1 &&
              li.conv.dilation_w == 2 && li.conv.groups == 3 && li.conv.stride_h == 2);
    cr_assert_eq(li.rows, 6);
    cr_assert_eq(li.cols, 1 * 3 * 2);
    eie_model_free(m);
    free(d);
}

Test(graph_format, version1_loads_as_a_chain_and_writes_back_as_version1)
{
    eie_builder_t *b = NULL;
    eie_error_t err;
    uint64_t seed = 3;
    cr_assert_eq(eie_builder_init("mlp", "", "in", "out", &b, &err), EIE_STATUS_OK);
    cr_assert_eq(th_add_random_fc(b, 8, 5, 0.5, 3, &seed, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_builder_add_activation(b, EIE_ACT_SOFTMAX, &err), EIE_STATUS_OK);
    uint8_t *d, *d2;
    size_t len, len2;
    cr_assert_eq(eie_builder_write_memory(b, &d, &len, &err), EIE_STATUS_OK);
    cr_assert_eq(d[8], 1);
    eie_model_t *m;
    cr_assert_eq(eie_model_load_memory(d, len, NULL, &m, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_model_tensor_count(m), 3);
    eie_tensor_info_t ti;
    eie_model_output_info(m, 0, &ti);
    cr_assert_str_eq(ti.name, "out");
    cr_assert(ti.shape.rank == 2 && ti.shape.dims[0] == -1 && ti.shape.dims[1] == 8);
    eie_layer_info_t li;
    eie_model_layer_info(m, 1, &li);
    cr_assert(li.n_inputs == 1 && li.inputs[0] == 1 && li.output == 2 && li.axis == 1);
    cr_assert_eq(eie_format_write(m, &d2, &len2, &err), EIE_STATUS_OK);
    cr_assert(len2 == len && memcmp(d, d2, len) == 0);
    eie_model_free(m);
    eie_builder_free(b);
    free(d);
    free(d2);
}

Test(graph_format, exact_weights_are_kept_bit_for_bit)
{
    eie_builder_t *b = NULL;
    eie_error_t err;
    cr_assert_eq(eie_builder_init_graph("x", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t s = {.rank = 2, .dims = {-1, 3}};
    cr_assert_eq(eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    float w[6] = {0.1f, 0.0f, -1e-30f, 3.14159265f, -0.0f, 123456.7f}, bias[2] = {0.25f, -0.5f};
    const char *ins[1] = {"x"};
    eie_node_desc_t d = {.kind = EIE_LAYER_FC, .name = "fc", .n_inputs = 1, .inputs = ins,
                         .output = "y", .rows = 2,
                         .weights = {.storage = EIE_STORAGE_EXACT, .values = w, .bias = bias}};
    cr_assert_eq(eie_builder_add_node(b, &d, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_builder_add_output(b, "y", &err), EIE_STATUS_OK);
    eie_model_t *m = th_load_builder(b);
    cr_assert_not_null(m);
    float dense[6];
    cr_assert_eq(eie_model_fc_dense(m, 0, dense), EIE_STATUS_OK);
    for (int i = 0; i < 6; i++)
        cr_assert(dense[i] == w[i] || (w[i] == 0.0f && dense[i] == 0.0f), "weight %d", i);
    cr_assert(memcmp(&dense[2], &w[2], 4) == 0); /* a denormal-sized value, bit for bit */
    eie_layer_info_t li;
    eie_model_layer_info(m, 0, &li);
    cr_assert_eq(li.storage, EIE_STORAGE_EXACT);
    cr_assert_eq(li.nnz, 4);
    cr_assert_null(eie_model_fc_codebook(m, 0));
    cr_assert_not_null(eie_model_fc_values(m, 0));
    eie_model_free(m);
    eie_builder_free(b);
}

/* ---- malformed files ------------------------------------------------------ */

/* x [-1,2] -> fc "NODEX" (exact 1x2: 1.5, -2.5; bias 0.25) -> "outT" [-1,1]. */
static uint8_t *small_file(size_t *len)
{
    eie_builder_t *b = NULL;
    eie_error_t err;
    cr_assert_eq(eie_builder_init_graph("s", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t s = {.rank = 2, .dims = {-1, 2}};
    cr_assert_eq(eie_builder_add_input(b, "inT", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    float w[2] = {1.5f, -2.5f}, bias[1] = {0.25f};
    const char *ins[1] = {"inT"};
    eie_node_desc_t d = {.kind = EIE_LAYER_FC, .name = "NODEX", .n_inputs = 1, .inputs = ins,
                         .output = "outT", .rows = 1,
                         .weights = {.storage = EIE_STORAGE_EXACT, .values = w, .bias = bias}};
    cr_assert_eq(eie_builder_add_node(b, &d, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(eie_builder_add_output(b, "outT", &err), EIE_STATUS_OK);
    uint8_t *data;
    cr_assert_eq(eie_builder_write_memory(b, &data, len, &err), EIE_STATUS_OK);
    eie_builder_free(b);
    return data;
}

static size_t find(const uint8_t *d, size_t len, const void *pat, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(d + i, pat, n) == 0)
            return i;
    cr_assert_fail("pattern not found");
    return 0;
}

static eie_error_t load_bad(uint8_t *d, size_t len, eie_status_t want, const eie_limits_t *lim)
{
    th_fix_checksum(d, len);
    eie_model_t *m = NULL;
    eie_error_t err = {0};
    eie_status_t st = eie_model_load_memory(d, len, lim, &m, &err);
    cr_assert_eq(st, want, "status %s: %s", eie_status_name(st), err.msg);
    cr_assert_null(m);
    return err;
}

Test(graph_malformed, every_truncation_is_refused)
{
    size_t len;
    uint8_t *d = zoo_bytes(&len);
    for (size_t n = 0; n < len; n += 1 + n / 64) {
        eie_model_t *m = NULL;
        eie_error_t err;
        cr_assert_neq(eie_model_load_memory(d, n, NULL, &m, &err), EIE_STATUS_OK, "len %zu", n);
        cr_assert_null(m);
    }
    /* cut inside the node frames: named as truncation */
    eie_model_t *m = NULL;
    eie_error_t err;
    cr_assert_eq(eie_model_load_memory(d, len - 40, NULL, &m, &err), EIE_STATUS_BAD_FORMAT);
    assert_msg_has(&err, "truncated");
    free(d);
}

Test(graph_malformed, unknown_node_kind_is_named_with_its_offset)
{
    size_t len;
    uint8_t *d = small_file(&len);
    size_t at = find(d, len, "NODEX", 5) - 16;
    d[at] = 42;
    eie_error_t err = load_bad(d, len, EIE_STATUS_UNSUPPORTED, NULL);
    assert_msg_has(&err, "node 0, field kind");
    char want[64];
    snprintf(want, sizeof want, "byte offset %zu: unknown node kind 42", at);
    assert_msg_has(&err, want);
    free(d);
}

Test(graph_malformed, declared_shape_that_the_node_does_not_give)
{
    size_t len;
    uint8_t *d = small_file(&len);
    size_t at = find(d, len, "outT", 4) + 4 + 8 + 8; /* dtype, rank, dims[0] */
    d[at] = 3;
    eie_error_t err = load_bad(d, len, EIE_STATUS_BAD_FORMAT, NULL);
    assert_msg_has(&err, "node 0 (fc \"NODEX\"), field output");
    assert_msg_has(&err, "tensor \"outT\" is declared [-1,3] but the node gives [-1,1]");
    free(d);
}

Test(graph_malformed, minus_one_outside_the_batch_dimension)
{
    size_t len;
    uint8_t *d = small_file(&len);
    size_t at = find(d, len, "inT", 3) + 3 + 8 + 8;
    memset(d + at, 0xff, 8);
    eie_error_t err = load_bad(d, len, EIE_STATUS_LIMIT, NULL);
    assert_msg_has(&err, "tensor 0, field dims");
    assert_msg_has(&err, "-1 is for the batch dimension only");
    free(d);
}

Test(graph_malformed, dims_over_the_limits)
{
    size_t len;
    uint8_t *d = small_file(&len);
    eie_limits_t lim = eie_limits_default();
    lim.max_elements = 1;
    eie_error_t err = load_bad(d, len, EIE_STATUS_LIMIT, &lim);
    assert_msg_has(&err, "tensor 0, field dims");
    assert_msg_has(&err, "dimension 1 is 2, must be 1..1");
    lim = eie_limits_default();
    lim.max_tensors = 1;
    err = load_bad(d, len, EIE_STATUS_LIMIT, &lim);
    assert_msg_has(&err, "field tensor_count");
    free(d);
}

/* A field left 0 takes its default: a caller that sets only the file size
 * still loads graphs (0 tensors would refuse every one). */
Test(graph_malformed, a_limit_left_zero_takes_its_default)
{
    size_t len;
    uint8_t *d = small_file(&len);
    eie_limits_t lim = {.max_file_bytes = 1u << 20};
    eie_model_t *m = NULL;
    eie_error_t err;
    cr_assert_eq(eie_model_load_memory(d, len, &lim, &m, &err), EIE_STATUS_OK, "%s", err.msg);
    eie_model_free(m);
    lim.max_file_bytes = 8;
    err = load_bad(d, len, EIE_STATUS_LIMIT, &lim);
    free(d);
}

Test(graph_malformed, non_finite_exact_value_is_named)
{
    size_t len;
    uint8_t *d = small_file(&len);
    float v = -2.5f, nan = NAN;
    size_t at = find(d, len, &v, 4);
    memcpy(d + at, &nan, 4);
    eie_error_t err = load_bad(d, len, EIE_STATUS_BAD_FORMAT, NULL);
    char want[96];
    snprintf(want, sizeof want, "node 0 (fc \"NODEX\"), field values, byte offset %zu: value 1 is not finite",
             at);
    assert_msg_has(&err, want);
    free(d);
}

Test(graph_malformed, non_finite_bias_is_named)
{
    size_t len;
    uint8_t *d = small_file(&len);
    float v = 0.25f, inf = INFINITY;
    size_t at = find(d, len, &v, 4);
    memcpy(d + at, &inf, 4);
    eie_error_t err = load_bad(d, len, EIE_STATUS_BAD_FORMAT, NULL);
    assert_msg_has(&err, "field bias");
    assert_msg_has(&err, "value 0 is not finite");
    free(d);
}

Test(graph_malformed, exact_storage_with_more_code_bits)
{
    size_t len;
    uint8_t *d = small_file(&len);
    size_t at = find(d, len, "NODEX", 5) + 5 + 4 + 4 + 4 + 4 + 4 + 4; /* .. rows cols */
    cr_assert_eq(d[at], 1); /* code_bits */
    d[at] = 3;
    eie_error_t err = load_bad(d, len, EIE_STATUS_BAD_FORMAT, NULL);
    assert_msg_has(&err, "field code_bits");
    assert_msg_has(&err, "must be 1 for exact storage");
    free(d);
}

Test(graph_malformed, output_that_no_node_writes)
{
    size_t len;
    uint8_t *d = small_file(&len);
    /* the node writes tensor 1; point it at the input tensor 0 */
    size_t at = find(d, len, "NODEX", 5) + 5 + 4 + 4 + 4;
    cr_assert_eq(d[at], 1);
    d[at] = 0;
    eie_error_t err = load_bad(d, len, EIE_STATUS_BAD_FORMAT, NULL);
    assert_msg_has(&err, "field output");
    assert_msg_has(&err, "already has a value");
    free(d);
}

Test(graph_builder, refuses_bad_nodes_with_a_message)
{
    eie_builder_t *b = NULL;
    eie_error_t err;
    cr_assert_eq(eie_builder_init_graph("x", "", &b, &err), EIE_STATUS_OK);
    eie_shape_t s = th_shape4(-1, 4, 5, 5);
    cr_assert_eq(eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err), EIE_STATUS_OK);
    cr_assert_eq(eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err),
                 EIE_STATUS_ALREADY_EXISTS);
    uint64_t seed = 1;
    eie_conv2d_params_t p = {.kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1,
                             .dilation_h = 1, .dilation_w = 1, .groups = 3};
    cr_assert_eq(th_conv(b, "x", "c", 6, p, 0.5, EIE_STORAGE_SHARED, &seed, &err),
                 EIE_STATUS_INVALID_ARGUMENT);
    assert_msg_has(&err, "groups 3 does not divide 4 input channels");
    eie_pool2d_params_t pp = {.kernel_h = 2, .kernel_w = 2, .stride_h = 1, .stride_w = 1,
                              .pad_top = 2};
    cr_assert_eq(th_pool(b, EIE_LAYER_MAXPOOL2D, "x", "m", pp, &err),
                 EIE_STATUS_INVALID_ARGUMENT);
    assert_msg_has(&err, "must be smaller than the 2x2 kernel");
    cr_assert_eq(th_act(b, "nope", "y", EIE_ACT_RELU, 0, &err), EIE_STATUS_NOT_FOUND);
    assert_msg_has(&err, "input \"nope\" is no tensor yet");
    cr_assert_eq(eie_builder_add_fc(b, 2, 2, 1, NULL, NULL, NULL, &err),
                 EIE_STATUS_INVALID_ARGUMENT);
    eie_builder_free(b);
}

Test(graph_malformed, random_byte_changes_load_or_fail_with_a_message)
{
    size_t len;
    uint8_t *d = zoo_bytes(&len);
    uint8_t *x = malloc(len);
    uint64_t seed = 77;
    for (int k = 0; k < 3000; k++) {
        memcpy(x, d, len);
        int n = 1 + (int)(th_rand(&seed) % 3);
        for (int j = 0; j < n; j++)
            x[th_rand(&seed) % (len - 32)] = (uint8_t)th_rand(&seed);
        th_fix_checksum(x, len);
        eie_model_t *m = NULL;
        eie_error_t err = {0};
        eie_status_t st = eie_model_load_memory(x, len, NULL, &m, &err);
        if (st == EIE_STATUS_OK) {
            cr_assert_not_null(m);
            eie_model_free(m);
        } else {
            cr_assert_null(m);
            cr_assert(err.msg[0] != 0, "mutation %d: status %s without a message", k,
                      eie_status_name(st));
        }
    }
    free(x);
    free(d);
}
