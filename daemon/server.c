/*
 * The gRPC servers inside the libuv loop; see server.h for the threads.
 * Two gRPC servers share one completion queue: the main port (every
 * service, TLS when configured) and a plaintext port that answers
 * grpc.health.v1 only, for Kubernetes probes, which cannot speak TLS.
 *
 * Shutdown follows GRPC_NOTES.md: readiness NOT_SERVING, drain_delay of
 * normal serving, grpc_server_shutdown_and_notify, in-flight calls finish
 * until exit_timeout, then grpc_server_cancel_all_calls. The servers are
 * destroyed only once every shutdown tag has fired AND the last live call
 * is freed.
 */
#include "server.h"

#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "call.h"
#include "log.h"
#include "metrics.h"
#include "models.h"
#include "repository.h"
#include "tls.h"

typedef struct eied_task {
    eied_task_fn fn;
    void *arg;
    struct eied_task *next;
} eied_task_t;

enum { DEFAULT_PREALLOC = 4, UNKNOWN_METHOD_PREALLOC = 2 };

/* ---- completion-queue thread ------------------------------------------ */

static void request_call(eied_listener_t *l, const struct method_slot *slot);

static void close_tag_done(eied_tag_t *tag, bool ok)
{
    eied_call_t *call = (eied_call_t *)((char *)tag - offsetof(eied_call_t, close_tag));
    (void)ok;
    if (call->close_cancelled) {
        atomic_store(&call->closed, true);
        if (call->on_close != NULL)
            call->on_close(call);
    }
    eied_call_unref(call);
}

/* RECV_CLOSE_ON_SERVER in a batch of its own (GRPC_NOTES.md, lifecycle 1). */
static void start_close_watch(eied_call_t *call)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &call->close_cancelled;
    call->close_tag.fn = close_tag_done;
    eied_call_ref(call);
    if (grpc_call_start_batch(call->call, &op, 1, &call->close_tag, NULL) != GRPC_CALL_OK)
        eied_call_unref(call);
}

static void inbox_push(eied_server_t *srv, eied_call_t *call)
{
    pthread_mutex_lock(&srv->inbox_lock);
    call->next = NULL;
    if (srv->inbox_tail != NULL)
        srv->inbox_tail->next = call;
    else
        srv->inbox_head = call;
    srv->inbox_tail = call;
    pthread_mutex_unlock(&srv->inbox_lock);
    uv_async_send(&srv->wake);
}

static void new_call_done(eied_tag_t *tag, bool ok)
{
    eied_call_t *call = (eied_call_t *)((char *)tag - offsetof(eied_call_t, new_tag));
    eied_server_t *srv = call->srv;
    if (!ok) {
        /* the server is shutting down: this request will never be a call */
        eied_call_unref(call);
        return;
    }
    atomic_fetch_add(&srv->live_calls, 1);
    call->arrived_ns = eied_now_ns();
    if (atomic_load(&srv->state) < EIED_SERVER_STOPPING)
        request_call(call->listener, call->slot); /* keep as many requests outstanding */
    start_close_watch(call);
    if (call->slot == NULL) {
        /* Unknown method (or, on the health port, anything but health): answered here. */
        char path[256];
        size_t n = GRPC_SLICE_LENGTH(call->details.method);
        if (n >= sizeof path)
            n = sizeof path - 1;
        memcpy(path, GRPC_SLICE_START_PTR(call->details.method), n);
        path[n] = '\0';
        if (call->listener == &srv->listeners[EIED_LISTENER_HEALTH])
            eied_call_fail(call, GRPC_STATUS_UNIMPLEMENTED,
                           "%s: this port serves grpc.health.v1 only", path);
        else
            eied_call_fail(call, GRPC_STATUS_UNIMPLEMENTED, "unknown method %s", path);
        return;
    }
    inbox_push(srv, call);
}

static void request_call(eied_listener_t *l, const struct method_slot *slot)
{
    eied_call_t *call = eied_call_new(l, slot);
    if (call == NULL) {
        eied_log(EIED_LOG_ERROR, "out of memory requesting a call", NULL);
        return;
    }
    call->new_tag.fn = new_call_done;
    grpc_completion_queue *cq = l->srv->cq;
    grpc_call_error rc;
    if (slot != NULL)
        rc = grpc_server_request_registered_call(l->server, slot->handle, &call->call,
                                                 &call->deadline, &call->request_md,
                                                 &call->payload, cq, cq, &call->new_tag);
    else
        rc = grpc_server_request_call(l->server, &call->call, &call->details, &call->request_md,
                                      cq, cq, &call->new_tag);
    if (rc != GRPC_CALL_OK) {
        eied_log(EIED_LOG_ERROR, "cannot request a call", "error", grpc_call_error_to_string(rc),
                 NULL);
        call->call = NULL;
        eied_call_unref(call);
    }
}

