/*
 * ffcore.h -- FFCore, the numerical core of ffrepro.
 *
 * Conventions (every function below follows them unless its comment says otherwise):
 *  - float32, contiguous, row-major. Images are NCHW: (n, c, h, w). Vectors are (n, d).
 *  - The caller owns every pointer passed in; kernels never keep a pointer after they
 *    return and never allocate memory the caller sees. Temporary memory comes from the
 *    per-thread scratch arena of the ff_ctx (bounded; see ff_conv2d_workspace_bytes).
 *  - Gradient outputs are overwritten, except where a function takes `accumulate`
 *    (0 = overwrite, 1 = add into the existing contents).
 *  - A NULL optional pointer ("or NULL") means "not present" / "not wanted".
 *  - No global mutable state: everything a kernel needs comes in through its arguments.
 *    Parallel kernels split work over the ff_ctx thread pool in a fixed way, so results
 *    are bit-identical for the same inputs and the same thread count.
 *  - SIMD: the library is built for the baseline x86-64 ISA; AVX2/FMA and AVX-512 code
 *    paths are selected at run time (ff_cpu_simd tells which one is active).
 */
#ifndef FFCORE_H
#define FFCORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------
 * Context: thread pool, per-thread scratch arenas, BLAS threading.
 * ------------------------------------------------------------------------------------ */
typedef struct ff_ctx ff_ctx;

/* threads <= 0 means "all online CPUs". FFCore parallelises over its own pool and calls
 * OpenBLAS single-threaded from each worker (so creating a context sets OpenBLAS to one
 * thread). */
ff_ctx *ff_ctx_create(int threads);
void ff_ctx_destroy(ff_ctx *ctx);
int ff_ctx_threads(const ff_ctx *ctx);

/* Runs fn(arg, begin, end, tid) over [0, n) split into at most ff_ctx_threads contiguous
 * chunks of at least `grain` items (static schedule: chunk boundaries depend only on n,
 * grain and the thread count). Blocks until all chunks finish. Not reentrant: fn must
 * not call ff_parallel_for on the same context. */
typedef void (*ff_task_fn)(void *arg, long begin, long end, int tid);
void ff_parallel_for(ff_ctx *ctx, long n, long grain, ff_task_fn fn, void *arg);
/* Like ff_parallel_for, but chunks of `grain` items go to whichever thread is free next
 * (an atomic counter), so one thread the OS has descheduled does not hold the others up.
 * Only for tasks whose results do not depend on which thread runs which chunk: each item
 * writes its own outputs (per-thread scratch is fine, per-thread partial sums are not). */
void ff_parallel_for_dynamic(ff_ctx *ctx, long n, long grain, ff_task_fn fn, void *arg);

/* Process-wide allocator tuning (glibc): keeps large freed blocks in the heap instead of
 * returning them to the kernel, so per-step activation buffers do not page-fault anew on
 * every training step. Idempotent; a no-op on other C libraries. */
void ff_tune_process_allocator(void);

/* Tensor memory (alloc.c): 64-byte aligned; buffers of 1 MiB and more are page-mapped and
 * cached by exact size for reuse, within 64 MiB of the high-water mark of live bytes.
 * ff_buffer_alloc returns NULL when memory is exhausted. ff_buffer_release_cache returns
 * every cached buffer to the OS and restarts the high-water mark at the live bytes. */
void *ff_buffer_alloc(size_t bytes, int zeroed);
void ff_buffer_free(void *p, size_t bytes);
size_t ff_buffer_cached_bytes(void);
void ff_buffer_release_cache(void);

/* Per-thread scratch: returns a 64-byte aligned buffer of at least `floats` floats for
 * thread `tid` (0 <= tid < threads) and `slot` (0 <= slot < FF_SCRATCH_SLOTS). The buffer
 * stays valid until the next request for the same (tid, slot). Contents are undefined. */
#define FF_SCRATCH_SLOTS 6
float *ff_ctx_scratch(ff_ctx *ctx, int tid, int slot, size_t floats);
/* Bytes currently held by all scratch arenas of this context (a high-water mark). */
size_t ff_ctx_scratch_bytes(const ff_ctx *ctx);

/* SIMD levels. A context starts at the widest level the CPU (and OS) supports, capped by
 * the environment variable FFREPRO_SIMD=scalar|avx2|avx512 if set; kernels called with the
 * context use that level. ff_ctx_set_simd lowers it (tests run every path this way);
 * levels above what the CPU supports are clamped. */
