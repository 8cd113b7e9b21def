/* Private SIMD scaffolding shared by the elementwise and reduction kernels.
 *
 * A kernel body is written once as plain C over GCC/Clang vector types; FF_TASK_VARIANTS
 * compiles it three times (baseline, AVX2+FMA, AVX-512) by inlining it into wrappers
 * that carry different target attributes, and ff_pick selects the copy matching the
 * context's SIMD level. Files that include this header round identically on every path
 * only if they also disable contraction (#pragma STDC FP_CONTRACT OFF). */
#ifndef FF_SIMD_H
#define FF_SIMD_H

#include "ff_internal.h"

#include <string.h>

/* Only always-inline helpers take vector arguments, so no call crosses an ABI boundary. */
#pragma clang diagnostic ignored "-Wpsabi"

#define AI static inline __attribute__((always_inline))

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef double vd __attribute__((vector_size(64)));

AI vf vld(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
AI void vst(float *p, vf v) { memcpy(p, &v, sizeof v); }
/* Partial loads/stores of the first n < 16 lanes (tails). */
AI vf vld_n(const float *p, long n) { vf v = {0}; memcpy(&v, p, (size_t)n * sizeof(float)); return v; }
AI void vst_n(float *p, vf v, long n) { memcpy(p, &v, (size_t)n * sizeof(float)); }
AI vf vsel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }
AI vf vsplat(float s) { return (vf){0} + s; }

/* Stamps out name##_scalar/_avx2/_avx512 from name##_body (an ff_task_fn-shaped body) and
 * the table name##_fns indexed by FF_SIMD_* level. */
#define FF_TASK_VARIANTS(name)                                                             \
    static void name##_scalar(void *a, long b, long e, int t) { name##_body(a, b, e, t); } \
    FF_TARGET_AVX2 static void name##_avx2(void *a, long b, long e, int t) {               \
        name##_body(a, b, e, t);                                                           \
    }                                                                                      \
    FF_TARGET_AVX512 static void name##_avx512(void *a, long b, long e, int t) {           \
        name##_body(a, b, e, t);                                                           \
    }                                                                                      \
    static const ff_task_fn name##_fns[3] = {name##_scalar, name##_avx2, name##_avx512};

#endif
