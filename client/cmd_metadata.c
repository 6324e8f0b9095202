/* eiectl metadata: ModelMetadata of one model, compression properties included. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "eiectl.h"
#include "remote.h"
#include "report.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: eiectl metadata --model NAME [--version V] [--json] [--addr HOST:PORT]\n"
                 "                       [--timeout S] [--token-file FILE]\n\n"
                 "Prints a model's metadata (ModelMetadata): versions, platform, input and\n"
                 "output tensors, and the properties eied reports (compression facts).\n\n"
                 "  -m, --model NAME       the model (required)\n"
                 "  -V, --version V        one version of it\n"
                 "  -j, --json             print the metadata as one JSON object\n"
                 EIECTL_REMOTE_HELP);
}

static void print_tensors_text(const char *title,
                               Inference__ModelMetadataResponse__TensorMetadata **t, size_t n)
{
    printf("%s:\n", title);
    for (size_t i = 0; i < n; i++) {
        fputs("  ", stdout);
        eiectl_print_cell(stdout, t[i]->name, 0);
        fputc(' ', stdout);
        eiectl_print_cell(stdout, t[i]->datatype, 0);
        fputs(" [", stdout);
        for (size_t d = 0; d < t[i]->n_shape; d++)
            printf("%s%" PRId64, d ? ", " : "", t[i]->shape[d]);
        fputs("]\n", stdout);
    }
}

static void print_tensors_json(Inference__ModelMetadataResponse__TensorMetadata **t, size_t n)
{
    fputc('[', stdout);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        eiectl_json_string(stdout, t[i]->name);
        fputs(",\"datatype\":", stdout);
        eiectl_json_string(stdout, t[i]->datatype);
        fputs(",\"shape\":[", stdout);
        for (size_t d = 0; d < t[i]->n_shape; d++)
            printf("%s%" PRId64, d ? "," : "", t[i]->shape[d]);
        fputs("]}", stdout);
    }
    fputc(']', stdout);
}

static void print_metadata(const Inference__ModelMetadataResponse *m, bool json)
{
    if (json) {
        fputs("{\"name\":", stdout);
        eiectl_json_string(stdout, m->name);
        fputs(",\"versions\":[", stdout);
        for (size_t i = 0; i < m->n_versions; i++) {
            fputs(i ? "," : "", stdout);
            eiectl_json_string(stdout, m->versions[i]);
        }
        fputs("],\"platform\":", stdout);
        eiectl_json_string(stdout, m->platform);
        fputs(",\"inputs\":", stdout);
        print_tensors_json(m->inputs, m->n_inputs);
        fputs(",\"outputs\":", stdout);
        print_tensors_json(m->outputs, m->n_outputs);
        fputs(",\"properties\":{", stdout);
        for (size_t i = 0; i < m->n_properties; i++) {
            fputs(i ? "," : "", stdout);
            eiectl_json_string(stdout, m->properties[i]->key);
            fputc(':', stdout);
            eiectl_json_string(stdout, m->properties[i]->value);
        }
        fputs("}}\n", stdout);
        return;
    }
    fputs("name: ", stdout);
    eiectl_print_cell(stdout, m->name, 0);
    fputs("\nversions:", stdout);
    for (size_t i = 0; i < m->n_versions; i++) {
        fputc(' ', stdout);
        eiectl_print_cell(stdout, m->versions[i], 0);
    }
    fputs("\nplatform: ", stdout);
    eiectl_print_cell(stdout, m->platform, 0);
    fputc('\n', stdout);
    print_tensors_text("inputs", m->inputs, m->n_inputs);
    print_tensors_text("outputs", m->outputs, m->n_outputs);
    printf("properties:\n");
    for (size_t i = 0; i < m->n_properties; i++) {
        fputs("  ", stdout);
        eiectl_print_cell(stdout, m->properties[i]->key, 0);
        fputs(" = ", stdout);
        eiectl_print_cell(stdout, m->properties[i]->value, 0);
        fputc('\n', stdout);
    }
}

int eiectl_cmd_metadata(int argc, char **argv)
{
    eiectl_remote_opts_t ro;
    eiectl_model_opts_t mo;
    int status = eiectl_model_opts_parse("metadata", argc, argv, usage, &ro, &mo);
    if (status >= 0)
        return status;
    const char *model = mo.model, *version = mo.version;
    bool json = mo.json;
    if (optind < argc)
        return eiectl_usage_error("metadata", "unexpected argument '%s'", argv[optind]);
    if (model == NULL || model[0] == '\0')
        return eiectl_usage_error("metadata", "--model is required");

    eiectl_rpc_t rpc;
    if (!eiectl_remote_open("metadata", &ro, &rpc))
        return 1;
    Inference__ModelMetadataRequest req = INFERENCE__MODEL_METADATA_REQUEST__INIT;
    req.name = (char *)model;
    req.version = (char *)version;
    ProtobufCMessage *resp = NULL;
    eiectl_rpc_status_t st;
    int rc = 1;
    if (eiectl_rpc_call(&rpc, "/inference.GRPCInferenceService/ModelMetadata", &req.base,
                        &inference__model_metadata_response__descriptor, &resp, &st)) {
        print_metadata((Inference__ModelMetadataResponse *)resp, json);
        rc = fflush(stdout) == 0 ? 0 : 1;
        protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        eiectl_remote_print_error("metadata", ro.addr, &st);
    }
    eiectl_rpc_close(&rpc);
    return rc;
}
