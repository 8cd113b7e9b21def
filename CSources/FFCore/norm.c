/* Normalisation layers.
 * LayerNorm: x, y, dy, dx (n, d), each row normalised over its d values (biased variance,
 *   eps inside the square root); gamma, beta, dgamma, dbeta (d) or NULL; mean, rstd (n).
 * BatchNorm: x, y, dy, dx (n, c, hw), statistics per channel over n*hw values; gamma,
 *   beta, dgamma, dbeta, save_mean, save_rstd, running_mean, running_var (c).
 *   Training normalises with the biased batch variance and moves running_var towards the
 *   unbiased one: r = (1 - momentum) * r + momentum * stat (PyTorch).
 * Statistics are accumulated in double. Each reduction has one owner and a fixed order
 * (rows for LayerNorm, channels for BatchNorm, columns for dgamma/dbeta), and the vector
 * lanes are combined in a fixed order, so results depend neither on the thread count nor
 * on the SIMD level. */
#include "ff_simd.h"

#include <math.h>
#include <string.h>

/* Vector and scalar code must round identically: no a*b+c fusion anywhere. */
#pragma STDC FP_CONTRACT OFF

AI vd lo8(vf v) { return __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), vd); }
AI vd hi8(vf v) {
    return __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), vd);
}
AI double hsum(vd lo, vd hi) {
    double s = 0;
    for (int k = 0; k < 8; k++) s += lo[k];
    for (int k = 0; k < 8; k++) s += hi[k];
    return s;
}

/* Rows of reductions: sixteen double lanes, then the tail in index order. */
AI double sum_f(const float *x, long n) {
    vd lo = {0}, hi = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        vf v = vld(x + i);
        lo += lo8(v);
        hi += hi8(v);
    }
    double s = hsum(lo, hi);
    for (; i < n; i++) s += x[i];
    return s;
}

AI double sum_sqdev(const float *x, long n, double m) {
    vd lo = {0}, hi = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        vf v = vld(x + i);
        vd a = lo8(v) - m, b = hi8(v) - m;
        lo += a * a;
        hi += b * b;
    }
    double s = hsum(lo, hi);
    for (; i < n; i++) {
        double t = (double)x[i] - m;
        s += t * t;
    }
    return s;
}

/* With xhat = (x - m) * r and g = dy * (gamma or 1): *sg = sum g, *sgx = sum g * xhat. */
AI void sum_grad(const float *x, const float *dy, const float *gamma, long n, float m, float r,
                 double *sg, double *sgx) {
    vd glo = {0}, ghi = {0}, xlo = {0}, xhi = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        vf xh = (vld(x + i) - m) * r;
        vf g = vld(dy + i);
        if (gamma) g = g * vld(gamma + i);
        vf gx = g * xh;
        glo += lo8(g);
        ghi += hi8(g);
        xlo += lo8(gx);
        xhi += hi8(gx);
    }
    double a = hsum(glo, ghi), b = hsum(xlo, xhi);
    for (; i < n; i++) {
        float xh = (x[i] - m) * r;
        float g = gamma ? dy[i] * gamma[i] : dy[i];
        a += g;
        b += g * xh;
    }
    *sg = a;
    *sgx = b;
}

/* ======================= LayerNorm ======================= */

typedef struct {
    int d;
    float eps;
    const float *x, *gamma, *beta, *dy, *mean_in, *rstd_in;
    float *y, *mean, *rstd, *dx, *dgamma, *dbeta;
    int accumulate;
    long n;
    ff_ctx *ctx;
} ln_job;

AI void ln_fwd_body(void *arg, long b, long e, int tid) {
    (void)tid;
    const ln_job *j = arg;
    const long d = j->d;
    for (long r = b; r < e; r++) {
        const float *restrict x = j->x + r * d;
        float *restrict y = j->y + r * d;
        double mean = sum_f(x, d) / (double)d;
        double var = sum_sqdev(x, d, mean) / (double)d;
        float m = (float)mean, rs = (float)(1.0 / sqrt(var + (double)j->eps));
        if (j->mean) j->mean[r] = m;
        if (j->rstd) j->rstd[r] = rs;
        const float *restrict gm = j->gamma, *restrict bt = j->beta;
        if (gm && bt)
            for (long i = 0; i < d; i++) y[i] = (x[i] - m) * rs * gm[i] + bt[i];
        else if (gm)
            for (long i = 0; i < d; i++) y[i] = (x[i] - m) * rs * gm[i];
        else if (bt)
            for (long i = 0; i < d; i++) y[i] = (x[i] - m) * rs + bt[i];
        else
            for (long i = 0; i < d; i++) y[i] = (x[i] - m) * rs;
    }
}
FF_TASK_VARIANTS(ln_fwd)

