/*
 * eiectl infer: one ModelInfer call. The input tensor's name and width come
 * from ModelMetadata, so the user only supplies rows of numbers.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eiectl.h"
#include "input.h"
#include "remote.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: eiectl infer --model NAME [--version V] [--input JSON | --input-file FILE |\n"
            "                    --input NAME=FILE ...]\n"
            "                    [--top-k K] [--id ID] [--json] [--addr HOST:PORT] [--timeout S]\n"
            "                    [--token-file FILE]\n\n"
            "Runs one ModelInfer request on eied and prints the outputs. The input is\n"
            "a batch of rows; the input tensor's name and row width are asked from the\n"
            "server (ModelMetadata) and the rows are sent as FP32 [rows, width] in\n"
            "raw_input_contents. Without --input or --input-file, rows are read from\n"
            "stdin (JSON, CSV or .npy, recognised by content).\n\n"
            "  -m, --model NAME       model to run (required)\n"
            "  -V, --version V        model version (default: the server's choice)\n"
            "  -i, --input JSON       [1, 2, 3] (one row) or [[1, 2], [3, 4]] (a batch)\n"
            "  -i, --input NAME=FILE  the model input NAME from FILE (as --input-file); once\n"
            "                         per input of a model of several inputs, one batch size\n"
            "  -f, --input-file FILE  .npy (float32/float64, C order; N-D: one sample a row), .json or\n"
            "                         .csv (one row a line; a header line is skipped); '-' is\n"
            "                         stdin; at most 64 MiB\n"
            "  -k, --top-k K          print the K best (index, score) pairs of each row\n"
            "      --id ID            request id, echoed by the server\n"
            "  -j, --json             print one JSON object (outputs, top_k, parameters)\n"
            EIECTL_REMOTE_HELP
            "\nExit status: 0 success, 1 failure (bad input, server error), 2 usage error.\n");
}

/* Most inputs given by name (--input NAME=FILE). */
#define MAX_NAMED 16

typedef struct named_input {
    const char *name; /* points into argv, cut at the '=' */
    const char *path;
    eiectl_input_t in;
    int64_t shape[8];
    size_t rank;
    uint8_t *raw;
} named_input_t;

/* "NAME=FILE" (not JSON, which starts with '['): the model input NAME from FILE. */
static bool split_named(char *arg, named_input_t *out)
{
    char *eq = strchr(arg, '=');
    if (arg[0] == '[' || arg[0] == ' ' || eq == NULL || eq == arg || eq[1] == '\0')
        return false;
    *eq = '\0';
    memset(out, 0, sizeof *out);
    out->name = arg;
    out->path = eq + 1;
    return true;
}

