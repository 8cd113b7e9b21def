/* ffio.h -- file formats for ffrepro: HDF5 datasets/attributes, PNG/JPEG decoding and
 * encoding, gzip, SHA-256, and image resize/crop/flip/normalize on uint8 pixels.
 *
 * Conventions:
 *  - Functions returning int give 0 on success and -1 on failure; functions returning a
 *    handle give a negative value on failure. After a failure ffio_last_error() holds a
 *    one-line reason for the calling thread (HDF5's innermost message included).
 *  - Images are interleaved uint8 HWC ("NHWC" for batches); float outputs are CHW.
 *  - HDF5 calls are serialised by one process-wide lock, so handles may be used from any
 *    thread (the library on other platforms may not be built thread-safe).
 *  - Memory returned to the caller (strings, pixel buffers) is freed with ffio_free. */
#ifndef FFIO_H
#define FFIO_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

const char *ffio_version(void);
/* Reason for the last failure on this thread ("" if none). */
const char *ffio_last_error(void);
void ffio_free(void *p);

/* ---------------------------------------------------------------------------------------
 * HDF5. Object names are paths relative to the root ("images", "params/l1.conv.weight");
 * "/" or "" is the root group. Groups, datasets and files are created with object time
 * tracking disabled, so the same writes in the same order give byte-identical files.
 * ------------------------------------------------------------------------------------ */
enum { FFIO_U8 = 1, FFIO_I32 = 2, FFIO_I64 = 3, FFIO_U64 = 4, FFIO_F32 = 5, FFIO_F64 = 6,
       FFIO_STRING = 7, FFIO_OTHER = 8 };
#define FFIO_MAX_RANK 16

/* Creates (truncating) or opens a file. Returns a file handle or -1. */
int64_t ffio_h5_create(const char *path);
/* The same with a user block of `userblock` bytes (0, or a power of two >= 512) before the
 * HDF5 data, which HDF5 leaves alone (checkpoints keep their integrity record there). */
int64_t ffio_h5_create_ex(const char *path, int64_t userblock);
int64_t ffio_h5_open(const char *path, int writable);
int ffio_h5_close(int64_t file);
int ffio_h5_flush(int64_t file);
/* 1 if `path` starts with the HDF5 signature, 0 if not, -1 if it cannot be read. */
int ffio_h5_is_hdf5(const char *path);

/* 1 if the link exists (every component), 0 if not. */
int ffio_h5_exists(int64_t file, const char *name);
/* Newline-separated paths of all datasets below the root, depth first in name order.
 * Returned string is freed with ffio_free; NULL on failure. */
char *ffio_h5_list_datasets(int64_t file);

/* Datasets. rank 0 means a scalar. chunk may be NULL (contiguous layout). Missing parent
 * groups are created. Returns a dataset handle or -1. */
int64_t ffio_h5_dset_create(int64_t file, const char *name, int dtype, int rank,
                            const int64_t *dims, const int64_t *chunk);
int64_t ffio_h5_dset_open(int64_t file, const char *name);
int ffio_h5_dset_close(int64_t dset);
/* Element type (FFIO_*), rank and dims (dims has room for FFIO_MAX_RANK entries). */
int ffio_h5_dset_info(int64_t dset, int *dtype, int *rank, int64_t *dims);
/* Byte offset of a contiguous dataset's data in the file (user block included), or -1 if
 * it has no single contiguous extent (chunked, or no data written). */
int64_t ffio_h5_dset_offset(int64_t dset);
/* Writes rows [row, row + nrows) of a uint8 dataset (every other axis whole) from `data`.
 * Runs of whole chunks of an unfiltered chunked dataset are written directly
 * (H5Dwrite_chunk), anything else as a hyperslab; the file bytes are the same. */
int ffio_h5_dset_write_rows(int64_t dset, int64_t row, int64_t nrows, const void *data);
/* New dimensions of a chunked dataset (rank entries; shrinking drops data beyond them). */
int ffio_h5_dset_set_extent(int64_t dset, int rank, const int64_t *dims);
/* Hyperslab I/O of a contiguous block: start/count have `rank` entries; both NULL means
 * the whole dataset. `dtype` is the memory type; HDF5 converts between numeric types. */
int ffio_h5_dset_write(int64_t dset, int dtype, const int64_t *start, const int64_t *count,
                       const void *data);
int ffio_h5_dset_read(int64_t dset, int dtype, const int64_t *start, const int64_t *count,
                      void *data);
/* Reads rows idx[0..n) (indices along axis 0, any order, repeats allowed) of a dataset into
 * consecutive rows of `data`. Consecutive indices are read as one block. */
int ffio_h5_dset_read_rows(int64_t dset, int dtype, const int64_t *idx, int64_t n, void *data);

