/* The model object: accessors, dense decoding and the builder. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format/format.h"

const char *eie_act_name(eie_act_t act)
{
    switch (act) {
    case EIE_ACT_IDENTITY: return "identity";
    case EIE_ACT_RELU: return "relu";
    case EIE_ACT_SIGMOID: return "sigmoid";
    case EIE_ACT_TANH: return "tanh";
    case EIE_ACT_SOFTMAX: return "softmax";
    }
    return NULL;
}

const char *eie_layer_kind_name(eie_layer_kind_t kind)
{
    switch (kind) {
    case EIE_LAYER_FC: return "fc";
    case EIE_LAYER_ACTIVATION: return "activation";
    case EIE_LAYER_CONV2D: return "conv2d";
    case EIE_LAYER_MAXPOOL2D: return "maxpool2d";
    case EIE_LAYER_AVGPOOL2D: return "avgpool2d";
    case EIE_LAYER_GLOBAL_AVGPOOL: return "global_avgpool";
    case EIE_LAYER_ADD: return "add";
    case EIE_LAYER_CONCAT: return "concat";
    case EIE_LAYER_FLATTEN: return "flatten";
    case EIE_LAYER_RESHAPE: return "reshape";
    case EIE_LAYER_LSTM: return "lstm";
    }
    return NULL;
}

const char *eie_dtype_name(eie_dtype_t dtype)
{
    return dtype == EIE_DTYPE_FP32 ? "FP32" : NULL;
}

eie_limits_t eie_limits_default(void)
{
    return (eie_limits_t){
        .max_file_bytes = 1ull << 30,
        .max_dim = 1u << 20,
        .max_weights = 1ull << 30,
        .max_layers = 256,
        .max_tensors = 1024,
        .max_elements = 1ull << 26,
    };
}

eie_limits_t eie_limits_or_default(const eie_limits_t *limits)
{
    eie_limits_t d = eie_limits_default();
    if (limits == NULL)
        return d;
    eie_limits_t l = *limits;
    /* 0 takes the default: no model fits a limit of 0, and a caller that
       zero-initialises the struct to set one field would refuse them all */
    l.max_file_bytes = l.max_file_bytes ? l.max_file_bytes : d.max_file_bytes;
    l.max_dim = l.max_dim ? l.max_dim : d.max_dim;
    l.max_weights = l.max_weights ? l.max_weights : d.max_weights;
    l.max_layers = l.max_layers ? l.max_layers : d.max_layers;
    l.max_tensors = l.max_tensors ? l.max_tensors : d.max_tensors;
    l.max_elements = l.max_elements ? l.max_elements : d.max_elements;
    return l;
}

void eie_fc_clear(eie_fc_t *fc)
{
    free(fc->codebook);
    free(fc->values);
    free(fc->bias);
    free(fc->codes);
    free(fc->runs);
    memset(fc, 0, sizeof *fc);
}

void eie_model_clear(eie_model_t *model)
{
    free(model->name);
    free(model->description);
    free(model->input_name);
    free(model->output_name);
    for (size_t i = 0; i < model->n_layers; i++) {
        eie_fc_clear(&model->layers[i].fc);
        free(model->layers[i].name);
        free(model->layers[i].inputs);
        free(model->layers[i].lstm.initial[0]);
        free(model->layers[i].lstm.initial[1]);
    }
    free(model->layers);
    for (size_t t = 0; t < model->n_tensors; t++)
        free(model->tensors[t].name);
    free(model->tensors);
    free(model->inputs);
    free(model->outputs);
    memset(model, 0, sizeof *model);
}

void eie_model_free(eie_model_t *model)
{
    if (model == NULL)
        return;
    eie_model_clear(model);
    free(model);
}

const char *eie_model_name(const eie_model_t *m) { return m->name; }
const char *eie_model_description(const eie_model_t *m) { return m->description; }
const char *eie_model_input_name(const eie_model_t *m) { return m->input_name; }
const char *eie_model_output_name(const eie_model_t *m) { return m->output_name; }
uint32_t eie_model_input_dim(const eie_model_t *m) { return m->input_dim; }
uint32_t eie_model_output_dim(const eie_model_t *m) { return m->output_dim; }
size_t eie_model_layer_count(const eie_model_t *m) { return m->n_layers; }
const char *eie_model_checksum_hex(const eie_model_t *m) { return m->checksum_hex; }
uint64_t eie_model_file_bytes(const eie_model_t *m) { return m->file_bytes; }
uint32_t eie_model_format_version(const eie_model_t *m) { return m->version; }
size_t eie_model_tensor_count(const eie_model_t *m) { return m->n_tensors; }
size_t eie_model_input_count(const eie_model_t *m) { return m->n_inputs; }
size_t eie_model_output_count(const eie_model_t *m) { return m->n_outputs; }

eie_status_t eie_model_tensor_info(const eie_model_t *m, size_t t, eie_tensor_info_t *info_out)
{
    if (t >= m->n_tensors)
        return EIE_STATUS_INVALID_ARGUMENT;
    info_out->name = m->tensors[t].name;
    info_out->dtype = m->tensors[t].dtype;
    info_out->shape = m->tensors[t].shape;
    return EIE_STATUS_OK;
}

size_t eie_model_input_tensor(const eie_model_t *m, size_t i)
{
    return i < m->n_inputs ? m->inputs[i] : SIZE_MAX;
}

size_t eie_model_output_tensor(const eie_model_t *m, size_t i)
{
    return i < m->n_outputs ? m->outputs[i] : SIZE_MAX;
}

eie_status_t eie_model_input_info(const eie_model_t *m, size_t i, eie_tensor_info_t *info_out)
{
    if (i >= m->n_inputs)
        return EIE_STATUS_INVALID_ARGUMENT;
    return eie_model_tensor_info(m, m->inputs[i], info_out);
}

