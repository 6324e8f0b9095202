#include "conv_bench.h"

#include <stdio.h>

int conv_bench_main(int reps, int cold, double warm_us, long flush_mb, const char *methods)
{
    fprintf(stderr, "eie-bench: --conv: not built yet\n");
    return 1;
}
