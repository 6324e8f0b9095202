/*
 * builder.c - making models: a chain (format version 1) or a graph
 * (version 2). The writer (writer.c) is the exact inverse of the reader, so
 * everything a file may not hold is refused here, with the same rules
 * (graph.c) the reader applies. Writing a file (eie_builder_write_file) is
 * here too: the builder uses the writer, never the other way round.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/format.h"

struct eie_builder {
    eie_model_t model;
    bool graph;   /* made by eie_builder_init_graph */
    uint32_t dim; /* chain: current width, rows of the last FC layer, 0 before any */
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
    b->model.version = EIE_FORMAT_VERSION;
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

eie_status_t eie_builder_init_graph(const char *name, const char *description,
                                    eie_builder_t **builder_out, eie_error_t *err)
{
    eie_builder_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: out of memory");
    b->graph = true;
    b->model.version = EIE_FORMAT_VERSION_GRAPH;
    if ((b->model.name = dup_checked(name, "name", err)) == NULL ||
        (b->model.description = dup_checked(description, "description", err)) == NULL)
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

/*
 * Fills fc from a row-major rows x cols matrix given by w (eie_weights_t):
 * entries in column-major order with fillers where a zero-run exceeds 15
 * (Deep Compression fig. 2). li names the layer in messages.
 */
static eie_status_t fc_build(eie_fc_t *fc, uint32_t rows, uint32_t cols, const eie_weights_t *w,
                             size_t li, eie_error_t *err)
{
    eie_limits_t lim = eie_limits_default();
    bool exact = w->storage == EIE_STORAGE_EXACT;
    memset(fc, 0, sizeof *fc);
    if (rows == 0 || cols == 0 || rows > lim.max_dim || cols > lim.max_dim ||
        (uint64_t)rows * cols > lim.max_weights)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: layer %zu: shape %ux%u is empty or over the limits", li,
                             rows, cols);
    if (w->storage != EIE_STORAGE_SHARED && !exact)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: layer %zu: unknown weight storage %d", li, (int)w->storage);
    uint32_t bits = exact ? 1 : w->code_bits;
    if (bits < 1 || bits > 8)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: layer %zu: code_bits %u not in 1..8", li, bits);
    if (exact ? w->values == NULL : (w->codebook == NULL || w->codes == NULL))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: layer %zu: %s", li,
                             exact ? "exact storage needs values"
                                   : "codebook and codes are required");
    size_t ncb = (size_t)1 << bits;
    if (!exact) {
        if (w->codebook[0] != 0.0f)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "builder: layer %zu: codebook[0] is %g, must be 0.0 (the filler)",
                                 li, (double)w->codebook[0]);
        for (size_t k = 0; k < ncb; k++)
            if (!isfinite(w->codebook[k]))
                return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                     "builder: layer %zu: codebook[%zu] is not finite", li, k);
    }
    if (w->bias != NULL)
        for (uint32_t r = 0; r < rows; r++)
            if (!isfinite(w->bias[r]))
                return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                     "builder: layer %zu: bias[%u] is not finite", li, r);
    /* Count entries first (nonzeros + fillers), column-major over the matrix. */
    uint64_t nnz = 0, entries = 0, prev = (uint64_t)-1, pos = 0;
    for (uint32_t c = 0; c < cols; c++)
        for (uint32_t r = 0; r < rows; r++, pos++) {
            size_t at = (size_t)r * cols + c;
            if (exact) {
                if (!isfinite(w->values[at]))
                    return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                         "builder: layer %zu: weight at row %u col %u is not "
                                         "finite",
                                         li, r, c);
                if (w->values[at] == 0.0f)
                    continue;
            } else {
                uint8_t code = w->codes[at];
                if (code >= ncb)
                    return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                         "builder: layer %zu: code %u at row %u col %u >= 2^%u",
                                         li, code, r, c, bits);
                if (code == 0)
                    continue;
            }
            uint64_t gap = pos - prev - 1;
            entries += gap / (EIE_RUN_MAX + 1) + 1;
            nnz++;
            prev = pos;
        }
    fc->rows = rows;
    fc->cols = cols;
    fc->code_bits = bits;
    fc->storage = (uint32_t)w->storage;
    fc->nnz = nnz;
    fc->entries = entries;
    if (exact)
        fc->values = malloc((nnz ? nnz : 1) * sizeof(float));
    else
        fc->codebook = malloc(ncb * sizeof(float));
    fc->bias = calloc(rows, sizeof(float));
    fc->codes = malloc(entries ? entries : 1);
    fc->runs = malloc(entries ? entries : 1);
    if (!(exact ? (void *)fc->values : (void *)fc->codebook) || !fc->bias || !fc->codes ||
        !fc->runs) {
        eie_fc_clear(fc);
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: layer %zu: out of memory", li);
    }
    if (!exact)
        memcpy(fc->codebook, w->codebook, ncb * sizeof(float));
    if (w->bias != NULL)
        memcpy(fc->bias, w->bias, rows * sizeof(float));
    uint64_t e = 0, k = 0;
    prev = (uint64_t)-1;
    pos = 0;
    for (uint32_t c = 0; c < cols; c++)
        for (uint32_t r = 0; r < rows; r++, pos++) {
            size_t at = (size_t)r * cols + c;
            uint8_t code;
            if (exact) {
                if (w->values[at] == 0.0f)
                    continue;
                fc->values[k++] = w->values[at];
                code = 1;
            } else if ((code = w->codes[at]) == 0) {
                continue;
            }
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
    return EIE_STATUS_OK;
}

