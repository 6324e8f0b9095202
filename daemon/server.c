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
#include <limits.h>
#include <malloc.h>
#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_posix.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "clock.h"
#include "log.h"

typedef struct eied_task {
    eied_task_fn fn;
    void *arg;
    struct eied_task *next;
} eied_task_t;

enum { DEFAULT_PREALLOC = 4, UNKNOWN_METHOD_PREALLOC = 2 };

/* ---- completion-queue thread ------------------------------------------ */

static void request_call(eied_listener_t *l, const struct method_slot *slot);
static void call_freed(eied_call_t *call);

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
    long live = atomic_fetch_add(&srv->live_calls, 1) + 1;
    call->arrived_ns = eied_now_ns();
    pthread_mutex_lock(&srv->live_lock);
    call->live_prev = NULL;
    call->live_next = srv->live_head;
    if (srv->live_head != NULL)
        srv->live_head->live_prev = call;
    srv->live_head = call;
    call->in_live_list = true;
    pthread_mutex_unlock(&srv->live_lock);
    if (atomic_load(&srv->state) < EIED_SERVER_STOPPING)
        request_call(call->listener, call->slot); /* keep as many requests outstanding */
    start_close_watch(call);
    if ((uint64_t)live > srv->cfg->max_streams) {
        /* Each call in flight holds memory in gRPC and here: the server has a ceiling. */
        atomic_fetch_add(&srv->refused_streams, 1);
        eied_call_fail(call, EIE_STATUS_RESOURCE_EXHAUSTED,
                       "too many calls in flight (server.max_streams = %llu); retry later",
                       (unsigned long long)srv->cfg->max_streams);
        return;
    }
    if (call->slot == NULL) {
        /* Unknown method (or, on the health port, anything but health): answered here. */
        char path[256];
        size_t n = GRPC_SLICE_LENGTH(call->details.method);
        if (n >= sizeof path)
            n = sizeof path - 1;
        memcpy(path, GRPC_SLICE_START_PTR(call->details.method), n);
        path[n] = '\0';
        if (call->listener == &srv->listeners[EIED_LISTENER_HEALTH])
            eied_call_fail(call, EIE_STATUS_UNIMPLEMENTED,
                           "%s: this port serves grpc.health.v1 only", path);
        else
            eied_call_fail(call, EIE_STATUS_UNIMPLEMENTED, "unknown method %s", path);
        return;
    }
    inbox_push(srv, call);
}

