/*
 * eie/status.h - the one status table of the project.
 *
 * Every error the engine, the daemon and the CLI can report is a row of
 * EIE_STATUS_MAP: the enum, eie_strerror() and the mapping to gRPC status
 * codes are all generated from it, so error translation lives in one place
 * (the habit of libuv's UV_ERRNO_MAP).
 */
#ifndef EIE_STATUS_H
#define EIE_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, gRPC status code, description) */
#define EIE_STATUS_MAP(X)                                                      \
    X(OK, 0, "ok")                                                             \
    X(CANCELLED, 1, "cancelled")                                               \
    X(INVALID_ARGUMENT, 3, "invalid argument")                                 \
    X(DEADLINE_EXCEEDED, 4, "deadline exceeded")                               \
    X(NOT_FOUND, 5, "not found")                                               \
    X(ALREADY_EXISTS, 6, "already exists")                                     \
    X(PERMISSION_DENIED, 7, "permission denied")                               \
    X(RESOURCE_EXHAUSTED, 8, "resource exhausted")                             \
    X(FAILED_PRECONDITION, 9, "failed precondition")                           \
    X(UNIMPLEMENTED, 12, "unimplemented")                                      \
    X(INTERNAL, 13, "internal error")                                          \
    X(UNAVAILABLE, 14, "unavailable")                                          \
    X(UNAUTHENTICATED, 16, "unauthenticated")                                  \
    X(IO, 13, "i/o error")                                                     \
    X(NO_MEMORY, 8, "out of memory")                                           \
    X(BAD_FORMAT, 3, "malformed file")                                         \
    X(BAD_CHECKSUM, 3, "checksum mismatch")                                    \
    X(UNSUPPORTED, 12, "unsupported")                                          \
    X(LIMIT, 8, "limit exceeded")                                              \
    X(BAD_CONFIG, 3, "bad configuration")

typedef enum {
#define EIE_STATUS_ENUM_(name, code, text) EIE_STATUS_##name,
    EIE_STATUS_MAP(EIE_STATUS_ENUM_)
#undef EIE_STATUS_ENUM_
    EIE_STATUS_COUNT_
} eie_status_t;

/* Short text for a status; never NULL, static storage. */
const char *eie_strerror(eie_status_t status);

/* The enum's name without prefix ("INVALID_ARGUMENT"); never NULL. */
const char *eie_status_name(eie_status_t status);

/* The gRPC status code (grpc_status_code value) that answers this status. */
int eie_status_grpc_code(eie_status_t status);

/* The name of a gRPC status code ("NOT_FOUND"); "UNKNOWN" outside 0..16. Static storage. */
const char *eie_grpc_code_name(int code);

/*
 * An error with the detail a user needs: which file, layer, field, byte
 * offset, tensor or value was wrong. Functions that can fail take an
 * eie_error_t *err_out (may be NULL) and fill it when they return non-OK.
 */
#define EIE_ERROR_MSG_MAX 512
typedef struct eie_error {
    eie_status_t status;
    char msg[EIE_ERROR_MSG_MAX];
} eie_error_t;

/* Fills err (if not NULL) with status and a printf-style message; returns status. */
eie_status_t eie_error_set(eie_error_t *err, eie_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with more context ("layer 2: " + msg). */
void eie_error_prefix(eie_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
