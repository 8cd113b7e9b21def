/* jpeg.c -- JPEG decoding (DCT-domain downscaling, column cropping and row skipping, rows
 * streamed to a sink) and encoding, via libjpeg-turbo.
 *
 * Bad files must not become images: libjpeg reports fatal errors through error_exit (we
 * longjmp back and turn it into an error string), but it only *warns* about truncated or
 * corrupt data and pads the image with gray, so every warning is an error here. Beyond
 * that, a truncated progressive file that ends in a proper EOI marker raises no warning at
 * all; it is caught by checking that every DCT coefficient was fully sent. Declared sizes
 * are checked against the pixel limit before anything is allocated, memory is capped, and a
 * file with an absurd number of scans (a CPU bomb) is refused. */
#include "ffio_internal.h"
#include "image_internal.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

/* libjpeg-turbo's own fuzzers refuse more scans than this; real encoders use about 10. */
#define MAX_SCANS 500

typedef struct {
    struct jpeg_error_mgr mgr;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char *err;
    size_t errlen;
    unsigned seen; /* bit per component that appeared in a scan (sequential multi-scan files) */
} jpeg_ctx;

static void jpeg_fail(j_common_ptr cinfo) {
    jpeg_ctx *e = (jpeg_ctx *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, msg);
    if (e->err[0] == 0) snprintf(e->err, e->errlen, "JPEG: %s", msg);
    longjmp(e->jump, 1);
}

/* level < 0: a warning (corrupt or truncated data); >= 0: trace messages, ignored. */
static void jpeg_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    jpeg_ctx *e = (jpeg_ctx *)cinfo->err;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(e->err, e->errlen, "JPEG: premature end of data (truncated file)");
    } else {
        char msg[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, msg);
        snprintf(e->err, e->errlen, "JPEG: %s (the file is damaged)", msg);
    }
    longjmp(e->jump, 1);
}

