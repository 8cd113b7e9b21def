/* png.c -- PNG decoding to 8-bit RGB and encoding (fixtures), with libpng errors turned
 * into return codes through setjmp. */
#include "ffio_internal.h"
#include "image_internal.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t len, pos;
    char *err;
    size_t errlen;
} png_reader;

static void png_err_fn(png_structp png, png_const_charp msg) {
    png_reader *r = png_get_error_ptr(png);
    if (r && r->err && r->err[0] == 0) snprintf(r->err, r->errlen, "PNG: %s", msg);
    png_longjmp(png, 1);
}

/* Warnings (bad ancillary chunks, sRGB profile quirks) do not affect pixels. */
static void png_warn_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void png_read_fn(png_structp png, png_bytep out, size_t n) {
    png_reader *r = png_get_io_ptr(png);
    if (r->len - r->pos < n) png_error(png, "unexpected end of file (truncated)");
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

int ffio_png_decode(const uint8_t *data, size_t len, ffio_image *out, char *err, size_t errlen) {
    png_reader r = { data, len, 0, err, errlen };
    err[0] = 0;
    memset(out, 0, sizeof *out);
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
    png_set_user_limits(png, 1 << 15, 1 << 15);
    png_read_info(png, info);
    /* Expand palette, low-bit gray and tRNS to 8-bit samples (plus alpha), scale 16-bit
     * samples, then convert whatever channel count results to RGB below. */
    png_set_expand(png);
    if (png_get_bit_depth(png, info) == 16) png_set_scale_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || ch < 1 || ch > 4 || rowbytes != (size_t)w * ch)
        png_error(png, "unexpected pixel layout after conversion");
    pixels = malloc((size_t)h * w * 3 + (size_t)h * rowbytes);
    uint8_t *raw = pixels + (size_t)h * w * 3;
    rows = malloc(sizeof(png_bytep) * h);
    for (png_uint_32 y = 0; y < h; y++) rows[y] = raw + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    /* Gray (+alpha) is replicated; alpha is dropped, as PIL's convert('RGB') does. */
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = raw + i * ch;
        uint8_t *d = pixels + i * 3;
        if (ch <= 2) {
            d[0] = d[1] = d[2] = p[0];
        } else {
            d[0] = p[0];
            d[1] = p[1];
            d[2] = p[2];
        }
    }
    pixels = realloc(pixels, n * 3 > 0 ? n * 3 : 1);
    out->pixels = pixels;
    out->width = out->src_width = (int)w;
    out->height = out->src_height = (int)h;
    out->channels = 3;
    return 0;
}

int ffio_png_write(const char *path, const uint8_t *pixels, int width, int height,
                   int color_type, int bit_depth, const uint8_t *palette, int n_palette) {
    int channels = color_type == 0 ? 1 : color_type == 2 ? 3 : color_type == 3 ? 1 : color_type == 6 ? 4 : 0;
    if (channels == 0 || (bit_depth != 8 && bit_depth != 16) || (color_type == 3 && bit_depth != 8)) {
        ffio_set_error("unsupported PNG color type %d / bit depth %d", color_type, bit_depth);
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) { ffio_set_error("cannot create %s", path); return -1; }
    char err[256] = "";
    png_reader r = { NULL, 0, 0, err, sizeof err };
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
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
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
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * rowbytes));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) { ffio_set_error("cannot write %s", path); return -1; }
    return 0;
}
