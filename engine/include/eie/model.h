/*
 * eie/model.h - .eie model files: load (with limits), describe, build, write.
 *
 * A model is an immutable, validated description of a network: a DAG of
 * named tensors and nodes (layers) with named graph inputs and outputs.
 * Sparse layers (fc, conv2d) are stored the Deep Compression way: nonzeros
 * column by column as (code, zero-run) pairs, Huffman coded, the values
 * either shared (a codebook of 2^b floats; code 0 is always 0.0 and doubles
 * as the EIE filler) or exact (each nonzero's own float). Version-1 files
 * (a chain of fc and activation layers) load as a chain graph. The byte
 * layout is documented in engine/FORMAT.md.
 *
 *     eie_error_t err;
 *     eie_model_t *m;
 *     if (eie_model_load_file("lenet.eie", NULL, &m, &err) != EIE_STATUS_OK)
 *         fprintf(stderr, "%s\n", err.msg);
 */
#ifndef EIE_MODEL_H
#define EIE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "eie/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eie_model eie_model_t;

/* Node (layer) kinds; the values are the kind numbers of the file format. */
typedef enum {
    EIE_LAYER_FC = 1,             /* y = W x + b, W sparse ([N,...,cols] -> [N,...,rows]) */
    EIE_LAYER_ACTIVATION = 2,     /* element-wise, or softmax over an axis */
    EIE_LAYER_CONV2D = 3,         /* [N,C,H,W] -> [N,Cout,Ho,Wo], W sparse Cout x (C/groups*kh*kw) */
    EIE_LAYER_MAXPOOL2D = 4,      /* [N,C,H,W] -> [N,C,Ho,Wo] */
    EIE_LAYER_AVGPOOL2D = 5,      /* [N,C,H,W] -> [N,C,Ho,Wo] */
    EIE_LAYER_GLOBAL_AVGPOOL = 6, /* [N,C,H,W] -> [N,C,1,1] */
    EIE_LAYER_ADD = 7,            /* element-wise sum of two tensors of one shape */
    EIE_LAYER_CONCAT = 8,         /* joins tensors along an axis (>= 1) */
    EIE_LAYER_FLATTEN = 9,        /* [N,d1,...] -> [N,d1*...] */
    EIE_LAYER_RESHAPE = 10,       /* same elements, the shape of its output tensor */
    EIE_LAYER_LSTM = 11,          /* [T,N,I] -> [T,1,N,H] (+ [1,N,H] states), W sparse 4H x (I+H) */
} eie_layer_kind_t;

/* Name of a node kind ("conv2d"); NULL for an unknown value. */
const char *eie_layer_kind_name(eie_layer_kind_t kind);

/* How a sparse layer stores its nonzero values. */
typedef enum {
    EIE_STORAGE_SHARED = 0, /* a codebook of 2^b floats, b = 1..8; entries hold codes */
    EIE_STORAGE_EXACT = 1,  /* every nonzero's own float32, in entry order */
} eie_storage_t;

/* Datatypes of graph tensors; the values are the file's. */
typedef enum {
    EIE_DTYPE_FP32 = 1,
} eie_dtype_t;

/* Name of a datatype as KServe spells it ("FP32"); NULL for an unknown value. */
const char *eie_dtype_name(eie_dtype_t dtype);

/* Most dimensions a tensor has. */
#define EIE_MAX_RANK 8u

/*
 * A full tensor shape: dims[0] is the batch dimension, -1 for any batch size
 * (or a fixed size >= 1); dims[1..rank) are fixed sizes >= 1. One sample is
 * the row-major (C order) block of dims[1] x ... x dims[rank-1] floats, so a
 * batch is [N, ...] row-major, NCHW for images.
 */
typedef struct eie_shape {
    uint32_t rank; /* 1..EIE_MAX_RANK */
    int64_t dims[EIE_MAX_RANK];
} eie_shape_t;

/* Elements of one sample of shape s: the product of dims[1..rank), 1 for rank 1. */
uint64_t eie_shape_sample_elements(const eie_shape_t *s);

/* A tensor of the graph; name points into the model (or builder) that filled it. */
typedef struct eie_tensor_info {
    const char *name;
    eie_dtype_t dtype;
    eie_shape_t shape;
} eie_tensor_info_t;

