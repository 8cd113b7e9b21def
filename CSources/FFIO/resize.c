/* resize.c -- uint8 pixel kernels: antialiased resampling, center crop, and the loader's
 * crop/flip/normalize to float CHW. */
#include "ffio_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int *start, *count; /* first source index and tap count per output sample */
    float *w;           /* taps, `stride` per output sample */
    int stride;
} filter1d;

/* Triangle filter whose radius grows with the downscale factor, so every source pixel
 * contributes when shrinking (antialiasing); at scale 1 and integer offsets it is the
 * identity, and when enlarging it is linear interpolation. */
static void filter_init(filter1d *f, int n_src, double x0, double len, int n_dst) {
    double scale = len / n_dst;
    double radius = scale > 1 ? scale : 1;
    f->stride = (int)ceil(2 * radius) + 2;
    f->start = malloc(sizeof(int) * n_dst);
    f->count = malloc(sizeof(int) * n_dst);
    f->w = calloc((size_t)n_dst * f->stride, sizeof(float));
    for (int j = 0; j < n_dst; j++) {
        double center = x0 + (j + 0.5) * scale;
        int lo = (int)floor(center - radius), hi = (int)ceil(center + radius);
        if (lo < 0) lo = 0;
        if (hi > n_src) hi = n_src;
        float *w = f->w + (size_t)j * f->stride;
        double sum = 0;
        int n = 0;
        for (int i = lo; i < hi && n < f->stride; i++, n++) {
            double d = fabs(i + 0.5 - center) / radius;
            w[n] = d < 1 ? (float)(1 - d) : 0.f;
            sum += w[n];
        }
        if (sum <= 0) { /* window outside the image: take the nearest edge pixel */
            lo = center < 0 ? 0 : n_src - 1;
            n = 1;
            w[0] = 1;
            sum = 1;
        }
        for (int k = 0; k < n; k++) w[k] = (float)(w[k] / sum);
        f->start[j] = lo;
        f->count[j] = n;
    }
}

static void filter_free(filter1d *f) {
    free(f->start);
    free(f->count);
    free(f->w);
}

