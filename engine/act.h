/* act.h - element-wise activations shared by the backends and the dense reference (internal). */
#ifndef EIE_ACT_H
#define EIE_ACT_H

#include <math.h>
#include <stddef.h>

#include "eie/model.h"

/* One element through an element-wise activation (not softmax). */
static inline float eie_act_apply1(eie_act_t act, float x)
{
    switch (act) {
    case EIE_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case EIE_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case EIE_ACT_TANH: return tanhf(x);
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