/* Decodes and prints a response of rows rows; the exit code (1 after saying why). */
static int print_response(const char *addr, const char *model, Inference__ModelInferResponse *r,
                          size_t rows, const Inference__ModelMetadataResponse *md, bool json,
                          size_t top_k)
{
    eiectl_infer_output_t outs[EIECTL_INFER_MAX_OUTPUTS];
    size_t nouts;
    eie_error_t err;
    if (eiectl_infer_response_decode(r, rows, md, outs, &nouts, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl infer: %s: model '%s': %s\n", addr, model, err.msg);
        return 1;
    }
    if (json)
        eiectl_infer_print_json(stdout, r, outs, nouts, top_k);
    else
        eiectl_infer_print_text(stdout, outs, nouts, top_k);
    eiectl_infer_outputs_free(outs, nouts);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* One ModelInfer with each model input from its own file (a model of several inputs). */
static int infer_named(const eiectl_remote_opts_t *ro, const char *model, const char *version,
                       const char *id, named_input_t *named, size_t n_named, bool json,
                       size_t top_k)
{
    eie_error_t err;
    int rc = 1;
    for (size_t i = 0; i < n_named; i++)
        if (eiectl_input_load(named[i].path, EIECTL_INPUT_AUTO, &named[i].in, &err) !=
            EIE_STATUS_OK) {
            fprintf(stderr, "eiectl infer: input '%s': %s\n", named[i].name, err.msg);
            goto free_inputs;
        }
    eiectl_rpc_t rpc;
    if (!eiectl_remote_open("infer", ro, &rpc))
        goto free_inputs;
    ProtobufCMessage *resp = NULL;
    eiectl_rpc_status_t st;
    Inference__ModelMetadataResponse *md = NULL;
    if (!eiectl_model_metadata_fetch("infer", &rpc, ro->addr, model, version, &md))
        goto done;
    if (md->n_inputs != n_named) {
        fprintf(stderr, "eiectl infer: model '%s' has %zu inputs; %zu given by name\n", model,
                md->n_inputs, n_named);
        goto done;
    }
    /* The batch: the rows of the inputs whose leading dimension is variable. An
       input with a fixed one (an LSTM's fed state, [1, N, H]) is its own size. */
    size_t rows = 0;
    for (size_t i = 0; i < md->n_inputs && rows == 0; i++)
        for (size_t k = 0; k < n_named; k++)
            if (md->inputs[i]->name != NULL && strcmp(named[k].name, md->inputs[i]->name) == 0 &&
                (md->inputs[i]->n_shape < 2 || md->inputs[i]->shape[0] < 0))
                rows = named[k].in.rows;
    if (rows == 0)
        rows = named[0].in.rows;
    for (size_t i = 0; i < md->n_inputs; i++) {
        /* each model input checked as a one-input model's would be */
        Inference__ModelMetadataResponse one = *md;
        one.n_inputs = 1;
        one.inputs = &md->inputs[i];
        eiectl_model_input_t mi;
        if (eiectl_model_input_from_metadata(&one, &mi, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "eiectl infer: %s: %s\n", ro->addr, err.msg);
            goto done;
        }
        named_input_t *ni = NULL;
        for (size_t k = 0; k < n_named; k++)
            if (strcmp(named[k].name, mi.name) == 0)
                ni = &named[k];
        if (ni == NULL) {
            fprintf(stderr, "eiectl infer: model '%s' input '%s' is not given (--input %s=FILE)\n",
                    model, mi.name, mi.name);
            goto done;
        }
        bool fixed = mi.rank >= 2 && mi.shape[0] >= 0;
        size_t want = fixed ? (size_t)mi.shape[0] : rows;
        if (ni->in.cols != mi.features || ni->in.rows != want) {
            if (fixed)
                fprintf(stderr, "eiectl infer: input '%s' has %zu rows of %zu values; model '%s' "
                        "takes exactly %zu rows of %zu values there (its shape starts with "
                        "%zu, whatever the batch)\n",
                        ni->name, ni->in.rows, ni->in.cols, model, want, mi.features, want);
            else
                fprintf(stderr, "eiectl infer: input '%s' has %zu rows of %zu values; model '%s' "
                        "takes %zu values a row and every batched input the same rows (%zu)\n",
                        ni->name, ni->in.rows, ni->in.cols, model, mi.features, rows);
            goto done;
        }
        ni->rank = mi.rank < 2 ? 2 : mi.rank;
        memcpy(ni->shape, mi.shape, sizeof ni->shape);
        if (mi.rank < 2)
            ni->shape[1] = (int64_t)mi.features;
        ni->shape[0] = (int64_t)want;
    }
    Inference__ModelInferRequest req = INFERENCE__MODEL_INFER_REQUEST__INIT;
    Inference__ModelInferRequest__InferInputTensor tensors[MAX_NAMED], *tp[MAX_NAMED];
    ProtobufCBinaryData raw[MAX_NAMED];
    for (size_t i = 0; i < n_named; i++) {
        size_t count = named[i].in.rows * named[i].in.cols;
        if ((named[i].raw = malloc(count * 4 + 1)) == NULL) {
            fprintf(stderr, "eiectl infer: out of memory\n");
            goto done;
        }
        for (size_t v = 0; v < count; v++) { /* little-endian whatever the host is */
            uint32_t u;
            memcpy(&u, &named[i].in.data[v], 4);
            for (int b = 0; b < 4; b++)
                named[i].raw[4 * v + (size_t)b] = (uint8_t)(u >> (8 * b));
        }
        inference__model_infer_request__infer_input_tensor__init(&tensors[i]);
        tensors[i].name = (char *)named[i].name;
        tensors[i].datatype = (char *)"FP32";
        tensors[i].n_shape = named[i].rank;
        tensors[i].shape = named[i].shape;
        tp[i] = &tensors[i];
        raw[i].len = count * 4;
        raw[i].data = named[i].raw;
    }
    req.model_name = (char *)model;
    req.model_version = (char *)version;
    req.id = (char *)id;
    req.n_inputs = n_named;
    req.inputs = tp;
    req.n_raw_input_contents = n_named;
    req.raw_input_contents = raw;
    if (!eiectl_rpc_call(&rpc, "/inference.GRPCInferenceService/ModelInfer", &req.base,
                         &inference__model_infer_response__descriptor, &resp, &st)) {
        eiectl_remote_print_error("infer", ro->addr, &st);
        goto done;
    }
    rc = print_response(ro->addr, model, (Inference__ModelInferResponse *)resp, rows, md, json,
                        top_k);
done:
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    if (md != NULL)
        protobuf_c_message_free_unpacked(&md->base, NULL);
    eiectl_rpc_close(&rpc);
free_inputs:
    for (size_t i = 0; i < n_named; i++) {
        eiectl_input_free(&named[i].in);
        free(named[i].raw);
    }
    return rc;
}

int eiectl_cmd_infer(int argc, char **argv)
{
    static const struct option opts[] = {
        EIECTL_REMOTE_LONG_OPTS,
        {"model", required_argument, NULL, 'm'},
        {"version", required_argument, NULL, 'V'},
        {"input", required_argument, NULL, 'i'},
        {"input-file", required_argument, NULL, 'f'},
        {"top-k", required_argument, NULL, 'k'},
        {"id", required_argument, NULL, 'I'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    eiectl_remote_opts_t ro;
    eiectl_remote_opts_init(&ro);
    const char *model = NULL, *version = "", *input_text = NULL, *input_file = NULL, *id = "";
    size_t top_k = 0;
    bool json = false;
    named_input_t named[MAX_NAMED];
    size_t n_named = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "a:t:T:m:V:i:f:k:jh", opts, NULL)) != -1) {
        int r = eiectl_remote_opt("infer", opt, optarg, &ro);
        if (r == 2)
            return 2;
        if (r == 1)
            continue;
        switch (opt) {
        case 'm':
            model = optarg;
            break;
        case 'V':
            version = optarg;
            break;
        case 'i':
            if (n_named < MAX_NAMED && split_named(optarg, &named[n_named])) {
                for (size_t k = 0; k < n_named; k++)
                    if (strcmp(named[k].name, named[n_named].name) == 0)
                        return eiectl_usage_error("infer", "input '%s' is given twice",
                                                  named[k].name);
                n_named++;
            } else if (strchr(optarg, '=') != NULL && optarg[0] != '[' && n_named == MAX_NAMED) {
                return eiectl_usage_error("infer", "more than %d inputs by name", MAX_NAMED);
            } else {
                input_text = optarg;
            }
            break;
        case 'f':
            input_file = optarg;
            break;
        case 'k': {
            char *end;
            unsigned long long k = strtoull(optarg, &end, 10);
            if (*end != '\0' || optarg[0] == '-' || k < 1 || k > EIECTL_INPUT_MAX_COLS)
                return eiectl_usage_error("infer", "--top-k '%s' is not a count in [1, %zu]",
                                          optarg, EIECTL_INPUT_MAX_COLS);
            top_k = (size_t)k;
            break;
        }
        case 'I':
            if (strlen(optarg) > 1024)
                return eiectl_usage_error("infer", "--id is longer than 1024 bytes");
            id = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc)
        return eiectl_usage_error("infer", "unexpected argument '%s'", argv[optind]);
    if (model == NULL || model[0] == '\0')
        return eiectl_usage_error("infer", "--model is required");
    if (input_text != NULL && input_file != NULL)
        return eiectl_usage_error("infer", "give --input or --input-file, not both");
    if (n_named > 0 && (input_text != NULL || input_file != NULL))
        return eiectl_usage_error("infer", "give every input as --input NAME=FILE, or one "
                                  "--input/--input-file");
    if (n_named > 0)
        return infer_named(&ro, model, version, id, named, n_named, json, top_k);
    if (input_text == NULL && input_file == NULL && isatty(STDIN_FILENO))
        return eiectl_usage_error("infer", "no input: give --input, --input-file or pipe rows "
                                  "on stdin");

    /* The input is checked before the server is asked anything. */
    eie_error_t err;
    eiectl_input_t in = {0};
    eie_status_t parsed;
    if (input_text != NULL) {
        size_t len = strlen(input_text);
        if (len > EIECTL_INPUT_MAX_BYTES) {
            fprintf(stderr, "eiectl infer: --input is larger than %zu bytes\n",
                    EIECTL_INPUT_MAX_BYTES);
            return 1;
        }
        parsed = eiectl_input_parse_json(input_text, len, "--input", &in, &err);
    } else {
        parsed =
            eiectl_input_load(input_file != NULL ? input_file : "-", EIECTL_INPUT_AUTO, &in, &err);
    }
    if (parsed != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl infer: %s\n", err.msg);
        return 1;
    }

    int rc = 1;
    eiectl_rpc_t rpc;
    if (!eiectl_remote_open("infer", &ro, &rpc)) {
        eiectl_input_free(&in);
        return 1;
    }
    eiectl_model_input_t mi;
    eiectl_infer_request_t req;
    bool have_req = false;
    ProtobufCMessage *resp = NULL;
    Inference__ModelMetadataResponse *md = NULL;
    if (!eiectl_model_metadata_fetch("infer", &rpc, ro.addr, model, version, &md))
        goto done;
    if (eiectl_model_input_from_metadata(md, &mi, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl infer: %s: %s\n", ro.addr, err.msg);
        goto done;
    }
    if (in.cols != mi.features) {
        fprintf(stderr, "eiectl infer: input has %zu values per row; model '%s' input '%s' "
                "takes %zu\n", in.cols, model, mi.name, mi.features);
        goto done;
    }
    if (!eiectl_infer_request_init(&req, model, version, id, mi.name, in.data, in.rows,
                                   in.cols)) {
        fprintf(stderr, "eiectl infer: out of memory\n");
        goto done;
    }
    have_req = true;
    if (mi.rank > 2)
        eiectl_infer_request_set_shape(&req, mi.rank, mi.shape);
    eiectl_rpc_status_t st;
    if (!eiectl_rpc_call(&rpc, "/inference.GRPCInferenceService/ModelInfer", &req.msg.base,
                         &inference__model_infer_response__descriptor, &resp, &st)) {
        eiectl_remote_print_error("infer", ro.addr, &st);
        goto done;
    }
    rc = print_response(ro.addr, model, (Inference__ModelInferResponse *)resp, in.rows, md, json,
                        top_k);
done:
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    if (md != NULL)
        protobuf_c_message_free_unpacked(&md->base, NULL);
    if (have_req)
        eiectl_infer_request_free(&req);
    eiectl_rpc_close(&rpc);
    eiectl_input_free(&in);
    return rc;
}
