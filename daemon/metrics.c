/*
 * The /metrics endpoint: a minimal HTTP/1.x responder on the loop (one
 * request per connection, bounded request size, Connection: close).
 *
 * Every connection the kernel hands over is accepted, even over the limit:
 * libuv stops polling a listening socket whose pending connection the
 * callback did not take, so refusing by not accepting would shut the
 * endpoint for good. Over the limit a connection gets 503 at once; a
 * connection that has not sent a whole request within the read timeout is
 * closed, so idle clients cannot hold the slots.
 */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define HTTP_REQUEST_MAX 8192

typedef struct http_conn {
    uv_tcp_t tcp;
    struct http_conn *prev, *next; /* every open connection, closed at shutdown */
    eied_metrics_t *mt;
    char buf[HTTP_REQUEST_MAX];
    size_t len;
    uv_write_t write;
    uv_timer_t timer; /* read timeout */
    int open_handles; /* tcp + timer: freed when both are closed */
    char *response;
    bool responded;
    bool over_limit; /* answered 503 once its request has arrived */
} http_conn_t;

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

static http_conn_t *conns;
static unsigned n_conns;
enum { MAX_CONNS = 64, READ_TIMEOUT_MS = 10000 };

static void conn_closed(uv_handle_t *h)
{
    http_conn_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    n_conns--;
    free(c->response);
    free(c);
}

static void conn_close(http_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void on_read_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void write_done(uv_write_t *w, int status)
{
    http_conn_t *c = w->data;
    (void)status;
    conn_close(c);
}

static void respond(http_conn_t *c, const char *status, const char *ctype, const char *body,
                    size_t body_len)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, ctype, body_len);
    c->response = malloc((size_t)hl + body_len);
    if (c->response == NULL) {
        conn_close(c);
        return;
    }
    memcpy(c->response, head, (size_t)hl);
    memcpy(c->response + hl, body, body_len);
    uv_buf_t buf = uv_buf_init(c->response, (unsigned)((size_t)hl + body_len));
    c->write.data = c;
    c->responded = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, write_done) != 0)
        conn_close(c);
}

static void handle_request(http_conn_t *c)
{
    const char *text = "not found; try GET /metrics\n";
    if (c->over_limit) {
        static const char busy[] = "too many connections to /metrics; retry\n";
        respond(c, "503 Service Unavailable", "text/plain", busy, sizeof busy - 1);
        return;
    }
    if (strncmp(c->buf, "GET /metrics ", 13) == 0 || strncmp(c->buf, "GET /metrics?", 13) == 0) {
        char *body = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&body, &len);
        if (f == NULL) {
            respond(c, "500 Internal Server Error", "text/plain", "", 0);
            return;
        }
        eied_metrics_render(c->mt, f);
        fclose(f);
        respond(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, len);
        free(body);
    } else if (strncmp(c->buf, "GET ", 4) == 0) {
        respond(c, "404 Not Found", "text/plain", text, strlen(text));
    } else {
        respond(c, "405 Method Not Allowed", "text/plain", "GET only\n", 9);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn_t *c = h->data;
    (void)suggested;
    buf->base = c->buf + c->len;
    buf->len = sizeof c->buf - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    http_conn_t *c = s->data;
    (void)buf;
    if (c->responded)
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (strstr(c->buf, "\r\n\r\n") != NULL || strstr(c->buf, "\n\n") != NULL)
        handle_request(c);
    else if (c->len >= sizeof c->buf - 1)
        respond(c, "431 Request Header Fields Too Large", "text/plain", "", 0);
}

static void on_connection(uv_stream_t *server, int status)
{
    eied_metrics_t *mt = server->data;
    if (status < 0)
        return;
    http_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->mt = mt;
    uv_tcp_init(mt->loop, &c->tcp);
    uv_timer_init(mt->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    c->next = conns;
    if (conns != NULL)
        conns->prev = c;
    conns = c;
    n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (n_conns > MAX_CONNS) {
        eied_log(EIED_LOG_WARN, "metrics: connection limit reached, answering 503", NULL);
        c->over_limit = true;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0 ||
        uv_timer_start(&c->timer, on_read_timeout, READ_TIMEOUT_MS, 0) != 0)
        conn_close(c);
}

bool eied_metrics_start(eied_metrics_t *mt)
{
    const char *listen = mt->cfg->metrics_listen;
    if (listen[0] == '\0')
        return true;
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || (size_t)(colon - listen) >= sizeof host) {
        eied_log(EIED_LOG_ERROR, "metrics_listen is not host:port", "value", listen, NULL);
        return false;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct sockaddr_in addr;
    if (*end != '\0' || port < 0 || port > 65535 || uv_ip4_addr(host, (int)port, &addr) != 0) {
        eied_log(EIED_LOG_ERROR, "metrics_listen is not an IPv4 host:port", "value", listen, NULL);
        return false;
    }
    uv_tcp_init(mt->loop, &mt->listener);
    mt->listener.data = mt;
    int rc = uv_tcp_bind(&mt->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&mt->listener, 64, on_connection);
    if (rc != 0) {
        eied_log(EIED_LOG_ERROR, "cannot listen for metrics", "addr", listen, "error",
                 uv_strerror(rc), NULL);
        uv_close((uv_handle_t *)&mt->listener, NULL);
        return false;
    }
    struct sockaddr_in bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&mt->listener, (struct sockaddr *)&bound, &len);
    mt->port = ntohs(bound.sin_port);
    mt->listening = true;
    char p[16], bound_addr[300];
    snprintf(bound_addr, sizeof bound_addr, "%s:%d", host, mt->port);
    eied_log_announce("metrics", bound_addr);
    snprintf(p, sizeof p, "%d", mt->port);
    eied_log(EIED_LOG_INFO, "metrics listening", "host", host, "port", p, NULL);
    return true;
}

void eied_metrics_close(eied_metrics_t *mt)
{
    if (mt != NULL && mt->listening) {
        uv_close((uv_handle_t *)&mt->listener, NULL);
        mt->listening = false;
    }
    for (http_conn_t *c = conns; c != NULL; c = c->next)
        conn_close(c);
}
