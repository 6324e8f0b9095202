/* Validation of ModelInfer requests; see infer_validate.h. */
#include "infer_validate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *shape_text(const int64_t *shape, size_t n, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? "," : "",
                                 (long long)shape[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

static bool all_finite(const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        float x;
        memcpy(&x, p + i * sizeof x, sizeof x); /* raw bytes may be unaligned */
        if (!isfinite(x))
            return false;
    }
    return true;
}

static bool has_any_contents(const Inference__InferTensorContents *c)
{
    return c != NULL && (c->n_fp32_contents > 0 || c->n_bool_contents > 0 ||
                         c->n_int_contents > 0 || c->n_int64_contents > 0 ||
                         c->n_uint_contents > 0 || c->n_uint64_contents > 0 ||
                         c->n_fp64_contents > 0 || c->n_bytes_contents > 0);
}

#define REFUSE(status, ...) return eie_error_set(err, EIE_STATUS_##status, __VA_ARGS__)

eie_status_t eied_infer_validate(const Inference__ModelInferRequest *req,
                                 const eied_infer_spec_t *spec, eied_infer_input_t *input_out,
                                 eie_error_t *err)
{
    const char *m = spec->model, *in_name = spec->input_name;
    char shape_buf[160];
    if (req->n_inputs != 1)
        REFUSE(INVALID_ARGUMENT, "model '%s': expected 1 input tensor '%s', got %zu",
               m, in_name, req->n_inputs);
    const Inference__ModelInferRequest__InferInputTensor *in = req->inputs[0];
    if (strcmp(in->name, in_name) != 0)
        REFUSE(INVALID_ARGUMENT,
               "model '%s': unknown input '%.128s' (the model's input is '%s')", m, in->name,
               in_name);
    if (strcmp(in->datatype, "FP32") != 0)
        REFUSE(INVALID_ARGUMENT,
               "model '%s': input '%s': datatype '%.32s' is not supported (expected FP32)", m,
               in_name, in->datatype);
    int64_t legacy[2] = {-1, (int64_t)spec->input_dim};
    const int64_t *want = spec->input_shape ? spec->input_shape : legacy;
    size_t want_rank = spec->input_shape ? spec->input_rank : 2;
    bool fits = in->n_shape == want_rank && in->shape[0] >= 1 &&
                (want[0] == -1 || in->shape[0] == want[0]);
    for (size_t k = 1; fits && k < want_rank; k++)
        fits = in->shape[k] == want[k];
    if (!fits) {
        char want_buf[160];
        REFUSE(INVALID_ARGUMENT, "model '%s': input '%s': shape %s does not match "
                                             "%s",
               m, in_name, shape_text(in->shape, in->n_shape, shape_buf, sizeof shape_buf),
               shape_text(want, want_rank, want_buf, sizeof want_buf));
    }
    if ((uint64_t)in->shape[0] > spec->max_batch)
        REFUSE(INVALID_ARGUMENT, "model '%s': input '%s': batch %lld is over "
                                             "max_batch %llu",
               m, in_name, (long long)in->shape[0], (unsigned long long)spec->max_batch);
    uint32_t rows = (uint32_t)in->shape[0];
    size_t n = (size_t)rows * spec->input_dim;
    if (n > spec->max_tensor_elements)
        REFUSE(RESOURCE_EXHAUSTED,
               "model '%s': input '%s': %zu elements is over max_tensor_elements %llu", m, in_name,
               n, (unsigned long long)spec->max_tensor_elements);
    bool has_contents = has_any_contents(in->contents);
    bool has_raw = req->n_raw_input_contents > 0;
    if (has_raw && has_contents)
        REFUSE(INVALID_ARGUMENT,
               "model '%s': input '%s' has both raw_input_contents and contents; send one", m,
               in_name);
    if (has_raw && req->n_raw_input_contents != req->n_inputs)
        REFUSE(INVALID_ARGUMENT, "model '%s': %zu raw_input_contents for %zu inputs",
               m, req->n_raw_input_contents, req->n_inputs);
    if (!has_raw && !has_contents)
        REFUSE(INVALID_ARGUMENT,
               "model '%s': input '%s' has no data (neither raw_input_contents nor "
               "contents.fp32_contents)",
               m, in_name);
    if (has_raw && req->raw_input_contents[0].len != n * sizeof(float))
        REFUSE(INVALID_ARGUMENT,
               "model '%s': input '%s': raw_input_contents has %zu bytes, shape %s FP32 needs %zu",
               m, in_name, req->raw_input_contents[0].len,
               shape_text(in->shape, in->n_shape, shape_buf, sizeof shape_buf), n * sizeof(float));
    if (has_contents && in->contents->n_fp32_contents != n)
        REFUSE(INVALID_ARGUMENT,
               "model '%s': input '%s': contents has %zu fp32 values, shape %s needs %zu (FP32 "
               "data goes in fp32_contents)",
               m, in_name, in->contents->n_fp32_contents,
               shape_text(in->shape, in->n_shape, shape_buf, sizeof shape_buf), n);
    for (size_t i = 0; i < req->n_outputs; i++)
        if (strcmp(req->outputs[i]->name, spec->output_name) != 0)
            REFUSE(INVALID_ARGUMENT,
                   "model '%s': unknown requested output '%.128s' (the model's output is '%s')",
                   m, req->outputs[i]->name, spec->output_name);
    const void *src = has_raw ? (const void *)req->raw_input_contents[0].data
                              : (const void *)in->contents->fp32_contents;
    if (spec->reject_non_finite && !all_finite(src, n))
        REFUSE(INVALID_ARGUMENT,
               "model '%s': input '%s' holds NaN or Inf (reject_non_finite is on)", m, in_name);
    input_out->rows = rows;
    input_out->n = n;
    input_out->data = src;
    return EIE_STATUS_OK;
}

