/* Private to conv.c and conv_depthwise.c: the geometry of one convolution call and the
 * helper that stamps out per-ISA copies of a kernel body. */
#ifndef FF_CONV_INTERNAL_H
#define FF_CONV_INTERNAL_H

#include "ff_internal.h"

#define CONV_AI static inline __attribute__((always_inline))

/* A kernel body written as plain C is compiled three times (baseline, AVX2+FMA, AVX-512)
 * by inlining it into wrappers with different target attributes; CONV_SIMD_CALL picks
 * the copy matching the context's SIMD level. Bodies must return void. */
#define CONV_SIMD_VARIANTS(name, params, args)                                             \
    static void name##_scalar params { name##_body args; }                                 \
    FF_TARGET_AVX2 static void name##_avx2 params { name##_body args; }                    \
    FF_TARGET_AVX512 static void name##_avx512 params { name##_body args; }

#define CONV_SIMD_CALL(simd, name, ...)                                                    \
    ((simd) >= FF_SIMD_AVX512 ? name##_avx512(__VA_ARGS__)                                 \
     : (simd) == FF_SIMD_AVX2 ? name##_avx2(__VA_ARGS__)                                   \
                              : name##_scalar(__VA_ARGS__))

typedef struct {
    int n, C, H, W;       /* input */
    int CO, KH, KW;       /* output channels, kernel */
    int SH, SW, PH, PW;   /* stride, padding */
    int groups;
    int OH, OW;           /* output size */
    long HW;              /* OH * OW */
    long inHW;            /* H * W */
    int cin_g, cout_g;    /* channels per group */
    int KK;               /* KH * KW */
    int Kg;               /* GEMM depth of one group: cin_g * KK */
    int Krow;             /* im2col rows of one image, all groups: C * KK */
} conv_geom;

/* Output columns ow whose input column ow*SW - PW + j lies inside [0, W): [*lo, *hi). */
static inline void conv_col_range(const conv_geom *g, int j, int *lo, int *hi) {
    int a = g->PW - j; /* ow*SW >= a */
    int l = a > 0 ? (a + g->SW - 1) / g->SW : 0;
    int b = g->W - 1 + g->PW - j; /* ow*SW <= b */
    int h = b >= 0 ? b / g->SW + 1 : 0;
    if (h > g->OW) h = g->OW;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Depthwise (groups == C, C > 1): direct kernels in conv_depthwise.c. */
size_t ff_conv_dw_scratch_floats(const conv_geom *g, int op);
void ff_conv_dw_forward(ff_ctx *ctx, const conv_geom *g, const float *x, const float *w,
                        const float *bias, float *y, int relu);
void ff_conv_dw_backward_weight(ff_ctx *ctx, const conv_geom *g, const float *x,
                                const float *dy, float *dw, float *dbias, int accumulate);
void ff_conv_dw_backward_input(ff_ctx *ctx, const conv_geom *g, const float *w,
                               const float *dy, float *dx);

enum { CONV_OP_FWD = 0, CONV_OP_WGRAD = 1, CONV_OP_DGRAD = 2 };

/* Winograd F(m x m, 3 x 3), m = 2, 4, 6 (conv_winograd.c): 3x3, stride 1, pad 1, one group. */
int ff_wino_eligible(const conv_geom *g);
/* Floats a call asks of each (thread, slot) arena, written into slots[thread][slot]. */
void ff_wino_scratch_floats(const ff_ctx *ctx, const conv_geom *g, int m, int op,
                            size_t (*slots)[FF_SCRATCH_SLOTS]);
void ff_wino_forward(ff_ctx *ctx, const conv_geom *g, int m, const float *x, const float *w,
                     const float *bias, float *y, int relu);
void ff_wino_backward_weight(ff_ctx *ctx, const conv_geom *g, int m, const float *x,
                             const float *dy, float *dw, float *dbias, int accumulate);

#endif
