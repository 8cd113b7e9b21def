/* image.c -- format sniffing, bounded file reading, and the two sinks: a whole RGB image
 * (ffio_image_decode/load) and the prep pipeline (decode, resize the shorter side, center
 * crop) that resizes rows as they are decoded. */
#include "ffio_internal.h"
#include "image_internal.h"
#include "rowresize.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

uint64_t ffio_max_pixels(const ffio_image_limits *lim) {
    return lim && lim->max_pixels > 0 ? lim->max_pixels : FFIO_DEFAULT_MAX_PIXELS;
}

static uint64_t max_file_bytes(const ffio_image_limits *lim) {
    return lim && lim->max_file_bytes > 0 ? lim->max_file_bytes : FFIO_DEFAULT_MAX_FILE_BYTES;
}

void ffio_pixel_limit_error(char *err, size_t errlen, const char *kind, uint64_t w, uint64_t h,
                            uint64_t limit) {
    snprintf(err, errlen, "%s declares %llux%llu = %llu pixels, more than the limit of %llu "
             "(a decompression bomb or a damaged header; raise --max-image-pixels for genuine huge images)",
             kind, (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
             (unsigned long long)limit);
}

enum { KIND_NONE, KIND_PNG, KIND_JPEG };

static int sniff(const uint8_t *b, size_t n) {
    static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    if (n >= 8 && memcmp(b, png_sig, 8) == 0) return KIND_PNG;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return KIND_JPEG;
    return KIND_NONE;
}

/* Decides by content (some datasets ship PNGs named .JPEG) and runs the decoder. */
static int run(const ffio_source *src, const uint8_t *head, size_t nhead, int min_short,
               const ffio_image_limits *lim, ffio_sink *sink, int *sw, int *sh, char *err, size_t errlen) {
    *sw = *sh = 0;
    if (nhead == 0) { snprintf(err, errlen, "empty file"); return -1; }
    switch (sniff(head, nhead)) {
    case KIND_PNG: return ffio_png_run(src, lim, sink, sw, sh, err, errlen);
    case KIND_JPEG: return ffio_jpeg_run(src, min_short, lim, sink, sw, sh, err, errlen);
    default: snprintf(err, errlen, "not a PNG or JPEG file (unrecognised signature)"); return -1;
    }
}

/* Opens a regular file no larger than the cap, positioned at its start; fills head. */
static FILE *open_capped(const char *path, const ffio_image_limits *lim, uint8_t head[8], size_t *nhead,
                         char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open: %s", strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        fclose(f);
        return NULL;
    }
    uint64_t cap = max_file_bytes(lim);
    if ((uint64_t)st.st_size > cap) {
        snprintf(err, errlen, "file of %llu bytes is larger than the %llu-byte limit for one image",
                 (unsigned long long)st.st_size, (unsigned long long)cap);
        fclose(f);
        return NULL;
    }
    *nhead = fread(head, 1, 8, f);
    if (ferror(f) || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "read error: %s", strerror(errno));
        fclose(f);
        return NULL;
    }
    return f;
}

/* ---- sink: the whole image as RGB ---- */
typedef struct {
    ffio_sink base;
    uint8_t *pixels;
    int w, h, c;
} full_sink;

static int full_begin(ffio_sink *s, int w, int h, int c, int *col0, int *col1, int *row0, int *row1,
                      char *err, size_t errlen) {
    full_sink *f = (full_sink *)s;
    (void)col0; (void)col1; (void)row0; (void)row1;
    f->w = w;
    f->h = h;
    f->c = c;
    f->pixels = malloc((size_t)w * h * 3 > 0 ? (size_t)w * h * 3 : 1);
    if (!f->pixels) { snprintf(err, errlen, "out of memory for a %dx%d image", w, h); return -1; }
    return 0;
}

static void full_row(ffio_sink *s, int y, const uint8_t *row, int first_col) {
    full_sink *f = (full_sink *)s;
    uint8_t *d = f->pixels + (size_t)y * f->w * 3;
    const uint8_t *p = row;
    (void)first_col; /* the full sink asks for every column */
    if (f->c == 3) {
        memcpy(d, p, (size_t)f->w * 3);
    } else {
        for (int x = 0; x < f->w; x++) d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = p[x];
    }
}

