/* The protocol side of eiectl without a server: metadata, request and reply messages, tokens. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote.h"

static eie_error_t error;

#define CAPTURE(buf, stmt)                                                                     \
    do {                                                                                       \
        size_t len_;                                                                           \
        FILE *out = open_memstream(&(buf), &len_);                                             \
        stmt;                                                                                  \
        fclose(out);                                                                           \
    } while (0)

/* A metadata reply with one input of the given datatype and shape. */
typedef struct {
    Inference__ModelMetadataResponse md;
    Inference__ModelMetadataResponse__TensorMetadata in;
    Inference__ModelMetadataResponse__TensorMetadata *ins[1];
    int64_t shape[3];
} meta_t;

static void meta_init(meta_t *m, const char *dtype, size_t nd, int64_t d0, int64_t d1, int64_t d2)
{
    inference__model_metadata_response__init(&m->md);
    inference__model_metadata_response__tensor_metadata__init(&m->in);
    m->md.name = (char *)"lenet";
    m->in.name = (char *)"input";
    m->in.datatype = (char *)dtype;
    m->shape[0] = d0;
    m->shape[1] = d1;
    m->shape[2] = d2;
    m->in.n_shape = nd;
    m->in.shape = m->shape;
    m->ins[0] = &m->in;
    m->md.n_inputs = 1;
    m->md.inputs = m->ins;
}

Test(metadata, input_width_is_the_last_dimension)
{
    meta_t m;
    eiectl_model_input_t mi;
    meta_init(&m, "FP32", 2, -1, 784, 0);
    cr_assert_eq(eiectl_model_input_from_metadata(&m.md, &mi, &error), EIE_STATUS_OK, "%s",
                 error.msg);
    cr_assert_str_eq(mi.name, "input");
    cr_assert_eq(mi.features, 784);
    meta_init(&m, "FP32", 1, 10, 0, 0);
    cr_assert_eq(eiectl_model_input_from_metadata(&m.md, &mi, &error), EIE_STATUS_OK, "%s",
                 error.msg);
    cr_assert_eq(mi.features, 10);
    /* an image input: a row is one 2 x 3 sample, sent in the model's full shape */
    meta_init(&m, "FP32", 3, -1, 2, 3);
    cr_assert_eq(eiectl_model_input_from_metadata(&m.md, &mi, &error), EIE_STATUS_OK, "%s",
                 error.msg);
    cr_assert_eq(mi.features, 6);
    cr_assert_eq(mi.rank, 3);
    float v[12] = {0};
    eiectl_infer_request_t req;
    cr_assert(eiectl_infer_request_init(&req, "lenet", "", "", "input", v, 2, 6));
    eiectl_infer_request_set_shape(&req, mi.rank, mi.shape);
    cr_assert_eq(req.input.n_shape, 3);
    cr_assert(req.input.shape[0] == 2 && req.input.shape[1] == 2 && req.input.shape[2] == 3);
    eiectl_infer_request_free(&req);
}