enum { FF_SIMD_SCALAR = 0, FF_SIMD_AVX2 = 1, FF_SIMD_AVX512 = 2 };
int ff_cpu_simd_level(void);
int ff_ctx_simd(const ff_ctx *ctx);
void ff_ctx_set_simd(ff_ctx *ctx, int level);
/* "avx512", "avx2" or "scalar". */
const char *ff_simd_name(int level);
/* The BLAS build in use, as OpenBLAS describes itself ("OpenBLAS 0.3.21 DYNAMIC_ARCH ..."). */
const char *ff_blas_config(void);

/* C (M x N) = alpha * op(A) * op(B) + beta * C, row-major, split over the pool by
 * columns of C. op(X) = X^T when transX != 0. */
void ff_sgemm(ff_ctx *ctx, int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Compute precision of the convolution GEMMs (forward and weight gradient, im2col or
 * Winograd; everything else, ff_sgemm and the linear layers included, stays fp32).
 * FF_PRECISION_BF16 rounds the GEMM inputs to bfloat16 (round to nearest even) and
 * accumulates in fp32 with AVX512_BF16 (vdpbf16ps); weights, gradients and optimizer
 * state stay fp32 in memory. ff_ctx_set_precision returns 0, or -1 and leaves the
 * precision unchanged when bf16 is asked for and the CPU lacks AVX512_BF16 or the
 * context's SIMD level is below AVX-512. ff_ctx_set_simd below AVX-512 turns a bf16
 * context back to fp32. A new context starts in fp32, or in bf16 when the environment
 * variable FFREPRO_PRECISION=bf16 is set and the CPU supports it. */
enum { FF_PRECISION_FP32 = 0, FF_PRECISION_BF16 = 1 };
int ff_cpu_has_bf16(void);
int ff_ctx_set_precision(ff_ctx *ctx, int precision);
int ff_ctx_precision(const ff_ctx *ctx);
/* C = op(A) op(B) + beta * C (beta 0 or 1 exactly; other values scale C first) with
 * bf16-rounded inputs and fp32 accumulation, split over the pool by columns of C (every
 * element is computed the same way whatever the split). Returns -1 and does nothing
 * unless the context computes in bf16. */
int ff_gemm_bf16(ff_ctx *ctx, int transA, int transB, int M, int N, int K, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* ------------------------------------------------------------------------------------
 * Convolution (cross-correlation, like PyTorch's Conv2d).
 *  x: (n, c_in, h_in, w_in)   w: (c_out, c_in/groups, k_h, k_w)   bias: (c_out) or NULL
 *  y: (n, c_out, h_out, w_out), h_out = (h_in + 2*pad_h - k_h) / stride_h + 1.
 * Implementation: im2col + sgemm, tiled over groups of images so that the im2col buffer
 * of one thread holds at most max(one image, FF_CONV_TILE_BYTES) (see
 * ff_conv2d_workspace_bytes for the exact per-call bound). 1x1/stride-1/pad-0
 * convolutions use the input directly; depthwise convolutions use a direct kernel;
 * 3x3/stride-1/pad-1 convolutions may use Winograd (see the algorithms below).
 * ------------------------------------------------------------------------------------ */
typedef struct {
    int n, c_in, h_in, w_in;
    int c_out, k_h, k_w;
    int stride_h, stride_w, pad_h, pad_w;
    int groups;
} ff_conv2d_desc;

#define FF_CONV_TILE_BYTES (8u << 20)
#define FF_CONV_RELU 1u /* forward flag: apply ReLU to the output (fused) */

/* Algorithms. 3x3 convolutions with stride 1, padding 1 and one group can also run as
 * Winograd F(m x m, 3 x 3), m = 2, 4, 6 (conv_winograd.c: fewer multiplications, a little
 * more rounding error, documented there; tiles of FF_WINO_BLOCK_BYTES of transformed data
 * at a time). The forward pass and the weight gradient use it; the input gradient always
 * uses im2col. Per context:
 *  FF_CONV_ALGO_AUTO (default): a fixed rule by shape (ff_conv2d_algo tells the choice), so
 *    results depend only on the inputs, the thread count, the SIMD level and the precision;
 *  FF_CONV_ALGO_MEASURE: the first call with a descriptor times the eligible algorithms
 *    (im2col, F2, F4; in bf16 im2col and F2) on its own arguments (outputs go to temporary
 *    buffers) and the fastest is kept for that descriptor in the context: faster where the
 *    rule guesses wrong, but no longer bit-identical from run to run;
 *  FF_CONV_ALGO_IM2COL / _WINOGRAD_F2 / _F4 / _F6: force one (Winograd falls back to
 *    im2col where the descriptor is not eligible). For tests and `repro bench`.
 * The environment variable FFREPRO_CONV_ALGO=auto|measure|im2col|f2|f4|f6 sets the start
 * value of a new context. */
enum {
    FF_CONV_ALGO_AUTO = 0,
    FF_CONV_ALGO_IM2COL = 1,
    FF_CONV_ALGO_WINOGRAD_F2 = 2,
    FF_CONV_ALGO_WINOGRAD_F4 = 3,
    FF_CONV_ALGO_WINOGRAD_F6 = 4,
    FF_CONV_ALGO_MEASURE = 5,
};
#define FF_WINO_BLOCK_BYTES (24u << 20)
void ff_ctx_set_conv_algo(ff_ctx *ctx, int algo);
int ff_ctx_conv_algo(const ff_ctx *ctx);
/* The algorithm (IM2COL or WINOGRAD_F*) a call with this descriptor runs now; op 0 is the
 * forward pass, 1 the weight gradient. In MEASURE mode a descriptor not measured yet
 * reports the AUTO choice. Depthwise convolutions report IM2COL (they use a direct kernel). */
int ff_conv2d_algo(ff_ctx *ctx, const ff_conv2d_desc *d, int op);
/* "auto", "im2col", "winograd-f2", "winograd-f4", "winograd-f6", "measure". */
const char *ff_conv_algo_name(int algo);

int ff_conv2d_out_h(const ff_conv2d_desc *d);
int ff_conv2d_out_w(const ff_conv2d_desc *d);
/* 0 when the descriptor is valid, else a static message describing the problem. */
const char *ff_conv2d_check(const ff_conv2d_desc *d);
/* Upper bound of the scratch bytes (all threads together) one call may use, whichever
 * algorithm and precision the context picks. */
size_t ff_conv2d_workspace_bytes(const ff_ctx *ctx, const ff_conv2d_desc *d);

void ff_conv2d_forward(ff_ctx *ctx, const ff_conv2d_desc *d, const float *x, const float *w,
                       const float *bias, float *y, unsigned flags);
/* dw: like w; dbias: (c_out) or NULL. */
void ff_conv2d_backward_weight(ff_ctx *ctx, const ff_conv2d_desc *d, const float *x,
                               const float *dy, float *dw, float *dbias, int accumulate);
/* dx: like x (overwritten). Layer-local training never needs this call. */
void ff_conv2d_backward_input(ff_ctx *ctx, const ff_conv2d_desc *d, const float *w,
                              const float *dy, float *dx);

/* ------------------------------------------------------------------------------------
 * Linear, PyTorch convention: x (n, in), w (out, in), b (out) or NULL, y (n, out).
 * ------------------------------------------------------------------------------------ */
void ff_linear_forward(ff_ctx *ctx, int n, int in, int out, const float *x, const float *w,
                       const float *b, float *y);
/* dx (n, in) overwritten, dw (out, in), db (out); each may be NULL when not wanted. */
void ff_linear_backward(ff_ctx *ctx, int n, int in, int out, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db, int accumulate);

/* ------------------------------------------------------------------------------------
 * Pooling. x: (n, c, h_in, w_in) -> y: (n, c, h_out, w_out),
 * h_out = (h_in + 2*pad_h - k_h) / stride_h + 1 (floor). Padded cells never win a max and
 * are excluded from average/RMS counts (count = in-bounds cells of the window).
 * ------------------------------------------------------------------------------------ */
typedef struct {
    int n, c, h_in, w_in;
    int k_h, k_w, stride_h, stride_w, pad_h, pad_w;
} ff_pool2d_desc;

int ff_pool2d_out_h(const ff_pool2d_desc *d);
int ff_pool2d_out_w(const ff_pool2d_desc *d);

/* argmax: (n, c, h_out, w_out) flat index h*w_in + w within the input plane, or NULL. */
void ff_maxpool2d_forward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x, float *y,
                          int32_t *argmax);
void ff_maxpool2d_backward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *dy,
                           const int32_t *argmax, float *dx);
void ff_avgpool2d_forward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x, float *y);
void ff_avgpool2d_backward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *dy, float *dx);
/* RMS: y = sqrt(mean over window of x^2). Backward: dx = x * dy / (count * y); 0 where y == 0. */
void ff_rmspool2d_forward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x, float *y);
void ff_rmspool2d_backward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x,
                           const float *y, const float *dy, float *dx);
