/*
 * relax.h - one pause of a spin-wait loop (internal): tells the core it is
 * spinning, so a sibling hyperthread gets the pipeline and leaving the loop
 * costs no memory-order flush.
 */
#ifndef EIE_RELAX_H
#define EIE_RELAX_H

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EIE_CPU_RELAX() _mm_pause()
#else
#define EIE_CPU_RELAX() ((void)0)
#endif

#endif
