/*
 * metrics.h - Prometheus text format over HTTP (GET /metrics), served from
 * the libuv loop. Names follow Triton's (eie_ instead of nv_), with model
 * and version labels.
 */
#ifndef EIED_METRICS_H
#define EIED_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "server.h"

/* Failure reasons counted per daemon (labels of eie_request_failure). */
#define EIED_FAIL_REASONS(X)                                                                     \
    X(INVALID_ARGUMENT, "invalid_argument")                                                      \
    X(NOT_FOUND, "not_found")                                                                    \
    X(UNAVAILABLE, "unavailable")                                                                \
    X(DEADLINE_EXCEEDED, "deadline_exceeded")                                                    \
    X(RESOURCE_EXHAUSTED, "resource_exhausted")                                                  \
    X(CANCELLED, "cancelled")                                                                    \
    X(OTHER, "other")

typedef enum {
#define EIED_FAIL_ENUM_(name, label) EIED_FAIL_##name,
    EIED_FAIL_REASONS(EIED_FAIL_ENUM_)
#undef EIED_FAIL_ENUM_
        EIED_FAIL_COUNT_
} eied_fail_reason_t;

struct eied_metrics {
    uv_tcp_t listener;
    bool listening;
    int port;
    atomic_uint_fast64_t infer_failures[EIED_FAIL_COUNT_];
    atomic_uint_fast64_t model_load_failures;
};

/* Starts the HTTP listener on cfg->metrics_listen (no-op if empty). */
bool eied_metrics_start(eied_server_t *srv);
/* Closes the listener (loop thread). */
void eied_metrics_close(eied_server_t *srv);
/* Counts a failed inference by its gRPC status code; any thread. */
void eied_metrics_count_failure(eied_server_t *srv, int grpc_code);
/* Writes the whole exposition (used by the HTTP handler and tests). */
void eied_metrics_render(eied_server_t *srv, FILE *out);

#endif