static void request_call(eied_listener_t *l, const struct method_slot *slot)
{
    eied_call_t *call = eied_call_new(l->srv, l, slot, call_freed);
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

/* A call object is going (call.c, any thread): off the live list, and the last one lets
   a stopping server finish. */
static void call_freed(eied_call_t *call)
{
    eied_server_t *srv = call->srv;
    bool live = call->call != NULL;
    pthread_mutex_lock(&srv->live_lock);
    if (call->in_live_list) {
        if (call->live_prev != NULL)
            call->live_prev->live_next = call->live_next;
        else
            srv->live_head = call->live_next;
        if (call->live_next != NULL)
            call->live_next->live_prev = call->live_prev;
        call->in_live_list = false;
    }
    pthread_mutex_unlock(&srv->live_lock);
    if (live && atomic_fetch_sub(&srv->live_calls, 1) == 1 &&
        atomic_load(&srv->state) >= EIED_SERVER_STOPPING)
        uv_async_send(&srv->wake); /* the loop checks whether shutdown can complete */
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
        tasks->fn(tasks->arg);
        free(tasks);
        tasks = next;
    }
    while (calls != NULL) {
        eied_call_t *next = calls->next;
        calls->next = NULL;
        calls->slot->method.handler(srv->app, calls);
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

/* ---- housekeeping: send timeouts, memory trim, main-port probe ------------ */

/*
 * A reply the client does not take (a zero receive window, a stalled
 * reader) would hold its call, its buffers and a stream slot for ever: the
 * call is cancelled once a send has been pending for server.send_timeout.
 */
static void cancel_stalled_sends(eied_server_t *srv, uint64_t now)
{
    uint64_t limit = srv->cfg->send_timeout_ms * 1000000ull;
    unsigned cancelled = 0;
    pthread_mutex_lock(&srv->live_lock);
    for (eied_call_t *c = srv->live_head; c != NULL; c = c->live_next) {
        uint64_t started = atomic_load(&c->send_started_ns);
        if (started == 0 || c->send_cancelled || now - started < limit || c->call == NULL)
            continue;
        c->send_cancelled = true;
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                     "the client did not take the reply within "
                                     "server.send_timeout",
                                     NULL);
        cancelled++;
    }
    pthread_mutex_unlock(&srv->live_lock);
    if (cancelled > 0) {
        atomic_fetch_add(&srv->send_timeouts, cancelled);
        char n[32];
        snprintf(n, sizeof n, "%u", cancelled);
        eied_log(EIED_LOG_WARN, "calls cancelled: reply not taken within server.send_timeout",
                 "calls", n, NULL);
    }
}

/* After a burst of calls, give the freed memory back to the system (glibc keeps
   it in its arenas otherwise: RSS would stay at the burst's peak). */
static void trim_after_burst(eied_server_t *srv)
{
    long live = atomic_load(&srv->live_calls);
    if (live > srv->trim_peak)
        srv->trim_peak = live;
    if (srv->trim_peak - live >= 64 && live < srv->trim_peak / 2) {
        malloc_trim(0);
        srv->trim_peak = live;
    }
}

typedef struct eied_probe {
    struct sockaddr_storage addr;
    bool enabled, busy, failing;
    uint64_t started_ns, last_ok_ns, next_ns;
    uv_tcp_t *tcp; /* the attempt in flight, freed in its close callback */
    uv_connect_t connect;
    uv_write_t write;
    char reply[64];
} eied_probe_t;

/* HTTP/2 client preface and an empty SETTINGS frame: a gRPC server answers with its
   SETTINGS; a TLS one with an alert or a close. Either way someone accepted. */
static const char probe_hello[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";

static void probe_closed(uv_handle_t *h)
{
    free(h);
}

static void probe_result(eied_server_t *srv, bool ok, const char *why)
{
    eied_probe_t *p = srv->probe;
    uint64_t now = eied_now_ns();
    if (p->tcp != NULL) {
        uv_close((uv_handle_t *)p->tcp, probe_closed);
        p->tcp = NULL;
    }
    p->busy = false;
    p->next_ns = now + srv->cfg->probe_interval_ms * 1000000ull;
    if (ok) {
        p->last_ok_ns = now;
        if (p->failing) {
            eied_log(EIED_LOG_INFO, "main port accepts connections again", NULL);
            p->failing = false;
            srv->hooks->port_probed(srv->app, true, true);
        }
        return;
    }
    bool live = now - p->last_ok_ns < srv->cfg->liveness_grace_ms * 1000000ull;
    if (!p->failing)
        eied_log(EIED_LOG_ERROR, "main port does not accept connections: readiness NOT_SERVING",
                 "error", why, NULL);
    if (!live)
        eied_log(EIED_LOG_ERROR,
                 "main port has not accepted connections for server.liveness_grace: liveness "
                 "NOT_SERVING",
                 NULL);
    p->failing = true;
    srv->hooks->port_probed(srv->app, false, live);
}

static void probe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    eied_server_t *srv = h->data;
    (void)suggested;
    *buf = uv_buf_init(srv->probe->reply, sizeof srv->probe->reply);
}

static void probe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n != 0) /* bytes or EOF/reset: the listener took the connection */
        probe_result(s->data, true, NULL);
}

static void probe_connected(uv_connect_t *req, int status)
{
    eied_server_t *srv = req->handle->data;
    if (srv->probe->tcp != (uv_tcp_t *)req->handle)
        return; /* an attempt that already timed out */
    if (status != 0) {
        probe_result(srv, false, uv_strerror(status));
        return;
    }
    uv_buf_t buf = uv_buf_init((char *)probe_hello, sizeof probe_hello - 1);
    if (uv_write(&srv->probe->write, req->handle, &buf, 1, NULL) != 0 ||
        uv_read_start(req->handle, probe_alloc, probe_read) != 0)
        probe_result(srv, false, "cannot write");
}

