/*
 * rest_json.c - KServe v2 REST inference bodies <-> gRPC messages (see
 * rest_json.h). The request is built as protobuf-c structs in one arena,
 * packed, and the arena dropped; the response is unpacked and written out.
 */
#include "rest_json.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference.pb-c.h"

/* Every allocation of one decode, freed together. */
typedef struct {
    void **p;
    size_t n, cap;
} arena_t;

static void *arena_alloc(arena_t *a, size_t size)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        void **grown = realloc(a->p, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        a->p = grown;
        a->cap = cap;
    }
    void *m = calloc(1, size ? size : 1);
    if (m != NULL)
        a->p[a->n++] = m;
    return m;
}

static char *arena_strdup(arena_t *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = arena_alloc(a, n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static void arena_free(arena_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->p[i]);
    free(a->p);
}

static eie_status_t no_memory(eie_error_t *err)
{
    return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory decoding the request");
}

/* A JSON parameter value as an InferParameter (bool, integer, string, number). */
static eie_status_t parameter(arena_t *a, const char *where, const char *key, json_t *v,
                              Inference__InferParameter **out, eie_error_t *err)
{
    Inference__InferParameter *p = arena_alloc(a, sizeof *p);
    if (p == NULL)
        return no_memory(err);
    inference__infer_parameter__init(p);
    if (json_is_boolean(v)) {
        p->parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM;
        p->bool_param = json_is_true(v);
    } else if (json_is_integer(v)) {
        p->parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
        p->int64_param = json_integer_value(v);
    } else if (json_is_real(v)) {
        p->parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM;
        p->double_param = json_real_value(v);
    } else if (json_is_string(v)) {
        p->parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM;
        if ((p->string_param = arena_strdup(a, json_string_value(v))) == NULL)
            return no_memory(err);
    } else {
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: parameter '%.64s' must be a bool, number or string", where, key);
    }
    *out = p;
    return EIE_STATUS_OK;
}

/* Counts the numbers of a (nested) "data" array, checking each is a number. */
static eie_status_t count_data(const json_t *v, int depth, const char *name, size_t *n,
                               eie_error_t *err)
{
    if (json_is_number(v)) {
        (*n)++;
        return EIE_STATUS_OK;
    }
    if (!json_is_array(v))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "input '%.64s': \"data\" holds a %s where a number was expected "
                             "(FP32 data are numbers)",
                             name, json_is_string(v) ? "string" : json_is_boolean(v) ? "bool"
                                                      : json_is_null(v)      ? "null"
                                                                             : "object");
    if (depth >= EIED_REST_MAX_DEPTH)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "input '%.64s': \"data\" nests deeper than %d arrays", name,
                             EIED_REST_MAX_DEPTH);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        eie_status_t st = count_data(e, depth + 1, name, n, err);
        if (st != EIE_STATUS_OK)
            return st;
    }
    return EIE_STATUS_OK;
}

/* Writes the numbers of "data" in row-major order (flattening nested arrays). */
static void flatten(const json_t *v, float *out, size_t *at)
{
    if (json_is_number(v)) {
        out[(*at)++] = (float)json_number_value(v);
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) flatten(e, out, at);
}

