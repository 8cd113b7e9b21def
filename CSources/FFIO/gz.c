/* gz.c -- whole-file reading that decompresses gzip transparently (zlib's gzread passes
 * other files through unchanged and handles multi-member archives), and gzip writing. */
#include "ffio_internal.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int ffio_read_file(const char *path, uint64_t max_bytes, uint8_t **data, size_t *len) {
    *data = NULL;
    *len = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) { ffio_set_error("cannot open: %s", strerror(errno)); return -1; }
    gzbuffer(g, 1 << 17);
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) { gzclose(g); ffio_set_error("out of memory"); return -1; }
    for (;;) {
        if (n > max_bytes) {
            ffio_set_error("holds more than %llu bytes (decompressed), more than any file of this kind; "
                           "it is not the expected file (or a decompression bomb)", (unsigned long long)max_bytes);
            gzclose(g);
            free(buf);
            return -1;
        }
        if (cap - n < (1 << 16)) {
            uint8_t *grown = realloc(buf, cap * 2);
            if (!grown) { gzclose(g); free(buf); ffio_set_error("out of memory"); return -1; }
            buf = grown;
            cap *= 2;
        }
        unsigned want = (unsigned)((cap - n) > (1u << 30) ? (1u << 30) : (cap - n));
        int got = gzread(g, buf + n, want);
        if (got < 0) {
            int code;
            const char *msg = gzerror(g, &code);
            ffio_set_error("cannot decompress: %s", msg);
            gzclose(g);
            free(buf);
            return -1;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    /* gzread stops quietly at a truncated member; gzclose_r reports it. */
    int code;
    const char *msg = gzerror(g, &code);
    if (code != Z_OK && code != Z_BUF_ERROR) {
        ffio_set_error("cannot decompress: %s", msg);
        gzclose(g);
        free(buf);
        return -1;
    }
    int truncated = code == Z_BUF_ERROR;
    gzclose(g);
    if (truncated) {
        ffio_set_error("compressed file is truncated");
        free(buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

int ffio_gzip_write(const char *path, const uint8_t *data, size_t len) {
    gzFile g = gzopen(path, "wb6");
    if (!g) { ffio_set_error("cannot create: %s", strerror(errno)); return -1; }
    while (len > 0) {
        unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        if (gzwrite(g, data, chunk) != (int)chunk) {
            int code;
            ffio_set_error("cannot compress: %s", gzerror(g, &code));
            gzclose(g);
            return -1;
        }
        data += chunk;
        len -= chunk;
    }
    if (gzclose(g) != Z_OK) { ffio_set_error("cannot finish the gzip file"); return -1; }
    return 0;
}
