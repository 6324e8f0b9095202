/*
 * Fuzz target: a KServe v2 REST inference body as an HTTP client sends it
 * (daemon/rest_json.c): JSON, optionally followed by the binary tensors of
 * Triton's extension. Byte 0 says how to read the rest: bit 0 set, bytes
 * 1-2 are the JSON part's length (Inference-Header-Content-Length, little
 * endian) and the body follows; else the rest is all JSON. Bit 1 set: the
 * URL names version "1".
 *
 * A body that decodes must be a ModelInferRequest that protobuf-c reads
 * back, for the URL's model and version, which the gRPC path's validation
 * then takes (every float it hands the engine readable) or refuses with a
 * message. An answer to it (each output it asks for, or one, of three
 * floats with a NaN and an infinity) must encode to a body whose JSON part
 * parses, or be refused with a message. A refusal of the body must say why.
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "inference.pb-c.h"
#include "infer_validate.h"
#include "rest_json.h"

static const eied_infer_spec_t spec = {
    .model = "fuzz", .input_name = "input", .output_name = "output", .input_dim = 4,
    .max_batch = 8, .max_tensor_elements = 1u << 20, .reject_non_finite = false};

enum { MAX_OUTPUTS = 4 };

static void answer(const eied_rest_infer_t *t, const Inference__ModelInferRequest *req)
{
    static const float y[3] = {0.5f, __builtin_nanf(""), -__builtin_inff()};
    Inference__ModelInferResponse resp = INFERENCE__MODEL_INFER_RESPONSE__INIT;
    Inference__ModelInferResponse__InferOutputTensor outs[MAX_OUTPUTS], *po[MAX_OUTPUTS];
    ProtobufCBinaryData raw[MAX_OUTPUTS];
    int64_t shape[2] = {1, 3};
    size_t n = req->n_outputs == 0 ? 1 : req->n_outputs < MAX_OUTPUTS ? req->n_outputs
                                                                         : MAX_OUTPUTS;
    for (size_t i = 0; i < n; i++) {
        inference__model_infer_response__infer_output_tensor__init(&outs[i]);
        outs[i].name = req->n_outputs ? req->outputs[i]->name : (char *)"output";
        outs[i].datatype = "FP32";
        outs[i].n_shape = 2;
        outs[i].shape = shape;
        raw[i] = (ProtobufCBinaryData){.len = sizeof y, .data = (uint8_t *)y};
        po[i] = &outs[i];
    }
    resp.model_name = req->model_name;
    resp.model_version = req->model_version;
    resp.id = req->id;
    resp.n_outputs = n;
    resp.outputs = po;
    resp.n_raw_output_contents = n;
    resp.raw_output_contents = raw;
    size_t len = inference__model_infer_response__get_packed_size(&resp);
    uint8_t *packed = malloc(len ? len : 1);
    FUZZ_CHECK(packed != NULL, "out of memory");
    inference__model_infer_response__pack(&resp, packed);
    uint8_t *body = NULL;
    size_t body_len = 0, json_len = 0;
    eie_error_t err;
    err.msg[0] = '\0';
    if (eied_rest_infer_encode(t, packed, len, &body, &body_len, &json_len, &err) ==
        EIE_STATUS_OK) {
        FUZZ_CHECK(json_len <= body_len, "JSON part %zu of %zu bytes", json_len, body_len);
        json_error_t je;
        json_t *root = json_loadb((const char *)body, json_len, 0, &je);
        FUZZ_CHECK(root != NULL, "the answer's JSON does not parse: %s", je.text);
        json_decref(root);
        free(body);
    } else {
        FUZZ_CHECK(err.msg[0] != '\0', "an answer refused without a message");
    }
    free(packed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t json_len = 0, skip = 1;
    if (data[0] & 1) {
        if (size < 3)
            return 0;
        json_len = (size_t)data[1] | (size_t)data[2] << 8;
        skip = 3;
    }
    const char *version = data[0] & 2 ? "1" : "";
    const uint8_t *body = data + skip;
    size_t len = size - skip;
    int flag;
    (void)eied_rest_body_flag(body, len, "binary_data_output", &flag);

    eied_rest_infer_t t;
    eie_error_t err;
    err.msg[0] = '\0';
    if (eied_rest_infer_decode(body, len, json_len, "fuzz", version, &t, &err) != EIE_STATUS_OK) {
        FUZZ_CHECK(err.msg[0] != '\0', "a refusal must say why");
        return 0;
    }
    Inference__ModelInferRequest *req =
        inference__model_infer_request__unpack(NULL, t.request_len, t.request);
    FUZZ_CHECK(req != NULL, "the request it made does not unpack (%zu bytes)", t.request_len);
    FUZZ_CHECK(strcmp(req->model_name, "fuzz") == 0 && strcmp(req->model_version, version) == 0,
               "model '%s' version '%s'", req->model_name, req->model_version);
    eied_infer_input_t in = {0};
    err.msg[0] = '\0';
    if (eied_infer_validate(req, &spec, &in, &err) == EIE_STATUS_OK) {
        FUZZ_CHECK(in.data != NULL && in.n == (size_t)in.rows * spec.input_dim, "n %zu", in.n);
        const volatile unsigned char *p = in.data;
        unsigned sum = 0;
        for (size_t i = 0; i < in.n * 4; i++)
            sum += p[i];
        (void)sum;
    } else {
        FUZZ_CHECK(err.msg[0] != '\0', "a refusal must say why");
    }
    answer(&t, req);
    inference__model_infer_request__free_unpacked(req, NULL);
    eied_rest_infer_free(&t);
    return 0;
}
