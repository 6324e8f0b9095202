/*
 * format.h - the in-memory model behind eie_model_t and eie_builder_t
 * (internal). See engine/FORMAT.md for the bytes on disk.
 */
#ifndef EIE_FORMAT_FORMAT_H
#define EIE_FORMAT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "eie/model.h"

#define EIE_FORMAT_MAGIC "EIEMODEL"
#define EIE_FORMAT_VERSION 1u       /* a chain of fc and activation layers */
#define EIE_FORMAT_VERSION_GRAPH 2u /* a graph of named tensors and nodes */
#define EIE_FORMAT_DTYPE_FP32 1u
#define EIE_FORMAT_MAX_STRING 4096u
#define EIE_FORMAT_CHECKSUM_BYTES 32u
/* EIE sec. III-B: the zero-run field of an entry is 4 bits. */
#define EIE_RUN_MAX 15u

/* A fully connected layer as stored: entries in column-major order over the
 * flattened matrix (position = col * rows + row), each (code, run) where run
 * counts the zeros before the entry; code 0 is a filler. */
typedef struct eie_fc {
    uint32_t rows, cols, code_bits;
    uint32_t storage; /* eie_storage_t; EXACT: code_bits 1, codes 1 = nonzero, 0 = filler */
    uint64_t nnz, entries;
    float *codebook; /* 1 << code_bits; NULL for EXACT */
    float *values;   /* EXACT: nnz values in entry order; NULL for SHARED */
    float *bias;     /* rows */
    uint8_t *codes;  /* entries */
    uint8_t *runs;   /* entries */
    uint64_t code_stream_bits, run_stream_bits;
    uint64_t stream_bytes, layer_bytes; /* filled by the reader and the writer */
} eie_fc_t;

/* An LSTM node's own part (its matrix is the layer's fc). */
typedef struct eie_lstm {
    uint32_t hidden;       /* H */
    uint32_t lanes;        /* N, the input's dims[1] (sizes the initial state) */
    uint32_t state[2];     /* tensors of Y_h, Y_c; UINT32_MAX if not written */
    float *initial[2];     /* initial h, c: N x H floats, or NULL for zeros */
    uint32_t initial_in[2]; /* graph inputs [1,N,H] giving initial h, c each run
                               (node inputs 1, 2 after X); UINT32_MAX if none */
} eie_lstm_t;

/* A node of the graph (a layer of a version-1 chain). */
typedef struct eie_layer {
    eie_layer_kind_t kind;
    eie_act_t act;
    eie_fc_t fc; /* FC, CONV2D */
    char *name;  /* "" for version-1 layers */
    int32_t axis; /* ACTIVATION (softmax), CONCAT */
    eie_conv2d_params_t conv;
    eie_pool2d_params_t pool;
    eie_lstm_t lstm; /* LSTM */
    uint32_t n_inputs;
    uint32_t *inputs; /* tensor indices */
    uint32_t output;  /* tensor index */
} eie_layer_t;

typedef struct eie_tensor {
    char *name;
    eie_dtype_t dtype;
    eie_shape_t shape;
} eie_tensor_t;

struct eie_model {
    char *name, *description, *input_name, *output_name;
    uint32_t input_dim, output_dim; /* elements of a sample of input 0 / output 0 */
    size_t n_layers, cap_layers;
    eie_layer_t *layers;
    uint32_t version; /* EIE_FORMAT_VERSION or EIE_FORMAT_VERSION_GRAPH */
    /* The graph; a version-1 chain gets tensors 0..n_layers (layer i reads
       tensor i and writes tensor i + 1), input 0, output n_layers. */
    eie_tensor_t *tensors;
    size_t n_tensors, cap_tensors;
    uint32_t *inputs, *outputs;
    size_t n_inputs, n_outputs, cap_inputs, cap_outputs;
    char checksum_hex[65];
    uint64_t file_bytes;
};

/* "[-1,3,32,32]" into buf. */
void eie_shape_format(const eie_shape_t *s, char *buf, size_t n);
int eie_shape_equal(const eie_shape_t *a, const eie_shape_t *b);

/*
 * Checks node l of m against its input tensors (which must exist) and
 * infers its output shape into *out. target is the output's declared shape
 * (the reader's tensor table, the builder's desc.shape), used by RESHAPE.
 * On failure returns -1 and writes the reason to why, naming the field
 * (*field_out, static) that is wrong.
 */
