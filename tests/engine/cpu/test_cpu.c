/* The cpu backend against the dense reference, batches, concurrency, async. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../format/model_helpers.h"
#include "backend_suite.h"
#include "pe/layout.h"
#include "pe/pool.h"

/* The consistency suite against the dense reference runs for every backend in
   tests/engine/test_backends.c. */

/* Runs m on a fresh cpu engine of n_pes PEs, runs times over the same x (the
   last run's outputs in y, its info in info when not NULL). */
static void run_on_pes(const eie_model_t *m, unsigned n_pes, const float *x, size_t B,
                       unsigned runs, float *y, eie_run_info_t *info)
{
    eie_engine_opts_t o = {.backend = "cpu", .n_pes = n_pes};
    eie_engine_t *e;
    eie_net_t *net;
    eie_error_t err;
    cr_assert_eq(eie_engine_init(&o, &e, &err), 0, "%s", err.msg);
    cr_assert_eq(eie_net_init(e, m, &net, &err), 0, "%s", err.msg);
    for (unsigned i = 0; i < runs; i++)
        cr_assert_eq(eie_net_run(net, x, B, y, info, &err), 0, "%s", err.msg);
    eie_net_free(net);
    eie_engine_free(e);
}

/* Row i sums the same terms in the same column order whatever the PE
 * count, and whether the PEs' rows are walked by N threads meeting at
 * barriers (this model at batch 1 and 3) or by one thread in turn (the
 * small MLP): outputs are bit-identical, not just close. Batches 3 and 17
 * also take the padded batch kernels (4 lanes, then 16 + 1). */
Test(cpu, outputs_are_bit_identical_across_pe_counts_and_run_forms)
{
    static const suite_case_t cases[] = {SUITE_PARALLEL, SUITE_MLP};
    static const size_t batches[] = {1, 3, 17};
    static const unsigned pes[] = {1, 2, 3, 7};
    for (size_t ci = 0; ci < 2; ci++) {
        eie_model_t *m = backend_suite_model(cases[ci]);
        uint32_t in = eie_model_input_dim(m), out = eie_model_output_dim(m);
        uint64_t seed = 77;
        for (size_t bi = 0; bi < 3; bi++) {
            size_t B = batches[bi];
            float *x = malloc(B * in * sizeof(float));
            float *y0 = malloc(B * out * sizeof(float)), *y = malloc(B * out * sizeof(float));
            th_random_input(x, B * in, 0.6, &seed);
            for (size_t pi = 0; pi < 4; pi++) {
                run_on_pes(m, pes[pi], x, B, 1, pi == 0 ? y0 : y, NULL);
                if (pi > 0)
                    cr_assert(memcmp(y0, y, B * out * sizeof(float)) == 0,
                              "case %zu batch %zu: %u PEs differ from 1 PE", ci, B, pes[pi]);
            }
            free(x);
            free(y0);
            free(y);
        }
        eie_model_free(m);
    }
}

/* A run split over the PE threads reports its busiest and least busy PE's
 * time; one that stays on one thread (one PE, or too little work to split)
 * reports neither. At batch 17 the PEs meet at barriers between the two
 * chunks, whose waits are left out, so the busiest PE's time is below the
 * whole run's. */
