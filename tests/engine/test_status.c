#include <criterion/criterion.h>
#include <string.h>

#include "eie/status.h"

Test(status, every_status_has_name_text_and_grpc_code)
{
    for (int s = 0; s < EIE_STATUS_COUNT_; s++) {
        cr_assert_neq(strcmp(eie_status_name((eie_status_t)s), "UNKNOWN"), 0);
        cr_assert_neq(strcmp(eie_strerror((eie_status_t)s), "unknown status"), 0);
        int code = eie_status_grpc_code((eie_status_t)s);
        cr_assert(code >= 0 && code <= 16, "status %d maps to gRPC code %d", s, code);
    }
}

Test(status, maps_to_the_grpc_codes_servers_use)
{
    cr_assert_eq(eie_status_grpc_code(EIE_STATUS_OK), 0);
    cr_assert_eq(eie_status_grpc_code(EIE_STATUS_NOT_FOUND), 5);
    cr_assert_eq(eie_status_grpc_code(EIE_STATUS_INVALID_ARGUMENT), 3);
    cr_assert_eq(eie_status_grpc_code(EIE_STATUS_UNAVAILABLE), 14);
    cr_assert_eq(eie_status_grpc_code(EIE_STATUS_DEADLINE_EXCEEDED), 4);
    cr_assert_eq(eie_status_grpc_code(EIE_STATUS_RESOURCE_EXHAUSTED), 8);
    cr_assert_eq(eie_status_grpc_code(EIE_STATUS_BAD_FORMAT), 3);
}

Test(status, out_of_range_is_unknown_not_a_crash)
{
    cr_assert_str_eq(eie_status_name((eie_status_t)999), "UNKNOWN");
    cr_assert_str_eq(eie_strerror((eie_status_t)-1), "unknown status");
    cr_assert_eq(eie_status_grpc_code((eie_status_t)999), 2);
}

Test(status, error_set_and_prefix_build_one_message)
{
    eie_error_t err;
    cr_assert_eq(eie_error_set(&err, EIE_STATUS_BAD_FORMAT, "field %s at byte %d", "rows", 12),
                 EIE_STATUS_BAD_FORMAT);
    eie_error_prefix(&err, "layer %d: ", 2);
    cr_assert_str_eq(err.msg, "layer 2: field rows at byte 12");
    cr_assert_eq(err.status, EIE_STATUS_BAD_FORMAT);
    cr_assert_eq(eie_error_set(NULL, EIE_STATUS_IO, "x"), EIE_STATUS_IO);
}
