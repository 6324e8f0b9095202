/*
 * eie/onnx.h - ONNX import and export.
 *
 * Two imports. eie_onnx_import_graph_* turns an ONNX graph into a graph
 * model builder (eie/model.h) exactly: names, datatypes and full shapes of
 * the graph inputs and outputs kept, every weight kept bit for bit (a
 * codebook where a layer's nonzeros take at most 255 distinct values, else
 * the exact values), BatchNormalization folded into the layer before it.
 * eie_onnx_import_* turns a chain of fully connected layers into an
 * eie_mlp_t (eie/train.h) for training and compression. Both refuse
 * anything else with a message naming the node, its op type and the
 * attribute. Every size the file controls is bounded, so a hostile file
 * gets an error, never a crash.
 *
 *     eie_builder_t *b = NULL;  eie_error_t err;
 *     if (eie_onnx_import_graph_file("lenet.onnx", NULL, &b, &err) ||
 *         eie_builder_write_file(b, "lenet.eie", &err))
 *         fprintf(stderr, "%s\n", err.msg);
 *     eie_builder_free(b);
 */
#ifndef EIE_ONNX_H
#define EIE_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "eie/model.h"
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

/* A symbolic dimension of the graph inputs given a size at import (as
 * onnxruntime's free dimension overrides): every input dimension named name
 * becomes value. eie keeps only the batch (dimension 0) variable. */
typedef struct eie_onnx_dim {
    const char *name;
    int64_t value; /* >= 1 */
} eie_onnx_dim_t;

/* Most dimension sizes one import takes. */
#define EIE_ONNX_MAX_DIMS 16

typedef struct eie_onnx_opts {
    const eie_onnx_binding_t *bindings; /* may be NULL */
    size_t n_bindings;
    const eie_onnx_dim_t *dims;         /* graph import; may be NULL */
    size_t n_dims;                      /* <= EIE_ONNX_MAX_DIMS */
    const char *model_name;             /* graph import: the model's name; NULL: from the
                                           file name ("model" from memory) */
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

/*
 * Imports a serialised ModelProto as a graph (format version 2): ops Gemm,
 * MatMul, Add, Conv (2-D), MaxPool, AveragePool, GlobalAveragePool,
 * BatchNormalization (folded), Concat, Relu, Sigmoid, Tanh, Softmax,
 * Flatten, Reshape, Squeeze, Unsqueeze, Identity, Dropout, Constant,
 * Transpose of a constant, and Shape with Gather, Unsqueeze and Concat of
 * its values (folded into a Reshape's target). opts may be NULL. The caller
 * owns *builder_out.
 */
eie_status_t eie_onnx_import_graph_memory(const void *data, size_t len,
                                          const eie_onnx_opts_t *opts,
                                          eie_builder_t **builder_out, eie_error_t *err);
/* Same from a file; the model is named after the file ("lenet" for lenet.onnx) unless
   opts->model_name is set. */
eie_status_t eie_onnx_import_graph_file(const char *path, const eie_onnx_opts_t *opts,
                                        eie_builder_t **builder_out, eie_error_t *err);

/*
 * Writes a model (either format version) as ONNX opset 13 with its tensor,
 * node and model names and full shapes: fc as Gemm (transB = 1), conv2d as
 * Conv, pools, Add, Concat, Flatten, Reshape and activations as their ops,
 * the weights decoded to dense float. Importing the result with the same
 * model name gives a byte-identical .eie. The caller frees *data_out.
 */
eie_status_t eie_onnx_export_model_memory(const eie_model_t *model, uint8_t **data_out,
                                          size_t *len_out, eie_error_t *err);
/* Same into a file (temporary name + rename). */
eie_status_t eie_onnx_export_model_file(const eie_model_t *model, const char *path,
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