static eie_status_t decode_input(arena_t *a, json_t *in, size_t index, bool *binary,
                                 size_t *binary_size, Inference__ModelInferRequest__InferInputTensor **out,
                                 eie_error_t *err)
{
    char where[96];
    snprintf(where, sizeof where, "inputs[%zu]", index);
    if (!json_is_object(in))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "%s must be an object", where);
    json_t *name = json_object_get(in, "name"), *shape = json_object_get(in, "shape");
    json_t *dtype = json_object_get(in, "datatype"), *params = json_object_get(in, "parameters");
    if (!json_is_string(name))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: \"name\" (a string) is required", where);
    const char *nm = json_string_value(name);
    snprintf(where, sizeof where, "input '%.64s'", nm);
    if (!json_is_string(dtype))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: \"datatype\" (a string such as \"FP32\") is required", where);
    if (!json_is_array(shape))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: \"shape\" (an array of integers) is required", where);
    Inference__ModelInferRequest__InferInputTensor *t = arena_alloc(a, sizeof *t);
    if (t == NULL)
        return no_memory(err);
    inference__model_infer_request__infer_input_tensor__init(t);
    if ((t->name = arena_strdup(a, nm)) == NULL ||
        (t->datatype = arena_strdup(a, json_string_value(dtype))) == NULL)
        return no_memory(err);
    t->n_shape = json_array_size(shape);
    if ((t->shape = arena_alloc(a, t->n_shape * sizeof *t->shape)) == NULL)
        return no_memory(err);
    for (size_t i = 0; i < t->n_shape; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d))
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "%s: \"shape\"[%zu] is not an integer", where, i);
        t->shape[i] = json_integer_value(d);
    }
    *binary = false;
    *binary_size = 0;
    if (params != NULL && !json_is_object(params))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: \"parameters\" must be an object", where);
    const char *key;
    json_t *v;
    size_t n_params = 0;
    json_object_foreach(params, key, v)
    {
        if (strcmp(key, "binary_data_size") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                     "%s: \"binary_data_size\" must be a non-negative integer",
                                     where);
            *binary = true;
            *binary_size = (size_t)json_integer_value(v);
        } else {
            n_params++;
        }
    }
    if (n_params > 0) {
        t->parameters = arena_alloc(a, n_params * sizeof *t->parameters);
        if (t->parameters == NULL)
            return no_memory(err);
        json_object_foreach(params, key, v)
        {
            if (strcmp(key, "binary_data_size") == 0)
                continue;
            Inference__ModelInferRequest__InferInputTensor__ParametersEntry *e =
                arena_alloc(a, sizeof *e);
            if (e == NULL)
                return no_memory(err);
            inference__model_infer_request__infer_input_tensor__parameters_entry__init(e);
            if ((e->key = arena_strdup(a, key)) == NULL)
                return no_memory(err);
            eie_status_t st = parameter(a, where, key, v, &e->value, err);
            if (st != EIE_STATUS_OK)
                return st;
            t->parameters[t->n_parameters++] = e;
        }
    }
    json_t *data = json_object_get(in, "data");
    if (*binary && data != NULL)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "%s: both \"data\" and \"binary_data_size\" given", where);
    if (!*binary) {
        if (data == NULL)
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                 "%s: \"data\" (or \"binary_data_size\" with a binary body) is "
                                 "required",
                                 where);
        size_t n = 0;
        eie_status_t st = count_data(data, 0, nm, &n, err);
        if (st != EIE_STATUS_OK)
            return st;
        Inference__InferTensorContents *c = arena_alloc(a, sizeof *c);
        if (c == NULL)
            return no_memory(err);
        inference__infer_tensor_contents__init(c);
        c->fp32_contents = arena_alloc(a, n * sizeof(float));
        if (c->fp32_contents == NULL)
            return no_memory(err);
        size_t at = 0;
        flatten(data, c->fp32_contents, &at);
        c->n_fp32_contents = at;
        t->contents = c;
    }
    *out = t;
    return EIE_STATUS_OK;
}

