/* rowresize.c -- antialiased separable resampling fed one source row at a time.
 *
 * Decoders push rows as they decode them, so an image is resized in the same pass without
 * holding it whole: memory is O(source width x filter taps). The vertical pass runs first
 * (each source row is added, weighted, into the few output rows whose window covers it;
 * contiguous, vectorised), and an output row gets its horizontal pass as soon as its last
 * source row has arrived. Everything is float; nothing is fused or reordered by the target
 * ISA, so every machine gives the same bytes. */
#include "rowresize.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Triangle filter whose radius grows with the downscale factor, so every source pixel
 * contributes when shrinking (antialiasing); at scale 1 and integer offsets it is the
 * identity, and when enlarging it is linear interpolation. */
static int filter_init(ffio_filter1d *f, int n_src, double x0, double len, int n_dst) {
    double scale = len / n_dst;
    double radius = scale > 1 ? scale : 1;
    f->stride = (int)ceil(2 * radius) + 2;
    f->start = malloc(sizeof(int) * (size_t)n_dst);
    f->count = malloc(sizeof(int) * (size_t)n_dst);
    f->w = calloc((size_t)n_dst * (size_t)f->stride, sizeof(float));
    if (!f->start || !f->count || !f->w) return -1;
    for (int j = 0; j < n_dst; j++) {
        double center = x0 + (j + 0.5) * scale;
        double lo_d = floor(center - radius), hi_d = ceil(center + radius);
        int lo = lo_d < 0 ? 0 : lo_d > n_src ? n_src : (int)lo_d;
        int hi = hi_d > n_src ? n_src : hi_d < 0 ? 0 : (int)hi_d;
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
        /* Zero taps at either end add exactly nothing; dropping them saves work. */
        int skip = 0;
        while (n > 1 && w[0] == 0) { memmove(w, w + 1, sizeof(float) * (size_t)(n - 1)); w[--n] = 0; skip++; }
        while (n > 1 && w[n - 1] == 0) n--;
        f->start[j] = lo + skip;
        f->count[j] = n;
    }
    return 0;
}

static void filter_free(ffio_filter1d *f) {
    free(f->start);
    free(f->count);
    free(f->w);
    memset(f, 0, sizeof *f);
}

void ffio_rr_free(ffio_rr *r) {
    filter_free(&r->fx);
    filter_free(&r->fy);
    free(r->acc);
    free(r->rowf);
    r->acc = r->rowf = NULL;
#ifdef __SSE2__
    free(r->wx4);
    r->wx4 = NULL;
#endif
}

int ffio_rr_init(ffio_rr *r, int sw, int sh, int c, double x0, double y0, double rw, double rh,
                 uint8_t *dst, int dw, int dh, int dc, int flip) {
    memset(r, 0, sizeof *r);
    if (sw < 1 || sh < 1 || dw < 1 || dh < 1 || c < 1 || (dc != c && !(c == 1 && dc == 3))) return -1;
    r->sw = sw;
    r->sh = sh;
    r->c = c;
    r->dw = dw;
    r->dh = dh;
    r->dc = dc;
    r->flip = flip;
    r->dst = dst;
    if (filter_init(&r->fx, sw, x0, rw, dw) < 0 || filter_init(&r->fy, sh, y0, rh, dh) < 0) {
        ffio_rr_free(r);
        return -1;
    }
    r->col0 = r->fx.start[0];
    r->col1 = r->col0 + 1;
    for (int x = 0; x < dw; x++) {
        if (r->fx.start[x] < r->col0) r->col0 = r->fx.start[x];
        if (r->fx.start[x] + r->fx.count[x] > r->col1) r->col1 = r->fx.start[x] + r->fx.count[x];
    }
    /* Window starts and ends never decrease with the output row. */
    r->row0 = r->fy.start[0];
    r->row1 = r->fy.start[dh - 1] + r->fy.count[dh - 1];
    /* Ring of accumulators: the most output rows whose windows are open at once. */
    r->ring = 1;
    for (int j = 0, k = 0; j < dh; j++) {
        int last = r->fy.start[j] + r->fy.count[j] - 1;
        if (k < j) k = j;
        while (k + 1 < dh && r->fy.start[k + 1] <= last) k++;
        if (k - j + 1 > r->ring) r->ring = k - j + 1;
    }
    r->width = (size_t)(r->col1 - r->col0) * c;
    r->taps = 1;
    for (int x = 0; x < dw; x++)
        if (r->fx.count[x] > r->taps) r->taps = r->fx.count[x];
    /* The vector code reads up to taps pixels (+1 lane) from any window start; calloc keeps
     * that tail finite, so its zero-weighted taps add exactly nothing. */
    r->acc = calloc(r->width * (size_t)r->ring + 3 * (size_t)r->taps + 4, sizeof(float));
    r->rowf = malloc(sizeof(float) * r->width);
    if (!r->acc || !r->rowf) {
        ffio_rr_free(r);
        return -1;
    }
#ifdef __SSE2__
    /* Horizontal taps broadcast to all lanes and padded with zeros to `taps` per pixel. */
    if (c == 3 && !flip) {
        size_t nw = (size_t)dw * r->taps;
        if (posix_memalign((void **)&r->wx4, 16, sizeof(__m128) * nw) != 0) {
            r->wx4 = NULL;
            ffio_rr_free(r);
            return -1;
        }
        for (int x = 0; x < dw; x++)
            for (int k = 0; k < r->taps; k++)
                r->wx4[(size_t)x * r->taps + k] =
                    _mm_set1_ps(k < r->fx.count[x] ? r->fx.w[(size_t)x * r->fx.stride + k] : 0.f);
    }
#endif
    r->next_row = r->row0;
    return 0;
}

