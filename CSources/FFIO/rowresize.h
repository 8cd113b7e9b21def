/* rowresize.h -- the streaming resampler behind ffio_resample and image preparation. */
#ifndef FFIO_ROWRESIZE_H
#define FFIO_ROWRESIZE_H
#include <stddef.h>
#include <stdint.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef struct {
    int *start, *count; /* first source index and tap count per output sample */
    float *w;           /* taps, `stride` per output sample */
    int stride;
} ffio_filter1d;

typedef struct {
    int sw, sh, c, dw, dh, dc, flip;
    ffio_filter1d fx, fy;
    int col0, col1;  /* source columns read: [col0, col1) */
    int row0, row1;  /* source rows read: [row0, row1) */
    int ring;        /* accumulators held at once */
    int taps;        /* most horizontal taps of an output pixel */
    size_t width;    /* floats per accumulator: (col1 - col0) * c */
    float *acc, *rowf;
    int next_row;    /* the source row expected next */
    int next_out;    /* the first unfinished output row */
    uint8_t *dst;
#ifdef __SSE2__
    __m128 *wx4;     /* horizontal taps, broadcast (3-channel images) */
#endif
} ffio_rr;

/* Resamples the source rectangle (x0, y0, rw, rh) of an sw x sh image with c channels to
 * dw x dh into dst (dh rows of dw * dc bytes). dc == c, or c == 1 and dc == 3 (gray is
 * written as RGB). flip mirrors the output horizontally. Returns 0, or -1 (bad sizes or out
 * of memory). */
int ffio_rr_init(ffio_rr *r, int sw, int sh, int c, double x0, double y0, double rw, double rh,
                 uint8_t *dst, int dw, int dh, int dc, int flip);
/* Source row y; `row` holds columns from first_col on (at least up to col1). Rows must come
 * in order; rows outside [row0, row1) are ignored. */
void ffio_rr_push(ffio_rr *r, int y, const uint8_t *row, int first_col);
/* 1 once every output row is written. */
int ffio_rr_done(const ffio_rr *r);
void ffio_rr_free(ffio_rr *r);

/* The source rectangle that resizes the shorter side to `size` (the longer side rounded to
 * the nearest integer) and crops the centre size x size (offset rounded down). */
void ffio_center_crop_box(int sw, int sh, int size, double *x0, double *y0, double *rw, double *rh);
#endif
