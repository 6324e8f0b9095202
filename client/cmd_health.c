/* eiectl health: grpc.health.v1.Health/Check; exit 0 only on SERVING. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eiectl.h"
#include "health.pb-c.h"
#include "remote.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: eiectl health [--addr HOST:PORT] [--service NAME] [--timeout SECONDS]\n"
                 "                     [--tls] [--ca FILE] [--cert FILE --key FILE]\n\n"
                 "Asks eied's grpc.health.v1 service for a status and prints it.\n"
                 "Exit status: 0 SERVING, 1 anything else (NOT_SERVING, unreachable, error).\n\n"
                 "  -a, --addr HOST:PORT   daemon address (default 127.0.0.1:8001)\n"
                 "  -s, --service NAME     \"\" (default), liveness or readiness\n"
                 "  -t, --timeout SECONDS  deadline of the call (default 5)\n" EIECTL_TLS_HELP);
}

int eiectl_cmd_health(int argc, char **argv)
{
    static const struct option opts[] = {
        {"addr", required_argument, NULL, 'a'},    {"service", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        EIECTL_TLS_LONG_OPTS,                      {NULL, 0, NULL, 0},
    };
    eiectl_remote_opts_t ro;
    eiectl_remote_opts_init(&ro);
    ro.timeout_s = 5.0;
    const char *service = "";
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "a:s:t:h", opts, NULL)) != -1) {
        int r = eiectl_remote_opt("health", opt, optarg, &ro);
        if (r == 2)
            return 2;
        if (r == 1)
            continue;
        switch (opt) {
        case 's':
            service = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc)
        return eiectl_usage_error("health", "unexpected argument '%s'", argv[optind]);

    eiectl_rpc_t rpc;
    if (!eiectl_remote_open("health", &ro, &rpc))
        return 1;
    const char *addr = ro.addr;
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)service;
    ProtobufCMessage *resp = NULL;
    eiectl_rpc_status_t st;
    int rc = 1;
    if (eiectl_rpc_call(&rpc, "/grpc.health.v1.Health/Check", &req.base,
                        &grpc__health__v1__health_check_response__descriptor, &resp, &st)) {
        Grpc__Health__V1__HealthCheckResponse *r = (Grpc__Health__V1__HealthCheckResponse *)resp;
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            &grpc__health__v1__health_check_response__serving_status__descriptor, (int)r->status);
        printf("%s\n", v != NULL ? v->name : "UNKNOWN");
        rc = r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0 : 1;
        protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        fprintf(stderr, "eiectl health: %s: %s%s%s\n", addr, eiectl_rpc_code_name(st.code),
                st.detail[0] ? ": " : "", st.detail);
    }
    eiectl_rpc_close(&rpc);
    return rc;
}
