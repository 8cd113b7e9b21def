/* rmsscale.c -- per-sample RMS scaling and inverted dropout.
 *
 * RMS scaling: x, y, dy, dx (n, d); each row is divided by its root mean square plus eps:
 *   r = sqrt(mean(x^2)) + eps,  y = x / r   (no centring, no affine parameters).
 * rms (n) is written by forward and read by backward. Backward:
 *   dx_i = dy_i / r - x_i * sum_j(dy_j x_j) / (r^2 * d * s),  s = r - eps
 * (the second term is dropped for an all-zero row, where s = 0 and y = 0).
 * Sums are accumulated in double, one row per task, so the result depends neither on the
 * thread count nor on the SIMD level.
 *
 * Dropout: y = x * mask / (1 - p), mask_i = 1 with probability 1 - p, drawn from the
 * uniforms u (n*d) in [0, 1) as u_i >= p; the same u gives the same mask in backward. */
#include "ff_internal.h"

#include <math.h>

typedef struct {
    long d;
    float eps;
    const float *x, *dy;
    float *y, *dx, *rms;
} rms_job;

static void rms_fwd_task(void *arg, long b, long e, int tid) {
    (void)tid;
    const rms_job *j = arg;
    for (long r = b; r < e; r++) {
        const float *x = j->x + r * j->d;
        float *y = j->y + r * j->d;
        double sq = 0;
        for (long i = 0; i < j->d; i++) sq += (double)x[i] * x[i];
        const float rr = (float)sqrt(sq / (double)j->d) + j->eps;
        j->rms[r] = rr;
        const float inv = 1.f / rr;
        for (long i = 0; i < j->d; i++) y[i] = x[i] * inv;
    }
}

static void rms_bwd_task(void *arg, long b, long e, int tid) {
    (void)tid;
    const rms_job *j = arg;
    for (long r = b; r < e; r++) {
        const float *x = j->x + r * j->d, *dy = j->dy + r * j->d;
        float *dx = j->dx + r * j->d;
        const double rr = j->rms[r], s = rr - (double)j->eps;
        double gx = 0;
        for (long i = 0; i < j->d; i++) gx += (double)dy[i] * x[i];
        const double k = s > 0 ? gx / (rr * rr * (double)j->d * s) : 0.0;
        for (long i = 0; i < j->d; i++) dx[i] = (float)((double)dy[i] / rr - (double)x[i] * k);
    }
}

void ff_rmsscale_forward(ff_ctx *ctx, int n, int d, float eps, const float *x, float *y, float *rms) {
    if (n <= 0 || d <= 0) return;
    rms_job j = {.d = d, .eps = eps, .x = x, .y = y, .rms = rms};
    ff_parallel_for(ctx, n, ff_max_l(1, 16384 / d), rms_fwd_task, &j);
}

void ff_rmsscale_backward(ff_ctx *ctx, int n, int d, float eps, const float *x, const float *rms,
                          const float *dy, float *dx) {
    if (n <= 0 || d <= 0) return;
    rms_job j = {.d = d, .eps = eps, .x = x, .dy = dy, .dx = dx, .rms = (float *)rms};
    ff_parallel_for(ctx, n, ff_max_l(1, 16384 / d), rms_bwd_task, &j);
}

void ff_dropout_apply(size_t len, float p, const float *u, const float *x, float *y) {
    const float keep = p < 1.f ? 1.f / (1.f - p) : 0.f;
    for (size_t i = 0; i < len; i++) y[i] = u[i] >= p ? x[i] * keep : 0.f;
}
