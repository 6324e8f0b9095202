/* The one mapping from a status to what a client receives; see wire_status.h. */
#include "wire_status.h"

/* The HTTP status for a gRPC code: the table of google/rpc/code.proto (as grpc-gateway and
   KServe's REST front ends use it). */
static int http_status_of(int grpc_code)
{
    switch (grpc_code) {
    case 0: /* OK */
        return 200;
    case 1: /* CANCELLED */
        return 499;
    case 3:  /* INVALID_ARGUMENT */
    case 9:  /* FAILED_PRECONDITION */
    case 11: /* OUT_OF_RANGE */
        return 400;
    case 4: /* DEADLINE_EXCEEDED */
        return 504;
    case 5: /* NOT_FOUND */
        return 404;
    case 6:  /* ALREADY_EXISTS */
    case 10: /* ABORTED */
        return 409;
    case 7: /* PERMISSION_DENIED */
        return 403;
    case 8: /* RESOURCE_EXHAUSTED */
        return 429;
    case 12: /* UNIMPLEMENTED */
        return 501;
    case 14: /* UNAVAILABLE */
        return 503;
    case 16: /* UNAUTHENTICATED */
        return 401;
    default: /* UNKNOWN, INTERNAL, DATA_LOSS */
        return 500;
    }
}

eied_wire_status_t eied_wire_status(const eie_error_t *err)
{
    eied_wire_status_t w;
    w.grpc_code = eie_status_grpc_code(err->status);
    w.http_status = http_status_of(w.grpc_code);
    w.message = err->msg[0] != '\0' ? err->msg : eie_strerror(err->status);
    return w;
}
