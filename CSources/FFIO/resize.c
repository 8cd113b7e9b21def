/* resize.c -- uint8 pixel kernels: antialiased resampling (through the streaming resampler
 * of rowresize.c), center crop, and the loader's crop/flip/normalize to float CHW. */
#include "ffio_internal.h"
#include "rowresize.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

static void channel_sums_scalar(const uint8_t *src, int64_t pixels, int c, uint64_t *sum, uint64_t *sumsq) {
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

void ffio_channel_sums(const uint8_t *src, int64_t pixels, int c, uint64_t *sum, uint64_t *sumsq) {
#ifdef __SSE2__
    if (c >= 1 && c <= 4) {
        /* One pass over the bytes in periods of c vectors (16 * c bytes, a whole number of
         * pixels), so every 32-bit lane always holds the same channel; lanes are flushed to
         * 64 bits before a sum of squares could overflow. Exact, like the scalar code. */
        const int64_t period = 16 * (int64_t)c;
        const int64_t periods = pixels * c / period;
        const __m128i zero = _mm_setzero_si128();
        int64_t done = 0;
        uint64_t s64[4][16] = { { 0 } }, q64[4][16] = { { 0 } };
        while (done < periods) {
            int64_t n = periods - done < 32768 ? periods - done : 32768;
            __m128i s[4][4], q[4][4];
            for (int m = 0; m < c; m++)
                for (int k = 0; k < 4; k++) s[m][k] = q[m][k] = zero;
            const uint8_t *p = src + done * period;
            for (int64_t i = 0; i < n; i++, p += period) {
                for (int m = 0; m < c; m++) {
                    __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * m));
                    __m128i lo = _mm_unpacklo_epi8(v, zero), hi = _mm_unpackhi_epi8(v, zero);
                    __m128i lq = _mm_mullo_epi16(lo, lo), hq = _mm_mullo_epi16(hi, hi);
                    s[m][0] = _mm_add_epi32(s[m][0], _mm_unpacklo_epi16(lo, zero));
                    s[m][1] = _mm_add_epi32(s[m][1], _mm_unpackhi_epi16(lo, zero));
                    s[m][2] = _mm_add_epi32(s[m][2], _mm_unpacklo_epi16(hi, zero));
                    s[m][3] = _mm_add_epi32(s[m][3], _mm_unpackhi_epi16(hi, zero));
                    q[m][0] = _mm_add_epi32(q[m][0], _mm_unpacklo_epi16(lq, zero));
                    q[m][1] = _mm_add_epi32(q[m][1], _mm_unpackhi_epi16(lq, zero));
                    q[m][2] = _mm_add_epi32(q[m][2], _mm_unpacklo_epi16(hq, zero));
                    q[m][3] = _mm_add_epi32(q[m][3], _mm_unpackhi_epi16(hq, zero));
                }
            }
            for (int m = 0; m < c; m++)
                for (int k = 0; k < 4; k++) {
                    uint32_t a[4], b[4];
                    _mm_storeu_si128((__m128i *)a, s[m][k]);
                    _mm_storeu_si128((__m128i *)b, q[m][k]);
                    for (int l = 0; l < 4; l++) {
                        s64[m][4 * k + l] += a[l];
                        q64[m][4 * k + l] += b[l];
                    }
                }
            done += n;
        }
        for (int m = 0; m < c; m++)
            for (int b = 0; b < 16; b++) {
                int ch = (16 * m + b) % c;
                sum[ch] += s64[m][b];
                sumsq[ch] += q64[m][b];
            }
        int64_t rest = pixels - periods * 16;
        channel_sums_scalar(src + periods * period, rest, c, sum, sumsq);
        return;
    }
#endif
    channel_sums_scalar(src, pixels, c, sum, sumsq);
}