/* Convolution attributes (ONNX Conv's, 2-D). Output size per axis:
   floor((in + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride) + 1. */
typedef struct eie_conv2d_params {
    uint32_t kernel_h, kernel_w;               /* 1..max_dim */
    uint32_t stride_h, stride_w;               /* >= 1 */
    uint32_t pad_top, pad_left, pad_bottom, pad_right;
    uint32_t dilation_h, dilation_w;           /* >= 1 */
    uint32_t groups;                           /* >= 1, divides C and Cout */
} eie_conv2d_params_t;

/* Pooling attributes (ONNX MaxPool/AveragePool's, 2-D, no dilation); see FORMAT.md
   for the ceil-mode rule and the divisor of an average. */
typedef struct eie_pool2d_params {
    uint32_t kernel_h, kernel_w;
    uint32_t stride_h, stride_w;
    uint32_t pad_top, pad_left, pad_bottom, pad_right; /* each < its kernel size */
    uint32_t ceil_mode;         /* 0 floor, 1 ceil */
    uint32_t count_include_pad; /* avgpool2d: 1 divides by the padded window; maxpool2d: 0 */
} eie_pool2d_params_t;

typedef enum {
    EIE_ACT_IDENTITY = 0,
    EIE_ACT_RELU = 1,
    EIE_ACT_SIGMOID = 2,
    EIE_ACT_TANH = 3,
    EIE_ACT_SOFTMAX = 4,
} eie_act_t;

/* Name of an activation ("relu"); NULL for an unknown value. */
const char *eie_act_name(eie_act_t act);

/* Limits on what a file may ask for; every size a file controls is bounded. */
typedef struct eie_limits {
    uint64_t max_file_bytes;  /* whole file */
    uint32_t max_dim;         /* rows or columns of one layer; any tensor dimension */
    uint64_t max_weights;     /* rows x cols of one layer */
    uint32_t max_layers;      /* nodes of a graph */
    uint32_t max_tensors;     /* tensors of a graph (inputs of one node included) */
    uint64_t max_elements;    /* elements of one sample of any tensor */
} eie_limits_t;

/* The defaults: 1 GiB files, 1<<20 rows/cols/dims, 1<<30 weights a layer,
   256 layers, 1024 tensors, 1<<26 elements a sample of a tensor. A field
   left 0 takes its default. */
eie_limits_t eie_limits_default(void);
/* limits with each field of 0 set to its default; NULL: the defaults. */
eie_limits_t eie_limits_or_default(const eie_limits_t *limits);

/* Loads and validates a file; limits may be NULL for the defaults. The caller owns *model_out. */
eie_status_t eie_model_load_file(const char *path, const eie_limits_t *limits,
                                 eie_model_t **model_out, eie_error_t *err);

/* Same from a buffer (not retained). */
eie_status_t eie_model_load_memory(const void *data, size_t len, const eie_limits_t *limits,
                                   eie_model_t **model_out, eie_error_t *err);

/* Frees a model; NULL is fine. */
void eie_model_free(eie_model_t *model);

/* Strings owned by the model. */
const char *eie_model_name(const eie_model_t *model);
const char *eie_model_description(const eie_model_t *model);
/* Name of graph input 0 / output 0 (the only ones of a version-1 model); owned by the model. */
const char *eie_model_input_name(const eie_model_t *model);
const char *eie_model_output_name(const eie_model_t *model);
/* Elements of one sample of graph input 0 / output 0 (a version-1 model's input_dim/output_dim). */
uint32_t eie_model_input_dim(const eie_model_t *model);
uint32_t eie_model_output_dim(const eie_model_t *model);
/* Nodes (layers) of the graph, in the file's (topological) order. */
size_t eie_model_layer_count(const eie_model_t *model);
/* The file's format version: 1 (a chain) or 2 (a graph). */
uint32_t eie_model_format_version(const eie_model_t *model);

/* ---- the graph -------------------------------------------------------- */

