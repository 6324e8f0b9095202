#define _GNU_SOURCE /* strcasestr */
/*
 * The daemon's HTTP layer (daemon/http.c) on 127.0.0.1:0: a libuv loop in
 * the test thread, a client thread speaking raw HTTP/1.1 over sockets, so
 * every byte on the wire is the test's own.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"

typedef struct {
    uv_loop_t loop;
    uv_async_t done;
    eied_http_t *http;
    int port;
    void (*client)(void *);
    eied_http_req_t *held; /* a request answered later by the test */
    uv_timer_t later;
    int answered_late;
} fixture_t;

static fixture_t fx;

static void answer_later(uv_timer_t *t)
{
    (void)t;
    if (fx.held != NULL) {
        eied_http_respond(fx.held, 202, "text/plain", "late\n", 5);
        fx.held = NULL;
        fx.answered_late++;
    }
}

static void handle(void *ctx, eied_http_req_t *req)
{
    (void)ctx;
    const char *path = eied_http_path(req);
    size_t len;
    const uint8_t *body = eied_http_body(req, &len);
    if (strcmp(path, "/echo") == 0) {
        char head[64];
        snprintf(head, sizeof head, "%s %zu:", eied_http_method(req), len);
        char out[8192];
        size_t hl = strlen(head);
        cr_assert_lt(hl + len, sizeof out);
        memcpy(out, head, hl);
        if (len > 0)
            memcpy(out + hl, body, len);
        eied_http_header_t extra[] = {{"X-Seen", eied_http_header(req, "x-probe")
                                                     ? eied_http_header(req, "x-probe")
                                                     : "none"}};
        eied_http_respond_with(req, 200, "text/plain", out, hl + len, extra, 1);
    } else if (strcmp(path, "/later") == 0 || strcmp(path, "/abandoned") == 0) {
        fx.held = req; /* answered from a timer: the connection waits suspended */
        uv_timer_start(&fx.later, answer_later, strcmp(path, "/later") == 0 ? 30 : 300, 0);
    } else {
        eied_http_respond(req, 404, "application/json", "{\"error\":\"no such path\"}", 24);
    }
}

static void on_done(uv_async_t *a)
{
    (void)a;
    eied_http_stop(fx.http);
    uv_close((uv_handle_t *)&fx.done, NULL);
    uv_timer_stop(&fx.later);
    uv_close((uv_handle_t *)&fx.later, NULL);
}

static void *client_main(void *arg)
{
    (void)arg;
    fx.client(NULL);
    uv_async_send(&fx.done);
    return NULL;
}

/* Serves with opts while client runs in its own thread; returns when it is done. */
static void serve(eied_http_opts_t o, void (*client)(void *))
{
    memset(&fx, 0, sizeof fx);
    cr_assert_eq(uv_loop_init(&fx.loop), 0);
    uv_async_init(&fx.loop, &fx.done, on_done);
    uv_timer_init(&fx.loop, &fx.later);
    o.listen = "127.0.0.1:0";
    eie_error_t err;
    cr_assert_eq(eied_http_start(&fx.loop, &o, handle, NULL, &fx.http, &err), EIE_STATUS_OK,
                 "%s", err.msg);
    fx.port = eied_http_port(fx.http);
    cr_assert_gt(fx.port, 0);
    fx.client = client;
    pthread_t t;
    pthread_create(&t, NULL, client_main, NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    pthread_join(t, NULL);
    if (fx.held != NULL) /* the handler answers after stop: dropped, freed */
        eied_http_respond(fx.held, 200, "text/plain", "x", 1);
    cr_assert_eq(uv_loop_close(&fx.loop), 0, "a handle was left open");
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fx.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close early (413): what it said is read next */
        s += w;
        n -= (size_t)w;
    }
}

/* Reads until the server closes (or 10 s pass); returns the bytes read. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

/* Reads exactly one response whose body length is given by Content-Length. */
static void read_one(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    char *end = NULL;
    while (n + 1 < cap) {
        ssize_t r = recv(fd, buf + n, 1, 0);
        cr_assert_gt(r, 0, "connection closed inside a response: %.*s", (int)n, buf);
        n++;
        buf[n] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) != NULL)
            break;
    }
    const char *cl = strcasestr(buf, "content-length:");
    cr_assert_not_null(cl, "%s", buf);
    size_t body = strtoul(cl + 15, NULL, 10);
    while (body > 0 && n + 1 < cap) {
        ssize_t r = recv(fd, buf + n, body, 0);
        cr_assert_gt(r, 0);
        n += (size_t)r;
        body -= (size_t)r;
    }
    buf[n] = '\0';
}