/* Attributes on the object `obj` ("/" for the root). Writing replaces an attribute of the
 * same name; a numeric attribute with the same type and length is overwritten in place, so
 * rewriting it does not move anything in the file. Strings are variable-length UTF-8. */
int ffio_h5_attr_write_string(int64_t file, const char *obj, const char *name, const char *value);
/* rank 0 = scalar (n must be 1), rank 1 = vector of n. */
int ffio_h5_attr_write(int64_t file, const char *obj, const char *name, int dtype, int rank,
                       int64_t n, const void *values);
/* 1 exists, 0 not, -1 error. */
int ffio_h5_attr_exists(int64_t file, const char *obj, const char *name);
/* Type class (FFIO_*) and element count of an attribute, or -1. */
int ffio_h5_attr_info(int64_t file, const char *obj, const char *name, int *dtype, int64_t *n);
/* String attribute (variable or fixed length), freed with ffio_free; NULL on failure. */
char *ffio_h5_attr_read_string(int64_t file, const char *obj, const char *name);
/* Numeric attribute converted to `dtype`; n must equal the attribute's element count. */
int ffio_h5_attr_read(int64_t file, const char *obj, const char *name, int dtype, int64_t n,
                      void *values);
/* Newline-separated attribute names of `obj` in name order; freed with ffio_free. */
char *ffio_h5_attr_names(int64_t file, const char *obj);

/* ---------------------------------------------------------------------------------------
 * Images: decoding and encoding.
 * ------------------------------------------------------------------------------------ */
typedef struct {
    uint8_t *pixels; /* h * w * channels, freed with ffio_free */
    int width, height, channels;
    int src_width, src_height; /* size before any DCT scaling */
} ffio_image;

/* Bounds on one image (0 = default). Declared sizes are checked before any pixel memory is
 * allocated; the default pixel limit is PIL's MAX_IMAGE_PIXELS (2^30 / 4 / 3). */
#define FFIO_DEFAULT_MAX_PIXELS 89478485ull
#define FFIO_DEFAULT_MAX_FILE_BYTES (1ull << 30)
typedef struct {
    uint64_t max_pixels;     /* declared width * height */
    uint64_t max_file_bytes; /* size of the file on disk */
} ffio_image_limits;

/* Decodes a PNG or JPEG (told apart by signature, not by name) to 8-bit RGB. Grayscale and
 * palette images become RGB, 16-bit samples are scaled to 8 bits, alpha is dropped, CMYK
 * JPEGs are converted. EXIF orientation is ignored. For JPEGs whose shorter side is at
 * least 2 * min_short, libjpeg's DCT scaling (1/2, 1/4, 1/8) decodes a smaller image whose
 * shorter side stays >= min_short (0 disables). A truncated or corrupt file is an error:
 * every libjpeg warning counts, and so does a progressive JPEG whose scans stop early.
 * `lim` may be NULL (defaults). Returns 0, or -1 with a reason in `err`. */
int ffio_image_decode(const uint8_t *data, size_t len, int min_short, const ffio_image_limits *lim,
                      ffio_image *out, char *err, size_t errlen);
/* The same from a file, read as a stream (never whole) after checking its size. */
int ffio_image_load(const char *path, int min_short, const ffio_image_limits *lim, ffio_image *out,
                    char *err, size_t errlen);

/* Loads an image file, resizes its shorter side to `size` (antialiased) and center-crops
 * to size x size x 3 into `out`, resizing rows as they are decoded: memory stays a few rows
 * (a whole image only for interlaced PNGs and progressive JPEGs, within the pixel limit).
 * JPEGs are DCT-scaled as above and only the needed columns are decoded. src_w/src_h (may
 * be NULL) receive the declared size. The output equals decode + ffio_resize_center_crop. */
int ffio_image_prepare(const char *path, int size, const ffio_image_limits *lim, uint8_t *out, int *src_w,
                       int *src_h, char *err, size_t errlen);
int ffio_image_prepare_mem(const uint8_t *data, size_t len, int size, const ffio_image_limits *lim,
                           uint8_t *out, int *src_w, int *src_h, char *err, size_t errlen);

/* PNG encoding (test fixtures, exports). color_type: 0 gray, 2 RGB, 3 palette, 4 gray+alpha,
 * 6 RGBA. bit_depth 8 or 16 (16: samples are big-endian uint16 pairs in `pixels`); palette
 * has n_palette RGB triples for color_type 3. */
int ffio_png_write(const char *path, const uint8_t *pixels, int width, int height,
                   int color_type, int bit_depth, const uint8_t *palette, int n_palette);
/* The same, Adam7-interlaced if `interlaced`. */
int ffio_png_write_ex(const char *path, const uint8_t *pixels, int width, int height, int color_type,
                      int bit_depth, const uint8_t *palette, int n_palette, int interlaced);
/* Baseline JPEG (4:2:0), channels 1 or 3. */
int ffio_jpeg_write(const char *path, const uint8_t *pixels, int width, int height,
                    int channels, int quality);
