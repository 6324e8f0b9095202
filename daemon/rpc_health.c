/*
 * grpc.health.v1.Health: Check and Watch for "", "liveness" and "readiness",
 * on the main port and the plaintext health port. The state they read is
 * health.c's.
 */
#include "app.h"
#include "call.h"
#include "health.h"
#include "log.h"
#include "rpc.h"

static void on_check(eied_app_t *app, eied_call_t *call)
{
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)
        eied_call_read(call, &grpc__health__v1__health_check_request__descriptor);
    if (req == NULL)
        return;
    serving_t status;
    if (!eied_health_status(app->health, req->service, &status)) {
        eied_call_fail(call, EIE_STATUS_NOT_FOUND,
                       "unknown health service '%s' (known: \"\", liveness, readiness)",
                       req->service);
    } else {
        Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
        resp.status = status;
        eied_call_reply(call, &resp.base);
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

static void on_watch(eied_app_t *app, eied_call_t *call)
{
    Grpc__Health__V1__HealthCheckRequest *req = (Grpc__Health__V1__HealthCheckRequest *)
        eied_call_read(call, &grpc__health__v1__health_check_request__descriptor);
    if (req == NULL)
        return;
    eie_error_t err;
    if (eied_server_state(app->server) >= EIED_SERVER_STOPPING) {
        eied_call_fail(call, EIE_STATUS_UNAVAILABLE, "server is shutting down");
    } else if (eied_health_watch(app->health, call, req->service,
                                 (unsigned)app->cfg->max_watch_streams, &err) != EIE_STATUS_OK) {
        if (err.status == EIE_STATUS_RESOURCE_EXHAUSTED) {
            atomic_fetch_add(&app->server->refused_streams, 1);
            eied_log(EIED_LOG_WARN, "health: Watch refused, too many open", NULL);
        }
        eied_call_fail_error(call, &err);
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

void eied_rpc_health_register(eied_app_t *app)
{
    static const eied_method_t check = {.path = "/grpc.health.v1.Health/Check",
                                        .handler = on_check, .prealloc = 8};
    static const eied_method_t watch = {.path = "/grpc.health.v1.Health/Watch",
                                        .handler = on_watch, .prealloc = 2};
    eied_server_add_health_method(app->server, &check);
    eied_server_add_health_method(app->server, &watch);
}