static void shutdown_tag_done(eied_tag_t *tag, bool ok)
{
    eied_listener_t *l = (eied_listener_t *)((char *)tag - offsetof(eied_listener_t, shutdown_tag));
    (void)ok;
    atomic_store(&l->shutdown_done, true);
    uv_async_send(&l->srv->wake);
}

static void *cq_thread_main(void *arg)
{
    eied_server_t *srv = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                                   NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE) {
            eied_tag_t *tag = ev.tag;
            tag->fn(tag, ev.success != 0);
        }
    }
    return NULL;
}

/* ---- loop thread -------------------------------------------------------- */

void eied_server_post(eied_server_t *srv, eied_task_fn fn, void *arg)
{
    eied_task_t *task = malloc(sizeof *task);
    if (task == NULL) {
        eied_log(EIED_LOG_ERROR, "out of memory posting a task to the loop", NULL);
        return;
    }
    task->fn = fn;
    task->arg = arg;
    task->next = NULL;
    pthread_mutex_lock(&srv->inbox_lock);
    if (srv->tasks_tail != NULL)
        srv->tasks_tail->next = task;
    else
        srv->tasks_head = task;
    srv->tasks_tail = task;
    pthread_mutex_unlock(&srv->inbox_lock);
    uv_async_send(&srv->wake);
}

static bool listeners_shut_down(eied_server_t *srv)
{
    for (int i = 0; i < EIED_N_LISTENERS; i++)
        if (srv->listeners[i].server != NULL && !atomic_load(&srv->listeners[i].shutdown_done))
            return false;
    return true;
}

static void finish_shutdown(eied_server_t *srv);

/* uv_async_send coalesces wake-ups: drain everything each time. */
static void on_wake(uv_async_t *handle)
{
    eied_server_t *srv = handle->data;
    pthread_mutex_lock(&srv->inbox_lock);
    eied_call_t *calls = srv->inbox_head;
    eied_task_t *tasks = srv->tasks_head;
    srv->inbox_head = srv->inbox_tail = NULL;
    srv->tasks_head = srv->tasks_tail = NULL;
    pthread_mutex_unlock(&srv->inbox_lock);

    while (tasks != NULL) {
        eied_task_t *next = tasks->next;
        tasks->fn(srv, tasks->arg);
        free(tasks);
        tasks = next;
    }
    while (calls != NULL) {
        eied_call_t *next = calls->next;
        calls->next = NULL;
        calls->slot->method.handler(srv, calls);
        calls = next;
    }
    if (atomic_load(&srv->state) == EIED_SERVER_STOPPING && listeners_shut_down(srv) &&
        atomic_load(&srv->live_calls) == 0)
        finish_shutdown(srv);
}

static void close_handle(uv_handle_t *h)
{
    if (h->loop != NULL && !uv_is_closing(h))
        uv_close(h, NULL);
}

static void finish_shutdown(eied_server_t *srv)
{
    atomic_store(&srv->state, EIED_SERVER_STOPPED);
    for (int i = 0; i < EIED_N_LISTENERS; i++) {
        if (srv->listeners[i].server != NULL) {
            grpc_server_destroy(srv->listeners[i].server);
            srv->listeners[i].server = NULL;
        }
    }
    grpc_completion_queue_shutdown(srv->cq);
    pthread_join(srv->cq_thread, NULL);
    srv->cq_thread_started = false;
    grpc_completion_queue_destroy(srv->cq);
    srv->cq = NULL;
    uv_timer_stop(&srv->drain_timer);
    uv_timer_stop(&srv->exit_timer);
    close_handle((uv_handle_t *)&srv->wake);
    close_handle((uv_handle_t *)&srv->sigterm);
    close_handle((uv_handle_t *)&srv->sigint);
    close_handle((uv_handle_t *)&srv->sighup);
    close_handle((uv_handle_t *)&srv->drain_timer);
    close_handle((uv_handle_t *)&srv->exit_timer);
    if (srv->models != NULL)
        eied_models_close_handles(srv->models);
    eied_metrics_close(srv);
    eied_repository_close(srv);
    eied_log(EIED_LOG_INFO, "stopped", NULL);
}

