/* The model registry and background loading; see models.h. */
#include "models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "call.h"
#include "log.h"

uint64_t eied_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *eied_model_state_name(eied_model_state_t state)
{
    switch (state) {
    case EIED_MODEL_LOADING:
        return "LOADING";
    case EIED_MODEL_READY:
        return "READY";
    case EIED_MODEL_UNAVAILABLE:
        return "UNAVAILABLE";
    case EIED_MODEL_UNLOADED:
        return "UNLOADED";
    }
    return "UNKNOWN";
}

void eied_version_ref(eied_version_t *v)
{
    atomic_fetch_add(&v->refs, 1);
}

static void version_free(eied_version_t *v)
{
    if (v == NULL)
        return;
    eie_net_free(v->net);
    eie_model_free(v->model);
    free(v);
}

void eied_version_unref(eied_version_t *v)
{
    if (v != NULL && atomic_fetch_sub(&v->refs, 1) == 1) {
        char version[32];
        snprintf(version, sizeof version, "%llu", (unsigned long long)v->version);
        eied_log(EIED_LOG_DEBUG, "version freed", "model", v->name, "version", version, NULL);
        version_free(v);
    }
}

eied_models_t *eied_models_create(eied_server_t *srv, const eied_config_t *cfg)
{
    eied_models_t *models = calloc(1, sizeof *models);
    if (models == NULL)
        return NULL;
    models->srv = srv;
    eie_engine_opts_t opts = eie_engine_opts_default();
    opts.backend = cfg->backend;
    opts.n_pes = (unsigned)cfg->pes;
    eie_error_t err;
    if (eie_engine_init(&opts, &models->engine, &err) != EIE_STATUS_OK) {
        eied_log(EIED_LOG_ERROR, "cannot start the engine", "backend", cfg->backend, "error",
                 err.msg, NULL);
        free(models);
        return NULL;
    }
    char pes[16];
    snprintf(pes, sizeof pes, "%u", eie_engine_pes(models->engine));
    eied_log(EIED_LOG_INFO, "engine started", "backend", eie_engine_backend(models->engine), "pes",
             pes, NULL);
    return models;
}

void eied_models_free(eied_models_t *models)
{
    if (models == NULL)
        return;
    for (eied_model_t *m = models->head, *next; m != NULL; m = next) {
        next = m->next;
        eied_version_unref(m->current);
        m->current = NULL;
        free(m); /* its batch timer was closed with the loop (eied_models_close_handles) */
    }
    eie_engine_free(models->engine);
    free(models);
}

