/*
 * The eie-sim backend (the consistency suite is test_backends.c): the fixed-point
 * bound, agreement with the cpu backend on random models, bit-exact
 * repeatability, the run info, and every parameter out of range.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "../cpu/backend_suite.h"
#include "../format/model_helpers.h"
#include "eie/sim.h"

/* engine/sim/README.md, "Error bound": |sim - float| <= 2^-5 * max(1, |y|). */
#define SIM_TOL (1.0f / 32.0f)

/* The consistency suite against the dense reference runs for every backend in
   tests/engine/test_backends.c, within the bound above. */

static eie_net_t *net_on(const char *backend, unsigned pes, const eie_model_t *m,
                         eie_engine_t **e)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    o.backend = backend;
    o.n_pes = pes;
    eie_error_t err;
    eie_net_t *net;
    cr_assert_eq(eie_engine_init(&o, e, &err), 0, "%s", err.msg);
    cr_assert_eq(eie_net_init(*e, m, &net, &err), 0, "%s", err.msg);
    return net;
}

Test(sim, matches_cpu_within_bound_on_random_models)
{
    for (int t = 0; t < 12; t++) {
        uint64_t seed = 500 + (uint64_t)t;
        eie_builder_t *b;
        eie_error_t err;
        eie_builder_init("r", "", "in", "out", &b, &err);
        uint32_t d0 = 20 + th_rand(&seed) % 400, d1 = 5 + th_rand(&seed) % 250,
                 d2 = 2 + th_rand(&seed) % 80;
        th_add_random_fc(b, d1, d0, 0.05 + 0.5 * th_uniform(&seed), 4, &seed, &err);
        eie_builder_add_activation(b, EIE_ACT_RELU, &err);
        th_add_random_fc(b, d2, d1, 0.05 + 0.5 * th_uniform(&seed),
                         1 + (uint32_t)(th_rand(&seed) % 8), &seed, &err);
        if (t % 2) {
            eie_builder_add_activation(b, EIE_ACT_TANH, &err);
            th_add_random_fc(b, 7, d2, 0.5, 4, &seed, &err);
        }
        eie_model_t *m = th_load_builder(b);
        eie_engine_t *ec, *es;
        eie_net_t *nc = net_on("cpu", 2, m, &ec), *ns = net_on("eie-sim", 1 + t % 7, m, &es);
        size_t in = eie_model_input_dim(m), out = eie_model_output_dim(m), B = 5;
        float *x = calloc(B * in, sizeof(float)), *y = malloc(B * out * sizeof(float)),
              *ref = malloc(B * out * sizeof(float));
        th_random_input(x, B * in, 0.4, &seed);
        cr_assert_eq(eie_net_run(nc, x, B, ref, NULL, &err), 0);
        cr_assert_eq(eie_net_run(ns, x, B, y, NULL, &err), 0, "%s", err.msg);
        long bad = th_mismatch(y, ref, B * out, SIM_TOL);
        cr_assert_eq(bad, -1, "model %d: y[%ld] = %g, cpu %g", t, bad,
                     bad >= 0 ? (double)y[bad] : 0.0, bad >= 0 ? (double)ref[bad] : 0.0);
        free(x);
        free(y);
        free(ref);
        eie_net_free(nc);
        eie_net_free(ns);
        eie_engine_free(ec);
        eie_engine_free(es);
        eie_model_free(m);
        eie_builder_free(b);
    }
}

static void run_sim(const eie_model_t *m, unsigned pes, const float *x, float *y,
                    eie_sim_report_t *rep)
{
    eie_sim_params_t p = eie_sim_params_default();
    p.n_pes = pes;
    eie_sim_t *sim;
    eie_error_t err;
    cr_assert_eq(eie_sim_init(m, &p, &sim, &err), 0, "%s", err.msg);
    cr_assert_eq(eie_sim_run(sim, x, y, rep, &err), 0, "%s", err.msg);
    eie_sim_free(sim);
}

Test(sim, runs_are_bit_exact_and_reports_identical)
{
    eie_model_t *m = backend_suite_model(SUITE_NON_SQUARE);
    uint64_t seed = 9;
    float x[300], y1[257], y2[257];
    th_random_input(x, 300, 0.5, &seed);
    eie_sim_report_t r1, r2;
    run_sim(m, 7, x, y1, &r1);
    run_sim(m, 7, x, y2, &r2);
    cr_assert_eq(memcmp(y1, y2, sizeof y1), 0);
    cr_assert_eq(r1.total.cycles, r2.total.cycles);
    cr_assert_eq(r1.total.spmat_reads, r2.total.spmat_reads);
    cr_assert_eq(memcmp(r1.total.pe_busy, r2.total.pe_busy, 7 * sizeof(uint64_t)), 0);
    eie_sim_report_clear(&r1);
    eie_sim_report_clear(&r2);
    eie_model_free(m);
}