static void cancel_all(eied_server_t *srv, const char *why)
{
    if (srv->cancelled_all)
        return;
    srv->cancelled_all = true;
    char live[32];
    snprintf(live, sizeof live, "%ld", atomic_load(&srv->live_calls));
    eied_log(EIED_LOG_WARN, "cancelling in-flight calls", "reason", why, "calls", live, NULL);
    for (int i = 0; i < EIED_N_LISTENERS; i++)
        if (srv->listeners[i].server != NULL)
            grpc_server_cancel_all_calls(srv->listeners[i].server);
}

static void on_exit_timeout(uv_timer_t *t)
{
    cancel_all(t->data, "exit_timeout");
}

static void stop_listening(eied_server_t *srv)
{
    atomic_store(&srv->state, EIED_SERVER_STOPPING);
    eied_log(EIED_LOG_INFO, "listener closed, finishing in-flight calls", NULL);
    eied_health_close_watches(srv);
    for (int i = 0; i < EIED_N_LISTENERS; i++) {
        eied_listener_t *l = &srv->listeners[i];
        if (l->server == NULL)
            continue;
        l->shutdown_tag.fn = shutdown_tag_done;
        grpc_server_shutdown_and_notify(l->server, srv->cq, &l->shutdown_tag);
    }
    uv_timer_start(&srv->exit_timer, on_exit_timeout, srv->cfg->exit_timeout_ms, 0);
    uv_async_send(&srv->wake); /* nothing may be in flight at all */
}

static void on_drain_delay(uv_timer_t *t)
{
    stop_listening(t->data);
}

void eied_server_shutdown(eied_server_t *srv)
{
    srv->signals_seen++;
    eied_server_state_t state = atomic_load(&srv->state);
    if (state == EIED_SERVER_RUNNING) {
        char ms[32];
        snprintf(ms, sizeof ms, "%llu", (unsigned long long)srv->cfg->drain_delay_ms);
        eied_log(EIED_LOG_INFO, "draining: readiness NOT_SERVING", "drain_delay_ms", ms, NULL);
        atomic_store(&srv->state, EIED_SERVER_DRAINING);
        eied_health_set_ready(srv, false);
        uv_timer_start(&srv->drain_timer, on_drain_delay, srv->cfg->drain_delay_ms, 0);
        return;
    }
    /* A second signal: stop at once. */
    if (state == EIED_SERVER_DRAINING) {
        uv_timer_stop(&srv->drain_timer);
        stop_listening(srv);
    }
    if (atomic_load(&srv->state) == EIED_SERVER_STOPPING)
        cancel_all(srv, "second signal");
}

static void on_signal(uv_signal_t *h, int signum)
{
    eied_server_t *srv = h->data;
    eied_log(EIED_LOG_INFO, "signal", "signal", signum == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    eied_server_shutdown(srv);
}

/* SIGHUP: re-read certificates and the admin token, rescan the repository. */
static void on_sighup(uv_signal_t *h, int signum)
{
    eied_server_t *srv = h->data;
    char why[512];
    (void)signum;
    eied_log(EIED_LOG_INFO, "SIGHUP: reloading certificates, admin token, repository", NULL);
    if (srv->tls != NULL && !eied_tls_reload(srv->tls, why, sizeof why))
        eied_log(EIED_LOG_ERROR, "TLS reload failed; the old certificates stay", "error", why,
                 NULL);
    if (srv->admin != NULL && !eied_admin_reload(srv->admin, why, sizeof why))
        eied_log(EIED_LOG_ERROR, "admin token reload failed; the old token stays", "error", why,
                 NULL);
    if (srv->models != NULL)
        eied_models_forget_failures(srv->models); /* every failed file gets another try */
    eied_repository_rescan(srv);
}

eied_server_state_t eied_server_state(const eied_server_t *srv)
{
    return (eied_server_state_t)atomic_load(&srv->state);
}

static grpc_server *create_grpc_server(eied_server_t *srv)
{
    /* gRPC refuses bigger messages with RESOURCE_EXHAUSTED before buffering them. */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)srv->cfg->max_receive_message_size},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_CONCURRENT_STREAMS,
         .value.integer = (int)srv->cfg->max_concurrent_streams},
    };
    grpc_channel_args chan_args = {.num_args = sizeof args / sizeof args[0], .args = args};
    grpc_server *server = grpc_server_create(&chan_args, NULL);
    if (server != NULL)
        grpc_server_register_completion_queue(server, srv->cq, NULL);
    return server;
}

