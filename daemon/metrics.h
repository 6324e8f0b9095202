/*
 * metrics.h - Prometheus text format over HTTP (GET /metrics), served from
 * the libuv loop by the daemon's HTTP layer (http.c). Names follow Triton's (eie_ instead of nv_), with model
 * and version labels.
 */
#ifndef EIED_METRICS_H
#define EIED_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "models.h"
#include "repository.h"
#include "server.h"
#include "tls.h"

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

typedef struct eied_metrics {
    /* What the exposition reads; the owner fills these before eied_metrics_start. */
    uv_loop_t *loop;
    const eied_config_t *cfg;
    const eied_server_t *server;
    eied_models_t *models;
    const eied_repository_t *repository;
    const eied_tls_t *tls; /* NULL: plaintext */
    uint64_t started_ns;

    struct eied_http *http; /* http.c; NULL when not listening */
    int port;
    atomic_uint_fast64_t infer_failures[EIED_FAIL_COUNT_];
    atomic_uint_fast64_t model_load_failures;
} eied_metrics_t;

/* Starts the HTTP listener on cfg->metrics_listen (no-op if empty). */
bool eied_metrics_start(eied_metrics_t *mt);
/* Closes the listener and its connections (loop thread). NULL is fine. */
void eied_metrics_close(eied_metrics_t *mt);
/* Counts a failed inference by the gRPC code its status answers with; any thread. */
void eied_metrics_count_failure(eied_metrics_t *mt, eie_status_t status);
/* Writes the whole exposition (used by the HTTP handler and tests). */
void eied_metrics_render(const eied_metrics_t *mt, FILE *out);

#endif
