/*
 * KServe v2 REST bodies <-> the gRPC messages (daemon/rest_json.c): what a
 * JSON request becomes on the gRPC side, what a gRPC answer becomes in JSON
 * (floats read back bit for bit), and the errors for malformed bodies.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inference.pb-c.h"
#include "rest_json.h"

static Inference__ModelInferRequest *decode_ok(const char *json, const uint8_t *bin,
                                               size_t bin_len, eied_rest_infer_t *t)
{
    size_t jl = strlen(json);
    uint8_t *body = malloc(jl + bin_len + 1);
    memcpy(body, json, jl);
    if (bin_len > 0)
        memcpy(body + jl, bin, bin_len);
    eie_error_t err;
    cr_assert_eq(eied_rest_infer_decode(body, jl + bin_len, bin_len ? jl : 0, "m", "2", t, &err),
                 EIE_STATUS_OK, "%s", err.msg);
    free(body);
    Inference__ModelInferRequest *r =
        inference__model_infer_request__unpack(NULL, t->request_len, t->request);
    cr_assert_not_null(r);
    return r;
}

static void decode_fails(const char *json, size_t json_len, const char *expect)
{
    eied_rest_infer_t t;
    eie_error_t err;
    size_t len = strlen(json);
    cr_assert_eq(eied_rest_infer_decode((const uint8_t *)json, len, json_len, "m", "", &t, &err),
                 EIE_STATUS_INVALID_ARGUMENT, "accepted: %s", json);
    cr_assert_not_null(strstr(err.msg, expect), "'%s' not in: %s", expect, err.msg);
    cr_assert_null(t.request);
}

Test(rest_json, a_json_request_becomes_the_grpc_request)
{
    eied_rest_infer_t t;
    Inference__ModelInferRequest *r = decode_ok(
        "{\"id\":\"r1\",\"parameters\":{\"priority\":2,\"binary_data_output\":true},"
        "\"inputs\":[{\"name\":\"x\",\"shape\":[2,3],\"datatype\":\"FP32\","
        "\"data\":[[1,2.5,-3],[0.1,1e-3,65504]]}],"
        "\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":false}}]}",
        NULL, 0, &t);
    cr_assert_str_eq(r->model_name, "m");
    cr_assert_str_eq(r->model_version, "2");
    cr_assert_str_eq(r->id, "r1");
    cr_assert_eq(r->n_parameters, 1); /* binary_data_output is the REST side's own */
    cr_assert_str_eq(r->parameters[0]->key, "priority");
    cr_assert_eq(r->parameters[0]->value->int64_param, 2);
    cr_assert(t.binary_all);
    cr_assert_eq(r->n_inputs, 1);
    cr_assert_str_eq(r->inputs[0]->name, "x");
    cr_assert_str_eq(r->inputs[0]->datatype, "FP32");
    cr_assert_eq(r->inputs[0]->n_shape, 2);
    cr_assert_eq(r->inputs[0]->shape[0], 2);
    cr_assert_eq(r->inputs[0]->shape[1], 3);
    const float want[] = {1, 2.5f, -3, 0.1f, 1e-3f, 65504};
    cr_assert_eq(r->inputs[0]->contents->n_fp32_contents, 6);
    cr_assert(memcmp(r->inputs[0]->contents->fp32_contents, want, sizeof want) == 0);
    cr_assert_eq(r->n_raw_input_contents, 0);
    cr_assert_eq(r->n_outputs, 1);
    cr_assert_str_eq(r->outputs[0]->name, "y");
    cr_assert_eq(r->outputs[0]->n_parameters, 0);
    inference__model_infer_request__free_unpacked(r, NULL);
    eied_rest_infer_free(&t);
}

Test(rest_json, binary_inputs_make_every_input_raw)
{
    float b[4] = {0.25f, -1, NAN, 3};
    eied_rest_infer_t t;
    Inference__ModelInferRequest *r = decode_ok(
        "{\"inputs\":[{\"name\":\"a\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[7,8]},"
        "{\"name\":\"b\",\"shape\":[1,4],\"datatype\":\"FP32\","
        "\"parameters\":{\"binary_data_size\":16}}]}",
        (const uint8_t *)b, sizeof b, &t);
    cr_assert_eq(r->n_raw_input_contents, 2);
    const float a[2] = {7, 8};
    cr_assert_eq(r->raw_input_contents[0].len, sizeof a);
    cr_assert(memcmp(r->raw_input_contents[0].data, a, sizeof a) == 0);
    cr_assert_eq(r->raw_input_contents[1].len, sizeof b);
    cr_assert(memcmp(r->raw_input_contents[1].data, b, sizeof b) == 0); /* NaN bits too */
    cr_assert_null(r->inputs[0]->contents);
    cr_assert_eq(r->inputs[1]->n_parameters, 0);
    inference__model_infer_request__free_unpacked(r, NULL);
    eied_rest_infer_free(&t);
}

