/*
 * ModelReady and ModelMetadata. Metadata properties carry the compression
 * facts of the served version (layers, nonzeros, density, code bits, bytes,
 * ratio to dense float32), so a client can see what it is talking to.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "inference.pb-c.h"
#include "loader.h"
#include "models.h"
#include "rpc.h"

static void on_model_ready(eied_app_t *app, eied_call_t *call)
{
    Inference__ModelReadyRequest *req = (Inference__ModelReadyRequest *)eied_call_read(
        call, &inference__model_ready_request__descriptor);
    if (req == NULL)
        return;
    eied_model_t *m = eied_models_find(app->models, req->name);
    Inference__ModelReadyResponse resp = INFERENCE__MODEL_READY_RESPONSE__INIT;
    resp.ready = m != NULL && m->current != NULL && m->state == EIED_MODEL_READY;
    if (resp.ready && req->version[0] != '\0') {
        char *end;
        unsigned long long want = strtoull(req->version, &end, 10);
        resp.ready = *end == '\0' && want > 0 && eied_model_version(m, want) != NULL;
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
    eied_call_reply(call, &resp.base);
}

/* The version a request names (its model in *model_out): the model's current one for "",
   else that number. NULL after failing the call: unknown model, not ready, or no such
   version. */
static eied_version_t *served_version(eied_app_t *app, eied_call_t *call, const char *name,
                                      const char *version, eied_model_t **model_out)
{
    eied_model_t *m = eied_models_find(app->models, name);
    *model_out = m;
    if (m == NULL || m->state == EIED_MODEL_UNLOADED) {
        eied_call_fail(call, EIE_STATUS_NOT_FOUND, "unknown model '%s'", name);
        return NULL;
    }
    if (m->current == NULL) {
        eied_call_fail(call, EIE_STATUS_UNAVAILABLE, "model '%s' is not ready (%s)", name,
                       eied_model_state_name(m->state));
        return NULL;
    }
    if (version[0] == '\0')
        return m->current;
    char *end;
    unsigned long long want = strtoull(version, &end, 10);
    eied_version_t *v = *end == '\0' && want > 0 ? eied_model_version(m, want) : NULL;
    if (v == NULL)
        eied_call_fail(call, EIE_STATUS_NOT_FOUND, "model '%s' has no version '%s'", name,
                       version);
    return v;
}

