/* png.c -- PNG decoding to 8-bit gray or RGB rows streamed to a sink, and encoding
 * (fixtures), with libpng errors turned into return codes through setjmp. The declared
 * size is checked against the pixel limit before any pixel memory exists; non-interlaced
 * images are decoded row by row (memory: one row), interlaced ones need the whole image. */
#include "ffio_internal.h"
#include "image_internal.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const ffio_source *src;
    size_t pos;
    char *err;
    size_t errlen;
} png_reader;

static void png_err_fn(png_structp png, png_const_charp msg) {
    png_reader *r = png_get_error_ptr(png);
    if (r && r->err && r->err[0] == 0) snprintf(r->err, r->errlen, "PNG: %s", msg);
    png_longjmp(png, 1);
}

/* Warnings (bad ancillary chunks, sRGB profile quirks, extra data after the image) do not
 * affect pixels; data that is missing or corrupt is an error in libpng. */
static void png_warn_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void png_read_fn(png_structp png, png_bytep out, size_t n) {
    png_reader *r = png_get_io_ptr(png);
    if (r->src->file) {
        if (fread(out, 1, n, r->src->file) != n)
            png_error(png, ferror(r->src->file) ? "read error" : "unexpected end of file (truncated)");
        return;
    }
    if (r->src->len - r->pos < n) png_error(png, "unexpected end of file (truncated)");
    memcpy(out, r->src->data + r->pos, n);
    r->pos += n;
}

int ffio_png_run(const ffio_source *src, const ffio_image_limits *lim, ffio_sink *sink, int *src_w,
                 int *src_h, char *err, size_t errlen) {
    png_reader r = { src, 0, err, errlen };
    err[0] = 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_err_fn, png_warn_fn);
    if (!png) { snprintf(err, errlen, "PNG: out of memory"); return -1; }
    png_infop info = png_create_info_struct(png);
    /* Volatile: modified between setjmp and a possible longjmp. */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        if (!err[0]) snprintf(err, errlen, "PNG: decoding failed");
        return -1;
    }
    png_set_read_fn(png, &r, png_read_fn);
    /* Text and profile chunks are bounded too (zlib bombs in zTXt/iCCP). */
    png_set_user_limits(png, 1u << 30, 1u << 30);
    png_set_chunk_cache_max(png, 1000);
    png_set_chunk_malloc_max(png, 8u << 20);
    png_read_info(png, info);
    uint64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    uint64_t limit = ffio_max_pixels(lim);
    *src_w = (int)w;
    *src_h = (int)h;
    if (w * h > limit) {
        ffio_pixel_limit_error(err, errlen, "PNG", w, h, limit);
        png_longjmp(png, 1);
    }
    /* Expand palette, low-bit gray and tRNS to 8-bit samples, scale 16-bit samples, drop
     * alpha (as PIL's convert('RGB') does): gray stays one channel, colour becomes RGB. */
    png_set_expand(png);
    if (png_get_bit_depth(png, info) == 16) png_set_scale_16(png);
    png_set_strip_alpha(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int c = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || (c != 1 && c != 3) || rowbytes != (size_t)w * c)
        png_error(png, "unexpected pixel layout after conversion");
    int col0 = 0, col1 = (int)w, row0 = 0, row1 = (int)h;
    if (sink->begin(sink, (int)w, (int)h, c, &col0, &col1, &row0, &row1, err, errlen) < 0) png_longjmp(png, 1);
    if (passes > 1) {
        pixels = malloc(rowbytes * h);
        rows = pixels ? malloc(sizeof(png_bytep) * h) : NULL;
        if (!rows) png_error(png, "out of memory");
        for (uint64_t y = 0; y < h; y++) rows[y] = pixels + y * rowbytes;
        png_read_image(png, rows);
        free(rows);
        rows = NULL;
        for (int y = row0; y < row1; y++) sink->row(sink, y, pixels + (size_t)y * rowbytes, 0);
    } else {
        pixels = malloc(rowbytes);
        if (!pixels) png_error(png, "out of memory");
        for (int y = 0; y < (int)h; y++) {
            png_read_row(png, pixels, NULL);
            if (y >= row0 && y < row1) sink->row(sink, y, pixels, 0);
        }
    }
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels);
    return 0;
}

int ffio_png_write(const char *path, const uint8_t *pixels, int width, int height,
                   int color_type, int bit_depth, const uint8_t *palette, int n_palette) {
    return ffio_png_write_ex(path, pixels, width, height, color_type, bit_depth, palette, n_palette, 0);
}

int ffio_png_write_ex(const char *path, const uint8_t *pixels, int width, int height, int color_type,
                      int bit_depth, const uint8_t *palette, int n_palette, int interlaced) {
    int channels = color_type == 0 ? 1 : color_type == 2 ? 3 : color_type == 3 ? 1 : color_type == 4 ? 2
                 : color_type == 6 ? 4 : 0;
    if (channels == 0 || (bit_depth != 8 && bit_depth != 16) || (color_type == 3 && bit_depth != 8)) {
        ffio_set_error("unsupported PNG color type %d / bit depth %d", color_type, bit_depth);
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) { ffio_set_error("cannot create %s", path); return -1; }
    char err[256] = "";
    ffio_source none = { NULL, 0, NULL };
    png_reader r = { &none, 0, err, sizeof err };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &r, png_err_fn, png_warn_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        fclose(f);
        ffio_set_error("cannot write PNG %s: %s", path, err[0] ? err : "out of memory");
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth, color_type,
                 interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color_type == 3) {
        png_color pal[256];
        for (int i = 0; i < n_palette && i < 256; i++) {
            pal[i].red = palette[3 * i];
            pal[i].green = palette[3 * i + 1];
            pal[i].blue = palette[3 * i + 2];
        }
        png_set_PLTE(png, info, pal, n_palette);
    }
    png_write_info(png, info);
    size_t rowbytes = (size_t)width * channels * (bit_depth / 8);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * rowbytes));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) { ffio_set_error("cannot write %s", path); return -1; }
    return 0;
}