eie_status_t eie_model_output_info(const eie_model_t *m, size_t i, eie_tensor_info_t *info_out)
{
    if (i >= m->n_outputs)
        return EIE_STATUS_INVALID_ARGUMENT;
    return eie_model_tensor_info(m, m->outputs[i], info_out);
}

long eie_model_find_tensor(const eie_model_t *m, const char *name)
{
    for (size_t t = 0; t < m->n_tensors; t++)
        if (strcmp(m->tensors[t].name, name) == 0)
            return (long)t;
    return -1;
}

const char *eie_model_layer_name(const eie_model_t *m, size_t i)
{
    return i < m->n_layers ? m->layers[i].name : NULL;
}

static int is_sparse(eie_layer_kind_t kind)
{
    return kind == EIE_LAYER_FC || kind == EIE_LAYER_CONV2D || kind == EIE_LAYER_LSTM;
}

const eie_fc_t *eie_model_fc(const eie_model_t *model, size_t i)
{
    if (i >= model->n_layers || !is_sparse(model->layers[i].kind))
        return NULL;
    return &model->layers[i].fc;
}

eie_status_t eie_model_layer_info(const eie_model_t *model, size_t i, eie_layer_info_t *info_out)
{
    if (i >= model->n_layers)
        return EIE_STATUS_INVALID_ARGUMENT;
    const eie_layer_t *l = &model->layers[i];
    memset(info_out, 0, sizeof *info_out);
    info_out->kind = l->kind;
    info_out->act = l->act;
    info_out->axis = l->axis;
    info_out->conv = l->conv;
    info_out->pool = l->pool;
    info_out->n_inputs = l->n_inputs;
    info_out->inputs = l->inputs;
    info_out->output = l->output;
    info_out->lstm_state[0] = info_out->lstm_state[1] = UINT32_MAX;
    info_out->lstm_initial_input[0] = info_out->lstm_initial_input[1] = UINT32_MAX;
    if (l->kind == EIE_LAYER_LSTM) {
        info_out->hidden_size = l->lstm.hidden;
        for (int k = 0; k < 2; k++) {
            info_out->lstm_state[k] = l->lstm.state[k];
            info_out->lstm_initial[k] = l->lstm.initial[k] != NULL;
            info_out->lstm_initial_input[k] = l->lstm.initial_in[k];
        }
    }
    if (is_sparse(l->kind)) {
        info_out->storage = (eie_storage_t)l->fc.storage;
        const eie_fc_t *fc = &l->fc;
        info_out->rows = fc->rows;
        info_out->cols = fc->cols;
        info_out->code_bits = fc->code_bits;
        info_out->nnz = fc->nnz;
        info_out->entries = fc->entries;
        info_out->stream_bytes = fc->stream_bytes;
        info_out->layer_bytes = fc->layer_bytes;
        if (fc->entries > 0) {
            info_out->code_bits_huffman = (double)fc->code_stream_bits / (double)fc->entries;
            info_out->run_bits_huffman = (double)fc->run_stream_bits / (double)fc->entries;
        }
    }
    return EIE_STATUS_OK;
}

const float *eie_model_lstm_initial(const eie_model_t *model, size_t i, int which)
{
    if (i >= model->n_layers || model->layers[i].kind != EIE_LAYER_LSTM || which < 0 ||
        which > 1)
        return NULL;
    return model->layers[i].lstm.initial[which];
}

const float *eie_model_fc_codebook(const eie_model_t *model, size_t i)
{
    const eie_fc_t *fc = eie_model_fc(model, i);
    return fc ? fc->codebook : NULL;
}

const float *eie_model_fc_values(const eie_model_t *model, size_t i)
{
    const eie_fc_t *fc = eie_model_fc(model, i);
    return fc ? fc->values : NULL;
}

const float *eie_model_fc_bias(const eie_model_t *model, size_t i)
{
    const eie_fc_t *fc = eie_model_fc(model, i);
    return fc ? fc->bias : NULL;
}

eie_status_t eie_model_fc_codes(const eie_model_t *model, size_t i, uint8_t *codes_out)
{
    const eie_fc_t *fc = eie_model_fc(model, i);
    if (fc == NULL || fc->storage != EIE_STORAGE_SHARED)
        return EIE_STATUS_INVALID_ARGUMENT;
    memset(codes_out, 0, (size_t)fc->rows * fc->cols);
    uint64_t pos = (uint64_t)-1;
    for (uint64_t e = 0; e < fc->entries; e++) {
        pos += (uint64_t)fc->runs[e] + 1;
        if (fc->codes[e] != 0) {
            uint64_t col = pos / fc->rows, row = pos % fc->rows;
            codes_out[row * fc->cols + col] = fc->codes[e];
        }
    }
    return EIE_STATUS_OK;
}

eie_status_t eie_model_fc_dense(const eie_model_t *model, size_t i, float *dense_out)
{
    const eie_fc_t *fc = eie_model_fc(model, i);
    if (fc == NULL)
        return EIE_STATUS_INVALID_ARGUMENT;
    memset(dense_out, 0, (size_t)fc->rows * fc->cols * sizeof(float));
    uint64_t pos = (uint64_t)-1, k = 0;
    for (uint64_t e = 0; e < fc->entries; e++) {
        pos += (uint64_t)fc->runs[e] + 1;
        if (fc->codes[e] != 0) {
            uint64_t col = pos / fc->rows, row = pos % fc->rows;
            dense_out[row * fc->cols + col] =
                fc->storage == EIE_STORAGE_EXACT ? fc->values[k++] : fc->codebook[fc->codes[e]];
        }
    }
    return EIE_STATUS_OK;
}
