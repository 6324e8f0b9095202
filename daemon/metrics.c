/*
 * The /metrics endpoint: the Prometheus exposition over the daemon's HTTP
 * layer (http.c, libmicrohttpd in the loop), on its own port.
 *
 * A scraper must never find the port dead: over METRICS_BUSY open
 * connections a request is answered 503 at once (the connection is still
 * accepted and read), a connection quiet for the read timeout is closed, so
 * idle clients cannot hold the slots, and only past METRICS_MAX_CONNECTIONS
 * do new ones wait in the backlog.
 */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "http.h"
#include "log.h"

enum {
    METRICS_BUSY = 64,             /* open connections before 503 */
    METRICS_MAX_CONNECTIONS = 256, /* beyond: the backlog */
    METRICS_READ_TIMEOUT_S = 10,
    METRICS_MAX_HEADER = 8192,
};

static const char *const fail_labels[] = {
#define EIED_FAIL_LABEL_(name, label) label,
    EIED_FAIL_REASONS(EIED_FAIL_LABEL_)
#undef EIED_FAIL_LABEL_
};

void eied_metrics_count_failure(eied_metrics_t *mt, eie_status_t status)
{
    eied_fail_reason_t r;
    switch (eie_status_grpc_code(status)) {
    case 3:
        r = EIED_FAIL_INVALID_ARGUMENT;
        break;
    case 5:
        r = EIED_FAIL_NOT_FOUND;
        break;
    case 14:
        r = EIED_FAIL_UNAVAILABLE;
        break;
    case 4:
        r = EIED_FAIL_DEADLINE_EXCEEDED;
        break;
    case 8:
        r = EIED_FAIL_RESOURCE_EXHAUSTED;
        break;
    case 1:
        r = EIED_FAIL_CANCELLED;
        break;
    default:
        r = EIED_FAIL_OTHER;
        break;
    }
    atomic_fetch_add(&mt->infer_failures[r], 1);
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void eied_metrics_render(const eied_metrics_t *mt, FILE *out)
{
    eied_models_t *models = mt->models;
    const eied_server_t *srv = mt->server;
    struct {
        const char *name, *type, *help;
        size_t offset; /* into eied_stats_t; SIZE_MAX: special */
        double scale;
    } rows[] = {
        {"eie_inference_request_success", "counter", "Successful inference requests",
         offsetof(eied_stats_t, success_count), 1},
        {"eie_inference_request_failure", "counter",
         "Failed inference requests that reached a model", offsetof(eied_stats_t, fail_count), 1},
        {"eie_inference_count", "counter", "Inferences performed (rows of every batch)",
         offsetof(eied_stats_t, inference_count), 1},
        {"eie_inference_exec_count", "counter", "Engine runs (a batch is one run)",
         offsetof(eied_stats_t, execution_count), 1},
        {"eie_inference_request_duration_us", "counter",
         "Cumulative end-to-end duration of successful requests",
         offsetof(eied_stats_t, success_ns), 1e-3},
        {"eie_inference_queue_duration_us", "counter", "Cumulative time requests spent queued",
         offsetof(eied_stats_t, queue_ns), 1e-3},
        {"eie_inference_compute_infer_duration_us", "counter",
         "Cumulative engine compute time of batches", offsetof(eied_stats_t, compute_ns), 1e-3},
        {"eie_sim_cycles", "counter", "Simulated EIE cycles (eie-sim backend)",
         offsetof(eied_stats_t, sim_cycles), 1},
        {"eie_sim_energy_uj", "counter", "Simulated EIE energy in microjoules (eie-sim backend)",
         offsetof(eied_stats_t, sim_energy_pj), 1e-6},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        family(out, rows[r].name, rows[r].type, rows[r].help);
        for (eied_model_t *m = models->head; m != NULL; m = m->next)
            for (size_t i = 0; i < m->n_versions; i++) {
            eied_version_t *v = m->versions[i];
            atomic_uint_fast64_t *c = (atomic_uint_fast64_t *)((char *)&v->stats + rows[r].offset);
            fprintf(out, "%s{model=\"%s\",version=\"%llu\"} ", rows[r].name, m->name,
                    (unsigned long long)v->version);
            if (rows[r].scale == 1)
                fprintf(out, "%llu\n", (unsigned long long)atomic_load(c));
            else
                fprintf(out, "%.3f\n", (double)atomic_load(c) * rows[r].scale);
        }
    }
    family(out, "eie_inference_pending_request_count", "gauge",
           "Requests admitted and not yet answered");
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        fprintf(out, "eie_inference_pending_request_count{model=\"%s\"} %llu\n", m->name,
                (unsigned long long)atomic_load(&m->queued));
    family(out, "eie_model_weight_bytes", "gauge", "Bytes of the run-time compressed weights");
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        for (size_t i = 0; i < m->n_versions; i++)
            fprintf(out, "eie_model_weight_bytes{model=\"%s\",version=\"%llu\"} %llu\n", m->name,
                    (unsigned long long)m->versions[i]->version,
                    (unsigned long long)eie_net_layout_bytes(m->versions[i]->net));
    family(out, "eie_model_file_bytes", "gauge", "Bytes of the .eie file");
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        for (size_t i = 0; i < m->n_versions; i++)
            fprintf(out, "eie_model_file_bytes{model=\"%s\",version=\"%llu\"} %llu\n", m->name,
                    (unsigned long long)m->versions[i]->version,
                    (unsigned long long)eie_model_file_bytes(m->versions[i]->model));
    family(out, "eie_model_load_duration_seconds", "gauge", "Time the last load took");
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        for (size_t i = 0; i < m->n_versions; i++)
            fprintf(out, "eie_model_load_duration_seconds{model=\"%s\",version=\"%llu\"} %.6f\n",
                    m->name, (unsigned long long)m->versions[i]->version,
                    m->versions[i]->load_seconds);
    family(out, "eie_model_ready", "gauge", "1 if the model serves");
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        fprintf(out, "eie_model_ready{model=\"%s\"} %d\n", m->name,
                m->state == EIED_MODEL_READY ? 1 : 0);
    family(out, "eie_model_version_load_failed", "gauge",
           "1 for a version whose file failed to load and does not serve");
    for (eied_model_t *m = models->head; m != NULL; m = m->next)
        for (size_t i = 0; i < m->n_failed; i++)
            if (eied_model_version(m, m->failed[i].version) == NULL)
                fprintf(out, "eie_model_version_load_failed{model=\"%s\",version=\"%llu\"} 1\n",
                        m->name, (unsigned long long)m->failed[i].version);
    family(out, "eie_repository_models_refused", "gauge",
           "Model folders the last scan did not load: over repository.max_models");
    fprintf(out, "eie_repository_models_refused %llu\n",
            (unsigned long long)eied_repository_refused(mt->repository));
    family(out, "eie_model_load_failures_total", "counter", "Model loads that failed");
    fprintf(out, "eie_model_load_failures_total %llu\n",
            (unsigned long long)atomic_load(&models->load_failures));
    family(out, "eie_model_loads_total", "counter", "Model versions loaded and published");
    fprintf(out, "eie_model_loads_total %llu\n", (unsigned long long)atomic_load(&models->loads_ok));
    family(out, "eie_memory_published_bytes", "gauge",
           "Bytes of every published version (what memory_budget limits)");
    fprintf(out, "eie_memory_published_bytes %llu\n",
            (unsigned long long)models->bytes_published);
    family(out, "eie_request_failure_total", "counter",
           "Inference requests refused or failed, by reason (every model, unknown ones too)");
    for (int r = 0; r < EIED_FAIL_COUNT_; r++)
        fprintf(out, "eie_request_failure_total{reason=\"%s\"} %llu\n", fail_labels[r],
                (unsigned long long)atomic_load(&mt->infer_failures[r]));
    family(out, "eie_server_refused_streams_total", "counter",
           "Calls refused over server.max_streams or server.max_watch_streams");
    fprintf(out, "eie_server_refused_streams_total %llu\n",
            (unsigned long long)atomic_load(&srv->refused_streams));
    family(out, "eie_server_send_timeouts_total", "counter",
           "Calls cancelled because the client did not take a reply within server.send_timeout");
    fprintf(out, "eie_server_send_timeouts_total %llu\n",
            (unsigned long long)atomic_load(&srv->send_timeouts));
    family(out, "eie_server_connections", "gauge",
           "Connections open on a plaintext port (accepted by the daemon)");
    family(out, "eie_server_refused_connections_total", "counter",
           "Connections closed at once over server.max_connections");
    for (int i = 0; i < EIED_N_LISTENERS; i++) {
        if (srv->listeners[i].conns == NULL)
            continue;
        fprintf(out, "eie_server_connections{port=\"%s\"} %u\n", srv->listeners[i].what,
                srv->listeners[i].n_conns);
        fprintf(out, "eie_server_refused_connections_total{port=\"%s\"} %llu\n",
                srv->listeners[i].what, (unsigned long long)srv->listeners[i].refused_conns);
    }
    if (mt->tls != NULL) {
        family(out, "eie_tls_cert_expiry_seconds", "gauge",
               "Seconds until the TLS certificate expires (negative: expired)");
        fprintf(out, "eie_tls_cert_expiry_seconds %.0f\n", eied_tls_expiry_seconds(mt->tls));
    }
    family(out, "eie_server_live_calls", "gauge", "gRPC calls in flight");
    fprintf(out, "eie_server_live_calls %ld\n", atomic_load(&srv->live_calls));
    family(out, "eie_server_uptime_seconds", "gauge", "Seconds since the daemon started");
    fprintf(out, "eie_server_uptime_seconds %.3f\n",
            (double)(eied_now_ns() - mt->started_ns) / 1e9);
}

static void handle(void *ctx, eied_http_req_t *req)
{
    eied_metrics_t *mt = ctx;
    if (strcmp(eied_http_method(req), "GET") != 0) {
        eied_http_respond(req, 405, "text/plain", "GET only\n", 9);
        return;
    }
    if (strcmp(eied_http_path(req), "/metrics") != 0) {
        static const char text[] = "not found; try GET /metrics\n";
        eied_http_respond(req, 404, "text/plain", text, sizeof text - 1);
        return;
    }
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (f == NULL) {
        eied_http_respond(req, 500, "text/plain", "", 0);
        return;
    }
    eied_metrics_render(mt, f);
    fclose(f);
    eied_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
    free(body);
}

bool eied_metrics_start(eied_metrics_t *mt)
{
    const char *listen = mt->cfg->metrics_listen;
    if (listen[0] == '\0')
        return true;
    eied_http_opts_t o = eied_http_opts_default();
    o.listen = listen;
    o.max_body = 1024; /* GET: no body expected */
    o.max_header = METRICS_MAX_HEADER;
    o.max_connections = METRICS_MAX_CONNECTIONS;
    o.busy_connections = METRICS_BUSY;
    o.idle_timeout_s = METRICS_READ_TIMEOUT_S;
    eie_error_t err;
    if (eied_http_start(mt->loop, &o, handle, mt, &mt->http, &err) != EIE_STATUS_OK) {
        eied_log(EIED_LOG_ERROR, "cannot listen for metrics", "addr", listen, "error", err.msg,
                 NULL);
        return false;
    }
    mt->port = eied_http_port(mt->http);
    char p[16], bound_addr[300];
    const char *colon = strrchr(listen, ':');
    snprintf(bound_addr, sizeof bound_addr, "%.*s:%d", (int)(colon - listen), listen, mt->port);
    eied_log_announce("metrics", bound_addr);
    snprintf(p, sizeof p, "%d", mt->port);
    eied_log(EIED_LOG_INFO, "metrics listening", "addr", bound_addr, "port", p, NULL);
    return true;
}

void eied_metrics_close(eied_metrics_t *mt)
{
    if (mt != NULL && mt->http != NULL) {
        eied_http_stop(mt->http);
        mt->http = NULL;
    }
}
