/* image.c -- format sniffing, file loading and the prep pipeline (decode, resize the
 * shorter side, center crop). */
#include "ffio_internal.h"
#include "image_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ffio_image_decode(const uint8_t *data, size_t len, int min_short, ffio_image *out,
                      char *err, size_t errlen) {
    static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    memset(out, 0, sizeof *out);
    if (len == 0) { snprintf(err, errlen, "empty file"); return -1; }
    /* Decide by content: some datasets ship PNGs named .JPEG. */
    if (len >= 8 && memcmp(data, png_sig, 8) == 0) return ffio_png_decode(data, len, out, err, errlen);
    if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return ffio_jpeg_decode(data, len, min_short, out, err, errlen);
    snprintf(err, errlen, "not a PNG or JPEG file (unrecognised signature)");
    return -1;
}

int ffio_image_load(const char *path, int min_short, ffio_image *out, char *err, size_t errlen) {
    unsigned char *data;
    size_t len;
    memset(out, 0, sizeof *out);
    if (ffio_slurp(path, &data, &len, err, errlen) < 0) return -1;
    int rc = ffio_image_decode(data, len, min_short, out, err, errlen);
    free(data);
    return rc;
}

int ffio_image_prepare(const char *path, int size, uint8_t *out, int *src_w, int *src_h,
                       char *err, size_t errlen) {
    ffio_image img;
    if (ffio_image_load(path, size, &img, err, errlen) < 0) return -1;
    if (src_w) *src_w = img.src_width;
    if (src_h) *src_h = img.src_height;
    ffio_resize_center_crop(img.pixels, img.width, img.height, img.channels, size, out);
    free(img.pixels);
    return 0;
}
