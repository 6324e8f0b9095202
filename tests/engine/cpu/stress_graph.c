/*
 * Concurrency stress of the cpu backend's graph executor without criterion
 * (so that tests/tsan.sh can run it under ThreadSanitizer): several threads
 * run one graph net (two inputs, four outputs, convolutions over several
 * PEs) at once while asynchronous submits overlap them, on 1, 2, 3 and 7
 * PEs. Every output must equal, bit for bit, a run made alone. Exit 0 when
 * all match.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include "../format/graph_helpers.h"

#define THREADS 3
#define RUNS 12
#define ASYNC 8
#define BATCH 3
#define MAX_IO 8

static eie_net_t *net;
static size_t n_in, n_out;
static float *in[MAX_IO], *expect[MAX_IO];
static size_t out_n[MAX_IO];
static atomic_int failures, done_count;

typedef struct outs {
    float *y[MAX_IO];
} outs_t;

static int outs_alloc(outs_t *o)
{
    for (size_t i = 0; i < n_out; i++)
        if ((o->y[i] = calloc(out_n[i], sizeof(float))) == NULL)
            return -1;
    return 0;
}

static int outs_match(const outs_t *o)
{
    for (size_t i = 0; i < n_out; i++)
        if (memcmp(o->y[i], expect[i], out_n[i] * sizeof(float)) != 0)
            return 0;
    return 1;
}

static void outs_free(outs_t *o)
{
    for (size_t i = 0; i < n_out; i++)
        free(o->y[i]);
}

static void *runner(void *arg)
{
    (void)arg;
    for (int r = 0; r < RUNS; r++) {
        outs_t o = {0};
        eie_error_t err;
        if (outs_alloc(&o) != 0 ||
            eie_net_run_multi(net, (const float *const *)in, BATCH, o.y, NULL, &err) !=
                EIE_STATUS_OK ||
            !outs_match(&o))
            atomic_fetch_add(&failures, 1);
        outs_free(&o);
    }
    return NULL;
}

static void on_done(void *user, eie_status_t status, const eie_run_info_t *info,
                    const eie_error_t *err)
{
    outs_t *o = user;
    (void)info;
    (void)err;
    if (status != EIE_STATUS_OK || !outs_match(o))
        atomic_fetch_add(&failures, 1);
    atomic_fetch_add(&done_count, 1);
}

/* A convolution big enough that its runs go parallel over the PEs (cpu/graph.c). */
static eie_model_t *wide_conv(void)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 9;
    eie_shape_t s = th_shape4(-1, 128, 16, 16);
    eie_conv2d_params_t p = {.kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1,
                             .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
                             .dilation_h = 1, .dilation_w = 1, .groups = 2};
    if (eie_builder_init_graph("wide", "", &b, &err) != EIE_STATUS_OK)
        return NULL;
    eie_model_t *m = NULL;
    if (eie_builder_add_input(b, "x", EIE_DTYPE_FP32, &s, &err) == EIE_STATUS_OK &&
        th_conv(b, "x", "y", 40, p, 0.2, EIE_STORAGE_SHARED, &seed, &err) == EIE_STATUS_OK &&
        eie_builder_add_output(b, "y", &err) == EIE_STATUS_OK)
        m = th_load_builder(b);
    eie_builder_free(b);
    return m;
}

static int stress(eie_model_t *m)
{
    static const unsigned pes[] = {1, 2, 3, 7};
    eie_error_t err;
    n_in = eie_model_input_count(m);
    n_out = eie_model_output_count(m);
    uint64_t seed = 3;
    for (size_t i = 0; i < n_in; i++) {
        eie_tensor_info_t ti;
        eie_model_input_info(m, i, &ti);
        size_t n = eie_shape_sample_elements(&ti.shape) * BATCH;
        in[i] = malloc(n * sizeof(float));
        th_random_input(in[i], n, 0.7, &seed);
    }
    for (size_t i = 0; i < n_out; i++) {
        eie_tensor_info_t ti;
        eie_model_output_info(m, i, &ti);
        out_n[i] = eie_shape_sample_elements(&ti.shape) * BATCH;
        expect[i] = calloc(out_n[i], sizeof(float));
    }
    for (size_t p = 0; p < sizeof pes / sizeof pes[0]; p++) {
        eie_engine_opts_t o = eie_engine_opts_default();
        o.n_pes = pes[p];
        eie_engine_t *e;
        if (eie_engine_init(&o, &e, &err) != EIE_STATUS_OK ||
            eie_net_init(e, m, &net, &err) != EIE_STATUS_OK ||
            eie_net_run_multi(net, (const float *const *)in, BATCH, expect, NULL, &err) !=
                EIE_STATUS_OK) {
            fprintf(stderr, "%u PEs: %s\n", pes[p], err.msg);
            return 1;
        }
        atomic_store(&done_count, 0);
        outs_t async[ASYNC];
        memset(async, 0, sizeof async);
        pthread_t t[THREADS];
        for (int k = 0; k < THREADS; k++)
            pthread_create(&t[k], NULL, runner, NULL);
        for (int k = 0; k < ASYNC; k++)
            if (outs_alloc(&async[k]) != 0 ||
                eie_net_submit_multi(net, (const float *const *)in, BATCH, async[k].y, on_done,
                                     &async[k], &err) != EIE_STATUS_OK) {
                atomic_fetch_add(&failures, 1);
                atomic_fetch_add(&done_count, 1);
            }
        for (int k = 0; k < THREADS; k++)
            pthread_join(t[k], NULL);
        while (atomic_load(&done_count) < ASYNC)
            sched_yield();
        for (int k = 0; k < ASYNC; k++)
            outs_free(&async[k]);
        eie_net_free(net);
        eie_engine_free(e);
        printf("%u PEs: %d failures so far\n", pes[p], atomic_load(&failures));
    }
    for (size_t i = 0; i < n_in; i++)
        free(in[i]);
    for (size_t i = 0; i < n_out; i++)
        free(expect[i]);
    eie_model_free(m);
    return 0;
}

int main(void)
{
    eie_builder_t *b = NULL;
    eie_error_t err;
    if (th_build_zoo(&b, 13, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "build: %s\n", err.msg);
        return 1;
    }
    eie_model_t *zoo = th_load_builder(b), *wide = wide_conv();
    eie_builder_free(b);
    if (zoo == NULL || wide == NULL || stress(zoo) != 0 || stress(wide) != 0)
        return 1;
    return atomic_load(&failures) == 0 ? 0 : 1;
}