/* Global average pool: x (n, c, hw) -> y (n, c). */
void ff_gap_forward(ff_ctx *ctx, int n, int c, int hw, const float *x, float *y);
void ff_gap_backward(ff_ctx *ctx, int n, int c, int hw, const float *dy, float *dx);

/* Per-channel gating (squeeze-and-excitation): x, y, dy, dx (n, c, hw), s, ds (n, c).
 * y = x * s per plane; backward dx = dy * s (dx may be NULL) and ds = sum over hw of dy * x
 * (overwritten). y may alias x, dx may alias dy. */
void ff_channel_scale_forward(ff_ctx *ctx, int n, int c, int hw, const float *x, const float *s, float *y);
void ff_channel_scale_backward(ff_ctx *ctx, int n, int c, int hw, const float *x, const float *s,
                               const float *dy, float *dx, float *ds);

/* ------------------------------------------------------------------------------------
 * Activations, elementwise over `len` floats. In-place (y == x, dx == dy) is allowed.
 * Backward functions take the forward *input* x.
 *  hardswish(x) = x * min(max(x + 3, 0), 6) / 6;  hardsigmoid(x) = min(max(x + 3, 0), 6) / 6
 * ------------------------------------------------------------------------------------ */
void ff_relu_forward(ff_ctx *ctx, size_t len, const float *x, float *y);
void ff_relu_backward(ff_ctx *ctx, size_t len, const float *x, const float *dy, float *dx);
void ff_hardswish_forward(ff_ctx *ctx, size_t len, const float *x, float *y);
void ff_hardswish_backward(ff_ctx *ctx, size_t len, const float *x, const float *dy, float *dx);
void ff_hardsigmoid_forward(ff_ctx *ctx, size_t len, const float *x, float *y);
void ff_hardsigmoid_backward(ff_ctx *ctx, size_t len, const float *x, const float *dy, float *dx);