static void probe_start(eied_server_t *srv, uint64_t now)
{
    eied_probe_t *p = srv->probe;
    p->tcp = malloc(sizeof *p->tcp);
    if (p->tcp == NULL)
        return;
    p->busy = true;
    p->started_ns = now;
    uv_tcp_init(srv->loop, p->tcp);
    p->tcp->data = srv;
    int rc = uv_tcp_connect(&p->connect, p->tcp, (const struct sockaddr *)&p->addr,
                            probe_connected);
    if (rc != 0)
        probe_result(srv, false, uv_strerror(rc)); /* EMFILE lands here */
}

static void probe_tick(eied_server_t *srv, uint64_t now)
{
    eied_probe_t *p = srv->probe;
    if (p == NULL || !p->enabled || eied_server_state(srv) != EIED_SERVER_RUNNING)
        return;
    /* a gRPC server answers a probe in well under a second; give it the interval */
    uint64_t timeout = srv->cfg->probe_interval_ms * 1000000ull;
    if (timeout < 1000000000ull)
        timeout = 1000000000ull;
    if (p->busy && now - p->started_ns >= timeout)
        probe_result(srv, false, "no answer (the listener does not accept)");
    else if (!p->busy && now >= p->next_ns)
        probe_start(srv, now);
}

static void conns_sweep(eied_listener_t *l);

static void on_housekeeping(uv_timer_t *t)
{
    eied_server_t *srv = t->data;
    uint64_t now = eied_now_ns();
    cancel_stalled_sends(srv, now);
    trim_after_burst(srv);
    for (int i = 0; i < EIED_N_LISTENERS; i++)
        if (srv->listeners[i].listen_fd >= 0)
            conns_sweep(&srv->listeners[i]);
    probe_tick(srv, now);
}

/* Where the probe connects: the bound port on loopback for a wildcard address. */
static void probe_init(eied_server_t *srv, int port)
{
    eied_probe_t *p = calloc(1, sizeof *p);
    srv->probe = p;
    if (p == NULL || srv->cfg->probe_interval_ms == 0)
        return;
    char host[EIED_CONFIG_STR_MAX];
    snprintf(host, sizeof host, "%s", srv->cfg->listen);
    char *colon = strrchr(host, ':');
    if (colon != NULL)
        *colon = '\0';
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
        snprintf(host, sizeof host, "127.0.0.1");
    else if (strcmp(host, "::") == 0)
        snprintf(host, sizeof host, "::1");
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&p->addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&p->addr) != 0) {
        eied_log(EIED_LOG_WARN, "main-port probe off: listen is not an IP address", "listen",
                 srv->cfg->listen, NULL);
        return;
    }
    p->enabled = true;
    p->last_ok_ns = eied_now_ns();
}

/*
 * File descriptors: every connection costs one, and gRPC's listener stops for
 * good on an accept error such as EMFILE. The soft limit is raised to the
 * hard one, logged, and max_connections kept well under it.
 */
static void check_fd_limit(eied_server_t *srv)
{
    struct rlimit rl;
    uint64_t want = srv->cfg->max_connections;
    srv->max_connections = (unsigned)want;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 1048576)
            raised.rlim_cur = 1048576;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = raised.rlim_cur;
    }
    /* model files, logs and the repository's watches need some; two ports share the rest */
    uint64_t usable = rl.rlim_cur > 128 ? (rl.rlim_cur - 64) / 2 : 32;
    char limit[32], conns[32];
    snprintf(limit, sizeof limit, "%llu", (unsigned long long)rl.rlim_cur);
    if (want > usable) {
        srv->max_connections = (unsigned)usable;
        snprintf(conns, sizeof conns, "%llu", (unsigned long long)usable);
        eied_log(EIED_LOG_WARN, "server.max_connections lowered under the fd limit", "fd_limit",
                 limit, "max_connections", conns, NULL);
    }
    snprintf(conns, sizeof conns, "%u", srv->max_connections);
    eied_log(EIED_LOG_INFO, "file descriptors", "fd_limit", limit, "max_connections", conns,
             NULL);
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
    close_handle((uv_handle_t *)&srv->housekeeping);
    if (srv->probe != NULL && srv->probe->tcp != NULL) {
        uv_close((uv_handle_t *)srv->probe->tcp, probe_closed);
        srv->probe->tcp = NULL;
    }
    close_handle((uv_handle_t *)&srv->wake);
    close_handle((uv_handle_t *)&srv->sigterm);
    close_handle((uv_handle_t *)&srv->sigint);
    close_handle((uv_handle_t *)&srv->sighup);
    close_handle((uv_handle_t *)&srv->drain_timer);
    close_handle((uv_handle_t *)&srv->exit_timer);
    srv->hooks->stopped(srv->app);
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

