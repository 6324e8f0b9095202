/* Structured, thread-safe event lines on stderr (and the bound addresses on stdout); see
   log.h. */
#include "log.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = EIED_LOG_INFO;
static atomic_int log_format = EIED_LOG_FORMAT_LOGFMT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void eied_log_configure(eied_log_level_t level, eied_log_format_t format)
{
    atomic_store(&log_level, (int)level);
    atomic_store(&log_format, (int)format);
}

bool eied_log_enabled(eied_log_level_t level)
{
    return (int)level >= atomic_load(&log_level);
}

bool eied_log_level_parse(const char *text, eied_log_level_t *level_out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *level_out = (eied_log_level_t)i;
            return true;
        }
    }
    return false;
}

bool eied_log_format_parse(const char *text, eied_log_format_t *format_out)
{
    if (strcmp(text, "logfmt") == 0)
        *format_out = EIED_LOG_FORMAT_LOGFMT;
    else if (strcmp(text, "json") == 0)
        *format_out = EIED_LOG_FORMAT_JSON;
    else
        return false;
    return true;
}

/*
 * Every line stays whole and valid: a value is cut at EIED_LOG_VALUE_MAX
 * bytes with a marker saying how much was dropped (clients choose some
 * values: model names, paths), the fields that follow are dropped with a
 * marker if the line would outgrow its buffer, and room for the closing
 * brace of a JSON line is always kept. Bytes that are not UTF-8 are written
 * as U+FFFD, so a JSON line always parses.
 */
#define LINE_MAX_BYTES 8192
#define LINE_TAIL 64 /* reserved for the drop marker, the closing brace and the newline */

typedef struct {
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool full; /* a field did not fit: the rest of the line is dropped */
} line_t;

static size_t room(const line_t *l)
{
    return sizeof l->buf - LINE_TAIL - l->len;
}

static void put(line_t *l, const char *s, size_t n)
{
    assert(n <= room(l)); /* callers check room() first */
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}

/* The tail that is never refused: markers, "}" and "\n". */
static void put_tail(line_t *l, const char *s)
{
    size_t n = strlen(s);
    assert(l->len + n < sizeof l->buf);
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static bool needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (const char *p = v; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20 ||
            (unsigned char)*p >= 0x80)
            return true;
    return false;
}

/* Length of the well-formed UTF-8 sequence at p (1-4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
               : p[0] >= 0xe0 && p[0] <= 0xef ? 3
               : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 3 && p[0] == 0xed && p[1] >= 0xa0) ||
        (n == 4 && p[0] == 0xf0 && p[1] < 0x90) || (n == 4 && p[0] == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

/* Escapes for both formats; writes at most max bytes of out, returns bytes of v consumed. */
static size_t escape(const char *v, char *out, size_t max, size_t *out_len)
{
    size_t i = 0, o = 0;
    while (v[i] != '\0') {
        unsigned char c = (unsigned char)v[i];
        char esc[8];
        const char *piece = esc;
        size_t plen, consumed = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            plen = 2;
        } else if (c == '\n') {
            piece = "\\n";
            plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            plen = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
        } else if (c < 0x80) {
            esc[0] = (char)c;
            plen = 1;
        } else if ((consumed = utf8_len((const unsigned char *)v + i)) > 0) {
            piece = v + i;
            plen = consumed;
        } else {
            piece = "\xef\xbf\xbd"; /* U+FFFD for a byte that is not UTF-8 */
            plen = 3;
            consumed = 1;
        }
        if (o + plen > max)
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        i += consumed;
    }
    *out_len = o;
    return i;
}

static void put_field(line_t *l, const char *key, const char *value, bool json, bool first)
{
    if (l->full)
        return;
    char k[64], v[EIED_LOG_VALUE_MAX + 64];
    size_t klen, vlen;
    escape(key, k, sizeof k, &klen);
    size_t used = escape(value, v, EIED_LOG_VALUE_MAX, &vlen);
    size_t total = strlen(value);
    if (used < total) {
        int n = snprintf(v + vlen, sizeof v - vlen, "...[%zu bytes cut]", total - used);
        vlen += (size_t)n;
    }
    bool quote = json || needs_quotes(value) || used < total;
    size_t need = klen + vlen + 6;
    if (need > room(l)) {
        l->full = true;
        return;
    }
    if (json) {
        puts_(l, first ? "\"" : ",\"");
        put(l, k, klen);
        puts_(l, "\":");
    } else {
        if (!first)
            puts_(l, " ");
        put(l, k, klen);
        puts_(l, "=");
    }
    if (quote)
        puts_(l, "\"");
    put(l, v, vlen);
    if (quote)
        puts_(l, "\"");
}

