/*
 * http.c - libmicrohttpd driven by the libuv loop (see http.h).
 *
 * libmicrohttpd runs with no thread of its own (MHD_USE_EPOLL without an
 * internal polling thread): its one epoll fd is watched by a uv_poll and its
 * next timeout by a uv_timer, and MHD_run does the I/O, so every callback
 * below runs on the loop thread. A request whose reply is not ready when its
 * body is in is suspended (MHD stops polling it) and resumed by
 * eied_http_respond; resuming writes to MHD's inter-thread channel, which is
 * in its epoll set, so the loop wakes and MHD sends the reply.
 *
 * A request record lives until both MHD is done with it (completion
 * callback) and the handler has answered, whichever is last: a handler may
 * answer after the client left or after eied_http_stop.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

typedef enum { REQ_READING, REQ_HANDLING, REQ_SUSPENDED, REQ_REPLIED } req_state_t;

struct eied_http_req {
    eied_http_t *http;
    struct MHD_Connection *conn;
    req_state_t state;
    bool dropping; /* past max_body: the rest of the body is read and dropped */
    size_t dropped;
    bool mhd_done; /* MHD's completion callback ran */
    bool answered; /* the handler called eied_http_respond */
    char *method, *path;
    char names[1024]; /* the verified client certificate's names (mutual TLS) */
    uint8_t *body;
    size_t len, cap;
    struct MHD_Response *reply;
    unsigned status;
    eied_http_req_t *prev, *next; /* suspended requests, for stop */
};

struct eied_http {
    eied_http_opts_t o;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    int port;
    eied_http_handler_t handler;
    void *ctx;
    eied_http_req_t *suspended;
    size_t n_pending;
    unsigned open_conns;
    bool stopping;
};

eied_http_opts_t eied_http_opts_default(void)
{
    return (eied_http_opts_t){
        .listen = "127.0.0.1:8000",
        .max_body = 64u << 20,
        .max_header = 16u << 10,
        .max_connections = 1024,
        .idle_timeout_s = 300,
    };
}

static void req_free(eied_http_req_t *r)
{
    if (r->reply != NULL)
        MHD_destroy_response(r->reply);
    free(r->method);
    free(r->path);
    free(r->body);
    free(r);
}