/* Tensors of the graph; indices 0..count-1 are what node infos refer to. */
size_t eie_model_tensor_count(const eie_model_t *model);
/* Describes tensor t; the name is owned by the model. */
eie_status_t eie_model_tensor_info(const eie_model_t *model, size_t t, eie_tensor_info_t *info_out);
/* Graph inputs, in the file's order (the order eie_net_run_multi takes them). */
size_t eie_model_input_count(const eie_model_t *model);
/* Describes graph input i; the name is owned by the model. */
eie_status_t eie_model_input_info(const eie_model_t *model, size_t i, eie_tensor_info_t *info_out);
/* 1 if graph input i is an lstm's initial state ([1,N,H]): one sample a run, whatever
   the steps of the sequence; 0 otherwise. */
int eie_model_input_is_state(const eie_model_t *model, size_t i);
/* Tensor index of graph input i; SIZE_MAX if i is out of range. */
size_t eie_model_input_tensor(const eie_model_t *model, size_t i);
/* Graph outputs, in the file's order. */
size_t eie_model_output_count(const eie_model_t *model);
/* 1 if graph output i is an lstm's final state (Y_h, Y_c: [1,N,H]): one sample a run,
   whatever the steps of the sequence; 0 otherwise. */
int eie_model_output_is_state(const eie_model_t *model, size_t i);
/* Describes graph output i; the name is owned by the model. */
eie_status_t eie_model_output_info(const eie_model_t *model, size_t i,
                                   eie_tensor_info_t *info_out);
/* Tensor index of graph output i; SIZE_MAX if i is out of range. */
size_t eie_model_output_tensor(const eie_model_t *model, size_t i);
/* Index of the tensor called name, or -1 if there is none. */
long eie_model_find_tensor(const eie_model_t *model, const char *name);
/* Name of node i (may be ""), owned by the model; NULL if i is out of range. */
const char *eie_model_layer_name(const eie_model_t *model, size_t i);
/* SHA-256 of the file's bytes before the checksum trailer, as 64 hex chars + NUL. */
const char *eie_model_checksum_hex(const eie_model_t *model);
/* Size in bytes of the file the model was loaded from. */
uint64_t eie_model_file_bytes(const eie_model_t *model);

/* "Sparse layer" below means an FC, CONV2D or LSTM node: each holds a rows x cols matrix. */
typedef struct eie_layer_info {
    eie_layer_kind_t kind;
    eie_act_t act;         /* ACTIVATION layers */
    uint32_t rows, cols;   /* sparse: outputs, inputs (CONV2D: Cout, C/groups*kh*kw) */
    uint32_t code_bits;    /* sparse: b, codebook has 2^b entries (EXACT: 1, see FORMAT.md) */
    uint64_t nnz;          /* sparse: nonzero weights (codes != 0) */
    uint64_t entries;      /* sparse: stored (code, run) entries, fillers included */
    uint64_t stream_bytes; /* sparse: bytes of the Huffman-coded streams in the file */
    uint64_t layer_bytes;  /* sparse: all bytes of the layer in the file (codebook, bias, tables) */
    double code_bits_huffman; /* sparse: average bits per code after Huffman */
    double run_bits_huffman;  /* sparse: average bits per zero-run after Huffman */
    /* Graph fields (version-1 models get the chain: layer i reads tensor i, writes i+1). */
    eie_storage_t storage;      /* sparse: SHARED or EXACT */
    int32_t axis;               /* ACTIVATION softmax, CONCAT: the axis (>= 1, of the full shape) */
    eie_conv2d_params_t conv;   /* CONV2D */
    eie_pool2d_params_t pool;   /* MAXPOOL2D, AVGPOOL2D */
    uint32_t hidden_size;       /* LSTM: H (rows = 4H, cols = I + H, rows unit-major) */
    uint32_t lstm_state[2];     /* LSTM: tensors of Y_h and Y_c, UINT32_MAX if not written */
    int lstm_initial[2];        /* LSTM: 1 if initial_h / initial_c is stored (else zeros) */
    uint32_t lstm_initial_input[2]; /* LSTM: the graph input (tensor) feeding initial_h /
                                       initial_c each run, UINT32_MAX if none */
    size_t n_inputs;            /* tensors the node reads */
    const uint32_t *inputs;     /* their tensor indices, owned by the model */
    uint32_t output;            /* the tensor index it writes */
} eie_layer_info_t;

/* Describes layer i (0-based). */
eie_status_t eie_model_layer_info(const eie_model_t *model, size_t i, eie_layer_info_t *info_out);

