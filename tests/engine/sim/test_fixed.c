/* The 16-bit fixed-point arithmetic of the simulated PE: rounding, saturation, formats. */
#include <criterion/criterion.h>

#include "../format/model_helpers.h"
#include "eie/sim.h"
#include "sim/fixed.h"

Test(fixed, quantize_rounds_half_up)
{
    uint64_t sat = 0;
    cr_assert_eq(eie_fx_quantize(2.5f, 0, &sat), 3);
    cr_assert_eq(eie_fx_quantize(-2.5f, 0, &sat), -2);
    cr_assert_eq(eie_fx_quantize(2.49f, 0, &sat), 2);
    cr_assert_eq(eie_fx_quantize(0.75f, 2, &sat), 3);      /* exact in Q.2 */
    cr_assert_eq(eie_fx_quantize(0.3f, 4, &sat), 5);       /* 4.8 -> 5 */
    cr_assert_eq(eie_fx_quantize(1e-6f, 15, &sat), 0);     /* under half an LSB */
    cr_assert_eq(sat, 0);
}

Test(fixed, quantize_saturates_and_counts)
{
    uint64_t sat = 0;
    cr_assert_eq(eie_fx_quantize(1.0f, 15, &sat), 32767); /* 1.0 is just out of Q0.15 */
    cr_assert_eq(eie_fx_quantize(-1.0f, 15, &sat), -32768); /* -1.0 is in */
    cr_assert_eq(eie_fx_quantize(4e4f, 0, &sat), 32767);
    cr_assert_eq(eie_fx_quantize(-1e30f, 0, &sat), -32768);
    cr_assert_eq(sat, 3);
    cr_assert_eq(eie_fx_quantize(NAN, 8, &sat), 0);
}

Test(fixed, write_back_shift_rounds_half_up)
{
    cr_assert_eq(eie_fx_shift(5, 1), 3);   /* 2.5 -> 3 */
    cr_assert_eq(eie_fx_shift(-5, 1), -2); /* -2.5 -> -2 */
    cr_assert_eq(eie_fx_shift(7, 2), 2);   /* 1.75 -> 2 */
    cr_assert_eq(eie_fx_shift(-7, 2), -2); /* -1.75 -> -2 */
    cr_assert_eq(eie_fx_shift(6, 2), 2);   /* 1.5 -> 2 */
    cr_assert_eq(eie_fx_shift(3, 0), 3);
    cr_assert_eq(eie_fx_shift(3, -4), 48);
    cr_assert_eq(eie_fx_shift(1, 70), 0);
}

Test(fixed, accumulator_saturates_at_48_bits)
{
    cr_assert_eq(eie_fx_acc_add(EIE_FX_ACC_MAX, 1), EIE_FX_ACC_MAX);
    cr_assert_eq(eie_fx_acc_add(EIE_FX_ACC_MIN, -1), EIE_FX_ACC_MIN);
    cr_assert_eq(eie_fx_acc_add(EIE_FX_ACC_MAX, -1), EIE_FX_ACC_MAX - 1);
    cr_assert_eq(eie_fx_shift((int64_t)1 << 40, -20), EIE_FX_ACC_MAX);
    cr_assert_eq(eie_fx_shift(-((int64_t)1 << 40), -20), EIE_FX_ACC_MIN);
}

Test(fixed, write_back_saturates_to_int16)
{
    uint64_t sat = 0;
    cr_assert_eq(eie_fx_sat16(40000, &sat), 32767);
    cr_assert_eq(eie_fx_sat16(-40000, &sat), -32768);
    cr_assert_eq(eie_fx_sat16(-32768, &sat), -32768);
    cr_assert_eq(sat, 2);
}

Test(fixed, format_takes_the_most_fraction_bits_that_fit)
{
    cr_assert_eq(eie_fx_frac_for(0.6, 1.0), 15);  /* Q0.15 holds +-1 */
    cr_assert_eq(eie_fx_frac_for(1.0, 1.0), 14);  /* 1.0 needs an integer bit */
    cr_assert_eq(eie_fx_frac_for(0.2, 1.0), 17);  /* < 0.25: two more fraction bits */
    cr_assert_eq(eie_fx_frac_for(3.0, 4.0), 11);  /* 12 < 16: 4 integer bits */
    cr_assert_eq(eie_fx_frac_for(0.0, 4.0), 15);
    cr_assert_eq(eie_fx_frac_for(1e12, 1.0), EIE_FX_FRAC_MIN);
    cr_assert_eq(eie_fx_frac_for(1e-12, 1.0), EIE_FX_FRAC_MAX);
}

/* A 1 x 1 model with weight w, through the simulator. */
static float sim_1x1(float w, float bias, int relu, float x, eie_sim_report_t *rep)
{
    eie_builder_t *b;
    eie_error_t err;
    float cb[2] = {0.0f, w};
    uint8_t code = 1;
    eie_builder_init("t", "", "in", "out", &b, &err);
    cr_assert_eq(eie_builder_add_fc(b, 1, 1, 1, cb, &code, &bias, &err), 0, "%s", err.msg);
    if (relu)
        eie_builder_add_activation(b, EIE_ACT_RELU, &err);
    eie_model_t *m = th_load_builder(b);
    eie_sim_t *sim;
    cr_assert_eq(eie_sim_init(m, NULL, &sim, &err), 0, "%s", err.msg);
    float y;
    cr_assert_eq(eie_sim_run(sim, &x, &y, rep, &err), 0, "%s", err.msg);
    eie_sim_free(sim);
    eie_model_free(m);
    eie_builder_free(b);
    return y;
}

Test(fixed, relu_in_fixed_point_gives_exact_zero)
{
    eie_sim_report_t r;
    float y = sim_1x1(0.5f, -0.125f, 1, 0.1f, &r);
    cr_assert_eq(y, 0.0f);
    eie_sim_report_clear(&r);
    y = sim_1x1(0.5f, -0.125f, 0, 0.1f, &r);
    cr_assert_float_eq(y, -0.075f, 1e-3);
    eie_sim_report_clear(&r);
}

Test(fixed, input_beyond_the_calibrated_range_saturates_and_is_counted)
{
    /* Probes span [-1, 1]: 4x headroom gives Q3.12 or Q2.13 (range +-8 or +-4). */
    eie_sim_report_t r;
    float y = sim_1x1(0.5f, 0.0f, 0, 1000.0f, &r);
    cr_assert(r.layers[0].in_frac == 12 || r.layers[0].in_frac == 13, "Q.%d",
              r.layers[0].in_frac);
    cr_assert_geq(r.total.saturations, 1);
    cr_assert_lt(y, 8.0f);
    eie_sim_report_clear(&r);
    y = sim_1x1(0.5f, 0.0f, 0, 0.5f, &r);
    cr_assert_eq(r.total.saturations, 0);
    cr_assert_float_eq(y, 0.25f, 1e-3);
    eie_sim_report_clear(&r);
}
