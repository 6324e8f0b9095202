/* The shared backend consistency suite; see backend_suite.h. */
#include "backend_suite.h"

#include <criterion/criterion.h>

#include "../format/model_helpers.h"

eie_model_t *backend_suite_model(suite_case_t c)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 1000 + (uint64_t)c;
    cr_assert_eq(eie_builder_init("suite", "", "in", "out", &b, &err), 0);
    switch (c) {
    case SUITE_MLP:
        th_add_random_fc(b, 64, 100, 0.15, 4, &seed, &err);
        eie_builder_add_activation(b, EIE_ACT_RELU, &err);
        th_add_random_fc(b, 33, 64, 0.3, 4, &seed, &err);
        eie_builder_add_activation(b, EIE_ACT_SIGMOID, &err);
        eie_builder_add_activation(b, EIE_ACT_TANH, &err);
        th_add_random_fc(b, 10, 33, 0.5, 3, &seed, &err);
        eie_builder_add_activation(b, EIE_ACT_SOFTMAX, &err);
        break;
    case SUITE_FILLERS:
        th_add_random_fc(b, 1000, 30, 0.01, 4, &seed, &err);
        break;
    case SUITE_ZERO_COLUMNS: {
        uint32_t rows = 20, cols = 30;
        uint8_t *codes = calloc(rows * cols, 1);
        float cb[4] = {0.0f, 0.5f, -1.25f, 2.0f};
        for (uint32_t r = 0; r < rows; r++)
            for (uint32_t col = 0; col < cols; col++)
                if (col % 3 != 0 && th_uniform(&seed) < 0.4f)
                    codes[r * cols + col] = (uint8_t)(1 + th_rand(&seed) % 3);
        cr_assert_eq(eie_builder_add_fc(b, rows, cols, 2, cb, codes, NULL, &err), 0);
        free(codes);
        eie_builder_add_activation(b, EIE_ACT_RELU, &err);
        th_add_random_fc(b, 5, 20, 0.5, 4, &seed, &err);
        break;
    }
    case SUITE_ZERO_INPUTS:
        th_add_random_fc(b, 40, 50, 0.2, 4, &seed, &err);
        break;
    case SUITE_ONE_BY_ONE:
        th_add_random_fc(b, 1, 1, 1.0, 1, &seed, &err);
        eie_builder_add_activation(b, EIE_ACT_RELU, &err);
        th_add_random_fc(b, 1, 1, 1.0, 2, &seed, &err);
        break;
    case SUITE_NON_SQUARE:
        th_add_random_fc(b, 7, 300, 0.2, 4, &seed, &err);
        th_add_random_fc(b, 257, 7, 0.5, 4, &seed, &err);
        break;
    case SUITE_WIDE_CODES:
        th_add_random_fc(b, 90, 45, 0.3, 8, &seed, &err);
        eie_builder_add_activation(b, EIE_ACT_IDENTITY, &err);
        break;
    case SUITE_PARALLEL:
        th_add_random_fc(b, 512, 300, 0.5, 4, &seed, &err);
        eie_builder_add_activation(b, EIE_ACT_RELU, &err);
        th_add_random_fc(b, 96, 512, 0.3, 4, &seed, &err);
        eie_builder_add_activation(b, EIE_ACT_SOFTMAX, &err);
        break;
    default:
        cr_assert_fail("unknown case %d", (int)c);
    }
    eie_model_t *m = th_load_builder(b);
    cr_assert_not_null(m);
    eie_builder_free(b);
    return m;
}

void backend_suite_case(const char *backend, unsigned n_pes, suite_case_t c)
{
    backend_suite_case_tol(backend, n_pes, c, 1e-5f);
}

void backend_suite_case_tol(const char *backend, unsigned n_pes, suite_case_t c, float tol)
{
    eie_model_t *m = backend_suite_model(c);
    eie_engine_opts_t o = eie_engine_opts_default();
    o.backend = backend;
    o.n_pes = n_pes;
    eie_engine_t *e;
    eie_net_t *net;
    eie_error_t err;
    cr_assert_eq(eie_engine_init(&o, &e, &err), 0, "%s", err.msg);
    cr_assert_eq(eie_engine_pes(e), n_pes);
    cr_assert_eq(eie_net_init(e, m, &net, &err), 0, "%s", err.msg);
    size_t in = eie_model_input_dim(m), out = eie_model_output_dim(m);
    cr_assert_eq(eie_net_input_dim(net), in);
    cr_assert_eq(eie_net_output_dim(net), out);
    size_t batches[2] = {1, 19};
    uint64_t seed = 77 + c;
    for (int bi = 0; bi < 2; bi++) {
        size_t B = batches[bi];
        float *x = calloc(B * in, sizeof(float));
        float *y = malloc(B * out * sizeof(float));
        float *ref = malloc(B * out * sizeof(float));
        if (c != SUITE_ZERO_INPUTS)
            th_random_input(x, B * in, 0.4, &seed);
        cr_assert_eq(eie_net_run(net, x, B, y, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(eie_model_run_dense(m, x, B, ref, &err), 0);
        long bad = th_mismatch(y, ref, B * out, tol);
        cr_assert_eq(bad, -1, "%s, %u PEs, case %d, batch %zu: y[%ld] = %g, dense %g", backend,
                     n_pes, (int)c, B, bad, bad >= 0 ? (double)y[bad] : 0.0,
                     bad >= 0 ? (double)ref[bad] : 0.0);
        free(x);
        free(y);
        free(ref);
    }
    eie_net_free(net);
    eie_engine_free(e);
    eie_model_free(m);
}

void backend_suite_all(const char *backend)
{
    static const unsigned pes[] = {1, 2, 3, 7, 64};
    for (size_t p = 0; p < sizeof pes / sizeof pes[0]; p++)
        for (int c = 0; c < SUITE_CASE_COUNT_; c++)
            backend_suite_case(backend, pes[p], (suite_case_t)c);
}