/* Called while a multi-scan file is read: counts scans and notes the components of each. */
static void jpeg_monitor(j_common_ptr common) {
    j_decompress_ptr cinfo = (j_decompress_ptr)common;
    jpeg_ctx *e = (jpeg_ctx *)cinfo->err;
    if (cinfo->input_scan_number > MAX_SCANS) {
        snprintf(e->err, e->errlen, "JPEG: more than %d scans (a damaged or hostile file)", MAX_SCANS);
        longjmp(e->jump, 1);
    }
    for (int i = 0; i < cinfo->comps_in_scan && i < MAX_COMPS_IN_SCAN; i++)
        if (cinfo->cur_comp_info[i]) e->seen |= 1u << (cinfo->cur_comp_info[i]->component_index & 31);
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

/* Every scan the header promised arrived: for progressive files every coefficient of every
 * component reached full precision, for sequential multi-scan files every component had a
 * scan. Missing ones mean the file was cut (an EOI marker then raises no warning). */
static int scans_complete(j_decompress_ptr cinfo, jpeg_ctx *e) {
    if (cinfo->progressive_mode) {
        if (!cinfo->coef_bits) return 1;
        for (int c = 0; c < cinfo->num_components; c++)
            for (int k = 0; k < DCTSIZE2; k++)
                if (cinfo->coef_bits[c][k] != 0) {
                    snprintf(e->err, e->errlen, "JPEG: progressive data incomplete (coefficient %d of "
                             "component %d %s; truncated file)", k, c,
                             cinfo->coef_bits[c][k] < 0 ? "never sent" : "not fully refined");
                    return 0;
                }
        return 1;
    }
    if (jpeg_has_multiple_scans(cinfo)) {
        unsigned all = cinfo->num_components >= 32 ? ~0u : (1u << cinfo->num_components) - 1;
        if ((e->seen & all) != all) {
            snprintf(e->err, e->errlen, "JPEG: a component has no scan (truncated file)");
            return 0;
        }
    }
    return 1;
}

int ffio_jpeg_run(const ffio_source *src, int min_short, const ffio_image_limits *lim, ffio_sink *sink,
                  int *src_w, int *src_h, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    jpeg_ctx e;
    memset(&e, 0, sizeof e);
    err[0] = 0;
    cinfo.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_fail;
    e.mgr.emit_message = jpeg_message;
    e.err = err;
    e.errlen = errlen;
    uint8_t *volatile row = NULL;
    if (setjmp(e.jump)) {
        free(row);
        jpeg_destroy_decompress(&cinfo);
        if (!err[0]) snprintf(err, errlen, "JPEG: decoding failed");
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    e.progress.progress_monitor = jpeg_monitor;
    cinfo.progress = &e.progress;
    if (src->file) jpeg_stdio_src(&cinfo, src->file);
    else jpeg_mem_src(&cinfo, src->data, (unsigned long)src->len);
    jpeg_read_header(&cinfo, TRUE);
    uint64_t sw = cinfo.image_width, sh = cinfo.image_height, limit = ffio_max_pixels(lim);
    *src_w = (int)sw;
    *src_h = (int)sh;
    if (sw * sh > limit) {
        ffio_pixel_limit_error(err, errlen, "JPEG", sw, sh, limit);
        longjmp(e.jump, 1);
    }
    /* Progressive files keep every coefficient in memory: about 2 bytes per sample. */
    cinfo.mem->max_memory_to_use = (long)(64u << 20) + (long)(8 * (limit < (1ull << 40) ? limit : (1ull << 40)));
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    int gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
    cinfo.out_color_space = cmyk ? JCS_CMYK : gray ? JCS_GRAYSCALE : JCS_RGB;
    int c = gray ? 1 : 3;
    /* DCT scaling 1/2, 1/4, 1/8 while the shorter side stays >= min_short (PIL's draft()
     * picks the same factor). */
    uint64_t shorter = sw < sh ? sw : sh;
    unsigned denom = 1;
    if (min_short > 0)
        while (denom < 8 && shorter >= 2ull * denom * (uint64_t)min_short) denom *= 2;
    cinfo.scale_num = 1;
    cinfo.scale_denom = denom;
    jpeg_calc_output_dimensions(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    int col0 = 0, col1 = w, row0 = 0, row1 = h;
    if (sink->begin(sink, w, h, c, &col0, &col1, &row0, &row1, err, errlen) < 0) longjmp(e.jump, 1);
    jpeg_start_decompress(&cinfo);
    if (!scans_complete(&cinfo, &e)) longjmp(e.jump, 1);
    JDIMENSION first = 0, width = (JDIMENSION)w;
#ifdef LIBJPEG_TURBO_VERSION
    /* Decode only the needed columns. One extra column on the left and two on the right
     * keep the chroma upsampling at the edges identical to a full decode. */
    if (col0 > 1 || col1 + 2 < w) {
        first = (JDIMENSION)(col0 > 1 ? col0 - 1 : 0);
        width = (JDIMENSION)((col1 + 2 < w ? col1 + 2 : w) - (int)first);
        jpeg_crop_scanline(&cinfo, &first, &width);
    }
    if (row0 > 0) jpeg_skip_scanlines(&cinfo, (JDIMENSION)row0);
#endif
    row = malloc((size_t)width * (cmyk ? 4 : c) + (cmyk ? (size_t)width * 3 : 0));
    if (!row) {
        snprintf(err, errlen, "JPEG: out of memory");
        longjmp(e.jump, 1);
    }
    while ((int)cinfo.output_scanline < row1) {
        int y = (int)cinfo.output_scanline;
        JSAMPROW r = row;
        if (jpeg_read_scanlines(&cinfo, &r, 1) != 1) {
            snprintf(err, errlen, "JPEG: decoding stopped at row %d", y);
            longjmp(e.jump, 1);
        }
        if (y < row0) continue;
        if (cmyk) {
            cmyk_to_rgb(row, row + (size_t)width * 4, (int)width, cinfo.saw_Adobe_marker);
            sink->row(sink, y, row + (size_t)width * 4, (int)first);
        } else {
            sink->row(sink, y, row, (int)first);
        }
    }
    /* The rest is still entropy-decoded (to find corrupt data), just not converted. */
#ifdef LIBJPEG_TURBO_VERSION
    if (cinfo.output_scanline < cinfo.output_height)
        jpeg_skip_scanlines(&cinfo, cinfo.output_height - cinfo.output_scanline);
#else
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW r = row;
        jpeg_read_scanlines(&cinfo, &r, 1);
    }
#endif
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return 0;
}

int ffio_jpeg_write(const char *path, const uint8_t *pixels, int width, int height,
                    int channels, int quality) {
    return ffio_jpeg_write_ex(path, pixels, width, height, channels, quality, 0, 2);
}

int ffio_jpeg_write_ex(const char *path, const uint8_t *pixels, int width, int height, int channels,
                       int quality, int progressive, int subsampling) {
    if (channels != 1 && channels != 3) { ffio_set_error("JPEG needs 1 or 3 channels"); return -1; }
    if (subsampling < 0 || subsampling > 2) { ffio_set_error("JPEG subsampling must be 0, 1 or 2"); return -1; }
    FILE *f = fopen(path, "wb");
    if (!f) { ffio_set_error("cannot create %s", path); return -1; }
    struct jpeg_compress_struct cinfo;
    jpeg_ctx e;
    memset(&e, 0, sizeof e);
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
    if (channels == 3) {
        /* 0: 4:4:4, 1: 4:2:2, 2: 4:2:0 (as PIL's `subsampling`). */
        cinfo.comp_info[0].h_samp_factor = subsampling >= 1 ? 2 : 1;
        cinfo.comp_info[0].v_samp_factor = subsampling == 2 ? 2 : 1;
    }
    if (progressive) jpeg_simple_progression(&cinfo);
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
