/*
 * Triton's repository extension: RepositoryIndex lists every model with its
 * state and the reason of its last failure; RepositoryModelLoad (re)loads a
 * model in the background from the path it was configured or last loaded
 * with; RepositoryModelUnload unpublishes it (new requests NOT_FOUND,
 * in-flight ones finish on the version they hold).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "app.h"
#include "call.h"
#include "inference.pb-c.h"
#include "log.h"
#include "models.h"
#include "repository.h"
#include "rpc.h"

static void on_index(eied_app_t *app, eied_call_t *call)
{
    Inference__RepositoryIndexRequest *req = (Inference__RepositoryIndexRequest *)eied_call_read(
        call, &inference__repository_index_request__descriptor);
    if (req == NULL)
        return;
    /* one row per published version, or one row for a model with none (state + reason) */
    size_t n = 0;
    for (eied_model_t *m = app->models->head; m != NULL; m = m->next)
        n += (m->n_versions > 0 ? m->n_versions : 1) + m->n_failed;
    Inference__RepositoryIndexResponse__ModelIndex *idx = calloc(n ? n : 1, sizeof *idx);
    Inference__RepositoryIndexResponse__ModelIndex **list = calloc(n ? n : 1, sizeof *list);
    char (*versions)[32] = calloc(n ? n : 1, sizeof *versions);
    if (idx == NULL || list == NULL || versions == NULL) {
        eied_call_fail(call, EIE_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    size_t k = 0;
    for (eied_model_t *m = app->models->head; m != NULL; m = m->next) {
        if (req->ready && m->state != EIED_MODEL_READY)
            continue;
        size_t rows = m->n_versions > 0 ? m->n_versions : 1;
        for (size_t r = 0; r < rows; r++) {
            inference__repository_index_response__model_index__init(&idx[k]);
            idx[k].name = m->name;
            if (m->n_versions > 0)
                snprintf(versions[k], sizeof versions[k], "%" PRIu64,
                         m->versions[r]->version);
            idx[k].version = versions[k];
            idx[k].state = (char *)eied_model_state_name(m->state);
            idx[k].reason = m->reason;
            list[k] = &idx[k];
            k++;
        }
        /* versions that failed and do not serve: their own row, so an older version
           serving does not hide the failure of a newer one */
        for (size_t f = 0; f < m->n_failed && !req->ready; f++) {
            if (eied_model_version(m, m->failed[f].version) != NULL)
                continue;
            inference__repository_index_response__model_index__init(&idx[k]);
            idx[k].name = m->name;
            snprintf(versions[k], sizeof versions[k], "%" PRIu64, m->failed[f].version);
            idx[k].version = versions[k];
            idx[k].state = (char *)eied_model_state_name(EIED_MODEL_UNAVAILABLE);
            idx[k].reason = m->failed[f].reason;
            list[k] = &idx[k];
            k++;
        }
    }
    Inference__RepositoryIndexResponse resp = INFERENCE__REPOSITORY_INDEX_RESPONSE__INIT;
    resp.n_models = k;
    resp.models = list;
    eied_call_reply(call, &resp.base);
done:
    free(idx);
    free(list);
    free(versions);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void on_load(eied_app_t *app, eied_call_t *call)
{
    Inference__RepositoryModelLoadRequest *req =
        (Inference__RepositoryModelLoadRequest *)eied_call_read(
            call, &inference__repository_model_load_request__descriptor);
    if (req == NULL)
        return;
    eie_error_t err;
    eie_status_t st = eied_admin_authorize(app->admin, call, &err);
    if (st == EIE_STATUS_OK)
        st = eied_repository_load(app->repository, req->model_name, &err);
    if (st != EIE_STATUS_OK) {
        eied_log(EIED_LOG_WARN, "RepositoryModelLoad refused", "model", req->model_name, "reason", err.msg,
                 NULL);
        eied_call_fail_error(call, &err);
    } else {
        Inference__RepositoryModelLoadResponse resp =
            INFERENCE__REPOSITORY_MODEL_LOAD_RESPONSE__INIT;
        eied_call_reply(call, &resp.base);
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void on_unload(eied_app_t *app, eied_call_t *call)
{
    Inference__RepositoryModelUnloadRequest *req =
        (Inference__RepositoryModelUnloadRequest *)eied_call_read(
            call, &inference__repository_model_unload_request__descriptor);
    if (req == NULL)
        return;
    eie_error_t err;
    eie_status_t st = eied_admin_authorize(app->admin, call, &err);
    if (st == EIE_STATUS_OK)
        st = eied_repository_unload(app->repository, req->model_name, &err);
    if (st != EIE_STATUS_OK) {
        eied_log(EIED_LOG_WARN, "RepositoryModelUnload refused", "model", req->model_name, "reason", err.msg,
                 NULL);
        eied_call_fail_error(call, &err);
    } else {
        Inference__RepositoryModelUnloadResponse resp =
            INFERENCE__REPOSITORY_MODEL_UNLOAD_RESPONSE__INIT;
        eied_call_reply(call, &resp.base);
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

void eied_rpc_repository_register(eied_app_t *app)
{
    static const eied_method_t methods[] = {
        {.path = "/inference.GRPCInferenceService/RepositoryIndex", .handler = on_index},
        {.path = "/inference.GRPCInferenceService/RepositoryModelLoad", .handler = on_load},
        {.path = "/inference.GRPCInferenceService/RepositoryModelUnload", .handler = on_unload},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        eied_server_add_method(app->server, &methods[i]);
}
