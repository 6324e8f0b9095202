/* Every kernel variant of the cpu backend, forced through the engine option
 * cpu_kernel, against a float64 reference and across PE counts; and the
 * option itself (engine.kernel in the daemon, EIE_KERNEL). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../format/model_helpers.h"
#include "cpu/kernels.h"
#include "eie/eie.h"
#include "graph_ops.h"

/* Two FC layers, no activation between them, so that the second takes the
 * first's output in the engine's feature-major form (the first reads the
 * caller's batch-major input). */
typedef enum { CASE_NARROW, CASE_WIDE_CODES, CASE_WIDE_ROWS, N_CASES } case_t;

static const char *const case_names[N_CASES] = {"narrow", "8-bit codes", "4100 rows"};

/* A layer with every fifth column empty and column 1 holding only rows 0
 * and rows - 1 (a zero-run of rows - 2: the file needs fillers there). */
static void add_layer(eie_builder_t *b, uint32_t rows, uint32_t cols, uint32_t bits, double density,
                      uint64_t *seed)
{
    size_t ncb = (size_t)1 << bits;
    float *cb = malloc(ncb * sizeof(float));
    uint8_t *codes = calloc((size_t)rows * cols, 1);
    float *bias = malloc(rows * sizeof(float));
    cb[0] = 0.0f;
    for (size_t k = 1; k < ncb; k++)
        cb[k] = th_uniform(seed) * 2.0f - 1.0f + (k % 2 ? 0.1f : -0.1f);
    for (uint32_t r = 0; r < rows; r++) {
        bias[r] = th_uniform(seed) - 0.5f;
        for (uint32_t j = 0; j < cols; j++)
            if (j % 5 != 0 && j != 1 && th_uniform(seed) < density)
                codes[(size_t)r * cols + j] = (uint8_t)(1 + th_rand(seed) % (ncb - 1));
    }
    codes[1] = 1;
    codes[(size_t)(rows - 1) * cols + 1] = (uint8_t)(ncb - 1);
    eie_error_t err;
    cr_assert_eq(eie_builder_add_fc(b, rows, cols, bits, cb, codes, bias, &err), 0, "%s", err.msg);
    free(cb);
    free(codes);
    free(bias);
}

/* relu: a ReLU between the layers (the second then has no row form). */
static eie_model_t *case_model(case_t c, int relu)
{
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 1000 + (uint64_t)c;
    eie_builder_init("variants", "", "", "", &b, &err);
    if (c == CASE_NARROW) { /* 16-bit entries, the row form at batch 1 */
        add_layer(b, 150, 40, 4, 0.3, &seed);
        if (relu)
            cr_assert_eq(eie_builder_add_activation(b, EIE_ACT_RELU, &err), 0);
        add_layer(b, 60, 150, 4, 0.3, &seed);
    } else if (c == CASE_WIDE_CODES) { /* 32-bit entries, no pre-scaled codebook */
        add_layer(b, 90, 40, 8, 0.3, &seed);
        add_layer(b, 30, 90, 8, 0.3, &seed);
    } else { /* 32-bit entries at 1 PE (over 4096 local rows), 16-bit at more */
        add_layer(b, 4100, 24, 4, 0.05, &seed);
        add_layer(b, 16, 4100, 4, 0.02, &seed);
    }
    eie_model_t *m = th_load_builder(b);
    cr_assert_not_null(m);
    eie_builder_free(b);
    return m;
}

/* The model in float64, skipping zero weights as EIE does (a NaN input
 * reaches only the rows with a weight in its column; -0.0 adds nothing). */
