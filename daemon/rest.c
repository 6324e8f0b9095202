/*
 * rest.c - the KServe Open Inference Protocol v2 over HTTP/1.1 (REST), a
 * front end beside gRPC on server.http_listen.
 *
 * Each endpoint is transcoded to the gRPC method it stands for: the request
 * becomes that method's serialised message and runs through the method's
 * own handler as a local call (call.h), so validation, batching, admin
 * checks and errors are the gRPC path's, and the two protocols answer
 * alike. The reply comes back serialised and is written as JSON
 * (rest_json.c); an error as {"error": "..."} with the HTTP status of its
 * eie status (wire_status.c), as Triton does.
 *
 * Threads: HTTP requests arrive on the loop thread (http.c); a handler may
 * answer on a worker thread (inference), so the answer is posted back to
 * the loop before it is written.
 */
#include "rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "http.h"
#include "inference.pb-c.h"
#include "log.h"
#include "rest_json.h"
#include "tls.h"
#include "wire_status.h"

#define SVC "/inference.GRPCInferenceService/"

/* SHAPE_INDEX, SHAPE_CONFIG: Triton answers with one member of the reply (the list of
   models, the configuration) rather than the whole message. */
typedef enum { SHAPE_JSON, SHAPE_INFER, SHAPE_HEALTH, SHAPE_INDEX, SHAPE_CONFIG } reply_shape_t;

struct eied_rest {
    eied_app_t *app;
    eied_http_t *http;
    char *cert, *key, *ca; /* PEM given to libmicrohttpd, kept while it serves */
};

/* One REST request on its way through a gRPC method. */
typedef struct {
    eied_rest_t *rest;
    eied_server_t *server; /* where answers are posted: outlives rest's listener */
    eied_http_req_t *req;
    reply_shape_t shape;
    const ProtobufCMessageDescriptor *reply_desc;
    eied_rest_infer_t infer;
    /* the answer, filled on any thread, written on the loop thread */
    bool failed;
    eied_wire_status_t wire;
    char message[EIE_ERROR_MSG_MAX];
    uint8_t *reply;
    size_t reply_len;
} pending_t;

