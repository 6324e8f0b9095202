/*
 * The element-wise activations' own tanh (act.h, eie_tanhf) against the
 * float64 tanh: every 251st float bit pattern of both signs (all of them
 * measured 1.49 ulp at worst), and the values a model can feed it at the
 * edges: signed zeros, subnormals, infinities, NaN.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "act.h"

/* The float ulp at the float nearest to v (the smallest subnormal at 0). */
static double ulp_at(double v)
{
    float f = (float)v;
    if (f == 0.0f)
        return ldexp(1.0, -149);
    int e;
    frexp(fabs((double)f), &e);
    double u = ldexp(1.0, e - 24);
    return u < ldexp(1.0, -149) ? ldexp(1.0, -149) : u;
}

Test(act, tanh_within_one_and_a_half_ulp_of_float64)
{
    double worst = 0.0;
    float worst_x = 0.0f;
    for (uint64_t u = 0; u <= 0xffffffffu; u += 251) {
        uint32_t b = (uint32_t)u;
        float x;
        memcpy(&x, &b, sizeof x);
        if (isnan(x))
            continue;
        float y = eie_tanhf(x);
        double err = fabs((double)y - tanh((double)x)) / ulp_at(tanh((double)x));
        if (err > worst) {
            worst = err;
            worst_x = x;
        }
        cr_assert_eq(signbit(y) != 0, signbit(x) != 0, "tanh(%.9g) = %.9g: sign", (double)x,
                     (double)y);
        cr_assert(fabsf(y) <= 1.0f, "tanh(%.9g) = %.9g", (double)x, (double)y);
    }
    cr_assert(worst <= 1.5, "worst %.3f ulp at %.9g", worst, (double)worst_x);
}

Test(act, tanh_edges)
{
    cr_assert(signbit(eie_tanhf(-0.0f)) && eie_tanhf(-0.0f) == 0.0f);
    cr_assert(!signbit(eie_tanhf(0.0f)) && eie_tanhf(0.0f) == 0.0f);
    cr_assert_eq(eie_tanhf(0x1p-149f), 0x1p-149f);
    cr_assert_eq(eie_tanhf(-0x1p-130f), -0x1p-130f);
    cr_assert_eq(eie_tanhf(INFINITY), 1.0f);
    cr_assert_eq(eie_tanhf(-INFINITY), -1.0f);
    cr_assert_eq(eie_tanhf(100.0f), 1.0f);
    cr_assert_eq(eie_tanhf(-3e38f), -1.0f);
    cr_assert(isnan(eie_tanhf(NAN)));
    /* the branch point, from both sides, and odd symmetry bit for bit */
    float xs[] = {0.55f, nextafterf(0.55f, 0.0f), 0x1p-12f, nextafterf(0x1p-12f, 0.0f), 1.0f, 9.0f};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        float p = eie_tanhf(xs[i]), m = eie_tanhf(-xs[i]);
        cr_assert_eq(m, -p, "tanh(-%.9g) = %.9g, tanh(%.9g) = %.9g", (double)xs[i], (double)m,
                     (double)xs[i], (double)p);
        double err = fabs((double)p - tanh((double)xs[i])) / ulp_at(tanh((double)xs[i]));
        cr_assert(err <= 1.5, "tanh(%.9g): %.3f ulp", (double)xs[i], err);
    }
    cr_assert_eq(eie_act_apply1(EIE_ACT_TANH, 0.3f), eie_tanhf(0.3f));
}