static void reference(const eie_model_t *m, const float *x, size_t B, float *y)
{
    size_t n_layers = eie_model_layer_count(m); /* all FC here */
    uint32_t dim = eie_model_input_dim(m);
    double *cur = malloc((size_t)B * dim * sizeof(double));
    for (size_t i = 0; i < (size_t)B * dim; i++)
        cur[i] = x[i];
    for (size_t l = 0; l < n_layers; l++) {
        const eie_fc_t *fc = eie_model_fc(m, l);
        float *w = malloc((size_t)fc->rows * fc->cols * sizeof(float));
        eie_model_fc_dense(m, l, w);
        const float *bias = eie_model_fc_bias(m, l);
        double *next = malloc((size_t)B * fc->rows * sizeof(double));
        for (size_t b = 0; b < B; b++)
            for (uint32_t r = 0; r < fc->rows; r++) {
                double s = 0.0;
                for (uint32_t j = 0; j < fc->cols; j++)
                    if (w[(size_t)r * fc->cols + j] != 0.0f)
                        s += (double)w[(size_t)r * fc->cols + j] * cur[b * fc->cols + j];
                next[b * fc->rows + r] = s + bias[r];
            }
        free(w);
        free(cur);
        cur = next;
        dim = fc->rows;
    }
    for (size_t i = 0; i < (size_t)B * dim; i++)
        y[i] = (float)cur[i];
    free(cur);
}

/* Both NaN, or within tol * max(1, |want|). */
static long mismatch(const float *got, const float *want, size_t n, float tol)
{
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i]) || isnan(got[i])) {
            if (!(isnan(want[i]) && isnan(got[i])))
                return (long)i;
            continue;
        }
        float scale = fabsf(want[i]) > 1.0f ? fabsf(want[i]) : 1.0f;
        if (!(fabsf(got[i] - want[i]) <= tol * scale))
            return (long)i;
    }
    return -1;
}

enum { INPUT_MIXED, INPUT_ZERO, INPUT_DENSE, N_INPUTS };
static const char *const input_names[N_INPUTS] = {"mixed, NaN, -0.0", "all zero", "all nonzero"};

/* B rows of in values. */
static void make_input(int kind, float *x, size_t B, size_t in, uint64_t *seed)
{
    size_t n = B * in;
    for (size_t i = 0; i < n; i++) {
        float v = th_uniform(seed) * 2.0f - 1.0f;
        if (kind == INPUT_ZERO)
            v = 0.0f;
        else if (kind == INPUT_DENSE)
            v = v != 0.0f ? v : 0.25f;
        else if (th_uniform(seed) < 0.4f)
            v = 0.0f;
        x[i] = v;
    }
    if (kind == INPUT_MIXED) { /* columns 2, 3 and 7 hold weights in every case */
        x[2] = -0.0f;
        x[n - in + 7] = -0.0f;
        x[(n / in / 2) * in + 3] = NAN;
    }
}

/* The variant named, on every case, batch and input kind: 1 PE against the
 * reference, 2, 3 and 7 PEs bit-identical to 1 PE. Skipped, by name, where
 * the list lacks the variant or this CPU does not run it. */
