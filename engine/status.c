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
    char old[EIE_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Joined in a buffer big enough for both, then cut to the message size:
     * GCC's -Wformat-truncation rejects a direct snprintf into msg. */
    char joined[2 * EIE_ERROR_MSG_MAX];
    snprintf(joined, sizeof joined, "%s%s", prefix, old);
    memcpy(err->msg, joined, sizeof err->msg - 1);
    err->msg[sizeof err->msg - 1] = '\0';
}