/* subsampling 0 (4:4:4), 1 (4:2:2), 2 (4:2:0); progressive uses libjpeg's standard script. */
int ffio_jpeg_write_ex(const char *path, const uint8_t *pixels, int width, int height, int channels,
                       int quality, int progressive, int subsampling);

/* ---------------------------------------------------------------------------------------
 * Files: gzip-transparent reading, gzip writing, SHA-256.
 * ------------------------------------------------------------------------------------ */
/* Reads a whole file; gzip files (one or more members) are decompressed, other files are
 * returned as they are. More than max_bytes (after decompression) is an error, so a gzip
 * bomb cannot fill memory. *data is freed with ffio_free. */
int ffio_read_file(const char *path, uint64_t max_bytes, uint8_t **data, size_t *len);
int ffio_gzip_write(const char *path, const uint8_t *data, size_t len);
/* Starts writing a file's dirty pages to disk without waiting (Linux sync_file_range;
 * elsewhere nothing), so a later fsync has little left to do. */
int ffio_start_writeback(int fd);

typedef struct {
    uint32_t state[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t fill;
} ffio_sha256_ctx;
void ffio_sha256_init(ffio_sha256_ctx *c);
void ffio_sha256_update(ffio_sha256_ctx *c, const void *data, size_t len);
void ffio_sha256_final(ffio_sha256_ctx *c, uint8_t digest[32]);
/* Hex digest of a file's bytes into hex[65]. Uses the x86 SHA extensions when present
 * (FFREPRO_NO_SHANI=1 forces the portable code). */
int ffio_sha256_file(const char *path, char hex[65]);
/* The same over bytes [offset, offset + length) (length -1: to the end of the file). */
int ffio_sha256_file_range(const char *path, int64_t offset, int64_t length, char hex[65]);

/* ---------------------------------------------------------------------------------------
 * Pixel kernels.
 * ------------------------------------------------------------------------------------ */
/* Antialiased resample (triangle filter widened by the downscale factor, like an area
 * filter for large factors) of the source rectangle (x0, y0, rw, rh), in source pixel
 * units, to dw x dh. Source pixels outside the image are excluded (edge weights are
 * renormalised). If flip, the output is mirrored horizontally. Vertical pass first, float
 * in between, rounded once. Returns 0, or -1 (invalid size, out of memory). */
int ffio_resample(const uint8_t *src, int sw, int sh, int c, double x0, double y0, double rw,
                  double rh, uint8_t *dst, int dw, int dh, int flip);
/* Resize the shorter side to `size` (longer side rounded) and center-crop size x size. */
int ffio_resize_center_crop(const uint8_t *src, int sw, int sh, int c, int size, uint8_t *dst);

/* One HWC uint8 image -> CHW float: out = pixel * scale[ch] + bias[ch], where the output
 * window starts at (top, left) in the source and may lie partly outside it (outside
 * pixels read as 0: zero padding). If flip, the window is mirrored horizontally. */
void ffio_crop_normalize(const uint8_t *src, int h, int w, int c, int top, int left, int oh,
                         int ow, int flip, const float *scale, const float *bias, float *dst);
/* Resample a rectangle to oh x ow (uint8, via ffio_resample) then normalize like above;
 * 0 or -1 as ffio_resample. */
int ffio_resample_normalize(const uint8_t *src, int h, int w, int c, double x0, double y0,
                             double rw, double rh, int oh, int ow, int flip,
                             const float *scale, const float *bias, float *dst);
/* Per-channel sum and sum of squares over n pixels of an HWC image block (exact). */
void ffio_channel_sums(const uint8_t *src, int64_t pixels, int c, uint64_t *sum, uint64_t *sumsq);

/* Colour augmentation on one float CHW image with values in [0, 1] (color.c), with
 * torchvision's tensor semantics. order: a permutation of {0 brightness, 1 contrast,
 * 2 saturation, 3 hue}; factors: brightness, contrast, saturation (1 = identity) and the
 * hue shift in turns (0 = identity). Saturation and hue leave 1-channel images unchanged. */
void ffio_color_jitter(float *x, int c, int h, int w, const int order[4], const float factors[4]);
/* RGB -> luma (0.2989, 0.587, 0.114) written to all three channels; 1 channel: unchanged. */
void ffio_grayscale(float *x, int c, int h, int w);
/* x[ch] = x[ch] * scale[ch] + bias[ch] over each channel plane of a CHW image. */
void ffio_affine_channels(float *x, int c, int h, int w, const float *scale, const float *bias);
/* x /= sqrt(mean(x^2)) + eps over all n values (per-sample RMS scaling, no centring). */
void ffio_rms_scale(float *x, int64_t n, float eps);

#ifdef __cplusplus
}
#endif
#endif