Test(metadata, unusable_inputs_are_named)
{
    static const struct {
        const char *dtype;
        size_t nd;
        int64_t d0, d1, d2;
        const char *want;
        eie_status_t status;
    } cases[] = {
        {"FP64", 2, 1, 4, 0, "model 'lenet' input 'input' has datatype 'FP64'",
         EIE_STATUS_UNSUPPORTED},
        {"FP32", 3, -1, 2, -1, "input 'input' has dimension 2 of -1", EIE_STATUS_UNSUPPORTED},
        {"FP32", 0, 0, 0, 0, "has 0 dimensions", EIE_STATUS_UNSUPPORTED},
        {"FP32", 2, 1, -1, 0, "has -1 features", EIE_STATUS_INVALID_ARGUMENT},
        {"FP32", 2, 1, 0, 0, "has 0 features", EIE_STATUS_INVALID_ARGUMENT},
        {"FP32", 2, 1, (int64_t)1 << 40, 0, "features", EIE_STATUS_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        meta_t m;
        eiectl_model_input_t mi;
        meta_init(&m, cases[i].dtype, cases[i].nd, cases[i].d0, cases[i].d1, cases[i].d2);
        cr_assert_eq(eiectl_model_input_from_metadata(&m.md, &mi, &error), cases[i].status,
                     "case %zu", i);
        cr_assert(strstr(error.msg, cases[i].want) != NULL, "case %zu: '%s'", i, error.msg);
    }
    meta_t m;
    eiectl_model_input_t mi;
    meta_init(&m, "FP32", 2, 1, 4, 0);
    m.md.n_inputs = 0;
    cr_assert_eq(eiectl_model_input_from_metadata(&m.md, &mi, &error), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(error.msg, "model 'lenet' declares no inputs") != NULL, "%s", error.msg);
}

Test(infer_request, packs_fp32_little_endian_with_shape)
{
    float v[6] = {1, 2, 3, 4, 5, -0.5f};
    eiectl_infer_request_t req;
    cr_assert(eiectl_infer_request_init(&req, "lenet", "", "req-1", "input", v, 2, 3));
    size_t n = protobuf_c_message_get_packed_size(&req.msg.base);
    uint8_t *buf = malloc(n);
    protobuf_c_message_pack(&req.msg.base, buf);
    eiectl_infer_request_free(&req);

    Inference__ModelInferRequest *r = inference__model_infer_request__unpack(NULL, n, buf);
    free(buf);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->model_name, "lenet");
    cr_assert_str_eq(r->id, "req-1");
    cr_assert_eq(r->n_inputs, 1);
    cr_assert_str_eq(r->inputs[0]->name, "input");
    cr_assert_str_eq(r->inputs[0]->datatype, "FP32");
    cr_assert_eq(r->inputs[0]->n_shape, 2);
    cr_assert_eq(r->inputs[0]->shape[0], 2);
    cr_assert_eq(r->inputs[0]->shape[1], 3);
    cr_assert_null(r->inputs[0]->contents);
    cr_assert_eq(r->n_raw_input_contents, 1);
    cr_assert_eq(r->raw_input_contents[0].len, 24);
    const uint8_t *p = r->raw_input_contents[0].data;
    /* -0.5f is 0xBF000000, little-endian on the wire */
    cr_assert(p[20] == 0x00 && p[21] == 0x00 && p[22] == 0x00 && p[23] == 0xBF);
    cr_assert(p[0] == 0x00 && p[3] == 0x3F); /* 1.0f = 0x3F800000 */
    inference__model_infer_request__free_unpacked(r, NULL);
}

/* A reply with one output "probs" of the given shape; raw bytes or fp32_contents. */
typedef struct {
    Inference__ModelInferResponse resp;
    Inference__ModelInferResponse__InferOutputTensor out;
    Inference__ModelInferResponse__InferOutputTensor *outs[1];
    Inference__InferTensorContents contents;
    ProtobufCBinaryData raw[1];
    int64_t shape[2];
    float values[8];
} reply_t;

static void reply_init(reply_t *r, const char *dtype, size_t nd, int64_t d0, int64_t d1,
                       size_t nvalues, bool raw)
{
    inference__model_infer_response__init(&r->resp);
    inference__model_infer_response__infer_output_tensor__init(&r->out);
    inference__infer_tensor_contents__init(&r->contents);
    for (int i = 0; i < 8; i++)
        r->values[i] = (float)i / 8;
    r->resp.model_name = (char *)"lenet";
    r->resp.model_version = (char *)"1";
    r->resp.id = (char *)"req-\"1\"";
    r->out.name = (char *)"probs";
    r->out.datatype = (char *)dtype;
    r->shape[0] = d0;
    r->shape[1] = d1;
    r->out.n_shape = nd;
    r->out.shape = r->shape;
    r->outs[0] = &r->out;
    r->resp.n_outputs = 1;
    r->resp.outputs = r->outs;
    if (raw) {
        r->raw[0].data = (uint8_t *)r->values; /* the tests run on little-endian hosts */
        r->raw[0].len = nvalues * 4;
        r->resp.n_raw_output_contents = 1;
        r->resp.raw_output_contents = r->raw;
    } else {
        r->contents.n_fp32_contents = nvalues;
        r->contents.fp32_contents = r->values;
        r->out.contents = &r->contents;
    }
}