static eie_status_t decode(arena_t *a, json_t *root, const uint8_t *bin, size_t bin_len,
                           const char *model, const char *version, eied_rest_infer_t *out,
                           eie_error_t *err)
{
    if (!json_is_object(root))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "the request body must be a JSON object");
    Inference__ModelInferRequest *r = arena_alloc(a, sizeof *r);
    if (r == NULL)
        return no_memory(err);
    inference__model_infer_request__init(r);
    r->model_name = arena_strdup(a, model);
    r->model_version = arena_strdup(a, version);
    if (r->model_name == NULL || r->model_version == NULL)
        return no_memory(err);
    json_t *id = json_object_get(root, "id");
    if (id != NULL) {
        if (!json_is_string(id))
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "\"id\" must be a string");
        if ((r->id = arena_strdup(a, json_string_value(id))) == NULL)
            return no_memory(err);
    }
    json_t *params = json_object_get(root, "parameters");
    if (params != NULL && !json_is_object(params))
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "\"parameters\" must be an object");
    if (params != NULL) {
        r->parameters = arena_alloc(a, json_object_size(params) * sizeof *r->parameters);
        if (r->parameters == NULL)
            return no_memory(err);
        const char *key;
        json_t *v;
        json_object_foreach(params, key, v)
        {
            if (strcmp(key, "binary_data_output") == 0) { /* REST only: how to answer */
                if (!json_is_boolean(v))
                    return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                         "\"binary_data_output\" must be true or false");
                out->binary_all = json_is_true(v);
                continue;
            }
            Inference__ModelInferRequest__ParametersEntry *e = arena_alloc(a, sizeof *e);
            if (e == NULL)
                return no_memory(err);
            inference__model_infer_request__parameters_entry__init(e);
            if ((e->key = arena_strdup(a, key)) == NULL)
                return no_memory(err);
            eie_status_t st = parameter(a, "request", key, v, &e->value, err);
            if (st != EIE_STATUS_OK)
                return st;
            r->parameters[r->n_parameters++] = e;
        }
    }
    json_t *inputs = json_object_get(root, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) == 0)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "\"inputs\" (a non-empty array) is required");
    r->n_inputs = json_array_size(inputs);
    r->inputs = arena_alloc(a, r->n_inputs * sizeof *r->inputs);
    bool *is_bin = arena_alloc(a, r->n_inputs * sizeof *is_bin);
    size_t *bin_size = arena_alloc(a, r->n_inputs * sizeof *bin_size);
    if (r->inputs == NULL || is_bin == NULL || bin_size == NULL)
        return no_memory(err);
    size_t n_bin = 0, bin_total = 0;
    for (size_t i = 0; i < r->n_inputs; i++) {
        eie_status_t st =
            decode_input(a, json_array_get(inputs, i), i, &is_bin[i], &bin_size[i], &r->inputs[i], err);
        if (st != EIE_STATUS_OK)
            return st;
        if (is_bin[i]) {
            n_bin++;
            if (bin_size[i] > bin_len - bin_total)
                return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                     "input '%.64s': binary_data_size %zu runs past the %zu "
                                     "binary bytes after the JSON header",
                                     r->inputs[i]->name, bin_size[i], bin_len);
            bin_total += bin_size[i];
        }
    }
    if (bin_total != bin_len)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "the body has %zu binary bytes after the JSON header, the inputs' "
                             "binary_data_size add up to %zu",
                             bin_len, bin_total);
    if (n_bin > 0) {
        /* gRPC's rule: raw contents for all inputs or none, so JSON data goes raw too */
        r->n_raw_input_contents = r->n_inputs;
        r->raw_input_contents = arena_alloc(a, r->n_inputs * sizeof *r->raw_input_contents);
        if (r->raw_input_contents == NULL)
            return no_memory(err);
        size_t at = 0;
        for (size_t i = 0; i < r->n_inputs; i++) {
            ProtobufCBinaryData *raw = &r->raw_input_contents[i];
            if (is_bin[i]) {
                raw->len = bin_size[i];
                raw->data = (uint8_t *)bin + at;
                at += bin_size[i];
            } else { /* float32 little-endian, as raw_input_contents carries it */
                Inference__InferTensorContents *c = r->inputs[i]->contents;
                raw->len = c->n_fp32_contents * sizeof(float);
                raw->data = (uint8_t *)c->fp32_contents;
                r->inputs[i]->contents = NULL;
            }
        }
    }
    json_t *outputs = json_object_get(root, "outputs");
    if (outputs != NULL) {
        if (!json_is_array(outputs))
            return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT, "\"outputs\" must be an array");
        r->n_outputs = json_array_size(outputs);
        r->outputs = arena_alloc(a, r->n_outputs * sizeof *r->outputs);
        if (r->outputs == NULL)
            return no_memory(err);
        for (size_t i = 0; i < r->n_outputs; i++) {
            json_t *o = json_array_get(outputs, i);
            json_t *nm = json_object_get(o, "name"), *op = json_object_get(o, "parameters");
            if (!json_is_string(nm))
                return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                     "outputs[%zu]: \"name\" (a string) is required", i);
            json_t *bd = json_object_get(op, "binary_data");
            if ((op != NULL && !json_is_object(op)) || (bd != NULL && !json_is_boolean(bd)))
                return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                                     "output '%.64s': \"parameters\" must be an object and "
                                     "\"binary_data\" true or false",
                                     json_string_value(nm));
            Inference__ModelInferRequest__InferRequestedOutputTensor *t = arena_alloc(a, sizeof *t);
            if (t == NULL)
                return no_memory(err);
            inference__model_infer_request__infer_requested_output_tensor__init(t);
            if ((t->name = arena_strdup(a, json_string_value(nm))) == NULL)
                return no_memory(err);
            r->outputs[i] = t;
        }
        out->outputs = json_incref(outputs);
    }
    size_t n = inference__model_infer_request__get_packed_size(r);
    if ((out->request = malloc(n ? n : 1)) == NULL)
        return no_memory(err);
    out->request_len = inference__model_infer_request__pack(r, out->request);
    return EIE_STATUS_OK;
}