#ifdef __SSE2__
static inline uint32_t rgb_bytes(__m128 s) {
    __m128i v = _mm_cvttps_epi32(_mm_add_ps(s, _mm_set1_ps(0.5f)));
    v = _mm_packs_epi32(v, v);
    v = _mm_packus_epi16(v, v);
    return (uint32_t)_mm_cvtsi128_si32(v);
}

/* RGB rows, one pixel per vector (the fourth lane is ignored), four pixels at a time so
 * their sums run in parallel. Per lane these are the scalar code's sums in its order (plus
 * zero-weighted taps), and (int)(s + 0.5) then saturation is its clamp: identical bytes. */
static void emit_rgb_sse2(const ffio_rr *r, const float *acc, uint8_t *d) {
    const int T = r->taps, dw = r->dw;
    int x = 0;
    for (; x + 4 <= dw; x += 4) {
        const float *p0 = acc + (size_t)(r->fx.start[x] - r->col0) * 3;
        const float *p1 = acc + (size_t)(r->fx.start[x + 1] - r->col0) * 3;
        const float *p2 = acc + (size_t)(r->fx.start[x + 2] - r->col0) * 3;
        const float *p3 = acc + (size_t)(r->fx.start[x + 3] - r->col0) * 3;
        const __m128 *w = r->wx4 + (size_t)x * T;
        __m128 s0 = _mm_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int k = 0; k < T; k++) {
            s0 = _mm_add_ps(s0, _mm_mul_ps(w[k], _mm_loadu_ps(p0 + 3 * k)));
            s1 = _mm_add_ps(s1, _mm_mul_ps(w[T + k], _mm_loadu_ps(p1 + 3 * k)));
            s2 = _mm_add_ps(s2, _mm_mul_ps(w[2 * T + k], _mm_loadu_ps(p2 + 3 * k)));
            s3 = _mm_add_ps(s3, _mm_mul_ps(w[3 * T + k], _mm_loadu_ps(p3 + 3 * k)));
        }
        uint32_t b[4] = { rgb_bytes(s0), rgb_bytes(s1), rgb_bytes(s2), rgb_bytes(s3) };
        uint8_t *o = d + (size_t)x * 3;
        /* 4-byte stores; each one's fourth byte is the next pixel's, written right after. */
        memcpy(o, &b[0], 4);
        memcpy(o + 3, &b[1], 4);
        memcpy(o + 6, &b[2], 4);
        o[9] = (uint8_t)b[3];
        o[10] = (uint8_t)(b[3] >> 8);
        o[11] = (uint8_t)(b[3] >> 16);
    }
    for (; x < dw; x++) {
        const float *p = acc + (size_t)(r->fx.start[x] - r->col0) * 3;
        const __m128 *w = r->wx4 + (size_t)x * T;
        __m128 s = _mm_setzero_ps();
        for (int k = 0; k < T; k++) s = _mm_add_ps(s, _mm_mul_ps(w[k], _mm_loadu_ps(p + 3 * k)));
        uint32_t b = rgb_bytes(s);
        d[3 * x] = (uint8_t)b;
        d[3 * x + 1] = (uint8_t)(b >> 8);
        d[3 * x + 2] = (uint8_t)(b >> 16);
    }
}
#endif

