/* 2-D pooling over x (n, c, h_in, w_in) -> y (n, c, h_out, w_out), and global average
 * pooling x (n, c, hw) -> y (n, c).
 *   h_out = floor((h_in + 2*pad_h - k_h) / stride_h) + 1 (0 when the padded map is
 *   smaller than the window). Padded cells never win a max and are not counted by
 *   avg/RMS. argmax (n, c, h_out, w_out) holds flat indices h*w_in + w within the plane.
 * A window with no in-bounds cell (only possible when pad >= kernel) outputs 0, argmax -1.
 * Every kernel runs over (sample, channel) planes; a backward pass owns whole dx planes,
 * so overlapping windows accumulate in a fixed order without atomics. */
#include "ff_internal.h"

#include <math.h>
#include <string.h>

/* One rounding per operation, as written, on every target. */
#pragma STDC FP_CONTRACT OFF

static int out_size(int in, int pad, int k, int stride) {
    int span = in + 2 * pad - k;
    if (span < 0 || stride <= 0) return 0;
    return span / stride + 1;
}

int ff_pool2d_out_h(const ff_pool2d_desc *d) { return out_size(d->h_in, d->pad_h, d->k_h, d->stride_h); }
int ff_pool2d_out_w(const ff_pool2d_desc *d) { return out_size(d->w_in, d->pad_w, d->k_w, d->stride_w); }

/* In-bounds part [lo, hi) of window `o` along one axis. */
static inline void window(int o, int stride, int pad, int k, int in, int *lo, int *hi) {
    int s = o * stride - pad;
    *lo = ff_max_i(s, 0);
    *hi = ff_min_i(s + k, in);
}

enum { P_MAX_F, P_MAX_B, P_AVG_F, P_AVG_B, P_RMS_F, P_RMS_B };

typedef struct {
    const ff_pool2d_desc *d;
    int h_out, w_out, op;
    const float *x, *y, *dy;
    float *out;
    int32_t *argmax;
    const int32_t *argmax_in;
} pool_job;

static void max_fwd_plane(const pool_job *j, const float *x, float *y, int32_t *am) {
    const ff_pool2d_desc *d = j->d;
    for (int oh = 0; oh < j->h_out; oh++) {
        int h0, h1;
        window(oh, d->stride_h, d->pad_h, d->k_h, d->h_in, &h0, &h1);
        for (int ow = 0; ow < j->w_out; ow++) {
            int w0, w1;
            window(ow, d->stride_w, d->pad_w, d->k_w, d->w_in, &w0, &w1);
            float best = 0.0f;
            int idx = -1;
            if (h1 > h0 && w1 > w0) {
                best = -INFINITY;
                idx = h0 * d->w_in + w0;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) {
                        float v = x[h * d->w_in + w];
                        /* As PyTorch: a NaN wins, so it reaches the loss check. */
                        if (v > best || isnan(v)) {
                            best = v;
                            idx = h * d->w_in + w;
                        }
                    }
            }
            y[oh * j->w_out + ow] = best;
            if (am) am[oh * j->w_out + ow] = idx;
        }
    }
}

static void max_bwd_plane(const pool_job *j, const float *dy, const int32_t *am, float *dx) {
    const int in = j->d->h_in * j->d->w_in, on = j->h_out * j->w_out;
    memset(dx, 0, (size_t)in * sizeof(float));
    for (int o = 0; o < on; o++)
        if (am[o] >= 0 && am[o] < in) dx[am[o]] += dy[o];
}

/* Average (rms == 0) or RMS (rms == 1) forward of one plane. */
static void mean_fwd_plane(const pool_job *j, const float *x, float *y, int rms) {
    const ff_pool2d_desc *d = j->d;
    for (int oh = 0; oh < j->h_out; oh++) {
        int h0, h1;
        window(oh, d->stride_h, d->pad_h, d->k_h, d->h_in, &h0, &h1);
        for (int ow = 0; ow < j->w_out; ow++) {
            int w0, w1;
            window(ow, d->stride_w, d->pad_w, d->k_w, d->w_in, &w0, &w1);
            int count = (h1 - h0) * (w1 - w0);
            float s = 0.0f;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) {
                    float v = x[h * d->w_in + w];
                    s += rms ? v * v : v;
                }
            float m = count > 0 ? s / (float)count : 0.0f;
            y[oh * j->w_out + ow] = rms ? sqrtf(m) : m;
        }
    }
}