static void stop_accepting(eied_server_t *srv);

static void stop_listening(eied_server_t *srv)
{
    atomic_store(&srv->state, EIED_SERVER_STOPPING);
    stop_accepting(srv);
    eied_log(EIED_LOG_INFO, "listener closed, finishing in-flight calls", NULL);
    srv->hooks->stopping(srv->app);
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
        srv->hooks->draining(srv->app);
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

/* SIGHUP: the application reloads what it reads from files. */
static void on_sighup(uv_signal_t *h, int signum)
{
    eied_server_t *srv = h->data;
    (void)signum;
    srv->hooks->reload(srv->app);
}

eied_server_state_t eied_server_state(const eied_server_t *srv)
{
    return (eied_server_state_t)atomic_load(&srv->state);
}

/* A duration for a gRPC channel argument: 0 (off) is INT_MAX there. */
static int ms_arg(uint64_t ms)
{
    return ms == 0 || ms > INT_MAX ? INT_MAX : (int)ms;
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
        /* idle connections go, so they cannot pile up to the fd limit */
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_CONNECTION_IDLE_MS,
         .value.integer = ms_arg(srv->cfg->idle_timeout_ms)},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_CONNECTION_AGE_MS,
         .value.integer = ms_arg(srv->cfg->max_connection_age_ms)},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
         .value.integer = ms_arg(srv->cfg->max_connection_age_grace_ms)},
    };
    grpc_channel_args chan_args = {.num_args = sizeof args / sizeof args[0], .args = args};
    grpc_server *server = grpc_server_create(&chan_args, NULL);
    if (server != NULL)
        grpc_server_register_completion_queue(server, srv->cq, NULL);
    return server;
}

