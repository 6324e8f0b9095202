/*
 * eiectl - the one CLI: remote commands talk to eied over gRPC, local
 * commands run the engine in-process. Each command is a file cmd_<name>.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "eie/eie.h"
#include "eiectl.h"

static const eiectl_cmd_t commands[] = {
    {"health", "ask a daemon whether it is serving (exit 0 only on SERVING)", eiectl_cmd_health},
    {"infer", "run one inference request on a served model", eiectl_cmd_infer},
    {"models", "list the daemon's models and their state", eiectl_cmd_models},
    {"metadata", "show a model's inputs, outputs and compression properties", eiectl_cmd_metadata},
    {"stats", "show per-model request counts and queue/compute times", eiectl_cmd_stats},
    {"load", "ask the daemon to load or reload a model", eiectl_cmd_load},
    {"unload", "ask the daemon to unload a model", eiectl_cmd_unload},
    {"bench", "load-test ModelInfer or health Check (requests/s, latency percentiles)", eiectl_cmd_bench},
    {"inspect", "print a .eie model: layers, density, bits, bytes, checksum", eiectl_cmd_inspect},
    {"sign", "write a detached Ed25519 signature of a .eie model", eiectl_cmd_sign},
    {"verify", "check a model's detached Ed25519 signature", eiectl_cmd_verify},
    {"simulate", "run a model on the simulated EIE accelerator: cycles, energy", eiectl_cmd_simulate},
    {"train", "train a dense FC network on an IDX dataset and write ONNX", eiectl_cmd_train},
    {"import", "convert an ONNX model to .eie exactly: names, shapes, every weight", eiectl_cmd_import},
    {"compress", "prune, quantize and Huffman-code an ONNX model into .eie", eiectl_cmd_compress},
    {"eval", "top-1, top-5 and per-class accuracy of a .onnx or .eie model", eiectl_cmd_eval},
    {"export", "write a .eie model back to ONNX as dense Gemm layers", eiectl_cmd_export},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: eiectl COMMAND [OPTIONS]\n\n"
                 "Serve, inspect and make deep-compressed neural networks.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'eiectl COMMAND --help' for a command's options.\n"
                 "  --version   print the version\n");
}

int eiectl_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("eiectl %s\n", EIE_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "eiectl: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