Test(cpu, a_split_run_reports_its_pes_busy_times)
{
    eie_model_t *big = backend_suite_model(SUITE_PARALLEL), *mlp = backend_suite_model(SUITE_MLP);
    uint64_t seed = 5;
    static const size_t batches[] = {1, 17};
    for (size_t bi = 0; bi < 2; bi++) {
        size_t B = batches[bi];
        float *x = malloc(B * eie_model_input_dim(big) * sizeof(float));
        float *y = malloc(B * eie_model_output_dim(big) * sizeof(float));
        th_random_input(x, B * eie_model_input_dim(big), 0.6, &seed);
        eie_run_info_t info;
        static const unsigned pes[] = {2, 3};
        for (size_t pi = 0; pi < 2; pi++) {
            memset(&info, 0xff, sizeof info);
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            run_on_pes(big, pes[pi], x, B, 1, y, &info);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            uint64_t whole = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
                             (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
            cr_assert(th_busy_times_ok(&info, 1), "batch %zu, %u PEs", B, pes[pi]);
            cr_assert_lt(info.pe_busy_max_ns, whole, "batch %zu, %u PEs", B, pes[pi]);
        }
        memset(&info, 0xff, sizeof info);
        run_on_pes(big, 1, x, B, 1, y, &info);
        cr_assert(th_busy_times_ok(&info, 0), "batch %zu, one PE", B);
        free(x);
        free(y);
    }
    float *xm = malloc(eie_model_input_dim(mlp) * sizeof(float));
    float *ym = malloc(eie_model_output_dim(mlp) * sizeof(float));
    th_random_input(xm, eie_model_input_dim(mlp), 0.6, &seed);
    eie_run_info_t info;
    memset(&info, 0xff, sizeof info);
    run_on_pes(mlp, 3, xm, 1, 1, ym, &info);
    cr_assert(th_busy_times_ok(&info, 0), "a small net runs on one thread");
    free(xm);
    free(ym);
    eie_model_free(big);
    eie_model_free(mlp);
}

/* The pool's busy times leave a slot's waits at barriers out: slot 1
 * sleeps 100 ms before the barrier, slot 0 only waits there for it. A job
 * of one slot reports none. */
typedef struct sleepy_job {
    eie_pool_job_t base;
    atomic_int done;
    unsigned long long max_ns, min_ns;
} sleepy_job_t;

static void sleepy_run(eie_pool_job_t *base, unsigned pe, eie_pool_t *pool)
{
    if (pe == 1) {
        struct timespec t = {0, 100 * 1000 * 1000};
        while (nanosleep(&t, &t) != 0)
            ;
    }
    if (base->slots != 1)
        eie_pool_barrier(pool);
}

static void sleepy_finish(eie_pool_job_t *base)
{
    sleepy_job_t *j = (sleepy_job_t *)base;
    j->max_ns = atomic_load(&base->busy_max_ns);
    j->min_ns = atomic_load(&base->busy_min_ns);
    atomic_store(&j->done, 1);
}

Test(cpu, pool_busy_times_leave_barrier_waits_out)
{
    eie_pool_t *pool;
    cr_assert_eq(eie_pool_init(2, &pool), 0);
    for (unsigned slots = 0; slots < 2; slots++) {
        sleepy_job_t j = {.base = {.run = sleepy_run, .finish = sleepy_finish, .slots = slots}};
        atomic_init(&j.done, 0);
        eie_pool_submit_join(pool, &j.base);
        while (!atomic_load(&j.done))
            usleep(1000);
        if (slots == 1) {
            cr_assert_eq(j.max_ns, 0, "one slot: no busy times");
            cr_assert_eq(j.min_ns, 0, "one slot: no busy times");
        } else {
            cr_assert_geq(j.max_ns, 100000000ull, "the sleeping slot is the busiest");
            cr_assert_lt(j.min_ns, 50000000ull, "the waiting slot's wait is left out");
        }
    }
    eie_pool_free(pool);
}

/* A batch's input goes feature-major into each PE's own copy, or, past
 * XT_PRIVATE_MAX_COLS (16384) columns, into one copy the PEs fill in shares
 * and meet at a barrier (cpu.c): both ways, batches of 3 and 17 (two chunks,
 * the second reusing the copy) match the dense reference and are
 * bit-identical on 1, 2 and 3 PEs. */
Test(cpu, batch_input_transposes_private_and_shared_give_the_same_bits)
{
    /* enough nonzeros that 2 and 3 PEs run in parallel (PARALLEL_MIN_WORK) */
    static const uint32_t cols[] = {300, 16400};
    static const double dens[] = {0.9, 0.05};
    static const size_t batches[] = {3, 17};
    enum { R = 64 };
    for (size_t ci = 0; ci < 2; ci++) {
        eie_builder_t *b;
        eie_error_t err;
        uint64_t seed = 91 + ci;
        uint32_t C = cols[ci];
        eie_builder_init("xt", "", "", "", &b, &err);
        cr_assert_eq(th_add_random_fc(b, R, C, dens[ci], 4, &seed, &err), 0);
        eie_model_t *m = th_load_builder(b);
        for (size_t bi = 0; bi < 2; bi++) {
            size_t B = batches[bi];
            float *x = malloc(B * C * sizeof(float));
            float *ref = malloc(B * R * sizeof(float));
            float *y0 = malloc(B * R * sizeof(float)), *y = malloc(B * R * sizeof(float));
            th_random_input(x, B * C, 0.5, &seed);
            eie_model_run_dense(m, x, B, ref, &err);
            static const unsigned pes[] = {1, 2, 3};
            for (size_t pi = 0; pi < 3; pi++) {
                /* twice: the second run finds the copies holding the first's */
                run_on_pes(m, pes[pi], x, B, 2, pi == 0 ? y0 : y, NULL);
                cr_assert_eq(th_mismatch(pi == 0 ? y0 : y, ref, B * R, 1e-4f), -1,
                             "%u columns, batch %zu, %u PEs", C, B, pes[pi]);
                if (pi > 0)
                    cr_assert(memcmp(y0, y, B * R * sizeof(float)) == 0,
                              "%u columns, batch %zu: %u PEs differ from 1", C, B, pes[pi]);
            }
            free(x);
            free(ref);
            free(y0);
            free(y);
        }
        eie_model_free(m);
        eie_builder_free(b);
    }
}

/* A parallel batch whose last step is an fc (a fused sigmoid after it) leaves
 * its results in each PE's accumulators and the PEs then copy contiguous
 * shares of the batch-major output (cpu.c, gather_share): the same bits as
 * one PE, for 100 output rows (shares end mid cache line), batches of 2, 16
 * and 37 (two full chunks and a single row), on 2, 3 and 7 PEs, and within
 * 1e-5 of the dense reference. */
Test(cpu, last_fc_of_a_parallel_batch_is_gathered_bit_identically)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 31;
    cr_assert_eq(eie_builder_init("gather", "", "in", "out", &b, &err), EIE_STATUS_OK, "%s", err.msg);
    th_add_random_fc(b, 512, 300, 0.5, 4, &seed, &err);
    eie_builder_add_activation(b, EIE_ACT_RELU, &err);
    th_add_random_fc(b, 100, 512, 0.4, 4, &seed, &err);
    eie_builder_add_activation(b, EIE_ACT_SIGMOID, &err);
    eie_model_t *m = th_load_builder(b);
    cr_assert_not_null(m);
    eie_builder_free(b);
    static const size_t batches[] = {2, 16, 37};
    static const unsigned pes[] = {1, 2, 3, 7};
    for (size_t bi = 0; bi < 3; bi++) {
        size_t B = batches[bi];
        float *x = malloc(B * 300 * sizeof(float)), *ref = malloc(B * 100 * sizeof(float));
        float *y0 = malloc(B * 100 * sizeof(float)), *y = malloc(B * 100 * sizeof(float));
        th_random_input(x, B * 300, 0.9, &seed);
        cr_assert_eq(eie_model_run_dense(m, x, B, ref, &err), EIE_STATUS_OK, "%s", err.msg);
        for (size_t pi = 0; pi < 4; pi++) {
            eie_engine_opts_t o = {.backend = "cpu", .n_pes = pes[pi]};
            eie_engine_t *e;
            eie_net_t *net;
            cr_assert_eq(eie_engine_init(&o, &e, &err), 0);
            cr_assert_eq(eie_net_init(e, m, &net, &err), 0);
            float *out = pi == 0 ? y0 : y;
            memset(out, 0xff, B * 100 * sizeof(float)); /* NaN: an unwritten output shows */
            cr_assert_eq(eie_net_run(net, x, B, out, NULL, &err), 0);
            if (pi == 0) {
                long bad = th_mismatch(y0, ref, B * 100, 1e-5f);
                cr_assert(bad < 0, "batch %zu [%ld]: %g vs dense %g", B, bad,
                          bad < 0 ? 0.0 : (double)y0[bad], bad < 0 ? 0.0 : (double)ref[bad]);
            } else {
                cr_assert(memcmp(y0, y, B * 100 * sizeof(float)) == 0,
                          "batch %zu: %u PEs differ from 1 PE", B, pes[pi]);
            }
            eie_net_free(net);
            eie_engine_free(e);
        }
        free(x);
        free(ref);
        free(y0);
        free(y);
    }
    eie_model_free(m);
}

