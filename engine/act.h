/* act.h - element-wise activations shared by the backends and the dense reference (internal). */
#ifndef EIE_ACT_H
#define EIE_ACT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "eie/model.h"

/* Bits of a float and back (memcpy: no aliasing, and vectorizable). */
static inline uint32_t eie_f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float eie_u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* c ? a : b by the bits: neither arm behind a branch. The _sel forms
 * below use it so that a loop of them vectorizes on every ISA: a ?: of
 * floats became branches (the clamps of exp(-x) were threaded into them),
 * and without masked instructions the compiler would not evaluate an arm it
 * had put behind one. */
static inline float eie_selectf(int c, float a, float b)
{
    uint32_t m = 0u - (uint32_t)(c != 0);
    return eie_u2f((eie_f2u(a) & m) | (eie_f2u(b) & ~m));
}

/*
 * The engine's exponential, sigmoid and tanh, each in two forms with the
 * same bits: eie_expf, eie_sigmoidf, eie_tanhf with ?: and branches, for
 * one value at a time, and the _sel forms, without branches, for loops
 * meant to vectorize (eie_op_lstm_cells, eie_act_apply_n: 16 values a step
 * on AVX-512). One at a time, a select costs moves between float and
 * integer registers: in a loop left scalar, 5.5-7 ns an exp against 3.8
 * for the branchy form and 2.0 for glibc's. Both forms evaluate the same
 * arms in the same order with plain multiplies and adds
 * (-ffp-contract=off), so every kernel variant and the scalar reference
 * agree bit for bit.
 *
 * e^x, within 0.96 ulp of the exact value for every float (checked against
 * the double exp over all of them; glibc's expf: 0.50). x = n ln2 + r, n =
 * round(x / ln2) by the 1.5 * 2^23 shifter (the low bits of t are n); ln2
 * in two parts (Cody and Waite) so that n * LN2_HI is exact for |n| <= 150;
 * e^r = 1 + r + r^2 P(r), P a degree-5 Chebyshev fit of (e^r - 1 - r) / r^2
 * on |r| <= ln2 / 2 (error 1.4e-9); 2^n in two factors, so that neither
 * overflows and a subnormal result is rounded once. No float-to-int
 * conversion (NaN would make it undefined). x is first clamped to
 * [-104, 89] (e^-104 rounds to 0, e^89 overflows to +inf); NaN passes the
 * clamp and stays NaN.
 */
static inline float eie_exp_clamped(float xc)
{
    const float shifter = 0x1.8p23f;
    float t = xc * 1.44269504f + shifter;
    float n = t - shifter;
    uint32_t ni = eie_f2u(t) - eie_f2u(shifter); /* n, two's complement */
    float r = (xc - n * 0x1.62e4p-1f) - n * 0x1.7f7d1cp-20f;
    float p = 1.989098374e-04f;
    p = p * r + 1.393364362e-03f;
    p = p * r + 8.333310932e-03f;
    p = p * r + 4.166646498e-02f;
    p = p * r + 1.666666668e-01f;
    p = p * r + 5.000000013e-01f;
    float e = 1.0f + (r + (r * r) * p);
    uint32_t n1 = (uint32_t)((int32_t)ni >> 1), n2 = ni - n1;
    return e * eie_u2f((n1 + 127u) << 23) * eie_u2f((n2 + 127u) << 23);
}

static inline float eie_expf(float x)
{
    float xc = x < -104.0f ? -104.0f : x;
    return eie_exp_clamped(xc > 89.0f ? 89.0f : xc);
}

static inline float eie_expf_sel(float x)
{
    return eie_exp_clamped(eie_selectf(x < -104.0f, -104.0f, eie_selectf(x > 89.0f, 89.0f, x)));
}

/* 1 / (1 + e^-x): within 2.49 ulp where the result is normal, as with
 * glibc's expf (both 2.48, over every float). */