void ffio_resample(const uint8_t *src, int sw, int sh, int c, double x0, double y0, double rw,
                   double rh, uint8_t *dst, int dw, int dh, int flip) {
    int ix = (int)x0, iy = (int)y0;
    if (rw == dw && rh == dh && ix == x0 && iy == y0 && ix >= 0 && iy >= 0 && ix + dw <= sw &&
        iy + dh <= sh) {
        for (int y = 0; y < dh; y++) {
            const uint8_t *s = src + ((size_t)(iy + y) * sw + ix) * c;
            uint8_t *d = dst + (size_t)y * dw * c;
            if (!flip) {
                memcpy(d, s, (size_t)dw * c);
            } else {
                for (int x = 0; x < dw; x++) memcpy(d + (size_t)x * c, s + (size_t)(dw - 1 - x) * c, c);
            }
        }
        return;
    }
    filter1d fx, fy;
    filter_init(&fx, sw, x0, rw, dw);
    filter_init(&fy, sh, y0, rh, dh);
    int r0 = fy.start[0], r1 = r0;
    for (int j = 0; j < dh; j++) {
        if (fy.start[j] < r0) r0 = fy.start[j];
        if (fy.start[j] + fy.count[j] > r1) r1 = fy.start[j] + fy.count[j];
    }
    /* Horizontal pass over the source rows that the vertical pass needs. */
    size_t trow = (size_t)dw * c;
    float *tmp = malloc(sizeof(float) * trow * (size_t)(r1 - r0));
    for (int y = r0; y < r1; y++) {
        const uint8_t *s = src + (size_t)y * sw * c;
        float *t = tmp + (size_t)(y - r0) * trow;
        for (int x = 0; x < dw; x++) {
            const float *w = fx.w + (size_t)x * fx.stride;
            const uint8_t *p = s + (size_t)fx.start[x] * c;
            for (int ch = 0; ch < c; ch++) {
                float acc = 0;
                for (int k = 0; k < fx.count[x]; k++) acc += w[k] * p[(size_t)k * c + ch];
                t[(size_t)x * c + ch] = acc;
            }
        }
    }
    for (int y = 0; y < dh; y++) {
        const float *w = fy.w + (size_t)y * fy.stride;
        uint8_t *d = dst + (size_t)y * trow;
        for (size_t i = 0; i < trow; i++) {
            float acc = 0;
            const float *t = tmp + (size_t)(fy.start[y] - r0) * trow + i;
            for (int k = 0; k < fy.count[y]; k++) acc += w[k] * t[(size_t)k * trow];
            int v = (int)(acc + 0.5f);
            d[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        if (flip) {
            for (int x = 0; x < dw / 2; x++) {
                for (int ch = 0; ch < c; ch++) {
                    uint8_t a = d[(size_t)x * c + ch];
                    d[(size_t)x * c + ch] = d[(size_t)(dw - 1 - x) * c + ch];
                    d[(size_t)(dw - 1 - x) * c + ch] = a;
                }
            }
        }
    }
    free(tmp);
    filter_free(&fx);
    filter_free(&fy);
}

void ffio_resize_center_crop(const uint8_t *src, int sw, int sh, int c, int size, uint8_t *dst) {
    /* Resize so the shorter side is `size` (the longer side rounded), then crop the center;
     * both steps are done as one resample of the matching source rectangle. */
    double x0 = 0, y0 = 0, rw = sw, rh = sh;
    if (sw <= sh) {
        int nh = (int)lround((double)sh * size / sw);
        if (nh < size) nh = size;
        double sy = (double)sh / nh;
        y0 = ((nh - size) / 2) * sy;
        rh = size * sy;
    } else {
        int nw = (int)lround((double)sw * size / sh);
        if (nw < size) nw = size;
        double sx = (double)sw / nw;
        x0 = ((nw - size) / 2) * sx;
        rw = size * sx;
    }
    ffio_resample(src, sw, sh, c, x0, y0, rw, rh, dst, size, size, 0);
}

void ffio_crop_normalize(const uint8_t *src, int h, int w, int c, int top, int left, int oh,
                         int ow, int flip, const float *scale, const float *bias, float *dst) {
    float lut[4][256];
    int cc = c < 4 ? c : 4;
    for (int ch = 0; ch < cc; ch++)
        for (int v = 0; v < 256; v++) lut[ch][v] = v * scale[ch] + bias[ch];
    size_t plane = (size_t)oh * ow;
    for (int ch = 0; ch < c; ch++) {
        float s = scale[ch], b = bias[ch];
        for (int y = 0; y < oh; y++) {
            float *d = dst + ch * plane + (size_t)y * ow;
            int sy = top + y;
            if (sy < 0 || sy >= h) {
                for (int x = 0; x < ow; x++) d[x] = b;
                continue;
            }
            const uint8_t *row = src + (size_t)sy * w * c + ch;
            for (int x = 0; x < ow; x++) {
                int sx = left + (flip ? ow - 1 - x : x);
                if (sx < 0 || sx >= w) d[x] = b;
                else d[x] = ch < 4 ? lut[ch][row[(size_t)sx * c]] : row[(size_t)sx * c] * s + b;
            }
        }
    }
}

void ffio_resample_normalize(const uint8_t *src, int h, int w, int c, double x0, double y0,
                             double rw, double rh, int oh, int ow, int flip,
                             const float *scale, const float *bias, float *dst) {
    uint8_t stackbuf[64 * 64 * 3];
    size_t n = (size_t)oh * ow * c;
    uint8_t *tmp = n <= sizeof stackbuf ? stackbuf : malloc(n);
    ffio_resample(src, w, h, c, x0, y0, rw, rh, tmp, ow, oh, flip);
    ffio_crop_normalize(tmp, oh, ow, c, 0, 0, oh, ow, 0, scale, bias, dst);
    if (tmp != stackbuf) free(tmp);
}

void ffio_channel_sums(const uint8_t *src, int64_t pixels, int c, uint64_t *sum, uint64_t *sumsq) {
    for (int ch = 0; ch < c; ch++) {
        uint64_t s = 0, q = 0;
        for (int64_t i = 0; i < pixels; i++) {
            uint32_t v = src[i * c + ch];
            s += v;
            q += v * v;
        }
        sum[ch] += s;
        sumsq[ch] += q;
    }
}