/* Average backward: dx += dy/count over the window. RMS backward: dx += x*dy/(count*y). */
static void mean_bwd_plane(const pool_job *j, const float *x, const float *y, const float *dy,
                           float *dx, int rms) {
    const ff_pool2d_desc *d = j->d;
    memset(dx, 0, (size_t)d->h_in * d->w_in * sizeof(float));
    for (int oh = 0; oh < j->h_out; oh++) {
        int h0, h1;
        window(oh, d->stride_h, d->pad_h, d->k_h, d->h_in, &h0, &h1);
        for (int ow = 0; ow < j->w_out; ow++) {
            int w0, w1;
            window(ow, d->stride_w, d->pad_w, d->k_w, d->w_in, &w0, &w1);
            int count = (h1 - h0) * (w1 - w0);
            int o = oh * j->w_out + ow;
            if (count <= 0) continue;
            if (rms) {
                if (y[o] == 0.0f) continue;
                float coef = dy[o] / ((float)count * y[o]);
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) dx[h * d->w_in + w] += x[h * d->w_in + w] * coef;
            } else {
                float g = dy[o] / (float)count;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) dx[h * d->w_in + w] += g;
            }
        }
    }
}

/* ---- 2x2 windows, stride 2, no padding: the usual VGG pooling, kept branch-light ----
 * Same cell order (and so the same results) as the general code above. Windows do not
 * overlap, so backward writes every covered cell once and zeroes the uncovered last
 * row / column of an odd-sized map. */

static int is_2x2s2(const ff_pool2d_desc *d) {
    return d->k_h == 2 && d->k_w == 2 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 0 &&
           d->pad_w == 0;
}

static inline void max4(float a, float b, float c, float d, int ia, int ib, int ic, int id,
                        float *y, int32_t *idx) {
    /* Selects rather than branches: random data would mispredict half of them. */
    float m = a;
    int k = ia, t;
    t = b > m || b != b;
    m = t ? b : m, k = t ? ib : k;
    t = c > m || c != c;
    m = t ? c : m, k = t ? ic : k;
    t = d > m || d != d;
    m = t ? d : m, k = t ? id : k;
    *y = m;
    *idx = k;
}

static void fwd_2x2_plane(const pool_job *j, const float *x, float *y, int32_t *am) {
    const int w = j->d->w_in, wo = j->w_out;
    for (int oh = 0; oh < j->h_out; oh++) {
        const float *r0 = x + 2 * oh * w, *r1 = r0 + w;
        float *yo = y + oh * wo;
        switch (j->op) {
        case P_MAX_F:
            for (int ow = 0; ow < wo; ow++) {
                const int c = 2 * ow, base = 2 * oh * w + c;
                int32_t k;
                max4(r0[c], r0[c + 1], r1[c], r1[c + 1], base, base + 1, base + w, base + w + 1,
                     &yo[ow], &k);
                if (am) am[oh * wo + ow] = k;
            }
            break;
        case P_AVG_F:
            for (int ow = 0; ow < wo; ow++) {
                const int c = 2 * ow;
                yo[ow] = (r0[c] + r0[c + 1] + r1[c] + r1[c + 1]) / 4.0f;
            }
            break;
        case P_RMS_F:
            for (int ow = 0; ow < wo; ow++) {
                const int c = 2 * ow;
                float s = r0[c] * r0[c] + r0[c + 1] * r0[c + 1] + r1[c] * r1[c] + r1[c + 1] * r1[c + 1];
                yo[ow] = sqrtf(s / 4.0f);
            }
            break;
        }
    }
}

static void bwd_2x2_plane(const pool_job *j, const float *x, const float *y, const float *dy,
                          const int32_t *am, float *dx) {
    const int w = j->d->w_in, h = j->d->h_in, wo = j->w_out, ho = j->h_out;
    for (int oh = 0; oh < ho; oh++) {
        float *d0 = dx + 2 * oh * w, *d1 = d0 + w;
        const float *x0 = x ? x + 2 * oh * w : NULL, *x1 = x ? x0 + w : NULL;
        for (int ow = 0; ow < wo; ow++) {
            const int c = 2 * ow, o = oh * wo + ow;
            float g00, g01, g10, g11;
            if (j->op == P_MAX_B) {
                const int k = am[o] - 2 * oh * w - c; /* 0, 1, w or w+1 */
                const float g = dy[o];
                g00 = k == 0 ? g : 0.0f;
                g01 = k == 1 ? g : 0.0f;
                g10 = k == w ? g : 0.0f;
                g11 = k == w + 1 ? g : 0.0f;
            } else if (j->op == P_AVG_B) {
                g00 = g01 = g10 = g11 = dy[o] / 4.0f;
            } else {
                const float coef = y[o] == 0.0f ? 0.0f : dy[o] / (4.0f * y[o]);
                g00 = x0[c] * coef, g01 = x0[c + 1] * coef;
                g10 = x1[c] * coef, g11 = x1[c + 1] * coef;
            }
            d0[c] = g00, d0[c + 1] = g01, d1[c] = g10, d1[c + 1] = g11;
        }
        if (w > 2 * wo) d0[w - 1] = d1[w - 1] = 0.0f;
    }
    if (h > 2 * ho) memset(dx + (long)2 * ho * w, 0, (size_t)(h - 2 * ho) * w * sizeof(float));
}

