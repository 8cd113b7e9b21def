/* conv_depthwise.c -- direct (non-GEMM) depthwise convolution: groups == C, CO = m * C,
 * output channel co reads input channel co / m.
 *  x: (n, C, H, W)   w: (CO, 1, KH, KW)   bias: (CO)   y, dy: (n, CO, OH, OW)
 * Each output plane is a sum of KH*KW shifted, scaled input rows, so the inner loops run
 * along output columns (contiguous for stride 1) and vectorise at every SIMD level.
 * forward and dgrad split planes over threads (disjoint outputs); wgrad splits output
 * channels, so every dw/dbias entry is summed by one thread in a fixed order. */
#include "conv_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const conv_geom *g;
    int simd, relu, accumulate;
    const float *x, *w, *bias, *dy;
    float *y, *dx, *dw, *dbias;
    double *acc[FF_MAX_THREADS];
} dw_job;

/* wgrad keeps, per thread, KH*KW + 1 rows of OW double lanes (taps, then bias). */
size_t ff_conv_dw_scratch_floats(const conv_geom *g, int op) {
    if (op != CONV_OP_WGRAD) return 0;
    return 2 * (size_t)(g->KK + 1) * (size_t)g->OW;
}

/* ---------------------------------------------------------------- forward --------- */

CONV_AI void dw_fwd_plane(const conv_geom *g, const float *restrict x, const float *restrict wk,
                          float b, int relu, float *restrict y) {
    const int OW = g->OW, SW = g->SW;
    for (long k = 0; k < g->HW; k++) y[k] = b;
    for (int i = 0; i < g->KH; i++) {
        for (int j = 0; j < g->KW; j++) {
            int lo, hi;
            conv_col_range(g, j, &lo, &hi);
            if (lo >= hi) continue;
            const float wv = wk[i * g->KW + j];
            const int len = hi - lo;
            for (int oh = 0; oh < g->OH; oh++) {
                int ih = oh * g->SH - g->PH + i;
                if ((unsigned)ih >= (unsigned)g->H) continue;
                const float *restrict src = x + (long)ih * g->W + lo * SW - g->PW + j;
                float *restrict dst = y + (long)oh * OW + lo;
                if (SW == 1) {
                    for (int k = 0; k < len; k++) dst[k] += wv * src[k];
                } else {
                    for (int k = 0; k < len; k++) dst[k] += wv * src[(long)k * SW];
                }
            }
        }
    }
    if (relu)
        for (long k = 0; k < g->HW; k++) y[k] = y[k] > 0.0f ? y[k] : 0.0f;
}

CONV_AI void dw_fwd_body(const dw_job *J, long p0, long p1) {
    const conv_geom *g = J->g;
    const int m = g->CO / g->C;
    for (long p = p0; p < p1; p++) {
        long n = p / g->CO;
        int co = (int)(p % g->CO);
        dw_fwd_plane(g, J->x + (n * g->C + co / m) * g->inHW, J->w + (long)co * g->KK,
                     J->bias ? J->bias[co] : 0.0f, J->relu, J->y + p * g->HW);
    }
}
CONV_SIMD_VARIANTS(dw_fwd, (const dw_job *J, long p0, long p1), (J, p0, p1))

static void dw_fwd_task(void *arg, long b, long e, int tid) {
    (void)tid;
    const dw_job *J = arg;
    CONV_SIMD_CALL(J->simd, dw_fwd, J, b, e);
}

void ff_conv_dw_forward(ff_ctx *ctx, const conv_geom *g, const float *x, const float *w,
                        const float *bias, float *y, int relu) {
    dw_job J = {.g = g, .simd = ff_ctx_simd(ctx), .relu = relu, .x = x, .w = w, .bias = bias,
                .y = y};
    ff_parallel_for(ctx, (long)g->n * g->CO, 1, dw_fwd_task, &J);
}

/* ---------------------------------------------------------------- weight grad ----- */

