/*
 * Concurrency stress of the cpu backend without criterion (whose sandbox
 * cannot start under ThreadSanitizer, Snaipe/Criterion#274), so that
 * tests/tsan.sh can run it: several threads run one net at once, and
 * asynchronous submits overlap them, on 1, 2, 3 and 7 PEs. Every output is
 * compared with the dense reference. Exit 0 when all match.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include "../format/model_helpers.h"

#define IN 120
#define OUT 10
#define THREADS 4
#define RUNS 40
#define ASYNC 16

static eie_net_t *net;
static float inputs[3 * IN], expect[3 * OUT];
static atomic_int failures, done_count;

static void *runner(void *arg)
{
    (void)arg;
    for (int r = 0; r < RUNS; r++) {
        size_t batch = 1 + (size_t)r % 3;
        float y[3 * OUT];
        eie_error_t err;
        if (eie_net_run(net, inputs, batch, y, NULL, &err) != EIE_STATUS_OK ||
            th_mismatch(y, expect, batch * OUT, 1e-4f) >= 0)
            atomic_fetch_add(&failures, 1);
    }
    return NULL;
}

static void on_done(void *user, eie_status_t status, const eie_run_info_t *info,
                    const eie_error_t *err)
{
    float *y = user;
    (void)info;
    (void)err;
    if (status != EIE_STATUS_OK || th_mismatch(y, expect, OUT, 1e-4f) >= 0)
        atomic_fetch_add(&failures, 1);
    atomic_fetch_add(&done_count, 1);
}

int main(void)
{
    static const unsigned pes[] = {1, 2, 3, 7};
    eie_error_t err;
    eie_builder_t *b;
    uint64_t seed = 11;
    eie_builder_init("stress", "", "in", "out", &b, &err);
    th_add_random_fc(b, 60, IN, 0.2, 4, &seed, &err);
    eie_builder_add_activation(b, EIE_ACT_RELU, &err);
    th_add_random_fc(b, OUT, 60, 0.5, 3, &seed, &err);
    eie_model_t *m = th_load_builder(b);
    eie_builder_free(b);
    th_random_input(inputs, 3 * IN, 0.6, &seed);
    if (m == NULL || eie_model_run_dense(m, inputs, 3, expect, &err) != EIE_STATUS_OK) {
        fprintf(stderr, "stress: model: %s\n", err.msg);
        return 1;
    }
    for (size_t p = 0; p < sizeof pes / sizeof pes[0]; p++) {
        eie_engine_opts_t o = eie_engine_opts_default();
        eie_engine_t *e;
        o.n_pes = pes[p];
        if (eie_engine_init(&o, &e, &err) != EIE_STATUS_OK ||
            eie_net_init(e, m, &net, &err) != EIE_STATUS_OK) {
            fprintf(stderr, "stress: %u PEs: %s\n", pes[p], err.msg);
            return 1;
        }
        static float async_out[ASYNC][OUT];
        atomic_store(&done_count, 0);
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            pthread_create(&t[i], NULL, runner, NULL);
        for (int i = 0; i < ASYNC; i++)
            if (eie_net_submit(net, inputs, 1, async_out[i], on_done, async_out[i], &err) !=
                EIE_STATUS_OK) {
                atomic_fetch_add(&failures, 1);
                atomic_fetch_add(&done_count, 1);
            }
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        while (atomic_load(&done_count) < ASYNC)
            sched_yield();
        eie_net_free(net);
        eie_engine_free(e);
        printf("%u PEs: %d failures so far\n", pes[p], atomic_load(&failures));
    }
    eie_model_free(m);
    return atomic_load(&failures) == 0 ? 0 : 1;
}