Test(sim, results_do_not_depend_on_the_pe_count)
{
    /* Each row accumulates its products in broadcast order on whichever PE
     * holds it, so the bits are the same for any N; only the timing differs. */
    eie_model_t *m = backend_suite_model(SUITE_MLP);
    uint64_t seed = 3;
    float x[100], y1[10], y64[10];
    th_random_input(x, 100, 0.5, &seed);
    eie_sim_report_t r1, r64;
    run_sim(m, 1, x, y1, &r1);
    run_sim(m, 64, x, y64, &r64);
    cr_assert_eq(memcmp(y1, y64, sizeof y1), 0);
    cr_assert_gt(r1.total.cycles, r64.total.cycles);
    cr_assert_eq(r1.total.macs, r64.total.macs);
    cr_assert_eq(r1.n_layers, 3);
    eie_sim_report_clear(&r1);
    eie_sim_report_clear(&r64);
    eie_model_free(m);
}

Test(sim, run_info_carries_cycles_time_efficiency_energy)
{
    eie_model_t *m = backend_suite_model(SUITE_MLP);
    eie_engine_t *e;
    eie_net_t *net = net_on("eie-sim", 0, m, &e);
    cr_assert_eq(eie_engine_pes(e), 64);
    cr_assert_str_eq(eie_engine_backend(e), "eie-sim");
    uint64_t seed = 4;
    float x[2 * 100], y[2 * 10];
    th_random_input(x, 200, 0.5, &seed);
    eie_run_info_t info;
    eie_error_t err;
    cr_assert_eq(eie_net_run(net, x, 2, y, &info, &err), 0);
    cr_assert_gt(info.cycles, 0);
    cr_assert_float_eq(info.sim_time_us, (double)info.cycles / 800.0, 1e-9);
    cr_assert_gt(info.efficiency, 0.0);
    cr_assert_leq(info.efficiency, 1.0);
    cr_assert_gt(info.energy_uj, 0.0);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    eie_run_info_t info;
} waiter_t;