/*
 * Repeated lines are rate-limited per message: at most LIMIT_BURST lines of
 * one message per LIMIT_WINDOW_NS; the first line after a quiet window
 * carries how many were suppressed. Keyed by the message text (a small
 * fixed set: messages are string literals), so a flood of refusals costs
 * a counter, not disk.
 */
#define LIMIT_SLOTS 64
#define LIMIT_BURST 20
#define LIMIT_WINDOW_NS 1000000000ull

static struct limit_slot {
    const char *msg;
    uint64_t window_start;
    unsigned count;
    uint64_t suppressed;
} limits[LIMIT_SLOTS];
static pthread_mutex_t limits_lock = PTHREAD_MUTEX_INITIALIZER;

/* True if this line may be written; *suppressed_out: lines dropped before it. */
static bool rate_allow(const char *msg, uint64_t now, uint64_t *suppressed_out)
{
    size_t h = ((uintptr_t)msg >> 4) % LIMIT_SLOTS;
    bool allow = true;
    *suppressed_out = 0;
    pthread_mutex_lock(&limits_lock);
    struct limit_slot *slot = &limits[h];
    if (slot->msg != msg) { /* a collision just restarts the window */
        slot->msg = msg;
        slot->window_start = now;
        slot->count = 0;
        slot->suppressed = 0;
    }
    if (now - slot->window_start >= LIMIT_WINDOW_NS) {
        slot->window_start = now;
        slot->count = 0;
    }
    if (slot->count < LIMIT_BURST) {
        slot->count++;
        *suppressed_out = slot->suppressed;
        slot->suppressed = 0;
    } else {
        slot->suppressed++;
        allow = false;
    }
    pthread_mutex_unlock(&limits_lock);
    return allow;
}

/* Formats one event line and writes it to fd with one write(2). */
static void write_event(int fd, eied_log_level_t level, const char *msg, va_list ap)
{
    bool json = atomic_load(&log_format) == EIED_LOG_FORMAT_JSON;
    struct timespec ts;
    struct tm tm;
    char stamp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t suppressed = 0;
    if (level >= EIED_LOG_WARN &&
        !rate_allow(msg, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, &suppressed))
        return;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);

    static _Thread_local line_t l;
    l.len = 0;
    l.full = false;
    if (json)
        puts_(&l, "{");
    put_field(&l, "ts", stamp, json, true);
    put_field(&l, "level", level_names[level], json, false);
    put_field(&l, "msg", msg, json, false);
    if (suppressed > 0) {
        char count[32];
        snprintf(count, sizeof count, "%llu", (unsigned long long)suppressed);
        put_field(&l, "suppressed", count, json, false);
    }
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (key == NULL)
            break;
        const char *value = va_arg(ap, const char *);
        put_field(&l, key, value != NULL ? value : "", json, false);
    }
    if (l.full)
        put_tail(&l, json ? ",\"cut\":true" : " cut=true");
    if (json)
        put_tail(&l, "}");
    put_tail(&l, "\n");
    ssize_t rc = write(fd, l.buf, l.len);
    (void)rc; /* nowhere to report a failed log write */
}

static void log_to(int fd, eied_log_level_t level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    write_event(fd, level, msg, ap);
    va_end(ap);
}

void eied_log(eied_log_level_t level, const char *msg, ...)
{
    if (!eied_log_enabled(level))
        return;
    va_list ap;
    va_start(ap, msg);
    write_event(STDERR_FILENO, level, msg, ap);
    va_end(ap);
}

void eied_log_announce(const char *what, const char *addr)
{
    char msg[64];
    snprintf(msg, sizeof msg, "%s on", what);
    if (atomic_load(&log_format) == EIED_LOG_FORMAT_JSON) {
        log_to(STDOUT_FILENO, EIED_LOG_INFO, msg, "addr", addr, NULL);
        return;
    }
    char line[EIED_LOG_VALUE_MAX + 80];
    int n = snprintf(line, sizeof line, "%s %s\n", msg, addr);
    ssize_t rc = write(STDOUT_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    (void)rc;
}
