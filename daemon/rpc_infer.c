/*
 * inference.GRPCInferenceService/ModelInfer.
 *
 * Loop thread: read, route to a model version, validate every field against
 * the model (errors name the model, the tensor and the mismatch), admit
 * (bounded queue per model), then micro-batch: a request that finds its
 * model idle runs at once; requests that arrive while the model computes
 * wait at most batch_window_us, or until max_batch rows wait, and run as one
 * engine batch, so each compressed weight entry is decoded once for all of
 * them. Expired requests are answered DEADLINE_EXCEEDED and skipped.
 * PE thread: when the batch is computed, the worker packs and sends every
 * reply itself and tells the loop the model has room for the next batch.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "inference.pb-c.h"
#include "infer_validate.h"
#include "log.h"
#include "metrics.h"
#include "models.h"
#include "rpc.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "raw tensor contents are little-endian; a big-endian host needs byte swapping");

struct eied_infer_job {
    eied_call_t *call;
    eie_net_t *net;       /* the version's net on the backend this request runs on */
    eie_engine_t *engine;
    gpr_timespec deadline; /* monotonic: the request's, or default_timeout, capped by max_timeout */
    eied_version_t *version; /* a reference: the version this request started on */
    eied_model_t *model;
    char *id;
    uint32_t rows;
    float *input; /* rows x input_dim; a graph's inputs one after the other */
    size_t *out_sel; /* a graph: the outputs to answer (model output indices) */
    size_t n_sel;
    uint64_t arrived_ns;
    eied_infer_job_t *next;
};

typedef struct infer_batch {
    eied_server_t *srv;
    eied_model_t *model;
    eied_version_t *version;
    eie_net_t *net;
    eie_engine_t *engine;
    eied_infer_job_t *jobs;
    uint32_t rows;
    float *input;  /* rows x input_dim; a job's own buffer when the batch has one job */
    float *output; /* rows x output_dim; a graph's outputs one after the other */
    float **io;    /* a graph (one job a batch): its input then its output pointers */
    uint64_t start_ns;
} infer_batch_t;

/* A model of several inputs or outputs, or a sequence model (its batch is time): its
   requests run one to a batch. */
static bool net_is_graph_io(const eie_net_t *net)
{
    return eie_net_input_count(net) != 1 || eie_net_output_count(net) != 1 ||
           eie_net_is_sequence(net);
}

/*
 * Every refusal of an inference request is counted by reason, logged with
 * the request's model and id (debug: the client's doing; warn: the server's),
 * then answered.
 */