eie_status_t eie_builder_add_fc(eie_builder_t *builder, uint32_t rows, uint32_t cols,
                                uint32_t code_bits, const float *codebook, const uint8_t *codes,
                                const float *bias, eie_error_t *err)
{
    size_t li = builder->model.n_layers;
    if (builder->graph)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: eie_builder_add_fc is for chains; use eie_builder_add_node");
    if (builder->dim != 0 && cols != builder->dim)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: layer %zu: cols %u but the previous layer has %u outputs",
                             li, cols, builder->dim);
    eie_weights_t w = {.storage = EIE_STORAGE_SHARED, .code_bits = code_bits,
                       .codebook = codebook, .codes = codes, .bias = bias};
    eie_fc_t fc;
    eie_status_t st = fc_build(&fc, rows, cols, &w, li, err);
    if (st != EIE_STATUS_OK)
        return st;
    eie_layer_t *l = builder_push(builder, err);
    if (l == NULL) {
        eie_fc_clear(&fc);
        return err ? err->status : EIE_STATUS_NO_MEMORY;
    }
    l->kind = EIE_LAYER_FC;
    l->fc = fc;
    builder->model.n_layers++;
    if (builder->model.input_dim == 0)
        builder->model.input_dim = cols;
    builder->model.output_dim = rows;
    builder->dim = rows;
    return EIE_STATUS_OK;
}

eie_status_t eie_builder_add_activation(eie_builder_t *builder, eie_act_t act, eie_error_t *err)
{
    if (builder->graph)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: eie_builder_add_activation is for chains; use "
                             "eie_builder_add_node");
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

/* ---- graphs ------------------------------------------------------------- */

static eie_status_t need_graph(const eie_builder_t *b, const char *fn, eie_error_t *err)
{
    if (!b->graph)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: %s is for graphs (eie_builder_init_graph)", fn);
    return EIE_STATUS_OK;
}

