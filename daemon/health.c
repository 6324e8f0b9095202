/*
 * grpc.health.v1.Health: Check and Watch for "", "liveness" and "readiness".
 * Kubernetes convention (OIP_NOTES.md): readiness (and "") go NOT_SERVING
 * when the daemon drains, is not yet ready, or its main port does not accept
 * (server.c's probe); liveness stays SERVING while the process can answer
 * and its main port has accepted within server.liveness_grace. All state
 * lives on the loop thread.
 */
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "health.pb-c.h"
#include "log.h"
#include "server.h"

enum { SVC_OVERALL, SVC_LIVENESS, SVC_READINESS, N_SERVICES };
static const char *const service_names[N_SERVICES] = {"", "liveness", "readiness"};

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus serving_t;

typedef struct watcher {
    eied_call_t *call;
    int service; /* -1: unknown service, reported as SERVICE_UNKNOWN */
    serving_t last_sent;
    bool sent_any;
    bool sending;
    bool finish_pending;
    struct watcher *next;
} watcher_t;

struct eied_health {
    eied_server_t *srv;
    serving_t status[N_SERVICES];
    watcher_t *watchers;
    unsigned n_watchers;
    bool want_ready; /* what the models and the drain say */
    bool port_ok;    /* the main port accepts connections (server.c's probe) */
};

static int find_service(const char *name)
{
    for (int i = 0; i < N_SERVICES; i++)
        if (strcmp(name, service_names[i]) == 0)
            return i;
    return -1;
}

static serving_t current(eied_health_t *h, int service)
{
    return service < 0 ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN
                       : h->status[service];
}

static void on_check(eied_server_t *srv, eied_call_t *call)
{
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)
        eied_call_read(call, &grpc__health__v1__health_check_request__descriptor);
    if (req == NULL)
        return;
    int service = find_service(req->service);
    if (service < 0) {
        eied_call_fail(call, GRPC_STATUS_NOT_FOUND,
                       "unknown health service '%s' (known: \"\", liveness, readiness)",
                       req->service);
    } else {
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        resp.status = srv->health->status[service];
        eied_call_reply(call, &resp.base);
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void watcher_remove(eied_health_t *h, watcher_t *w, int code, const char *detail)
{
    for (watcher_t **p = &h->watchers; *p != NULL; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            h->n_watchers--;
            break;
        }
    }
    w->call->user = NULL;
    w->call->on_close = NULL;
    eied_call_finish(w->call, code, detail);
    free(w);
}

static void watch_send_done(eied_call_t *call, bool ok);

/* Sends the watched status if it changed since the last message. */
static void watcher_pump(eied_health_t *h, watcher_t *w)
{
    if (w->sending)
        return;
    if (w->finish_pending || atomic_load(&w->call->closed)) {
        bool stopping = w->finish_pending;
        watcher_remove(h, w, stopping ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_CANCELLED,
                       stopping ? "server is shutting down" : "cancelled");
        return;
    }
    serving_t now = current(h, w->service);
    if (w->sent_any && now == w->last_sent)
        return;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = now;
    w->sending = true;
    w->sent_any = true;
    w->last_sent = now;
    if (!eied_call_send(w->call, &resp.base, watch_send_done))
        w->sending = false;
}

typedef struct {
    eied_call_t *call;
    bool ok;
} send_result_t;

static void watch_after_send(eied_server_t *srv, void *arg)
{
    send_result_t *r = arg;
    watcher_t *w = r->call->user;
    if (w != NULL) {
        w->sending = false;
        if (!r->ok)
            watcher_remove(srv->health, w, GRPC_STATUS_CANCELLED, "stream broken");
        else
            watcher_pump(srv->health, w);
    }
    eied_call_unref(r->call);
    free(r);
}

/* CQ thread: hand the result to the loop, which owns the watcher list. */
static void watch_send_done(eied_call_t *call, bool ok)
{
    send_result_t *r = malloc(sizeof *r);
    if (r == NULL)
        return; /* the watcher stays 'sending' and is removed at shutdown */
    eied_call_ref(call);
    r->call = call;
    r->ok = ok;
    eied_server_post(call->srv, watch_after_send, r);
}

