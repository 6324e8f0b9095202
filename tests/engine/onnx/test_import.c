/*
 * ONNX import of bad inputs: each class gets a clear message, and random
 * corruption of a valid model never crashes the importer.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "eie/onnx.h"
#include "onnx/onnx.pb-c.h"

/* A valid model: 4 -> FC 3 -> Relu -> FC 2 -> Softmax, unpacked for mutation. */
static Onnx__ModelProto *good_model(void)
{
    eie_mlp_t *net;
    float w1[12], w2[6];
    for (int i = 0; i < 12; i++)
        w1[i] = 0.1f * (float)(i - 6);
    for (int i = 0; i < 6; i++)
        w2[i] = 0.2f * (float)(i - 3);
    cr_assert_eq(eie_mlp_init(4, &net, NULL), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_fc(net, 3, w1, NULL, NULL), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_activation(net, EIE_ACT_RELU, NULL), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_fc(net, 2, w2, NULL, NULL), EIE_STATUS_OK);
    cr_assert_eq(eie_mlp_add_activation(net, EIE_ACT_SOFTMAX, NULL), EIE_STATUS_OK);
    uint8_t *data;
    size_t len;
    cr_assert_eq(eie_onnx_export_memory(net, "g", "x", "y", &data, &len, NULL), EIE_STATUS_OK);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, data);
    cr_assert_not_null(m);
    free(data);
    eie_mlp_free(net);
    return m;
}

/* Packs m, imports it, frees m; returns the status and fills err. */
static eie_status_t import_model(Onnx__ModelProto *m, eie_error_t *err)
{
    size_t len = onnx__model_proto__get_packed_size(m);
    uint8_t *data = malloc(len);
    onnx__model_proto__pack(m, data);
    onnx__model_proto__free_unpacked(m, NULL);
    eie_mlp_t *net = NULL;
    eie_status_t st = eie_onnx_import_memory(data, len, NULL, &net, NULL, err);
    eie_mlp_free(net);
    free(data);
    return st;
}

#define ASSERT_MSG(err, needle) cr_assert(strstr((err).msg, needle) != NULL, "%s", (err).msg)

Test(onnx_import, good_model_imports)
{
    eie_error_t err;
    cr_assert_eq(import_model(good_model(), &err), EIE_STATUS_OK, "%s", err.msg);
}

Test(onnx_import, garbage_bytes_do_not_parse)
{
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x34};
    eie_mlp_t *net;
    eie_error_t err;
    cr_assert_eq(eie_onnx_import_memory(junk, sizeof junk, NULL, &net, NULL, &err),
                 EIE_STATUS_BAD_FORMAT);
    ASSERT_MSG(err, "does not parse");
}

Test(onnx_import, model_without_graph_is_refused)
{
    Onnx__ModelProto *m = good_model();
    onnx__graph_proto__free_unpacked(m->graph, NULL);
    m->graph = NULL;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_BAD_FORMAT);
    ASSERT_MSG(err, "no graph");
}

Test(onnx_import, unsupported_op_names_node_op_and_supported_list)
{
    Onnx__ModelProto *m = good_model();
    free(m->graph->node[1]->op_type);
    m->graph->node[1]->op_type = strdup("LeakyRelu");
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_UNSUPPORTED);
    ASSERT_MSG(err, "node 1 'layer1' (LeakyRelu)");
    ASSERT_MSG(err, "op type 'LeakyRelu' is not supported");
    ASSERT_MSG(err, "Gemm, MatMul");
}

Test(onnx_import, external_data_is_refused_clearly)
{
    Onnx__ModelProto *m = good_model();
    m->graph->initializer[0]->has_data_location = 1;
    m->graph->initializer[0]->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_UNSUPPORTED);
    ASSERT_MSG(err, "external file");
    ASSERT_MSG(err, "layer0.weight");
}

Test(onnx_import, raw_data_length_mismatch_is_refused)
{
    Onnx__ModelProto *m = good_model();
    m->graph->initializer[0]->raw_data.len -= 4;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_BAD_FORMAT);
    ASSERT_MSG(err, "raw_data has 44 bytes, its shape needs 48");
}

Test(onnx_import, typed_float_data_is_read_like_raw_data)
{
    Onnx__ModelProto *m = good_model();
    Onnx__TensorProto *t = m->graph->initializer[0];
    t->n_float_data = 12;
    t->float_data = malloc(12 * sizeof(float));
    memcpy(t->float_data, t->raw_data.data, 48);
    t->has_raw_data = 0;
    t->raw_data.len = 0;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_OK, "%s", err.msg);
}

Test(onnx_import, weight_width_mismatch_names_both_widths)
{
    Onnx__ModelProto *m = good_model();
    Onnx__TensorProto *t = m->graph->initializer[0];
    t->dims[0] = 4; /* 4 x 3: takes 3 inputs, the graph gives 4 */
    t->dims[1] = 3;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_BAD_FORMAT);
    ASSERT_MSG(err, "takes 3 inputs but the running tensor 'x' has 4 features");
}