Test(rest_json, malformed_requests_are_named)
{
    decode_fails("{\"inputs\": [", 0, "line 1");
    decode_fails("[1,2]", 0, "JSON object");
    decode_fails("{}", 0, "\"inputs\"");
    decode_fails("{\"inputs\":[]}", 0, "\"inputs\"");
    decode_fails("{\"inputs\":[{\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}", 0,
                 "inputs[0]: \"name\"");
    decode_fails("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"data\":[1]}]}", 0, "\"datatype\"");
    decode_fails("{\"inputs\":[{\"name\":\"x\",\"shape\":[1.5],\"datatype\":\"FP32\",\"data\":[1]}]}",
                 0, "\"shape\"[0]");
    decode_fails("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\"}]}", 0,
                 "input 'x': \"data\"");
    decode_fails("{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"datatype\":\"FP32\","
                 "\"data\":[1,\"2\"]}]}",
                 0, "string where a number");
    decode_fails("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\","
                 "\"parameters\":{\"binary_data_size\":8}}]}",
                 0, "binary_data_size 8 runs past");
    decode_fails("{\"id\":1,\"inputs\":[]}", 0, "\"id\"");
    decode_fails("{\"inputs\":[{\"name\":\"x\",\"name\":\"y\"}]}", 0, "duplicate");
    decode_fails("{\"inputs\":[]}", 100, "larger than the body");
    /* nested past the depth limit */
    char deep[256] = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":";
    for (int i = 0; i < EIED_REST_MAX_DEPTH + 1; i++)
        strcat(deep, "[");
    strcat(deep, "1");
    for (int i = 0; i < EIED_REST_MAX_DEPTH + 1; i++)
        strcat(deep, "]");
    strcat(deep, "}]}");
    decode_fails(deep, 0, "deeper than");
}

/* A gRPC answer with outputs y (3 floats) and z (2 floats) as raw contents. */
static uint8_t *response_bytes(const float *y, const float *z, size_t *len)
{
    Inference__ModelInferResponse r;
    inference__model_infer_response__init(&r);
    r.model_name = "m";
    r.model_version = "2";
    r.id = "r1";
    Inference__ModelInferResponse__InferOutputTensor o[2], *op[2] = {&o[0], &o[1]};
    int64_t sy[2] = {1, 3}, sz[2] = {1, 2};
    for (int i = 0; i < 2; i++) {
        inference__model_infer_response__infer_output_tensor__init(&o[i]);
        o[i].datatype = "FP32";
        o[i].n_shape = 2;
    }
    o[0].name = "y";
    o[0].shape = sy;
    o[1].name = "z";
    o[1].shape = sz;
    r.n_outputs = 2;
    r.outputs = op;
    ProtobufCBinaryData raw[2] = {{3 * sizeof(float), (uint8_t *)y},
                                  {2 * sizeof(float), (uint8_t *)z}};
    r.n_raw_output_contents = 2;
    r.raw_output_contents = raw;
    *len = inference__model_infer_response__get_packed_size(&r);
    uint8_t *b = malloc(*len);
    inference__model_infer_response__pack(&r, b);
    return b;
}

Test(rest_json, the_grpc_answer_becomes_json_that_reads_back_bit_for_bit)
{
    const float y[3] = {0.1f, -1.17549435e-38f, 3.40282347e38f};
    const float z[2] = {NAN, 1.0f / 3.0f};
    size_t rl;
    uint8_t *resp = response_bytes(y, z, &rl);
    eied_rest_infer_t t;
    Inference__ModelInferRequest *r = decode_ok(
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}],"
        "\"outputs\":[{\"name\":\"y\"},{\"name\":\"z\",\"parameters\":{\"binary_data\":true}}]}",
        NULL, 0, &t);
    inference__model_infer_request__free_unpacked(r, NULL);
    uint8_t *body;
    size_t len, json_len;
    eie_error_t err;
    cr_assert_eq(eied_rest_infer_encode(&t, resp, rl, &body, &len, &json_len, &err),
                 EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(len, json_len + sizeof z);
    cr_assert(memcmp(body + json_len, z, sizeof z) == 0, "z's binary data");
    json_error_t je;
    json_t *root = json_loadb((const char *)body, json_len, 0, &je);
    cr_assert_not_null(root, "%s", je.text);
    cr_assert_str_eq(json_string_value(json_object_get(root, "model_name")), "m");
    cr_assert_str_eq(json_string_value(json_object_get(root, "id")), "r1");
    json_t *outs = json_object_get(root, "outputs");
    json_t *oy = json_array_get(outs, 0), *oz = json_array_get(outs, 1);
    cr_assert_str_eq(json_string_value(json_object_get(oy, "name")), "y");
    cr_assert_eq(json_integer_value(json_array_get(json_object_get(oy, "shape"), 1)), 3);
    json_t *data = json_object_get(oy, "data");
    cr_assert_eq(json_array_size(data), 3);
    for (size_t i = 0; i < 3; i++) {
        float back = (float)json_number_value(json_array_get(data, i));
        cr_assert(memcmp(&back, &y[i], sizeof back) == 0, "y[%zu] %a read back as %a", i,
                  (double)y[i], (double)back);
    }
    cr_assert_null(json_object_get(oz, "data"));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(oz, "parameters"),
                                                    "binary_data_size")),
                 (json_int_t)sizeof z);
    json_decref(root);
    free(body);
    eied_rest_infer_free(&t);

    /* all in JSON: the NaN has no JSON form and is null */
    r = decode_ok("{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\","
                  "\"data\":[1]}]}",
                  NULL, 0, &t);
    inference__model_infer_request__free_unpacked(r, NULL);
    cr_assert_eq(eied_rest_infer_encode(&t, resp, rl, &body, &len, &json_len, &err),
                 EIE_STATUS_OK, "%s", err.msg);
    cr_assert_eq(len, json_len);
    root = json_loadb((const char *)body, len, 0, &je);
    cr_assert_not_null(root, "%s", je.text);
    data = json_object_get(json_array_get(json_object_get(root, "outputs"), 1), "data");
    cr_assert(json_is_null(json_array_get(data, 0)));
    json_decref(root);
    free(body);
    eied_rest_infer_free(&t);
    free(resp);
}

Test(rest_json, error_bodies_are_json_with_the_message_escaped)
{
    char *s = eied_rest_error_body("model 'a\"b' not found\n");
    cr_assert_str_eq(s, "{\"error\":\"model 'a\\\"b' not found\\n\"}");
    free(s);
}