static inline float eie_sigmoidf(float x)
{
    return 1.0f / (1.0f + eie_expf(-x));
}

static inline float eie_sigmoidf_sel(float x)
{
    return 1.0f / (1.0f + eie_expf_sel(-x));
}

/*
 * tanh, within 1.07 ulp of the exact value for every float (checked
 * against the double tanh over all of them; glibc's tanhf: 2.19, and about
 * 10.5 ns a call through expm1f against 5 for this, one at a time over
 * [-3, 3]; an LSTM unit takes two). Below 0.7 in magnitude an odd
 * polynomial, x + x^3 Q(x^2), Q a degree-5 Chebyshev fit of
 * (tanh x - x) / x^3 on [0, 0.49] (error 5.6e-9 on Q); below 2^-12 x
 * itself (x^3 / 3 is under half an ulp of x, and -0.0 stays -0.0); above,
 * 1 - 2 / (e^{2|x|} + 1) with the sign of x (past 44, e^{2|x|} overflows
 * to +inf and this gives 1). NaN stays NaN.
 */
static inline float eie_tanh_poly(float x)
{
    float s = x * x;
    float q = 2.060621435e-03f;
    q = q * s - 8.113507022e-03f;
    q = q * s + 2.168940590e-02f;
    q = q * s - 5.394817033e-02f;
    q = q * s + 1.333325017e-01f;
    q = q * s - 3.333333277e-01f;
    return x + x * s * q;
}

/* tanh x from e^{2|x|} */
static inline float eie_tanh_exp(float x, float e2a)
{
    return copysignf(1.0f - 2.0f / (e2a + 1.0f), x);
}

static inline float eie_tanhf(float x)
{
    float a = fabsf(x);
    if (a < 0.7f)
        return a < 0x1p-12f ? x : eie_tanh_poly(x);
    return eie_tanh_exp(x, eie_expf(2.0f * a));
}

static inline float eie_tanhf_sel(float x)
{
    float a = fabsf(x);
    float small = eie_selectf(a < 0x1p-12f, x, eie_tanh_poly(x));
    return eie_selectf(a < 0.7f, small, eie_tanh_exp(x, eie_expf_sel(2.0f * a)));
}

/* One element through an element-wise activation (not softmax). */
static inline float eie_act_apply1(eie_act_t act, float x)
{
    switch (act) {
    case EIE_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case EIE_ACT_SIGMOID: return eie_sigmoidf(x);
    case EIE_ACT_TANH: return eie_tanhf(x);
    default: return x;
    }
}

/* y[i] = act(x[i]) for i < n (y may be x; not softmax): eie_act_apply1's
 * bits through the select forms, the switch outside the loops, so that the
 * compiler vectorizes each; always inlined, so that each cpu kernel
 * variant compiles it for its registers (kernels.h, act_n). */
static inline __attribute__((always_inline)) void eie_act_apply_n(eie_act_t act, const float *x,
                                                                  float *y, size_t n)
{
    switch (act) {
    case EIE_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case EIE_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            y[i] = eie_sigmoidf_sel(x[i]);
        break;
    case EIE_ACT_TANH:
        for (size_t i = 0; i < n; i++)
            y[i] = eie_tanhf_sel(x[i]);
        break;
    default:
        if (y != x)
            memmove(y, x, n * sizeof *y);
        break;
    }
}

/* Softmax over n values x[0], x[stride], ...; max-subtracted for stability. */
static inline void eie_act_softmax(float *x, size_t n, size_t stride)
{
    float mx = x[0];
    for (size_t i = 1; i < n; i++)
        mx = x[i * stride] > mx ? x[i * stride] : mx;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        x[i * stride] = expf(x[i * stride] - mx);
        sum += x[i * stride];
    }
    float inv = (float)(1.0 / sum);
    for (size_t i = 0; i < n; i++)
        x[i * stride] *= inv;
}

#endif
