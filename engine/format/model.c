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

eie_limits_t eie_limits_default(void)
{
    return (eie_limits_t){
        .max_file_bytes = 1ull << 30,
        .max_dim = 1u << 20,
        .max_weights = 1ull << 30,
        .max_layers = 256,
    };
}

void eie_model_clear(eie_model_t *model)
{
    free(model->name);
    free(model->description);
    free(model->input_name);
    free(model->output_name);
    for (size_t i = 0; i < model->n_layers; i++) {
        eie_fc_t *fc = &model->layers[i].fc;
        free(fc->codebook);
        free(fc->bias);
        free(fc->codes);
        free(fc->runs);
    }
    free(model->layers);
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

const eie_fc_t *eie_model_fc(const eie_model_t *model, size_t i)
{
    if (i >= model->n_layers || model->layers[i].kind != EIE_LAYER_FC)
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
    if (l->kind == EIE_LAYER_FC) {
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

const float *eie_model_fc_codebook(const eie_model_t *model, size_t i)
{
    const eie_fc_t *fc = eie_model_fc(model, i);
    return fc ? fc->codebook : NULL;
}

const float *eie_model_fc_bias(const eie_model_t *model, size_t i)
{
    const eie_fc_t *fc = eie_model_fc(model, i);
    return fc ? fc->bias : NULL;
}

eie_status_t eie_model_fc_codes(const eie_model_t *model, size_t i, uint8_t *codes_out)
{
    const eie_fc_t *fc = eie_model_fc(model, i);
    if (fc == NULL)
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
    uint64_t pos = (uint64_t)-1;
    for (uint64_t e = 0; e < fc->entries; e++) {
        pos += (uint64_t)fc->runs[e] + 1;
        if (fc->codes[e] != 0) {
            uint64_t col = pos / fc->rows, row = pos % fc->rows;
            dense_out[row * fc->cols + col] = fc->codebook[fc->codes[e]];
        }
    }
    return EIE_STATUS_OK;
}

/* ---- builder ------------------------------------------------------------ */

struct eie_builder {
    eie_model_t model;
    uint32_t dim; /* current width: rows of the last FC layer, 0 before any */
};

static char *dup_checked(const char *s, const char *what, eie_error_t *err)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    if (n > EIE_FORMAT_MAX_STRING) {
        eie_error_set(err, EIE_STATUS_LIMIT, "builder: %s is %zu bytes, limit %u", what, n,
                      EIE_FORMAT_MAX_STRING);
        return NULL;
    }
    char *d = malloc(n + 1);
    if (d == NULL) {
        eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: out of memory copying %s", what);
        return NULL;
    }
    memcpy(d, s, n + 1);
    return d;
}

eie_status_t eie_builder_init(const char *name, const char *description, const char *input_name,
                              const char *output_name, eie_builder_t **builder_out,
                              eie_error_t *err)
{
    eie_builder_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: out of memory");
    if ((b->model.name = dup_checked(name, "name", err)) == NULL ||
        (b->model.description = dup_checked(description, "description", err)) == NULL ||
        (b->model.input_name = dup_checked(input_name, "input name", err)) == NULL ||
        (b->model.output_name = dup_checked(output_name, "output name", err)) == NULL)
        goto error;
    *builder_out = b;
    return EIE_STATUS_OK;
error:
    eie_builder_free(b);
    return err ? err->status : EIE_STATUS_NO_MEMORY;
}

void eie_builder_free(eie_builder_t *builder)
{
    if (builder == NULL)
        return;
    eie_model_clear(&builder->model);
    free(builder);
}

static eie_layer_t *builder_push(eie_builder_t *b, eie_error_t *err)
{
    eie_model_t *m = &b->model;
    eie_limits_t lim = eie_limits_default();
    if (m->n_layers >= lim.max_layers) {
        eie_error_set(err, EIE_STATUS_LIMIT, "builder: more than %u layers", lim.max_layers);
        return NULL;
    }
    if (m->n_layers == m->cap_layers) {
        size_t cap = m->cap_layers ? m->cap_layers * 2 : 8;
        eie_layer_t *l = realloc(m->layers, cap * sizeof *l);
        if (l == NULL) {
            eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: out of memory");
            return NULL;
        }
        m->layers = l;
        m->cap_layers = cap;
    }
    eie_layer_t *l = &m->layers[m->n_layers];
    memset(l, 0, sizeof *l);
    return l;
}

eie_status_t eie_builder_add_fc(eie_builder_t *builder, uint32_t rows, uint32_t cols,
                                uint32_t code_bits, const float *codebook, const uint8_t *codes,
                                const float *bias, eie_error_t *err)
{
    eie_limits_t lim = eie_limits_default();
    size_t li = builder->model.n_layers;
    if (rows == 0 || cols == 0 || rows > lim.max_dim || cols > lim.max_dim ||
        (uint64_t)rows * cols > lim.max_weights)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: layer %zu: shape %ux%u is empty or over the limits", li,
                             rows, cols);
    if (code_bits < 1 || code_bits > 8)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: layer %zu: code_bits %u not in 1..8", li, code_bits);
    if (builder->dim != 0 && cols != builder->dim)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: layer %zu: cols %u but the previous layer has %u outputs",
                             li, cols, builder->dim);
    if (codebook == NULL || codes == NULL)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: layer %zu: codebook and codes are required", li);
    size_t ncb = (size_t)1 << code_bits;
    if (codebook[0] != 0.0f)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: layer %zu: codebook[0] is %g, must be 0.0 (the filler)",
                             li, (double)codebook[0]);
    for (size_t k = 0; k < ncb; k++)
        if (!isfinite(codebook[k]))
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "builder: layer %zu: codebook[%zu] is not finite", li, k);
    /* Count entries first (nonzeros + fillers), column-major over the matrix. */
    uint64_t nnz = 0, entries = 0, prev = (uint64_t)-1, pos = 0;
    for (uint32_t c = 0; c < cols; c++)
        for (uint32_t r = 0; r < rows; r++, pos++) {
            uint8_t code = codes[(size_t)r * cols + c];
            if (code >= ncb)
                return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                     "builder: layer %zu: code %u at row %u col %u >= 2^%u", li,
                                     code, r, c, code_bits);
            if (code == 0)
                continue;
            uint64_t gap = pos - prev - 1;
            entries += gap / (EIE_RUN_MAX + 1) + 1;
            nnz++;
            prev = pos;
        }
    eie_layer_t *l = builder_push(builder, err);
    if (l == NULL)
        return err ? err->status : EIE_STATUS_NO_MEMORY;
    eie_fc_t *fc = &l->fc;
    l->kind = EIE_LAYER_FC;
    fc->rows = rows;
    fc->cols = cols;
    fc->code_bits = code_bits;
    fc->nnz = nnz;
    fc->entries = entries;
    fc->codebook = malloc(ncb * sizeof(float));
    fc->bias = calloc(rows, sizeof(float));
    fc->codes = malloc(entries ? entries : 1);
    fc->runs = malloc(entries ? entries : 1);
    if (!fc->codebook || !fc->bias || !fc->codes || !fc->runs) {
        free(fc->codebook);
        free(fc->bias);
        free(fc->codes);
        free(fc->runs);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: layer %zu: out of memory", li);
    }
    memcpy(fc->codebook, codebook, ncb * sizeof(float));
    if (bias != NULL)
        memcpy(fc->bias, bias, rows * sizeof(float));
    uint64_t e = 0;
    prev = (uint64_t)-1;
    pos = 0;
    for (uint32_t c = 0; c < cols; c++)
        for (uint32_t r = 0; r < rows; r++, pos++) {
            uint8_t code = codes[(size_t)r * cols + c];
            if (code == 0)
                continue;
            /* Deep Compression fig. 2: a gap longer than the run field
             * inserts filler entries (code 0, run 15). */
            uint64_t gap = pos - prev - 1;
            while (gap > EIE_RUN_MAX) {
                fc->codes[e] = 0;
                fc->runs[e++] = EIE_RUN_MAX;
                gap -= EIE_RUN_MAX + 1;
            }
            fc->codes[e] = code;
            fc->runs[e++] = (uint8_t)gap;
            prev = pos;
        }
    assert(e == entries);
    builder->model.n_layers++;
    if (builder->model.input_dim == 0)
        builder->model.input_dim = cols;
    builder->model.output_dim = rows;
    builder->dim = rows;
    return EIE_STATUS_OK;
}

eie_status_t eie_builder_add_activation(eie_builder_t *builder, eie_act_t act, eie_error_t *err)
{
    if (eie_act_name(act) == NULL)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "builder: unknown activation %d",
                             (int)act);
    eie_layer_t *l = builder_push(builder, err);
    if (l == NULL)
        return err ? err->status : EIE_STATUS_NO_MEMORY;
    l->kind = EIE_LAYER_ACTIVATION;
    l->act = act;
    builder->model.n_layers++;
    return EIE_STATUS_OK;
}

eie_status_t eie_builder_write_memory(const eie_builder_t *builder, uint8_t **data_out,
                                      size_t *len_out, eie_error_t *err)
{
    if (builder->dim == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: the model has no fully connected layer");
    return eie_format_write(&builder->model, data_out, len_out, err);
}