/* A new tensor called name (unique, non-empty); its index in *t_out. */
static eie_status_t add_tensor(eie_builder_t *b, const char *name, eie_dtype_t dtype,
                               const eie_shape_t *shape, uint32_t *t_out, eie_error_t *err)
{
    eie_model_t *m = &b->model;
    eie_limits_t lim = eie_limits_default();
    char why[256];
    if (name == NULL || name[0] == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "builder: a tensor needs a name");
    if (eie_model_find_tensor(m, name) >= 0)
        return eie_error_set(err, EIE_STATUS_ALREADY_EXISTS,
                             "builder: tensor \"%s\" exists already", name);
    if (dtype != EIE_DTYPE_FP32)
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "builder: tensor \"%s\": datatype %d (only 1 = FP32)", name,
                             (int)dtype);
    if (eie_shape_check(shape, &lim, why, sizeof why) != 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "builder: tensor \"%s\": %s", name,
                             why);
    if (m->n_tensors >= lim.max_tensors)
        return eie_error_set(err, EIE_STATUS_LIMIT, "builder: more than %u tensors",
                             lim.max_tensors);
    if (m->n_tensors == m->cap_tensors) {
        size_t cap = m->cap_tensors ? m->cap_tensors * 2 : 16;
        eie_tensor_t *t = realloc(m->tensors, cap * sizeof *t);
        if (t == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: out of memory");
        m->tensors = t;
        m->cap_tensors = cap;
    }
    eie_tensor_t *t = &m->tensors[m->n_tensors];
    if ((t->name = dup_checked(name, "tensor name", err)) == NULL)
        return err ? err->status : EIE_STATUS_NO_MEMORY;
    t->dtype = dtype;
    t->shape = *shape;
    *t_out = (uint32_t)m->n_tensors++;
    return EIE_STATUS_OK;
}

static eie_status_t push_index(uint32_t **arr, size_t *n, size_t *cap, uint32_t v,
                               eie_error_t *err)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        uint32_t *a = realloc(*arr, c * sizeof *a);
        if (a == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: out of memory");
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = v;
    return EIE_STATUS_OK;
}

/* A shape an lstm's fed initial state has, [1,N,H]. */
static int maybe_state(const eie_shape_t *s)
{
    return s->rank == 3 && s->dims[0] == 1;
}

eie_status_t eie_builder_add_input(eie_builder_t *builder, const char *name, eie_dtype_t dtype,
                                   const eie_shape_t *shape, eie_error_t *err)
{
    eie_model_t *m = &builder->model;
    eie_status_t st = need_graph(builder, "eie_builder_add_input", err);
    if (st != EIE_STATUS_OK)
        return st;
    /* A [1,N,H] input may be an lstm's initial state, one row a run, outside the batch
       rule: eie_graph_check_inputs decides when the graph is written. */
    const eie_shape_t *first = m->n_inputs > 0 ? &m->tensors[m->inputs[0]].shape : NULL;
    if (first != NULL && first->dims[0] != shape->dims[0] && !maybe_state(shape) &&
        !maybe_state(first))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: input \"%s\" has batch dimension %lld but \"%s\" has %lld",
                             name ? name : "", (long long)shape->dims[0],
                             m->tensors[m->inputs[0]].name, (long long)first->dims[0]);
    uint32_t t;
    if ((st = add_tensor(builder, name, dtype, shape, &t, err)) != EIE_STATUS_OK)
        return st;
    return push_index(&m->inputs, &m->n_inputs, &m->cap_inputs, t, err);
}

eie_status_t eie_builder_add_output(eie_builder_t *builder, const char *name, eie_error_t *err)
{
    eie_model_t *m = &builder->model;
    eie_status_t st = need_graph(builder, "eie_builder_add_output", err);
    if (st != EIE_STATUS_OK)
        return st;
    long t = eie_model_find_tensor(m, name ? name : "");
    if (t < 0)
        return eie_error_set(err, EIE_STATUS_NOT_FOUND, "builder: no tensor \"%s\" to output",
                             name ? name : "");
    for (size_t i = 0; i < m->n_inputs; i++)
        if (m->inputs[i] == (uint32_t)t)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "builder: output \"%s\" is a graph input, not computed by a node",
                                 name);
    for (size_t i = 0; i < m->n_outputs; i++)
        if (m->outputs[i] == (uint32_t)t)
            return eie_error_set(err, EIE_STATUS_ALREADY_EXISTS,
                                 "builder: \"%s\" is an output already", name);
    return push_index(&m->outputs, &m->n_outputs, &m->cap_outputs, (uint32_t)t, err);
}