static void check_variant(const char *name)
{
    const eie_cpu_kernel_t *k = NULL;
    for (size_t i = 0; i < eie_cpu_kernel_count; i++)
        if (strcmp(eie_cpu_kernels[i].name, name) == 0)
            k = &eie_cpu_kernels[i];
    if (k == NULL)
        cr_skip("kernel %s: not built for this architecture", name);
    if (!k->supported())
        cr_skip("kernel %s: not supported by this CPU", name);
    static const size_t batches[] = {1, 2, 3, 4, 5, 8, 15, 16};
    static const unsigned pes[] = {1, 2, 3, 7};
    uint64_t seed = 99;
    for (int c = 0; c < N_CASES; c++) {
        eie_model_t *m = case_model((case_t)c, 0);
        uint32_t in = eie_model_input_dim(m), out = eie_model_output_dim(m);
        float *x = malloc(16 * (size_t)in * sizeof(float));
        float *ref = malloc(16 * (size_t)out * sizeof(float));
        float *y1 = malloc(16 * (size_t)out * sizeof(float));
        float *y = malloc(16 * (size_t)out * sizeof(float));
        eie_engine_t *e[4];
        eie_net_t *net[4];
        eie_error_t err;
        for (size_t pi = 0; pi < 4; pi++) {
            eie_engine_opts_t o = {.backend = "cpu", .n_pes = pes[pi], .cpu_kernel = name};
            cr_assert_eq(eie_engine_init(&o, &e[pi], &err), 0, "%s", err.msg);
            cr_assert_eq(eie_net_init(e[pi], m, &net[pi], &err), 0, "%s", err.msg);
        }
        for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++)
            for (int kind = 0; kind < N_INPUTS; kind++) {
                size_t B = batches[bi];
                make_input(kind, x, B, in, &seed);
                reference(m, x, B, ref);
                for (size_t pi = 0; pi < 4; pi++) {
                    float *dst = pi == 0 ? y1 : y;
                    cr_assert_eq(eie_net_run(net[pi], x, B, dst, NULL, &err), 0, "%s", err.msg);
                    if (pi == 0) {
                        long bad = mismatch(y1, ref, B * out, 1e-4f);
                        cr_assert_eq(bad, -1,
                                     "kernel %s, %s, batch %zu, input %s: output %ld is %g, "
                                     "want %g",
                                     name, case_names[c], B, input_names[kind], bad,
                                     bad >= 0 ? y1[bad] : 0.0, bad >= 0 ? ref[bad] : 0.0);
                    } else {
                        cr_assert(memcmp(y1, y, B * out * sizeof(float)) == 0,
                                  "kernel %s, %s, batch %zu, input %s: %u PEs differ from 1", name,
                                  case_names[c], B, input_names[kind], pes[pi]);
                    }
                }
            }
        for (size_t pi = 0; pi < 4; pi++) {
            eie_net_free(net[pi]);
            eie_engine_free(e[pi]);
        }
        free(x);
        free(ref);
        free(y1);
        free(y);
        eie_model_free(m);
    }
}

Test(variants, scalar_matches_the_reference_and_itself_across_pe_counts)
{
    check_variant("scalar");
}

Test(variants, avx2_matches_the_reference_and_itself_across_pe_counts)
{
    check_variant("avx2");
}

Test(variants, avx512_matches_the_reference_and_itself_across_pe_counts)
{
    check_variant("avx512");
}

/* Every variant in the list has a test above. */
Test(variants, every_listed_variant_has_a_test)
{
    for (size_t i = 0; i < eie_cpu_kernel_count; i++) {
        const char *n = eie_cpu_kernels[i].name;
        cr_assert(strcmp(n, "scalar") == 0 || strcmp(n, "avx2") == 0 || strcmp(n, "avx512") == 0,
                  "kernel %s has no test in test_variants.c", n);
    }
}

/* Batches of 2 to 16 rows of x (the narrow case; relu: with a ReLU between
 * its layers) on every variant this CPU runs, on 1 and 2 PEs: each batch
 * the scalar variant's bits on 1 PE, and each row run alone the bits of its
 * row in the batch. */
static void check_batches_keep_the_scalar_bits(int relu, int kind, int batch_invariant,
                                               uint64_t seed)
{
    eie_model_t *m = case_model(CASE_NARROW, relu);
    uint32_t in = eie_model_input_dim(m), out = eie_model_output_dim(m);
    float x[16 * 40], want[16 * 60], got[16 * 60], one[60];
    make_input(kind, x, 16, in, &seed);
    for (size_t i = 0; i < eie_cpu_kernel_count; i++) {
        const char *name = eie_cpu_kernels[i].name;
        if (!eie_cpu_kernels[i].supported()) {
            cr_log_warn("kernel %s: not supported by this CPU, skipped", name);
            continue;
        }
        for (unsigned n_pes = 1; n_pes <= 2; n_pes++) {
            eie_engine_opts_t o = {.backend = "cpu",
                                   .n_pes = n_pes,
                                   .cpu_kernel = name,
                                   .cpu_batch_invariant = batch_invariant};
            eie_engine_t *e;
            eie_net_t *net;
            eie_error_t err;
            cr_assert_eq(eie_engine_init(&o, &e, &err), 0, "%s", err.msg);
            cr_assert_eq(eie_net_init(e, m, &net, &err), 0, "%s", err.msg);
            for (size_t B = 2; B <= 16; B++) {
                float *y = i == 0 && n_pes == 1 ? want : got;
                cr_assert_eq(eie_net_run(net, x, B, y, NULL, &err), 0);
                if (y == got)
                    cr_assert(memcmp(want, got, B * out * sizeof(float)) == 0,
                              "kernel %s, %u PEs, batch %zu differs from scalar", name, n_pes, B);
                for (size_t b = 0; b < B; b++) {
                    cr_assert_eq(eie_net_run(net, x + b * in, 1, one, NULL, &err), 0);
                    cr_assert(memcmp(one, y + b * out, sizeof one) == 0,
                              "kernel %s, %u PEs: row %zu of batch %zu differs from its batch-1 "
                              "run",
                              name, n_pes, b, B);
                }
            }
            eie_net_free(net);
            eie_engine_free(e);
        }
    }
    eie_model_free(m);
}