static void pool_task(void *arg, long b, long e, int tid) {
    (void)tid;
    const pool_job *j = arg;
    const long in = (long)j->d->h_in * j->d->w_in, on = (long)j->h_out * j->w_out;
    if (is_2x2s2(j->d)) {
        const int fwd = j->op == P_MAX_F || j->op == P_AVG_F || j->op == P_RMS_F;
        for (long p = b; p < e; p++) {
            if (fwd)
                fwd_2x2_plane(j, j->x + p * in, j->out + p * on, j->argmax ? j->argmax + p * on : NULL);
            else
                bwd_2x2_plane(j, j->x ? j->x + p * in : NULL, j->y ? j->y + p * on : NULL,
                              j->dy + p * on, j->argmax_in ? j->argmax_in + p * on : NULL,
                              j->out + p * in);
        }
        return;
    }
    for (long p = b; p < e; p++) {
        switch (j->op) {
        case P_MAX_F:
            max_fwd_plane(j, j->x + p * in, j->out + p * on, j->argmax ? j->argmax + p * on : NULL);
            break;
        case P_MAX_B: max_bwd_plane(j, j->dy + p * on, j->argmax_in + p * on, j->out + p * in); break;
        case P_AVG_F: mean_fwd_plane(j, j->x + p * in, j->out + p * on, 0); break;
        case P_RMS_F: mean_fwd_plane(j, j->x + p * in, j->out + p * on, 1); break;
        case P_AVG_B: mean_bwd_plane(j, NULL, NULL, j->dy + p * on, j->out + p * in, 0); break;
        case P_RMS_B:
            mean_bwd_plane(j, j->x + p * in, j->y + p * on, j->dy + p * on, j->out + p * in, 1);
            break;
        }
    }
}

static void run(ff_ctx *ctx, const ff_pool2d_desc *d, int op, const float *x, const float *y,
                const float *dy, float *out, int32_t *argmax, const int32_t *argmax_in) {
    pool_job j = {d, ff_pool2d_out_h(d), ff_pool2d_out_w(d), op, x, y, dy, out, argmax, argmax_in};
    long planes = (long)d->n * d->c;
    long plane_size = ff_max_l(1, (long)d->h_in * d->w_in);
    /* Backward passes write whole input planes, so they must run even when h_out == 0. */
    ff_parallel_for(ctx, planes, ff_max_l(1, 16384 / plane_size), pool_task, &j);
}

void ff_maxpool2d_forward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x, float *y,
                          int32_t *argmax) {
    run(ctx, d, P_MAX_F, x, NULL, NULL, y, argmax, NULL);
}
void ff_maxpool2d_backward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *dy,
                           const int32_t *argmax, float *dx) {
    run(ctx, d, P_MAX_B, NULL, NULL, dy, dx, NULL, argmax);
}
void ff_avgpool2d_forward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x, float *y) {
    run(ctx, d, P_AVG_F, x, NULL, NULL, y, NULL, NULL);
}
void ff_avgpool2d_backward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *dy, float *dx) {
    run(ctx, d, P_AVG_B, NULL, NULL, dy, dx, NULL, NULL);
}
void ff_rmspool2d_forward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x, float *y) {
    run(ctx, d, P_RMS_F, x, NULL, NULL, y, NULL, NULL);
}
void ff_rmspool2d_backward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x,
                           const float *y, const float *dy, float *dx) {
    run(ctx, d, P_RMS_B, x, y, dy, dx, NULL, NULL);
}

/* ---- global average pooling ---- */

typedef struct {
    int hw;
    const float *x;
    float *y;
} gap_job;

static void gap_fwd_task(void *arg, long b, long e, int tid) {
    (void)tid;
    const gap_job *j = arg;
    for (long r = b; r < e; r++) {
        const float *x = j->x + r * j->hw;
        double s = 0;
        for (int i = 0; i < j->hw; i++) s += x[i];
        j->y[r] = (float)(s / j->hw);
    }
}

static void gap_bwd_task(void *arg, long b, long e, int tid) {
    (void)tid;
    const gap_job *j = arg; /* x holds dy (n*c), y holds dx (n*c*hw) */
    for (long r = b; r < e; r++) {
        float g = j->x[r] / (float)j->hw;
        float *dx = j->y + r * j->hw;
        for (int i = 0; i < j->hw; i++) dx[i] = g;
    }
}

void ff_gap_forward(ff_ctx *ctx, int n, int c, int hw, const float *x, float *y) {
    gap_job j = {hw, x, y};
    if (hw <= 0) {
        memset(y, 0, (size_t)ff_max_i(n * c, 0) * sizeof(float));
        return;
    }
    ff_parallel_for(ctx, (long)n * c, ff_max_l(1, 16384 / hw), gap_fwd_task, &j);
}

void ff_gap_backward(ff_ctx *ctx, int n, int c, int hw, const float *dy, float *dx) {
    if (hw <= 0) return;
    gap_job j = {hw, dy, dx};
    ff_parallel_for(ctx, (long)n * c, ff_max_l(1, 16384 / hw), gap_bwd_task, &j);
}