eied_server_t *eied_server_create(uv_loop_t *loop, const eied_config_t *cfg, eied_app_t *app,
                                  const eied_server_hooks_t *hooks)
{
    eied_server_t *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    srv->loop = loop;
    srv->cfg = cfg;
    srv->app = app;
    srv->hooks = hooks;
    pthread_mutex_init(&srv->inbox_lock, NULL);
    pthread_mutex_init(&srv->live_lock, NULL);
    atomic_init(&srv->state, EIED_SERVER_RUNNING);
    atomic_init(&srv->live_calls, 0);
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    for (int i = 0; i < EIED_N_LISTENERS; i++) {
        srv->listeners[i].srv = srv;
        srv->listeners[i].what = i == EIED_LISTENER_MAIN ? "grpc" : "health";
        srv->listeners[i].listen_fd = -1;
        atomic_init(&srv->listeners[i].shutdown_done, false);
    }
    srv->listeners[EIED_LISTENER_MAIN].server = create_grpc_server(srv);
    if (cfg->health_listen[0] != '\0')
        srv->listeners[EIED_LISTENER_HEALTH].server = create_grpc_server(srv);
    if (srv->cq == NULL || srv->listeners[EIED_LISTENER_MAIN].server == NULL ||
        (cfg->health_listen[0] != '\0' && srv->listeners[EIED_LISTENER_HEALTH].server == NULL)) {
        eied_log(EIED_LOG_ERROR, "cannot create the gRPC server", NULL);
        goto error;
    }
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

eied_handler_fn eied_server_method_handler(const eied_server_t *srv, const char *path)
{
    const eied_listener_t *l = &srv->listeners[EIED_LISTENER_MAIN];
    for (size_t i = 0; i < l->n_methods; i++)
        if (strcmp(l->methods[i].method.path, path) == 0)
            return l->methods[i].method.handler;
    return NULL;
}

bool eied_server_add_health_method(eied_server_t *srv, const eied_method_t *method)
{
    return add_method(&srv->listeners[EIED_LISTENER_MAIN], method) &&
           add_method(&srv->listeners[EIED_LISTENER_HEALTH], method);
}

/* ---- Accepting ------------------------------------------------------------------
 *
 * gRPC core (1.51) stops accepting on a port for good after one accept error
 * such as EMFILE, and has no connection limit. Plaintext ports therefore
 * accept here, on the loop, and hand each connection to gRPC: over
 * server.max_connections a connection is accepted and closed at once, and
 * when the process is out of descriptors a reserved one is released to take
 * the pending connection off the queue and close it, so the port lives on.
 * A TLS port cannot be handed over this way (grpc_server_add_channel_from_fd
 * takes insecure credentials only); its listener is watched by the probe.
 */
static int reserve_fd = -1;

/* Connections gRPC has closed: their fd is gone or now names another file. */
static void conns_sweep(eied_listener_t *l)
{
    unsigned k = 0;
    for (unsigned i = 0; i < l->n_conns; i++) {
        struct stat sb;
        if (fstat(l->conns[i].fd, &sb) == 0 && (uint64_t)sb.st_ino == l->conns[i].ino)
            l->conns[k++] = l->conns[i];
    }
    l->n_conns = k;
}

static void refuse_connection(eied_listener_t *l, int fd)
{
    l->refused_conns++;
    close(fd);
    char limit[32];
    snprintf(limit, sizeof limit, "%u", l->srv->max_connections);
    eied_log(EIED_LOG_WARN, "connection refused: server.max_connections reached", "port", l->what,
             "max_connections", limit, NULL);
}

static void on_acceptable(uv_poll_t *poll, int status, int events)
{
    eied_listener_t *l = poll->data;
    (void)events;
    if (status < 0)
        return;
    for (int burst = 0; burst < 64; burst++) {
        int fd = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && reserve_fd >= 0) {
                close(reserve_fd);
                fd = accept(l->listen_fd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                eied_log(EIED_LOG_ERROR, "out of file descriptors: connection closed",
                         "port", l->what, NULL);
                continue;
            }
            return; /* EAGAIN, or an error the next readiness retries */
        }
        if (l->n_conns >= l->srv->max_connections)
            conns_sweep(l);
        if (l->n_conns >= l->srv->max_connections ||
            atomic_load(&l->srv->state) >= EIED_SERVER_STOPPING) {
            refuse_connection(l, fd);
            continue;
        }
        struct stat sb;
        if (fstat(fd, &sb) != 0) {
            close(fd);
            continue;
        }
        l->conns[l->n_conns].fd = fd;
        l->conns[l->n_conns].ino = (uint64_t)sb.st_ino;
        l->n_conns++;
        grpc_server_add_channel_from_fd(l->server, fd, l->srv->fd_creds); /* does not take it */
    }
}

/* Binds addr (host:port, IPv4 or [IPv6]) ourselves; returns false if it cannot. */
static bool own_listen(eied_server_t *srv, eied_listener_t *l, const char *addr)
{
    char host[EIED_CONFIG_STR_MAX];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        return false;
    *colon = '\0';
    int port = atoi(colon + 1);
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    struct sockaddr_storage sa;
    socklen_t sa_len;
    if (uv_ip4_addr(host[0] ? host : "0.0.0.0", port, (struct sockaddr_in *)&sa) == 0)
        sa_len = sizeof(struct sockaddr_in);
    else if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) == 0)
        sa_len = sizeof(struct sockaddr_in6);
    else
        return false; /* a host name: gRPC resolves and listens */
    l->conns = calloc(srv->max_connections, sizeof *l->conns);
    if (srv->fd_creds == NULL)
        srv->fd_creds = grpc_insecure_server_credentials_create();
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (l->conns == NULL || fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sa_len) != 0 || listen(fd, 1024) != 0) {
        eied_log(EIED_LOG_ERROR, "cannot listen", "port", l->what, "addr", addr, "error",
                 strerror(errno), NULL);
        if (fd >= 0)
            close(fd);
        l->bound_port = -1;
        return true; /* handled: failed */
    }
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    l->bound_port = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *)&sa)->sin_port
                                                  : ((struct sockaddr_in6 *)&sa)->sin6_port);
    l->listen_fd = fd;
    if (reserve_fd < 0)
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return true;
}