eied_server_t *eied_server_create(uv_loop_t *loop, const eied_config_t *cfg)
{
    eied_server_t *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    char why[1024];
    srv->loop = loop;
    srv->cfg = cfg;
    pthread_mutex_init(&srv->inbox_lock, NULL);
    atomic_init(&srv->state, EIED_SERVER_RUNNING);
    atomic_init(&srv->live_calls, 0);
    srv->started_ns = eied_now_ns();
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    for (int i = 0; i < EIED_N_LISTENERS; i++) {
        srv->listeners[i].srv = srv;
        srv->listeners[i].what = i == EIED_LISTENER_MAIN ? "grpc" : "health";
        atomic_init(&srv->listeners[i].shutdown_done, false);
    }
    srv->listeners[EIED_LISTENER_MAIN].server = create_grpc_server(srv);
    if (cfg->health_listen[0] != '\0')
        srv->listeners[EIED_LISTENER_HEALTH].server = create_grpc_server(srv);
    srv->health = eied_health_create(srv);
    srv->metrics = calloc(1, sizeof *srv->metrics);
    if (srv->cq == NULL || srv->listeners[EIED_LISTENER_MAIN].server == NULL ||
        (cfg->health_listen[0] != '\0' && srv->listeners[EIED_LISTENER_HEALTH].server == NULL) ||
        srv->health == NULL || srv->metrics == NULL) {
        eied_log(EIED_LOG_ERROR, "cannot create the gRPC server", NULL);
        goto error;
    }
    srv->tls = eied_tls_create(cfg, why, sizeof why);
    if (srv->tls == NULL && why[0] != '\0') {
        eied_log(EIED_LOG_ERROR, "TLS configuration", "error", why, NULL);
        goto error;
    }
    srv->admin = eied_admin_create(cfg, why, sizeof why);
    if (srv->admin == NULL) {
        eied_log(EIED_LOG_ERROR, "admin configuration", "error", why, NULL);
        goto error;
    }
    eied_health_register(srv);
    return srv;
error:
    eied_server_free(srv);
    return NULL;
}

