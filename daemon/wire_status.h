/*
 * wire_status.h - how an error travels to a client. Every part of the
 * daemon reports with eie_status_t + eie_error_t (eie/status.h); this is the
 * one place that turns one into what a front end sends: the gRPC status
 * code (from the status table) and, for an HTTP front end, the HTTP status.
 */
#ifndef EIED_WIRE_STATUS_H
#define EIED_WIRE_STATUS_H

#include "eie/status.h"

typedef struct eied_wire_status {
    int grpc_code;       /* a grpc_status_code */
    int http_status;     /* 200, 400, 404, 429, 503, ... */
    const char *message; /* err's message, or the status's text when it has none */
} eied_wire_status_t;

/* The wire form of err; message points into err or at static text. */
eied_wire_status_t eied_wire_status(const eie_error_t *err);

#endif
