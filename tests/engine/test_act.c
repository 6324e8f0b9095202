/*
 * The element-wise activations' own exp, sigmoid and tanh (act.h) against
 * float64: every 251st float bit pattern of both signs (all of them
 * measured: exp 0.95 ulp at worst, tanh 1.06, sigmoid 2.48 where its
 * result is normal), and the values a model can feed them at the edges:
 * signed zeros, subnormals, infinities, NaN, the ends of exp's range.
 * Each function's select form (eie_*_sel, for vector loops) gives the
 * same bits at every point checked.
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

/* The select form (for vector loops) gives the branchy form's bits; NaN in,
 * NaN out from both. */
static void same_bits(float a, float b, const char *what, float x)
{
    cr_assert((isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0,
              "%s(%a): %a, its select form %a", what, (double)x, (double)a, (double)b);
}

typedef struct act_fn {
    const char *name;
    float (*f)(float), (*sel)(float);
    double (*ref)(double);
    void (*check)(float x, float y); /* more asserts on each value; may be NULL */
    double skip_below;               /* no ulp count where ref is below (0: none) */
} act_fn_t;

/* Every 251st float bit pattern but NaN: the select form's bits, the
 * check, and the worst error in ulp, at most bound. Where float64 says the
 * result overflows (half an ulp past the largest float) it must be +inf. */
static void sweep(const act_fn_t *a, double bound)
{
    double worst = 0.0;
    float worst_x = 0.0f;
    for (uint64_t u = 0; u <= 0xffffffffu; u += 251) {
        float x = eie_u2f((uint32_t)u);
        if (isnan(x))
            continue;
        float y = a->f(x);
        same_bits(y, a->sel(x), a->name, x);
        if (a->check)
            a->check(x, y);
        double ref = a->ref((double)x);
        if (ref >= 0x1.fffffep127 + 0x1p103) {
            cr_assert(isinf(y) && y > 0.0f, "%s(%.9g) = %.9g, not +inf", a->name, (double)x,
                      (double)y);
            continue;
        }
        if (ref < a->skip_below)
            continue;
        double err = fabs((double)y - ref) / ulp_at(ref);
        if (err > worst) {
            worst = err;
            worst_x = x;
        }
    }
    cr_assert(worst <= bound, "%s: worst %.3f ulp at %.9g", a->name, worst, (double)worst_x);
}

static void tanh_check(float x, float y)
{
    cr_assert_eq(signbit(y) != 0, signbit(x) != 0, "tanh(%.9g) = %.9g: sign", (double)x, (double)y);
    cr_assert(fabsf(y) <= 1.0f, "tanh(%.9g) = %.9g", (double)x, (double)y);
}

static void sigmoid_check(float x, float y)
{
    cr_assert(y >= 0.0f && y <= 1.0f, "sigmoid(%.9g) = %.9g", (double)x, (double)y);
}

static double sigmoid_ref(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

Test(act, tanh_within_1_1_ulp_of_float64)
{
    act_fn_t a = {"tanh", eie_tanhf, eie_tanhf_sel, tanh, tanh_check, 0.0};
    sweep(&a, 1.1);
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
    float xs[] = {0.7f, nextafterf(0.7f, 0.0f), 0x1p-12f, nextafterf(0x1p-12f, 0.0f), 1.0f, 9.0f};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        float p = eie_tanhf(xs[i]), m = eie_tanhf(-xs[i]);
        cr_assert_eq(m, -p, "tanh(-%.9g) = %.9g, tanh(%.9g) = %.9g", (double)xs[i], (double)m,
                     (double)xs[i], (double)p);
        double err = fabs((double)p - tanh((double)xs[i])) / ulp_at(tanh((double)xs[i]));
        cr_assert(err <= 1.1, "tanh(%.9g): %.3f ulp", (double)xs[i], err);
    }
    cr_assert_eq(eie_act_apply1(EIE_ACT_TANH, 0.3f), eie_tanhf(0.3f));
}

Test(act, expf_within_0_96_ulp_of_float64)
{
    act_fn_t a = {"exp", eie_expf, eie_expf_sel, exp, NULL, 0.0};
    sweep(&a, 0.96);
}

Test(act, expf_edges)
{
    cr_assert_eq(eie_expf(0.0f), 1.0f);
    cr_assert_eq(eie_expf(-0.0f), 1.0f);
    cr_assert(fabs((double)eie_expf(1.0f) - exp(1.0)) <= ulp_at(exp(1.0)));
    cr_assert_eq(eie_expf(INFINITY), INFINITY);
    cr_assert_eq(eie_expf(-INFINITY), 0.0f);
    /* just below the largest float: finite, within an ulp */
    cr_assert(fabs((double)eie_expf(88.72283f) - exp(88.72283f)) <= ulp_at(exp(88.72283f)));
    cr_assert(isinf(eie_expf(88.7229f)));
    cr_assert(isinf(eie_expf(1e30f)));
    cr_assert_eq(eie_expf(-1e30f), 0.0f);
    cr_assert_eq(eie_expf(-104.0f), 0.0f);
    /* a subnormal result, rounded once: e^-100 = 3.72e-44 = 26.6 * 2^-149 */
    cr_assert_eq(eie_expf(-100.0f), 27 * 0x1p-149f);
    cr_assert_eq(eie_expf(-103.2789f), 0x1p-149f);
    cr_assert(isnan(eie_expf(NAN)));
    cr_assert(isnan(eie_expf(-NAN)));
    float edges[] = {INFINITY, -INFINITY, NAN, -104.0f, -103.2789f, 88.72283f, 89.0f, 0.0f, -0.0f};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        same_bits(eie_expf(edges[i]), eie_expf_sel(edges[i]), "exp", edges[i]);
        same_bits(eie_tanhf(edges[i]), eie_tanhf_sel(edges[i]), "tanh", edges[i]);
        same_bits(eie_sigmoidf(edges[i]), eie_sigmoidf_sel(edges[i]), "sigmoid", edges[i]);
    }
}

Test(act, sigmoid_within_2_5_ulp_of_float64_where_normal)
{
    /* below 2^-126, 1 / (1 + e^-x) has overflowed to 0, as with any expf */
    act_fn_t a = {"sigmoid", eie_sigmoidf, eie_sigmoidf_sel, sigmoid_ref, sigmoid_check, 0x1p-126};
    sweep(&a, 2.5);
    cr_assert_eq(eie_sigmoidf(0.0f), 0.5f);
    cr_assert_eq(eie_sigmoidf(INFINITY), 1.0f);
    cr_assert_eq(eie_sigmoidf(-INFINITY), 0.0f);
    cr_assert(isnan(eie_sigmoidf(NAN)));
    cr_assert_eq(eie_act_apply1(EIE_ACT_SIGMOID, 0.3f), eie_sigmoidf(0.3f));
}