/* Sparse layer i's codebook (2^b floats, [0] == 0.0f), owned by the model; NULL if EXACT. */
const float *eie_model_fc_codebook(const eie_model_t *model, size_t i);
/* Sparse layer i's nonzero values (nnz floats in entry order), owned by the model; NULL if SHARED. */
const float *eie_model_fc_values(const eie_model_t *model, size_t i);
/* Sparse layer i's bias (rows floats), owned by the model. */
const float *eie_model_fc_bias(const eie_model_t *model, size_t i);
/* LSTM node i's stored initial state (which 0: h, 1: c; N x H floats, lane-major), owned
   by the model; NULL if the node starts from zeros or is no LSTM. */
const float *eie_model_lstm_initial(const eie_model_t *model, size_t i, int which);
/* Decodes sparse layer i (either storage) to dense row-major float weights (rows x cols). */
eie_status_t eie_model_fc_dense(const eie_model_t *model, size_t i, float *dense_out);
/* Decodes SHARED sparse layer i to row-major codes (rows x cols; 0 = pruned) into codes_out. */
eie_status_t eie_model_fc_codes(const eie_model_t *model, size_t i, uint8_t *codes_out);

/*
 * Building a model: the compressor and tests make models with this, and the
 * writer is the exact inverse of the reader. Two forms:
 *  - a chain (eie_builder_init, eie_builder_add_fc, eie_builder_add_activation),
 *    written as format version 1 exactly as before;
 *  - a graph (eie_builder_init_graph, eie_builder_add_input, eie_builder_add_node,
 *    eie_builder_add_output), written as format version 2. Tensors are named;
 *    a node reads tensors that exist already and creates its output tensor,
 *    whose shape the builder infers (nodes are added in topological order).
 * Graph calls on a chain builder (and the reverse) return INVALID_ARGUMENT.
 */
typedef struct eie_builder eie_builder_t;

/* Starts an empty chain model; strings are copied. The caller owns *builder_out. */
eie_status_t eie_builder_init(const char *name, const char *description, const char *input_name,
                              const char *output_name, eie_builder_t **builder_out,
                              eie_error_t *err);
void eie_builder_free(eie_builder_t *builder);

/*
 * Adds a fully connected layer of rows x cols. codes is row-major
 * (rows x cols), each < 2^code_bits, 0 meaning a pruned weight; codebook has
 * 2^code_bits floats with codebook[0] == 0.0f; bias has rows floats or is NULL
 * (zeros). All arrays are copied.
 */
eie_status_t eie_builder_add_fc(eie_builder_t *builder, uint32_t rows, uint32_t cols,
                                uint32_t code_bits, const float *codebook, const uint8_t *codes,
                                const float *bias, eie_error_t *err);

/* Adds an element-wise activation layer. */
eie_status_t eie_builder_add_activation(eie_builder_t *builder, eie_act_t act, eie_error_t *err);

/* Starts an empty graph model; strings are copied. The caller owns *builder_out. */
eie_status_t eie_builder_init_graph(const char *name, const char *description,
                                    eie_builder_t **builder_out, eie_error_t *err);

/* Adds a graph input tensor named name (unique, non-empty) of the given datatype and
   full shape (dims[0] -1 or >= 1, the rest >= 1); name and dims are copied. */
eie_status_t eie_builder_add_input(eie_builder_t *builder, const char *name, eie_dtype_t dtype,
                                   const eie_shape_t *shape, eie_error_t *err);

/* Marks the existing tensor called name as a graph output (in call order). */
eie_status_t eie_builder_add_output(eie_builder_t *builder, const char *name, eie_error_t *err);

/*
 * The weights of a sparse node (FC or CONV2D), a rows x cols matrix given
 * row-major; for CONV2D row co, column (ci * kernel_h + ky) * kernel_w + kx
 * (ONNX's [Cout, C/groups, kh, kw] weight, flattened per output channel).
 *   SHARED: codes (< 2^code_bits, 0 = pruned) and codebook (2^code_bits floats,
 *           codebook[0] == 0.0f), code_bits 1..8.
 *   EXACT:  values (0.0f or -0.0f = pruned; the rest kept bit for bit, finite).
 * bias: rows floats, or NULL for zeros. Everything is copied.
 */