static bool add_method(eied_listener_t *l, const eied_method_t *method)
{
    if (l->server == NULL)
        return true;
    if (l->n_methods == EIED_MAX_METHODS)
        return false;
    struct method_slot *slot = &l->methods[l->n_methods];
    slot->method = *method;
    slot->listener = l;
    slot->handle = grpc_server_register_method(l->server, method->path, NULL,
                                               GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    if (slot->handle == NULL) {
        eied_log(EIED_LOG_ERROR, "cannot register method", "method", method->path, NULL);
        return false;
    }
    l->n_methods++;
    return true;
}

bool eied_server_add_method(eied_server_t *srv, const eied_method_t *method)
{
    return add_method(&srv->listeners[EIED_LISTENER_MAIN], method);
}

bool eied_server_add_health_method(eied_server_t *srv, const eied_method_t *method)
{
    return add_method(&srv->listeners[EIED_LISTENER_MAIN], method) &&
           add_method(&srv->listeners[EIED_LISTENER_HEALTH], method);
}

/* "host:0" + the bound port = the address clients use. */
static void bound_address(const char *listen, int port, char *out, size_t len)
{
    snprintf(out, len, "%s", listen);
    char *colon = strrchr(out, ':');
    if (colon != NULL)
        snprintf(colon + 1, len - (size_t)(colon + 1 - out), "%d", port);
}

static bool bind_listener(eied_listener_t *l, const char *addr, grpc_server_credentials *creds)
{
    l->bound_port = grpc_server_add_http2_port(l->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (l->bound_port == 0) {
        eied_log(EIED_LOG_ERROR, "cannot listen", "port", l->what, "addr", addr, NULL);
        return false;
    }
    return true;
}

bool eied_server_start(eied_server_t *srv)
{
    const eied_config_t *cfg = srv->cfg;
    eied_listener_t *main_l = &srv->listeners[EIED_LISTENER_MAIN];
    eied_listener_t *health_l = &srv->listeners[EIED_LISTENER_HEALTH];
    grpc_server_credentials *creds = srv->tls != NULL ? eied_tls_credentials(srv->tls)
                                                      : grpc_insecure_server_credentials_create();
    if (!bind_listener(main_l, cfg->listen, creds))
        return false;
    /* Kubernetes gRPC probes dial plaintext: the health port never speaks TLS. */
    if (health_l->server != NULL &&
        !bind_listener(health_l, cfg->health_listen, grpc_insecure_server_credentials_create()))
        return false;

    uv_async_init(srv->loop, &srv->wake, on_wake);
    srv->wake.data = srv;
    uv_signal_init(srv->loop, &srv->sigterm);
    uv_signal_init(srv->loop, &srv->sigint);
    uv_signal_init(srv->loop, &srv->sighup);
    srv->sigterm.data = srv->sigint.data = srv->sighup.data = srv;
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_signal_start(&srv->sighup, on_sighup, SIGHUP);
    uv_timer_init(srv->loop, &srv->drain_timer);
    uv_timer_init(srv->loop, &srv->exit_timer);
    srv->drain_timer.data = srv->exit_timer.data = srv;

    for (int i = 0; i < EIED_N_LISTENERS; i++) {
        eied_listener_t *l = &srv->listeners[i];
        if (l->server == NULL)
            continue;
        grpc_server_start(l->server);
        for (size_t m = 0; m < l->n_methods; m++) {
            unsigned n = l->methods[m].method.prealloc ? l->methods[m].method.prealloc
                                                       : DEFAULT_PREALLOC;
            for (unsigned k = 0; k < n; k++)
                request_call(l, &l->methods[m]);
        }
        /* Plain requests too, or unknown methods would queue instead of getting UNIMPLEMENTED. */
        for (unsigned k = 0; k < UNKNOWN_METHOD_PREALLOC; k++)
            request_call(l, NULL);
    }

    if (pthread_create(&srv->cq_thread, NULL, cq_thread_main, srv) != 0) {
        eied_log(EIED_LOG_ERROR, "cannot start the completion-queue thread", NULL);
        return false;
    }
    srv->cq_thread_started = true;

    /* Print the bound addresses so scripts and tests can find ports picked by ":0". */
    char addr[EIED_CONFIG_STR_MAX + 16];
    if (health_l->server != NULL) {
        bound_address(cfg->health_listen, health_l->bound_port, addr, sizeof addr);
        printf("health on %s\n", addr);
        eied_log(EIED_LOG_INFO, "health port listening (plaintext, grpc.health.v1 only)", "addr",
                 addr, NULL);
    }
    bound_address(cfg->listen, main_l->bound_port, addr, sizeof addr);
    printf("listening on %s\n", addr);
    fflush(stdout);
    eied_log(EIED_LOG_INFO, "listening", "addr", addr, "tls",
             srv->tls == NULL ? "off" : eied_tls_mutual(srv->tls) ? "mutual" : "on", NULL);
    return true;
}

void eied_server_free(eied_server_t *srv)
{
    if (srv == NULL)
        return;
    bool started = srv->cq_thread_started;
    for (int i = 0; i < EIED_N_LISTENERS; i++) {
        eied_listener_t *l = &srv->listeners[i];
        if (l->server == NULL)
            continue;
        /* start-up failed before serving: nothing is in flight */
        l->shutdown_tag.fn = shutdown_tag_done;
        grpc_server_shutdown_and_notify(l->server, srv->cq, &l->shutdown_tag);
        grpc_server_cancel_all_calls(l->server);
    }
    if (srv->cq != NULL && !started) {
        grpc_completion_queue_shutdown(srv->cq);
        for (;;) {
            grpc_event ev =
                grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type == GRPC_QUEUE_SHUTDOWN)
                break;
            bool is_shutdown_tag = false;
            for (int i = 0; i < EIED_N_LISTENERS; i++)
                is_shutdown_tag |= ev.tag == &srv->listeners[i].shutdown_tag;
            if (ev.type == GRPC_OP_COMPLETE && !is_shutdown_tag) {
                eied_tag_t *tag = ev.tag;
                tag->fn(tag, false);
            }
        }
    }
    for (int i = 0; i < EIED_N_LISTENERS; i++)
        if (srv->listeners[i].server != NULL)
            grpc_server_destroy(srv->listeners[i].server);
    if (srv->cq != NULL) {
        if (started) {
            grpc_completion_queue_shutdown(srv->cq);
            pthread_join(srv->cq_thread, NULL);
        }
        grpc_completion_queue_destroy(srv->cq);
    }
    eied_health_free(srv->health);
    eied_tls_free(srv->tls);
    eied_admin_free(srv->admin);
    free(srv->metrics);
    pthread_mutex_destroy(&srv->inbox_lock);
    free(srv);
}