/* A batch-1 run whose activations are nearly all nonzero takes the row
 * form: it walks every entry of the layer, where the column form walks only
 * the active columns' (one zero activation tells the two apart). It matches
 * the dense reference and is bit-identical across PE counts; with half the
 * activations zero the run takes the column form. */
Test(cpu, dense_batch_1_inputs_take_the_row_form)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 31;
    enum { R = 300, C = 200 };
    eie_builder_init("rows", "", "", "", &b, &err);
    cr_assert_eq(th_add_random_fc(b, R, C, 0.2, 4, &seed, &err), 0);
    eie_model_t *m = th_load_builder(b);
    eie_layer_info_t li;
    eie_model_layer_info(m, 0, &li);
    float x[C], half[C], y[R], y1[R], ref[R];
    th_random_input(x, C, 1.0, &seed);
    for (size_t j = 0; j < C; j++)
        x[j] = x[j] != 0.0f ? x[j] : 0.5f;
    x[5] = 0.0f;
    memcpy(half, x, sizeof half);
    for (size_t j = 0; j < C; j += 2)
        half[j] = 0.0f;
    eie_model_run_dense(m, x, 1, ref, &err);
    static const unsigned pes[] = {1, 2, 3, 7};
    for (size_t pi = 0; pi < 4; pi++) {
        eie_engine_opts_t o = {.backend = "cpu", .n_pes = pes[pi]};
        eie_engine_t *e;
        eie_net_t *net;
        eie_run_info_t info;
        cr_assert_eq(eie_engine_init(&o, &e, &err), 0);
        cr_assert_eq(eie_net_init(e, m, &net, &err), 0);
        cr_assert_eq(eie_net_run(net, x, 1, pi == 0 ? y1 : y, &info, &err), 0);
        cr_assert_eq(info.entries, li.nnz, "%u PEs: the row form walks every entry", pes[pi]);
        cr_assert_eq(th_mismatch(pi == 0 ? y1 : y, ref, R, 1e-5f), -1, "%u PEs", pes[pi]);
        if (pi > 0)
            cr_assert(memcmp(y, y1, sizeof y) == 0, "%u PEs differ from 1 PE", pes[pi]);
        cr_assert_eq(eie_net_run(net, half, 1, y, &info, &err), 0);
        cr_assert_lt(info.entries, li.nnz, "%u PEs: half the activations zero", pes[pi]);
        /* A NaN activation reaches exactly the rows with a weight in its
         * column: the row form's masked tail drops the lanes past a row,
         * whatever they hold. */
        float w[R * C], nan_x[C], ref0[R];
        eie_model_fc_dense(m, 0, w);
        memcpy(nan_x, x, sizeof nan_x);
        nan_x[7] = 0.0f;
        eie_model_run_dense(m, nan_x, 1, ref0, &err);
        nan_x[7] = NAN;
        cr_assert_eq(eie_net_run(net, nan_x, 1, y, &info, &err), 0);
        cr_assert_eq(info.entries, li.nnz);
        for (size_t r = 0; r < R; r++) {
            if (w[r * C + 7] != 0.0f)
                cr_assert(isnan(y[r]), "%u PEs: row %zu has a weight in the NaN column", pes[pi],
                          r);
            else
                cr_assert_eq(th_mismatch(&y[r], &ref0[r], 1, 1e-5f), -1, "%u PEs: row %zu", pes[pi],
                             r);
        }
        eie_net_free(net);
        eie_engine_free(e);
    }
    eie_model_free(m);
    eie_builder_free(b);
}