/* The variants give the same outputs, bit for bit (all but the batch-1 row
 * form, which fuses its multiply-adds where the CPU has FMA; a ReLU between
 * the layers keeps it out of this test): a batch's product is rounded
 * before it is added, as in the scalar reference. So a row's result depends
 * neither on the variant nor on the batch it ran in. */
Test(variants, batch_kernels_give_the_scalar_reference_bits)
{
    check_batches_keep_the_scalar_bits(1, INPUT_MIXED, 0, 5);
}

/* With cpu_batch_invariant the same holds for dense rows with no ReLU
 * before the second layer (60 x 150, its input the first's output): a row
 * alone then keeps the column walk at batch 1 instead of the row form that
 * fuses its multiply-adds. Without the option this fails in every variant. */
Test(variants, batch_invariant_engines_give_a_dense_row_the_bits_of_its_batch)
{
    check_batches_keep_the_scalar_bits(0, INPUT_DENSE, 1, 7);
}

/* An unknown or unsupported name fails engine init, naming the value and
 * what this CPU runs; EIE_KERNEL chooses when the option is not set. */
Test(variants, a_bad_kernel_name_fails_engine_init_with_the_choices)
{
    eie_engine_t *e;
    eie_error_t err;
    eie_engine_opts_t o = {.backend = "cpu", .n_pes = 1, .cpu_kernel = "avx9"};
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "\"avx9\": no such kernel; this CPU runs scalar") != NULL, "%s",
              err.msg);
    for (size_t i = 0; i < eie_cpu_kernel_count; i++)
        if (eie_cpu_kernels[i].supported())
            cr_assert(strstr(err.msg, eie_cpu_kernels[i].name) != NULL,
                      "%s does not list the supported %s", err.msg, eie_cpu_kernels[i].name);
    for (size_t i = 0; i < eie_cpu_kernel_count; i++)
        if (!eie_cpu_kernels[i].supported()) {
            o.cpu_kernel = eie_cpu_kernels[i].name;
            cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_INVALID_ARGUMENT);
            cr_assert(strstr(err.msg, "not supported by this CPU") != NULL, "%s", err.msg);
        }
    cr_assert_eq(setenv("EIE_KERNEL", "bogus", 1), 0);
    o.cpu_kernel = NULL;
    cr_assert_eq(eie_engine_init(&o, &e, &err), EIE_STATUS_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "\"bogus\" (from EIE_KERNEL): no such kernel") != NULL, "%s",
              err.msg);
    o.cpu_kernel = "scalar"; /* the option wins over the environment */
    cr_assert_eq(eie_engine_init(&o, &e, &err), 0, "%s", err.msg);
    eie_engine_free(e);
    cr_assert_eq(setenv("EIE_KERNEL", "scalar", 1), 0);
    o.cpu_kernel = NULL;
    cr_assert_eq(eie_engine_init(&o, &e, &err), 0, "%s", err.msg);
    eie_engine_free(e);
    unsetenv("EIE_KERNEL");
}