Test(onnx_import, huge_dimension_hits_the_limit)
{
    Onnx__ModelProto *m = good_model();
    m->graph->initializer[0]->dims[0] = 1ll << 40;
    eie_error_t err;
    cr_assert_neq(import_model(m, &err), EIE_STATUS_OK);
    ASSERT_MSG(err, "dimension 0 is 1099511627776");
}

Test(onnx_import, two_data_inputs_are_refused)
{
    Onnx__ModelProto *m = good_model();
    Onnx__GraphProto *g = m->graph;
    g->input = realloc(g->input, 2 * sizeof *g->input);
    g->input[1] = malloc(sizeof **g->input);
    onnx__value_info_proto__init(g->input[1]);
    g->input[1]->name = strdup("other");
    g->n_input = 2;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_UNSUPPORTED);
    ASSERT_MSG(err, "2 non-constant inputs");
}

Test(onnx_import, node_off_the_chain_is_refused)
{
    Onnx__ModelProto *m = good_model();
    free(m->graph->node[2]->input[0]);
    m->graph->node[2]->input[0] = strdup("x");
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_UNSUPPORTED);
    ASSERT_MSG(err, "reads 'x', not the running tensor 't1'");
}

static Onnx__AttributeProto *int_attr(const char *name, int64_t v)
{
    Onnx__AttributeProto *a = malloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = strdup(name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    return a;
}

Test(onnx_import, softmax_over_the_batch_axis_is_refused)
{
    Onnx__ModelProto *m = good_model();
    Onnx__NodeProto *n = m->graph->node[3];
    n->attribute = malloc(sizeof *n->attribute);
    n->attribute[0] = int_attr("axis", 0);
    n->n_attribute = 1;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_UNSUPPORTED);
    ASSERT_MSG(err, "softmax over axis 0");
}

Test(onnx_import, flatten_at_axis_0_is_refused)
{
    Onnx__ModelProto *m = good_model();
    Onnx__NodeProto *n = m->graph->node[1];
    free(n->op_type);
    n->op_type = strdup("Flatten");
    n->attribute = malloc(sizeof *n->attribute);
    n->attribute[0] = int_attr("axis", 0);
    n->n_attribute = 1;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_UNSUPPORTED);
    ASSERT_MSG(err, "Flatten at axis 0");
}

Test(onnx_import, gemm_attribute_of_wrong_type_is_refused)
{
    Onnx__ModelProto *m = good_model();
    Onnx__AttributeProto *a = m->graph->node[0]->attribute[0];
    a->has_i = 0;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = 1;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_BAD_FORMAT);
    ASSERT_MSG(err, "attribute 'transB' is not an integer");
}

Test(onnx_import, weights_of_int_type_are_refused)
{
    Onnx__ModelProto *m = good_model();
    m->graph->initializer[0]->data_type = 6;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_UNSUPPORTED);
    ASSERT_MSG(err, "data type 6");
}

Test(onnx_import, second_graph_output_is_refused)
{
    Onnx__ModelProto *m = good_model();
    Onnx__GraphProto *g = m->graph;
    g->output = realloc(g->output, 2 * sizeof *g->output);
    g->output[1] = malloc(sizeof **g->output);
    onnx__value_info_proto__init(g->output[1]);
    g->output[1]->name = strdup("t1");
    g->n_output = 2;
    eie_error_t err;
    cr_assert_eq(import_model(m, &err), EIE_STATUS_UNSUPPORTED);
    ASSERT_MSG(err, "graph has 2 outputs");
}

Test(onnx_import, random_corruption_never_crashes)
{
    Onnx__ModelProto *m = good_model();
    size_t len = onnx__model_proto__get_packed_size(m);
    uint8_t *good = malloc(len), *bad = malloc(len);
    onnx__model_proto__pack(m, good);
    onnx__model_proto__free_unpacked(m, NULL);
    unsigned s = 12345;
    for (int round = 0; round < 3000; round++) {
        memcpy(bad, good, len);
        int flips = 1 + round % 4;
        for (int f = 0; f < flips; f++) {
            s = s * 1103515245u + 12345u;
            size_t at = (s >> 8) % len;
            s = s * 1103515245u + 12345u;
            bad[at] = (uint8_t)(s >> 16);
        }
        size_t cut = round % 7 == 0 ? (s >> 4) % len : len;
        eie_mlp_t *net = NULL;
        eie_error_t err;
        if (eie_onnx_import_memory(bad, cut, NULL, &net, NULL, &err) == EIE_STATUS_OK)
            eie_mlp_free(net);
        else
            cr_assert(err.msg[0] != '\0');
    }
    free(good);
    free(bad);
}