typedef struct eie_weights {
    eie_storage_t storage;
    uint32_t code_bits;       /* SHARED */
    const float *codebook;    /* SHARED */
    const uint8_t *codes;     /* SHARED */
    const float *values;      /* EXACT */
    const float *bias;
} eie_weights_t;

/*
 * An LSTM node (ONNX LSTM, forward, default activations; engine/FORMAT.md
 * "LSTM"). Its weights are one 4H x (I + H) matrix: row 4j + g is gate g
 * (0 i, 1 o, 2 f, 3 c, ONNX's order) of hidden unit j, columns 0..I-1 its
 * W row, I..I+H-1 its R row; the bias is Wb + Rb per row.
 */
typedef struct eie_lstm_desc {
    uint32_t hidden_size;     /* H, 1..max_dim / 4 */
    const float *initial_h;   /* N x H floats (lane-major), or NULL for zeros */
    const float *initial_c;   /* same */
    const char *initial_h_input; /* or: a graph input [1,N,H] giving initial h each run */
    const char *initial_c_input; /* same for c */
    const char *output_h;     /* name of the Y_h tensor [1,N,H] to create, or NULL */
    const char *output_c;     /* name of the Y_c tensor; needs output_h */
} eie_lstm_desc_t;

/*
 * A node for eie_builder_add_node. Fields a kind does not use are ignored.
 *   FC:             inputs[0] of shape [N,cols] or [N,...,cols] (each vector along the
 *                   last axis); rows; weights (rows x cols).
 *   CONV2D:         inputs[0] [N,C,H,W]; rows = Cout; conv; weights
 *                   (Cout x C/groups*kernel_h*kernel_w).
 *   MAXPOOL2D, AVGPOOL2D: inputs[0] [N,C,H,W]; pool.
 *   GLOBAL_AVGPOOL, FLATTEN: inputs[0].
 *   ADD:            inputs[0], inputs[1] of one shape.
 *   CONCAT:         inputs[0..n_inputs) (2..max_tensors), equal but for axis; axis >= 1.
 *   RESHAPE:        inputs[0]; shape, the output's full shape (dims[0] as the input's).
 *   ACTIVATION:     inputs[0]; act; axis (SOFTMAX: 1..rank-1; ignored for others).
 *   LSTM:           inputs[0] [T,N,I]; rows = 4H; weights (4H x (I+H)); lstm. output
 *                   is Y [T,1,N,H].
 */
typedef struct eie_node_desc {
    eie_layer_kind_t kind;
    const char *name;               /* node name; NULL or "" for none */
    size_t n_inputs;
    const char *const *inputs;      /* names of existing tensors */
    const char *output;             /* name of the tensor it creates (unique, non-empty) */
    uint32_t rows;                  /* FC: outputs; CONV2D: output channels */
    eie_weights_t weights;          /* FC, CONV2D */
    eie_conv2d_params_t conv;       /* CONV2D */
    eie_pool2d_params_t pool;       /* MAXPOOL2D, AVGPOOL2D */
    eie_act_t act;                  /* ACTIVATION */
    int32_t axis;                   /* ACTIVATION (softmax), CONCAT */
    eie_shape_t shape;              /* RESHAPE */
    eie_lstm_desc_t lstm;           /* LSTM: rows = 4 * lstm.hidden_size */
} eie_node_desc_t;

/* Adds a node to a graph builder after checking it (shapes, weights, limits);
   the output tensor's shape is inferred. Everything in desc is copied. */
eie_status_t eie_builder_add_node(eie_builder_t *builder, const eie_node_desc_t *desc,
                                  eie_error_t *err);

/* Shape of the builder's tensor called name into shape_out; NOT_FOUND if there is none. */
eie_status_t eie_builder_tensor_shape(const eie_builder_t *builder, const char *name,
                                      eie_shape_t *shape_out, eie_error_t *err);

/* Serialises to a malloc'd buffer the caller frees. */
eie_status_t eie_builder_write_memory(const eie_builder_t *builder, uint8_t **data_out,
                                      size_t *len_out, eie_error_t *err);

/* Serialises to a file, atomically (temporary name + rename). */
eie_status_t eie_builder_write_file(const eie_builder_t *builder, const char *path,
                                    eie_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