/* Every layer keeps the row form now, also after a ReLU, but a batch-1 run
 * takes the fused batch-1 row form only where the input may be dense: a
 * ReLU output with every activation positive (weights and inputs not
 * negative, bias 1) still gives, row by row, the bits of the same rows in
 * a batch (which takes the rounded row form from 8 lanes on). */
Test(variants, batch_1_after_a_relu_keeps_the_batch_bits_with_dense_activations)
{
    enum { IN = 24, HID = 64, OUT = 20 };
    eie_builder_t *b;
    eie_error_t err;
    uint64_t seed = 12;
    eie_builder_init("relu-dense", "", "", "", &b, &err);
    float cb[16] = {0.0f}, bias1[HID], bias2[OUT];
    for (int k = 1; k < 16; k++)
        cb[k] = 0.01f * (float)k + 0.003f;
    uint8_t c1[HID * IN], c2[OUT * HID];
    for (size_t i = 0; i < sizeof c1; i++)
        c1[i] = th_uniform(&seed) < 0.5f ? (uint8_t)(1 + th_rand(&seed) % 15) : 0;
    for (size_t i = 0; i < sizeof c2; i++)
        c2[i] = th_uniform(&seed) < 0.6f ? (uint8_t)(1 + th_rand(&seed) % 15) : 0;
    for (int i = 0; i < HID; i++)
        bias1[i] = 1.0f;
    for (int i = 0; i < OUT; i++)
        bias2[i] = 0.0f;
    cr_assert_eq(eie_builder_add_fc(b, HID, IN, 4, cb, c1, bias1, &err), 0, "%s", err.msg);
    cr_assert_eq(eie_builder_add_activation(b, EIE_ACT_RELU, &err), 0);
    cr_assert_eq(eie_builder_add_fc(b, OUT, HID, 4, cb, c2, bias2, &err), 0, "%s", err.msg);
    eie_model_t *m = th_load_builder(b);
    eie_builder_free(b);
    float x[16 * IN], y[16 * OUT], one[OUT];
    /* a quarter of the inputs zero: the first layer takes the column form
     * at batch 1 (the fused row form is for inputs nearly all nonzero) */
    for (size_t i = 0; i < 16 * IN; i++)
        x[i] = i % 4 == 1 ? 0.0f : 0.1f + th_uniform(&seed);
    for (size_t i = 0; i < eie_cpu_kernel_count; i++) {
        if (!eie_cpu_kernels[i].supported())
            continue;
        eie_engine_opts_t o = {.backend = "cpu", .n_pes = 2, .cpu_kernel = eie_cpu_kernels[i].name};
        eie_engine_t *e;
        eie_net_t *net;
        cr_assert_eq(eie_engine_init(&o, &e, &err), 0, "%s", err.msg);
        cr_assert_eq(eie_net_init(e, m, &net, &err), 0, "%s", err.msg);
        cr_assert_eq(eie_net_run(net, x, 16, y, NULL, &err), 0, "%s", err.msg);
        for (size_t r = 0; r < 16; r++) {
            cr_assert_eq(eie_net_run(net, x + r * IN, 1, one, NULL, &err), 0);
            cr_assert(memcmp(one, y + r * OUT, sizeof one) == 0,
                      "kernel %s: row %zu alone differs from its batch-16 run",
                      eie_cpu_kernels[i].name, r);
        }
        eie_net_free(net);
        eie_engine_free(e);
    }
    eie_model_free(m);
}

/* The LSTM cells of every variant this CPU runs against the scalar unit
 * (graph_ops.h, eie_op_lstm_unit), bit for bit: gates over the whole range
 * of the exponential, both sides of tanh's branch points, its ends, zeros
 * of both signs, subnormals, infinities and NaN; 1037 units, so the vector
 * loops' tails run too. A NaN must stay NaN (its payload may come from
 * either operand). */
#define CELLS 1037u

/* The variants this CPU runs, in list order: the next after *i (start at
 * 0), or NULL at the end; each one it does not run is logged as skipped, by
 * name. */