/* At batch 1 the two forms cost about the same an entry, so a layer with
 * at least twice as many rows as columns keeps the column form on a dense
 * input (its fixed cost is per column, the row form's per row); one row
 * fewer and the row form is back. The choice follows the shape alone: the
 * outputs stay bit-identical across PE counts either way. */
Test(cpu, tall_dense_batch_1_inputs_keep_the_column_form)
{
    enum { C = 150 };
    static const uint32_t rows[] = {2 * C, 2 * C - 1};
    for (size_t k = 0; k < 2; k++) {
        eie_builder_t *b;
        eie_error_t err;
        uint64_t seed = 47 + k;
        uint32_t R = rows[k];
        eie_builder_init("tall", "", "", "", &b, &err);
        cr_assert_eq(th_add_random_fc(b, R, C, 0.2, 4, &seed, &err), 0);
        eie_model_t *m = th_load_builder(b);
        eie_layer_info_t li;
        eie_model_layer_info(m, 0, &li);
        float x[C], y[2 * C], y1[2 * C], ref[2 * C];
        th_random_input(x, C, 1.0, &seed);
        for (size_t j = 0; j < C; j++)
            x[j] = x[j] != 0.0f ? x[j] : 0.5f;
        x[3] = 0.0f; /* the column form skips it, the row form walks it */
        eie_model_run_dense(m, x, 1, ref, &err);
        static const unsigned pes[] = {1, 2, 3};
        for (size_t pi = 0; pi < 3; pi++) {
            eie_run_info_t info;
            run_on_pes(m, pes[pi], x, 1, 1, pi == 0 ? y1 : y, &info);
            if (k == 0)
                cr_assert_lt(info.entries, li.nnz, "%u rows, %u PEs: the column form", R,
                             pes[pi]);
            else
                cr_assert_eq(info.entries, li.nnz, "%u rows, %u PEs: the row form", R, pes[pi]);
            cr_assert_eq(th_mismatch(pi == 0 ? y1 : y, ref, R, 1e-5f), -1, "%u PEs", pes[pi]);
            if (pi > 0)
                cr_assert(memcmp(y, y1, R * sizeof(float)) == 0, "%u rows: %u PEs differ from 1",
                          R, pes[pi]);
        }
        eie_model_free(m);
        eie_builder_free(b);
    }
}