static char resp[1 << 16];

static void client_keepalive(void *u)
{
    (void)u;
    int fd = dial();
    const char *a = "POST /echo HTTP/1.1\r\nHost: x\r\nX-Probe: one\r\nContent-Length: 5\r\n\r\nhello";
    send_all(fd, a, strlen(a));
    read_one(fd, resp, sizeof resp);
    cr_assert(strstr(resp, "HTTP/1.1 200") == resp, "%s", resp);
    cr_assert_not_null(strstr(resp, "POST 5:hello"), "%s", resp);
    cr_assert_not_null(strcasestr(resp, "X-Seen: one"), "%s", resp);
    /* the same connection again, a chunked body this time */
    const char *b = "PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    send_all(fd, b, strlen(b));
    read_one(fd, resp, sizeof resp);
    cr_assert_not_null(strstr(resp, "PUT 5:abcde"), "%s", resp);
    cr_assert_not_null(strcasestr(resp, "X-Seen: none"), "%s", resp);
    const char *c = "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, c, strlen(c));
    read_all(fd, resp, sizeof resp);
    cr_assert(strstr(resp, "HTTP/1.1 404") == resp, "%s", resp);
    cr_assert_not_null(strstr(resp, "{\"error\":\"no such path\"}"), "%s", resp);
    close(fd);
}

Test(http, requests_on_one_keepalive_connection_with_plain_and_chunked_bodies)
{
    serve(eied_http_opts_default(), client_keepalive);
}

static void client_later(void *u)
{
    (void)u;
    int fd = dial();
    const char *a = "GET /later HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, a, strlen(a));
    read_one(fd, resp, sizeof resp);
    cr_assert(strstr(resp, "HTTP/1.1 202") == resp, "%s", resp);
    cr_assert_not_null(strstr(resp, "late\n"), "%s", resp);
    /* the connection is usable after a suspended request */
    const char *b = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, b, strlen(b));
    read_all(fd, resp, sizeof resp);
    cr_assert_not_null(strstr(resp, "GET 0:"), "%s", resp);
    close(fd);
}

Test(http, a_reply_given_later_reaches_the_client_and_the_connection_goes_on)
{
    serve(eied_http_opts_default(), client_later);
    cr_assert_eq(fx.answered_late, 1);
}

static void client_abandons(void *u)
{
    (void)u;
    int fd = dial();
    const char *a = "GET /abandoned HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, a, strlen(a));
    usleep(50 * 1000);
    close(fd); /* gone before the answer (300 ms) */
    usleep(500 * 1000);
}

Test(http, a_client_gone_before_a_late_reply_costs_nothing)
{
    serve(eied_http_opts_default(), client_abandons); /* ASan/LSan check the rest */
    cr_assert_eq(fx.answered_late, 1);
}

static void client_stop_while_waiting(void *u)
{
    (void)u;
    int fd = dial();
    const char *a = "GET /abandoned HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, a, strlen(a));
    usleep(50 * 1000); /* the request is suspended when the server stops */
    close(fd);
}

Test(http, stop_with_a_request_waiting_then_its_late_answer_is_dropped)
{
    serve(eied_http_opts_default(), client_stop_while_waiting);
    cr_assert_eq(fx.answered_late, 0); /* serve() answered it after stop */
}

static void client_big_declared(void *u)
{
    (void)u;
    int fd = dial();
    const char *a = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n";
    send_all(fd, a, strlen(a)); /* no body is sent: the answer must not wait for it */
    read_all(fd, resp, sizeof resp);
    cr_assert(strstr(resp, "HTTP/1.1 413") == resp, "%s", resp);
    cr_assert_not_null(strstr(resp, "http_max_body"), "%s", resp);
    close(fd);
}

Test(http, a_declared_body_over_the_limit_is_refused_unread)
{
    eied_http_opts_t o = eied_http_opts_default();
    o.max_body = 1 << 20;
    serve(o, client_big_declared);
}

static void client_big_chunked(void *u)
{
    (void)u;
    int fd = dial();
    const char *a = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(fd, a, strlen(a));
    char chunk[4096 + 16];
    memset(chunk, 'z', sizeof chunk);
    int h = snprintf(chunk, sizeof chunk, "1000\r\n");
    memcpy(chunk + h + 4096, "\r\n", 2);
    for (int i = 0; i < 3; i++)
        send_all(fd, chunk, (size_t)h + 4096 + 2);
    send_all(fd, "0\r\n\r\n", 5);
    read_all(fd, resp, sizeof resp);
    cr_assert(strstr(resp, "HTTP/1.1 413") == resp, "%s", resp);
    close(fd);
}