eie_status_t eied_infer_validate_graph(const Inference__ModelInferRequest *req,
                                       const eied_infer_graph_spec_t *spec, uint32_t *rows_out,
                                       const void **data_out, size_t *out_sel_out,
                                       size_t *n_sel_out, eie_error_t *err)
{
    const char *m = spec->model;
    char shape_buf[160], want_buf[160];
    if (req->n_inputs != spec->n_inputs)
        REFUSE(INVALID_ARGUMENT, "model '%s': expected %zu input tensors, got %zu", m,
               spec->n_inputs, req->n_inputs);
    bool has_raw = req->n_raw_input_contents > 0;
    if (has_raw && req->n_raw_input_contents != req->n_inputs)
        REFUSE(INVALID_ARGUMENT, "model '%s': %zu raw_input_contents for %zu inputs",
               m, req->n_raw_input_contents, req->n_inputs);
    int64_t rows = -1;
    const char *rows_name = "";
    uint64_t total = 0;
    for (size_t k = 0; k < req->n_inputs; k++) {
        const Inference__ModelInferRequest__InferInputTensor *in = req->inputs[k];
        size_t i = 0;
        while (i < spec->n_inputs && strcmp(spec->inputs[i].name, in->name) != 0)
            i++;
        if (i == spec->n_inputs)
            REFUSE(INVALID_ARGUMENT, "model '%s': unknown input '%.128s'", m,
                   in->name);
        for (size_t k2 = 0; k2 < k; k2++)
            if (strcmp(req->inputs[k2]->name, in->name) == 0)
                REFUSE(INVALID_ARGUMENT, "model '%s': input '%s' is given twice", m,
                       in->name);
        const eied_infer_tensor_spec_t *t = &spec->inputs[i];
        if (strcmp(in->datatype, "FP32") != 0)
            REFUSE(INVALID_ARGUMENT,
                   "model '%s': input '%s': datatype '%.32s' is not supported (expected FP32)", m,
                   t->name, in->datatype);
        bool fits = in->n_shape == t->rank && in->shape[0] >= 1 &&
                    (t->shape[0] == -1 || in->shape[0] == t->shape[0]);
        for (size_t d = 1; fits && d < t->rank; d++)
            fits = in->shape[d] == t->shape[d];
        if (!fits)
            REFUSE(INVALID_ARGUMENT, "model '%s': input '%s': shape %s does not match "
                                                 "%s",
                   m, t->name, shape_text(in->shape, in->n_shape, shape_buf, sizeof shape_buf),
                   shape_text(t->shape, t->rank, want_buf, sizeof want_buf));
        /* an lstm's initial state is one row a run (its shape is its own), outside the
           batch: the sequence's steps */
        if (!t->per_run) {
            if ((uint64_t)in->shape[0] > spec->max_batch)
                REFUSE(INVALID_ARGUMENT, "model '%s': input '%s': %s %lld is over %s %llu", m,
                       t->name, spec->sequence ? "sequence of steps" : "batch",
                       (long long)in->shape[0], spec->sequence ? "max_sequence" : "max_batch",
                       (unsigned long long)spec->max_batch);
            if (rows >= 0 && in->shape[0] != rows)
                REFUSE(INVALID_ARGUMENT,
                       "model '%s': input '%s' has batch %lld but '%s' has %lld", m, t->name,
                       (long long)in->shape[0], rows_name, (long long)rows);
            rows = in->shape[0];
            rows_name = in->name;
        }
        uint64_t n = (uint64_t)in->shape[0] * t->elements;
        total += n;
        if (total > spec->max_tensor_elements)
            REFUSE(RESOURCE_EXHAUSTED,
                   "model '%s': inputs hold over max_tensor_elements %llu elements", m,
                   (unsigned long long)spec->max_tensor_elements);
        bool has_contents = has_any_contents(in->contents);
        if (has_raw && has_contents)
            REFUSE(INVALID_ARGUMENT,
                   "model '%s': input '%s' has both raw_input_contents and contents; send one", m,
                   t->name);
        if (!has_raw && !has_contents)
            REFUSE(INVALID_ARGUMENT,
                   "model '%s': input '%s' has no data (neither raw_input_contents nor "
                   "contents.fp32_contents)",
                   m, t->name);
        if (has_raw && req->raw_input_contents[k].len != n * sizeof(float))
            REFUSE(INVALID_ARGUMENT,
                   "model '%s': input '%s': raw_input_contents has %zu bytes, shape %s FP32 "
                   "needs %llu",
                   m, t->name, req->raw_input_contents[k].len,
                   shape_text(in->shape, in->n_shape, shape_buf, sizeof shape_buf),
                   (unsigned long long)(n * sizeof(float)));
        if (has_contents && in->contents->n_fp32_contents != n)
            REFUSE(INVALID_ARGUMENT,
                   "model '%s': input '%s': contents has %zu fp32 values, shape %s needs %llu "
                   "(FP32 data goes in fp32_contents)",
                   m, t->name, in->contents->n_fp32_contents,
                   shape_text(in->shape, in->n_shape, shape_buf, sizeof shape_buf),
                   (unsigned long long)n);
        data_out[i] = has_raw ? (const void *)req->raw_input_contents[k].data
                              : (const void *)in->contents->fp32_contents;
        if (spec->reject_non_finite && !all_finite(data_out[i], n))
            REFUSE(INVALID_ARGUMENT,
                   "model '%s': input '%s' holds NaN or Inf (reject_non_finite is on)", m,
                   t->name);
    }
    if (req->n_outputs > spec->n_outputs)
        REFUSE(INVALID_ARGUMENT, "model '%s': %zu outputs requested, it has %zu", m,
               req->n_outputs, spec->n_outputs);
    for (size_t k = 0; k < req->n_outputs; k++) {
        size_t o = 0;
        while (o < spec->n_outputs && strcmp(spec->output_names[o], req->outputs[k]->name) != 0)
            o++;
        if (o == spec->n_outputs)
            REFUSE(INVALID_ARGUMENT, "model '%s': unknown requested output '%.128s'",
                   m, req->outputs[k]->name);
        out_sel_out[k] = o;
    }
    *n_sel_out = req->n_outputs;
    *rows_out = (uint32_t)rows;
    return EIE_STATUS_OK;
}