CONV_AI void dw_wgrad_body(const dw_job *J, long c0, long c1, double *restrict acc) {
    const conv_geom *g = J->g;
    const int m = g->CO / g->C, OW = g->OW, SW = g->SW;
    const long lanes = (long)(g->KK + 1) * OW;
    double *restrict bacc = acc + (long)g->KK * OW;
    for (long co = c0; co < c1; co++) {
        for (long k = 0; k < lanes; k++) acc[k] = 0.0;
        for (long n = 0; n < g->n; n++) {
            const float *restrict dyp = J->dy + (n * g->CO + co) * g->HW;
            const float *restrict xp = J->x + (n * g->C + co / m) * g->inHW;
            for (int i = 0; i < g->KH; i++) {
                for (int j = 0; j < g->KW; j++) {
                    int lo, hi;
                    conv_col_range(g, j, &lo, &hi);
                    const int len = hi - lo;
                    double *restrict a = acc + (long)(i * g->KW + j) * OW + lo;
                    for (int oh = 0; oh < g->OH && len > 0; oh++) {
                        int ih = oh * g->SH - g->PH + i;
                        if ((unsigned)ih >= (unsigned)g->H) continue;
                        const float *restrict src = xp + (long)ih * g->W + lo * SW - g->PW + j;
                        const float *restrict d = dyp + (long)oh * OW + lo;
                        if (SW == 1) {
                            for (int k = 0; k < len; k++) a[k] += (double)d[k] * (double)src[k];
                        } else {
                            for (int k = 0; k < len; k++)
                                a[k] += (double)d[k] * (double)src[(long)k * SW];
                        }
                    }
                }
            }
            if (J->dbias)
                for (int oh = 0; oh < g->OH; oh++)
                    for (int k = 0; k < OW; k++) bacc[k] += (double)dyp[(long)oh * OW + k];
        }
        /* Lanes are folded in a fixed order, the same at every SIMD level. */
        for (int t = 0; t <= g->KK; t++) {
            if (t == g->KK && !J->dbias) break;
            const double *a = acc + (long)t * OW;
            double s = 0.0;
            for (int k = 0; k < OW; k++) s += a[k];
            float *out = t < g->KK ? &J->dw[co * g->KK + t] : &J->dbias[co];
            *out = J->accumulate ? *out + (float)s : (float)s;
        }
    }
}
CONV_SIMD_VARIANTS(dw_wgrad, (const dw_job *J, long c0, long c1, double *acc), (J, c0, c1, acc))

static void dw_wgrad_task(void *arg, long b, long e, int tid) {
    const dw_job *J = arg;
    CONV_SIMD_CALL(J->simd, dw_wgrad, J, b, e, J->acc[tid]);
}

void ff_conv_dw_backward_weight(ff_ctx *ctx, const conv_geom *g, const float *x,
                                const float *dy, float *dw, float *dbias, int accumulate) {
    dw_job J = {.g = g, .simd = ff_ctx_simd(ctx), .accumulate = accumulate, .x = x, .dy = dy,
                .dw = dw, .dbias = dbias};
    int used = (int)ff_min_l(g->CO, ff_ctx_threads(ctx));
    size_t floats = ff_conv_dw_scratch_floats(g, CONV_OP_WGRAD);
    for (int t = 0; t < used; t++) {
        J.acc[t] = (double *)ff_ctx_scratch(ctx, t, 0, floats);
        if (!J.acc[t]) {
            fprintf(stderr, "ffcore: conv2d: out of memory for scratch\n");
            abort();
        }
    }
    ff_parallel_for(ctx, g->CO, 1, dw_wgrad_task, &J);
}

/* ---------------------------------------------------------------- input grad ------ */

CONV_AI void dw_dgrad_body(const dw_job *J, long p0, long p1) {
    const conv_geom *g = J->g;
    const int m = g->CO / g->C, OW = g->OW, SW = g->SW;
    for (long p = p0; p < p1; p++) {
        long n = p / g->C;
        int ci = (int)(p % g->C);
        float *restrict dxp = J->dx + p * g->inHW;
        memset(dxp, 0, sizeof(float) * (size_t)g->inHW);
        for (int r = 0; r < m; r++) {
            long co = (long)ci * m + r;
            const float *restrict dyp = J->dy + (n * g->CO + co) * g->HW;
            const float *restrict wk = J->w + co * g->KK;
            for (int i = 0; i < g->KH; i++) {
                for (int j = 0; j < g->KW; j++) {
                    int lo, hi;
                    conv_col_range(g, j, &lo, &hi);
                    if (lo >= hi) continue;
                    const float wv = wk[i * g->KW + j];
                    const int len = hi - lo;
                    for (int oh = 0; oh < g->OH; oh++) {
                        int ih = oh * g->SH - g->PH + i;
                        if ((unsigned)ih >= (unsigned)g->H) continue;
                        float *restrict dst = dxp + (long)ih * g->W + lo * SW - g->PW + j;
                        const float *restrict src = dyp + (long)oh * OW + lo;
                        if (SW == 1) {
                            for (int k = 0; k < len; k++) dst[k] += wv * src[k];
                        } else {
                            for (int k = 0; k < len; k++) dst[(long)k * SW] += wv * src[k];
                        }
                    }
                }
            }
        }
    }
}
CONV_SIMD_VARIANTS(dw_dgrad, (const dw_job *J, long p0, long p1), (J, p0, p1))

static void dw_dgrad_task(void *arg, long b, long e, int tid) {
    (void)tid;
    const dw_job *J = arg;
    CONV_SIMD_CALL(J->simd, dw_dgrad, J, b, e);
}

void ff_conv_dw_backward_input(ff_ctx *ctx, const conv_geom *g, const float *w,
                               const float *dy, float *dx) {
    dw_job J = {.g = g, .simd = ff_ctx_simd(ctx), .w = w, .dy = dy, .dx = dx};
    ff_parallel_for(ctx, (long)g->n * g->C, 1, dw_dgrad_task, &J);
}