Test(http, a_chunked_body_over_the_limit_is_refused)
{
    eied_http_opts_t o = eied_http_opts_default();
    o.max_body = 10000;
    serve(o, client_big_chunked);
}

static void client_big_headers(void *u)
{
    (void)u;
    int fd = dial();
    static char req[64 << 10];
    int n = snprintf(req, sizeof req, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + n, 'h', 40000);
    n += 40000;
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n\r\n");
    send_all(fd, req, (size_t)n);
    read_all(fd, resp, sizeof resp);
    cr_assert(strstr(resp, "HTTP/1.1 431") == resp || strstr(resp, "HTTP/1.1 413") == resp,
              "%.200s", resp);
    close(fd);
}

Test(http, headers_over_the_limit_are_refused)
{
    serve(eied_http_opts_default(), client_big_headers);
}

static void client_limit(void *u)
{
    (void)u;
    int a = dial(), b = dial();
    usleep(100 * 1000);
    int c = dial(); /* over the limit: left in the backlog, not read */
    const char *q = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(c, q, strlen(q));
    struct timeval short_wait = {.tv_usec = 300 * 1000};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof short_wait);
    cr_assert_eq(read_all(c, resp, sizeof resp), 0, "served over the limit: %s", resp);
    struct timeval long_wait = {.tv_sec = 10};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &long_wait, sizeof long_wait);
    close(a); /* room again: c is taken from the backlog and served */
    read_all(c, resp, sizeof resp);
    cr_assert(strstr(resp, "HTTP/1.1 200") == resp, "%s", resp);
    close(c);
    close(b);
    int d = dial();
    send_all(d, q, strlen(q));
    read_all(d, resp, sizeof resp);
    cr_assert(strstr(resp, "HTTP/1.1 200") == resp, "%s", resp);
    close(d);
}

Test(http, connections_over_the_limit_wait_until_room_comes_back)
{
    eied_http_opts_t o = eied_http_opts_default();
    o.max_connections = 2;
    serve(o, client_limit);
}

Test(http, bad_listen_addresses_are_named)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    eied_http_opts_t o = eied_http_opts_default();
    const char *bad[] = {"8000", "127.0.0.1:http", "127.0.0.1:70000", "no.such.host.invalid:1"};
    for (size_t i = 0; i < 4; i++) {
        eied_http_t *h = NULL;
        eie_error_t err;
        o.listen = bad[i];
        cr_assert_neq(eied_http_start(&loop, &o, handle, NULL, &h, &err), EIE_STATUS_OK);
        cr_assert_null(h);
        cr_assert_not_null(strstr(err.msg, bad[i]), "%s", err.msg);
    }
    o.listen = "127.0.0.1:0";
    o.tls_cert_pem = "not a certificate";
    eied_http_t *h = NULL;
    eie_error_t err;
    cr_assert_neq(eied_http_start(&loop, &o, handle, NULL, &h, &err), EIE_STATUS_OK);
    cr_assert_not_null(strstr(err.msg, "key"), "%s", err.msg);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char buf[2][8192];
    static int which;
    char *b = buf[which++ % 2];
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

static char tls_dir[64];

static void client_tls(void *u)
{
    (void)u;
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "curl -sS --max-time 10 --cacert %s/cert.pem --data-binary hello "
             "https://127.0.0.1:%d/echo 2>&1",
             tls_dir, fx.port);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(resp, 1, sizeof resp - 1, p);
    resp[n] = '\0';
    pclose(p);
    cr_assert_str_eq(resp, "POST 5:hello", "curl said: %s", resp);
    /* plaintext on the TLS port gets no HTTP answer */
    int fd = dial();
    const char *q = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, q, strlen(q));
    read_all(fd, resp, sizeof resp);
    cr_assert_null(strstr(resp, "HTTP/1.1 200"), "%s", resp);
    close(fd);
}

Test(http, tls_serves_https_and_refuses_plaintext)
{
    snprintf(tls_dir, sizeof tls_dir, "/tmp/eie-http-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(tls_dir));
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout %s/key.pem -out %s/cert.pem -days 2 -subj /CN=localhost "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             tls_dir, tls_dir);
    cr_assert_eq(system(cmd), 0, "openssl could not make a certificate");
    char path[128];
    eied_http_opts_t o = eied_http_opts_default();
    snprintf(path, sizeof path, "%s/cert.pem", tls_dir);
    o.tls_cert_pem = slurp(path);
    snprintf(path, sizeof path, "%s/key.pem", tls_dir);
    o.tls_key_pem = slurp(path);
    serve(o, client_tls);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tls_dir);
    cr_assert_eq(system(cmd), 0);
}
