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
#define EIE_FORMAT_VERSION 1u
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
    uint64_t nnz, entries;
    float *codebook; /* 1 << code_bits */
    float *bias;     /* rows */
    uint8_t *codes;  /* entries */
    uint8_t *runs;   /* entries */
    uint64_t code_stream_bits, run_stream_bits;
    uint64_t stream_bytes, layer_bytes; /* filled by the reader and the writer */
} eie_fc_t;

typedef struct eie_layer {
    eie_layer_kind_t kind;
    eie_act_t act;
    eie_fc_t fc;
} eie_layer_t;

struct eie_model {
    char *name, *description, *input_name, *output_name;
    uint32_t input_dim, output_dim;
    size_t n_layers, cap_layers;
    eie_layer_t *layers;
    char checksum_hex[65];
    uint64_t file_bytes;
};

/* Internal accessor for backends: FC layer i, or NULL if i is not FC. */
const eie_fc_t *eie_model_fc(const eie_model_t *model, size_t i);

/* Frees what a model owns (not the struct itself). */
void eie_model_clear(eie_model_t *model);

/* Serialises a model (dims already set) to a malloc'd buffer. */
eie_status_t eie_format_write(const eie_model_t *model, uint8_t **data_out, size_t *len_out,
                              eie_error_t *err);

#endif
