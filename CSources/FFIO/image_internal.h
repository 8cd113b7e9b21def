/* image_internal.h -- decoders behind ffio_image_decode. */
#ifndef FFIO_IMAGE_INTERNAL_H
#define FFIO_IMAGE_INTERNAL_H
#include "include/ffio.h"
int ffio_png_decode(const uint8_t *data, size_t len, ffio_image *out, char *err, size_t errlen);
int ffio_jpeg_decode(const uint8_t *data, size_t len, int min_short, ffio_image *out, char *err,
                     size_t errlen);
#endif