void ff_layernorm_forward(ff_ctx *ctx, int n, int d, float eps, const float *x,
                          const float *gamma, const float *beta, float *y, float *mean,
                          float *rstd) {
    if (n <= 0 || d <= 0) return;
    ln_job j = {.d = d, .eps = eps, .x = x, .gamma = gamma, .beta = beta, .y = y,
                .mean = mean, .rstd = rstd};
    ff_parallel_for(ctx, n, ff_max_l(1, 16384 / d), ln_fwd_fns[ff_ctx_simd(ctx)], &j);
}

/* dx rows: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma. */
AI void ln_dx_body(void *arg, long b, long e, int tid) {
    (void)tid;
    const ln_job *j = arg;
    const long d = j->d;
    const float *restrict gm = j->gamma;
    for (long r = b; r < e; r++) {
        const float *restrict x = j->x + r * d, *restrict dy = j->dy + r * d;
        float *restrict dx = j->dx + r * d;
        const float m = j->mean_in[r], rs = j->rstd_in[r];
        double sg, sgx;
        sum_grad(x, dy, gm, d, m, rs, &sg, &sgx);
        const float ka = (float)(sg / (double)d), kb = (float)(sgx / (double)d);
        if (gm)
            for (long i = 0; i < d; i++) dx[i] = (dy[i] * gm[i] - ka - (x[i] - m) * rs * kb) * rs;
        else
            for (long i = 0; i < d; i++) dx[i] = (dy[i] - ka - (x[i] - m) * rs * kb) * rs;
    }
}
FF_TASK_VARIANTS(ln_dx)

/* dgamma/dbeta columns: each task owns a column range and walks the rows in order. */
AI void ln_dparam_body(void *arg, long b, long e, int tid) {
    const ln_job *j = arg;
    const long d = j->d, w = e - b;
    double *restrict ag = (double *)ff_ctx_scratch(j->ctx, tid, 0, 4 * (size_t)w);
    double *restrict ab = ag + w;
    for (long i = 0; i < w; i++) ag[i] = ab[i] = 0.0;
    for (long r = 0; r < j->n; r++) {
        const float *restrict x = j->x + r * d + b, *restrict dy = j->dy + r * d + b;
        const float m = j->mean_in[r], rs = j->rstd_in[r];
        for (long i = 0; i < w; i++) {
            ag[i] += (double)(dy[i] * ((x[i] - m) * rs));
            ab[i] += (double)dy[i];
        }
    }
    float *dg = j->dgamma, *db = j->dbeta;
    for (long i = 0; i < w; i++) {
        if (dg) dg[b + i] = j->accumulate ? dg[b + i] + (float)ag[i] : (float)ag[i];
        if (db) db[b + i] = j->accumulate ? db[b + i] + (float)ab[i] : (float)ab[i];
    }
}
FF_TASK_VARIANTS(ln_dparam)

void ff_layernorm_backward(ff_ctx *ctx, int n, int d, const float *x, const float *gamma,
                           const float *mean, const float *rstd, const float *dy, float *dx,
                           float *dgamma, float *dbeta, int accumulate) {
    if (d <= 0) return;
    ln_job j = {.d = d, .x = x, .gamma = gamma, .dy = dy, .mean_in = mean, .rstd_in = rstd,
                .dx = dx, .dgamma = dgamma, .dbeta = dbeta, .accumulate = accumulate,
                .n = n, .ctx = ctx};
    int level = ff_ctx_simd(ctx);
    if (dx && n > 0) ff_parallel_for(ctx, n, ff_max_l(1, 16384 / d), ln_dx_fns[level], &j);
    if (dgamma || dbeta) {
        if (n <= 0) {
            /* Sums over no rows are zero. */
            for (int i = 0; i < d && !accumulate; i++) {
                if (dgamma) dgamma[i] = 0.0f;
                if (dbeta) dbeta[i] = 0.0f;
            }
            return;
        }
        ff_parallel_for(ctx, d, ff_max_l(64, 16384 / n), ln_dparam_fns[level], &j);
    }
}

/* ======================= BatchNorm ======================= */

typedef struct {
    int n, c, hw;
    float eps, momentum;
    const float *x, *gamma, *beta, *dy;
    float *y, *dx;
    float *mean, *rstd;             /* per channel, written by the statistics pass */
    const float *mean_in, *rstd_in; /* per channel, read by the apply passes */
    float *running_mean, *running_var;
    double *sums;                   /* backward: sum dy, sum dy*xhat per channel */
    ff_ctx *ctx;
} bn_job;

/* Statistics for a channel range: every channel sums its n runs of hw values in sample
 * order, so the rows of x are read contiguously even when hw is 1. */