static void unlink_suspended(eied_http_req_t *r)
{
    eied_http_t *h = r->http;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else if (h->suspended == r)
        h->suspended = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static struct MHD_Response *text_reply(const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (resp != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return resp;
}

static enum MHD_Result queue(eied_http_req_t *r, unsigned status, struct MHD_Response *resp)
{
    if (resp == NULL)
        return MHD_NO; /* out of memory: MHD closes the connection */
    enum MHD_Result ok = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->state = REQ_REPLIED;
    return ok;
}

static enum MHD_Result too_big(eied_http_req_t *r)
{
    /* Nothing more of the body is read: MHD closes the connection after the reply. */
    struct MHD_Response *resp =
        text_reply("{\"error\":\"request body larger than server.http_max_body\"}");
    if (resp != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return queue(r, MHD_HTTP_CONTENT_TOO_LARGE, resp);
}

/* Appends name to out (comma-separated, cut at the buffer's end). */
static void add_name(char *out, size_t cap, const char *name, size_t len)
{
    size_t at = strlen(out);
    if (len == 0 || at + len + 2 > cap)
        return;
    if (at > 0)
        out[at++] = ',';
    memcpy(out + at, name, len);
    out[at + len] = '\0';
}

/*
 * Mutual TLS: libmicrohttpd asks for a client certificate when it has a
 * trust list, but verifying it is the application's part. False when the
 * peer sent a certificate the CA did not sign, or none though one is
 * required; a verified certificate's CN and SANs go to names.
 */
static bool client_verified(struct MHD_Connection *conn, bool required, char *names, size_t cap)
{
    names[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t s = ci != NULL ? (gnutls_session_t)ci->tls_session : NULL;
    unsigned status = 0, n = 0;
    if (s == NULL)
        return false;
    int rc = gnutls_certificate_verify_peers2(s, &status);
    if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND)
        return !required;
    if (rc != GNUTLS_E_SUCCESS || status != 0)
        return false;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(s, &n);
    gnutls_x509_crt_t crt;
    if (chain == NULL || n == 0 || gnutls_x509_crt_init(&crt) != GNUTLS_E_SUCCESS)
        return false;
    if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS) {
        char buf[256];
        size_t len = sizeof buf;
        if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &len) ==
            GNUTLS_E_SUCCESS)
            add_name(names, cap, buf, strnlen(buf, len));
        for (unsigned i = 0; i < 16; i++) {
            unsigned critical;
            len = sizeof buf;
            int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &len, &critical);
            if (type < 0)
                break;
            if (type == GNUTLS_SAN_IPADDRESS) { /* raw bytes: written as text */
                char ip[INET6_ADDRSTRLEN];
                if (inet_ntop(len == 4 ? AF_INET : AF_INET6, buf, ip, sizeof ip) != NULL)
                    add_name(names, cap, ip, strlen(ip));
            } else if (type == GNUTLS_SAN_DNSNAME || type == GNUTLS_SAN_RFC822NAME ||
                       type == GNUTLS_SAN_URI) {
                add_name(names, cap, buf, strnlen(buf, len));
            }
        }
    }
    gnutls_x509_crt_deinit(crt);
    return true;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload, size_t *upload_size, void **req_cls)
{
    (void)version;
    eied_http_t *h = cls;
    eied_http_req_t *r = *req_cls;
    if (r == NULL) { /* headers are in */
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        r->http = h;
        r->conn = conn;
        r->method = strdup(method);
        r->path = strdup(url);
        *req_cls = r;
        if (r->method == NULL || r->path == NULL)
            return MHD_NO;
        if (h->o.tls_ca_pem != NULL &&
            !client_verified(conn, h->o.tls_require_client_cert, r->names, sizeof r->names)) {
            struct MHD_Response *denied = text_reply(
                "{\"error\":\"a client certificate signed by the server's client CA is "
                "required\"}");
            if (denied != NULL)
                MHD_add_response_header(denied, MHD_HTTP_HEADER_CONNECTION, "close");
            return queue(r, MHD_HTTP_FORBIDDEN, denied);
        }
        if (h->o.busy_connections > 0 && h->open_conns > h->o.busy_connections) {
            struct MHD_Response *busy =
                text_reply("{\"error\":\"too many connections; retry\"}");
            if (busy != NULL)
                MHD_add_response_header(busy, MHD_HTTP_HEADER_CONNECTION, "close");
            return queue(r, MHD_HTTP_SERVICE_UNAVAILABLE, busy);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno != 0 || *end != '\0' || n > h->o.max_body)
                return too_big(r); /* refused before a byte of it is read */
            if (n > 0) {
                r->body = malloc(n);
                if (r->body == NULL)
                    return MHD_NO;
                r->cap = n;
            }
        }
        return MHD_YES;
    }
    if (r->state == REQ_READING && *upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->dropping || n > h->o.max_body - r->len) {
            /* A chunked body past the limit: read on and dropped, so the 413 that
               follows is not lost to a reset (closing with unread data sends RST);
               a body that goes on past twice the limit is answered at once. */
            r->dropping = true;
            r->dropped += n;
            if (r->dropped > h->o.max_body)
                return too_big(r);
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n)
                cap = cap > h->o.max_body / 2 ? h->o.max_body : cap * 2;
            uint8_t *grown = realloc(r->body, cap);
            if (grown == NULL)
                return MHD_NO;
            r->body = grown;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->state == REQ_REPLIED) { /* answered early (413): the rest is not read */
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->state == REQ_READING) { /* the whole body is in */
        if (r->dropping)
            return too_big(r);
        r->state = REQ_HANDLING;
        h->handler(h->ctx, r);
        if (r->reply == NULL) { /* the answer comes later */
            r->state = REQ_SUSPENDED;
            r->next = h->suspended;
            if (h->suspended != NULL)
                h->suspended->prev = r;
            h->suspended = r;
            h->n_pending++;
            MHD_suspend_connection(conn);
            return MHD_YES;
        }
    }
    if (r->reply != NULL) { /* answered, in the handler or after a resume */
        struct MHD_Response *resp = r->reply;
        r->reply = NULL;
        return queue(r, r->status, resp);
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    eied_http_req_t *r = *req_cls;
    *req_cls = NULL;
    if (r == NULL)
        return;
    r->mhd_done = true;
    r->conn = NULL;
    if (r->state == REQ_SUSPENDED) { /* closed by stop while waiting */
        unlink_suspended(r);
        r->http->n_pending--;
    }
    if (r->answered || r->state != REQ_SUSPENDED)
        req_free(r);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)conn;
    (void)socket_ctx;
    eied_http_t *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        h->open_conns++;
    else if (h->open_conns > 0)
        h->open_conns--;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    eied_log(EIED_LOG_WARN, "http", "detail", line, NULL);
}

