/*
 * eie/model.h - .eie model files: load (with limits), describe, build, write.
 *
 * A model is an immutable, validated description of a network whose fully
 * connected layers are stored the Deep Compression way: a codebook of 2^b
 * shared float values (code 0 is always 0.0 and doubles as the EIE filler),
 * nonzeros column by column as (code, zero-run) pairs, Huffman coded.
 * The byte layout is documented in engine/FORMAT.md.
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

typedef enum {
    EIE_LAYER_FC = 1,         /* y = W x + b, W sparse and weight-shared */
    EIE_LAYER_ACTIVATION = 2, /* element-wise */
} eie_layer_kind_t;

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
    uint64_t max_file_bytes; /* whole file */
    uint32_t max_dim;        /* rows or columns of one layer */
    uint64_t max_weights;    /* rows x cols of one layer */
    uint32_t max_layers;
} eie_limits_t;

/* The defaults: 1 GiB files, 1<<20 rows/cols, 1<<30 weights a layer, 256 layers. */
eie_limits_t eie_limits_default(void);

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
const char *eie_model_input_name(const eie_model_t *model);
const char *eie_model_output_name(const eie_model_t *model);
uint32_t eie_model_input_dim(const eie_model_t *model);
uint32_t eie_model_output_dim(const eie_model_t *model);
size_t eie_model_layer_count(const eie_model_t *model);
/* SHA-256 of the file's bytes before the checksum trailer, as 64 hex chars + NUL. */
const char *eie_model_checksum_hex(const eie_model_t *model);
/* Size in bytes of the file the model was loaded from. */
uint64_t eie_model_file_bytes(const eie_model_t *model);

typedef struct eie_layer_info {
    eie_layer_kind_t kind;
    eie_act_t act;         /* ACTIVATION layers */
    uint32_t rows, cols;   /* FC: outputs, inputs */
    uint32_t code_bits;    /* FC: b, codebook has 2^b entries */
    uint64_t nnz;          /* FC: nonzero weights (codes != 0) */
    uint64_t entries;      /* FC: stored (code, run) entries, fillers included */
    uint64_t stream_bytes; /* FC: bytes of the Huffman-coded streams in the file */
    uint64_t layer_bytes;  /* FC: all bytes of the layer in the file (codebook, bias, tables) */
    double code_bits_huffman; /* FC: average bits per code after Huffman */
    double run_bits_huffman;  /* FC: average bits per zero-run after Huffman */
} eie_layer_info_t;

/* Describes layer i (0-based). */
eie_status_t eie_model_layer_info(const eie_model_t *model, size_t i, eie_layer_info_t *info_out);

/* FC layer i's codebook (2^b floats, [0] == 0.0f), owned by the model. */
const float *eie_model_fc_codebook(const eie_model_t *model, size_t i);
/* FC layer i's bias (rows floats), owned by the model. */
const float *eie_model_fc_bias(const eie_model_t *model, size_t i);
/* Decodes FC layer i to dense row-major float weights (rows x cols) into dense_out. */
eie_status_t eie_model_fc_dense(const eie_model_t *model, size_t i, float *dense_out);
/* Decodes FC layer i to row-major codes (rows x cols; 0 = pruned) into codes_out. */
eie_status_t eie_model_fc_codes(const eie_model_t *model, size_t i, uint8_t *codes_out);

/*
 * Building a model: the compressor and tests make models with this, and the
 * writer is the exact inverse of the reader.
 */
typedef struct eie_builder eie_builder_t;

/* Starts an empty model; strings are copied. The caller owns *builder_out. */
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
