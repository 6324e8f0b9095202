/*
 * The application core; see app.h. It owns every part of the daemon above
 * the transport and is the only file that ties them together: readiness
 * (models and repository), the drain steps (health, repository, metrics),
 * SIGHUP (TLS, admin token, repository).
 */
#include "app.h"

#include <stdlib.h>

#include "clock.h"
#include "eie/eie.h"
#include "log.h"
#include "rest.h"

/* Readiness turns SERVING once every configured model has loaded. */
static void update_readiness(void *ctx)
{
    eied_app_t *app = ctx;
    if (eied_server_state(app->server) == EIED_SERVER_RUNNING &&
        eied_repository_ready(app->repository) && eied_models_all_ready(app->models))
        eied_health_set_ready(app->health, true);
}

/* A repository version failed to load: the version policy looks again, an older one may
   serve instead. */
static void rescan_repository(void *ctx)
{
    eied_app_t *app = ctx;
    eied_repository_rescan(app->repository);
}

static void on_port_probed(eied_app_t *app, bool ok, bool liveness_ok)
{
    eied_health_set_port(app->health, ok, liveness_ok);
}

static void on_draining(eied_app_t *app)
{
    eied_health_set_ready(app->health, false);
}

static void on_stopping(eied_app_t *app)
{
    eied_rest_stop(app->rest);
    eied_health_close_watches(app->health);
    eied_repository_close(app->repository);
}

static void on_stopped(eied_app_t *app)
{
    eied_batcher_close(app->batcher);
    eied_metrics_close(app->metrics);
    eied_repository_close(app->repository);
}

/* SIGHUP: re-read certificates and the admin token, rescan the repository. */
static void on_reload(eied_app_t *app)
{
    eie_error_t err;
    eied_log(EIED_LOG_INFO, "SIGHUP: reloading certificates, admin token, repository", NULL);
    if (app->tls != NULL && !eied_tls_reload(app->tls, &err))
        eied_log(EIED_LOG_ERROR, "TLS reload failed; the old certificates stay", "error", err.msg,
                 NULL);
    if (!eied_admin_reload(app->admin, &err))
        eied_log(EIED_LOG_ERROR, "admin token reload failed; the old token stays", "error", err.msg,
                 NULL);
    eied_models_forget_failures(app->models); /* every failed file gets another try */
    eied_repository_rescan(app->repository);
}

static const eied_server_hooks_t server_hooks = {
    .port_probed = on_port_probed,
    .draining = on_draining,
    .stopping = on_stopping,
    .stopped = on_stopped,
    .reload = on_reload,
};

eied_app_t *eied_app_create(uv_loop_t *loop, const eied_config_t *cfg)
{
    eie_error_t err;
    eied_app_t *app = calloc(1, sizeof *app);
    if (app == NULL)
        return NULL;
    app->loop = loop;
    app->cfg = cfg;
    app->started_ns = eied_now_ns();
    app->server = eied_server_create(loop, cfg, app, &server_hooks);
    if (app->server == NULL)
        goto error;
    app->health = eied_health_create();
    app->metrics = calloc(1, sizeof *app->metrics);
    if (app->health == NULL || app->metrics == NULL) {
        eied_log(EIED_LOG_ERROR, "out of memory", NULL);
        goto error;
    }
    app->tls = eied_tls_create(cfg, &err);
    if (app->tls == NULL && err.status != EIE_STATUS_OK) {
        eied_log(EIED_LOG_ERROR, "TLS configuration", "error", err.msg, NULL);
        goto error;
    }
    app->admin = eied_admin_create(cfg, &err);
    if (app->admin == NULL) {
        eied_log(EIED_LOG_ERROR, "admin configuration", "error", err.msg, NULL);
        goto error;
    }
    app->models = eied_models_create(cfg);
    if (app->models == NULL) {
        eied_log(EIED_LOG_ERROR, "out of memory", NULL);
        goto error;
    }
    app->loader = eied_loader_create(loop, cfg, app->models);
    if (app->loader == NULL)
        goto error;
    app->loader->on_load_done = update_readiness;
    app->loader->on_repo_load_failed = rescan_repository;
    app->loader->hooks_ctx = app;
    app->repository =
        eied_repository_create(loop, cfg, app->models, app->loader, update_readiness, app);
    if (app->repository == NULL) {
        eied_log(EIED_LOG_ERROR, "repository: out of memory", NULL);
        goto error;
    }
    *app->metrics = (eied_metrics_t){
        .loop = loop,
        .cfg = cfg,
        .server = app->server,
        .models = app->models,
        .repository = app->repository,
        .tls = app->tls,
        .started_ns = app->started_ns,
    };
    return app;
error:
    eied_app_free(app);
    return NULL;
}

int eied_app_run(eied_app_t *app)
{
    grpc_server_credentials *creds = app->tls != NULL ? eied_tls_credentials(app->tls) : NULL;
    const char *tls = app->tls == NULL ? "off" : eied_tls_mutual(app->tls) ? "mutual" : "on";
    eie_error_t err;
    /* REST first: the harness and operators read "listening on" (gRPC) as the last port */
    if (eied_rest_start(app, &app->rest, &err) != EIE_STATUS_OK) {
        eied_log(EIED_LOG_ERROR, "cannot serve REST", "addr", app->cfg->http_listen, "error",
                 err.msg, NULL);
        eied_batcher_close(app->batcher);
        uv_run(app->loop, UV_RUN_NOWAIT);
        return 1;
    }
    if (!eied_metrics_start(app->metrics) || !eied_server_start(app->server, creds, tls)) {
        eied_rest_stop(app->rest);
        /* start-up failed: close what the loop holds so the loop can be closed */
        eied_metrics_close(app->metrics);
        eied_batcher_close(app->batcher);
        uv_run(app->loop, UV_RUN_NOWAIT);
        return 1;
    }
    eied_log(EIED_LOG_INFO, "started", "version", EIE_VERSION_STRING, NULL);
    eied_loader_load_configured(app->loader);
    if (eied_repository_start(app->repository, &err) != EIE_STATUS_OK) {
        eied_log(EIED_LOG_ERROR, "cannot start the repository", "error", err.msg, NULL);
        /* a start-up error after the server started: stop it the normal way, at once */
        eied_server_shutdown(app->server);
        eied_server_shutdown(app->server);
        uv_run(app->loop, UV_RUN_DEFAULT);
        return 1;
    }
    update_readiness(app); /* no models configured: ready at once */
    uv_run(app->loop, UV_RUN_DEFAULT);
    return eied_server_state(app->server) == EIED_SERVER_STOPPED ? 0 : 1;
}

void eied_app_free(eied_app_t *app)
{
    if (app == NULL)
        return;
    eied_batcher_free(app->batcher); /* before the models its queues point at */
    eied_repository_free(app->repository);
    eied_models_free(app->models);
    eied_loader_free(app->loader); /* the engines, once no version uses them */
    eied_server_free(app->server);
    eied_health_free(app->health);
    eied_tls_free(app->tls);
    eied_admin_free(app->admin);
    eied_rest_free(app->rest);
    free(app->metrics);
    free(app);
}