AI void bn_stats_body(void *arg, long b, long e, int tid) {
    const bn_job *j = arg;
    const long c = j->c, hw = j->hw, w = e - b;
    const double cnt = (double)j->n * (double)hw;
    double *restrict acc = (double *)ff_ctx_scratch(j->ctx, tid, 0, 4 * (size_t)w);
    double *restrict mu = acc + w;
    for (long k = 0; k < w; k++) acc[k] = 0.0;
    for (long i = 0; i < j->n; i++) {
        const float *x = j->x + (i * c + b) * hw;
        if (hw == 1)
            for (long k = 0; k < w; k++) acc[k] += x[k];
        else
            for (long k = 0; k < w; k++) acc[k] += sum_f(x + k * hw, hw);
    }
    for (long k = 0; k < w; k++) {
        mu[k] = acc[k] / cnt;
        acc[k] = 0.0;
    }
    for (long i = 0; i < j->n; i++) {
        const float *x = j->x + (i * c + b) * hw;
        if (hw == 1)
            for (long k = 0; k < w; k++) {
                double t = (double)x[k] - mu[k];
                acc[k] += t * t;
            }
        else
            for (long k = 0; k < w; k++) acc[k] += sum_sqdev(x + k * hw, hw, mu[k]);
    }
    for (long k = 0; k < w; k++) {
        double var = acc[k] / cnt;
        j->mean[b + k] = (float)mu[k];
        j->rstd[b + k] = (float)(1.0 / sqrt(var + (double)j->eps));
        double mom = j->momentum;
        if (j->running_mean)
            j->running_mean[b + k] = (float)((1.0 - mom) * j->running_mean[b + k] + mom * mu[k]);
        if (j->running_var) {
            /* A single value has no unbiased variance; keep the biased one (0). */
            double unbiased = cnt > 1 ? var * cnt / (cnt - 1) : var;
            j->running_var[b + k] = (float)((1.0 - mom) * j->running_var[b + k] + mom * unbiased);
        }
    }
}
FF_TASK_VARIANTS(bn_stats)

/* y = (x - mean) * (rstd * gamma) + beta over planes [b, e) of (n*c, hw). */
AI void bn_apply_body(void *arg, long b, long e, int tid) {
    (void)tid;
    const bn_job *j = arg;
    const long hw = j->hw;
    long ch = b % j->c;
    for (long p = b; p < e; p++) {
        const float m = j->mean_in[ch];
        const float s = j->gamma ? j->rstd_in[ch] * j->gamma[ch] : j->rstd_in[ch];
        const float bt = j->beta ? j->beta[ch] : 0.0f;
        const float *restrict x = j->x + p * hw;
        float *restrict y = j->y + p * hw;
        for (long i = 0; i < hw; i++) y[i] = (x[i] - m) * s + bt;
        if (++ch == j->c) ch = 0;
    }
}
FF_TASK_VARIANTS(bn_apply)

static long plane_grain(int hw) { return ff_max_l(1, 16384 / ff_max_i(hw, 1)); }
static long channel_grain(int n, int hw) {
    return ff_max_l(1, 16384 / ff_max_l(1, (long)n * ff_max_i(hw, 1)));
}

void ff_batchnorm_forward_train(ff_ctx *ctx, int n, int c, int hw, float eps, float momentum,
                                const float *x, const float *gamma, const float *beta,
                                float *y, float *save_mean, float *save_rstd,
                                float *running_mean, float *running_var) {
    if (n <= 0 || c <= 0 || hw <= 0) return;
    /* Without caller buffers the statistics live in thread 0's slot 1 (tasks use slot 0). */
    float *tmp = (!save_mean || !save_rstd) ? ff_ctx_scratch(ctx, 0, 1, 2 * (size_t)c) : NULL;
    float *mean = save_mean ? save_mean : tmp;
    float *rstd = save_rstd ? save_rstd : tmp + c;
    bn_job j = {.n = n, .c = c, .hw = hw, .eps = eps, .momentum = momentum, .x = x,
                .gamma = gamma, .beta = beta, .y = y, .mean = mean, .rstd = rstd,
                .mean_in = mean, .rstd_in = rstd, .running_mean = running_mean,
                .running_var = running_var, .ctx = ctx};
    int level = ff_ctx_simd(ctx);
    ff_parallel_for(ctx, c, channel_grain(n, hw), bn_stats_fns[level], &j);
    ff_parallel_for(ctx, (long)n * c, plane_grain(hw), bn_apply_fns[level], &j);
}

