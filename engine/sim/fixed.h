/*
 * fixed.h - the 16-bit fixed-point arithmetic of the simulated PE (internal).
 *
 * EIE sec. III-C: "b_x += LUT[v] * a_j" in 16-bit fixed point. A value is an
 * int16 q meaning q * 2^-frac (a Q format with frac fraction bits; frac may
 * exceed 15 for small values or be negative for large ones). A product of two
 * int16 is exact in 32 bits; products are summed in a 48-bit accumulator that
 * saturates at every add (a wider register than the operands, as the
 * hardware's accumulator must be); write-back rounds to the output format,
 * half up (add half an LSB, shift right arithmetically), and saturates to
 * int16. Float inputs are quantised the same way. Everything is integer and
 * sequential, so a run is deterministic bit for bit.
 */
#ifndef EIE_SIM_FIXED_H
#define EIE_SIM_FIXED_H

#include <math.h>
#include <stdint.h>

#define EIE_FX_MIN (-32768)
#define EIE_FX_MAX 32767
#define EIE_FX_ACC_BITS 48
#define EIE_FX_ACC_MAX (((int64_t)1 << (EIE_FX_ACC_BITS - 1)) - 1)
#define EIE_FX_ACC_MIN (-((int64_t)1 << (EIE_FX_ACC_BITS - 1)))
/* Fraction bits a format may have; formats are chosen in this range. */
#define EIE_FX_FRAC_MIN (-16)
#define EIE_FX_FRAC_MAX 24

/* Clamps x to int16; counts a clip in *sat. */
static inline int16_t eie_fx_sat16(int64_t x, uint64_t *sat)
{
    if (x > EIE_FX_MAX) {
        ++*sat;
        return EIE_FX_MAX;
    }
    if (x < EIE_FX_MIN) {
        ++*sat;
        return EIE_FX_MIN;
    }
    return (int16_t)x;
}

/* Float to Q(frac): round half up, saturate. NaN becomes 0. */
static inline int16_t eie_fx_quantize(float x, int frac, uint64_t *sat)
{
    double v = floor((double)x * ldexp(1.0, frac) + 0.5);
    if (v != v)
        return 0;
    if (v > 1e12)
        v = 1e12;
    if (v < -1e12)
        v = -1e12;
    return eie_fx_sat16((int64_t)v, sat);
}

/* Q(frac) to float (exact). */
static inline float eie_fx_to_float(int16_t q, int frac)
{
    return (float)ldexp((double)q, -frac);
}

/* The accumulator add: saturates at 48 bits. */
static inline int64_t eie_fx_acc_add(int64_t acc, int64_t p)
{
    int64_t s = acc + p; /* |acc|, |p| < 2^47: no int64 overflow */
    if (s > EIE_FX_ACC_MAX)
        return EIE_FX_ACC_MAX;
    if (s < EIE_FX_ACC_MIN)
        return EIE_FX_ACC_MIN;
    return s;
}

/*
 * Rescales x by 2^-shift: shift > 0 divides with rounding half up (an
 * arithmetic shift right of x + 2^(shift-1)); shift < 0 multiplies,
 * saturating at the 48-bit accumulator range.
 */
static inline int64_t eie_fx_shift(int64_t x, int shift)
{
    if (shift > 0) {
        if (shift > 62)
            return 0;
        return (x + ((int64_t)1 << (shift - 1))) >> shift;
    }
    if (shift < 0) {
        int s = -shift;
        if (s > 46 || x > (EIE_FX_ACC_MAX >> s) || x < (EIE_FX_ACC_MIN >> s))
            return x > 0 ? EIE_FX_ACC_MAX : x < 0 ? EIE_FX_ACC_MIN : 0;
        return x * ((int64_t)1 << s);
    }
    return x;
}

/*
 * The format for values up to max_abs in magnitude: the most fraction bits
 * that leave max_abs * headroom representable (headroom a power of two, 1 = none).
 */
static inline int eie_fx_frac_for(double max_abs, double headroom)
{
    double m = max_abs * headroom;
    if (!(m > 0.0))
        return 15;
    if (!(m < 0x1p40)) /* an infinity too (a probe run that overflowed): the coarsest */
        return EIE_FX_FRAC_MIN;
    int ib = (int)floor(log2(m)) + 1; /* integer bits: m < 2^ib */
    int frac = 15 - ib;
    if (frac < EIE_FX_FRAC_MIN)
        frac = EIE_FX_FRAC_MIN;
    if (frac > EIE_FX_FRAC_MAX)
        frac = EIE_FX_FRAC_MAX;
    return frac;
}

#endif
