/* ffio_internal.h -- helpers shared by the FFIO sources (not part of the public API). */
#ifndef FFIO_INTERNAL_H
#define FFIO_INTERNAL_H
#include "include/ffio.h"
#include <stddef.h>

/* Thread-local error text behind ffio_last_error(). */
void ffio_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ffio_clear_error(void);
/* Bytes per element of an FFIO_* numeric type, 0 for others. */
size_t ffio_dtype_size(int dtype);
#endif
