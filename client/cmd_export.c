/*
 * eiectl export: a .eie model decoded back to ONNX. A graph model keeps its
 * tensor, node and model names and full shapes (importing the export gives
 * the same .eie); a version-1 chain becomes dense Gemm layers.
 */
#include <stdio.h>
#include <string.h>

#include "eie/eie.h"
#include "eie/onnx.h"
#include "eiectl.h"

int eiectl_cmd_export(int argc, char **argv)
{
    if (eiectl_wants_help(argc, argv)) {
        printf("usage: eiectl export MODEL.eie -o OUT.onnx\n\n"
               "Writes the decompressed model as ONNX (opset 13, weights expanded to dense\n"
               "float) so it can be checked in any ONNX runtime. A graph model keeps its\n"
               "names and shapes: 'eiectl import' of the export gives the same .eie. A\n"
               "version-1 model becomes dense Gemm layers between 'input' and 'output'.\n");
        return 0;
    }
    const char *in = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) {
            if (i + 1 >= argc)
                return eiectl_usage_error("export", "-o needs a value");
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            return eiectl_usage_error("export", "unknown option '%s'", argv[i]);
        } else {
            in = argv[i];
        }
    }
    if (in == NULL || out == NULL)
        return eiectl_usage_error("export", "MODEL.eie and -o OUT.onnx are required");
    eie_error_t err;
    eie_model_t *m;
    if (eie_model_load_file(in, NULL, &m, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl export: %s\n", err.msg);
        return 1;
    }
    if (eie_model_format_version(m) >= 2) {
        eie_status_t st = eie_onnx_export_model_file(m, out, &err);
        eie_model_free(m);
        if (st != EIE_STATUS_OK) {
            fprintf(stderr, "eiectl export: %s\n", err.msg);
            return 1;
        }
        printf("wrote %s\n", out);
        return 0;
    }
    eie_model_free(m);
    eie_mlp_t *net;
    if (eiectl_load_network("export", in, &net) != 0)
        return 1;
    int rc = 0;
    if (eie_onnx_export_file(net, "eie", "input", "output", out, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "eiectl export: %s\n", err.msg);
        rc = 1;
    } else {
        printf("wrote %s\n", out);
    }
    eie_mlp_free(net);
    return rc;
}