eie_status_t eie_builder_tensor_shape(const eie_builder_t *builder, const char *name,
                                      eie_shape_t *shape_out, eie_error_t *err)
{
    long t = eie_model_find_tensor(&builder->model, name ? name : "");
    if (t < 0)
        return eie_error_set(err, EIE_STATUS_NOT_FOUND, "builder: no tensor \"%s\"",
                             name ? name : "");
    *shape_out = builder->model.tensors[t].shape;
    return EIE_STATUS_OK;
}

/* An LSTM node's own fields: hidden size, lanes, a copy of the initial state. */
static eie_status_t lstm_prep(const eie_model_t *m, eie_layer_t *l, const eie_lstm_desc_t *d,
                              size_t li, eie_error_t *err)
{
    const eie_shape_t *x = &m->tensors[l->inputs[0]].shape;
    l->lstm.hidden = d->hidden_size;
    if (x->rank != 3 || d->hidden_size == 0 || d->hidden_size > (1u << 20) / 4)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: node %zu (lstm): needs a [T,N,I] input and hidden_size "
                             "1..%u, has rank %u and hidden_size %u",
                             li, (1u << 20) / 4, x->rank, d->hidden_size);
    if (d->output_c != NULL && d->output_h == NULL)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: node %zu (lstm): Y_c \"%s\" needs a Y_h output", li,
                             d->output_c);
    l->lstm.lanes = (uint32_t)x->dims[1];
    /* a fed state is the node's next input after X (FORMAT.md "LSTM"); eie_graph_infer
       checks it is a graph input of shape [1,N,H] */
    const char *fed[2] = {d->initial_h_input, d->initial_c_input};
    if (l->n_inputs != 1)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: node %zu (lstm): %u inputs; give X alone and the fed "
                             "state as initial_h_input / initial_c_input",
                             li, l->n_inputs);
    for (int k = 0; k < 2; k++) {
        l->lstm.initial_in[k] = UINT32_MAX;
        if (fed[k] == NULL)
            continue;
        long t = eie_model_find_tensor(m, fed[k]);
        if (t < 0)
            return eie_error_set(err, EIE_STATUS_NOT_FOUND,
                                 "builder: node %zu (lstm): initial_%c input \"%s\" is no tensor",
                                 li, k ? 'c' : 'h', fed[k]);
        uint32_t *in = realloc(l->inputs, (l->n_inputs + 1) * sizeof *in);
        if (in == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: out of memory");
        l->inputs = in;
        l->inputs[l->n_inputs++] = (uint32_t)t;
        l->lstm.initial_in[k] = (uint32_t)t;
    }
    size_t n = (size_t)l->lstm.lanes * d->hidden_size;
    const float *src[2] = {d->initial_h, d->initial_c};
    for (int k = 0; k < 2; k++) {
        if (src[k] == NULL)
            continue;
        for (size_t i = 0; i < n; i++)
            if (!isfinite(src[k][i]))
                return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                     "builder: node %zu (lstm): initial_%c[%zu] is not finite",
                                     li, k ? 'c' : 'h', i);
        if ((l->lstm.initial[k] = malloc(n * sizeof(float))) == NULL)
            return eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: out of memory");
        memcpy(l->lstm.initial[k], src[k], n * sizeof(float));
    }
    return EIE_STATUS_OK;
}

