/*
 * app.h - the application core of eied: one object that owns what the
 * daemon serves and decides, above the transport.
 *
 *   main.c        parses the configuration, registers the services, runs
 *   rpc_*.c       one file per service; handlers get the app
 *   app.c         owns configuration, models, repository, health, metrics,
 *                 TLS and admin; answers the transport's hooks
 *   server.c      transport: listeners, completion-queue thread, inbox,
 *                 drain steps; knows the app only as an opaque pointer
 *
 * A new front end (REST beside gRPC) is a transport that calls the same
 * services' logic with the same app; a new RPC is an rpc_*.c file.
 */
#ifndef EIED_APP_H
#define EIED_APP_H

#include <stdint.h>
#include <uv.h>

#include "admin.h"
#include "batcher.h"
#include "config.h"
#include "health.h"
#include "loader.h"
#include "metrics.h"
#include "models.h"
#include "repository.h"
#include "server.h"
#include "tls.h"

struct eied_app {
    uv_loop_t *loop;
    const eied_config_t *cfg;
    eied_server_t *server;         /* the gRPC transport (server.c) */
    eied_health_t *health;         /* health.c */
    eied_models_t *models;         /* models.c: the registry */
    eied_loader_t *loader;         /* loader.c: engines, loading, publication */
    eied_repository_t *repository; /* repository.c; inactive without repository.path */
    eied_batcher_t *batcher;       /* batcher.c; created by the ModelInfer service */
    eied_metrics_t *metrics;       /* metrics.c */
    eied_tls_t *tls;               /* tls.c; NULL for plaintext */
    eied_admin_t *admin;           /* admin.c */
    struct eied_rest *rest;        /* rest.c: the REST front end; NULL without http_listen */
    uint64_t started_ns;
};

/* Creates everything cfg describes (kept by reference) on loop; engines start, nothing
   listens yet. Logs and returns NULL on failure. */
eied_app_t *eied_app_create(uv_loop_t *loop, const eied_config_t *cfg);

/* Listens, loads the models and runs the loop until the server has stopped. Returns the
   process exit status: 0 after a graceful stop, 1 when start-up failed. */
int eied_app_run(eied_app_t *app);

/* Frees what is left after eied_app_run. NULL is fine. */
void eied_app_free(eied_app_t *app);

#endif