static void start_accepting(eied_server_t *srv)
{
    for (int i = 0; i < EIED_N_LISTENERS; i++) {
        eied_listener_t *l = &srv->listeners[i];
        if (l->listen_fd < 0)
            continue;
        uv_poll_init(srv->loop, &l->accept_poll, l->listen_fd);
        l->accept_poll.data = l;
        uv_poll_start(&l->accept_poll, UV_READABLE, on_acceptable);
    }
}

static void stop_accepting(eied_server_t *srv)
{
    for (int i = 0; i < EIED_N_LISTENERS; i++) {
        eied_listener_t *l = &srv->listeners[i];
        if (l->listen_fd < 0)
            continue;
        close_handle((uv_handle_t *)&l->accept_poll); /* stops polling at once */
        close(l->listen_fd);                          /* new connections are refused */
        l->listen_fd = -1;
    }
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
    if (creds == NULL && own_listen(l->srv, l, addr)) {
        if (l->bound_port < 0)
            return false;
        return true;
    }
    if (creds == NULL)
        creds = grpc_insecure_server_credentials_create();
    l->bound_port = grpc_server_add_http2_port(l->server, addr, creds);
    grpc_server_credentials_release(creds);
    if (l->bound_port == 0) {
        eied_log(EIED_LOG_ERROR, "cannot listen", "port", l->what, "addr", addr, NULL);
        return false;
    }
    return true;
}

bool eied_server_start(eied_server_t *srv, grpc_server_credentials *creds, const char *tls)
{
    const eied_config_t *cfg = srv->cfg;
    eied_listener_t *main_l = &srv->listeners[EIED_LISTENER_MAIN];
    eied_listener_t *health_l = &srv->listeners[EIED_LISTENER_HEALTH];
    check_fd_limit(srv);
    /* NULL credentials: plaintext, accepted by the daemon itself (see "Accepting") */
    if (!bind_listener(main_l, cfg->listen, creds))
        return false;
    /* Kubernetes gRPC probes dial plaintext: the health port never speaks TLS. */
    if (health_l->server != NULL && !bind_listener(health_l, cfg->health_listen, NULL))
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
    probe_init(srv, main_l->bound_port);
    uv_timer_init(srv->loop, &srv->housekeeping);
    srv->housekeeping.data = srv;
    uint64_t tick = cfg->send_timeout_ms / 4;
    if (cfg->probe_interval_ms > 0 && cfg->probe_interval_ms / 2 < tick)
        tick = cfg->probe_interval_ms / 2;
    tick = tick < 50 ? 50 : tick > 1000 ? 1000 : tick;
    uv_timer_start(&srv->housekeeping, on_housekeeping, tick, tick);

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
    start_accepting(srv);

    /* Print the bound addresses so scripts and tests can find ports picked by ":0". */
    char addr[EIED_CONFIG_STR_MAX + 16];
    if (health_l->server != NULL) {
        bound_address(cfg->health_listen, health_l->bound_port, addr, sizeof addr);
        eied_log_announce("health", addr);
        eied_log(EIED_LOG_INFO, "health port listening (plaintext, grpc.health.v1 only)", "addr",
                 addr, NULL);
    }
    bound_address(cfg->listen, main_l->bound_port, addr, sizeof addr);
    eied_log_announce("listening", addr);
    eied_log(EIED_LOG_INFO, "listening", "addr", addr, "tls", tls, NULL);
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
    pthread_mutex_destroy(&srv->inbox_lock);
    pthread_mutex_destroy(&srv->live_lock);
    for (int i = 0; i < EIED_N_LISTENERS; i++) {
        if (srv->listeners[i].listen_fd >= 0)
            close(srv->listeners[i].listen_fd);
        free(srv->listeners[i].conns);
    }
    if (srv->fd_creds != NULL)
        grpc_server_credentials_release(srv->fd_creds);
    /* A PE thread posts a batch's completion after its replies went out, so the
       last reply can let the loop stop before that post lands. The engines (and
       their threads) are gone by now (eied_app_free), so nothing posts any more;
       the tasks' work is moot once stopped, only their memory is left. */
    for (eied_task_t *t = srv->tasks_head, *next; t != NULL; t = next) {
        next = t->next;
        free(t);
    }
    free(srv->probe);
    free(srv);
}