eied_model_t *eied_models_find(eied_models_t *models, const char *name)
{
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

bool eied_models_all_ready(const eied_models_t *models)
{
    if (models->loads_pending > 0)
        return false;
    for (const eied_model_t *m = models->head; m != NULL; m = m->next)
        if (m->state != EIED_MODEL_READY && m->state != EIED_MODEL_UNLOADED)
            return false;
    return true;
}

/* ---- background loading -------------------------------------------------- */

typedef struct load_req {
    uv_work_t work;
    eied_models_t *models;
    char name[EIED_MODEL_NAME_MAX];
    char path[EIED_CONFIG_STR_MAX];
    uint64_t version;
    eied_version_t *result;
    eie_error_t err;
} load_req_t;

/* libuv pool thread: everything that can be done once happens here. */
static void load_work(uv_work_t *work)
{
    load_req_t *req = work->data;
    uint64_t t0 = eied_now_ns();
    eied_version_t *v = calloc(1, sizeof *v);
    if (v == NULL) {
        eie_error_set(&req->err, EIE_STATUS_NO_MEMORY, "out of memory");
        return;
    }
    atomic_init(&v->refs, 1);
    snprintf(v->name, sizeof v->name, "%s", req->name);
    snprintf(v->path, sizeof v->path, "%s", req->path);
    v->version = req->version;
    if (eie_model_load_file(req->path, NULL, &v->model, &req->err) != EIE_STATUS_OK ||
        eie_net_init(req->models->engine, v->model, &v->net, &req->err) != EIE_STATUS_OK) {
        version_free(v);
        return;
    }
    v->load_seconds = (double)(eied_now_ns() - t0) / 1e9;
    req->result = v;
}

static void load_done(uv_work_t *work, int status)
{
    load_req_t *req = work->data;
    eied_models_t *models = req->models;
    eied_model_t *m = eied_models_find(models, req->name);
    models->loads_pending--;
    if (m != NULL)
        m->load_in_progress = false;
    if (req->result == NULL || status != 0 || m == NULL) {
        atomic_fetch_add(&models->load_failures, 1);
        const char *why = status != 0 ? "load cancelled" : req->err.msg;
        eied_log(EIED_LOG_ERROR, "model load failed", "model", req->name, "path", req->path,
                 "error", why, NULL);
        if (m != NULL) {
            snprintf(m->reason, sizeof m->reason, "%s", why);
            if (m->current == NULL)
                m->state = EIED_MODEL_UNAVAILABLE; /* a serving version stays untouched */
        }
        eied_version_unref(req->result);
    } else {
        /* Publish: an atomic swap as far as requests are concerned (they route here, on the
           loop thread); the old version lives on until its last request finishes. */
        eied_version_t *old = m->current;
        m->current = req->result;
        m->state = EIED_MODEL_READY;
        m->reason[0] = '\0';
        char secs[32], bytes[32];
        snprintf(secs, sizeof secs, "%.3f", req->result->load_seconds);
        snprintf(bytes, sizeof bytes, "%llu",
                 (unsigned long long)eie_net_layout_bytes(req->result->net));
        eied_log(EIED_LOG_INFO, "model ready", "model", m->name, "path", req->path,
                 "load_seconds", secs, "layout_bytes", bytes, NULL);
        eied_version_unref(old);
    }
    free(req);
    if (models->on_load_done != NULL)
        models->on_load_done(models->srv);
}

static eied_model_t *model_get_or_add(eied_models_t *models, const char *name)
{
    eied_model_t *m = eied_models_find(models, name);
    if (m != NULL)
        return m;
    m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    snprintf(m->name, sizeof m->name, "%s", name);
    m->srv = models->srv;
    atomic_init(&m->queued, 0);
    m->state = EIED_MODEL_LOADING;
    uv_timer_init(models->srv->loop, &m->batch_timer);
    m->batch_timer.data = m;
    m->next = models->head;
    models->head = m;
    return m;
}

bool eied_models_load(eied_models_t *models, const char *name, const char *path, char *why,
                      size_t why_len)
{
    eied_model_t *m = model_get_or_add(models, name);
    if (m == NULL) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    if (m->load_in_progress) {
        snprintf(why, why_len, "model '%s' is already loading", name);
        return false;
    }
    load_req_t *req = calloc(1, sizeof *req);
    if (req == NULL) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    req->models = models;
    req->work.data = req;
    snprintf(req->name, sizeof req->name, "%s", name);
    snprintf(req->path, sizeof req->path, "%s", path);
    snprintf(m->path, sizeof m->path, "%s", path);
    req->version = m->current != NULL ? m->current->version + 1 : 1;
    if (m->state == EIED_MODEL_UNLOADED || m->current == NULL)
        m->state = EIED_MODEL_LOADING;
    m->load_in_progress = true;
    models->loads_pending++;
    int rc = uv_queue_work(models->srv->loop, &req->work, load_work, load_done);
    if (rc != 0) {
        models->loads_pending--;
        m->load_in_progress = false;
        snprintf(why, why_len, "cannot queue the load: %s", uv_strerror(rc));
        free(req);
        return false;
    }
    eied_log(EIED_LOG_INFO, "loading model", "model", name, "path", path, NULL);
    return true;
}

void eied_models_load_configured(eied_models_t *models, const eied_config_t *cfg)
{
    char why[EIED_REASON_MAX];
    for (size_t i = 0; i < cfg->n_models; i++)
        if (!eied_models_load(models, cfg->models[i].name, cfg->models[i].path, why, sizeof why))
            eied_log(EIED_LOG_ERROR, "cannot load model", "model", cfg->models[i].name, "error",
                     why, NULL);
}

bool eied_models_unload(eied_models_t *models, const char *name, char *why, size_t why_len)
{
    eied_model_t *m = eied_models_find(models, name);
    if (m == NULL || m->state == EIED_MODEL_UNLOADED) {
        snprintf(why, why_len, "model '%s' is not loaded", name);
        return false;
    }
    eied_version_t *old = m->current;
    m->current = NULL;
    m->state = EIED_MODEL_UNLOADED;
    snprintf(m->reason, sizeof m->reason, "unloaded");
    eied_log(EIED_LOG_INFO, "model unloaded", "model", name, NULL);
    eied_version_unref(old); /* requests in flight keep it alive until they finish */
    return true;
}

void eied_models_close_handles(eied_models_t *models)
{
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        if (!uv_is_closing((uv_handle_t *)&m->batch_timer))
            uv_close((uv_handle_t *)&m->batch_timer, NULL);
}