/* Horizontal pass of output row j from its finished accumulator. */
static void emit(ffio_rr *r, int j) {
    const float *acc = r->acc + (size_t)(j % r->ring) * r->width;
    uint8_t *d = r->dst + (size_t)j * r->dw * r->dc;
#ifdef __SSE2__
    if (r->wx4) {
        emit_rgb_sse2(r, acc, d);
        return;
    }
#endif
    const int c = r->c;
    for (int x = 0; x < r->dw; x++) {
        const float *w = r->fx.w + (size_t)x * r->fx.stride;
        const float *p = acc + (size_t)(r->fx.start[x] - r->col0) * c;
        int n = r->fx.count[x];
        uint8_t *o = d + (size_t)(r->flip ? r->dw - 1 - x : x) * r->dc;
        if (c == 1) {
            float s = 0;
            for (int k = 0; k < n; k++) s += w[k] * p[k];
            int v = (int)(s + 0.5f);
            uint8_t u = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            for (int ch = 0; ch < r->dc; ch++) o[ch] = u;
        } else if (c == 3) {
            float s0 = 0, s1 = 0, s2 = 0;
            for (int k = 0; k < n; k++) {
                s0 += w[k] * p[3 * k];
                s1 += w[k] * p[3 * k + 1];
                s2 += w[k] * p[3 * k + 2];
            }
            float s[3] = { s0, s1, s2 };
            for (int ch = 0; ch < 3; ch++) {
                int v = (int)(s[ch] + 0.5f);
                o[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        } else {
            for (int ch = 0; ch < c; ch++) {
                float s = 0;
                for (int k = 0; k < n; k++) s += w[k] * p[(size_t)k * c + ch];
                int v = (int)(s + 0.5f);
                o[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
}

/* The vertical pass, elementwise: wider vectors where the CPU has them (AVX2 without FMA,
 * so every element is the same multiply then add on any machine). */
#if defined(__x86_64__) && defined(__clang__)
#define FFIO_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FFIO_CLONES
#endif
FFIO_CLONES static void widen_row(float *restrict out, const uint8_t *restrict in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i];
}
FFIO_CLONES static void scale_row(float *restrict a, const float *restrict x, float w, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = w * x[i];
}
FFIO_CLONES static void add_scaled_row(float *restrict a, const float *restrict x, float w, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] += w * x[i];
}

void ffio_rr_push(ffio_rr *r, int y, const uint8_t *row, int first_col) {
    if (y != r->next_row || y >= r->row1) return; /* not needed (or out of order) */
    r->next_row++;
    const uint8_t *s = row + (size_t)(r->col0 - first_col) * r->c;
    float *rf = r->rowf;
    const size_t n = r->width;
    widen_row(rf, s, n);
    for (int j = r->next_out; j < r->dh && r->fy.start[j] <= y; j++) {
        int k = y - r->fy.start[j];
        if (k >= r->fy.count[j]) continue;
        float w = r->fy.w[(size_t)j * r->fy.stride + k];
        float *a = r->acc + (size_t)(j % r->ring) * n;
        if (k == 0) scale_row(a, rf, w, n);
        else add_scaled_row(a, rf, w, n);
    }
    while (r->next_out < r->dh && r->fy.start[r->next_out] + r->fy.count[r->next_out] - 1 <= y) {
        emit(r, r->next_out);
        r->next_out++;
    }
}

int ffio_rr_done(const ffio_rr *r) { return r->next_out == r->dh; }

void ffio_center_crop_box(int sw, int sh, int size, double *x0, double *y0, double *rw, double *rh) {
    /* Resize so the shorter side is `size` (the longer side rounded), then crop the center;
     * both steps are one resample of the matching source rectangle. */
    *x0 = 0;
    *y0 = 0;
    *rw = sw;
    *rh = sh;
    if (sw <= sh) {
        long nh = lround((double)sh * size / sw);
        if (nh < size) nh = size;
        double sy = (double)sh / nh;
        *y0 = ((nh - size) / 2) * sy;
        *rh = size * sy;
    } else {
        long nw = lround((double)sw * size / sh);
        if (nw < size) nw = size;
        double sx = (double)sw / nw;
        *x0 = ((nw - size) / 2) * sx;
        *rw = size * sx;
    }
}
