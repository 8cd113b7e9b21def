/* scale.c -- per-channel gating, the multiply of squeeze-and-excitation.
 *   x, y, dy, dx: (n, c, hw)      s, ds: (n, c)
 *   forward:  y[i, :]  = x[i, :] * s[i]            (i runs over the n*c planes)
 *   backward: dx[i, :] = dy[i, :] * s[i]           (skipped when dx is NULL)
 *             ds[i]    = sum over hw of dy * x     (overwritten; double, fixed order)
 * y may alias x and dx may alias dy. Threads split the planes and each plane is summed by
 * one thread in index order, so the results do not depend on the thread count. The loops
 * are memory-bound; the baseline vectoriser is enough. */
#include "ff_internal.h"

#include <stddef.h>

typedef struct {
    long hw;
    const float *x, *s, *dy;
    float *y, *dx, *ds;
} scale_job;

static long plane_grain(long hw) { return ff_max_l(1, 16384 / ff_max_l(hw, 1)); }

static void scale_fwd_task(void *arg, long b, long e, int tid) {
    (void)tid;
    const scale_job *j = arg;
    for (long i = b; i < e; i++) {
        const float g = j->s[i];
        const float *x = j->x + i * j->hw;
        float *y = j->y + i * j->hw;
        for (long k = 0; k < j->hw; k++) y[k] = x[k] * g;
    }
}

static void scale_bwd_task(void *arg, long b, long e, int tid) {
    (void)tid;
    const scale_job *j = arg;
    for (long i = b; i < e; i++) {
        const float *x = j->x + i * j->hw, *dy = j->dy + i * j->hw;
        double acc = 0;
        for (long k = 0; k < j->hw; k++) acc += (double)dy[k] * (double)x[k];
        j->ds[i] = (float)acc;
        if (j->dx) {
            const float g = j->s[i];
            float *dx = j->dx + i * j->hw;
            for (long k = 0; k < j->hw; k++) dx[k] = dy[k] * g;
        }
    }
}

void ff_channel_scale_forward(ff_ctx *ctx, int n, int c, int hw, const float *x, const float *s, float *y) {
    scale_job j = {hw, x, s, NULL, y, NULL, NULL};
    ff_parallel_for(ctx, (long)n * c, plane_grain(hw), scale_fwd_task, &j);
}

void ff_channel_scale_backward(ff_ctx *ctx, int n, int c, int hw, const float *x, const float *s,
                               const float *dy, float *dx, float *ds) {
    scale_job j = {hw, x, s, dy, NULL, dx, ds};
    ff_parallel_for(ctx, (long)n * c, plane_grain(hw), scale_bwd_task, &j);
}