static const eie_cpu_kernel_t *next_variant(size_t *i)
{
    for (; *i < eie_cpu_kernel_count; (*i)++) {
        const eie_cpu_kernel_t *k = &eie_cpu_kernels[*i];
        if (k->supported()) {
            (*i)++;
            return k;
        }
        cr_log_warn("kernel %s: not supported by this CPU, skipped", k->name);
    }
    return NULL;
}

static float cell_input(uint64_t *seed, size_t i)
{
    static const float edges[] = {0.0f,    -0.0f,      0x1p-149f, -0x1p-130f, 0x1p-12f, 0.7f,
                                  -0.7f,   0.6999999f, 88.72283f, -88.72283f, 89.0f,    -104.0f,
                                  -103.5f, 44.0f,      INFINITY,  -INFINITY,  NAN,      1e30f};
    if (i % 7 == 0)
        return edges[(i / 7) % (sizeof edges / sizeof edges[0])];
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    double u = (double)(*seed >> 11) / 9007199254740992.0; /* [0, 1) */
    return i % 3 == 0 ? (float)(240.0 * u - 120.0) : (float)(8.0 * u - 4.0);
}

static int same_bits(float a, float b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

Test(variants, lstm_cells_give_the_scalar_unit_bits)
{
    static float g[4][CELLS], c0[CELLS], want_c[CELLS], want_h[CELLS], c[CELLS], h[CELLS];
    uint64_t seed = 7;
    for (size_t j = 0; j < CELLS; j++) {
        for (int q = 0; q < 4; q++)
            g[q][j] = cell_input(&seed, 4 * j + (size_t)q);
        c0[j] = cell_input(&seed, j + 3);
        float unit[4] = {g[0][j], g[1][j], g[2][j], g[3][j]};
        want_c[j] = c0[j];
        want_h[j] = eie_op_lstm_unit(unit, &want_c[j]);
    }
    int ran = 0;
    const eie_cpu_kernel_t *k;
    for (size_t i = 0; (k = next_variant(&i)) != NULL;) {
        memcpy(c, c0, sizeof c);
        k->lstm_cells(g[0], g[1], g[2], g[3], c, h, CELLS);
        for (size_t j = 0; j < CELLS; j++) {
            cr_assert(same_bits(h[j], want_h[j]), "%s: unit %zu: h %a, the scalar unit %a", k->name,
                      j, (double)h[j], (double)want_h[j]);
            cr_assert(same_bits(c[j], want_c[j]), "%s: unit %zu: c %a, the scalar unit %a", k->name,
                      j, (double)c[j], (double)want_c[j]);
        }
        ran++;
    }
    cr_assert(ran >= 1);
}

/* Each variant's activation over an array (act_n) against eie_act_apply1,
 * bit for bit, out of place and in place, on the inputs of the cells test;
 * 1037 values, so the vector loops' tails run too. */
Test(variants, act_n_gives_the_scalar_bits)
{
    static const eie_act_t acts[] = {EIE_ACT_IDENTITY, EIE_ACT_RELU, EIE_ACT_SIGMOID, EIE_ACT_TANH};
    static float x[CELLS], want[CELLS], y[CELLS];
    uint64_t seed = 11;
    for (size_t i = 0; i < CELLS; i++)
        x[i] = cell_input(&seed, i);
    int ran = 0;
    const eie_cpu_kernel_t *k;
    for (size_t i = 0; (k = next_variant(&i)) != NULL;) {
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
            for (size_t j = 0; j < CELLS; j++)
                want[j] = eie_act_apply1(acts[a], x[j]);
            for (int in_place = 0; in_place < 2; in_place++) {
                if (in_place)
                    memcpy(y, x, sizeof y);
                k->act_n(acts[a], in_place ? y : x, y, CELLS);
                for (size_t j = 0; j < CELLS; j++)
                    cr_assert(same_bits(y[j], want[j]), "%s: act %d%s: x %a: %a, the scalar %a",
                              k->name, (int)acts[a], in_place ? " in place" : "", (double)x[j],
                              (double)y[j], (double)want[j]);
            }
        }
        ran++;
    }
    cr_assert(ran >= 1);
}