static void watch_closed_task(eied_server_t *srv, void *arg)
{
    eied_call_t *call = arg;
    watcher_t *w = call->user;
    if (w != NULL)
        watcher_pump(srv->health, w);
    eied_call_unref(call);
}

/* CQ thread: the client went away; the loop removes the watcher. */
static void watch_on_close(eied_call_t *call)
{
    eied_call_ref(call);
    eied_server_post(call->srv, watch_closed_task, call);
}

static void on_watch(eied_server_t *srv, eied_call_t *call)
{
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)
        eied_call_read(call, &grpc__health__v1__health_check_request__descriptor);
    if (req == NULL)
        return;
    if (eied_server_state(srv) >= EIED_SERVER_STOPPING) {
        eied_call_fail(call, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
        protobuf_c_message_free_unpacked(&req->base, NULL);
        return;
    }
    /* Watch is free for anyone who reaches the health port: each open stream holds
       memory in gRPC and here, so they have their own limit. */
    if (srv->health->n_watchers >= srv->cfg->max_watch_streams) {
        atomic_fetch_add(&srv->refused_streams, 1);
        eied_log(EIED_LOG_WARN, "health: Watch refused, too many open", NULL);
        eied_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                       "too many Watch streams open (server.max_watch_streams = %llu); use Check",
                       (unsigned long long)srv->cfg->max_watch_streams);
        protobuf_c_message_free_unpacked(&req->base, NULL);
        return;
    }
    watcher_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        eied_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        protobuf_c_message_free_unpacked(&req->base, NULL);
        return;
    }
    w->call = call;
    w->service = find_service(req->service);
    protobuf_c_message_free_unpacked(&req->base, NULL);
    w->next = srv->health->watchers;
    srv->health->watchers = w;
    srv->health->n_watchers++;
    call->user = w;
    call->on_close = watch_on_close;
    watcher_pump(srv->health, w);
}

eied_health_t *eied_health_create(eied_server_t *srv)
{
    eied_health_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->srv = srv;
    h->port_ok = true;
    h->status[SVC_OVERALL] = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    h->status[SVC_READINESS] = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    h->status[SVC_LIVENESS] = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    return h;
}

void eied_health_free(eied_health_t *health)
{
    free(health);
}

void eied_health_register(eied_server_t *srv)
{
    static const eied_method_t check = {.path = "/grpc.health.v1.Health/Check",
                                        .handler = on_check, .prealloc = 8};
    static const eied_method_t watch = {.path = "/grpc.health.v1.Health/Watch",
                                        .handler = on_watch, .prealloc = 2};
    eied_server_add_health_method(srv, &check);
    eied_server_add_health_method(srv, &watch);
}

static void publish(eied_health_t *h, bool live)
{
    serving_t ready = h->want_ready && h->port_ok
                          ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                          : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    h->status[SVC_OVERALL] = ready;
    h->status[SVC_READINESS] = ready;
    h->status[SVC_LIVENESS] = live
                                  ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                                  : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    for (watcher_t *w = h->watchers, *next; w != NULL; w = next) {
        next = w->next;
        watcher_pump(h, w);
    }
}

static bool is_live(const eied_health_t *h)
{
    return h->status[SVC_LIVENESS] ==
           GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
}

void eied_health_set_ready(eied_server_t *srv, bool ready)
{
    srv->health->want_ready = ready;
    publish(srv->health, is_live(srv->health));
}

/* A listener that stopped accepting (gRPC gives up on it after an accept error such as
   EMFILE) never recovers in this process: readiness stops routing to it at once, and
   liveness, after a grace period, gets the pod restarted. */
void eied_health_set_port(eied_server_t *srv, bool ok, bool liveness_ok)
{
    srv->health->port_ok = ok;
    publish(srv->health, liveness_ok);
}

unsigned eied_health_watch_count(const eied_server_t *srv)
{
    return srv->health->n_watchers;
}

void eied_health_close_watches(eied_server_t *srv)
{
    eied_health_t *h = srv->health;
    for (watcher_t *w = h->watchers, *next; w != NULL; w = next) {
        next = w->next;
        w->finish_pending = true;
        watcher_pump(h, w);
    }
}
