/*
 * infer_validate.h - checks a decoded ModelInferRequest against a model's
 * input spec and the limits, with no server around it, so the same code
 * runs in the daemon and under the fuzzer. Every refusal names the model,
 * the tensor and the mismatch.
 */
#ifndef EIED_INFER_VALIDATE_H
#define EIED_INFER_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eie/status.h"
#include "inference.pb-c.h"

typedef struct eied_infer_spec {
    const char *model;
    const char *input_name;
    const char *output_name;
    uint32_t input_dim;
    /* The input's full shape (dims[0]: -1 or the one batch size it takes); NULL for
       [-1, input_dim]. */
    const int64_t *input_shape;
    uint32_t input_rank;
    uint64_t max_batch;
    uint64_t max_tensor_elements;
    bool reject_non_finite;
} eied_infer_spec_t;

typedef struct eied_infer_input {
    uint32_t rows;
    size_t n;         /* rows x input_dim floats */
    const void *data; /* little-endian float32, inside req, possibly unaligned */
} eied_infer_input_t;

/*
 * Returns EIE_STATUS_OK and fills *input_out, or the status with a message in
 * err: INVALID_ARGUMENT for a request that does not fit the model,
 * RESOURCE_EXHAUSTED over max_tensor_elements.
 */
eie_status_t eied_infer_validate(const Inference__ModelInferRequest *req,
                                 const eied_infer_spec_t *spec, eied_infer_input_t *input_out,
                                 eie_error_t *err);

/*
 * Models of several inputs or outputs (graphs): every model input must come
 * once, by its name, with its full shape (one batch size for all);
 * requested outputs must be the model's. Raw contents, when used, go with
 * every input, in the request's input order.
 */
typedef struct eied_infer_tensor_spec {
    const char *name;
    uint32_t rank;
    const int64_t *shape; /* dims[0]: -1 or the one batch size it takes */
    uint64_t elements;    /* one sample */
    bool per_run;         /* an lstm's initial state [1,N,H]: its own shape, not the batch */
} eied_infer_tensor_spec_t;

typedef struct eied_infer_graph_spec {
    const char *model;
    size_t n_inputs, n_outputs;
    const eied_infer_tensor_spec_t *inputs;
    const char *const *output_names;
    uint64_t max_batch;
    uint64_t max_tensor_elements; /* all inputs together */
    bool reject_non_finite;
    bool sequence; /* an lstm model: dimension 0 is time, max_batch is max_sequence */
} eied_infer_graph_spec_t;

/* Fills *rows_out, data_out[i] (model input i's little-endian float32, possibly unaligned,
   rows x elements; a per_run input: its shape's) and out_sel_out[k] (the model output index of requested output k;
   *n_sel_out = 0 when none was requested). Statuses and messages as eied_infer_validate. */
eie_status_t eied_infer_validate_graph(const Inference__ModelInferRequest *req,
                                       const eied_infer_graph_spec_t *spec, uint32_t *rows_out,
                                       const void **data_out, size_t *out_sel_out,
                                       size_t *n_sel_out, eie_error_t *err);

#endif
