/*
 * inference.GRPCInferenceService/ModelInfer.
 *
 * Loop thread: read, route to a model version, validate every field against
 * the model (errors name the model, the tensor and the mismatch), admit
 * (bounded queue per model), then hand the request to the micro-batcher
 * (batcher.c). PE thread: when its batch is computed, job_done packs and
 * sends the reply.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "batcher.h"
#include "call.h"
#include "clock.h"
#include "inference.pb-c.h"
#include "infer_validate.h"
#include "log.h"
#include "metrics.h"
#include "models.h"
#include "rpc.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "raw tensor contents are little-endian; a big-endian host needs byte swapping");

/*
 * Every refusal of an inference request is counted by reason, logged with
 * the request's model and id (debug: the client's doing; warn: the server's),
 * then answered.
 */
static void infer_fail(eied_metrics_t *mt, eied_call_t *call, const char *model, const char *id,
                       eie_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void infer_fail(eied_metrics_t *mt, eied_call_t *call, const char *model, const char *id,
                       eie_status_t status, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    eied_metrics_count_failure(mt, status);
    int code = eie_status_grpc_code(status);
    bool server_side = code == GRPC_STATUS_INTERNAL || code == GRPC_STATUS_UNAVAILABLE ||
                       code == GRPC_STATUS_RESOURCE_EXHAUSTED;
    eied_log(server_side ? EIED_LOG_WARN : EIED_LOG_DEBUG, "inference refused", "model", model,
             "id", id, "code", eie_grpc_code_name(code), "detail", detail, NULL);
    eied_call_fail(call, status, "%s", detail);
}

/* ---- PE thread: replies --------------------------------------------------- */

static void set_param(Inference__ModelInferResponse__ParametersEntry *entry,
                      Inference__InferParameter *value, const char *key)
{
    inference__model_infer_response__parameters_entry__init(entry);
    entry->key = (char *)key;
    entry->value = value;
}

/* Answers one job of a computed batch (or fails it); PE thread, or the loop for a job that
   never ran. */
static void job_fail(eied_metrics_t *mt, eied_infer_job_t *job, eie_status_t status,
                     const char *detail)
{
    eied_stats_t *st = &job->version->stats;
    atomic_fetch_add(&st->fail_count, 1);
    atomic_fetch_add(&st->fail_ns, eied_now_ns() - job->arrived_ns);
    atomic_fetch_sub(&job->model->queued, 1);
    infer_fail(mt, job->call, job->model->name, job->id, status, "%s", detail);
    eied_infer_job_free(job);
}

static void job_done(void *ctx, eied_infer_job_t *job, const eied_batch_result_t *r)
{
    eied_metrics_t *mt = ctx;
    if (r->status != EIE_STATUS_OK) {
        job_fail(mt, job, r->status, r->detail);
        return;
    }
    uint64_t end_ns = eied_now_ns();
    eied_version_t *v = job->version;
    eied_stats_t *st = &v->stats;
    uint32_t out_dim = eie_net_output_dim(job->net);
    char version_text[32];
    snprintf(version_text, sizeof version_text, "%llu", (unsigned long long)v->version);
    Inference__ModelInferResponse resp = INFERENCE__MODEL_INFER_RESPONSE__INIT;
    Inference__ModelInferResponse__InferOutputTensor out =
        INFERENCE__MODEL_INFER_RESPONSE__INFER_OUTPUT_TENSOR__INIT;
    Inference__ModelInferResponse__InferOutputTensor *outs[1] = {&out};
    /* A graph answers each selected output under its own name and full shape. */
    size_t n_go = 0;
    Inference__ModelInferResponse__InferOutputTensor *go = NULL, **gop = NULL;
    ProtobufCBinaryData *graw = NULL;
    int64_t(*gshape)[EIE_MAX_RANK] = NULL;
    if (eied_net_is_graph_io(job->net)) {
        size_t n_out = eie_net_output_count(job->net);
        n_go = job->n_sel ? job->n_sel : n_out;
        go = calloc(n_go, sizeof *go);
        gop = calloc(n_go, sizeof *gop);
        graw = calloc(n_go, sizeof *graw);
        gshape = calloc(n_go, sizeof *gshape);
        if (go == NULL || gop == NULL || graw == NULL || gshape == NULL) {
            free(go);
            free(gop);
            free(graw);
            free(gshape);
            job_fail(mt, job, EIE_STATUS_RESOURCE_EXHAUSTED, "out of memory for the reply");
            return;
        }
        for (size_t k = 0; k < n_go; k++) {
            size_t o = job->n_sel ? job->out_sel[k] : k;
            size_t off = 0;
            for (size_t q = 0; q < o; q++)
                off += (size_t)job->rows * eie_net_output_elements(job->net, q);
            eie_tensor_info_t ti;
            eie_model_output_info(v->model, o, &ti);
            inference__model_infer_response__infer_output_tensor__init(&go[k]);
            memcpy(gshape[k], ti.shape.dims, sizeof gshape[k]);
            /* an LSTM's final state has one row whatever the steps */
            uint32_t orows = eie_net_output_is_state(job->net, o) ? 1 : job->rows;
            gshape[k][0] = orows;
            go[k].name = (char *)ti.name;
            go[k].datatype = "FP32";
            go[k].n_shape = ti.shape.rank;
            go[k].shape = gshape[k];
            graw[k].len = (size_t)orows * eie_net_output_elements(job->net, o) * sizeof(float);
            graw[k].data = (uint8_t *)(r->output + off);
            gop[k] = &go[k];
        }
    }
    /* The output's own full shape, the batch dimension set to this request's rows. */
    eie_tensor_info_t out_info;
    eie_model_output_info(v->model, 0, &out_info);
    int64_t shape[EIE_MAX_RANK];
    memcpy(shape, out_info.shape.dims, sizeof shape);
    shape[0] = job->rows;
    ProtobufCBinaryData raw = {.len = (size_t)job->rows * out_dim * sizeof(float),
                               .data = (uint8_t *)r->output};
    resp.model_name = v->name;
    resp.model_version = version_text;
    resp.id = job->id;
    out.name = (char *)eie_model_output_name(v->model);
    out.datatype = "FP32";
    out.n_shape = out_info.shape.rank;
    out.shape = shape;
    resp.n_outputs = 1;
    resp.outputs = outs;
    resp.n_raw_output_contents = 1;
    resp.raw_output_contents = &raw;
    if (go != NULL) {
        resp.n_outputs = n_go;
        resp.outputs = gop;
        resp.n_raw_output_contents = n_go;
        resp.raw_output_contents = graw;
    }

    /* Backend figures travel in the response parameters. */
    Inference__InferParameter pv[6];
    Inference__ModelInferResponse__ParametersEntry pe[6];
    Inference__ModelInferResponse__ParametersEntry *pp[6];
    size_t np = 0;
    for (size_t i = 0; i < 6; i++) {
        inference__infer_parameter__init(&pv[i]);
        pp[i] = &pe[i];
    }
    pv[np].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM;
    pv[np].string_param = (char *)eie_engine_backend(r->engine);
    set_param(&pe[np], &pv[np], "backend");
    np++;
    pv[np].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
    pv[np].int64_param = r->batch_rows;
    set_param(&pe[np], &pv[np], "batch_rows");
    np++;
    if (r->info != NULL && r->info->cycles > 0) {
        pv[np].parameter_choice_case =
            INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM;
        pv[np].uint64_param = r->info->cycles;
        set_param(&pe[np], &pv[np], "sim_cycles");
        np++;
        pv[np].parameter_choice_case =
            INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM;
        pv[np].double_param = r->info->sim_time_us;
        set_param(&pe[np], &pv[np], "sim_time_us");
        np++;
        pv[np].parameter_choice_case =
            INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM;
        pv[np].double_param = r->info->efficiency;
        set_param(&pe[np], &pv[np], "sim_efficiency");
        np++;
        pv[np].parameter_choice_case =
            INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM;
        pv[np].double_param = r->info->energy_uj;
        set_param(&pe[np], &pv[np], "sim_energy_uj");
        np++;
    }
    resp.n_parameters = np;
    resp.parameters = pp;

    atomic_fetch_add(&st->success_count, 1);
    atomic_fetch_add(&st->success_ns, end_ns - job->arrived_ns);
    atomic_fetch_add(&st->inference_count, job->rows);
    atomic_fetch_sub(&job->model->queued, 1);
    eied_call_reply(job->call, &resp.base);
    free(go);
    free(gop);
    free(graw);
    free(gshape);
    eied_infer_job_free(job);
}

/* ---- loop thread: admission ----------------------------------------------- */

/* The client's deadline; default_timeout when it sent none; never past max_timeout. */
static gpr_timespec effective_deadline(const eied_call_t *call, const eied_config_t *cfg)
{
    gpr_timespec d = gpr_convert_clock_type(call->deadline, GPR_CLOCK_MONOTONIC);
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    bool infinite = gpr_time_cmp(call->deadline, gpr_inf_future(call->deadline.clock_type)) == 0;
    if (infinite && cfg->default_timeout_ms > 0)
        d = gpr_time_add(now, gpr_time_from_millis((int64_t)cfg->default_timeout_ms, GPR_TIMESPAN));
    if (cfg->max_timeout_ms > 0) {
        gpr_timespec cap =
            gpr_time_add(now, gpr_time_from_millis((int64_t)cfg->max_timeout_ms, GPR_TIMESPAN));
        if (infinite && cfg->default_timeout_ms == 0)
            d = cap;
        else if (gpr_time_cmp(d, cap) > 0)
            d = cap;
    }
    return d;
}

/* ---- loop thread: validation ---------------------------------------------- */

/* Resolves the version a request names ("" = the newest ready one). */
static eied_version_t *route(eied_app_t *app, eied_call_t *call, const char *name,
                             const char *version, const char *id, eied_model_t **model_out)
{
    eied_model_t *m = eied_models_find(app->models, name);
    if (m == NULL || m->state == EIED_MODEL_UNLOADED) {
        infer_fail(app->metrics, call, name, id, EIE_STATUS_NOT_FOUND, "unknown model '%s'", name);
        return NULL;
    }
    if (m->current == NULL) {
        infer_fail(app->metrics, call, name, id, EIE_STATUS_UNAVAILABLE, "model '%s' is not ready (%s%s%s)", name,
                       eied_model_state_name(m->state), m->reason[0] ? ": " : "", m->reason);
        return NULL;
    }
    eied_version_t *v = m->current;
    if (version[0] != '\0') {
        char *end;
        unsigned long long want = strtoull(version, &end, 10);
        v = *end == '\0' && version[0] != '-' ? eied_model_version(m, want) : NULL;
        if (v == NULL || want == 0) {
            char list[128];
            size_t used = 0;
            list[0] = '\0';
            for (size_t i = 0; i < m->n_versions && used < sizeof list - 24; i++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%llu", i ? ", " : "",
                                         (unsigned long long)m->versions[i]->version);
            infer_fail(app->metrics, call, name, id, EIE_STATUS_NOT_FOUND,
                       "model '%s' has no version '%s' (serving: %s)", name, version, list);
            return NULL;
        }
    }
    *model_out = m;
    return v;
}

static void on_model_infer(eied_app_t *app, eied_call_t *call)
{
    const eied_config_t *cfg = app->cfg;
    Inference__ModelInferRequest *req = (Inference__ModelInferRequest *)eied_call_read(
        call, &inference__model_infer_request__descriptor);
    if (req == NULL)
        return;
    eied_infer_job_t *job = NULL;
    /* a graph's request: its inputs' data, requested outputs, the model's tensor specs */
    const void **gdata = NULL;
    size_t *gsel = NULL;
    eied_infer_tensor_spec_t *gspec = NULL;
    const char **gout_names = NULL;
    if (eied_server_state(app->server) >= EIED_SERVER_STOPPING) {
        infer_fail(app->metrics, call, req->model_name, req->id, EIE_STATUS_UNAVAILABLE, "server is shutting down");
        goto done;
    }
    eied_model_t *m = NULL;
    eied_version_t *v = route(app, call, req->model_name, req->model_version, req->id, &m);
    if (v == NULL)
        goto done;
    const char *mname = req->model_name;
    /* A graph of several inputs or outputs: each input by its name and full shape. */
    size_t n_gin = eie_model_input_count(v->model), n_gout = eie_model_output_count(v->model);
    bool graph = n_gin != 1 || n_gout != 1 || eie_net_is_sequence(v->net);
    size_t n_gsel = 0;
    uint32_t rows;
    size_t n;
    eied_infer_input_t input_spec = {0};
    eie_error_t err;
    eie_status_t st;
    if (graph) {
        gdata = calloc(n_gin, sizeof *gdata);
        gsel = calloc(n_gout, sizeof *gsel);
        gspec = calloc(n_gin, sizeof *gspec);
        gout_names = calloc(n_gout, sizeof *gout_names);
        eie_tensor_info_t *tis = calloc(n_gin, sizeof *tis);
        if (gdata == NULL || gsel == NULL || gspec == NULL || gout_names == NULL || tis == NULL) {
            free(tis);
            infer_fail(app->metrics, call, mname, req->id, EIE_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n_gin; i++) {
            eie_model_input_info(v->model, i, &tis[i]);
            gspec[i] = (eied_infer_tensor_spec_t){.name = tis[i].name,
                                                  .rank = tis[i].shape.rank,
                                                  .shape = tis[i].shape.dims,
                                                  .elements = eie_net_input_elements(v->net, i),
                                                  .per_run = eie_model_input_is_state(v->model, i)};
        }
        for (size_t i = 0; i < n_gout; i++) {
            eie_tensor_info_t ti;
            eie_model_output_info(v->model, i, &ti);
            gout_names[i] = ti.name;
        }
        eied_infer_graph_spec_t gs = {
            .model = mname,
            .n_inputs = n_gin,
            .n_outputs = n_gout,
            .inputs = gspec,
            .output_names = gout_names,
            /* a sequence model's rows are its steps */
            .max_batch = eie_net_is_sequence(v->net) ? cfg->max_sequence : cfg->max_batch,
            .sequence = eie_net_is_sequence(v->net),
            .max_tensor_elements = cfg->max_tensor_elements,
            .reject_non_finite = cfg->reject_non_finite,
        };
        st = eied_infer_validate_graph(req, &gs, &rows, gdata, gsel, &n_gsel, &err);
        free(tis);
        n = 0;
        for (size_t i = 0; st == EIE_STATUS_OK && i < n_gin; i++)
            n += (size_t)(gspec[i].per_run ? 1 : rows) * gspec[i].elements;
    } else {
        eie_tensor_info_t in_info;
        eie_model_input_info(v->model, 0, &in_info);
        eied_infer_spec_t spec = {
            .model = mname,
            .input_name = eie_model_input_name(v->model),
            .output_name = eie_model_output_name(v->model),
            .input_dim = eie_net_input_dim(v->net),
            .input_shape = in_info.shape.dims,
            .input_rank = in_info.shape.rank,
            .max_batch = cfg->max_batch,
            .max_tensor_elements = cfg->max_tensor_elements,
            .reject_non_finite = cfg->reject_non_finite,
        };
        st = eied_infer_validate(req, &spec, &input_spec, &err);
        rows = input_spec.rows;
        n = input_spec.n;
    }
    if (st != EIE_STATUS_OK) {
        infer_fail(app->metrics, call, mname, req->id, st, "%s", err.msg);
        goto done;
    }
    /* A request may pick the backend it runs on (parameter "backend"); the model's own is the
       default, the others are there when the daemon runs more than one. */
    eie_engine_t *engine = v->engine;
    eie_net_t *net = v->net;
    for (size_t i = 0; i < req->n_parameters; i++) {
        const Inference__ModelInferRequest__ParametersEntry *pe = req->parameters[i];
        if (strcmp(pe->key, "backend") != 0 || pe->value == NULL)
            continue;
        const char *want = pe->value->parameter_choice_case ==
                                   INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM
                               ? pe->value->string_param
                               : "";
        net = eied_version_net(v, want, &engine);
        if (net == NULL || want[0] == '\0') {
            char list[128];
            size_t used = (size_t)snprintf(list, sizeof list, "%s", eie_engine_backend(v->engine));
            for (size_t k = 0; k < v->n_alt && used < sizeof list; k++)
                used += (size_t)snprintf(list + used, sizeof list - used, ", %s",
                                         eie_engine_backend(v->alt_engines[k]));
            infer_fail(app->metrics, call, mname, req->id, EIE_STATUS_INVALID_ARGUMENT,
                       "model '%s': parameter 'backend' must be a string naming one of: %s "
                       "(engine.extra_backends starts more)",
                       mname, list);
            goto done;
        }
    }
    if (atomic_load(&m->queued) >= cfg->queue_depth) {
        infer_fail(app->metrics, call, req->model_name, req->id, EIE_STATUS_UNAVAILABLE,
                       "model '%s': queue full (%llu requests queued or running, queue_depth %llu)",
                       mname, (unsigned long long)atomic_load(&m->queued),
                       (unsigned long long)cfg->queue_depth);
        goto done;
    }
    gpr_timespec deadline = effective_deadline(call, cfg);
    if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) > 0) {
        infer_fail(app->metrics, call, req->model_name, req->id, EIE_STATUS_DEADLINE_EXCEEDED,
                       "model '%s': deadline passed before the request was queued", mname);
        goto done;
    }

    job = calloc(1, sizeof *job);
    float *input = malloc(n * sizeof(float));
    char *id = strdup(req->id != NULL ? req->id : "");
    if (job == NULL || input == NULL || id == NULL) {
        free(job);
        free(input);
        free(id);
        infer_fail(app->metrics, call, req->model_name, req->id, EIE_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    if (graph) {
        /* the inputs one after the other, in the model's order (raw bytes may be unaligned) */
        size_t at = 0;
        for (size_t i = 0; i < n_gin; i++) {
            size_t k = (size_t)(gspec[i].per_run ? 1 : rows) * gspec[i].elements;
            memcpy(input + at, gdata[i], k * sizeof(float));
            at += k;
        }
        if (n_gsel > 0) {
            job->out_sel = malloc(n_gsel * sizeof *job->out_sel);
            if (job->out_sel == NULL) {
                free(job);
                free(input);
                free(id);
                job = NULL;
                infer_fail(app->metrics, call, req->model_name, req->id, EIE_STATUS_RESOURCE_EXHAUSTED,
                           "out of memory");
                goto done;
            }
            memcpy(job->out_sel, gsel, n_gsel * sizeof *job->out_sel);
            job->n_sel = n_gsel;
        }
    } else {
        memcpy(input, input_spec.data, n * sizeof(float)); /* raw bytes may be unaligned */
    }
    job->call = call;
    job->net = net;
    job->engine = engine;
    job->version = v;
    eied_version_ref(v);
    job->model = m;
    job->id = id;
    job->rows = rows;
    job->input = input;
    job->arrived_ns = call->arrived_ns;
    job->deadline = deadline;
    eied_log(EIED_LOG_DEBUG, "inference queued", "model", mname, "id", job->id, NULL);
    atomic_fetch_add(&m->queued, 1);
    eied_batcher_submit(app->batcher, job);
done:
    free(gdata);
    free(gsel);
    free(gspec);
    free(gout_names);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

bool eied_rpc_infer_register(eied_app_t *app)
{
    static const eied_method_t infer = {.path = "/inference.GRPCInferenceService/ModelInfer",
                                        .handler = on_model_infer, .prealloc = 64};
    app->batcher = eied_batcher_create(app->loop, app->server, app->cfg, job_done, app->metrics);
    return app->batcher != NULL && eied_server_add_method(app->server, &infer);
}