eie_status_t eied_rest_infer_decode(const uint8_t *body, size_t len, size_t json_len,
                                    const char *model, const char *version,
                                    eied_rest_infer_t *out, eie_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (json_len == 0)
        json_len = len;
    if (json_len > len)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "Inference-Header-Content-Length %zu is larger than the body (%zu "
                             "bytes)",
                             json_len, len);
    json_error_t je;
    json_t *root = json_loadb((const char *)body, json_len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return eie_error_set(err, EIE_STATUS_INVALID_ARGUMENT,
                             "the request is not valid JSON: %s (line %d, column %d)", je.text,
                             je.line, je.column);
    arena_t a = {0};
    eie_status_t st =
        decode(&a, root, body + json_len, len - json_len, model, version, out, err);
    arena_free(&a);
    json_decref(root);
    if (st != EIE_STATUS_OK)
        eied_rest_infer_free(out);
    return st;
}

void eied_rest_infer_free(eied_rest_infer_t *t)
{
    free(t->request);
    json_decref(t->outputs);
    memset(t, 0, sizeof *t);
}

/* Whether output name is to be sent in binary. */
static bool wants_binary(const eied_rest_infer_t *req, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach((json_t *)req->outputs, i, o)
    {
        const char *n = json_string_value(json_object_get(o, "name"));
        if (n != NULL && strcmp(n, name) == 0) {
            json_t *bd = json_object_get(json_object_get(o, "parameters"), "binary_data");
            if (bd != NULL)
                return json_is_true(bd);
        }
    }
    return req->binary_all;
}

static json_t *parameter_json(const Inference__InferParameter *p)
{
    switch (p->parameter_choice_case) {
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_BOOL_PARAM:
        return json_boolean(p->bool_param);
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM:
        return json_integer(p->int64_param);
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM:
        return json_string(p->string_param);
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM:
        return isfinite(p->double_param) ? json_real(p->double_param) : json_null();
    case INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM:
        return json_integer((json_int_t)p->uint64_param);
    default:
        return json_null();
    }
}