/* ------------------------------------------------------------------------------------
 * Normalisation.
 * LayerNorm: each of the n rows of x (n, d) is normalised over its d values (d = C*H*W
 * for per-sample LayerNorm of images); gamma, beta: (d) or NULL (no affine).
 * mean, rstd: (n), written by forward and read by backward.
 * ------------------------------------------------------------------------------------ */
void ff_layernorm_forward(ff_ctx *ctx, int n, int d, float eps, const float *x,
                          const float *gamma, const float *beta, float *y, float *mean,
                          float *rstd);
/* dx (n, d) or NULL; dgamma, dbeta (d) or NULL (accumulate applies to them). */
void ff_layernorm_backward(ff_ctx *ctx, int n, int d, const float *x, const float *gamma,
                           const float *mean, const float *rstd, const float *dy, float *dx,
                           float *dgamma, float *dbeta, int accumulate);

/* RMS scaling (rmsscale.c): each of the n rows of x (n, d) is divided by
 * sqrt(mean(x^2)) + eps (no centring, no affine); rms (n) is written by forward and read
 * by backward. dx (n, d) is written (not accumulated). */
void ff_rmsscale_forward(ff_ctx *ctx, int n, int d, float eps, const float *x, float *y, float *rms);
void ff_rmsscale_backward(ff_ctx *ctx, int n, int d, float eps, const float *x, const float *rms,
                          const float *dy, float *dx);
/* Inverted dropout: y_i = u_i >= p ? x_i / (1 - p) : 0 for uniforms u in [0, 1); the
 * backward pass is the same call on dy with the same u. x and y may alias. */
void ff_dropout_apply(size_t len, float p, const float *u, const float *x, float *y);

