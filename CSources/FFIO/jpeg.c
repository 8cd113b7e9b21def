/* jpeg.c -- JPEG decoding (with DCT-domain downscaling) and encoding via libjpeg-turbo.
 * libjpeg reports fatal errors through error_exit, which must not return: we longjmp back
 * and turn it into an error string. A truncated file is only a warning to libjpeg (it pads
 * the image with gray), so that warning is promoted to an error too. */
#include "ffio_internal.h"
#include "image_internal.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char *err;
    size_t errlen;
} jpeg_err;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, msg);
    if (e->err[0] == 0) snprintf(e->err, e->errlen, "JPEG: %s", msg);
    longjmp(e->jump, 1);
}

static void jpeg_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_err *e = (jpeg_err *)cinfo->err;
        snprintf(e->err, e->errlen, "JPEG: premature end of data (truncated file)");
        longjmp(e->jump, 1);
    }
    /* Other warnings (extraneous bytes before a marker, ...) leave usable pixels. */
}

/* Adobe CMYK/YCCK JPEGs store inverted ink values; without the Adobe marker the values
 * are taken as plain CMYK. */
static void cmyk_to_rgb(const uint8_t *src, uint8_t *dst, int n, int inverted) {
    for (int i = 0; i < n; i++) {
        int c = src[4 * i], m = src[4 * i + 1], y = src[4 * i + 2], k = src[4 * i + 3];
        if (!inverted) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
        dst[3 * i] = (uint8_t)((c * k + 127) / 255);
        dst[3 * i + 1] = (uint8_t)((m * k + 127) / 255);
        dst[3 * i + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

int ffio_jpeg_decode(const uint8_t *data, size_t len, int min_short, ffio_image *out, char *err,
                     size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    jpeg_err e;
    err[0] = 0;
    memset(out, 0, sizeof *out);
    cinfo.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_fail;
    e.mgr.emit_message = jpeg_message;
    e.err = err;
    e.errlen = errlen;
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile row4 = NULL;
    if (setjmp(e.jump)) {
        free(pixels);
        free(row4);
        jpeg_destroy_decompress(&cinfo);
        if (!err[0]) snprintf(err, errlen, "JPEG: decoding failed");
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    int sw = (int)cinfo.image_width, sh = (int)cinfo.image_height;
    int shorter = sw < sh ? sw : sh;
    int denom = 1;
    if (min_short > 0)
        while (denom < 8 && shorter >= 2 * denom * min_short) denom *= 2;
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned)denom;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    pixels = malloc((size_t)w * h * 3);
    if (cmyk) row4 = malloc((size_t)w * 4);
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = pixels + (size_t)cinfo.output_scanline * w * 3;
        JSAMPROW row = cmyk ? row4 : dst;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (cmyk) cmyk_to_rgb(row4, dst, w, cinfo.saw_Adobe_marker);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row4);
    out->pixels = pixels;
    out->width = w;
    out->height = h;
    out->channels = 3;
    out->src_width = sw;
    out->src_height = sh;
    return 0;
}

int ffio_jpeg_write(const char *path, const uint8_t *pixels, int width, int height,
                    int channels, int quality) {
    if (channels != 1 && channels != 3) { ffio_set_error("JPEG needs 1 or 3 channels"); return -1; }
    FILE *f = fopen(path, "wb");
    if (!f) { ffio_set_error("cannot create %s", path); return -1; }
    struct jpeg_compress_struct cinfo;
    jpeg_err e;
    char err[256] = "";
    cinfo.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_fail;
    e.err = err;
    e.errlen = sizeof err;
    if (setjmp(e.jump)) {
        jpeg_destroy_compress(&cinfo);
        fclose(f);
        ffio_set_error("cannot write JPEG %s: %s", path, err);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * channels);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    if (fclose(f) != 0) { ffio_set_error("cannot write %s", path); return -1; }
    return 0;
}