static eie_status_t encode(const eied_rest_infer_t *req, const Inference__ModelInferResponse *r,
                           json_t *root, uint8_t **body_out, size_t *len_out,
                           size_t *json_len_out, eie_error_t *err)
{
    json_object_set_new(root, "model_name", json_string(r->model_name ? r->model_name : ""));
    json_object_set_new(root, "model_version",
                        json_string(r->model_version ? r->model_version : ""));
    if (r->id != NULL && r->id[0] != '\0')
        json_object_set_new(root, "id", json_string(r->id));
    if (r->n_parameters > 0) {
        json_t *ps = json_object();
        for (size_t i = 0; i < r->n_parameters; i++)
            json_object_set_new(ps, r->parameters[i]->key, parameter_json(r->parameters[i]->value));
        json_object_set_new(root, "parameters", ps);
    }
    json_t *outs = json_array();
    json_object_set_new(root, "outputs", outs);
    size_t bin_total = 0;
    for (size_t i = 0; i < r->n_outputs; i++) {
        const Inference__ModelInferResponse__InferOutputTensor *t = r->outputs[i];
        if (i >= r->n_raw_output_contents || r->raw_output_contents[i].len % sizeof(float) != 0)
            return eie_error_set(err, EIE_STATUS_INTERNAL,
                                 "output '%s': the response carries no float32 data",
                                 t->name ? t->name : "");
        const ProtobufCBinaryData *raw = &r->raw_output_contents[i];
        json_t *o = json_object();
        json_array_append_new(outs, o);
        json_object_set_new(o, "name", json_string(t->name ? t->name : ""));
        json_object_set_new(o, "datatype", json_string(t->datatype ? t->datatype : "FP32"));
        json_t *shape = json_array();
        for (size_t k = 0; k < t->n_shape; k++)
            json_array_append_new(shape, json_integer(t->shape[k]));
        json_object_set_new(o, "shape", shape);
        if (wants_binary(req, t->name ? t->name : "")) {
            json_t *ps = json_object();
            json_object_set_new(ps, "binary_data_size", json_integer((json_int_t)raw->len));
            json_object_set_new(o, "parameters", ps);
            bin_total += raw->len;
            continue;
        }
        size_t n = raw->len / sizeof(float);
        json_t *data = json_array();
        json_object_set_new(o, "data", data);
        for (size_t k = 0; k < n; k++) {
            float f;
            memcpy(&f, raw->data + k * sizeof f, sizeof f); /* raw bytes may be unaligned */
            /* JSON has no NaN or infinity: null stands for them */
            if (json_array_append_new(data, isfinite(f) ? json_real(f) : json_null()) != 0)
                return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory encoding");
        }
    }
    /* 9 significant digits read back to the same float32 */
    size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(9);
    size_t json_len = json_dumpb(root, NULL, 0, flags);
    if (json_len == 0)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory encoding");
    uint8_t *body = malloc(json_len + bin_total);
    if (body == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory encoding");
    json_dumpb(root, (char *)body, json_len, flags);
    size_t at = json_len;
    for (size_t i = 0; i < r->n_outputs; i++)
        if (wants_binary(req, r->outputs[i]->name ? r->outputs[i]->name : "")) {
            memcpy(body + at, r->raw_output_contents[i].data, r->raw_output_contents[i].len);
            at += r->raw_output_contents[i].len;
        }
    *body_out = body;
    *len_out = json_len + bin_total;
    *json_len_out = json_len;
    return EIE_STATUS_OK;
}

eie_status_t eied_rest_infer_encode(const eied_rest_infer_t *req, const uint8_t *response,
                                    size_t response_len, uint8_t **body_out, size_t *len_out,
                                    size_t *json_len_out, eie_error_t *err)
{
    Inference__ModelInferResponse *r =
        inference__model_infer_response__unpack(NULL, response_len, response);
    if (r == NULL)
        return eie_error_set(err, EIE_STATUS_INTERNAL, "the inference response does not parse");
    json_t *root = json_object();
    eie_status_t st = root ? encode(req, r, root, body_out, len_out, json_len_out, err)
                           : eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory encoding");
    json_decref(root);
    inference__model_infer_response__free_unpacked(r, NULL);
    return st;
}

static json_t *field_value(const ProtobufCFieldDescriptor *f, const void *at);

static json_t *message_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const uint8_t *base = (const uint8_t *)m;
        const void *at = base + f->offset;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            bool map = f->type == PROTOBUF_C_TYPE_MESSAGE &&
                       ((const ProtobufCMessageDescriptor *)f->descriptor)->n_fields == 2 &&
                       strcmp(((const ProtobufCMessageDescriptor *)f->descriptor)->fields[0].name,
                              "key") == 0 &&
                       strstr(((const ProtobufCMessageDescriptor *)f->descriptor)->name,
                              "Entry") != NULL;
            v = map ? json_object() : json_array();
            size_t size = f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING
                              ? sizeof(void *)
                          : f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData)
                          : f->type == PROTOBUF_C_TYPE_BOOL  ? sizeof(protobuf_c_boolean)
                          : f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_UINT64 ||
                                  f->type == PROTOBUF_C_TYPE_DOUBLE || f->type == PROTOBUF_C_TYPE_SINT64 ||
                                  f->type == PROTOBUF_C_TYPE_SFIXED64 ||
                                  f->type == PROTOBUF_C_TYPE_FIXED64
                              ? 8
                              : 4;
            const uint8_t *arr = *(const uint8_t *const *)at;
            for (size_t k = 0; v != NULL && k < n; k++) {
                const void *e = arr + k * size;
                if (map) {
                    const ProtobufCMessage *entry = *(const ProtobufCMessage *const *)e;
                    const ProtobufCMessageDescriptor *ed = entry->descriptor;
                    const char *key = *(char *const *)((const uint8_t *)entry + ed->fields[0].offset);
                    json_object_set_new(v, key ? key : "",
                                        field_value(&ed->fields[1],
                                                    (const uint8_t *)entry + ed->fields[1].offset));
                } else {
                    json_array_append_new(v, field_value(f, e));
                }
            }
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                    continue;
            } else if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void *const *)at == NULL) {
                continue;
            }
            v = field_value(f, at);
        }
        if (v == NULL || json_object_set_new(o, f->name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *field_value(const ProtobufCFieldDescriptor *f, const void *at)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)at);
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)at);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)at);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)at);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_integer((json_int_t) * (const uint64_t *)at);
    case PROTOBUF_C_TYPE_FLOAT:
        return isfinite(*(const float *)at) ? json_real(*(const float *)at) : json_null();
    case PROTOBUF_C_TYPE_DOUBLE:
        return isfinite(*(const double *)at) ? json_real(*(const double *)at) : json_null();
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)at);
        return ev ? json_string(ev->name) : json_integer(*(const int *)at);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *str = *(char *const *)at;
        return json_string(str ? str : "");
    }
    case PROTOBUF_C_TYPE_BYTES: /* not in any reply served over REST */
        return json_null();
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)at;
        return sub ? message_json(sub) : json_object();
    }
    }
    return json_null();
}

void *eied_rest_message_json(const ProtobufCMessage *msg) { return message_json(msg); }

char *eied_rest_json_dump_free(void *json)
{
    char *s = json ? json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(json);
    return s;
}

void *eied_rest_json_take(void *json, const char *key)
{
    json_t *v = json_incref(json_object_get(json, key));
    json_decref(json);
    return v;
}

bool eied_rest_body_flag(const uint8_t *body, size_t len, const char *key, int *out)
{
    json_error_t je;
    json_t *root = json_loadb((const char *)body, len, 0, &je);
    json_t *v = json_object_get(root, key);
    bool ok = json_is_object(root) && (v == NULL || json_is_boolean(v));
    *out = ok && json_is_true(v);
    json_decref(root);
    return ok;
}

char *eied_rest_error_body(const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg ? msg : "");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}