static void on_done(void *user, eie_status_t st, const eie_run_info_t *info,
                    const eie_error_t *err)
{
    waiter_t *w = user;
    cr_assert_eq(st, EIE_STATUS_OK);
    (void)err;
    pthread_mutex_lock(&w->mu);
    w->info = *info;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

Test(sim, submit_calls_done_once_with_the_same_bits_as_run)
{
    eie_model_t *m = backend_suite_model(SUITE_MLP);
    eie_engine_t *e;
    eie_net_t *net = net_on("eie-sim", 16, m, &e);
    uint64_t seed = 5;
    float x[100], y1[10], y2[10];
    th_random_input(x, 100, 0.5, &seed);
    eie_error_t err;
    eie_run_info_t info;
    cr_assert_eq(eie_net_run(net, x, 1, y1, &info, &err), 0);
    waiter_t w = {.done = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    cr_assert_eq(eie_net_submit(net, x, 1, y2, on_done, &w, &err), 0);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    cr_assert_eq(memcmp(y1, y2, sizeof y1), 0);
    cr_assert_eq(w.info.cycles, info.cycles);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
}

/* ---- parameters out of range -------------------------------------------- */

static void expect_param_error(eie_sim_params_t p, const char *msg)
{
    eie_error_t err;
    cr_assert_eq(eie_sim_params_check(&p, &err), EIE_STATUS_INVALID_ARGUMENT, "%s", msg);
    cr_assert_eq(err.status, EIE_STATUS_INVALID_ARGUMENT);
    cr_assert_str_eq(err.msg, msg);
}

Test(sim_params, defaults_are_the_papers_design_point)
{
    eie_sim_params_t p = eie_sim_params_default();
    cr_assert_eq(p.n_pes, 64);
    cr_assert_eq(p.fifo_depth, 8);
    cr_assert_eq(p.pipeline_depth, 4);
    cr_assert_float_eq(p.clock_mhz, 800.0, 1e-12);
    cr_assert_eq(p.act_regs, 64); /* 4K activations over 64 PEs */
    cr_assert_eq(eie_sim_params_check(&p, NULL), EIE_STATUS_OK);
}

Test(sim_params, every_value_out_of_range_is_named)
{
    eie_sim_params_t d = eie_sim_params_default(), p;
    p = d, p.n_pes = 0;
    expect_param_error(p, "eie-sim: PE count 0 out of range 1..1024");
    p = d, p.n_pes = 5000;
    expect_param_error(p, "eie-sim: PE count 5000 out of range 1..1024");
    p = d, p.fifo_depth = 0;
    expect_param_error(p, "eie-sim: FIFO depth 0 out of range 1..1024");
    p = d, p.fifo_depth = 4000000000u;
    expect_param_error(p, "eie-sim: FIFO depth 4000000000 out of range 1..1024");
    p = d, p.pipeline_depth = 0;
    expect_param_error(p, "eie-sim: pipeline depth 0 out of range 1..64");
    p = d, p.pipeline_depth = 65;
    expect_param_error(p, "eie-sim: pipeline depth 65 out of range 1..64");
    p = d, p.clock_mhz = 0.0;
    expect_param_error(p, "eie-sim: clock 0 MHz out of range (0, 10000]");
    p = d, p.clock_mhz = -800.0;
    expect_param_error(p, "eie-sim: clock -800 MHz out of range (0, 10000]");
    p = d, p.clock_mhz = 1e9;
    expect_param_error(p, "eie-sim: clock 1e+09 MHz out of range (0, 10000]");
    p = d, p.clock_mhz = NAN;
    expect_param_error(p, "eie-sim: clock nan MHz out of range (0, 10000]");
    p = d, p.act_regs = 0;
    expect_param_error(p, "eie-sim: activation register file of 0 entries out of range 1..1024");
    p = d, p.act_regs = 1025;
    expect_param_error(p,
                       "eie-sim: activation register file of 1025 entries out of range 1..1024");
}

Test(sim_params, sim_init_refuses_bad_parameters)
{
    eie_model_t *m = backend_suite_model(SUITE_ONE_BY_ONE);
    eie_sim_params_t p = eie_sim_params_default();
    p.fifo_depth = 0;
    eie_sim_t *sim = NULL;
    eie_error_t err;
    cr_assert_eq(eie_sim_init(m, &p, &sim, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert_null(sim);
    cr_assert_str_eq(err.msg, "eie-sim: FIFO depth 0 out of range 1..1024");
    eie_model_free(m);
}

static void expect_engine_error(eie_engine_opts_t o, const char *msg)
{
    eie_engine_t *e = NULL;
    eie_error_t err;
    o.backend = "eie-sim";
    cr_assert_neq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK, "%s", msg);
    cr_assert_null(e);
    cr_assert_str_eq(err.msg, msg);
}

Test(sim_params, engine_options_out_of_range_are_named)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    eie_engine_opts_t p;
    p = o, p.n_pes = 2000;
    expect_engine_error(p, "n_pes 2000 over the limit 1024");
    p = o, p.sim_fifo_depth = 100000;
    expect_engine_error(p, "eie-sim: FIFO depth 100000 out of range 1..1024");
    p = o, p.sim_pipeline_depth = 1000;
    expect_engine_error(p, "eie-sim: pipeline depth 1000 out of range 1..64");
    p = o, p.sim_clock_mhz = -1.0;
    expect_engine_error(p, "eie-sim: clock -1 MHz out of range (0, 10000]");
    p = o, p.sim_clock_mhz = 50000.0;
    expect_engine_error(p, "eie-sim: clock 50000 MHz out of range (0, 10000]");
    p = o, p.sim_act_regs = 4096;
    expect_engine_error(p,
                        "eie-sim: activation register file of 4096 entries out of range 1..1024");
}

Test(sim_params, engine_zero_options_mean_the_papers_values)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    o.backend = "eie-sim";
    eie_engine_t *e;
    eie_error_t err;
    cr_assert_eq(eie_engine_init(&o, &e, &err), 0, "%s", err.msg);
    cr_assert_eq(eie_engine_pes(e), 64);
    eie_engine_free(e);
}

Test(sim_bench, nine_layers_with_the_papers_times)
{
    size_t n;
    const eie_sim_bench_layer_t *l = eie_sim_bench_layers(&n);
    cr_assert_eq(n, 9);
    cr_assert_str_eq(l[0].name, "Alex-6");
    cr_assert_float_eq(l[0].paper_actual_us, 30.3, 1e-9);
    cr_assert_str_eq(l[8].name, "NT-LSTM");
    cr_assert_float_eq(l[8].paper_actual_us, 7.5, 1e-9);
}

Test(sim_bench, a_small_synthetic_layer_has_its_densities)
{
    eie_sim_bench_layer_t small = {"small", 2000, 500, 0.1, 0.25, 0, 0};
    eie_sim_params_t p = eie_sim_params_default();
    eie_sim_report_t r;
    eie_error_t err;
    cr_assert_eq(eie_sim_bench_run(&small, &p, EIE_SIM_BENCH_TABLE3, 1, &r, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(r.total.broadcasts, 500 + 1); /* exactly 25% of inputs, and the bias */
    double density = (double)r.total.macs / (500.0 * 500.0);
    cr_assert(density > 0.09 && density < 0.11, "density %g", density);
    cr_assert_gt(r.total.efficiency, 0.5);
    eie_sim_report_clear(&r);
}

/* The matched workload: the entries are those of the theoretical time given
 * (here 2.0 us: 2.0 x 800 x 64 = 102,400 with the 500 bias entries), within
 * the sampling noise of a random mask, and the weight density of the other
 * columns falls so that the layer's stays 10%. */
Test(sim_bench, a_matched_layer_has_the_entries_of_its_theoretical_time)
{
    eie_sim_bench_layer_t small = {"small", 2000, 500, 0.1, 0.25, 2.0, 0};
    eie_sim_params_t p = eie_sim_params_default();
    eie_sim_report_t r;
    eie_error_t err;
    cr_assert_eq(eie_sim_bench_run(&small, &p, EIE_SIM_BENCH_MATCHED, 1, &r, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(r.total.broadcasts, 500 + 1);
    double want = 2.0 * 800 * 64;
    cr_assert(fabs((double)r.total.entries - want) < 0.02 * want, "entries %llu, want %g",
              (unsigned long long)r.total.entries, want);
    eie_sim_report_clear(&r);
}

/* ---- the structured workload ------------------------------------------------- */

/* P(|w| > T) for w ~ N(0, s^2), x = log(s / T). */
static double keep(double x)
{
    return erfc(exp(-x) / sqrt(2.0));
}

/* E[f(sigma z)] for z standard normal, by the midpoint rule over +-8. */
static double gauss_mean(double sigma, double shift, int square)
{
    double s = 0.0, h = 16.0 / 4000;
    for (int k = 0; k < 4000; k++) {
        double z = -8.0 + (k + 0.5) * h, g = keep(sigma * z - shift);
        s += (square ? g * g : g) * exp(-0.5 * z * z) * h / sqrt(2.0 * M_PI);
    }
    return s;
}

/* Builds a structured layer; rows x cols kept-weight counts into row_n and col_n. */
static void structured_counts(const eie_sim_bench_layer_t *layer,
                              const eie_sim_bench_structure_t *st, uint64_t seed, double *row_n,
                              double *col_n, float **x_out)
{
    eie_model_t *m;
    eie_error_t err;
    cr_assert_eq(eie_sim_bench_build(layer, EIE_SIM_BENCH_STRUCTURED, st, seed, &m, x_out, &err),
                 0, "%s", err.msg);
    uint8_t *w = malloc((size_t)layer->out * layer->in);
    cr_assert_not_null(w);
    cr_assert_eq(eie_model_fc_codes(m, 0, w), 0);
    memset(row_n, 0, layer->out * sizeof *row_n);
    memset(col_n, 0, layer->in * sizeof *col_n);
    for (uint32_t i = 0; i < layer->out; i++)
        for (uint32_t j = 0; j < layer->in; j++)
            if (w[(size_t)i * layer->in + j] != 0) {
                row_n[i] += 1.0;
                col_n[j] += 1.0;
            }
    free(w);
    eie_model_free(m);
}

/* Row scales alone (column sigma 0): row i keeps keep(log r_i - log T) of
 * its weights, so the rows' densities spread as Var_r keep + binomial
 * noise, with T such that E_r keep = the layer's density. */
Test(sim_bench, a_structured_layer_has_its_density_and_the_row_spread_its_model_gives)
{
    eie_sim_bench_layer_t small = {"small", 2000, 512, 0.1, 0.25, 0, 0};
    eie_sim_bench_structure_t st = {.row_sigma = 0.3, .col_sigma = 0.0, .act_rho = 0.0};
    double *row_n = malloc(512 * sizeof *row_n), *col_n = malloc(2000 * sizeof *col_n);
    float *x;
    structured_counts(&small, &st, 1, row_n, col_n, &x);
    double lo = -10.0, hi = 10.0;
    for (int it = 0; it < 60; it++) {
        double mid = 0.5 * (lo + hi);
        *(gauss_mean(0.3, mid, 0) > 0.1 ? &lo : &hi) = mid;
    }
    double t = 0.5 * (lo + hi), e1 = gauss_mean(0.3, t, 0), e2 = gauss_mean(0.3, t, 1);
    double want_cv = sqrt(e2 - e1 * e1 + (e1 - e2) / 2000.0) / e1;
    double m = 0.0, v = 0.0;
    for (int i = 0; i < 512; i++)
        m += row_n[i] / 512.0;
    for (int i = 0; i < 512; i++)
        v += (row_n[i] - m) * (row_n[i] - m) / 512.0;
    double density = m / 2000.0, cv = sqrt(v) / m;
    cr_assert(fabs(density - 0.1) < 0.003, "density %g", density);
    cr_assert(fabs(cv - want_cv) < 0.1 * want_cv, "row cv %g, model %g", cv, want_cv);
    cr_assert_gt(cv, 3.0 * sqrt(0.9 / (0.1 * 2000))); /* far above a uniform mask's */
    int nz = 0;
    for (int j = 0; j < 2000; j++)
        nz += x[j] != 0.0f;
    cr_assert_eq(nz, 500);
    free(x);
    free(row_n);
    free(col_n);
}

/* Column scales and the input's correlation with them: input j is nonzero
 * about when rho z + sqrt(1 - rho^2) e > t (t = Phi^-1(1 - 0.25)), so the
 * multiply-adds over those of a uniform mask are E[keep(sigma z - log T)
 * P(nonzero | z)] / (density x 0.25). */
Test(sim_bench, a_structured_layers_multiply_adds_are_what_its_model_gives)
{
    eie_sim_bench_layer_t small = {"small", 6000, 256, 0.1, 0.25, 0, 0};
    eie_sim_bench_structure_t st = {.row_sigma = 0.0, .col_sigma = 0.4, .act_rho = 0.5};
    double *row_n = malloc(256 * sizeof *row_n), *col_n = malloc(6000 * sizeof *col_n);
    double macs = 0.0, kept = 0.0;
    for (uint64_t seed = 1; seed <= 2; seed++) {
        float *x;
        structured_counts(&small, &st, seed, row_n, col_n, &x);
        for (int j = 0; j < 6000; j++) {
            macs += x[j] != 0.0f ? col_n[j] : 0.0;
            kept += col_n[j];
        }
        free(x);
    }
    double excess = macs / (kept * 0.25);
    double lo = -10.0, hi = 10.0;
    for (int it = 0; it < 60; it++) {
        double mid = 0.5 * (lo + hi);
        *(gauss_mean(0.4, mid, 0) > 0.1 ? &lo : &hi) = mid;
    }
    double lt = 0.5 * (lo + hi), ta = 0.6744897501960817, s = 0.0, h = 16.0 / 4000;
    for (int k = 0; k < 4000; k++) {
        double z = -8.0 + (k + 0.5) * h;
        double act = 0.5 * erfc(-(0.5 * z - ta) / sqrt(0.75) / sqrt(2.0));
        s += keep(0.4 * z - lt) * act * exp(-0.5 * z * z) * h / sqrt(2.0 * M_PI);
    }
    double want = s / (0.1 * 0.25);
    cr_assert(want > 1.3, "model excess %g", want); /* the test means something */
    cr_assert(fabs(excess - want) < 0.05 * want, "excess %g, model %g", excess, want);
    free(row_n);
    free(col_n);
}

Test(sim_bench, a_structured_layer_is_the_same_for_a_seed)
{
    eie_sim_bench_layer_t small = {"small", 1500, 300, 0.1, 0.3, 0, 0};
    eie_sim_params_t p = eie_sim_params_default();
    eie_sim_report_t a, b, c;
    eie_error_t err;
    cr_assert_eq(eie_sim_bench_run(&small, &p, EIE_SIM_BENCH_STRUCTURED, 7, &a, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(eie_sim_bench_run(&small, &p, EIE_SIM_BENCH_STRUCTURED, 7, &b, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(eie_sim_bench_run(&small, &p, EIE_SIM_BENCH_STRUCTURED, 8, &c, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(a.total.entries, b.total.entries);
    cr_assert_eq(a.total.macs, b.total.macs);
    cr_assert_eq(a.total.cycles, b.total.cycles);
    cr_assert(a.total.entries != c.total.entries || a.total.cycles != c.total.cycles);
    cr_assert_eq(a.total.broadcasts, 450 + 1);
    eie_sim_report_clear(&a);
    eie_sim_report_clear(&b);
    eie_sim_report_clear(&c);
}
