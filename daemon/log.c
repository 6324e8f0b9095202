/* Structured, thread-safe event lines on stderr; see log.h. */
#include "log.h"

#include <stdarg.h>
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

/* A bounded line buffer; output past the end is dropped, never overflowed. */
typedef struct {
    char buf[2048];
    size_t len;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - 2 - l->len; /* keep room for "\n\0" */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}

static bool needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (const char *p = v; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20)
            return true;
    return false;
}

/* Escapes for both formats: quotes, backslashes and control characters. */
static void put_escaped(line_t *l, const char *v)
{
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(l, esc, 2);
        } else if (c == '\n') {
            puts_(l, "\\n");
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            puts_(l, esc);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
}

static void put_value(line_t *l, const char *v, bool json)
{
    if (json || needs_quotes(v)) {
        puts_(l, "\"");
        put_escaped(l, v);
        puts_(l, "\"");
    } else {
        puts_(l, v);
    }
}

static void put_field(line_t *l, const char *key, const char *value, bool json, bool first)
{
    if (json) {
        puts_(l, first ? "\"" : ",\"");
        put_escaped(l, key);
        puts_(l, "\":");
    } else {
        if (!first)
            puts_(l, " ");
        puts_(l, key);
        puts_(l, "=");
    }
    put_value(l, value, json);
}

void eied_log(eied_log_level_t level, const char *msg, ...)
{
    if (!eied_log_enabled(level))
        return;
    bool json = atomic_load(&log_format) == EIED_LOG_FORMAT_JSON;
    struct timespec ts;
    struct tm tm;
    char stamp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);

    line_t l = {.len = 0};
    if (json)
        puts_(&l, "{");
    put_field(&l, "ts", stamp, json, true);
    put_field(&l, "level", level_names[level], json, false);
    put_field(&l, "msg", msg, json, false);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (key == NULL)
            break;
        const char *value = va_arg(ap, const char *);
        put_field(&l, key, value != NULL ? value : "", json, false);
    }
    va_end(ap);
    if (json)
        puts_(&l, "}");
    l.buf[l.len++] = '\n';
    ssize_t rc = write(STDERR_FILENO, l.buf, l.len);
    (void)rc; /* nowhere to report a failed log write */
}
