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
            "usage: eiectl infer --model NAME [--version V] [--input JSON | --input-file FILE]\n"
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
            "  -f, --input-file FILE  .npy (float32/float64, C order; N-D: one sample a row), .json or\n"
            "                         .csv (one row a line; a header line is skipped); '-' is\n"
            "                         stdin; at most 64 MiB\n"
            "  -k, --top-k K          print the K best (index, score) pairs of each row\n"
            "      --id ID            request id, echoed by the server\n"
            "  -j, --json             print one JSON object (outputs, top_k, parameters)\n"
            EIECTL_REMOTE_HELP
            "\nExit status: 0 success, 1 failure (bad input, server error), 2 usage error.\n");
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
            input_text = optarg;
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
    if (input_text == NULL && input_file == NULL && isatty(STDIN_FILENO))
        return eiectl_usage_error("infer", "no input: give --input, --input-file or pipe rows "
                                  "on stdin");

    /* The input is checked before the server is asked anything. */
    char err[1024];
    eiectl_input_t in = {0};
    bool parsed;
    if (input_text != NULL) {
        size_t len = strlen(input_text);
        if (len > EIECTL_INPUT_MAX_BYTES) {
            fprintf(stderr, "eiectl infer: --input is larger than %zu bytes\n",
                    EIECTL_INPUT_MAX_BYTES);
            return 1;
        }
        parsed = eiectl_input_parse_json(input_text, len, "--input", &in, err, sizeof err);
    } else {
        parsed = eiectl_input_load(input_file != NULL ? input_file : "-", EIECTL_INPUT_AUTO,
                                   &in, err, sizeof err);
    }
    if (!parsed) {
        fprintf(stderr, "eiectl infer: %s\n", err);
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
    if (!eiectl_model_input_fetch("infer", &rpc, ro.addr, model, version, &mi))
        goto done;
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
    Inference__ModelInferResponse *r = (Inference__ModelInferResponse *)resp;
    eiectl_infer_output_t outs[EIECTL_INFER_MAX_OUTPUTS];
    size_t nouts;
    if (!eiectl_infer_response_decode(r, in.rows, outs, &nouts, err, sizeof err)) {
        fprintf(stderr, "eiectl infer: %s: model '%s': %s\n", ro.addr, model, err);
        goto done;
    }
    if (json)
        eiectl_infer_print_json(stdout, r, outs, nouts, top_k);
    else
        eiectl_infer_print_text(stdout, outs, nouts, top_k);
    eiectl_infer_outputs_free(outs, nouts);
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    if (have_req)
        eiectl_infer_request_free(&req);
    eiectl_rpc_close(&rpc);
    eiectl_input_free(&in);
    return rc;
}
