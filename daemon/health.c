/*
 * The health state behind grpc.health.v1 (rpc_health.c serves it): the
 * status of "", "liveness" and "readiness" and the Watch streams that
 * follow them. Kubernetes convention (OIP_NOTES.md): readiness (and "") go
 * NOT_SERVING when the daemon drains, is not yet ready, or its main port
 * does not accept (server.c's probe); liveness stays SERVING while the
 * process can answer and its main port has accepted within
 * server.liveness_grace. All state lives on the loop thread.
 */
#include "health.h"

#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "server.h"

enum { SVC_OVERALL, SVC_LIVENESS, SVC_READINESS, N_SERVICES };
static const char *const service_names[N_SERVICES] = {"", "liveness", "readiness"};

typedef struct watcher {
    eied_health_t *health;
    eied_call_t *call;
    int service; /* -1: unknown service, reported as SERVICE_UNKNOWN */
    serving_t last_sent;
    bool sent_any;
    bool sending;
    bool finish_pending;
    struct watcher *next;
} watcher_t;

struct eied_health {
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

static void watcher_remove(eied_health_t *h, watcher_t *w, eie_status_t status,
                           const char *detail)
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
    eied_call_finish(w->call, status, detail);
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
        watcher_remove(h, w, stopping ? EIE_STATUS_UNAVAILABLE : EIE_STATUS_CANCELLED,
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

static void watch_after_send(void *arg)
{
    send_result_t *r = arg;
    watcher_t *w = r->call->user;
    if (w != NULL) {
        w->sending = false;
        if (!r->ok)
            watcher_remove(w->health, w, EIE_STATUS_CANCELLED, "stream broken");
        else
            watcher_pump(w->health, w);
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

static void watch_closed_task(void *arg)
{
    eied_call_t *call = arg;
    watcher_t *w = call->user;
    if (w != NULL)
        watcher_pump(w->health, w);
    eied_call_unref(call);
}

/* CQ thread: the client went away; the loop removes the watcher. */
static void watch_on_close(eied_call_t *call)
{
    eied_call_ref(call);
    eied_server_post(call->srv, watch_closed_task, call);
}

eied_health_t *eied_health_create(void)
{
    eied_health_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
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

bool eied_health_status(const eied_health_t *h, const char *service, serving_t *status_out)
{
    int i = find_service(service);
    if (i < 0)
        return false;
    *status_out = h->status[i];
    return true;
}

eie_status_t eied_health_watch(eied_health_t *h, eied_call_t *call, const char *service,
                               unsigned max_watchers, eie_error_t *err)
{
    /* Watch is free for anyone who reaches the health port: each open stream holds
       memory in gRPC and here, so they have their own limit. */
    if (h->n_watchers >= max_watchers)
        return eie_error_set(err, EIE_STATUS_RESOURCE_EXHAUSTED,
                             "too many Watch streams open (server.max_watch_streams = %u); use "
                             "Check",
                             max_watchers);
    watcher_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return eie_error_set(err, EIE_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    w->health = h;
    w->call = call;
    w->service = find_service(service);
    w->next = h->watchers;
    h->watchers = w;
    h->n_watchers++;
    call->user = w;
    call->on_close = watch_on_close;
    watcher_pump(h, w);
    return EIE_STATUS_OK;
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

void eied_health_set_ready(eied_health_t *h, bool ready)
{
    h->want_ready = ready;
    publish(h, is_live(h));
}

/* A listener that stopped accepting (gRPC gives up on it after an accept error such as
   EMFILE) never recovers in this process: readiness stops routing to it at once, and
   liveness, after a grace period, gets the pod restarted. */
void eied_health_set_port(eied_health_t *h, bool ok, bool liveness_ok)
{
    h->port_ok = ok;
    publish(h, liveness_ok);
}

unsigned eied_health_watch_count(const eied_health_t *h)
{
    return h->n_watchers;
}

void eied_health_close_watches(eied_health_t *h)
{
    for (watcher_t *w = h->watchers, *next; w != NULL; w = next) {
        next = w->next;
        w->finish_pending = true;
        watcher_pump(h, w);
    }
}
