/*
 * http.h - an HTTP/1.1 server in the daemon's libuv loop, for the REST front
 * end and /metrics. Parsing, keep-alive, chunked bodies, header limits, idle
 * timeouts and TLS are libmicrohttpd's (a well-kept server library, run
 * without threads of its own: its epoll fd is watched by the loop, so every
 * callback runs on the loop thread like the rest of the daemon). This file
 * adds what a front end needs on top: a whole request handed over at once,
 * a body limit answered with 413 before the body is read, and a reply that
 * may come later (the request waits, suspended, while the engine works).
 *
 *     static void handle(void *ctx, eied_http_req_t *req) {
 *         eied_http_respond(req, 200, "text/plain", "ok\n", 3);
 *     }
 *     eied_http_opts_t o = eied_http_opts_default();
 *     o.listen = "127.0.0.1:0";
 *     if (eied_http_start(loop, &o, handle, NULL, &http, &err) != EIE_STATUS_OK) ...
 *     printf("http on %d\n", eied_http_port(http));
 */
#ifndef EIED_HTTP_H
#define EIED_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "eie/status.h"

typedef struct eied_http eied_http_t;
typedef struct eied_http_req eied_http_req_t;

typedef struct {
    const char *listen;          /* "host:port"; port 0 picks one */
    size_t max_body;             /* bytes; a larger body gets 413 unread */
    size_t max_header;           /* bytes of request line + headers; beyond: 431 */
    unsigned max_connections;    /* beyond: new connections wait in the listen backlog */
    /* beyond this many open connections a request is answered 503 at once (a port that
       must never look dead, /metrics); 0: none */
    unsigned busy_connections;
    unsigned idle_timeout_s;     /* a connection quiet this long is closed; 0: never */
    /* TLS: PEM text (not paths); cert and key both or neither. With ca_pem,
       a client certificate is asked for and checked against it (mutual TLS): one
       the CA did not sign is answered 403, and so is none when
       tls_require_client_cert. */
    const char *tls_cert_pem;
    const char *tls_key_pem;
    const char *tls_ca_pem;
    bool tls_require_client_cert; /* with ca_pem: no certificate is 403 too (else allowed) */
} eied_http_opts_t;

/* Defaults: 64 MiB body, 16 KiB headers, 1024 connections, 300 s idle. */
eied_http_opts_t eied_http_opts_default(void);

/*
 * Called on the loop thread once a request's headers and whole body are in.
 * The handler (now, or later on the loop thread) calls eied_http_respond
 * exactly once for req; until then req and what its accessors return stay
 * valid. If the client goes away first, the reply is dropped quietly.
 */
typedef void (*eied_http_handler_t)(void *ctx, eied_http_req_t *req);

/* Binds o->listen and starts serving on loop. */
eie_status_t eied_http_start(uv_loop_t *loop, const eied_http_opts_t *o,
                             eied_http_handler_t handler, void *ctx, eied_http_t **out,
                             eie_error_t *err);
/* The bound port (for port 0). */
int eied_http_port(const eied_http_t *http);
/* Requests waiting for a reply. */
size_t eied_http_pending(const eied_http_t *http);
/* Stops accepting, closes every connection and frees http (loop thread). A
   request still waiting for its reply must be answered before, or never:
   stop answers none of them. */
void eied_http_stop(eied_http_t *http);

const char *eied_http_method(const eied_http_req_t *req);
/* The path without the query string, percent-decoding not applied. */
const char *eied_http_path(const eied_http_req_t *req);
/* A request header by case-insensitive name, or NULL. */
const char *eied_http_header(const eied_http_req_t *req, const char *name);
const uint8_t *eied_http_body(const eied_http_req_t *req, size_t *len);
/* Under mutual TLS, the verified client certificate's names, comma-separated: its
   subject CN, then its DNS, IP, email and URI SANs; "" otherwise. */
const char *eied_http_client_names(const eied_http_req_t *req);

typedef struct {
    const char *name, *value;
} eied_http_header_t;

/* Replies (body copied). extra: headers to add, may be NULL. */
void eied_http_respond_with(eied_http_req_t *req, unsigned status, const char *content_type,
                            const void *body, size_t len, const eied_http_header_t *extra,
                            size_t n_extra);
void eied_http_respond(eied_http_req_t *req, unsigned status, const char *content_type,
                       const void *body, size_t len);

#endif
