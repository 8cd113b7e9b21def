/* Elementwise activations over `len` floats: x, y, dy, dx all (len). In place (y == x,
 * dx == dy) is allowed. Backward functions take the forward input x.
 *   relu(x) = max(x, 0)                      d/dx: 1 where x > 0
 *   hardswish(x) = x * min(max(x+3, 0), 6)/6  d/dx: 0 (x < -3), x/3 + 1/2 (x <= 3), 1
 *   hardsigmoid(x) = min(max(x+3, 0), 6)/6    d/dx: 1/6 where -3 < x < 3
 * The derivative conventions at the kinks, and NaN propagation, follow PyTorch. */
#include "ff_simd.h"

#include <string.h>

/* Vector and scalar code must round identically: no a*b+c fusion anywhere. */
#pragma STDC FP_CONTRACT OFF

#define EW_GRAIN (1L << 15)

/* Operand order keeps NaN: vsel(0 > t, 0, t) passes a NaN t through. */
AI vf clamp06(vf t) {
    vf z = vsplat(0.0f), six = vsplat(6.0f);
    t = vsel(z > t, z, t);
    return vsel(six < t, six, t);
}

AI vf relu_f(vf x) { return vsel(vsplat(0.0f) > x, vsplat(0.0f), x); }
AI vf relu_b(vf x, vf dy) { return vsel(x <= 0.0f, vsplat(0.0f), dy); }
AI vf hswish_f(vf x) { return x * clamp06(x + 3.0f) / 6.0f; }
AI vf hswish_b(vf x, vf dy) {
    vf mid = dy * (x / 3.0f + 0.5f);
    return vsel(x < -3.0f, vsplat(0.0f), vsel(x <= 3.0f, mid, dy));
}
AI vf hsig_f(vf x) { return clamp06(x + 3.0f) / 6.0f; }
AI vf hsig_b(vf x, vf dy) {
    return vsel((x > -3.0f) & (x < 3.0f), dy * (1.0f / 6.0f), vsplat(0.0f));
}

enum { RELU_F, RELU_B, HSWISH_F, HSWISH_B, HSIG_F, HSIG_B };

typedef struct {
    const float *x, *dy;
    float *out;
    int op;
} act_job;

/* The tail goes through a zero-padded vector, so every element sees the same arithmetic. */
#define UNARY(F)                                                        \
    do {                                                                \
        for (; i + 16 <= e; i += 16) vst(out + i, F(vld(x + i)));       \
        if (i < e) {                                                    \
            size_t r = (size_t)(e - i) * sizeof(float);                 \
            vf t = {0};                                                 \
            memcpy(&t, x + i, r);                                       \
            t = F(t);                                                   \
            memcpy(out + i, &t, r);                                     \
        }                                                               \
    } while (0)

#define BINARY(F)                                                                   \
    do {                                                                            \
        for (; i + 16 <= e; i += 16) vst(out + i, F(vld(x + i), vld(dy + i)));      \
        if (i < e) {                                                                \
            size_t r = (size_t)(e - i) * sizeof(float);                             \
            vf t = {0}, g = {0};                                                    \
            memcpy(&t, x + i, r);                                                   \
            memcpy(&g, dy + i, r);                                                  \
            t = F(t, g);                                                            \
            memcpy(out + i, &t, r);                                                 \
        }                                                                           \
    } while (0)

AI void act_body(void *arg, long b, long e, int tid) {
    (void)tid;
    const act_job *j = arg;
    const float *x = j->x, *dy = j->dy;
    float *out = j->out;
    long i = b;
    switch (j->op) {
    case RELU_F: UNARY(relu_f); break;
    case RELU_B: BINARY(relu_b); break;
    case HSWISH_F: UNARY(hswish_f); break;
    case HSWISH_B: BINARY(hswish_b); break;
    case HSIG_F: UNARY(hsig_f); break;
    case HSIG_B: BINARY(hsig_b); break;
    }
}
FF_TASK_VARIANTS(act)

static void run(ff_ctx *ctx, int op, size_t len, const float *x, const float *dy, float *out) {
    act_job j = {x, dy, out, op};
    ff_parallel_for(ctx, (long)len, EW_GRAIN, act_fns[ff_ctx_simd(ctx)], &j);
}

void ff_relu_forward(ff_ctx *ctx, size_t len, const float *x, float *y) {
    run(ctx, RELU_F, len, x, NULL, y);
}
void ff_relu_backward(ff_ctx *ctx, size_t len, const float *x, const float *dy, float *dx) {
    run(ctx, RELU_B, len, x, dy, dx);
}
void ff_hardswish_forward(ff_ctx *ctx, size_t len, const float *x, float *y) {
    run(ctx, HSWISH_F, len, x, NULL, y);
}
void ff_hardswish_backward(ff_ctx *ctx, size_t len, const float *x, const float *dy, float *dx) {
    run(ctx, HSWISH_B, len, x, dy, dx);
}
void ff_hardsigmoid_forward(ff_ctx *ctx, size_t len, const float *x, float *y) {
    run(ctx, HSIG_F, len, x, NULL, y);
}
void ff_hardsigmoid_backward(ff_ctx *ctx, size_t len, const float *x, const float *dy,
                             float *dx) {
    run(ctx, HSIG_B, len, x, dy, dx);
}
