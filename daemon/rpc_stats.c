/* ModelStatistics (Triton's statistics extension), read from the versions' atomic counters. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "inference.pb-c.h"
#include "models.h"
#include "rpc.h"

typedef struct {
    Inference__ModelStatistics ms;
    Inference__InferStatistics is;
    Inference__StatisticDuration d[6];
    Inference__MemoryUsage mem;
    Inference__MemoryUsage *mems[1];
    char version[32];
} stats_slot_t;

static void duration(Inference__StatisticDuration *d, atomic_uint_fast64_t *count,
                     atomic_uint_fast64_t *ns)
{
    inference__statistic_duration__init(d);
    d->count = atomic_load(count);
    d->ns = atomic_load(ns);
}

static void fill(stats_slot_t *s, eied_model_t *m, eied_version_t *v)
{
    eied_stats_t *st = &v->stats;
    inference__model_statistics__init(&s->ms);
    inference__infer_statistics__init(&s->is);
    snprintf(s->version, sizeof s->version, "%" PRIu64, v->version);
    s->ms.name = m->name;
    s->ms.version = s->version;
    s->ms.last_inference = atomic_load(&st->last_inference_ms);
    s->ms.inference_count = atomic_load(&st->inference_count);
    s->ms.execution_count = atomic_load(&st->execution_count);
    duration(&s->d[0], &st->success_count, &st->success_ns);
    duration(&s->d[1], &st->fail_count, &st->fail_ns);
    duration(&s->d[2], &st->queue_count, &st->queue_ns);
    duration(&s->d[4], &st->compute_count, &st->compute_ns);
    inference__statistic_duration__init(&s->d[3]);
    inference__statistic_duration__init(&s->d[5]);
    s->is.success = &s->d[0];
    s->is.fail = &s->d[1];
    s->is.queue = &s->d[2];
    s->is.compute_input = &s->d[3];
    s->is.compute_infer = &s->d[4];
    s->is.compute_output = &s->d[5];
    s->ms.inference_stats = &s->is;
    inference__memory_usage__init(&s->mem);
    s->mem.type = "CPU";
    s->mem.byte_size = eie_net_layout_bytes(v->net);
    s->mems[0] = &s->mem;
    s->ms.n_memory_usage = 1;
    s->ms.memory_usage = s->mems;
}

static void on_model_statistics(eied_app_t *app, eied_call_t *call)
{
    Inference__ModelStatisticsRequest *req = (Inference__ModelStatisticsRequest *)eied_call_read(
        call, &inference__model_statistics_request__descriptor);
    if (req == NULL)
        return;
    size_t n = 0;
    for (eied_model_t *m = app->models->head; m != NULL; m = m->next)
        n += m->n_versions;
    stats_slot_t *slots = calloc(n ? n : 1, sizeof *slots);
    Inference__ModelStatistics **list = calloc(n ? n : 1, sizeof *list);
    if (slots == NULL || list == NULL) {
        eied_call_fail(call, EIE_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto done;
    }
    size_t k = 0;
    bool named = req->name[0] != '\0';
    for (eied_model_t *m = app->models->head; m != NULL; m = m->next) {
        if (named && strcmp(m->name, req->name) != 0)
            continue;
        for (size_t i = 0; i < m->n_versions; i++) {
            eied_version_t *v = m->versions[i];
            if (req->version[0] != '\0') {
                char want[32];
                snprintf(want, sizeof want, "%" PRIu64, v->version);
                if (strcmp(want, req->version) != 0)
                    continue;
            }
            fill(&slots[k], m, v);
            list[k] = &slots[k].ms;
            k++;
        }
    }
    if (named && k == 0) {
        eied_call_fail(call, EIE_STATUS_NOT_FOUND, "unknown model '%s'%s%s%s", req->name,
                       req->version[0] ? " version '" : "", req->version,
                       req->version[0] ? "'" : "");
        goto done;
    }
    Inference__ModelStatisticsResponse resp = INFERENCE__MODEL_STATISTICS_RESPONSE__INIT;
    resp.n_model_stats = k;
    resp.model_stats = list;
    eied_call_reply(call, &resp.base);
done:
    free(slots);
    free(list);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

void eied_rpc_stats_register(eied_app_t *app)
{
    static const eied_method_t m = {.path = "/inference.GRPCInferenceService/ModelStatistics",
                                    .handler = on_model_statistics};
    eied_server_add_method(app->server, &m);
}