/* A batch of 4 takes the row form when at least 3/4 of its columns are
 * active in some sample, else the column form (kernels.c,
 * eie_cpu_rows_pay). A batch of 2 whose samples find few columns active
 * each goes sample by sample through the batch-1 column walk (cpu.c,
 * split_pays): here with 170 of 200 columns active in the union and 200
 * summed over the two, against 340 when both find the same 170. Each
 * sample's outputs are the bits of that sample run alone (batch 1, where
 * these inputs take the column form), on every PE count, whichever form
 * the batch takes. */
Test(cpu, small_batches_take_the_row_form_the_column_form_or_go_sample_by_sample)
{
    enum { R = 300, C = 200, BMAX = 4 };
    static const struct {
        size_t B, n_active;
        int apart; /* sample s: columns [s * 70, s * 70 + 100), else all n_active */
        const char *form;
    } cases[] = {{4, C * 3 / 4, 0, "rows"},
                 {4, C * 3 / 4 - 1, 0, "columns"},
                 {2, 170, 1, "split"},
                 {2, 170, 0, "columns"}};
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 59;
    eie_builder_init("small-batches", "", "", "", &b, &err);
    cr_assert_eq(th_add_random_fc(b, R, C, 0.2, 4, &seed, &err), 0);
    eie_model_t *m = th_load_builder(b);
    eie_layer_info_t li;
    eie_model_layer_info(m, 0, &li);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t B = cases[k].B;
        float x[BMAX * C] = {0}, y[BMAX * R], y1[BMAX * R], alone[BMAX * R];
        for (size_t s = 0; s < B; s++)
            for (size_t j = 0; j < cases[k].n_active; j++)
                if (!cases[k].apart || (j >= s * 70 && j < s * 70 + 100))
                    x[s * C + j] = 0.25f + (float)((j + s) % 7) * 0.5f - (j % 3 == 0 ? 2.0f : 0.0f);
        uint64_t alone_entries = 0;
        for (size_t s = 0; s < B; s++) {
            eie_run_info_t info;
            run_on_pes(m, 1, x + s * C, 1, 1, alone + s * R, &info);
            cr_assert_lt(info.entries, li.nnz, "sample %zu alone: the column form", s);
            alone_entries += info.entries;
        }
        static const unsigned pes[] = {1, 2, 3};
        for (size_t pi = 0; pi < 3; pi++) {
            eie_run_info_t info;
            run_on_pes(m, pes[pi], x, B, 1, pi == 0 ? y1 : y, &info);
            const char *form = info.entries == li.nnz              ? "rows"
                               : info.entries == alone_entries ? "split"
                                                               : "columns";
            cr_assert_str_eq(form, cases[k].form,
                             "batch %zu, %zu of %d active, %u PEs: %lu entries walked", B,
                             cases[k].n_active, C, pes[pi], (unsigned long)info.entries);
            cr_assert(memcmp(pi == 0 ? y1 : y, alone, B * R * sizeof(float)) == 0,
                      "batch %zu %s, %u PEs: not each sample's bits alone", B, cases[k].form,
                      pes[pi]);
        }
    }
    eie_model_free(m);
    eie_builder_free(b);
}