static void on_model_metadata(eied_app_t *app, eied_call_t *call)
{
    Inference__ModelMetadataRequest *req = (Inference__ModelMetadataRequest *)eied_call_read(
        call, &inference__model_metadata_request__descriptor);
    if (req == NULL)
        return;
    eied_model_t *m;
    eied_version_t *v = served_version(app, call, req->name, req->version, &m);
    if (v == NULL)
        goto done;
    char version_text[EIED_MAX_VERSIONS][32];
    char *versions[EIED_MAX_VERSIONS];
    for (size_t i = 0; i < m->n_versions; i++) {
        snprintf(version_text[i], sizeof version_text[i], "%" PRIu64, m->versions[i]->version);
        versions[i] = version_text[i];
    }
    Inference__ModelMetadataResponse resp = INFERENCE__MODEL_METADATA_RESPONSE__INIT;
    /* Every graph input and output under its own name, datatype and full shape. */
    size_t n_in = eie_model_input_count(v->model), n_out = eie_model_output_count(v->model);
    size_t n_io = n_in + n_out;
    Inference__ModelMetadataResponse__TensorMetadata *tm = calloc(n_io ? n_io : 1, sizeof *tm);
    Inference__ModelMetadataResponse__TensorMetadata **tp = calloc(n_io ? n_io : 1, sizeof *tp);
    int64_t(*shapes)[EIE_MAX_RANK] = calloc(n_io ? n_io : 1, sizeof *shapes);
    if (tm == NULL || tp == NULL || shapes == NULL) {
        eied_call_fail(call, EIE_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        free(tm);
        free(tp);
        free(shapes);
        goto done;
    }
    for (size_t i = 0; i < n_io; i++) {
        eie_tensor_info_t ti;
        if (i < n_in)
            eie_model_input_info(v->model, i, &ti);
        else
            eie_model_output_info(v->model, i - n_in, &ti);
        inference__model_metadata_response__tensor_metadata__init(&tm[i]);
        memcpy(shapes[i], ti.shape.dims, ti.shape.rank * sizeof(int64_t));
        tm[i].name = (char *)ti.name;
        tm[i].datatype = (char *)eie_dtype_name(ti.dtype);
        tm[i].n_shape = ti.shape.rank;
        tm[i].shape = shapes[i];
        tp[i] = &tm[i];
    }
    resp.name = m->name;
    resp.n_versions = m->n_versions;
    resp.versions = versions;
    resp.platform = "eie_eiev1";
    resp.n_inputs = n_in;
    resp.inputs = tp;
    resp.n_outputs = n_out;
    resp.outputs = tp + n_in;

    Inference__ModelMetadataResponse__PropertiesEntry pe[EIED_VERSION_PROPS];
    Inference__ModelMetadataResponse__PropertiesEntry *pp[EIED_VERSION_PROPS];
    for (size_t i = 0; i < EIED_VERSION_PROPS; i++) {
        inference__model_metadata_response__properties_entry__init(&pe[i]);
        pe[i].key = (char *)eied_version_prop_keys[i];
        pe[i].value = v->props[i];
        pp[i] = &pe[i];
    }
    resp.n_properties = EIED_VERSION_PROPS;
    resp.properties = pp;
    eied_call_reply(call, &resp.base);
    free(tm);
    free(tp);
    free(shapes);
done:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* Triton's ModelConfig for an eie model: inputs and outputs without the batch dimension
   when every tensor has one first (max_batch_size = inference.max_batch), full shapes
   otherwise (max_batch_size = 0, as Triton describes a model that does not batch). */
static void on_model_config(eied_app_t *app, eied_call_t *call)
{
    Inference__ModelConfigRequest *req = (Inference__ModelConfigRequest *)eied_call_read(
        call, &inference__model_config_request__descriptor);
    if (req == NULL)
        return;
    eied_model_t *m;
    eied_version_t *v = served_version(app, call, req->name, req->version, &m);
    if (v == NULL)
        goto done;
    size_t n_in = eie_model_input_count(v->model), n_out = eie_model_output_count(v->model);
    size_t n_io = n_in + n_out;
    eie_tensor_info_t *ti = calloc(n_io ? n_io : 1, sizeof *ti);
    Inference__ModelInput *in = calloc(n_in ? n_in : 1, sizeof *in);
    Inference__ModelInput **inp = calloc(n_in ? n_in : 1, sizeof *inp);
    Inference__ModelOutput *out = calloc(n_out ? n_out : 1, sizeof *out);
    Inference__ModelOutput **outp = calloc(n_out ? n_out : 1, sizeof *outp);
    if (ti == NULL || in == NULL || inp == NULL || out == NULL || outp == NULL) {
        eied_call_fail(call, EIE_STATUS_NO_MEMORY, "out of memory");
        goto free_all;
    }
    bool batched = !eie_net_is_sequence(v->net); /* an lstm's first dimension is time */
    for (size_t i = 0; i < n_io; i++) {
        if (i < n_in)
            eie_model_input_info(v->model, i, &ti[i]);
        else
            eie_model_output_info(v->model, i - n_in, &ti[i]);
        batched &= ti[i].shape.rank >= 1 && ti[i].shape.dims[0] == -1;
    }
    size_t skip = batched ? 1 : 0;
    for (size_t i = 0; i < n_in; i++) {
        inference__model_input__init(&in[i]);
        in[i].name = (char *)ti[i].name;
        in[i].data_type = INFERENCE__DATA_TYPE__TYPE_FP32;
        in[i].n_dims = ti[i].shape.rank - skip;
        in[i].dims = ti[i].shape.dims + skip;
        inp[i] = &in[i];
    }
    for (size_t i = 0; i < n_out; i++) {
        inference__model_output__init(&out[i]);
        out[i].name = (char *)ti[n_in + i].name;
        out[i].data_type = INFERENCE__DATA_TYPE__TYPE_FP32;
        out[i].n_dims = ti[n_in + i].shape.rank - skip;
        out[i].dims = ti[n_in + i].shape.dims + skip;
        outp[i] = &out[i];
    }
    Inference__ModelConfig cfg = INFERENCE__MODEL_CONFIG__INIT;
    Inference__ModelDynamicBatching db = INFERENCE__MODEL_DYNAMIC_BATCHING__INIT;
    Inference__ModelInstanceGroup group = INFERENCE__MODEL_INSTANCE_GROUP__INIT,
                                  *groups[1] = {&group};
    char group_name[EIED_MODEL_NAME_MAX + 8];
    snprintf(group_name, sizeof group_name, "%s_0", m->name);
    cfg.name = m->name;
    cfg.platform = "eie_eiev1";
    cfg.backend = (char *)eie_engine_backend(v->engine);
    cfg.max_batch_size = batched ? (int32_t)app->cfg->max_batch : 0;
    cfg.n_input = n_in;
    cfg.input = inp;
    cfg.n_output = n_out;
    cfg.output = outp;
    if (batched && app->cfg->batch_window_us > 0) { /* the micro-batcher */
        db.max_queue_delay_microseconds = app->cfg->batch_window_us;
        db.preserve_ordering = false;
        cfg.scheduling_choice_case = INFERENCE__MODEL_CONFIG__SCHEDULING_CHOICE_DYNAMIC_BATCHING;
        cfg.dynamic_batching = &db;
    }
    /* one instance on the CPU, its PE threads shared by every model */
    group.name = group_name;
    group.kind = INFERENCE__MODEL_INSTANCE_GROUP__KIND__KIND_CPU;
    group.count = 1;
    cfg.n_instance_group = 1;
    cfg.instance_group = groups;
    Inference__ModelConfigResponse resp = INFERENCE__MODEL_CONFIG_RESPONSE__INIT;
    resp.config = &cfg;
    eied_call_reply(call, &resp.base);
free_all:
    free(ti);
    free(in);
    free(inp);
    free(out);
    free(outp);
done:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

void eied_rpc_model_register(eied_app_t *app)
{
    static const eied_method_t methods[] = {
        {.path = "/inference.GRPCInferenceService/ModelReady", .handler = on_model_ready},
        {.path = "/inference.GRPCInferenceService/ModelMetadata", .handler = on_model_metadata},
        {.path = "/inference.GRPCInferenceService/ModelConfig", .handler = on_model_config},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        eied_server_add_method(app->server, &methods[i]);
}
