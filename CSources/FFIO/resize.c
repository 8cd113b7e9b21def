/* resize.c -- uint8 pixel kernels: antialiased resampling (through the streaming resampler
 * of rowresize.c), center crop, and the loader's crop/flip/normalize to float CHW. */
#include "ffio_internal.h"
#include "rowresize.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int ffio_resample(const uint8_t *src, int sw, int sh, int c, double x0, double y0, double rw,
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
        return 0;
    }
    ffio_rr r;
    if (ffio_rr_init(&r, sw, sh, c, x0, y0, rw, rh, dst, dw, dh, c, flip) < 0) {
        ffio_set_error("cannot resample %dx%d to %dx%d (invalid size or out of memory)", sw, sh, dw, dh);
        return -1;
    }
    for (int y = r.row0; y < r.row1; y++) ffio_rr_push(&r, y, src + (size_t)y * sw * c, 0);
    ffio_rr_free(&r);
    return 0;
}

int ffio_resize_center_crop(const uint8_t *src, int sw, int sh, int c, int size, uint8_t *dst) {
    double x0, y0, rw, rh;
    ffio_center_crop_box(sw, sh, size, &x0, &y0, &rw, &rh);
    return ffio_resample(src, sw, sh, c, x0, y0, rw, rh, dst, size, size, 0);
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

int ffio_resample_normalize(const uint8_t *src, int h, int w, int c, double x0, double y0,
                            double rw, double rh, int oh, int ow, int flip,
                            const float *scale, const float *bias, float *dst) {
    uint8_t stackbuf[64 * 64 * 3];
    size_t n = (size_t)oh * ow * c;
    uint8_t *tmp = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!tmp) { ffio_set_error("out of memory"); return -1; }
    int rc = ffio_resample(src, w, h, c, x0, y0, rw, rh, tmp, ow, oh, flip);
    if (rc == 0) ffio_crop_normalize(tmp, oh, ow, c, 0, 0, oh, ow, 0, scale, bias, dst);
    if (tmp != stackbuf) free(tmp);
    return rc;
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