static int decode_full(const ffio_source *src, const uint8_t *head, size_t nhead, int min_short,
                       const ffio_image_limits *lim, ffio_image *out, char *err, size_t errlen) {
    full_sink s = { { full_begin, full_row }, NULL, 0, 0, 0 };
    memset(out, 0, sizeof *out);
    int sw, sh;
    if (run(src, head, nhead, min_short, lim, &s.base, &sw, &sh, err, errlen) < 0) {
        free(s.pixels);
        return -1;
    }
    out->pixels = s.pixels;
    out->width = s.w;
    out->height = s.h;
    out->channels = 3;
    out->src_width = sw;
    out->src_height = sh;
    return 0;
}

int ffio_image_decode(const uint8_t *data, size_t len, int min_short, const ffio_image_limits *lim,
                      ffio_image *out, char *err, size_t errlen) {
    ffio_source src = { data, len, NULL };
    return decode_full(&src, data, len, min_short, lim, out, err, errlen);
}

int ffio_image_load(const char *path, int min_short, const ffio_image_limits *lim, ffio_image *out,
                    char *err, size_t errlen) {
    uint8_t head[8];
    size_t nhead = 0;
    memset(out, 0, sizeof *out);
    FILE *f = open_capped(path, lim, head, &nhead, err, errlen);
    if (!f) return -1;
    ffio_source src = { NULL, 0, f };
    int rc = decode_full(&src, head, nhead, min_short, lim, out, err, errlen);
    fclose(f);
    return rc;
}

/* ---- sink: resize the shorter side to `size`, crop the centre, RGB ---- */
typedef struct {
    ffio_sink base;
    int size;
    uint8_t *out;
    ffio_rr rr;
    int ready;
} prep_sink;

static int prep_begin(ffio_sink *s, int w, int h, int c, int *col0, int *col1, int *row0, int *row1,
                      char *err, size_t errlen) {
    prep_sink *p = (prep_sink *)s;
    double x0, y0, rw, rh;
    ffio_center_crop_box(w, h, p->size, &x0, &y0, &rw, &rh);
    if (ffio_rr_init(&p->rr, w, h, c, x0, y0, rw, rh, p->out, p->size, p->size, 3, 0) < 0) {
        snprintf(err, errlen, "cannot resize %dx%d to %d (out of memory)", w, h, p->size);
        return -1;
    }
    p->ready = 1;
    *col0 = p->rr.col0;
    *col1 = p->rr.col1;
    *row0 = p->rr.row0;
    *row1 = p->rr.row1;
    return 0;
}

static void prep_row(ffio_sink *s, int y, const uint8_t *row, int first_col) {
    prep_sink *p = (prep_sink *)s;
    ffio_rr_push(&p->rr, y, row, first_col);
}

static int prepare(const ffio_source *src, const uint8_t *head, size_t nhead, int size,
                   const ffio_image_limits *lim, uint8_t *out, int *src_w, int *src_h, char *err, size_t errlen) {
    if (size < 1) { snprintf(err, errlen, "invalid output size %d", size); return -1; }
    prep_sink s;
    memset(&s, 0, sizeof s);
    s.base.begin = prep_begin;
    s.base.row = prep_row;
    s.size = size;
    s.out = out;
    int sw, sh;
    int rc = run(src, head, nhead, size, lim, &s.base, &sw, &sh, err, errlen);
    if (rc == 0 && !ffio_rr_done(&s.rr)) {
        snprintf(err, errlen, "decoder delivered too few rows");
        rc = -1;
    }
    if (s.ready) ffio_rr_free(&s.rr);
    if (src_w) *src_w = sw;
    if (src_h) *src_h = sh;
    return rc;
}

int ffio_image_prepare(const char *path, int size, const ffio_image_limits *lim, uint8_t *out, int *src_w,
                       int *src_h, char *err, size_t errlen) {
    uint8_t head[8];
    size_t nhead = 0;
    FILE *f = open_capped(path, lim, head, &nhead, err, errlen);
    if (!f) return -1;
    static const size_t bufsize = 1 << 16;
    char *buf = malloc(bufsize);
    if (buf) setvbuf(f, buf, _IOFBF, bufsize);
    ffio_source src = { NULL, 0, f };
    int rc = prepare(&src, head, nhead, size, lim, out, src_w, src_h, err, errlen);
    fclose(f);
    free(buf);
    return rc;
}

int ffio_image_prepare_mem(const uint8_t *data, size_t len, int size, const ffio_image_limits *lim,
                           uint8_t *out, int *src_w, int *src_h, char *err, size_t errlen) {
    ffio_source src = { data, len, NULL };
    return prepare(&src, data, len, size, lim, out, src_w, src_h, err, errlen);
}
