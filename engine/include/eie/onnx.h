/*
 * eie/onnx.h - ONNX import and export of fully connected networks.
 *
 * Import turns a chain of Gemm / MatMul(+Add) / Relu / Sigmoid / Tanh /
 * Softmax / Flatten / Reshape-to-2-D / Identity / Dropout / Constant nodes
 * into an eie_mlp_t (eie/train.h); anything else is refused with a message
 * naming the node, its op type and what is supported. Every size the file
 * controls is bounded, so a hostile file gets an error, never a crash.
 *
 *     eie_mlp_t *net;  eie_onnx_info_t info;  eie_error_t err;
 *     if (eie_onnx_import_file("lenet.onnx", NULL, &net, &info, &err))
 *         fprintf(stderr, "%s\n", err.msg);
 *     eie_onnx_export_file(net, "lenet", "input", "output", "copy.onnx", &err);
 */
#ifndef EIE_ONNX_H
#define EIE_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "eie/status.h"
#include "eie/train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest rank and element count of one tensor; largest ONNX file read. */
#define EIE_ONNX_MAX_RANK     8
#define EIE_ONNX_MAX_ELEMENTS (1ull << 28)
#define EIE_ONNX_MAX_FILE     (1ull << 31)
#define EIE_ONNX_MAX_NODES    4096

/* A float tensor read from a serialised TensorProto. */
typedef struct eie_onnx_tensor {
    char name[128];
    uint32_t rank;
    int64_t dims[EIE_ONNX_MAX_RANK];
    size_t count; /* product of dims */
    float *data;  /* count floats */
} eie_onnx_tensor_t;

/* Parses a serialised TensorProto (float or double, raw or typed). The caller owns *tensor_out. */
eie_status_t eie_onnx_tensor_load_memory(const void *data, size_t len,
                                         eie_onnx_tensor_t **tensor_out, eie_error_t *err);
/* Same from a .pb file. */
eie_status_t eie_onnx_tensor_load_file(const char *path, eie_onnx_tensor_t **tensor_out,
                                       eie_error_t *err);
/* Frees a tensor; NULL is fine. */
void eie_onnx_tensor_free(eie_onnx_tensor_t *tensor);

/* A graph input given a constant value at import (weights passed as inputs). */
typedef struct eie_onnx_binding {
    const char *name;
    const eie_onnx_tensor_t *tensor;
} eie_onnx_binding_t;

typedef struct eie_onnx_opts {
    const eie_onnx_binding_t *bindings; /* may be NULL */
    size_t n_bindings;
} eie_onnx_opts_t;

/* What the importer learnt about the model besides the network. */
typedef struct eie_onnx_info {
    int64_t ir_version;
    int64_t opset;          /* of the default domain */
    char producer[64];
    char input_name[128];
    char output_name[128];
    int input_transposed;   /* the first Gemm had transA = 1: inputs arrive as (features, batch) */
    int64_t batch;          /* fixed batch size of the input, or -1 when symbolic */
} eie_onnx_info_t;

/* Imports a serialised ModelProto; opts and info_out may be NULL. The caller owns *mlp_out. */
eie_status_t eie_onnx_import_memory(const void *data, size_t len, const eie_onnx_opts_t *opts,
                                    eie_mlp_t **mlp_out, eie_onnx_info_t *info_out,
                                    eie_error_t *err);
/* Same from a file (at most EIE_ONNX_MAX_FILE bytes). */
eie_status_t eie_onnx_import_file(const char *path, const eie_onnx_opts_t *opts,
                                  eie_mlp_t **mlp_out, eie_onnx_info_t *info_out,
                                  eie_error_t *err);

/* Writes mlp as ONNX (opset 13, dense Gemm with transB = 1) into a malloc'd buffer the caller frees. */
eie_status_t eie_onnx_export_memory(const eie_mlp_t *mlp, const char *graph_name,
                                    const char *input_name, const char *output_name,
                                    uint8_t **data_out, size_t *len_out, eie_error_t *err);
/* Same into a file (temporary name + rename). */
eie_status_t eie_onnx_export_file(const eie_mlp_t *mlp, const char *graph_name,
                                  const char *input_name, const char *output_name,
                                  const char *path, eie_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
