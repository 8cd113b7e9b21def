/* Optimizer steps in place over `len` parameters: p, g, m, v, buf all (len).
 *   AdamW (torch.optim.AdamW): p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 *       p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
 *   SGD (torch.optim.SGD): g' = g + wd*p; buf = first ? g' : mom*buf + (1-damp)*g';
 *       d = nesterov ? g' + mom*buf : buf (g' when mom == 0); p -= lr*d
 * plus the cosine learning-rate schedule with linear warmup.
 * Step-dependent scalars are formed in double once per call, as PyTorch does on the host. */
#include "ff_simd.h"

#include <math.h>
#include <string.h>

/* Vector and scalar code must round identically: no a*b+c fusion anywhere. */
#pragma STDC FP_CONTRACT OFF


#define GRAIN (1L << 14)

/* ---- AdamW ---- */

typedef struct {
    float *p, *m, *v;
    const float *g;
    float decay, b1, omb1, b2, omb2, step_size, bc2_sqrt, eps;
} adamw_job;

AI void adamw_vec(const adamw_job *j, vf *p, vf g, vf *m, vf *v) {
    *p = *p * j->decay;
    *m = *m * j->b1 + g * j->omb1;
    *v = *v * j->b2 + g * g * j->omb2;
    vf denom = __builtin_elementwise_sqrt(*v) / j->bc2_sqrt + j->eps;
    *p = *p - j->step_size * (*m / denom);
}

AI void adamw_body(void *arg, long b, long e, int tid) {
    (void)tid;
    const adamw_job *j = arg;
    for (long i = b; i < e; i += 16) {
        long n = ff_min_l(16, e - i);
        vf p, g, m, v;
        if (n == 16) {
            p = vld(j->p + i), g = vld(j->g + i), m = vld(j->m + i), v = vld(j->v + i);
        } else {
            p = vld_n(j->p + i, n), g = vld_n(j->g + i, n), m = vld_n(j->m + i, n);
            v = vld_n(j->v + i, n);
        }
        adamw_vec(j, &p, g, &m, &v);
        if (n == 16) {
            vst(j->p + i, p), vst(j->m + i, m), vst(j->v + i, v);
        } else {
            vst_n(j->p + i, p, n), vst_n(j->m + i, m, n), vst_n(j->v + i, v, n);
        }
    }
}
FF_TASK_VARIANTS(adamw)

void ff_adamw_step(ff_ctx *ctx, size_t len, float *p, const float *g, float *m, float *v,
                   float lr, float beta1, float beta2, float eps, float weight_decay,
                   long step) {
    double t = (double)(step < 1 ? 1 : step);
    double bc1 = 1.0 - pow((double)beta1, t);
    double bc2 = 1.0 - pow((double)beta2, t);
    adamw_job j = {
        .p = p, .m = m, .v = v, .g = g,
        .decay = (float)(1.0 - (double)lr * (double)weight_decay),
        .b1 = beta1, .omb1 = (float)(1.0 - (double)beta1),
        .b2 = beta2, .omb2 = (float)(1.0 - (double)beta2),
        .step_size = (float)((double)lr / bc1),
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = eps,
    };
    ff_parallel_for(ctx, (long)len, GRAIN, adamw_fns[ff_ctx_simd(ctx)], &j);
}

/* ---- SGD with momentum / dampening / Nesterov ---- */

typedef struct {
    float *p, *buf;
    const float *g;
    float lr, momentum, omd, wd;
    int nesterov, first;
} sgd_job;

AI void sgd_body(void *arg, long b, long e, int tid) {
    (void)tid;
    const sgd_job *j = arg;
    const int use_buf = j->momentum != 0.0f;
    for (long i = b; i < e; i += 16) {
        long n = ff_min_l(16, e - i);
        vf p = n == 16 ? vld(j->p + i) : vld_n(j->p + i, n);
        vf g = n == 16 ? vld(j->g + i) : vld_n(j->g + i, n);
        /* PyTorch skips the decay term entirely when wd == 0 (matters for inf/NaN p). */
        if (j->wd != 0.0f) g = g + j->wd * p;
        vf d = g;
        if (use_buf) {
            vf buf;
            if (j->first) {
                buf = g;
            } else {
                buf = n == 16 ? vld(j->buf + i) : vld_n(j->buf + i, n);
                buf = j->momentum * buf + j->omd * g;
            }
            if (n == 16) vst(j->buf + i, buf);
            else vst_n(j->buf + i, buf, n);
            d = j->nesterov ? g + j->momentum * buf : buf;
        }
        p = p - j->lr * d;
        if (n == 16) vst(j->p + i, p);
        else vst_n(j->p + i, p, n);
    }
}
FF_TASK_VARIANTS(sgd)

void ff_sgd_step(ff_ctx *ctx, size_t len, float *p, const float *g, float *buf, float lr,
                 float momentum, float dampening, float weight_decay, int nesterov,
                 int first_step) {
    sgd_job j = {
        .p = p, .buf = buf, .g = g, .lr = lr, .momentum = momentum,
        .omd = (float)(1.0 - (double)dampening), .wd = weight_decay,
        .nesterov = nesterov, .first = first_step,
    };
    ff_parallel_for(ctx, (long)len, GRAIN, sgd_fns[ff_ctx_simd(ctx)], &j);
}

/* ---- learning-rate schedule ---- */

double ff_cosine_lr(double base_lr, double min_lr, long step, long total, long warmup) {
    if (warmup < 0) warmup = 0;
    if (step < warmup) return base_lr * (double)(step + 1) / (double)warmup;
    long span = total - warmup;
    if (span <= 0) return min_lr;
    double t = (double)(step - warmup) / (double)span;
    /* Past the end the schedule stays at its minimum instead of rising again. */
    if (t > 1.0) t = 1.0;
    if (t < 0.0) t = 0.0;
    return min_lr + (base_lr - min_lr) * (1.0 + cos(M_PI * t)) / 2.0;
}
