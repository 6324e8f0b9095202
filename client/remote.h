/*
 * remote.h - what the remote commands of eiectl share: the --addr,
 * --timeout, --token-file and TLS options (channel.h), opening a channel
 * with a bearer token, error lines, and the Open Inference Protocol messages of
 * ModelMetadata and ModelInfer (request building, reply checking).
 */
#ifndef EIECTL_REMOTE_H
#define EIECTL_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "channel.h"
#include "eie/status.h"
#include "inference.pb-c.h"
#include "rpc.h"

/* Largest token file read, and largest token. */
#define EIECTL_TOKEN_MAX_BYTES 4096
/* Most output tensors of one reply eiectl decodes. */
#define EIECTL_INFER_MAX_OUTPUTS 16
/* Longest tensor name eiectl keeps from metadata. */
#define EIECTL_NAME_MAX 256

/* The options every remote command takes. */
typedef struct eiectl_remote_opts {
    const char *addr;       /* host:port; --addr, else EIECTL_ADDR, else 127.0.0.1:8001 */
    double timeout_s;       /* deadline of each call */
    const char *token_file; /* NULL: no authorization header */
    eiectl_tls_opts_t tls;  /* --tls, --ca, --cert, --key, --server-name, ... */
} eiectl_remote_opts_t;

/* getopt_long entries of the common options; splice into a command's table. */
#define EIECTL_REMOTE_LONG_OPTS                                                                \
    {"addr", required_argument, NULL, 'a'}, {"timeout", required_argument, NULL, 't'},        \
        {"token-file", required_argument, NULL, 'T'}, EIECTL_TLS_LONG_OPTS

/* Help lines of the common options. */
#define EIECTL_REMOTE_HELP                                                                     \
    "  -a, --addr HOST:PORT   daemon address (default 127.0.0.1:8001)\n"                       \
    "  -t, --timeout SECONDS  deadline of each call (default 10)\n"                            \
    "  -T, --token-file FILE  send 'authorization: Bearer <first line of FILE>'\n"           \
    EIECTL_TLS_HELP

/* Defaults of the common options (EIECTL_ADDR and the TLS variables). */
void eiectl_remote_opts_init(eiectl_remote_opts_t *opts);

/*
 * Handles a common option (opt 'a', 't', 'T' or a TLS option). Returns 1 if handled, 0 if
 * opt is not a common one, 2 on a bad value (message printed).
 */
int eiectl_remote_opt(const char *cmd, int opt, const char *arg, eiectl_remote_opts_t *opts);

/* What the per-model remote commands (metadata, stats) take besides the common options. */
typedef struct eiectl_model_opts {
    const char *model;   /* --model; NULL if absent */
    const char *version; /* --version; "" if absent */
    bool json;           /* --json */
} eiectl_model_opts_t;

/*
 * Parses argv for such a command: the common options, --model, --version,
 * --json and --help. Returns -1 to go on (optind at the first operand), or the
 * exit status: 0 after --help (usage printed to stdout), 2 on a usage error.
 */
int eiectl_model_opts_parse(const char *cmd, int argc, char **argv, void (*usage)(FILE *out),
                            eiectl_remote_opts_t *ro, eiectl_model_opts_t *mo);

/* Parses seconds in (0, max]; plain numbers or with a unit (ms, s, m, h). */
bool eiectl_parse_seconds(const char *s, double max, double *seconds_out);

/*
 * Reads a bearer token: the first line of path, surrounding blanks trimmed,
 * at most EIECTL_TOKEN_MAX_BYTES, visible ASCII only. Writes a
 * NUL-terminated token into token_out (cap bytes). Errors: IO, LIMIT,
 * INVALID_ARGUMENT, with the file named in err.
 */
eie_status_t eiectl_token_read_file(const char *path, char *token_out, size_t cap,
                                    eie_error_t *err);

/*
 * Opens the channel (plaintext or TLS, files read and checked) and adds the
 * token, which is refused over plaintext to a non-loopback address unless
 * --insecure-token; prints "eiectl CMD: ..." and returns false on failure.
 */
bool eiectl_remote_open(const char *cmd, const eiectl_remote_opts_t *opts, eiectl_rpc_t *rpc);

/* Prints "eiectl CMD: ADDR: CODE: detail" to stderr. */
void eiectl_remote_print_error(const char *cmd, const char *addr, const eiectl_rpc_status_t *st);

/* What eiectl needs of a model's metadata to build a request. */
typedef struct eiectl_model_input {
    char name[EIECTL_NAME_MAX]; /* input tensor */
    size_t features;            /* values per row: the product of the shape past the batch */
    size_t rank;                /* the input's full shape: [B, features] is 2 */
    int64_t shape[8];
} eiectl_model_input_t;

