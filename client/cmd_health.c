/* eiectl health: grpc.health.v1.Health/Check against a daemon. */
#include <stdio.h>

#include "eiectl.h"

int eiectl_cmd_health(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "eiectl health: not built yet\n");
    return 1;
}
