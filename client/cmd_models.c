/*
 * eiectl models, load, unload: Triton's repository extension
 * (RepositoryIndex, RepositoryModelLoad, RepositoryModelUnload).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "eiectl.h"
#include "remote.h"
#include "report.h"

/* Widest column the table pads to; longer names just push the line. */
#define MODELS_MAX_WIDTH 40

static void models_usage(FILE *out)
{
    fprintf(out, "usage: eiectl models [--ready] [--json] [--addr HOST:PORT] [--timeout S]\n"
                 "                     [--token-file FILE]\n\n"
                 "Lists the models of eied's repository (RepositoryIndex): name, version,\n"
                 "state and the reason of the state.\n\n"
                 "  -r, --ready            only the models ready to serve\n"
                 "  -j, --json             print {\"models\": [{name, version, state, reason}]}\n"
                 EIECTL_REMOTE_HELP);
}

static int width_of(const char *s, int w)
{
    int n = (int)strlen(s != NULL ? s : "");
    if (n > MODELS_MAX_WIDTH)
        n = MODELS_MAX_WIDTH;
    return n > w ? n : w;
}

int eiectl_cmd_models(int argc, char **argv)
{
    static const struct option opts[] = {
        EIECTL_REMOTE_LONG_OPTS,
        {"ready", no_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    eiectl_remote_opts_t ro;
    eiectl_remote_opts_init(&ro);
    bool json = false, ready = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "a:t:T:rjh", opts, NULL)) != -1) {
        int r = eiectl_remote_opt("models", opt, optarg, &ro);
        if (r == 2)
            return 2;
        if (r == 1)
            continue;
        switch (opt) {
        case 'r':
            ready = true;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            models_usage(stdout);
            return 0;
        default:
            models_usage(stderr);
            return 2;
        }
    }
    if (optind < argc)
        return eiectl_usage_error("models", "unexpected argument '%s'", argv[optind]);

    eiectl_rpc_t rpc;
    if (!eiectl_remote_open("models", &ro, &rpc))
        return 1;
    Inference__RepositoryIndexRequest req = INFERENCE__REPOSITORY_INDEX_REQUEST__INIT;
    req.ready = ready;
    ProtobufCMessage *resp = NULL;
    eiectl_rpc_status_t st;
    int rc = 1;
    if (!eiectl_rpc_call(&rpc, "/inference.GRPCInferenceService/RepositoryIndex", &req.base,
                         &inference__repository_index_response__descriptor, &resp, &st)) {
        eiectl_remote_print_error("models", ro.addr, &st);
        goto done;
    }
    Inference__RepositoryIndexResponse *r = (Inference__RepositoryIndexResponse *)resp;
    if (json) {
        fputs("{\"models\":[", stdout);
        for (size_t i = 0; i < r->n_models; i++) {
            const Inference__RepositoryIndexResponse__ModelIndex *m = r->models[i];
            fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
            eiectl_json_string(stdout, m->name);
            fputs(",\"version\":", stdout);
            eiectl_json_string(stdout, m->version);
            fputs(",\"state\":", stdout);
            eiectl_json_string(stdout, m->state);
            fputs(",\"reason\":", stdout);
            eiectl_json_string(stdout, m->reason);
            fputc('}', stdout);
        }
        fputs("]}\n", stdout);
    } else {
        int wn = 4, wv = 7, ws = 5;
        for (size_t i = 0; i < r->n_models; i++) {
            wn = width_of(r->models[i]->name, wn);
            wv = width_of(r->models[i]->version, wv);
            ws = width_of(r->models[i]->state, ws);
        }
        printf("%-*s  %-*s  %-*s  %s\n", wn, "NAME", wv, "VERSION", ws, "STATE", "REASON");
        for (size_t i = 0; i < r->n_models; i++) {
            const Inference__RepositoryIndexResponse__ModelIndex *m = r->models[i];
            eiectl_print_cell(stdout, m->name, wn + 2);
            eiectl_print_cell(stdout, m->version, wv + 2);
            eiectl_print_cell(stdout, m->state, ws + 2);
            eiectl_print_cell(stdout, m->reason, 0);
            fputc('\n', stdout);
        }
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    eiectl_rpc_close(&rpc);
    return rc;
}

static void load_usage(FILE *out, const char *cmd)
{
    bool load = strcmp(cmd, "load") == 0;
    fprintf(out, "usage: eiectl %s NAME [--addr HOST:PORT] [--timeout S] [--token-file FILE]\n\n"
                 "%s\n\n" EIECTL_REMOTE_HELP
                 "\nExit status: 0 success, 1 failure, 2 usage error.\n",
            cmd,
            load ? "Asks eied to load (or reload) model NAME from its repository\n"
                   "(RepositoryModelLoad); returns when the server has answered."
                 : "Asks eied to unload model NAME (RepositoryModelUnload); requests in\n"
                   "flight finish on the old weights.");
}

/* load and unload differ only in the method and the reply type. */
static int load_or_unload(const char *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        EIECTL_REMOTE_LONG_OPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool load = strcmp(cmd, "load") == 0;
    eiectl_remote_opts_t ro;
    eiectl_remote_opts_init(&ro);
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "a:t:T:h", opts, NULL)) != -1) {
        int r = eiectl_remote_opt(cmd, opt, optarg, &ro);
        if (r == 2)
            return 2;
        if (r == 1)
            continue;
        if (opt == 'h') {
            load_usage(stdout, cmd);
            return 0;
        }
        load_usage(stderr, cmd);
        return 2;
    }
    if (optind >= argc)
        return eiectl_usage_error(cmd, "the model NAME is required");
    if (optind + 1 < argc)
        return eiectl_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    const char *name = argv[optind];
    if (name[0] == '\0')
        return eiectl_usage_error(cmd, "the model NAME is empty");

    eiectl_rpc_t rpc;
    if (!eiectl_remote_open(cmd, &ro, &rpc))
        return 1;
    ProtobufCMessage *resp = NULL;
    eiectl_rpc_status_t st;
    bool ok;
    if (load) {
        Inference__RepositoryModelLoadRequest req = INFERENCE__REPOSITORY_MODEL_LOAD_REQUEST__INIT;
        req.model_name = (char *)name;
        ok = eiectl_rpc_call(&rpc, "/inference.GRPCInferenceService/RepositoryModelLoad",
                             &req.base, &inference__repository_model_load_response__descriptor,
                             &resp, &st);
    } else {
        Inference__RepositoryModelUnloadRequest req =
            INFERENCE__REPOSITORY_MODEL_UNLOAD_REQUEST__INIT;
        req.model_name = (char *)name;
        ok = eiectl_rpc_call(&rpc, "/inference.GRPCInferenceService/RepositoryModelUnload",
                             &req.base, &inference__repository_model_unload_response__descriptor,
                             &resp, &st);
    }
    if (ok) {
        printf("%s: ", load ? "loaded" : "unloaded");
        eiectl_print_cell(stdout, name, 0);
        fputc('\n', stdout);
        protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        eiectl_remote_print_error(cmd, ro.addr, &st);
    }
    eiectl_rpc_close(&rpc);
    return ok ? 0 : 1;
}

int eiectl_cmd_load(int argc, char **argv)
{
    return load_or_unload("load", argc, argv);
}

int eiectl_cmd_unload(int argc, char **argv)
{
    return load_or_unload("unload", argc, argv);
}