static void drive(eied_http_t *h);

static void on_timer(uv_timer_t *t) { drive(t->data); }

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    drive(p->data);
}

static unsigned connections(eied_http_t *h)
{
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return i ? i->num_connections : 0;
}

/* MHD's I/O until it settles, then wait for its next deadline. A run that
   closes connections frees room under max_connections, but MHD watches the
   listening socket again only on its next run: without one, a client
   waiting in the backlog would wait for some unrelated event. */
static void drive(eied_http_t *h)
{
    unsigned before, after = connections(h);
    int turns = 0;
    do {
        before = after;
        MHD_run(h->mhd);
        after = connections(h);
    } while (after < before && ++turns < 8);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
        uv_timer_start(&h->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&h->timer);
}

/* A bound, listening, non-blocking socket for "host:port" (host may be [v6]). */
static int bind_listen(const char *listen_addr, eie_error_t *err)
{
    char host[256];
    const char *colon = strrchr(listen_addr, ':');
    size_t hl = colon ? (size_t)(colon - listen_addr) : 0;
    if (colon == NULL || hl == 0 || hl >= sizeof host) {
        eie_error_set(err, EIE_STATUS_BAD_CONFIG, "'%s' is not host:port", listen_addr);
        return -1;
    }
    const char *hs = listen_addr;
    if (hs[0] == '[' && hl >= 2 && hs[hl - 1] == ']') {
        hs++;
        hl -= 2;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        eie_error_set(err, EIE_STATUS_BAD_CONFIG, "'%s': port is not 0..65535", listen_addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        eie_error_set(err, EIE_STATUS_BAD_CONFIG, "'%s': %s", listen_addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 511) != 0) {
        eie_error_set(err, EIE_STATUS_UNAVAILABLE, "cannot listen on %s: %s", listen_addr,
                      strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

eie_status_t eied_http_start(uv_loop_t *loop, const eied_http_opts_t *o,
                             eied_http_handler_t handler, void *ctx, eied_http_t **out,
                             eie_error_t *err)
{
    *out = NULL;
    bool tls = o->tls_cert_pem != NULL || o->tls_key_pem != NULL;
    if (tls && (o->tls_cert_pem == NULL || o->tls_key_pem == NULL))
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "http: TLS needs both a certificate and a key");
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return eie_error_set(err, EIE_STATUS_UNSUPPORTED,
                             "http: this libmicrohttpd was built without TLS");
    if (o->max_body == 0 || o->max_header < 1024 || o->max_connections == 0)
        return eie_error_set(err, EIE_STATUS_BAD_CONFIG,
                             "http: max_body must be > 0, max_header >= 1024, "
                             "max_connections > 0");
    eied_http_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return eie_error_set(err, EIE_STATUS_NO_MEMORY, "http: out of memory");
    h->o = *o;
    h->handler = handler;
    h->ctx = ctx;
    int fd = bind_listen(o->listen, err);
    if (fd < 0) {
        free(h);
        return err->status;
    }
    h->port = bound_port(fd);
    /* The per-connection pool holds the request line and headers plus MHD's
       read buffer; a request whose headers do not fit is answered 431. */
    size_t pool = o->max_header + 16384;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (tls ? MHD_USE_TLS : 0);
    struct MHD_OptionItem tls_opts[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)o->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->tls_key_pem},
        {o->tls_ca_pem ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, (void *)o->tls_ca_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (h->mhd == NULL) {
        close(fd);
        free(h);
        return eie_error_set(err, tls ? EIE_STATUS_BAD_CONFIG : EIE_STATUS_UNAVAILABLE,
                             "http: cannot serve on %s%s", o->listen,
                             tls ? " (is the TLS certificate and key PEM that match?)" : "");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    int rc = info ? uv_poll_init(loop, &h->poll, info->epoll_fd) : UV_EINVAL;
    if (rc == 0) {
        h->poll.data = h;
        rc = uv_poll_start(&h->poll, UV_READABLE, on_poll);
    }
    if (rc != 0) {
        uv_close((uv_handle_t *)&h->timer, NULL);
        MHD_stop_daemon(h->mhd); /* closes fd */
        free(h);
        return eie_error_set(err, EIE_STATUS_INTERNAL, "http: cannot watch the server: %s",
                             uv_strerror(rc));
    }
    drive(h);
    *out = h;
    return EIE_STATUS_OK;
}

int eied_http_port(const eied_http_t *h) { return h->port; }

size_t eied_http_pending(const eied_http_t *h) { return h->n_pending; }

static void free_after_close(uv_handle_t *handle)
{
    eied_http_t *h = handle->data;
    if (handle == (uv_handle_t *)&h->poll) {
        h->poll.data = NULL;
        uv_close((uv_handle_t *)&h->timer, free_after_close);
        return;
    }
    free(h);
}

void eied_http_stop(eied_http_t *h)
{
    if (h == NULL)
        return;
    h->stopping = true;
    uv_poll_stop(&h->poll);
    uv_timer_stop(&h->timer);
    /* MHD closes only resumed connections; the records stay for a late answer. */
    for (eied_http_req_t *r = h->suspended; r != NULL; r = r->next)
        MHD_resume_connection(r->conn);
    MHD_stop_daemon(h->mhd);
    h->mhd = NULL;
    uv_close((uv_handle_t *)&h->poll, free_after_close);
}

const char *eied_http_method(const eied_http_req_t *r) { return r->method; }

const char *eied_http_path(const eied_http_req_t *r) { return r->path; }

const char *eied_http_header(const eied_http_req_t *r, const char *name)
{
    if (r->conn == NULL)
        return NULL;
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *eied_http_client_names(const eied_http_req_t *r) { return r->names; }

const uint8_t *eied_http_body(const eied_http_req_t *r, size_t *len)
{
    *len = r->len;
    return r->body;
}

void eied_http_respond_with(eied_http_req_t *r, unsigned status, const char *content_type,
                            const void *body, size_t len, const eied_http_header_t *extra,
                            size_t n_extra)
{
    r->answered = true;
    if (r->mhd_done) { /* the client or the server went away meanwhile */
        req_free(r);
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp != NULL) {
        if (content_type != NULL)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        for (size_t i = 0; i < n_extra; i++)
            MHD_add_response_header(resp, extra[i].name, extra[i].value);
    } else {
        resp = text_reply("{\"error\":\"out of memory\"}");
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
    r->reply = resp;
    r->status = status;
    if (r->state == REQ_SUSPENDED) {
        unlink_suspended(r);
        r->http->n_pending--;
        r->state = REQ_HANDLING;
        MHD_resume_connection(r->conn); /* MHD calls on_access again, which queues it */
        /* In external polling MHD picks a resumed connection up on its next run only. */
        uv_timer_start(&r->http->timer, on_timer, 0, 0);
    }
}

void eied_http_respond(eied_http_req_t *r, unsigned status, const char *content_type,
                       const void *body, size_t len)
{
    eied_http_respond_with(r, status, content_type, body, len, NULL, 0);
}
