/* color.c -- per-sample colour augmentation and input scaling on float CHW images with
 * values in [0, 1] (after the loader's crop/resize, before normalisation).
 *
 * Shapes: x is (c, h, w), c = 1 or 3, channel planes of hw = h * w floats.
 * Semantics follow torchvision's tensor functional ops (adjust_brightness, _contrast,
 * _saturation, _hue, rgb_to_grayscale) so that ColorJitter / RandomGrayscale recipes
 * mean what they mean there: results are clamped to [0, 1]; saturation and hue leave a
 * one-channel image unchanged; contrast blends with the mean of the grayscale image. */
#include "ffio_internal.h"
#include <math.h>

static inline float clamp01(float v) { return v < 0.f ? 0.f : (v > 1.f ? 1.f : v); }

/* ITU-R 601 luma with torchvision's coefficients. */
static inline float luma(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }

static void blend(float *x, int c, int64_t hw, float f, const float *other, float other_scalar) {
    for (int ch = 0; ch < c; ch++) {
        float *p = x + ch * hw;
        for (int64_t i = 0; i < hw; i++) {
            float o = other ? other[i] : other_scalar;
            p[i] = clamp01(f * p[i] + (1.f - f) * o);
        }
    }
}

static void brightness(float *x, int c, int64_t hw, float f) { blend(x, c, hw, f, NULL, 0.f); }

static void contrast(float *x, int c, int64_t hw, float f) {
    double sum = 0;
    if (c == 3) {
        for (int64_t i = 0; i < hw; i++) sum += luma(x[i], x[hw + i], x[2 * hw + i]);
    } else {
        for (int64_t i = 0; i < hw; i++) sum += x[i];
    }
    blend(x, c, hw, f, NULL, (float)(sum / (double)hw));
}

static void saturation(float *x, int c, int64_t hw, float f) {
    if (c != 3) return;
    for (int64_t i = 0; i < hw; i++) {
        float g = luma(x[i], x[hw + i], x[2 * hw + i]);
        for (int ch = 0; ch < 3; ch++) x[ch * hw + i] = clamp01(f * x[ch * hw + i] + (1.f - f) * g);
    }
}

static void hue(float *x, int64_t hw, float shift) {
    for (int64_t i = 0; i < hw; i++) {
        float r = x[i], g = x[hw + i], b = x[2 * hw + i];
        float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
        int eq = maxc == minc;
        float cr = maxc - minc;
        float s = cr / (eq ? 1.f : maxc);
        float div = eq ? 1.f : cr;
        float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
        float h;
        if (maxc == r) h = bc - gc;
        else if (maxc == g) h = 2.f + rc - bc;
        else h = 4.f + gc - rc;
        h = fmodf(h / 6.f + 1.f, 1.f);
        h = fmodf(h + shift, 1.f);
        if (h < 0) h += 1.f;
        float v = maxc;
        float h6 = h * 6.f, fi = floorf(h6), fr = h6 - fi;
        int k = ((int)fi) % 6;
        float p = clamp01(v * (1.f - s)), q = clamp01(v * (1.f - s * fr)), t = clamp01(v * (1.f - s * (1.f - fr)));
        float o[3];
        switch (k) {
        case 0: o[0] = v; o[1] = t; o[2] = p; break;
        case 1: o[0] = q; o[1] = v; o[2] = p; break;
        case 2: o[0] = p; o[1] = v; o[2] = t; break;
        case 3: o[0] = p; o[1] = q; o[2] = v; break;
        case 4: o[0] = t; o[1] = p; o[2] = v; break;
        default: o[0] = v; o[1] = p; o[2] = q; break;
        }
        x[i] = o[0];
        x[hw + i] = o[1];
        x[2 * hw + i] = o[2];
    }
}

void ffio_color_jitter(float *x, int c, int h, int w, const int order[4], const float factors[4]) {
    int64_t hw = (int64_t)h * w;
    for (int k = 0; k < 4; k++) {
        switch (order[k]) {
        case 0: if (factors[0] != 1.f) brightness(x, c, hw, factors[0]); break;
        case 1: if (factors[1] != 1.f) contrast(x, c, hw, factors[1]); break;
        case 2: if (factors[2] != 1.f) saturation(x, c, hw, factors[2]); break;
        case 3: if (factors[3] != 0.f && c == 3) hue(x, hw, factors[3]); break;
        default: break;
        }
    }
}

void ffio_grayscale(float *x, int c, int h, int w) {
    if (c != 3) return;
    int64_t hw = (int64_t)h * w;
    for (int64_t i = 0; i < hw; i++) {
        float g = luma(x[i], x[hw + i], x[2 * hw + i]);
        x[i] = x[hw + i] = x[2 * hw + i] = g;
    }
}

void ffio_affine_channels(float *x, int c, int h, int w, const float *scale, const float *bias) {
    int64_t hw = (int64_t)h * w;
    for (int ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < hw; i++) x[ch * hw + i] = x[ch * hw + i] * scale[ch] + bias[ch];
}

void ffio_rms_scale(float *x, int64_t n, float eps) {
    double sq = 0;
    for (int64_t i = 0; i < n; i++) sq += (double)x[i] * x[i];
    float r = (float)sqrt(sq / (double)(n > 0 ? n : 1)) + eps;
    float inv = 1.f / r;
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}