/* BatchNorm over x (n, c, hw): statistics per channel over n*hw values (hw = 1 for
 * BatchNorm1d). Training: uses batch statistics (biased variance), writes save_mean /
 * save_rstd (c) for backward, and updates running_mean / running_var (c) with
 * r = (1 - momentum) * r + momentum * batch_stat, running_var taking the unbiased
 * variance (PyTorch semantics). Either running pointer may be NULL. */
void ff_batchnorm_forward_train(ff_ctx *ctx, int n, int c, int hw, float eps, float momentum,
                                const float *x, const float *gamma, const float *beta,
                                float *y, float *save_mean, float *save_rstd,
                                float *running_mean, float *running_var);
void ff_batchnorm_forward_eval(ff_ctx *ctx, int n, int c, int hw, float eps, const float *x,
                               const float *gamma, const float *beta,
                               const float *running_mean, const float *running_var, float *y);
/* Backward of the training-mode forward. dx or NULL; dgamma, dbeta (c) or NULL. */
void ff_batchnorm_backward(ff_ctx *ctx, int n, int c, int hw, const float *x,
                           const float *gamma, const float *save_mean, const float *save_rstd,
                           const float *dy, float *dx, float *dgamma, float *dbeta,
                           int accumulate);

/* ------------------------------------------------------------------------------------
 * Spatial goodness (ASGE eq. 1-2). y: (n, c, h, w), usually a ReLU output.
 * Each h x w map is split into p x p patches; patch (i, j) covers rows
 * [floor(i*h/p), ceil((i+1)*h/p)) and columns [floor(j*w/p), ceil((j+1)*w/p)) (equal
 * patches when p divides h and w; otherwise adaptive bins covering the whole map, as
 * PyTorch's adaptive_avg_pool2d). g[n, c*p*p + i*p + j] = mean of y^2 over the patch.
 * Requires 1 <= p <= min(h, w).  g: (n, c*p*p).
 * ------------------------------------------------------------------------------------ */
void ff_goodness_forward(ff_ctx *ctx, int n, int c, int h, int w, int p, const float *y,
                         float *g);
/* dy[pixel] = sum over patches containing the pixel of dg[patch] * 2 * y[pixel] / area. */
void ff_goodness_backward(ff_ctx *ctx, int n, int c, int h, int w, int p, const float *y,
                          const float *dg, float *dy);
/* Patch layout when p does not divide the map: FF_GOODNESS_ADAPTIVE (the default above,
 * bins cover the whole map) or FF_GOODNESS_FLOOR (p equal patches of floor(h/p) x
 * floor(w/p) from the top-left; rows/columns beyond them get no goodness and zero
 * gradient, as avg_pool2d with kernel h/p). Identical when p divides h and w. */
enum { FF_GOODNESS_ADAPTIVE = 0, FF_GOODNESS_FLOOR = 1 };
void ff_goodness_forward_bins(ff_ctx *ctx, int n, int c, int h, int w, int p, int bins,
                              const float *y, float *g);
void ff_goodness_backward_bins(ff_ctx *ctx, int n, int c, int h, int w, int p, int bins,
                               const float *y, const float *dg, float *dy);
/* Partition factor, ASGE eq. 3: min(max(1, floor(alpha * c_last / c)), h, w). */
int ff_goodness_partition(double alpha, int c_last, int c, int h, int w);

