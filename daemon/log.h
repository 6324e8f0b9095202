/*
 * log.h - one line per event on stderr, logfmt (default) or JSON:
 *   ts=2026-11-28T21:40:00.123Z level=info msg="listening" addr=127.0.0.1:8001
 * Thread-safe: each line is formatted in full and written with one write(2).
 * Lines stay whole and valid (values are cut with a marker, never the line);
 * warnings and errors are rate-limited per message (see log.c).
 */
#ifndef EIED_LOG_H
#define EIED_LOG_H

#include <stdbool.h>

typedef enum {
    EIED_LOG_DEBUG = 0,
    EIED_LOG_INFO = 1,
    EIED_LOG_WARN = 2,
    EIED_LOG_ERROR = 3,
} eied_log_level_t;

typedef enum {
    EIED_LOG_FORMAT_LOGFMT = 0,
    EIED_LOG_FORMAT_JSON = 1,
} eied_log_format_t;

/* Sets the minimum level and the line format (process-wide). */
void eied_log_configure(eied_log_level_t level, eied_log_format_t format);

/* True if a line at level would be written. */
bool eied_log_enabled(eied_log_level_t level);

/* Longest value written; longer ones are cut with a marker ("...[N bytes cut]"). */
#define EIED_LOG_VALUE_MAX 512

/*
 * Writes one event: msg, then key/value pairs given as a NULL-terminated list
 * of alternating const char * keys and values:
 *   eied_log(EIED_LOG_INFO, "listening", "addr", addr, NULL);
 */
void eied_log(eied_log_level_t level, const char *msg, ...);

/*
 * Prints where a port listens on stdout, for scripts and tests that start eied
 * on port 0: "listening on 127.0.0.1:40123" (what: "listening", "metrics",
 * "health"); with log_format json the same as one JSON line,
 *   {"ts":"...","level":"info","msg":"listening on","addr":"127.0.0.1:40123"}
 * so every line eied writes parses as JSON.
 */
void eied_log_announce(const char *what, const char *addr);

/* Parses "debug|info|warn|error" or "logfmt|json"; false if unknown. */
bool eied_log_level_parse(const char *text, eied_log_level_t *level_out);
bool eied_log_format_parse(const char *text, eied_log_format_t *format_out);

#endif
