/* The status table's generated functions; see eie/status.h. */
#include "eie/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *text;
    int grpc_code;
} status_table[] = {
#define EIE_STATUS_ROW_(name, code, text) [EIE_STATUS_##name] = {#name, text, code},
    EIE_STATUS_MAP(EIE_STATUS_ROW_)
#undef EIE_STATUS_ROW_
};

static int status_valid(eie_status_t status)
{
    return (int)status >= 0 && status < EIE_STATUS_COUNT_;
}

const char *eie_strerror(eie_status_t status)
{
    return status_valid(status) ? status_table[status].text : "unknown status";
}

const char *eie_status_name(eie_status_t status)
{
    return status_valid(status) ? status_table[status].name : "UNKNOWN";
}

int eie_status_grpc_code(eie_status_t status)
{
    return status_valid(status) ? status_table[status].grpc_code : 2 /* UNKNOWN */;
}

eie_status_t eie_error_set(eie_error_t *err, eie_status_t status, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->status = status;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

void eie_error_prefix(eie_error_t *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char prefix[EIE_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    size_t plen = (size_t)n < sizeof prefix ? (size_t)n : sizeof prefix - 1;
    size_t room = sizeof err->msg - 1;
    if (plen > room)
        plen = room;
    /* shift the old message right (truncating its tail), then put the prefix in front */
    size_t old_len = strnlen(err->msg, sizeof err->msg - 1);
    if (old_len > room - plen)
        old_len = room - plen;
    memmove(err->msg + plen, err->msg, old_len);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + old_len] = '\0';
}

const char *eie_grpc_code_name(int code)
{
    static const char *const names[] = {
        "OK",        "CANCELLED",          "UNKNOWN",           "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS",    "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",       "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if (code < 0 || (size_t)code >= sizeof names / sizeof names[0])
        return "UNKNOWN";
    return names[code];
}
