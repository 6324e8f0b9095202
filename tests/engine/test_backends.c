/*
 * Every registered backend (engine.c's registry, whatever it holds) passes
 * the shared consistency suite against the dense reference within the
 * tolerance it declares, on 1, 2, 3, 7 and 64 PEs; and every option it
 * declares parses its own default and refuses what is out of range.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cpu/backend_suite.h"
#include "eie/eie.h"

static void all_backends(suite_case_t c)
{
    static const unsigned pes[] = {1, 2, 3, 7, 64};
    cr_assert_gt(eie_backend_count(), 0);
    for (size_t b = 0; b < eie_backend_count(); b++) {
        const eie_backend_info_t *be = eie_backend_info(b);
        for (size_t p = 0; p < sizeof pes / sizeof pes[0]; p++)
            backend_suite_case_tol(be->name, pes[p], c, be->tolerance);
    }
}

Test(backends, mlp_matches_dense_on_every_backend, .timeout = 120)
{
    all_backends(SUITE_MLP);
}

Test(backends, runs_longer_than_15_match_dense_on_every_backend, .timeout = 120)
{
    all_backends(SUITE_FILLERS);
}

Test(backends, all_zero_columns_match_dense_on_every_backend, .timeout = 120)
{
    all_backends(SUITE_ZERO_COLUMNS);
}

Test(backends, all_zero_inputs_give_bias_on_every_backend, .timeout = 120)
{
    all_backends(SUITE_ZERO_INPUTS);
}

Test(backends, one_by_one_layers_match_dense_on_every_backend, .timeout = 120)
{
    all_backends(SUITE_ONE_BY_ONE);
}

Test(backends, non_square_layers_match_dense_on_every_backend, .timeout = 120)
{
    all_backends(SUITE_NON_SQUARE);
}

Test(backends, eight_bit_codes_match_dense_on_every_backend, .timeout = 120)
{
    all_backends(SUITE_WIDE_CODES);
}

Test(backends, runs_split_over_pes_match_dense_on_every_backend, .timeout = 300)
{
    all_backends(SUITE_PARALLEL);
}

Test(backends, the_registry_names_every_backend_once)
{
    const char *const *names = eie_backend_names();
    size_t n = 0;
    while (names[n] != NULL)
        n++;
    cr_assert_eq(n, eie_backend_count());
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(eie_backend_find(names[i]), eie_backend_info(i));
        cr_assert(eie_backend_info(i)->tolerance > 0.0f, "%s", names[i]);
    }
    cr_assert_null(eie_backend_info(n));
    cr_assert_null(eie_backend_find("gpu"));
}

Test(backends, every_option_parses_its_default_and_refuses_out_of_range)
{
    for (size_t b = 0; b < eie_backend_count(); b++) {
        const eie_backend_info_t *be = eie_backend_info(b);
        for (size_t i = 0; i < be->n_options; i++) {
            const eie_backend_option_t *o = &be->options[i];
            eie_engine_opts_t opts = eie_engine_opts_default();
            eie_error_t err;
            cr_assert_eq(eie_engine_opts_set(&opts, be->name, o->name, o->def, &err),
                         EIE_STATUS_OK, "%s.%s = %s: %s", be->name, o->name, o->def, err.msg);
            cr_assert(o->help != NULL && o->help[0] != '\0', "%s.%s has no help", be->name,
                      o->name);
            for (size_t k = 0; k < i; k++)
                cr_assert_str_neq(be->options[k].name, o->name, "%s: two options %s", be->name,
                                  o->name);
            if (o->type == EIE_OPTION_UINT || o->type == EIE_OPTION_UINT64 ||
                o->type == EIE_OPTION_DOUBLE) {
                char over[64];
                snprintf(over, sizeof over, "%.0f", o->max + 1);
                cr_assert_eq(eie_engine_opts_set(&opts, be->name, o->name, over, &err),
                             EIE_STATUS_INVALID_ARGUMENT, "%s.%s = %s", be->name, o->name, over);
                cr_assert(strstr(err.msg, o->name) != NULL && strstr(err.msg, over) != NULL,
                          "%s", err.msg);
                cr_assert_eq(eie_engine_opts_set(&opts, be->name, o->name, "x", &err),
                             EIE_STATUS_INVALID_ARGUMENT);
            }
            if (o->type == EIE_OPTION_BOOL)
                cr_assert_eq(eie_engine_opts_set(&opts, be->name, o->name, "yes", &err),
                             EIE_STATUS_INVALID_ARGUMENT);
        }
    }
}

/* What eied logs when an engine starts: the cpu backend's kernel variant
   and the options that change how it runs; nothing for eie-sim. */
Test(backends, an_engine_describes_its_settings_in_one_line)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    eie_error_t err;
    eie_engine_t *e;
    o.n_pes = 1;
    o.cpu_kernel = "scalar";
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_str_eq(eie_engine_describe(e), "kernel scalar");
    eie_engine_free(e);
    o.cpu_batch_invariant = 1;
    o.cpu_column_only = 1;
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_str_eq(eie_engine_describe(e), "kernel scalar, column_only, batch_invariant");
    eie_engine_free(e);
    o.backend = "eie-sim";
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_OK, "%s", err.msg);
    cr_assert_str_eq(eie_engine_describe(e), "");
    eie_engine_free(e);
}

Test(backends, an_option_sets_the_field_the_engine_reads)
{
    eie_engine_opts_t o = eie_engine_opts_default();
    eie_error_t err;
    cr_assert_eq(eie_engine_opts_set(&o, "eie-sim", "fifo_depth", "16", &err), EIE_STATUS_OK);
    cr_assert_eq(o.sim_fifo_depth, 16);
    cr_assert_eq(eie_engine_opts_set(&o, "eie-sim", "clock_mhz", "1000.5", &err), EIE_STATUS_OK);
    cr_assert_float_eq(o.sim_clock_mhz, 1000.5, 1e-9);
    cr_assert_eq(eie_engine_opts_set(&o, "cpu", "column_only", "true", &err), EIE_STATUS_OK);
    cr_assert_eq(o.cpu_column_only, 1);
    cr_assert_eq(eie_engine_opts_set(&o, "cpu", "max_layout_bytes", "5000000000", &err),
                 EIE_STATUS_OK);
    cr_assert_eq(o.max_layout_bytes, 5000000000ull);
    cr_assert_eq(eie_engine_opts_set(&o, "cpu", "fifo_depth", "4", &err), EIE_STATUS_NOT_FOUND);
    cr_assert(strstr(err.msg, "cpu") != NULL && strstr(err.msg, "fifo_depth") != NULL, "%s",
              err.msg);
    cr_assert_eq(eie_engine_opts_set(&o, "tpu", "x", "1", &err), EIE_STATUS_NOT_FOUND);
    cr_assert(strstr(err.msg, "tpu") != NULL, "%s", err.msg);
}