eie_status_t eie_builder_add_node(eie_builder_t *builder, const eie_node_desc_t *d,
                                  eie_error_t *err)
{
    eie_model_t *m = &builder->model;
    eie_limits_t lim = eie_limits_default();
    size_t li = m->n_layers;
    eie_status_t st = need_graph(builder, "eie_builder_add_node", err);
    if (st != EIE_STATUS_OK)
        return st;
    const char *kname = eie_layer_kind_name(d->kind);
    if (kname == NULL)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "builder: node %zu: unknown kind %d",
                             li, (int)d->kind);
    if (d->n_inputs == 0 || d->n_inputs > lim.max_tensors || d->inputs == NULL)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "builder: node %zu (%s): %zu inputs, must be 1..%u", li, kname,
                             d->n_inputs, lim.max_tensors);
    eie_layer_t l = {.kind = d->kind, .act = d->act, .axis = d->axis, .conv = d->conv,
                     .pool = d->pool, .n_inputs = (uint32_t)d->n_inputs};
    if (d->kind != EIE_LAYER_CONV2D)
        memset(&l.conv, 0, sizeof l.conv);
    if (d->kind != EIE_LAYER_MAXPOOL2D && d->kind != EIE_LAYER_AVGPOOL2D)
        memset(&l.pool, 0, sizeof l.pool);
    if (d->kind != EIE_LAYER_CONCAT &&
        !(d->kind == EIE_LAYER_ACTIVATION && d->act == EIE_ACT_SOFTMAX))
        l.axis = 0;
    if (d->kind != EIE_LAYER_ACTIVATION)
        l.act = EIE_ACT_IDENTITY;
    l.inputs = malloc(d->n_inputs * sizeof *l.inputs);
    if (l.inputs == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "builder: out of memory");
    for (size_t k = 0; k < d->n_inputs; k++) {
        long t = eie_model_find_tensor(m, d->inputs[k] ? d->inputs[k] : "");
        if (t < 0) {
            st = eie_error_set(err, EIE_STATUS_NOT_FOUND,
                               "builder: node %zu (%s): input \"%s\" is no tensor yet", li, kname,
                               d->inputs[k] ? d->inputs[k] : "");
            goto error;
        }
        l.inputs[k] = (uint32_t)t;
        if (eie_model_is_lstm_state(m, (uint32_t)t)) {
            st = eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                               "builder: node %zu (%s): input \"%s\" is an lstm's final state "
                               "(Y_h or Y_c), which only a graph output may take",
                               li, kname, d->inputs[k]);
            goto error;
        }
    }
    l.lstm.state[0] = l.lstm.state[1] = UINT32_MAX;
    l.lstm.initial_in[0] = l.lstm.initial_in[1] = UINT32_MAX;
    if (d->kind == EIE_LAYER_LSTM && (st = lstm_prep(m, &l, &d->lstm, li, err)) != 0)
        goto error;
    if (d->kind == EIE_LAYER_FC || d->kind == EIE_LAYER_CONV2D || d->kind == EIE_LAYER_LSTM) {
        const eie_shape_t *x = &m->tensors[l.inputs[0]].shape;
        uint64_t cols = 0;
        if (d->kind == EIE_LAYER_LSTM && x->rank == 3)
            cols = (uint64_t)x->dims[2] + d->lstm.hidden_size;
        if (d->kind == EIE_LAYER_FC && x->rank >= 2)
            cols = (uint64_t)x->dims[x->rank - 1];
        else if (d->kind == EIE_LAYER_CONV2D && x->rank == 4 && d->conv.groups > 0)
            cols = (uint64_t)x->dims[1] / d->conv.groups * d->conv.kernel_h * d->conv.kernel_w;
        if (cols == 0 || cols > lim.max_dim) {
            char a[160];
            eie_shape_format(x, a, sizeof a);
            st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                               "builder: node %zu (%s): input %s gives %llu weight columns, must "
                               "be 1..%u",
                               li, kname, a, (unsigned long long)cols, lim.max_dim);
            goto error;
        }
        if ((st = fc_build(&l.fc, d->rows, (uint32_t)cols, &d->weights, li, err)) != 0)
            goto error;
    }
    eie_shape_t out;
    const char *field;
    char why[400];
    if (eie_graph_infer(m, &l, &lim, &d->shape, &out, &field, why, sizeof why) != 0) {
        st = eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "builder: node %zu (%s): %s", li,
                           kname, why);
        goto error;
    }
    if ((l.name = dup_checked(d->name, "node name", err)) == NULL) {
        st = err ? err->status : EIE_STATUS_NO_MEMORY;
        goto error;
    }
    eie_layer_t *slot = builder_push(builder, err);
    if (slot == NULL) {
        st = err ? err->status : EIE_STATUS_NO_MEMORY;
        goto error;
    }
    if ((st = add_tensor(builder, d->output, EIE_DTYPE_FP32, &out, &l.output, err)) != 0)
        goto error;
    if (d->kind == EIE_LAYER_LSTM) {
        eie_shape_t ss = eie_lstm_state_shape(&m->tensors[l.inputs[0]].shape, l.lstm.hidden);
        const char *names[2] = {d->lstm.output_h, d->lstm.output_c};
        for (int k = 0; k < 2; k++)
            if (names[k] != NULL &&
                (st = add_tensor(builder, names[k], EIE_DTYPE_FP32, &ss, &l.lstm.state[k], err)) !=
                    0)
                goto error;
    }
    *slot = l;
    m->n_layers++;
    return EIE_STATUS_OK;