Test(infer_reply, raw_and_typed_contents_decode_alike)
{
    for (int raw = 0; raw < 2; raw++) {
        reply_t r;
        reply_init(&r, "FP32", 2, 2, 4, 8, raw);
        eiectl_infer_output_t outs[EIECTL_INFER_MAX_OUTPUTS];
        size_t n;
        cr_assert_eq(eiectl_infer_response_decode(&r.resp, 2, NULL, outs, &n, &error), EIE_STATUS_OK,
                     "%s", error.msg);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(outs[0].name, "probs");
        cr_assert_eq(outs[0].rows, 2);
        cr_assert_eq(outs[0].cols, 4);
        cr_assert_float_eq(outs[0].data[7], 7.0f / 8, 0);
        eiectl_infer_outputs_free(outs, n);
    }
    reply_t r;
    reply_init(&r, "FP32", 1, 8, 0, 8, true); /* [N] for one row */
    eiectl_infer_output_t outs[EIECTL_INFER_MAX_OUTPUTS];
    size_t n;
    cr_assert_eq(eiectl_infer_response_decode(&r.resp, 1, NULL, outs, &n, &error), EIE_STATUS_OK, "%s",
                 error.msg);
    cr_assert_eq(outs[0].cols, 8);
    eiectl_infer_outputs_free(outs, n);
}

