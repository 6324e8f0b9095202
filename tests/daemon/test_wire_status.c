/* wire_status.c: the one mapping from a status to what a client receives. */
#include <criterion/criterion.h>
#include <string.h>

#include "wire_status.h"

Test(wire_status, every_status_takes_its_grpc_code_from_the_table)
{
    for (int s = 0; s < EIE_STATUS_COUNT_; s++) {
        eie_error_t err = {.status = (eie_status_t)s};
        eied_wire_status_t w = eied_wire_status(&err);
        cr_assert_eq(w.grpc_code, eie_status_grpc_code((eie_status_t)s), "%s",
                     eie_status_name((eie_status_t)s));
        cr_assert(w.http_status >= 200 && w.http_status < 600);
    }
}

Test(wire_status, http_status_follows_the_grpc_code)
{
    struct {
        eie_status_t status;
        int http;
    } rows[] = {
        {EIE_STATUS_OK, 200},
        {EIE_STATUS_INVALID_ARGUMENT, 400},
        {EIE_STATUS_BAD_FORMAT, 400},
        {EIE_STATUS_NOT_FOUND, 404},
        {EIE_STATUS_PERMISSION_DENIED, 403},
        {EIE_STATUS_UNAUTHENTICATED, 401},
        {EIE_STATUS_RESOURCE_EXHAUSTED, 429},
        {EIE_STATUS_LIMIT, 429},
        {EIE_STATUS_FAILED_PRECONDITION, 400},
        {EIE_STATUS_UNAVAILABLE, 503},
        {EIE_STATUS_DEADLINE_EXCEEDED, 504},
        {EIE_STATUS_UNIMPLEMENTED, 501},
        {EIE_STATUS_INTERNAL, 500},
        {EIE_STATUS_IO, 500},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        eie_error_t err = {.status = rows[i].status};
        cr_assert_eq(eied_wire_status(&err).http_status, rows[i].http, "%s",
                     eie_status_name(rows[i].status));
    }
}

Test(wire_status, the_message_is_the_errors_or_else_the_status_text)
{
    eie_error_t err;
    eie_error_set(&err, EIE_STATUS_NOT_FOUND, "model '%s' is not loaded", "m");
    cr_assert_str_eq(eied_wire_status(&err).message, "model 'm' is not loaded");
    eie_error_t bare = {.status = EIE_STATUS_UNAVAILABLE};
    cr_assert_str_eq(eied_wire_status(&bare).message, eie_strerror(EIE_STATUS_UNAVAILABLE));
}
