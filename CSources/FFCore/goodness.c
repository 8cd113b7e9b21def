/* Spatial goodness (ASGE eq. 1-3).
 *   y, dy: (n, c, h, w); g, dg: (n, c*p*p) with g[s, ch*p*p + i*p + j] the mean of y^2
 *   over patch (i, j) of map (s, ch). Patch i covers rows [floor(i*h/p), ceil((i+1)*h/p))
 *   (columns likewise), i.e. adaptive_avg_pool2d bins: equal when p divides h, otherwise
 *   neighbouring bins may share a row or column. The _bins variants also offer floor bins
 *   [i*floor(h/p), (i+1)*floor(h/p)) (avg_pool2d with kernel h/p; the remainder is unused).
 * Both passes run over (sample, channel) maps. The forward sums squares down the rows of
 * a bin into per-column sums (elementwise, so it vectorises), then across each column bin
 * in double. The backward builds per-row-bin column coefficients dg/area once per map. */
#include "ff_simd.h"
#include "goodness_bins.h"

#include <math.h>
#include <string.h>

/* Vector and scalar code must round identically: no a*b+c fusion anywhere. */
#pragma STDC FP_CONTRACT OFF

typedef struct {
    int h, w, p, fl;
    const float *y, *dg;
    float *g, *dy;
    ff_ctx *ctx;
} gd_job;

AI void gd_fwd_body(void *arg, long b, long e, int tid) {
    const gd_job *j = arg;
    const int h = j->h, w = j->w, p = j->p, fl = j->fl;
    float *restrict col = ff_ctx_scratch(j->ctx, tid, 0, (size_t)w);
    for (long m = b; m < e; m++) {
        const float *map = j->y + m * (long)h * w;
        float *g = j->g + m * (long)p * p;
        for (int i = 0; i < p; i++) {
            const int r0 = bin_start(i, h, p, fl), r1 = bin_end(i, h, p, fl);
            for (int x = 0; x < w; x++) col[x] = 0.0f;
            for (int r = r0; r < r1; r++) {
                const float *restrict row = map + (long)r * w;
                for (int x = 0; x < w; x++) col[x] += row[x] * row[x];
            }
            for (int jj = 0; jj < p; jj++) {
                const int c0 = bin_start(jj, w, p, fl), c1 = bin_end(jj, w, p, fl);
                double s = 0;
                for (int x = c0; x < c1; x++) s += col[x];
                g[i * p + jj] = (float)(s / ((double)(r1 - r0) * (c1 - c0)));
            }
        }
    }
}
FF_TASK_VARIANTS(gd_fwd)

AI void gd_bwd_body(void *arg, long b, long e, int tid) {
    const gd_job *j = arg;
    const int h = j->h, w = j->w, p = j->p, fl = j->fl;
    /* coef[i*w + x] = sum over column bins jj containing x of dg[i, jj] / area(i, jj). */
    float *restrict coef = ff_ctx_scratch(j->ctx, tid, 0, (size_t)p * w);
    float *restrict both = ff_ctx_scratch(j->ctx, tid, 1, (size_t)w);
    for (long m = b; m < e; m++) {
        const float *map = j->y + m * (long)h * w;
        const float *dg = j->dg + m * (long)p * p;
        float *out = j->dy + m * (long)h * w;
        for (int i = 0; i < p; i++) {
            float *cf = coef + (long)i * w;
            const int rows = bin_end(i, h, p, fl) - bin_start(i, h, p, fl);
            for (int x = 0; x < w; x++) cf[x] = 0.0f;
            for (int jj = 0; jj < p; jj++) {
                const int c0 = bin_start(jj, w, p, fl), c1 = bin_end(jj, w, p, fl);
                const float v = (float)((double)dg[i * p + jj] / ((double)rows * (c1 - c0)));
                for (int x = c0; x < c1; x++) cf[x] += v;
            }
        }
        int first = 0; /* first row bin that still contains row r */
        const int covered = fl ? p * (h / p) : h;
        for (int r = covered; r < h; r++) memset(out + (long)r * w, 0, sizeof(float) * (size_t)w);
        for (int r = 0; r < covered; r++) {
            while (bin_end(first, h, p, fl) <= r) first++;
            const float *cf = coef + (long)first * w;
            /* A row shared by several bins takes the sum of their coefficients. */
            if (first + 1 < p && bin_start(first + 1, h, p, fl) <= r) {
                for (int x = 0; x < w; x++) both[x] = cf[x];
                for (int i = first + 1; i < p && bin_start(i, h, p, fl) <= r; i++)
                    for (int x = 0; x < w; x++) both[x] += coef[(long)i * w + x];
                cf = both;
            }
            const float *restrict row = map + (long)r * w;
            float *restrict drow = out + (long)r * w;
            for (int x = 0; x < w; x++) drow[x] = 2.0f * row[x] * cf[x];
        }
    }
}
FF_TASK_VARIANTS(gd_bwd)

static long map_grain(int h, int w) { return ff_max_l(1, 16384 / ff_max_l(1, (long)h * w)); }

void ff_goodness_forward_bins(ff_ctx *ctx, int n, int c, int h, int w, int p, int bins,
                              const float *y, float *g) {
    if (n <= 0 || c <= 0 || p <= 0 || h <= 0 || w <= 0) return;
    gd_job j = {h, w, p, bins == FF_GOODNESS_FLOOR, y, NULL, g, NULL, ctx};
    ff_parallel_for(ctx, (long)n * c, map_grain(h, w), gd_fwd_fns[ff_ctx_simd(ctx)], &j);
}

void ff_goodness_backward_bins(ff_ctx *ctx, int n, int c, int h, int w, int p, int bins,
                               const float *y, const float *dg, float *dy) {
    if (n <= 0 || c <= 0 || p <= 0 || h <= 0 || w <= 0) return;
    gd_job j = {h, w, p, bins == FF_GOODNESS_FLOOR, y, dg, NULL, dy, ctx};
    ff_parallel_for(ctx, (long)n * c, map_grain(h, w), gd_bwd_fns[ff_ctx_simd(ctx)], &j);
}

void ff_goodness_forward(ff_ctx *ctx, int n, int c, int h, int w, int p, const float *y,
                         float *g) {
    ff_goodness_forward_bins(ctx, n, c, h, w, p, FF_GOODNESS_ADAPTIVE, y, g);
}

void ff_goodness_backward(ff_ctx *ctx, int n, int c, int h, int w, int p, const float *y,
                          const float *dg, float *dy) {
    ff_goodness_backward_bins(ctx, n, c, h, w, p, FF_GOODNESS_ADAPTIVE, y, dg, dy);
}

int ff_goodness_partition(double alpha, int c_last, int c, int h, int w) {
    double q = c > 0 ? floor(alpha * (double)c_last / (double)c) : 1.0;
    int p = 1;
    /* Compare in double before converting, so a huge or NaN ratio cannot overflow. */
    if (q > 1.0) p = q >= (double)INT32_MAX ? INT32_MAX : (int)q;
    return ff_min_i(p, ff_min_i(h, w));
}