/* ------------------------------------------------------------------------------------
 * Bi-axis covariance goodness (BiCovG, our interpretation). y: (n, c, h, w), usually a
 * ReLU output; u: (k, c), k fixed directions of unit norm (ff_covgoodness_directions,
 * in the RNG section below).
 * Projections z[s, kk, pos] = sum_ch u[kk, ch] * y[s, ch, pos], computed per image as
 * Z (k x hw) = U (k x c) * Y (c x hw) by sgemm; no c x c matrix is ever formed.
 * Levels: the list levels[0..nlev) normalised for the map: each P clipped to min(h, w),
 * then any P equal to an earlier one dropped, order kept ({1, 2, 4} on a 3x5 map gives
 * {1, 2, 3}; on a 2x2 map {1, 2}). Each level splits the map into P x P patches exactly
 * as ff_goodness_forward_bins does (`bins`: FF_GOODNESS_ADAPTIVE or FF_GOODNESS_FLOOR).
 * e: (n, dim), dim = k * sum over normalised levels of P^2, level-major:
 *   e[s, off_l + kk*P_l^2 + i*P_l + j] = mean over patch (i, j) of level l of z_kk^2
 *                                      = u_kk' Sigma_(s,l,i,j) u_kk,
 *   off_l = k * sum of P^2 over the levels before l, Sigma the patch's channel
 *   second-moment matrix (mean of y y' over its positions).
 * Cost per call (n images, hw = h*w, L levels):
 *   forward: 2*n*k*c*hw flops of sgemm, about (L + 1)*n*k*hw adds (squares and column
 *     sums, each row squared once for all levels), n*k*w*sum(P) double adds.
 *   backward: 2*n*k*c*hw flops (dY = U' dZ), plus 2*n*k*c*hw more when z is not given
 *     (Z recomputed), and about (L + 2)*n*k*hw elementwise flops.
 *   memory: y read once per pass, dy written (read and written with accumulate), z
 *     written by the forward only when asked (n*k*hw floats); per thread, scratch of
 *     k*band floats for a Z / dZ band (band = whole rows, at most about 2048 positions
 *     once hw >= 2048; the forward needs none when z is given) and k*w*sum(P) floats of
 *     column sums / coefficients; once per call, a row table of h*(2L + 1) ints;
 *     ff_covgoodness_workspace_bytes bounds all threads together. Work is split by
 *     image, so the results are bit-identical for any thread count and SIMD level.
 * ------------------------------------------------------------------------------------ */
#define FF_COVG_MAX_LEVELS 16
typedef struct {
    int n, c, h, w; /* y: (n, c, h, w); n may be 0 */
    int k;          /* directions */
    int nlev;       /* 1 <= nlev <= FF_COVG_MAX_LEVELS */
    int levels[FF_COVG_MAX_LEVELS]; /* as given, each >= 1 (normalised by the kernel) */
    int bins;       /* FF_GOODNESS_ADAPTIVE or FF_GOODNESS_FLOOR */
} ff_covgoodness_desc;

/* 0 when the descriptor is valid, else a static message describing the problem. */
const char *ff_covgoodness_check(const ff_covgoodness_desc *d);
/* Writes the normalised levels to out (room for FF_COVG_MAX_LEVELS) and returns their
 * count; 0 when h, w, nlev or a level is invalid. Uses h, w, nlev, levels only. */
int ff_covgoodness_levels(const ff_covgoodness_desc *d, int *out);
/* Values per sample (k * sum P^2 over the normalised levels), 0 when invalid. */
long ff_covgoodness_dim(const ff_covgoodness_desc *d);
/* Upper bound of the scratch bytes (all threads together) one call may use. */
size_t ff_covgoodness_workspace_bytes(const ff_ctx *ctx, const ff_covgoodness_desc *d);
/* e: (n, dim). z: (n, k, h, w) receives the projections, or NULL (not kept). */
void ff_covgoodness_forward(ff_ctx *ctx, const ff_covgoodness_desc *d, const float *u,
                            const float *y, float *e, float *z);
/* dy[s, ch, pos] (+)= sum_kk u[kk, ch] * 2 z[s, kk, pos] * sum over the patches (all
 * levels) containing pos of de[s, patch of kk] / area. z: the forward's projections, or
 * NULL to recompute them from y (one more sgemm); y may be NULL when z is given.
 * accumulate = 1 adds into dy (e.g. onto the ASGE goodness gradient of the same map). */
void ff_covgoodness_backward(ff_ctx *ctx, const ff_covgoodness_desc *d, const float *u,
                             const float *y, const float *z, const float *de, float *dy,
                             int accumulate);
/* Explicit-covariance baseline for benchmarks and tests, level 1 only: per sample
 * Sigma = Y Y' / hw (c x c, sgemm), then e[s, kk] = u_kk' Sigma u_kk. y: (n, c, hw),
 * e: (n, k). Scratch: c*c + k*c floats per thread. Same values as
 * ff_covgoodness_forward with levels {1}, at O(c^2 hw) instead of O(k c hw). */
void ff_covgoodness_explicit(ff_ctx *ctx, int n, int c, long hw, int k, const float *u,
                             const float *y, float *e);

/* ------------------------------------------------------------------------------------
 * Softmax cross-entropy over logits (n, k) and int32 labels (n) in [0, k).
 * Uses a stable log-sum-exp. Returns the mean loss over the n rows. When dlogits is not
 * NULL it receives (softmax(logits) - onehot(label)) * grad_scale (pass 1/n for the
 * gradient of the mean). When correct is not NULL it receives the number of rows whose
 * argmax (first maximum on ties) equals the label. Returns NaN if any logit is not finite.
 * ------------------------------------------------------------------------------------ */