static void respond_error(eied_http_req_t *req, unsigned status, const char *msg)
{
    char *body = eied_rest_error_body(msg);
    if (body == NULL)
        eied_http_respond(req, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
    else
        eied_http_respond(req, status, "application/json", body, strlen(body));
    free(body);
}

static void respond_status(eied_http_req_t *req, const eie_error_t *err)
{
    eied_wire_status_t w = eied_wire_status(err);
    respond_error(req, (unsigned)w.http_status, w.message);
}

static void pending_free(pending_t *p)
{
    eied_rest_infer_free(&p->infer);
    free(p->reply);
    free(p);
}

/* Loop thread: writes the method's answer as the endpoint's reply. */
static void write_answer(void *arg)
{
    pending_t *p = arg;
    eied_http_req_t *req = p->req;
    if (p->failed) {
        respond_error(req, (unsigned)p->wire.http_status, p->message);
        pending_free(p);
        return;
    }
    eie_error_t err;
    if (p->shape == SHAPE_INFER) {
        uint8_t *body;
        size_t len, json_len;
        if (eied_rest_infer_encode(&p->infer, p->reply, p->reply_len, &body, &len, &json_len,
                                   &err) != EIE_STATUS_OK) {
            respond_status(req, &err);
        } else if (json_len == len) {
            eied_http_respond(req, 200, "application/json", body, len);
        } else {
            char n[32];
            snprintf(n, sizeof n, "%zu", json_len);
            eied_http_header_t h[] = {{"Inference-Header-Content-Length", n}};
            eied_http_respond_with(req, 200, "application/octet-stream", body, len, h, 1);
        }
        free(body);
        pending_free(p);
        return;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(p->reply_desc, NULL, p->reply_len, p->reply);
    if (m == NULL) {
        respond_error(req, 500, "the reply does not parse");
        pending_free(p);
        return;
    }
    if (p->shape == SHAPE_HEALTH) {
        /* KServe: the status says it; 200 for true, 400 for false (as Triton) */
        const ProtobufCFieldDescriptor *f = &m->descriptor->fields[0];
        bool yes = *(const protobuf_c_boolean *)((const uint8_t *)m + f->offset);
        eied_http_respond(req, yes ? 200 : 400, NULL, "", 0);
    } else {
        void *json = eied_rest_message_json(m);
        if (json != NULL && p->shape == SHAPE_INDEX)
            json = eied_rest_json_take(json, "models");
        else if (json != NULL && p->shape == SHAPE_CONFIG)
            json = eied_rest_json_take(json, "config");
        char *body = eied_rest_json_dump_free(json);
        if (body == NULL)
            respond_error(req, 500, "out of memory");
        else
            eied_http_respond(req, 200, "application/json", body, strlen(body));
        free(body);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    pending_free(p);
}

/* Any thread: the local call's answer, kept and handed to the loop. */
static void call_done(void *ctx, const eied_wire_status_t *failed, const uint8_t *reply,
                      size_t len)
{
    pending_t *p = ctx;
    if (failed != NULL) {
        p->failed = true;
        p->wire = *failed;
        snprintf(p->message, sizeof p->message, "%s", failed->message);
    } else if ((p->reply = malloc(len ? len : 1)) == NULL) {
        p->failed = true;
        p->wire.http_status = 503;
        snprintf(p->message, sizeof p->message, "out of memory");
    } else {
        memcpy(p->reply, reply, len);
        p->reply_len = len;
    }
    eied_server_post(p->server, write_answer, p);
}

/* Runs path's handler on the serialised request as a local call. */
static void run_method(pending_t *p, const char *path, const ProtobufCMessage *request,
                       const uint8_t *packed, size_t packed_len)
{
    eied_handler_fn handler = eied_server_method_handler(p->rest->app->server, path);
    uint8_t *bytes = NULL;
    if (request != NULL) {
        packed_len = protobuf_c_message_get_packed_size(request);
        if ((bytes = malloc(packed_len ? packed_len : 1)) == NULL) {
            respond_error(p->req, 503, "out of memory");
            pending_free(p);
            return;
        }
        protobuf_c_message_pack(request, bytes);
        packed = bytes;
    }
    eied_call_t *call = handler == NULL ? NULL
                                         : eied_call_new_local(packed, packed_len,
                                                               gpr_inf_future(GPR_CLOCK_REALTIME),
                                                               call_done, p);
    free(bytes);
    if (call == NULL) {
        respond_error(p->req, handler == NULL ? 501 : 503,
                      handler == NULL ? "this endpoint's method is not served" : "out of memory");
        pending_free(p);
        return;
    }
    const char *names = eied_http_client_names(p->req);
    if (names[0] != '\0' && !eied_call_local_peer(call, names)) {
        eied_call_unref(call);
        respond_error(p->req, 503, "out of memory");
        pending_free(p);
        return;
    }
    const char *auth = eied_http_header(p->req, "authorization");
    if (auth != NULL && !eied_call_local_metadata(call, "authorization", auth)) {
        eied_call_unref(call);
        respond_error(p->req, 503, "out of memory");
        pending_free(p);
        return;
    }
    handler(p->rest->app, call); /* takes the call's reference */
}

/* Splits path into at most 8 segments (in place); returns how many. */
static size_t split(char *path, char **seg, size_t max)
{
    size_t n = 0;
    for (char *s = strtok(path, "/"); s != NULL; s = strtok(NULL, "/")) {
        if (n == max)
            return max + 1;
        seg[n++] = s;
    }
    return n;
}

static pending_t *pending_new(eied_rest_t *rest, eied_http_req_t *req, reply_shape_t shape,
                              const ProtobufCMessageDescriptor *desc)
{
    pending_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        respond_error(req, 503, "out of memory");
        return NULL;
    }
    p->rest = rest;
    p->server = rest->app->server;
    p->req = req;
    p->shape = shape;
    p->reply_desc = desc;
    return p;
}

static bool is(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* A repository request's JSON body: {} or absent; {"ready": bool} for the index. */
static bool read_body_flag(eied_http_req_t *req, const char *key, protobuf_c_boolean *out)
{
    size_t len;
    const uint8_t *body = eied_http_body(req, &len);
    *out = 0;
    if (len == 0)
        return true;
    return eied_rest_body_flag(body, len, key, out);
}

static void handle(void *ctx, eied_http_req_t *req)
{
    eied_rest_t *rest = ctx;
    const char *method = eied_http_method(req);
    bool get = is(method, "GET"), post = is(method, "POST");
    char path[1024];
    if (strlen(eied_http_path(req)) >= sizeof path) {
        respond_error(req, 414, "the path is longer than 1023 bytes");
        return;
    }
    snprintf(path, sizeof path, "%s", eied_http_path(req));
    char *s[9];
    size_t n = split(path, s, 8);
    if (n == 0 || n > 8 || !is(s[0], "v2")) {
        respond_error(req, 404, "not found: the KServe v2 API is under /v2");
        return;
    }
    pending_t *p;
    if (n == 1 && get) { /* GET /v2 */
        Inference__ServerMetadataRequest r = INFERENCE__SERVER_METADATA_REQUEST__INIT;
        if ((p = pending_new(rest, req, SHAPE_JSON, &inference__server_metadata_response__descriptor)))
            run_method(p, SVC "ServerMetadata", &r.base, NULL, 0);
        return;
    }
    if (n == 3 && get && is(s[1], "health") && (is(s[2], "live") || is(s[2], "ready"))) {
        bool live = is(s[2], "live");
        Inference__ServerLiveRequest lr = INFERENCE__SERVER_LIVE_REQUEST__INIT;
        Inference__ServerReadyRequest rr = INFERENCE__SERVER_READY_REQUEST__INIT;
        if ((p = pending_new(rest, req, SHAPE_HEALTH,
                             live ? &inference__server_live_response__descriptor
                                  : &inference__server_ready_response__descriptor)))
            run_method(p, live ? SVC "ServerLive" : SVC "ServerReady",
                       live ? &lr.base : &rr.base, NULL, 0);
        return;
    }
    if (n == 3 && get && is(s[1], "models") && is(s[2], "stats")) { /* every model's stats */
        Inference__ModelStatisticsRequest r = INFERENCE__MODEL_STATISTICS_REQUEST__INIT;
        if ((p = pending_new(rest, req, SHAPE_JSON,
                             &inference__model_statistics_response__descriptor)))
            run_method(p, SVC "ModelStatistics", &r.base, NULL, 0);
        return;
    }
    if (n >= 3 && is(s[1], "models")) {
        /* /v2/models/NAME[/versions/V][/ready|/infer|/stats|/config] */
        char *name = s[2], *version = "";
        size_t k = 3;
        if (n >= 5 && is(s[3], "versions")) {
            version = s[4];
            k = 5;
        }
        const char *op = k < n ? s[k] : "";
        if (k + (op[0] ? 1 : 0) != n) {
            respond_error(req, 404, "not found");
            return;
        }
        if (op[0] == '\0' && get) {
            Inference__ModelMetadataRequest r = INFERENCE__MODEL_METADATA_REQUEST__INIT;
            r.name = name;
            r.version = version;
            if ((p = pending_new(rest, req, SHAPE_JSON,
                                 &inference__model_metadata_response__descriptor)))
                run_method(p, SVC "ModelMetadata", &r.base, NULL, 0);
            return;
        }
        if (is(op, "ready") && get) {
            Inference__ModelReadyRequest r = INFERENCE__MODEL_READY_REQUEST__INIT;
            r.name = name;
            r.version = version;
            if ((p = pending_new(rest, req, SHAPE_HEALTH,
                                 &inference__model_ready_response__descriptor)))
                run_method(p, SVC "ModelReady", &r.base, NULL, 0);
            return;
        }
        if (is(op, "config") && get) {
            Inference__ModelConfigRequest r = INFERENCE__MODEL_CONFIG_REQUEST__INIT;
            r.name = name;
            r.version = version;
            if ((p = pending_new(rest, req, SHAPE_CONFIG,
                                 &inference__model_config_response__descriptor)))
                run_method(p, SVC "ModelConfig", &r.base, NULL, 0);
            return;
        }
        if (is(op, "stats") && get) {
            Inference__ModelStatisticsRequest r = INFERENCE__MODEL_STATISTICS_REQUEST__INIT;
            r.name = name;
            r.version = version;
            if ((p = pending_new(rest, req, SHAPE_JSON,
                                 &inference__model_statistics_response__descriptor)))
                run_method(p, SVC "ModelStatistics", &r.base, NULL, 0);
            return;
        }
        if (is(op, "infer") && post) {
            if ((p = pending_new(rest, req, SHAPE_INFER,
                                 &inference__model_infer_response__descriptor)) == NULL)
                return;
            size_t len, json_len = 0;
            const uint8_t *body = eied_http_body(req, &len);
            const char *hl = eied_http_header(req, "Inference-Header-Content-Length");
            eie_error_t err;
            if (hl != NULL) {
                char *end;
                unsigned long long v = strtoull(hl, &end, 10);
                if (*end != '\0' || hl[0] == '\0' || hl[0] == '-' || v == 0 || v > len) {
                    respond_error(req, 400,
                                  "Inference-Header-Content-Length must be 1 .. the body's "
                                  "length");
                    pending_free(p);
                    return;
                }
                json_len = (size_t)v;
            }
            if (eied_rest_infer_decode(body, len, json_len, name, version, &p->infer, &err) !=
                EIE_STATUS_OK) {
                respond_status(req, &err);
                pending_free(p);
                return;
            }
            run_method(p, SVC "ModelInfer", NULL, p->infer.request, p->infer.request_len);
            return;
        }
        respond_error(req, (get || post) ? 404 : 405, "not found");
        return;
    }
    if (n >= 3 && post && is(s[1], "repository")) {
        if (n == 3 && is(s[2], "index")) {
            Inference__RepositoryIndexRequest r = INFERENCE__REPOSITORY_INDEX_REQUEST__INIT;
            if (!read_body_flag(req, "ready", &r.ready)) {
                respond_error(req, 400, "the body must be a JSON object; \"ready\" true or false");
                return;
            }
            if ((p = pending_new(rest, req, SHAPE_INDEX,
                                 &inference__repository_index_response__descriptor)))
                run_method(p, SVC "RepositoryIndex", &r.base, NULL, 0);
            return;
        }
        if (n == 5 && is(s[2], "models") && (is(s[4], "load") || is(s[4], "unload"))) {
            bool load = is(s[4], "load");
            Inference__RepositoryModelLoadRequest lr = INFERENCE__REPOSITORY_MODEL_LOAD_REQUEST__INIT;
            Inference__RepositoryModelUnloadRequest ur =
                INFERENCE__REPOSITORY_MODEL_UNLOAD_REQUEST__INIT;
            lr.model_name = ur.model_name = s[3];
            if ((p = pending_new(rest, req, SHAPE_JSON,
                                 load ? &inference__repository_model_load_response__descriptor
                                      : &inference__repository_model_unload_response__descriptor)))
                run_method(p, load ? SVC "RepositoryModelLoad" : SVC "RepositoryModelUnload",
                           load ? &lr.base : &ur.base, NULL, 0);
            return;
        }
    }
    respond_error(req, 404, "not found");
}

eie_status_t eied_rest_start(eied_app_t *app, eied_rest_t **out, eie_error_t *err)
{
    *out = NULL;
    const eied_config_t *cfg = app->cfg;
    if (cfg->http_listen[0] == '\0')
        return EIE_STATUS_OK;
    eied_rest_t *rest = calloc(1, sizeof *rest);
    if (rest == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "rest: out of memory");
    rest->app = app;
    eied_http_opts_t o = eied_http_opts_default();
    char *cert = NULL, *key = NULL, *ca = NULL;
    if (app->tls != NULL) {
        /* the REST port is TLS whenever gRPC is, with the same client-certificate rule */
        if (eied_tls_read_pems(cfg, &cert, &key, &ca, err) != EIE_STATUS_OK) {
            free(rest);
            return err->status;
        }
        o.tls_cert_pem = cert;
        o.tls_key_pem = key;
        o.tls_ca_pem = ca;
        o.tls_require_client_cert = cfg->tls_require_client_cert;
    }
    o.listen = cfg->http_listen;
    o.max_body = cfg->http_max_body;
    o.max_connections = (unsigned)cfg->max_connections;
    o.idle_timeout_s = (unsigned)(cfg->idle_timeout_ms / 1000);
    rest->cert = cert;
    rest->key = key;
    rest->ca = ca;
    eie_status_t st = eied_http_start(app->loop, &o, handle, rest, &rest->http, err);
    if (st != EIE_STATUS_OK) {
        eied_rest_free(rest);
        return st;
    }
    char addr[300];
    const char *colon = strrchr(cfg->http_listen, ':');
    snprintf(addr, sizeof addr, "%.*s:%d", (int)(colon - cfg->http_listen), cfg->http_listen,
             eied_http_port(rest->http));
    eied_log_announce("http", addr);
    *out = rest;
    return EIE_STATUS_OK;
}

void eied_rest_stop(eied_rest_t *rest)
{
    if (rest == NULL || rest->http == NULL)
        return;
    eied_http_stop(rest->http);
    rest->http = NULL;
}

void eied_rest_free(eied_rest_t *rest)
{
    if (rest == NULL)
        return; /* eied_rest_stop ran on the loop (the server's stopping step) */
    if (rest->key != NULL)
        memset(rest->key, 0, strlen(rest->key)); /* no private key left in freed memory */
    free(rest->key);
    free(rest->cert);
    free(rest->ca);
    free(rest);
}