void ff_batchnorm_forward_eval(ff_ctx *ctx, int n, int c, int hw, float eps, const float *x,
                               const float *gamma, const float *beta,
                               const float *running_mean, const float *running_var, float *y) {
    if (n <= 0 || c <= 0 || hw <= 0) return;
    float *rstd = ff_ctx_scratch(ctx, 0, 1, (size_t)c);
    for (int k = 0; k < c; k++) rstd[k] = (float)(1.0 / sqrt((double)running_var[k] + (double)eps));
    bn_job j = {.n = n, .c = c, .hw = hw, .x = x, .gamma = gamma, .beta = beta, .y = y,
                .mean_in = running_mean, .rstd_in = rstd, .ctx = ctx};
    ff_parallel_for(ctx, (long)n * c, plane_grain(hw), bn_apply_fns[ff_ctx_simd(ctx)], &j);
}

/* Backward statistics per channel: sum dy and sum dy * xhat. */
AI void bn_bstats_body(void *arg, long b, long e, int tid) {
    const bn_job *j = arg;
    const long c = j->c, hw = j->hw, w = e - b;
    double *restrict acc = (double *)ff_ctx_scratch(j->ctx, tid, 0, 4 * (size_t)w);
    double *restrict accx = acc + w;
    for (long k = 0; k < w; k++) acc[k] = accx[k] = 0.0;
    for (long i = 0; i < j->n; i++) {
        const long off = (i * c + b) * hw;
        const float *x = j->x + off, *dy = j->dy + off;
        if (hw == 1) {
            for (long k = 0; k < w; k++) {
                float xh = (x[k] - j->mean_in[b + k]) * j->rstd_in[b + k];
                acc[k] += dy[k];
                accx[k] += dy[k] * xh;
            }
        } else {
            for (long k = 0; k < w; k++) {
                double sg, sgx;
                sum_grad(x + k * hw, dy + k * hw, NULL, hw, j->mean_in[b + k], j->rstd_in[b + k],
                         &sg, &sgx);
                acc[k] += sg;
                accx[k] += sgx;
            }
        }
    }
    for (long k = 0; k < w; k++) {
        j->sums[2 * (b + k)] = acc[k];
        j->sums[2 * (b + k) + 1] = accx[k];
    }
}
FF_TASK_VARIANTS(bn_bstats)

/* dx = (dy - mean(dy) - xhat * mean(dy * xhat)) * rstd * gamma. */
AI void bn_dx_body(void *arg, long b, long e, int tid) {
    (void)tid;
    const bn_job *j = arg;
    const long hw = j->hw;
    const double cnt = (double)j->n * (double)hw;
    long ch = b % j->c;
    for (long p = b; p < e; p++) {
        const float m = j->mean_in[ch], rs = j->rstd_in[ch];
        const float s = j->gamma ? rs * j->gamma[ch] : rs;
        const float ka = (float)(j->sums[2 * ch] / cnt), kb = (float)(j->sums[2 * ch + 1] / cnt);
        const float *restrict x = j->x + p * hw, *restrict dy = j->dy + p * hw;
        float *restrict dx = j->dx + p * hw;
        for (long i = 0; i < hw; i++) dx[i] = (dy[i] - ka - (x[i] - m) * rs * kb) * s;
        if (++ch == j->c) ch = 0;
    }
}
FF_TASK_VARIANTS(bn_dx)

void ff_batchnorm_backward(ff_ctx *ctx, int n, int c, int hw, const float *x,
                           const float *gamma, const float *save_mean, const float *save_rstd,
                           const float *dy, float *dx, float *dgamma, float *dbeta,
                           int accumulate) {
    if (c <= 0) return;
    if (n <= 0 || hw <= 0) {
        for (int k = 0; k < c && !accumulate; k++) {
            if (dgamma) dgamma[k] = 0.0f;
            if (dbeta) dbeta[k] = 0.0f;
        }
        return;
    }
    double *sums = (double *)ff_ctx_scratch(ctx, 0, 1, 4 * (size_t)c);
    bn_job j = {.n = n, .c = c, .hw = hw, .x = x, .gamma = gamma, .dy = dy, .dx = dx,
                .mean_in = save_mean, .rstd_in = save_rstd, .sums = sums, .ctx = ctx};
    int level = ff_ctx_simd(ctx);
    ff_parallel_for(ctx, c, channel_grain(n, hw), bn_bstats_fns[level], &j);
    for (int k = 0; k < c; k++) {
        float sdy = (float)sums[2 * k], sdyx = (float)sums[2 * k + 1];
        if (dbeta) dbeta[k] = accumulate ? dbeta[k] + sdy : sdy;
        if (dgamma) dgamma[k] = accumulate ? dgamma[k] + sdyx : sdyx;
    }
    if (dx) ff_parallel_for(ctx, (long)n * c, plane_grain(hw), bn_dx_fns[level], &j);
}