double ff_softmax_xent(ff_ctx *ctx, int n, int k, const float *logits, const int32_t *labels,
                       float grad_scale, float *dlogits, int *correct);
/* Number of rows whose label is among the `topk` largest logits (ties broken by index). */
int ff_topk_correct(int n, int k, const float *logits, const int32_t *labels, int topk);
/* argmax per row (first maximum). out: (n). */
void ff_argmax_rows(int n, int k, const float *x, int32_t *out);

/* ------------------------------------------------------------------------------------
 * Optimizers (PyTorch semantics), in place over `len` parameters.
 * AdamW: p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 *        p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps), t = step (1-based).
 * SGD:   g' = g + wd*p; buf = first ? g' : momentum*buf + (1-dampening)*g';
 *        d = nesterov ? g' + momentum*buf : buf (d = g' when momentum == 0, buf unused);
 *        p -= lr * d.
 * ------------------------------------------------------------------------------------ */
void ff_adamw_step(ff_ctx *ctx, size_t len, float *p, const float *g, float *m, float *v,
                   float lr, float beta1, float beta2, float eps, float weight_decay,
                   long step);
void ff_sgd_step(ff_ctx *ctx, size_t len, float *p, const float *g, float *buf, float lr,
                 float momentum, float dampening, float weight_decay, int nesterov,
                 int first_step);
/* Learning rate at `step` of `total` (0-based): linear warmup base*(step+1)/warmup for
 * step < warmup, then cosine from base to min over the remaining total - warmup steps:
 * min + (base - min) * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2. */
double ff_cosine_lr(double base_lr, double min_lr, long step, long total, long warmup);

/* ------------------------------------------------------------------------------------
 * Deterministic RNG: xoshiro256** seeded through splitmix64. The same seed gives the
 * same stream on every machine (integer arithmetic; normals by Box-Muller in double).
 * The state is plain data: copy it to save/restore (checkpoints store s[0..3]).
 * ------------------------------------------------------------------------------------ */
typedef struct { uint64_t s[4]; } ff_rng;

void ff_rng_seed(ff_rng *r, uint64_t seed);
/* An independent stream derived from (seed, stream): e.g. stream = epoch number. */
void ff_rng_seed_stream(ff_rng *r, uint64_t seed, uint64_t stream);
uint64_t ff_rng_next(ff_rng *r);
/* Uniform in [0, 1) with 24 random bits (float) / 53 random bits (double). */
float ff_rng_uniform(ff_rng *r);
double ff_rng_uniform_double(ff_rng *r);
/* Uniform integer in [0, bound), unbiased; bound > 0. */
uint32_t ff_rng_below(ff_rng *r, uint32_t bound);
void ff_rng_fill_uniform(ff_rng *r, size_t len, float *out, float lo, float hi);
void ff_rng_fill_normal(ff_rng *r, size_t len, float *out, float mean, float std);
/* out: a uniformly random permutation of 0..len-1 (Fisher-Yates). */
void ff_rng_permutation(ff_rng *r, size_t len, int32_t *out);
/* Directions for ff_covgoodness_forward: u (k, c), each row drawn from N(0, 1) with r
 * (c normals, row after row) and scaled to unit norm in double. */
void ff_covgoodness_directions(ff_rng *r, int k, int c, float *u);

/* ------------------------------------------------------------------------------------
 * Vector helpers (parallel, SIMD).
 * ------------------------------------------------------------------------------------ */
void ff_vec_fill(ff_ctx *ctx, size_t len, float *x, float value);
/* y += alpha * x */
void ff_vec_axpy(ff_ctx *ctx, size_t len, float alpha, const float *x, float *y);
void ff_vec_scale(ff_ctx *ctx, size_t len, float alpha, float *x);
/* Sum of squares in double. */
double ff_vec_sumsq(ff_ctx *ctx, size_t len, const float *x);
/* Index of the first non-finite value, or -1 if all are finite. */
long ff_vec_find_nonfinite(ff_ctx *ctx, size_t len, const float *x);

#ifdef __cplusplus
}
#endif
#endif /* FFCORE_H */
