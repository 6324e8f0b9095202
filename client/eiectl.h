/*
 * eiectl.h - the subcommands of eiectl. Each lives in its own cmd_<name>.c
 * and takes the arguments after its name (argv[0] is the command name).
 * A command returns the process exit status: 0 success, 1 failure,
 * 2 usage error.
 */
#ifndef EIECTL_H
#define EIECTL_H

#include <stdio.h>

#include "report.h"

typedef struct eiectl_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} eiectl_cmd_t;

/* Remote commands (talk to eied). */
int eiectl_cmd_health(int argc, char **argv);
/* ModelInfer of rows from --input, --input-file or stdin. */
int eiectl_cmd_infer(int argc, char **argv);
/* RepositoryIndex as a table or JSON. */
int eiectl_cmd_models(int argc, char **argv);
/* ModelMetadata of one model. */
int eiectl_cmd_metadata(int argc, char **argv);
/* ModelStatistics as a table or JSON. */
int eiectl_cmd_stats(int argc, char **argv);
/* RepositoryModelLoad of one model. */
int eiectl_cmd_load(int argc, char **argv);
/* RepositoryModelUnload of one model. */
int eiectl_cmd_unload(int argc, char **argv);
/* Concurrent ModelInfer or health Check load with latency percentiles. */
int eiectl_cmd_bench(int argc, char **argv);

/* Local commands (engine work). */
int eiectl_cmd_sign(int argc, char **argv);
int eiectl_cmd_verify(int argc, char **argv);
int eiectl_cmd_inspect(int argc, char **argv);
int eiectl_cmd_simulate(int argc, char **argv);
int eiectl_cmd_train(int argc, char **argv);
int eiectl_cmd_compress(int argc, char **argv);
int eiectl_cmd_eval(int argc, char **argv);
int eiectl_cmd_export(int argc, char **argv);
int eiectl_cmd_import(int argc, char **argv);

/* Progress callback for eie_train: a status line on a terminal, nothing when stderr is piped. */
void eiectl_train_progress(void *user, const char *stage, unsigned epoch, unsigned epochs,
                           size_t done, size_t total, double loss);
/* Loads a .onnx or .eie file (by extension) as a dense network. The caller owns *mlp_out. */
struct eie_mlp;
int eiectl_load_network(const char *cmd, const char *path, struct eie_mlp **mlp_out);
/* eiectl simulate --structure: measures eie_sim_bench_structure_t on trained networks. */
int eiectl_structure(const char *model, const char *data, uint32_t limit);


/* True if argv has -h or --help. */
int eiectl_wants_help(int argc, char **argv);

#endif
