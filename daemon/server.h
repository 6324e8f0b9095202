/*
 * server.h - the transport: the gRPC servers inside a libuv loop.
 *
 * The server owns listeners, the completion-queue thread, the loop's inbox
 * of new calls and posted tasks, signals and the drain steps. It knows
 * nothing of models or health: it hands each call to its method's handler
 * with the application (an opaque eied_app_t, app.c), and tells the
 * application what happens to it through eied_server_hooks_t.
 *
 * Threads (GRPC_NOTES.md, DESIGN.md "Data flow of one request"):
 *   - gRPC core's own I/O threads;
 *   - one completion-queue thread: gRPC bookkeeping only; a new call is put
 *     on the loop's inbox and the loop is woken with uv_async_send;
 *   - the libuv loop thread: parses, validates, routes and dispatches; owns
 *     signals, timers and every uv handle; never computes;
 *   - engine PE threads: compute, then send the reply themselves.
 */
#ifndef EIED_SERVER_H
#define EIED_SERVER_H

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "call.h"
#include "config.h"

typedef struct eied_app eied_app_t;

/* Runs on the loop thread with a new call whose request payload has arrived. */
typedef void (*eied_handler_fn)(eied_app_t *app, eied_call_t *call);

/* A unary or server-streaming RPC served through a registered method. */
typedef struct eied_method {
    const char *path;        /* "/grpc.health.v1.Health/Check" */
    eied_handler_fn handler; /* loop thread */
    unsigned prealloc;       /* calls kept requested; 0 = a small default */
} eied_method_t;

/* A task run on the loop thread (see eied_server_post). */
typedef void (*eied_task_fn)(void *arg);

typedef enum {
    EIED_SERVER_RUNNING = 0,
    EIED_SERVER_DRAINING, /* readiness NOT_SERVING, still serving (drain_delay) */
    EIED_SERVER_STOPPING, /* listener closed, in-flight calls finishing (exit_timeout) */
    EIED_SERVER_STOPPED,
} eied_server_state_t;

#define EIED_MAX_METHODS 32

/*
 * What the transport tells the application; loop thread, every slot set.
 * The drain steps in order: draining (readiness goes NOT_SERVING), stopping
 * (listeners closed: end streams, stop watching files), stopped (close the
 * application's loop handles so the loop can end).
 */
typedef struct eied_server_hooks {
    void (*port_probed)(eied_app_t *app, bool ok, bool liveness_ok); /* the main-port probe */
    void (*draining)(eied_app_t *app);
    void (*stopping)(eied_app_t *app);
    void (*stopped)(eied_app_t *app);
    void (*reload)(eied_app_t *app); /* SIGHUP */
} eied_server_hooks_t;

/* One gRPC server: the main port (every service) or the plaintext health-only port. */
typedef struct eied_listener {
    eied_server_t *srv;
    grpc_server *server;
    const char *what; /* "grpc" or "health" */
    struct method_slot {
        eied_method_t method;
        void *handle; /* from grpc_server_register_method */
        struct eied_listener *listener;
    } methods[EIED_MAX_METHODS];
    size_t n_methods;
    eied_tag_t shutdown_tag;
    atomic_bool shutdown_done; /* grpc_server_shutdown_and_notify's tag fired */
    int bound_port;
    /* Plaintext ports accept here, not in gRPC (server.c "Accepting"): -1 when gRPC does. */
    int listen_fd;
    uv_poll_t accept_poll;
    struct conn_slot {
        int fd;
        uint64_t ino;
    } *conns; /* connections handed to gRPC, max_connections of them */
    unsigned n_conns;
    uint64_t refused_conns;
} eied_listener_t;

enum { EIED_LISTENER_MAIN = 0, EIED_LISTENER_HEALTH = 1, EIED_N_LISTENERS = 2 };

struct eied_server {
    uv_loop_t *loop;
    const eied_config_t *cfg;
    eied_app_t *app;                   /* handed to every handler and hook */
    const eied_server_hooks_t *hooks;
    grpc_completion_queue *cq;
    pthread_t cq_thread;
    bool cq_thread_started;
    eied_listener_t listeners[EIED_N_LISTENERS]; /* [HEALTH].server NULL when disabled */

    /* Cross-thread inbox of new calls and tasks, drained by the loop. */
    pthread_mutex_t inbox_lock;
    eied_call_t *inbox_head, *inbox_tail;
    struct eied_task *tasks_head, *tasks_tail;
    uv_async_t wake;

    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t drain_timer, exit_timer;

    atomic_int state;       /* eied_server_state_t */
    atomic_long live_calls; /* calls that arrived and are not yet freed */
    pthread_mutex_t live_lock;
    eied_call_t *live_head; /* every live call (send timeout) */
    atomic_uint_fast64_t refused_streams, send_timeouts; /* counters for /metrics */
    long trim_peak;         /* live calls at their peak since memory was last trimmed */
    uv_timer_t housekeeping; /* send timeouts, memory trim, main-port probe */
    struct eied_probe *probe; /* server.c */
    unsigned max_connections; /* server.max_connections clamped under the fd limit */
    grpc_server_credentials *fd_creds; /* for connections the daemon accepts (plaintext) */
    bool cancelled_all;
    int signals_seen;
};

/* Creates the server on loop with cfg (kept by reference); handlers and hooks get app.
   Logs and returns NULL on failure. */
eied_server_t *eied_server_create(uv_loop_t *loop, const eied_config_t *cfg, eied_app_t *app,
                                  const eied_server_hooks_t *hooks);

/* Registers a method on the main port; before eied_server_start. */
bool eied_server_add_method(eied_server_t *srv, const eied_method_t *method);
/* The handler registered for path on the main port (for a front end that runs methods as
   local calls), or NULL. */
eied_handler_fn eied_server_method_handler(const eied_server_t *srv, const char *path);
/* Registers a method on the main port and the health-only port. */
bool eied_server_add_health_method(eied_server_t *srv, const eied_method_t *method);

/* Binds cfg->listen with creds (NULL: plaintext, accepted by the daemon; the server takes
   the reference; tls names the mode for the log) and cfg->health_listen, starts the CQ
   thread, installs signal handlers. Returns false on failure. */
bool eied_server_start(eied_server_t *srv, grpc_server_credentials *creds, const char *tls);

/* Starts the graceful drain (what SIGTERM does); a second call cancels at once. */
void eied_server_shutdown(eied_server_t *srv);

/* Frees what is left after the loop has returned. NULL is fine. */
void eied_server_free(eied_server_t *srv);

/* Queues fn(arg) to run on the loop thread; callable from any thread. */
void eied_server_post(eied_server_t *srv, eied_task_fn fn, void *arg);

eied_server_state_t eied_server_state(const eied_server_t *srv);

#endif