int eie_graph_infer(const eie_model_t *m, const eie_layer_t *l, const eie_limits_t *lim,
                    const eie_shape_t *target, eie_shape_t *out, const char **field_out,
                    char *why, size_t why_len);

/* Shape of an LSTM node's Y_h / Y_c, [1,N,H], for its input x [T,N,I]. */
eie_shape_t eie_lstm_state_shape(const eie_shape_t *x, uint32_t hidden);

/* 1 if tensor t is an LSTM's Y_h or Y_c (one row a run, not one a sample). */
int eie_model_is_lstm_state(const eie_model_t *m, uint32_t t);

/* 1 if tensor t is read by an LSTM as its initial state (a graph input, one row a run). */
int eie_model_is_lstm_initial(const eie_model_t *m, uint32_t t);

/* The rules on graph inputs that need every node: the inputs share one batch dimension,
   except an LSTM's initial-state inputs ([1,N,H], one row a run), which no node reads
   as anything else. -1 with a reason in why. */
int eie_graph_check_inputs(const eie_model_t *m, char *why, size_t why_len);

/* What a builder's graph must hold before it is written: an input, a node and an
   output, and inputs that keep eie_graph_check_inputs. The message starts with who
   ("builder"). eie_builder_write_* check it; the ONNX importer too, so an import that
   succeeds writes. */
eie_status_t eie_builder_check(const eie_builder_t *builder, const char *who, eie_error_t *err);

/* Checks a full tensor shape against the limits; -1 with a reason in why. */
int eie_shape_check(const eie_shape_t *s, const eie_limits_t *lim, char *why, size_t why_len);

/* Rows [r0, r0 + nr) of fc as a matrix of their own (a group of a grouped convolution):
   entries re-encoded with fillers; codebook and bias borrowed from fc, the rest owned.
   Returns 0, or -1 when out of memory; free with eie_fc_rows_free either way. */
int eie_fc_rows(const eie_fc_t *fc, uint32_t r0, uint32_t nr, eie_fc_t *out);
void eie_fc_rows_free(eie_fc_t *f);

/*
 * An LSTM's matrix laid out for n_pes PEs so the four gates of a hidden unit
 * are on one PE: unit j on PE j mod N (EIE sec. III-B's interleave, applied
 * to units). With U = ceil(H / N) units a PE, row 4j + g of the file
 * (unit-major, gate g of unit j) becomes row (g U + j / N) N + j mod N of a
 * matrix of eie_lstm_pe_rows() = 4 U N rows, so the usual "row i on PE i mod
 * N" places it and PE p's local rows come gate by gate: local row g U + k is
 * gate g of unit p + kN, and a gate's sums of the PE's units are contiguous.
 * Rows of padding units (j >= H) are empty.
 */
uint32_t eie_lstm_pe_rows(uint32_t hidden, unsigned n_pes);
uint32_t eie_lstm_pe_row(uint32_t r, uint32_t hidden, unsigned n_pes);
/* The matrix and bias of fc (4H rows) so laid out; codebook borrowed, the rest owned.
   Returns 0, or -1 when out of memory; free with eie_fc_lstm_rows_free either way. */
int eie_fc_lstm_rows(const eie_fc_t *fc, unsigned n_pes, eie_fc_t *out);
void eie_fc_lstm_rows_free(eie_fc_t *f);

/* Gives a loaded version-1 chain its graph (tensors, inputs, outputs, node io). */
eie_status_t eie_model_chain_graph(eie_model_t *m, eie_error_t *err);

/* Sets input_name/output_name/input_dim/output_dim of a graph from inputs[0], outputs[0]. */
eie_status_t eie_model_graph_summary(eie_model_t *m, eie_error_t *err);

/* Internal accessor for backends: FC layer i, or NULL if i is not FC. */
const eie_fc_t *eie_model_fc(const eie_model_t *model, size_t i);

/* Frees what a sparse layer owns and zeroes it. */
void eie_fc_clear(eie_fc_t *fc);

/* Frees what a model owns (not the struct itself). */
void eie_model_clear(eie_model_t *model);

/* Serialises a model (dims already set) to a malloc'd buffer. */
eie_status_t eie_format_write(const eie_model_t *model, uint8_t **data_out, size_t *len_out,
                              eie_error_t *err);

#endif
