/* image_internal.h -- the decoders behind ffio_image_* and the sinks they write rows to. */
#ifndef FFIO_IMAGE_INTERNAL_H
#define FFIO_IMAGE_INTERNAL_H
#include "include/ffio.h"
#include <stdio.h>

/* Encoded bytes: in memory (data, len) or a stream (file). */
typedef struct {
    const uint8_t *data;
    size_t len;
    FILE *file;
} ffio_source;

/* Where decoded rows go. `begin` receives the decoded size (after any DCT scaling) and the
 * channel count (1 gray or 3 RGB), and says which source columns [col0, col1) and rows
 * [row0, row1) it needs (the decoders may skip work outside them); it returns 0, or -1 with
 * a reason in err. `row` receives row y, whose buffer starts at column first_col. */
typedef struct ffio_sink ffio_sink;
struct ffio_sink {
    int (*begin)(ffio_sink *s, int w, int h, int c, int *col0, int *col1, int *row0, int *row1,
                 char *err, size_t errlen);
    void (*row)(ffio_sink *s, int y, const uint8_t *row, int first_col);
};

/* Decoders: 0, or -1 with a reason in err. The sink keeps whatever it allocated (the caller
 * frees it). src_w/src_h receive the declared size. */
int ffio_png_run(const ffio_source *src, const ffio_image_limits *lim, ffio_sink *sink, int *src_w,
                 int *src_h, char *err, size_t errlen);
int ffio_jpeg_run(const ffio_source *src, int min_short, const ffio_image_limits *lim, ffio_sink *sink,
                  int *src_w, int *src_h, char *err, size_t errlen);

/* The limit on declared pixels (the default when lim is NULL or its field 0). */
uint64_t ffio_max_pixels(const ffio_image_limits *lim);
/* The standard sentence for an image over the pixel limit. */
void ffio_pixel_limit_error(char *err, size_t errlen, const char *kind, uint64_t w, uint64_t h,
                            uint64_t limit);
#endif