error:
    free(l.inputs);
    free(l.name);
    free(l.lstm.initial[0]);
    free(l.lstm.initial[1]);
    eie_fc_clear(&l.fc);
    return st;
}

/* format.h */
eie_status_t eie_builder_check(const eie_builder_t *builder, const char *who, eie_error_t *err)
{
    const eie_model_t *m = &builder->model;
    if (builder->graph) {
        char why[400];
        if (m->n_inputs == 0 || m->n_outputs == 0 || m->n_layers == 0)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "%s: a graph needs an input, a node and an output", who);
        if (eie_graph_check_inputs(m, why, sizeof why) != 0)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "%s: %s", who, why);
    } else if (builder->dim == 0) {
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: the model has no fully connected layer", who);
    }
    return EIE_STATUS_OK;
}

eie_status_t eie_builder_write_memory(const eie_builder_t *builder, uint8_t **data_out,
                                      size_t *len_out, eie_error_t *err)
{
    eie_status_t st = eie_builder_check(builder, "builder", err);
    if (st != EIE_STATUS_OK)
        return st;
    return eie_format_write(&builder->model, data_out, len_out, err);
}

eie_status_t eie_builder_write_file(const eie_builder_t *builder, const char *path,
                                    eie_error_t *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char *tmp = NULL;
    int fd = -1;
    eie_status_t st = eie_builder_write_memory(builder, &data, &len, err);
    if (st != EIE_STATUS_OK)
        return st;
    size_t pl = strlen(path);
    tmp = malloc(pl + 16);
    if (tmp == NULL) {
        st = eie_error_set(err, EIE_STATUS_NO_MEMORY, "writer: out of memory");
        goto error;
    }
    /* Write beside the target and rename: readers see the old file or the
     * whole new one, never a partial write. */
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        st = eie_error_set(err, EIE_STATUS_IO, "%s: cannot create temporary file: %s", path,
                           strerror(errno));
        goto error;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = eie_error_set(err, EIE_STATUS_IO, "%s: write failed: %s", tmp, strerror(errno));
            goto error;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        st = eie_error_set(err, EIE_STATUS_IO, "%s: %s", tmp, strerror(errno));
        goto error;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = eie_error_set(err, EIE_STATUS_IO, "%s: close failed: %s", tmp, strerror(errno));
        goto error;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        st = eie_error_set(err, EIE_STATUS_IO, "%s: rename to %s failed: %s", tmp, path,
                           strerror(errno));
        goto error;
    }
    free(tmp);
    free(data);
    return EIE_STATUS_OK;
error:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL && st != EIE_STATUS_NO_MEMORY)
        unlink(tmp);
    free(tmp);
    free(data);
    return st;
}