/* The row form is built for every layer (batches use it whatever the
 * input; batch 1 where it is dense): the net's layout bytes are those of
 * the layers packed that way; with cpu_column_only, or a layout limit the
 * row form would exceed, for none. */
Test(cpu, row_form_is_built_for_every_layer_that_the_limit_allows)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 41;
    eie_builder_init("mixed", "", "", "", &b, &err);
    cr_assert_eq(th_add_random_fc(b, 64, 48, 0.3, 4, &seed, &err), 0);
    cr_assert_eq(eie_builder_add_activation(b, EIE_ACT_RELU, &err), 0);
    cr_assert_eq(th_add_random_fc(b, 40, 64, 0.3, 4, &seed, &err), 0);
    cr_assert_eq(eie_builder_add_activation(b, EIE_ACT_SIGMOID, &err), 0);
    cr_assert_eq(th_add_random_fc(b, 10, 40, 0.3, 4, &seed, &err), 0);
    eie_model_t *m = th_load_builder(b);
    for (unsigned n = 1; n <= 3; n++) {
        uint64_t expect = 0, without = 0, est_without = 0;
        for (size_t l = 0; l < eie_model_layer_count(m); l++) {
            const eie_fc_t *fc = eie_model_fc(m, l);
            if (fc == NULL)
                continue;
            eie_cpu_fc_t cf;
            cr_assert_eq(eie_cpu_fc_init(fc, n, 0, 1, &cf, &err), 0);
            expect += cf.layout_bytes;
            eie_cpu_fc_clear(&cf);
            cr_assert_eq(eie_cpu_fc_init(fc, n, 0, 0, &cf, &err), 0);
            without += cf.layout_bytes;
            eie_cpu_fc_clear(&cf);
            est_without += eie_cpu_fc_layout_estimate(fc, n, 0);
        }
        eie_engine_opts_t o = {.backend = "cpu", .n_pes = n};
        eie_engine_t *e;
        eie_net_t *net;
        cr_assert_eq(eie_engine_init(&o, &e, &err), 0);
        cr_assert_eq(eie_net_init(e, m, &net, &err), 0);
        cr_assert_gt(expect, without);
        cr_assert_eq(eie_net_layout_bytes(net), expect, "%u PEs", n);
        eie_net_free(net);
        eie_engine_free(e);
        /* a limit that the column form alone meets: no row form */
        o.max_layout_bytes = est_without;
        cr_assert_eq(eie_engine_init(&o, &e, &err), 0);
        cr_assert_eq(eie_net_init(e, m, &net, &err), 0, "%s", err.msg);
        cr_assert_eq(eie_net_layout_bytes(net), without, "%u PEs under a limit", n);
        eie_net_free(net);
        eie_engine_free(e);
        /* cpu_column_only: no row form anywhere. */
        o.cpu_column_only = 1;
        cr_assert_eq(eie_engine_init(&o, &e, &err), 0);
        cr_assert_eq(eie_net_init(e, m, &net, &err), 0);
        cr_assert_eq(eie_net_layout_bytes(net), without, "%u PEs, column only", n);
        eie_net_free(net);
        eie_engine_free(e);
    }
    eie_model_free(m);
    eie_builder_free(b);
}