Test(infer_reply, every_mismatch_is_named)
{
    static const struct {
        const char *dtype;
        size_t nd;
        int64_t d0, d1;
        size_t nvalues, rows;
        bool raw;
        const char *want;
        eie_status_t status;
    } cases[] = {
        {"FP16", 2, 2, 4, 8, 2, true, "output 'probs' has datatype 'FP16'", EIE_STATUS_UNSUPPORTED},
        {"FP32", 2, 3, 4, 8, 2, true, "output 'probs' has shape [3, 4]; expected [2, N]",
         EIE_STATUS_INVALID_ARGUMENT},
        {"FP32", 1, 8, 0, 8, 2, true, "has shape [8]", EIE_STATUS_INVALID_ARGUMENT},
        {"FP32", 2, 2, 4, 7, 2, true, "28 bytes of raw contents, its shape needs 32",
         EIE_STATUS_INVALID_ARGUMENT},
        {"FP32", 2, 2, 4, 7, 2, false, "7 fp32_contents, its shape needs 8",
         EIE_STATUS_INVALID_ARGUMENT},
        {"FP32", 2, 2, -4, 8, 2, true, "has shape [2, -4]", EIE_STATUS_INVALID_ARGUMENT},
        {"FP32", 2, 2, (int64_t)1 << 40, 8, 2, true, "has shape", EIE_STATUS_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reply_t r;
        reply_init(&r, cases[i].dtype, cases[i].nd, cases[i].d0, cases[i].d1, cases[i].nvalues,
                   cases[i].raw);
        eiectl_infer_output_t outs[EIECTL_INFER_MAX_OUTPUTS];
        size_t n = 99;
        cr_assert_eq(eiectl_infer_response_decode(&r.resp, cases[i].rows, NULL, outs, &n, &error),
                     cases[i].status, "case %zu", i);
        cr_assert_eq(n, 0);
        cr_assert(strstr(error.msg, cases[i].want) != NULL, "case %zu: '%s'", i, error.msg);
    }
    reply_t r;
    reply_init(&r, "FP32", 2, 2, 4, 8, true);
    r.resp.n_outputs = 0;
    eiectl_infer_output_t outs[EIECTL_INFER_MAX_OUTPUTS];
    size_t n;
    cr_assert_eq(eiectl_infer_response_decode(&r.resp, 2, NULL, outs, &n, &error),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert_str_eq(error.msg, "reply has no outputs");
    reply_init(&r, "FP32", 2, 2, 4, 8, true);
    r.resp.n_raw_output_contents = 2;
    cr_assert_eq(eiectl_infer_response_decode(&r.resp, 2, NULL, outs, &n, &error),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(error.msg, "1 outputs but 2 raw_output_contents") != NULL, "%s", error.msg);
}

/* An output the metadata declares with a fixed leading dimension (an LSTM's
 * final state) has that many rows whatever the batch; without the metadata
 * it must have the batch's. */
Test(infer_reply, a_fixed_leading_dimension_from_the_metadata)
{
    reply_t r;
    reply_init(&r, "FP32", 2, 1, 8, 8, true);
    int64_t shape[3] = {1, 2, 4};
    Inference__ModelMetadataResponse md = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
    Inference__ModelMetadataResponse__TensorMetadata o =
        INFERENCE__MODEL_METADATA_RESPONSE__TENSOR_METADATA__INIT, *op = &o;
    o.name = (char *)"probs";
    o.n_shape = 3;
    o.shape = shape;
    md.n_outputs = 1;
    md.outputs = &op;
    eiectl_infer_output_t outs[EIECTL_INFER_MAX_OUTPUTS];
    size_t n;
    cr_assert_eq(eiectl_infer_response_decode(&r.resp, 3, &md, outs, &n, &error), EIE_STATUS_OK,
                 "%s", error.msg);
    cr_assert_eq(outs[0].rows, 1);
    cr_assert_eq(outs[0].cols, 8);
    eiectl_infer_outputs_free(outs, n);
    cr_assert_eq(eiectl_infer_response_decode(&r.resp, 3, NULL, outs, &n, &error),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(error.msg, "expected [3, N]") != NULL, "%s", error.msg);
    shape[0] = -1; /* declared variable: the batch's rows again */
    cr_assert_eq(eiectl_infer_response_decode(&r.resp, 3, &md, outs, &n, &error),
                 EIE_STATUS_INVALID_ARGUMENT);
}

Test(infer_print, text_values_and_top_k_table)
{
    float v[6] = {0.1f, 0.7f, 0.2f, 0.9f, 0.0f, 0.05f};
    eiectl_infer_output_t o = {.name = "probs", .rows = 2, .cols = 3, .data = v};
    char *s = NULL;
    CAPTURE(s, eiectl_infer_print_text(out, &o, 1, 0));
    cr_assert_str_eq(s, "0.100000001 0.699999988 0.200000003\n0.899999976 0 0.0500000007\n");
    free(s);
    CAPTURE(s, eiectl_infer_print_text(out, &o, 1, 2));
    cr_assert_str_eq(s, "row    rank  index    score\n"
                        "0      1     1        0.699999988\n"
                        "0      2     2        0.200000003\n"
                        "1      1     0        0.899999976\n"
                        "1      2     2        0.0500000007\n");
    free(s);
}

Test(infer_print, json_object_with_parameters_and_top_k)
{
    reply_t r;
    reply_init(&r, "FP32", 2, 1, 3, 3, true);
    Inference__InferParameter p1 = INFERENCE__INFER_PARAMETER__INIT, p2 = p1;
    p1.parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM;
    p1.string_param = (char *)"cpu";
    p2.parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
    p2.int64_param = -3;
    Inference__ModelInferResponse__ParametersEntry e1 =
        INFERENCE__MODEL_INFER_RESPONSE__PARAMETERS_ENTRY__INIT, e2 = e1;
    e1.key = (char *)"backend";
    e1.value = &p1;
    e2.key = (char *)"cycles";
    e2.value = &p2;
    Inference__ModelInferResponse__ParametersEntry *entries[2] = {&e1, &e2};
    r.resp.n_parameters = 2;
    r.resp.parameters = entries;
    float v[3] = {0.25f, 0.5f, NAN};
    eiectl_infer_output_t o = {.name = "probs", .rows = 1, .cols = 3, .data = v};
    char *s = NULL;
    CAPTURE(s, eiectl_infer_print_json(out, &r.resp, &o, 1, 1));
    cr_assert_str_eq(s, "{\"model_name\":\"lenet\",\"model_version\":\"1\",\"id\":\"req-\\\"1\\\"\","
                        "\"parameters\":{\"backend\":\"cpu\",\"cycles\":-3},\"outputs\":[{\"name\":"
                        "\"probs\",\"datatype\":\"FP32\",\"shape\":[1,3],\"data\":[[0.25,0.5,null]],"
                        "\"top_k\":[[{\"index\":1,\"score\":0.5}]]}]}\n");
    free(s);
}

Test(options, seconds_with_units_and_limits)
{
    double s;
    cr_assert(eiectl_parse_seconds("2.5", 3600, &s));
    cr_assert_float_eq(s, 2.5, 1e-12);
    cr_assert(eiectl_parse_seconds("500ms", 3600, &s));
    cr_assert_float_eq(s, 0.5, 1e-12);
    cr_assert(eiectl_parse_seconds("2m", 3600, &s));
    cr_assert_float_eq(s, 120, 1e-12);
    cr_assert(eiectl_parse_seconds("1h", 3600, &s));
    cr_assert_not(eiectl_parse_seconds("61m", 3600, &s));
    cr_assert_not(eiectl_parse_seconds("0", 3600, &s));
    cr_assert_not(eiectl_parse_seconds("-1", 3600, &s));
    cr_assert_not(eiectl_parse_seconds("nan", 3600, &s));
    cr_assert_not(eiectl_parse_seconds("10x", 3600, &s));
    cr_assert_not(eiectl_parse_seconds("", 3600, &s));
}

static void write_file(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

Test(token_file, first_line_trimmed_and_bad_tokens_refused)
{
    char path[] = "/tmp/eiectl-token-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char tok[EIECTL_TOKEN_MAX_BYTES + 1];

    write_file(path, "  s3cr3t.token-_~ \r\nsecond line\n", 32);
    cr_assert_eq(eiectl_token_read_file(path, tok, sizeof tok, &error), EIE_STATUS_OK, "%s",
                 error.msg);
    cr_assert_str_eq(tok, "s3cr3t.token-_~");

    write_file(path, "\n", 1);
    cr_assert_eq(eiectl_token_read_file(path, tok, sizeof tok, &error),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(error.msg, "the first line is empty") != NULL, "%s", error.msg);

    write_file(path, "ab cd", 5);
    cr_assert_eq(eiectl_token_read_file(path, tok, sizeof tok, &error),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(error.msg, "byte 3 of the token (0x20)") != NULL, "%s", error.msg);

    write_file(path, "ab\x01", 3);
    cr_assert_eq(eiectl_token_read_file(path, tok, sizeof tok, &error),
                 EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(error.msg, "(0x01) is not visible ASCII") != NULL, "%s", error.msg);

    char big[EIECTL_TOKEN_MAX_BYTES + 10];
    memset(big, 'a', sizeof big);
    write_file(path, big, sizeof big);
    cr_assert_eq(eiectl_token_read_file(path, tok, sizeof tok, &error), EIE_STATUS_LIMIT);
    cr_assert(strstr(error.msg, "larger than the 4096 bytes allowed") != NULL, "%s", error.msg);

    char small[8];
    write_file(path, "123456789", 9);
    cr_assert_eq(eiectl_token_read_file(path, small, sizeof small, &error), EIE_STATUS_LIMIT);
    cr_assert(strstr(error.msg, "longer than the 7 allowed") != NULL, "%s", error.msg);
    unlink(path);

    cr_assert_eq(eiectl_token_read_file("/nonexistent/token", tok, sizeof tok, &error),
                 EIE_STATUS_NOT_FOUND);
    cr_assert(strstr(error.msg, "/nonexistent/token: cannot open") != NULL, "%s", error.msg);
}

Test(rpc_metadata, keys_and_values_are_checked_and_bounded)
{
    grpc_init();
    eiectl_rpc_t rpc;
    cr_assert(eiectl_rpc_open(&rpc, "127.0.0.1:1", 1.0));
    cr_assert_not(eiectl_rpc_add_metadata(&rpc, "Authorization", "x"));
    cr_assert_not(eiectl_rpc_add_metadata(&rpc, "", "x"));
    cr_assert_not(eiectl_rpc_add_metadata(&rpc, "authorization", "a\nb"));
    cr_assert(eiectl_rpc_add_metadata(&rpc, "authorization", "Bearer t"));
    for (int i = 1; i < EIECTL_RPC_MAX_METADATA; i++)
        cr_assert(eiectl_rpc_add_metadata(&rpc, "x-n", "v"));
    cr_assert_not(eiectl_rpc_add_metadata(&rpc, "x-full", "v"));
    eiectl_rpc_close(&rpc);
    grpc_shutdown();
}