static void infer_fail(eied_call_t *call, const char *model, const char *id, int code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void infer_fail(eied_call_t *call, const char *model, const char *id, int code,
                       const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    eied_metrics_count_failure(call->srv, code);
    bool server_side = code == GRPC_STATUS_INTERNAL || code == GRPC_STATUS_UNAVAILABLE ||
                       code == GRPC_STATUS_RESOURCE_EXHAUSTED;
    eied_log(server_side ? EIED_LOG_WARN : EIED_LOG_DEBUG, "inference refused", "model", model,
             "id", id, "code", eie_grpc_code_name(code), "detail", detail, NULL);
    eied_call_fail(call, code, "%s", detail);
}

static void job_free(eied_infer_job_t *job)
{
    eied_version_unref(job->version);
    free(job->id);
    free(job->input);
    free(job->out_sel);
    free(job);
}

/* Answers a job with an error and accounts for it; any thread. */
static void job_fail(eied_infer_job_t *job, int code, const char *detail)
{
    eied_stats_t *st = &job->version->stats;
    atomic_fetch_add(&st->fail_count, 1);
    atomic_fetch_add(&st->fail_ns, eied_now_ns() - job->arrived_ns);
    atomic_fetch_sub(&job->model->queued, 1);
    infer_fail(job->call, job->model->name, job->id, code, "%s", detail);
    job_free(job);
}

/* ---- PE thread: replies --------------------------------------------------- */

static void set_param(Inference__ModelInferResponse__ParametersEntry *entry,
                      Inference__InferParameter *value, const char *key)
{
    inference__model_infer_response__parameters_entry__init(entry);
    entry->key = (char *)key;
    entry->value = value;
}

static void batch_finished(eied_server_t *srv, void *arg);

static void batch_done(void *user, eie_status_t status, const eie_run_info_t *info,
                       const eie_error_t *err)
{
    infer_batch_t *b = user;
    uint64_t end_ns = eied_now_ns();
    eied_version_t *v = b->version;
    eied_stats_t *st = &v->stats;
    uint32_t out_dim = eie_net_output_dim(b->net);
    char version_text[32];
    snprintf(version_text, sizeof version_text, "%llu", (unsigned long long)v->version);

    if (status == EIE_STATUS_OK) {
        atomic_fetch_add(&st->execution_count, 1);
        atomic_fetch_add(&st->compute_count, 1);
        atomic_fetch_add(&st->compute_ns, end_ns - b->start_ns);
        atomic_store(&st->last_inference_ms, eied_wall_ms());
        if (info != NULL && info->cycles > 0) {
            atomic_fetch_add(&st->sim_cycles, info->cycles);
            atomic_fetch_add(&st->sim_energy_pj, (uint64_t)(info->energy_uj * 1e6));
        }
    }
    uint32_t row = 0;
    for (eied_infer_job_t *job = b->jobs, *next; job != NULL; job = next) {
        next = job->next;
        if (status != EIE_STATUS_OK) {
            char detail[1024];
            snprintf(detail, sizeof detail, "model '%.128s': %.512s", v->name,
                     err != NULL ? err->msg : eie_strerror(status));
            job_fail(job, eie_status_grpc_code(status), detail);
            continue;
        }
        Inference__ModelInferResponse resp = INFERENCE__MODEL_INFER_RESPONSE__INIT;
        Inference__ModelInferResponse__InferOutputTensor out =
            INFERENCE__MODEL_INFER_RESPONSE__INFER_OUTPUT_TENSOR__INIT;
        Inference__ModelInferResponse__InferOutputTensor *outs[1] = {&out};
        /* A graph answers each selected output under its own name and full shape. */
        size_t n_go = 0;
        Inference__ModelInferResponse__InferOutputTensor *go = NULL, **gop = NULL;
        ProtobufCBinaryData *graw = NULL;
        int64_t(*gshape)[EIE_MAX_RANK] = NULL;
        if (net_is_graph_io(b->net)) {
            size_t n_out = eie_net_output_count(b->net);
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
                job_fail(job, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory for the reply");
                continue;
            }
            for (size_t k = 0; k < n_go; k++) {
                size_t o = job->n_sel ? job->out_sel[k] : k;
                size_t off = 0;
                for (size_t q = 0; q < o; q++)
                    off += (size_t)job->rows * eie_net_output_elements(b->net, q);
                eie_tensor_info_t ti;
                eie_model_output_info(v->model, o, &ti);
                inference__model_infer_response__infer_output_tensor__init(&go[k]);
                memcpy(gshape[k], ti.shape.dims, sizeof gshape[k]);
                /* an LSTM's final state has one row whatever the steps */
                uint32_t orows = ti.shape.dims[0] > 0 && eie_net_is_sequence(b->net)
                                     ? (uint32_t)ti.shape.dims[0]
                                     : job->rows;
                gshape[k][0] = orows;
                go[k].name = (char *)ti.name;
                go[k].datatype = "FP32";
                go[k].n_shape = ti.shape.rank;
                go[k].shape = gshape[k];
                graw[k].len = (size_t)orows * eie_net_output_elements(b->net, o) *
                              sizeof(float);
                graw[k].data = (uint8_t *)(b->output + off);
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
                                   .data = (uint8_t *)(b->output + (size_t)row * out_dim)};
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
        pv[np].string_param = (char *)eie_engine_backend(b->engine);
        set_param(&pe[np], &pv[np], "backend");
        np++;
        pv[np].parameter_choice_case = INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_INT64_PARAM;
        pv[np].int64_param = b->rows;
        set_param(&pe[np], &pv[np], "batch_rows");
        np++;
        if (info != NULL && info->cycles > 0) {
            pv[np].parameter_choice_case =
                INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_UINT64_PARAM;
            pv[np].uint64_param = info->cycles;
            set_param(&pe[np], &pv[np], "sim_cycles");
            np++;
            pv[np].parameter_choice_case =
                INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM;
            pv[np].double_param = info->sim_time_us;
            set_param(&pe[np], &pv[np], "sim_time_us");
            np++;
            pv[np].parameter_choice_case =
                INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM;
            pv[np].double_param = info->efficiency;
            set_param(&pe[np], &pv[np], "sim_efficiency");
            np++;
            pv[np].parameter_choice_case =
                INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_DOUBLE_PARAM;
            pv[np].double_param = info->energy_uj;
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
        row += job->rows;
        job_free(job);
    }
    if (b->input != NULL)
        free(b->input);
    free(b->output);
    free(b->io);
    eied_version_unref(b->version);
    eied_server_post(b->srv, batch_finished, b->model);
    free(b);
}

/* ---- loop thread: batching ------------------------------------------------ */

static void model_dispatch(eied_model_t *m);

static void batch_finished(eied_server_t *srv, void *arg)
{
    eied_model_t *m = arg;
    (void)srv;
    m->inflight_batches--;
    model_dispatch(m);
}

static void on_batch_timer(uv_timer_t *t)
{
    eied_model_t *m = t->data;
    m->batch_timer_armed = false;
    model_dispatch(m);
}

static bool deadline_passed(gpr_timespec deadline)
{
    return gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) > 0;
}

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

/* Takes the pending jobs that go into one batch: same version, rows up to max_batch. */
static infer_batch_t *take_batch(eied_server_t *srv, eied_model_t *m)
{
    const eied_config_t *cfg = srv->cfg;
    uint64_t max_rows = cfg->max_batch;
    bool batching = cfg->batch_window_us > 0;
    infer_batch_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->srv = srv;
    b->model = m;
    eied_infer_job_t **tail = &b->jobs;
    uint64_t now = eied_now_ns();
    while (m->pending_head != NULL) {
        eied_infer_job_t *job = m->pending_head;
        if (b->version != NULL && (!batching || job->version != b->version ||
                                   job->net != b->net || b->rows + job->rows > max_rows ||
                                   net_is_graph_io(job->net)))
            break;
        m->pending_head = job->next;
        if (m->pending_head == NULL)
            m->pending_tail = NULL;
        m->pending_rows -= job->rows;
        m->pending_count--;
        job->next = NULL;
        atomic_fetch_add(&job->version->stats.queue_count, 1);
        atomic_fetch_add(&job->version->stats.queue_ns, now - job->arrived_ns);
        if (atomic_load(&job->call->closed)) {
            job_fail(job, GRPC_STATUS_CANCELLED, "cancelled by the client");
            continue;
        }
        if (deadline_passed(job->deadline)) {
            char detail[320];
            snprintf(detail, sizeof detail,
                     "model '%.128s': deadline passed after %llu us in the queue; not computed",
                     m->name, (unsigned long long)((now - job->arrived_ns) / 1000));
            job_fail(job, GRPC_STATUS_DEADLINE_EXCEEDED, detail);
            continue;
        }
        if (b->version == NULL) {
            b->version = job->version;
            eied_version_ref(b->version);
            b->net = job->net;
            b->engine = job->engine;
        }
        *tail = job;
        tail = &job->next;
        b->rows += job->rows;
    }
    if (b->jobs == NULL) {
        free(b);
        return NULL;
    }
    return b;
}

/* A graph's batch (one job): its inputs and outputs as the engine takes them. */
static eie_status_t graph_submit(infer_batch_t *b, eie_error_t *err)
{
    size_t n_in = eie_net_input_count(b->net), n_out = eie_net_output_count(b->net);
    uint64_t out_total = 0;
    for (size_t i = 0; i < n_out; i++)
        out_total += (uint64_t)b->rows * eie_net_output_elements(b->net, i);
    b->input = b->jobs->input;
    b->jobs->input = NULL;
    b->output = malloc((out_total ? out_total : 1) * sizeof(float));
    b->io = calloc(n_in + n_out, sizeof *b->io);
    if (b->output == NULL || b->io == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "out of memory for a batch of %u rows",
                             b->rows);
    float *at = b->input;
    for (size_t i = 0; i < n_in; i++) {
        b->io[i] = at;
        at += (size_t)b->rows * eie_net_input_elements(b->net, i);
    }
    at = b->output;
    for (size_t i = 0; i < n_out; i++) {
        b->io[n_in + i] = at;
        at += (size_t)b->rows * eie_net_output_elements(b->net, i);
    }
    return eie_net_submit_multi(b->net, (const float *const *)b->io, b->rows, b->io + n_in,
                                batch_done, b, err);
}

static void batch_submit(eied_server_t *srv, eied_model_t *m, infer_batch_t *b)
{
    uint32_t in_dim = eie_net_input_dim(b->net);
    uint32_t out_dim = eie_net_output_dim(b->net);
    eie_error_t err;
    if (net_is_graph_io(b->net)) {
        m->inflight_batches++;
        b->start_ns = eied_now_ns();
        eie_status_t st = graph_submit(b, &err);
        if (st != EIE_STATUS_OK)
            batch_done(b, st, NULL, &err);
        return;
    }
    b->output = malloc((size_t)b->rows * out_dim * sizeof(float));
    if (b->jobs->next == NULL) {
        b->input = b->jobs->input; /* one job: its buffer is the batch */
        b->jobs->input = NULL;
    } else {
        b->input = malloc((size_t)b->rows * in_dim * sizeof(float));
        size_t row = 0;
        for (eied_infer_job_t *j = b->jobs; j != NULL && b->input != NULL; j = j->next) {
            memcpy(b->input + row * in_dim, j->input, (size_t)j->rows * in_dim * sizeof(float));
            row += j->rows;
            free(j->input);
            j->input = NULL;
        }
    }
    m->inflight_batches++;
    b->start_ns = eied_now_ns();
    eie_status_t st;
    if (b->output == NULL || b->input == NULL)
        st = eie_error_set(&err, EIE_STATUS_NO_MEMORY, "out of memory for a batch of %u rows",
                           b->rows);
    else
        st = eie_net_submit(b->net, b->input, b->rows, b->output, batch_done, b, &err);
    if (st != EIE_STATUS_OK)
        batch_done(b, st, NULL, &err); /* answers every job, posts batch_finished */
}

/*
 * Hands pending requests to the engine. A model with nothing running takes
 * its pending requests at once; with batches running it waits until
 * max_batch rows are pending or the oldest has waited batch_window_us.
 */
static void model_dispatch(eied_model_t *m)
{
    eied_server_t *srv = m->srv;
    const eied_config_t *cfg = srv->cfg;
    while (m->pending_head != NULL && m->inflight_batches < cfg->max_inflight_batches) {
        uint64_t waited_us = (eied_now_ns() - m->pending_head->arrived_ns) / 1000;
        if (m->inflight_batches > 0 && cfg->batch_window_us > 0 &&
            m->pending_rows < cfg->max_batch && waited_us < cfg->batch_window_us) {
            if (!m->batch_timer_armed) {
                uint64_t left_ms = (cfg->batch_window_us - waited_us + 999) / 1000;
                uv_timer_start(&m->batch_timer, on_batch_timer, left_ms, 0);
                m->batch_timer_armed = true;
            }
            return;
        }
        infer_batch_t *b = take_batch(srv, m);
        if (b == NULL)
            continue; /* every taken job was expired or cancelled */
        batch_submit(srv, m, b);
    }
}

/* ---- loop thread: validation ---------------------------------------------- */

/* Resolves the version a request names ("" = the newest ready one). */
static eied_version_t *route(eied_call_t *call, eied_models_t *models, const char *name,
                             const char *version, const char *id, eied_model_t **model_out)
{
    eied_model_t *m = eied_models_find(models, name);
    if (m == NULL || m->state == EIED_MODEL_UNLOADED) {
        infer_fail(call, name, id, GRPC_STATUS_NOT_FOUND, "unknown model '%s'", name);
        return NULL;
    }
    if (m->current == NULL) {
        infer_fail(call, name, id, GRPC_STATUS_UNAVAILABLE, "model '%s' is not ready (%s%s%s)", name,
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
            infer_fail(call, name, id, GRPC_STATUS_NOT_FOUND,
                       "model '%s' has no version '%s' (serving: %s)", name, version, list);
            return NULL;
        }
    }
    *model_out = m;
    return v;
}

static void on_model_infer(eied_server_t *srv, eied_call_t *call)
{
    const eied_config_t *cfg = srv->cfg;
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
    if (eied_server_state(srv) >= EIED_SERVER_STOPPING) {
        infer_fail(call, req->model_name, req->id, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
        goto done;
    }
    eied_model_t *m = NULL;
    eied_version_t *v = route(call, srv->models, req->model_name, req->model_version, req->id, &m);
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
    char why[1024];
    int code;
    if (graph) {
        gdata = calloc(n_gin, sizeof *gdata);
        gsel = calloc(n_gout, sizeof *gsel);
        gspec = calloc(n_gin, sizeof *gspec);
        gout_names = calloc(n_gout, sizeof *gout_names);
        eie_tensor_info_t *tis = calloc(n_gin, sizeof *tis);
        if (gdata == NULL || gsel == NULL || gspec == NULL || gout_names == NULL || tis == NULL) {
            free(tis);
            infer_fail(call, mname, req->id, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n_gin; i++) {
            eie_model_input_info(v->model, i, &tis[i]);
            gspec[i] = (eied_infer_tensor_spec_t){.name = tis[i].name,
                                                  .rank = tis[i].shape.rank,
                                                  .shape = tis[i].shape.dims,
                                                  .elements = eie_net_input_elements(v->net, i)};
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
        code = eied_infer_validate_graph(req, &gs, &rows, gdata, gsel, &n_gsel, why, sizeof why);
        free(tis);
        n = 0;
        for (size_t i = 0; code == GRPC_STATUS_OK && i < n_gin; i++)
            n += (size_t)rows * gspec[i].elements;
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
        code = eied_infer_validate(req, &spec, &input_spec, why, sizeof why);
        rows = input_spec.rows;
        n = input_spec.n;
    }
    if (code != GRPC_STATUS_OK) {
        infer_fail(call, mname, req->id, code, "%s", why);
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
            infer_fail(call, mname, req->id, GRPC_STATUS_INVALID_ARGUMENT,
                       "model '%s': parameter 'backend' must be a string naming one of: %s "
                       "(engine.extra_backends starts more)",
                       mname, list);
            goto done;
        }
    }
    if (atomic_load(&m->queued) >= cfg->queue_depth) {
        infer_fail(call, req->model_name, req->id, GRPC_STATUS_UNAVAILABLE,
                       "model '%s': queue full (%llu requests queued or running, queue_depth %llu)",
                       mname, (unsigned long long)atomic_load(&m->queued),
                       (unsigned long long)cfg->queue_depth);
        goto done;
    }
    gpr_timespec deadline = effective_deadline(call, cfg);
    if (deadline_passed(deadline)) {
        infer_fail(call, req->model_name, req->id, GRPC_STATUS_DEADLINE_EXCEEDED,
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
        infer_fail(call, req->model_name, req->id, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    if (graph) {
        /* the inputs one after the other, in the model's order (raw bytes may be unaligned) */
        size_t at = 0;
        for (size_t i = 0; i < n_gin; i++) {
            size_t k = (size_t)rows * gspec[i].elements;
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
                infer_fail(call, req->model_name, req->id, GRPC_STATUS_RESOURCE_EXHAUSTED,
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
    if (m->pending_tail != NULL)
        m->pending_tail->next = job;
    else
        m->pending_head = job;
    m->pending_tail = job;
    m->pending_rows += rows;
    m->pending_count++;
    model_dispatch(m);
done:
    free(gdata);
    free(gsel);
    free(gspec);
    free(gout_names);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

void eied_rpc_infer_register(eied_server_t *srv)
{
    static const eied_method_t infer = {.path = "/inference.GRPCInferenceService/ModelInfer",
                                        .handler = on_model_infer, .prealloc = 64};
    eied_server_add_method(srv, &infer);
}