Test(cpu, tall_layer_over_4096_local_rows_matches_dense)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 5;
    eie_builder_init("tall", "", "", "", &b, &err);
    th_add_random_fc(b, 5000, 20, 0.05, 4, &seed, &err);
    eie_model_t *m = th_load_builder(b);
    eie_engine_opts_t o = {.backend = "cpu", .n_pes = 1};
    eie_engine_t *e;
    eie_net_t *net;
    eie_engine_init(&o, &e, &err);
    cr_assert_eq(eie_net_init(e, m, &net, &err), 0);
    float x[20], y[5000], ref[5000];
    th_random_input(x, 20, 0.7, &seed);
    cr_assert_eq(eie_net_run(net, x, 1, y, NULL, &err), 0);
    eie_model_run_dense(m, x, 1, ref, &err);
    cr_assert_eq(th_mismatch(y, ref, 5000, 1e-5f), -1);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
    eie_builder_free(b);
}

static eie_model_t *mlp(void) { return backend_suite_model(SUITE_MLP); }

Test(cpu, batch_equals_stacked_single_runs)
{
    eie_model_t *m = mlp();
    eie_engine_opts_t o = {.backend = "cpu", .n_pes = 3};
    eie_engine_t *e;
    eie_net_t *net;
    eie_error_t err;
    eie_engine_init(&o, &e, &err);
    eie_net_init(e, m, &net, &err);
    enum { B = 37, IN = 100, OUT = 10 };
    float *x = malloc(B * IN * sizeof(float));
    float y[B * OUT], one[OUT];
    uint64_t seed = 9;
    th_random_input(x, B * IN, 0.5, &seed);
    eie_run_info_t info;
    cr_assert_eq(eie_net_run(net, x, B, y, &info, &err), 0, "%s", err.msg);
    cr_assert(info.entries > 0 && info.nonzero_acts > 0);
    for (size_t b = 0; b < B; b++) {
        cr_assert_eq(eie_net_run(net, x + b * IN, 1, one, NULL, &err), 0);
        cr_assert_eq(th_mismatch(y + b * OUT, one, OUT, 1e-6f), -1, "batch row %zu", b);
    }
    free(x);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
}

typedef struct thread_arg {
    eie_net_t *net;
    const eie_model_t *m;
    int seed;
    int ok;
} thread_arg_t;

static void *runner(void *p)
{
    thread_arg_t *a = p;
    uint64_t seed = 100 + (uint64_t)a->seed;
    float x[2 * 100], y[2 * 10], ref[2 * 10];
    eie_error_t err;
    a->ok = 1;
    for (int it = 0; it < 50; it++) {
        th_random_input(x, 200, 0.5, &seed);
        if (eie_net_run(a->net, x, 2, y, NULL, &err) != 0 ||
            eie_model_run_dense(a->m, x, 2, ref, &err) != 0 || th_mismatch(y, ref, 20, 1e-5f) >= 0)
            a->ok = 0;
    }
    return NULL;
}

