#define _GNU_SOURCE /* sync_file_range */
#include <fcntl.h>
#include "ffio_internal.h"
#include <errno.h>
#include <hdf5.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ffio_version(void) { return "ffio (hdf5 " H5_VERS_INFO ", libpng " PNG_LIBPNG_VER_STRING ")"; }

static __thread char last_error[1024];

const char *ffio_last_error(void) { return last_error; }

void ffio_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

void ffio_clear_error(void) { last_error[0] = 0; }

void ffio_free(void *p) { free(p); }

size_t ffio_dtype_size(int dtype) {
    switch (dtype) {
    case FFIO_U8: return 1;
    case FFIO_I32: case FFIO_F32: return 4;
    case FFIO_I64: case FFIO_U64: case FFIO_F64: return 8;
    default: return 0;
    }
}

int ffio_start_writeback(int fd) {
#if defined(__linux__)
    return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
    return 0;
#endif
}
