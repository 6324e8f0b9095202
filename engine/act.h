/* act.h - element-wise activations shared by the backends and the dense reference (internal). */
#ifndef EIE_ACT_H
#define EIE_ACT_H

#include <math.h>
#include <stddef.h>

#include "eie/model.h"

/*
 * tanh in float, within 1.49 ulp of the exact value for every float (checked
 * against the double tanh over all of them; glibc's tanhf: 2.19). glibc's
 * tanhf goes through expm1f, about 11 ns a call here against 3 for this, and
 * an LSTM unit takes two (models/charlm: half of a step was tanhf). Below
 * 0.55 in magnitude an odd polynomial, x + x^3 Q(x^2), Q a degree-4
 * Chebyshev fit of (tanh x - x) / x^3 on [0, 0.3025] (error 1.3e-8 on Q:
 * 0.07 ulp on the result); above, 1 - 2 / (e^{2|x|} + 1) with the sign of x
 * (past 44, expf overflows to +inf and this gives 1). NaN stays NaN. Plain
 * multiplies and adds in one order (-ffp-contract=off) around one expf.
 */
static inline float eie_tanhf(float x)
{
    float a = fabsf(x);
    if (a < 0.55f) {
        if (a < 0x1p-12f)
            return x; /* x^3 / 3 is under half an ulp of x; and -0.0 stays -0.0 */
        float s = x * x;
        float q = -6.6102278e-3f;
        q = q * s + 2.1309389e-2f;
        q = q * s - 5.3909429e-2f;
        q = q * s + 1.3333114e-1f;
        q = q * s - 3.3333332e-1f;
        return x + x * s * q;
    }
    return copysignf(1.0f - 2.0f / (expf(2.0f * a) + 1.0f), x);
}

/* One element through an element-wise activation (not softmax). */
static inline float eie_act_apply1(eie_act_t act, float x)
{
    switch (act) {
    case EIE_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case EIE_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case EIE_ACT_TANH: return eie_tanhf(x);
    default: return x;
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