/*
 * Finds the model's FP32 input of shape [B, features], [features] or
 * [B, d1, d2, ...] (a row is then one d1 x d2 x ... sample) in a
 * ModelMetadata reply; errors name the model, tensor and what is wrong
 * (UNSUPPORTED for an input eiectl cannot send, else INVALID_ARGUMENT).
 */
eie_status_t eiectl_model_input_from_metadata(const Inference__ModelMetadataResponse *md,
                                              eiectl_model_input_t *input_out, eie_error_t *err);

/* Asks the server for a model's metadata (*md_out: free with
 * protobuf_c_message_free_unpacked); prints errors as "eiectl CMD: ...". */
bool eiectl_model_metadata_fetch(const char *cmd, eiectl_rpc_t *rpc, const char *addr,
                                 const char *model, const char *version,
                                 Inference__ModelMetadataResponse **md_out);

/* Asks the server for metadata and extracts the input; prints errors as "eiectl CMD: ...". */
bool eiectl_model_input_fetch(const char *cmd, eiectl_rpc_t *rpc, const char *addr,
                              const char *model, const char *version,
                              eiectl_model_input_t *input_out);

/*
 * A ModelInferRequest with one FP32 input in raw_input_contents. The
 * struct points into itself: init it in place and do not copy it.
 */
typedef struct eiectl_infer_request {
    Inference__ModelInferRequest msg;
    Inference__ModelInferRequest__InferInputTensor input;
    Inference__ModelInferRequest__InferInputTensor *inputs[1];
    int64_t shape[8];
    ProtobufCBinaryData raw[1]; /* data malloc'd, little-endian float32 */
} eiectl_infer_request_t;

/* Fills req for rows x cols values; strings are borrowed. False if out of memory. */
bool eiectl_infer_request_init(eiectl_infer_request_t *req, const char *model,
                               const char *version, const char *id, const char *input_name,
                               const float *values, size_t rows, size_t cols);

/* Sends the input as [rows, shape[1], ..., shape[rank-1]] (an N-D model input) instead of
   [rows, cols]; the product of shape[1..] must be cols, rank <= 8. */
void eiectl_infer_request_set_shape(eiectl_infer_request_t *req, size_t rank,
                                    const int64_t *shape);

/* Frees what eiectl_infer_request_init allocated. */
void eiectl_infer_request_free(eiectl_infer_request_t *req);

/* One decoded FP32 output tensor: rows x cols values, data malloc'd. */
typedef struct eiectl_infer_output {
    const char *name; /* borrowed from the reply */
    size_t rows, cols;
    float *data;
} eiectl_infer_output_t;

/*
 * Decodes every output of a reply (raw_output_contents or
 * contents.fp32_contents) into outputs_out (EIECTL_INFER_MAX_OUTPUTS
 * entries); each must be FP32 with shape [rows, N] or [N] when rows is 1, or
 * [rows, d1, d2, ...] (N = d1 x d2 x ...). md (NULL: none) is the model's
 * metadata: an output it declares with a fixed leading dimension (an LSTM's
 * final state, [1, N, H]) has that many rows instead of the batch's.
 * Errors name the output and the mismatch. Free with eiectl_infer_outputs_free.
 */
eie_status_t eiectl_infer_response_decode(const Inference__ModelInferResponse *resp, size_t rows,
                                          const Inference__ModelMetadataResponse *md,
                                          eiectl_infer_output_t *outputs_out, size_t *count_out,
                                          eie_error_t *err);

/* Frees the data of n decoded outputs. */
void eiectl_infer_outputs_free(eiectl_infer_output_t *outputs, size_t n);

/* Prints outputs as text: one line of values per row, or with top_k > 0 a rank table. */
void eiectl_infer_print_text(FILE *out, const eiectl_infer_output_t *outputs, size_t n,
                             size_t top_k);

/* Prints the reply and its decoded outputs as one JSON object (with top-K lists if top_k > 0). */
void eiectl_infer_print_json(FILE *out, const Inference__ModelInferResponse *resp,
                             const eiectl_infer_output_t *outputs, size_t n, size_t top_k);

/* Writes an InferParameter's value as JSON. */
void eiectl_json_infer_parameter(FILE *out, const Inference__InferParameter *p);

/* Writes s to out with control characters replaced by '?', padded with spaces to width. */
void eiectl_print_cell(FILE *out, const char *s, int width);

#endif