Test(cpu, eight_threads_running_one_net_get_correct_results)
{
    eie_model_t *m = mlp();
    eie_engine_opts_t o = {.backend = "cpu", .n_pes = 2};
    eie_engine_t *e;
    eie_net_t *net;
    eie_error_t err;
    eie_engine_init(&o, &e, &err);
    eie_net_init(e, m, &net, &err);
    pthread_t t[8];
    thread_arg_t a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (thread_arg_t){.net = net, .m = m, .seed = i};
        pthread_create(&t[i], NULL, runner, &a[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        cr_assert(a[i].ok, "thread %d got a wrong result", i);
    }
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
}

typedef struct cb_state {
    atomic_int calls;
    atomic_int status;
    pthread_t caller;
    atomic_int on_other_thread;
} cb_state_t;

static void on_done(void *user, eie_status_t status, const eie_run_info_t *info,
                    const eie_error_t *err)
{
    (void)info;
    (void)err;
    cb_state_t *s = user;
    atomic_store(&s->status, (int)status);
    atomic_store(&s->on_other_thread, !pthread_equal(pthread_self(), s->caller));
    atomic_fetch_add(&s->calls, 1);
}

Test(cpu, submit_callback_fires_exactly_once_on_a_pe_thread)
{
    eie_model_t *m = mlp();
    eie_engine_opts_t o = {.backend = "cpu", .n_pes = 2};
    eie_engine_t *e;
    eie_net_t *net;
    eie_error_t err;
    eie_engine_init(&o, &e, &err);
    eie_net_init(e, m, &net, &err);
    enum { JOBS = 20 };
    float x[JOBS][100], y[JOBS][10], ref[10];
    cb_state_t s[JOBS];
    uint64_t seed = 4;
    for (int j = 0; j < JOBS; j++) {
        th_random_input(x[j], 100, 0.5, &seed);
        s[j] = (cb_state_t){.caller = pthread_self()};
        atomic_init(&s[j].calls, 0);
        cr_assert_eq(eie_net_submit(net, x[j], 1, y[j], on_done, &s[j], &err), 0);
    }
    for (int spins = 0; spins < 5000; spins++) {
        int all = 1;
        for (int j = 0; j < JOBS; j++)
            all &= atomic_load(&s[j].calls) >= 1;
        if (all)
            break;
        usleep(1000);
    }
    usleep(20000); /* a second call would come now */
    for (int j = 0; j < JOBS; j++) {
        cr_assert_eq(atomic_load(&s[j].calls), 1, "job %d: %d calls", j, s[j].calls);
        cr_assert_eq(atomic_load(&s[j].status), EIE_STATUS_OK);
        cr_assert(atomic_load(&s[j].on_other_thread));
        eie_model_run_dense(m, x[j], 1, ref, &err);
        cr_assert_eq(th_mismatch(y[j], ref, 10, 1e-5f), -1);
    }
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
}

Test(cpu, bad_arguments_and_unknown_backend_are_errors)
{
    eie_engine_opts_t o = {.backend = "tpu", .n_pes = 1};
    eie_engine_t *e;
    eie_error_t err;
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_NOT_FOUND);
    cr_assert(strstr(err.msg, "tpu") != NULL);
    cr_assert_str_eq(eie_backend_names()[0], "cpu");
    o = eie_engine_opts_default();
    cr_assert_eq(eie_engine_init(&o, &e, &err), 0);
    cr_assert(eie_engine_pes(e) >= 1);
    cr_assert_str_eq(eie_engine_backend(e), "cpu");
    eie_model_t *m = mlp();
    eie_net_t *net;
    eie_net_init(e, m, &net, &err);
    float x[100] = {0}, y[10];
    cr_assert_eq(eie_net_run(net, x, 0, y, NULL, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(eie_net_layout_bytes(net) > 0);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
    eie_engine_free(NULL);
    eie_net_free(NULL);
}
