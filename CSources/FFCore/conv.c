/* conv.c -- 2-D convolution (cross-correlation) as im2col + sgemm.
 *  x: (n, C, H, W)   w: (CO, C/groups, KH, KW)   bias: (CO)   y, dy: (n, CO, OH, OW)
 *  Work is cut into tiles of whole images (several small images per tile) or of row bands
 *  of one image. A tile's column matrix has Krow = C*KH*KW rows (all groups; group gi
 *  owns rows [gi*Kg, (gi+1)*Kg)) and ncols = images * rows_in_band * OW columns laid out
 *  [image][position]. Per group:
 *    forward:  Y_t (cout_g x ncols)  = W_g (cout_g x Kg) * col_g (Kg x ncols)
 *    wgrad:    dW_g (cout_g x Kg)   += dY_t (cout_g x ncols) * col_g^T
 *    dgrad:    dcol_g (Kg x ncols)   = W_g^T * dY_t, then col2im scatter-add into dx.
 *  Tiles go to threads in contiguous static chunks (ff_parallel_for), BLAS runs
 *  single-threaded inside each worker. dgrad hands whole images to threads and runs
 *  their bands in order, since col2im of neighbouring bands overlaps in dx.
 *  One file on purpose: the tile planner, the pixel movers and the three passes share
 *  private types and scratch conventions. */
#include "conv_internal.h"
#include "gemm_internal.h"

#include <cblas.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* GEMM N below this loses efficiency (B panels too thin), so small images are grouped. */
#define CONV_MIN_COLS 256
/* Large images are cut into row bands of about this many columns: the band's column
 * tile (e.g. 1152 x 256 floats for 128 channels, 3x3) then stays in L2/L3 between
 * im2col and the GEMM that reads it. Measured on Zen4 at 128ch 32x32: whole images
 * reach ~150 GFLOP/s on 2 threads, 256-column bands ~165-170. */
#define CONV_BAND_COLS 256

/* ---------------------------------------------------------------- descriptor ---- */

static int out_size(int in, int pad, int k, int stride) {
    if (stride <= 0) return 0;
    long span = (long)in + 2L * pad - k;
    return span < 0 ? 0 : (int)ff_min_l(span / stride + 1, INT_MAX);
}

int ff_conv2d_out_h(const ff_conv2d_desc *d) {
    return out_size(d->h_in, d->pad_h, d->k_h, d->stride_h);
}

int ff_conv2d_out_w(const ff_conv2d_desc *d) {
    return out_size(d->w_in, d->pad_w, d->k_w, d->stride_w);
}

const char *ff_conv2d_check(const ff_conv2d_desc *d) {
    if (!d) return "conv2d: NULL descriptor";
    if (d->n < 1 || d->c_in < 1 || d->h_in < 1 || d->w_in < 1)
        return "conv2d: input sizes must be >= 1";
    if (d->c_out < 1 || d->k_h < 1 || d->k_w < 1) return "conv2d: c_out and kernel must be >= 1";
    if (d->stride_h < 1 || d->stride_w < 1) return "conv2d: stride must be >= 1";
    if (d->pad_h < 0 || d->pad_w < 0) return "conv2d: padding must be >= 0";
    if (d->groups < 1) return "conv2d: groups must be >= 1";
    if (d->c_in % d->groups || d->c_out % d->groups)
        return "conv2d: c_in and c_out must be multiples of groups";
    if ((long)d->h_in + 2L * d->pad_h > INT_MAX || (long)d->w_in + 2L * d->pad_w > INT_MAX)
        return "conv2d: padded input too large";
    int oh = ff_conv2d_out_h(d), ow = ff_conv2d_out_w(d);
    if (oh < 1 || ow < 1) return "conv2d: kernel larger than the padded input";
    /* BLAS takes int sizes and leading dimensions: one image's column matrix and one
     * image's output must be addressable with int. */
    long hw = (long)oh * ow;
    if ((long)d->c_in * d->k_h * d->k_w * hw > INT_MAX || (long)d->c_out * hw > INT_MAX ||
        (long)d->c_in * d->h_in * d->w_in > INT_MAX ||
        (long)(d->c_out / d->groups) * (d->c_in / d->groups) * d->k_h * d->k_w > INT_MAX)
        return "conv2d: one image is too large";
    return 0;
}

static conv_geom make_geom(const ff_conv2d_desc *d) {
    conv_geom g;
    g.n = d->n;
    g.C = d->c_in;
    g.H = d->h_in;
    g.W = d->w_in;
    g.CO = d->c_out;
    g.KH = d->k_h;
    g.KW = d->k_w;
    g.SH = d->stride_h;
    g.SW = d->stride_w;
    g.PH = d->pad_h;
    g.PW = d->pad_w;
    g.groups = d->groups;
    g.OH = ff_conv2d_out_h(d);
    g.OW = ff_conv2d_out_w(d);
    g.HW = (long)g.OH * g.OW;
    g.inHW = (long)g.H * g.W;
    g.cin_g = g.C / g.groups;
    g.cout_g = g.CO / g.groups;
    g.KK = g.KH * g.KW;
    g.Kg = g.cin_g * g.KK;
    g.Krow = g.C * g.KK;
    return g;
}

static void check_or_die(const ff_conv2d_desc *d) {
    const char *msg = ff_conv2d_check(d);
    if (msg) {
        /* A bad descriptor is a caller bug; carrying on would write out of bounds. */
        fprintf(stderr, "ffcore: %s\n", msg);
        abort();
    }
}

static int is_depthwise(const conv_geom *g) { return g->groups == g->C && g->C > 1; }

/* 1x1, stride 1, no padding, one group: an image already is the Krow x HW matrix. */
static int is_pointwise(const conv_geom *g) {
    return g->KH == 1 && g->KW == 1 && g->SH == 1 && g->SW == 1 && g->PH == 0 && g->PW == 0 &&
           g->groups == 1;
}

/* ---------------------------------------------------------------- tiling ---------- */

typedef struct {
    conv_geom g;
    long T;        /* tiles handed to threads */
    int NB;        /* row bands per image (> 1 only in single-image tiles) */
    int whole;     /* dgrad: a tile is a whole image, its bands run in order inside */
    int Gmax;      /* most images in one tile */
    long max_cols; /* most columns in one tile */
    int pointwise;
    int need_col;  /* tiles need the im2col / dcol buffer */
    int bf16;      /* forward / wgrad GEMMs in bf16 (gemm_kernels.c) */
} conv_plan;

typedef struct {
    int i0, ni;   /* images [i0, i0 + ni) */
    int oh0, oh1; /* output rows [oh0, oh1) */
    long ncols;
} conv_tile;

/* The plan depends only on the descriptor, the op and the thread count, so the work
 * split (and thus every rounding) is the same on every call. */
static conv_plan make_plan(const conv_geom *g, int nthreads, int op, int bf16) {
    conv_plan p;
    p.g = *g;
    p.bf16 = bf16 && op != CONV_OP_DGRAD;
    p.pointwise = is_pointwise(g);
    long col_img = (long)g->Krow * g->HW;
    long cap = ff_max_l(col_img, (long)(FF_CONV_TILE_BYTES / sizeof(float)));
    p.whole = 0;
    if (g->HW >= CONV_MIN_COLS || g->n == 1) {
        int nb = 1;
        if (CONV_BAND_COLS > 0 && g->HW >= 2L * CONV_BAND_COLS)
            nb = ff_min_i((int)(g->HW / CONV_BAND_COLS), g->OH);
        if (op == CONV_OP_DGRAD) {
            /* col2im of neighbouring bands adds into shared halo rows of dx, so all
             * bands of an image stay on one thread. */
            p.whole = 1;
        } else {
            if (g->n < nthreads) nb = ff_max_i(nb, (nthreads + g->n - 1) / g->n);
            nb = ff_min_i(nb, g->OH);
            /* With few tiles, a count that is not a multiple of the thread count leaves
             * threads idle at the end: cut a few more bands when that evens it out. */
            if (((long)g->n * nb) % nthreads && (long)g->n * nb < 8L * nthreads)
                for (int k = nb + 1; k <= ff_min_i(g->OH, nb * nthreads); k++)
                    if (((long)g->n * k) % nthreads == 0) {
                        nb = k;
                        break;
                    }
        }
        p.NB = nb;
        p.T = p.whole ? g->n : (long)g->n * nb;
        p.Gmax = 1;
        p.max_cols = (long)((g->OH + nb - 1) / nb) * g->OW;
    } else {
        long G = (CONV_MIN_COLS + g->HW - 1) / g->HW;
        G = ff_max_l(1, ff_min_l(G, cap / col_img));
        long T = (g->n + G - 1) / G;
        /* Round the tile count up to a multiple of the thread count (when there are
         * enough images) and spread images evenly, so threads get equal work. */
        long Tr = (T + nthreads - 1) / nthreads * nthreads;
        if (Tr <= g->n) T = Tr;
        p.NB = 1;
        p.T = T;
        p.Gmax = (int)((g->n + T - 1) / T);
        p.max_cols = (long)p.Gmax * g->HW;
    }
    p.need_col = !(p.pointwise && p.Gmax == 1);
    return p;
}

/* Band b of image i (single-image tiles). */
static conv_tile plan_band(const conv_plan *p, long i, int b) {
    conv_tile tl;
    tl.i0 = (int)i;
    tl.ni = 1;
    tl.oh0 = (int)ff_chunk_begin(p->g.OH, p->NB, b);
    tl.oh1 = (int)ff_chunk_begin(p->g.OH, p->NB, b + 1);
    tl.ncols = (long)(tl.oh1 - tl.oh0) * p->g.OW;
    return tl;
}

static conv_tile plan_tile(const conv_plan *p, long t) {
    conv_tile tl;
    const conv_geom *g = &p->g;
    if (p->Gmax == 1) {
        tl = plan_band(p, t / p->NB, (int)(t % p->NB));
    } else {
        tl.i0 = (int)ff_chunk_begin(g->n, (int)p->T, (int)t);
        tl.ni = (int)ff_chunk_begin(g->n, (int)p->T, (int)t + 1) - tl.i0;
        tl.oh0 = 0;
        tl.oh1 = g->OH;
    }
    tl.ncols = (long)tl.ni * (tl.oh1 - tl.oh0) * g->OW;
    return tl;
}

/* Scratch floats one thread requests per slot: 0 column tile, 1 output / dy tile,
 * 2 dW partial, 3 dbias partial (doubles); bf16 only: 4 the packed weights of all groups
 * (forward, thread 0 alone: it is shared), 5 the GEMM's packing buffer. */
static void plan_scratch(const conv_plan *p, int op, int tid, size_t s[FF_SCRATCH_SLOTS]) {
    const conv_geom *g = &p->g;
    for (int i = 0; i < FF_SCRATCH_SLOTS; i++) s[i] = 0;
    if (p->need_col) s[0] = (size_t)g->Krow * (size_t)p->max_cols;
    if (p->Gmax > 1) s[1] = (size_t)g->CO * (size_t)p->max_cols;
    if (op == CONV_OP_WGRAD) {
        s[2] = (size_t)g->CO * (size_t)g->Kg;
        s[3] = 2 * (size_t)g->CO;
    }
    if (p->bf16 && op == CONV_OP_FWD) {
        if (tid == 0) s[4] = (size_t)g->groups * ff_gemm_bf16_packed_a_words(g->cout_g, g->Kg);
        s[5] = ff_gemm_bf16_scratch_floats(g->cout_g, (int)p->max_cols, g->Kg);
    } else if (p->bf16) {
        s[5] = ff_gemm_bf16_scratch_floats(g->cout_g, g->Kg, (int)p->max_cols);
    }
}

static size_t scratch_bytes_of(const size_t s[FF_SCRATCH_SLOTS]) {
    size_t b = 0;
    /* ff_ctx_scratch pads every buffer by 16 floats. */
    for (int i = 0; i < FF_SCRATCH_SLOTS; i++)
        if (s[i]) b += (s[i] + 16) * sizeof(float);
    return b;
}

/* Workspace bound, per thread (slots of ff_ctx_scratch, each padded by 16 floats):
 *  slot 0, column tile: Krow x max_cols floats <= max(one image, FF_CONV_TILE_BYTES),
 *    because a tile is one row band of one image (about CONV_BAND_COLS columns when
 *    HW >= 2*CONV_BAND_COLS, else the whole image) or Gmax <= TILE / (Krow*HW*4) small
 *    images. Absent for 1x1/stride-1/pad-0 convolutions with single-image tiles.
 *  slot 1, output / dy tile: CO x Gmax*HW floats, only for multi-image tiles, where
 *    Gmax*HW < CONV_MIN_COLS + HW.
 *  slots 2 and 3, wgrad only: the CO x Kg dW partial and 2*CO floats (CO doubles) for
 *    the dbias partial.
 *  Depthwise: (KH*KW + 1) * OW doubles in wgrad, nothing otherwise.
 * The function returns the largest per-thread total over the three entry points times
 * the context's thread count; a call never asks the arenas for more. */
static int algo_choice(ff_ctx *ctx, const conv_geom *g, const ff_conv2d_desc *d, int op);

/* Arenas are high-water marks per (thread, slot), so the bound over any sequence of calls
 * is the sum over arenas of the largest request any possible call makes to it: every
 * entry point (forward, weight and input gradient), with the algorithm the context can
 * pick for it (all of them in MEASURE mode, which runs every candidate). */
size_t ff_conv2d_workspace_bytes(const ff_ctx *ctx, const ff_conv2d_desc *d) {
    if (ff_conv2d_check(d)) return 0;
    conv_geom g = make_geom(d);
    int nt = ff_ctx_threads(ctx);
    size_t per = 0;
    if (is_depthwise(&g)) {
        for (int op = 0; op < 3; op++) {
            size_t f = ff_conv_dw_scratch_floats(&g, op);
            if (f) per = f + 16 > per ? (f + 16) : per;
        }
        return per * sizeof(float) * (size_t)nt;
    }
    size_t (*most)[FF_SCRATCH_SLOTS] = calloc((size_t)nt, sizeof *most);
    size_t (*call)[FF_SCRATCH_SLOTS] = calloc((size_t)nt, sizeof *call);
    if (!most || !call) {
        free(most);
        free(call);
        return SIZE_MAX;
    }
    const int bf16 = ctx->precision == FF_PRECISION_BF16;
    for (int op = 0; op < 3; op++) {
        for (int algo = FF_CONV_ALGO_IM2COL; algo <= FF_CONV_ALGO_WINOGRAD_F6; algo++) {
            if (algo != FF_CONV_ALGO_IM2COL &&
                (op == CONV_OP_DGRAD || !ff_wino_eligible(&g) ||
                 (ctx->conv_algo != FF_CONV_ALGO_MEASURE && algo_choice((ff_ctx *)ctx, &g, d, op) != algo)))
                continue;
            memset(call, 0, (size_t)nt * sizeof *call);
            if (algo == FF_CONV_ALGO_IM2COL) {
                conv_plan p = make_plan(&g, nt, op, bf16);
                for (int t = 0; t < (int)ff_min_l(p.T, nt); t++) plan_scratch(&p, op, t, call[t]);
            } else {
                ff_wino_scratch_floats(ctx, &g, 2 * (algo - FF_CONV_ALGO_WINOGRAD_F2) + 2, op, call);
            }
            for (int t = 0; t < nt; t++)
                for (int sl = 0; sl < FF_SCRATCH_SLOTS; sl++)
                    if (call[t][sl] > most[t][sl]) most[t][sl] = call[t][sl];
        }
    }
    size_t total = 0;
    for (int t = 0; t < nt; t++) total += scratch_bytes_of(most[t]);
    free(most);
    free(call);
    return total;
}

/* ---------------------------------------------------------------- im2col ---------- */

static inline void zero_floats(float *p, long n) {
    if (n > 0) memset(p, 0, (size_t)n * sizeof(float));
}

/* Column tile from `ni` consecutive images starting at x, output rows [oh0, oh1). */
CONV_AI void im2col_body(const conv_geom *g, const float *restrict x, int ni, int oh0,
                         int oh1, float *restrict col, long ldcol) {
    const long bandcols = (long)(oh1 - oh0) * g->OW;
    const long img = (long)g->C * g->inHW;
    if (g->KH == 1 && g->KW == 1 && g->SH == 1 && g->SW == 1 && g->PH == 0 && g->PW == 0) {
        /* Pointwise: rows of the band are contiguous in the input plane. */
        for (int c = 0; c < g->C; c++)
            for (int gi = 0; gi < ni; gi++)
                memcpy(col + c * ldcol + gi * bandcols,
                       x + gi * img + c * g->inHW + (long)oh0 * g->OW,
                       (size_t)bandcols * sizeof(float));
        return;
    }
    for (int j = 0; j < g->KW; j++) {
        int lo, hi;
        conv_col_range(g, j, &lo, &hi);
        const int OW = g->OW, SW = g->SW;
        for (int c = 0; c < g->C; c++) {
            for (int i = 0; i < g->KH; i++) {
                float *restrict row = col + ((long)(c * g->KH + i) * g->KW + j) * ldcol;
                for (int gi = 0; gi < ni; gi++) {
                    const float *restrict plane = x + gi * img + c * g->inHW;
                    float *restrict dst = row + gi * bandcols;
                    for (int oh = oh0; oh < oh1; oh++, dst += OW) {
                        int ih = oh * g->SH - g->PH + i;
                        if ((unsigned)ih >= (unsigned)g->H || lo >= hi) {
                            for (int ow = 0; ow < OW; ow++) dst[ow] = 0.0f;
                            continue;
                        }
                        const float *restrict src = plane + (long)ih * g->W + lo * SW - g->PW + j;
                        for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                        if (SW == 1) {
                            for (int k = 0; k < hi - lo; k++) dst[lo + k] = src[k];
                        } else {
                            for (int k = 0; k < hi - lo; k++) dst[lo + k] = src[(long)k * SW];
                        }
                        for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
                    }
                }
            }
        }
    }
}
CONV_SIMD_VARIANTS(im2col,
                   (const conv_geom *g, const float *x, int ni, int oh0, int oh1, float *col,
                    long ldcol),
                   (g, x, ni, oh0, oh1, col, ldcol))

/* Adjoint of im2col: dx (ni images, zeroed before their first band) += col, for output
 * rows [oh0, oh1). */
CONV_AI void col2im_body(const conv_geom *g, const float *restrict col, int ni, int oh0,
                         int oh1, float *restrict dx, long ldcol) {
    const long img = (long)g->C * g->inHW;
    const long bandcols = (long)(oh1 - oh0) * g->OW;
    for (int c = 0; c < g->C; c++) {
        for (int i = 0; i < g->KH; i++) {
            for (int j = 0; j < g->KW; j++) {
                int lo, hi;
                conv_col_range(g, j, &lo, &hi);
                if (lo >= hi) continue;
                const float *restrict row = col + ((long)(c * g->KH + i) * g->KW + j) * ldcol;
                const int SW = g->SW;
                for (int gi = 0; gi < ni; gi++) {
                    float *restrict plane = dx + gi * img + c * g->inHW;
                    const float *restrict src = row + gi * bandcols;
                    for (int oh = oh0; oh < oh1; oh++, src += g->OW) {
                        int ih = oh * g->SH - g->PH + i;
                        if ((unsigned)ih >= (unsigned)g->H) continue;
                        float *restrict dst = plane + (long)ih * g->W + lo * SW - g->PW + j;
                        if (SW == 1) {
                            for (int k = 0; k < hi - lo; k++) dst[k] += src[lo + k];
                        } else {
                            for (int k = 0; k < hi - lo; k++) dst[(long)k * SW] += src[lo + k];
                        }
                    }
                }
            }
        }
    }
}
CONV_SIMD_VARIANTS(col2im,
                   (const conv_geom *g, const float *col, int ni, int oh0, int oh1, float *dx,
                    long ldcol),
                   (g, col, ni, oh0, oh1, dx, ldcol))

/* y row = act(src row + b); src may equal dst (in-place epilogue). */
CONV_AI void bias_act_body(float *dst, const float *src, long len, float b, int relu) {
    if (relu) {
        for (long k = 0; k < len; k++) {
            float v = src[k] + b;
            dst[k] = v > 0.0f ? v : 0.0f;
        }
    } else {
        for (long k = 0; k < len; k++) dst[k] = src[k] + b;
    }
}

/* Epilogue of one tile: GEMM result C (CO rows, leading dimension ldc, ncols columns
 * in [image][position] order) -> y images with bias and optional ReLU. When the tile
 * is a single image, C already lies inside y and this works in place. */
CONV_AI void epilogue_body(const conv_geom *g, const float *Ct, long ldc, int ni, long bandcols,
                           const float *bias, int relu, float *y) {
    const long img = (long)g->CO * g->HW;
    for (int gi = 0; gi < ni; gi++)
        for (int co = 0; co < g->CO; co++)
            bias_act_body(y + gi * img + co * g->HW, Ct + co * ldc + gi * bandcols, bandcols,
                          bias ? bias[co] : 0.0f, relu);
}
CONV_SIMD_VARIANTS(epilogue,
                   (const conv_geom *g, const float *Ct, long ldc, int ni, long bandcols,
                    const float *bias, int relu, float *y),
                   (g, Ct, ldc, ni, bandcols, bias, relu, y))

/* dy of a multi-image tile gathered into [co][image][position] (ld = ni*HW). */
CONV_AI void gather_dy_body(const conv_geom *g, const float *restrict dy, int ni,
                            float *restrict out) {
    const long img = (long)g->CO * g->HW, ld = (long)ni * g->HW;
    for (int co = 0; co < g->CO; co++)
        for (int gi = 0; gi < ni; gi++)
            memcpy(out + co * ld + gi * g->HW, dy + gi * img + co * g->HW,
                   (size_t)g->HW * sizeof(float));
}

/* Sum of a row in double, with eight independent lanes so it vectorises without
 * reassociation; the order is the same at every SIMD level. */
CONV_AI double row_sum_body(const float *restrict x, long len) {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    long k = 0;
    for (; k + 8 <= len; k += 8)
        for (int l = 0; l < 8; l++) lane[l] += (double)x[k + l];
    for (int l = 0; k < len; k++, l++) lane[l] += (double)x[k];
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

CONV_AI void bias_rows_body(const float *restrict a, long lda, int rows, long len,
                            double *restrict acc) {
    for (int r = 0; r < rows; r++) acc[r] += row_sum_body(a + r * lda, len);
}
CONV_SIMD_VARIANTS(bias_rows, (const float *a, long lda, int rows, long len, double *acc),
                   (a, lda, rows, len, acc))

/* ---------------------------------------------------------------- forward --------- */

typedef struct {
    conv_plan p;
    int simd, relu;
    const float *x, *w, *bias;
    const float *dy;
    float *y, *dx;
    float *col[FF_MAX_THREADS];
    float *tmp[FF_MAX_THREADS];
    float *part[FF_MAX_THREADS];
    double *bpart[FF_MAX_THREADS];
    float *gscratch[FF_MAX_THREADS];
    uint32_t *wpack; /* bf16 forward: weights of every group, packed once per call */
    int want_bias;
} conv_job;

/* Scratch is taken on the calling thread before the job starts, for the threads that
 * will get tiles, so workers never touch the arena bookkeeping. */
static int acquire_scratch(ff_ctx *ctx, conv_job *j, int op) {
    int used = (int)ff_min_l(j->p.T, ff_ctx_threads(ctx));
    for (int t = 0; t < used; t++) {
        size_t s[FF_SCRATCH_SLOTS];
        plan_scratch(&j->p, op, t, s);
        j->col[t] = s[0] ? ff_ctx_scratch(ctx, t, 0, s[0]) : NULL;
        j->tmp[t] = s[1] ? ff_ctx_scratch(ctx, t, 1, s[1]) : NULL;
        j->part[t] = s[2] ? ff_ctx_scratch(ctx, t, 2, s[2]) : NULL;
        j->bpart[t] = s[3] ? (double *)ff_ctx_scratch(ctx, t, 3, s[3]) : NULL;
        if (t == 0) j->wpack = s[4] ? (uint32_t *)ff_ctx_scratch(ctx, 0, 4, s[4]) : NULL;
        j->gscratch[t] = s[5] ? ff_ctx_scratch(ctx, t, 5, s[5]) : NULL;
        if ((s[0] && !j->col[t]) || (s[1] && !j->tmp[t]) || (s[2] && !j->part[t]) ||
            (s[3] && !j->bpart[t]) || (s[4] && !j->wpack) || (s[5] && !j->gscratch[t])) {
            fprintf(stderr, "ffcore: conv2d: out of memory for scratch\n");
            abort();
        }
    }
    return used;
}

/* A tile's column matrix (GEMM B operand): the input itself for single-image pointwise
 * tiles, otherwise im2col into the thread's column buffer. */
static const float *tile_columns(const conv_job *j, const conv_tile *tl, int tid, long *ldb) {
    const conv_geom *g = &j->p.g;
    const float *xb = j->x + (size_t)tl->i0 * g->C * g->inHW;
    if (j->p.pointwise && tl->ni == 1) {
        *ldb = g->HW;
        return xb + (long)tl->oh0 * g->OW;
    }
    CONV_SIMD_CALL(j->simd, im2col, g, xb, tl->ni, tl->oh0, tl->oh1, j->col[tid], tl->ncols);
    *ldb = tl->ncols;
    return j->col[tid];
}

static void fwd_task(void *arg, long t0, long t1, int tid) {
    conv_job *j = arg;
    const conv_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int G = g->groups, Mg = g->cout_g, Kg = g->Kg;
    for (long t = t0; t < t1; t++) {
        conv_tile tl = plan_tile(p, t);
        long ldb;
        const float *B = tile_columns(j, &tl, tid, &ldb);
        float *yb = j->y + (size_t)tl.i0 * g->CO * g->HW;
        float *Ct;
        long ldc;
        if (tl.ni == 1) {
            Ct = yb + (long)tl.oh0 * g->OW;
            ldc = g->HW;
        } else {
            Ct = j->tmp[tid];
            ldc = tl.ncols;
        }
        for (int gi = 0; gi < G; gi++) {
            if (p->bf16)
                ff_gemm_bf16_1t(0, 0, Mg, (int)tl.ncols, Kg, NULL, 0,
                                j->wpack + gi * ff_gemm_bf16_packed_a_words(Mg, Kg),
                                B + (size_t)gi * Kg * ldb, ldb, 0.0f, Ct + (size_t)gi * Mg * ldc, ldc,
                                j->gscratch[tid]);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Mg, (int)tl.ncols, Kg, 1.0f,
                            j->w + (size_t)gi * Mg * Kg, Kg, B + (size_t)gi * Kg * ldb, (int)ldb,
                            0.0f, Ct + (size_t)gi * Mg * ldc, (int)ldc);
        }
        if (tl.ni == 1) {
            if (j->bias || j->relu)
                CONV_SIMD_CALL(j->simd, epilogue, g, Ct, ldc, 1, tl.ncols, j->bias, j->relu, Ct);
        } else {
            CONV_SIMD_CALL(j->simd, epilogue, g, Ct, ldc, tl.ni, g->HW, j->bias, j->relu, yb);
        }
    }
}

static int measure(ff_ctx *ctx, const conv_geom *g, const ff_conv2d_desc *d, int op,
                   const float *x, const float *w_or_dy);

static void run_forward(ff_ctx *ctx, const conv_geom *g, int algo, const float *x, const float *w,
                        const float *bias, float *y, int relu) {
    if (algo >= FF_CONV_ALGO_WINOGRAD_F2 && algo <= FF_CONV_ALGO_WINOGRAD_F6) {
        ff_wino_forward(ctx, g, 2 * (algo - FF_CONV_ALGO_WINOGRAD_F2) + 2, x, w, bias, y, relu);
        return;
    }
    conv_job job, *j = &job;
    j->p = make_plan(g, ff_ctx_threads(ctx), CONV_OP_FWD, ctx->precision == FF_PRECISION_BF16);
    j->simd = ff_ctx_simd(ctx);
    j->relu = relu;
    j->x = x;
    j->w = w;
    j->bias = bias;
    j->y = y;
    acquire_scratch(ctx, j, CONV_OP_FWD);
    if (j->p.bf16)
        for (int gi = 0; gi < g->groups; gi++)
            ff_gemm_bf16_pack_a(0, g->cout_g, g->Kg, w + (size_t)gi * g->cout_g * g->Kg, g->Kg,
                                j->wpack + gi * ff_gemm_bf16_packed_a_words(g->cout_g, g->Kg));
    /* Tiles write disjoint outputs with the running thread's scratch: any thread may run any. */
    ff_parallel_for_dynamic(ctx, j->p.T, 1, fwd_task, j);
}

void ff_conv2d_forward(ff_ctx *ctx, const ff_conv2d_desc *d, const float *x, const float *w,
                       const float *bias, float *y, unsigned flags) {
    check_or_die(d);
    conv_geom g = make_geom(d);
    int relu = (flags & FF_CONV_RELU) != 0;
    if (is_depthwise(&g)) {
        ff_conv_dw_forward(ctx, &g, x, w, bias, y, relu);
        return;
    }
    int algo = algo_choice(ctx, &g, d, CONV_OP_FWD);
    if (algo == FF_CONV_ALGO_MEASURE) algo = measure(ctx, &g, d, CONV_OP_FWD, x, w);
    run_forward(ctx, &g, algo, x, w, bias, y, relu);
}

/* ---------------------------------------------------------------- weight grad ----- */

static void wgrad_task(void *arg, long t0, long t1, int tid) {
    conv_job *j = arg;
    const conv_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int G = g->groups, Mg = g->cout_g, Kg = g->Kg;
    float *part = j->part[tid];
    double *bpart = j->bpart[tid];
    memset(part, 0, sizeof(float) * (size_t)g->CO * Kg);
    for (int co = 0; co < g->CO; co++) bpart[co] = 0.0;
    for (long t = t0; t < t1; t++) {
        conv_tile tl = plan_tile(p, t);
        const float *dyb = j->dy + (size_t)tl.i0 * g->CO * g->HW;
        long ldb;
        const float *B = tile_columns(j, &tl, tid, &ldb);
        const float *A;
        long lda;
        if (tl.ni == 1) {
            A = dyb + (long)tl.oh0 * g->OW;
            lda = g->HW;
        } else {
            gather_dy_body(g, dyb, tl.ni, j->tmp[tid]);
            A = j->tmp[tid];
            lda = tl.ncols;
        }
        if (j->want_bias) CONV_SIMD_CALL(j->simd, bias_rows, A, lda, g->CO, tl.ncols, bpart);
        for (int gi = 0; gi < G; gi++) {
            if (p->bf16)
                ff_gemm_bf16_1t(0, 1, Mg, Kg, (int)tl.ncols, A + (size_t)gi * Mg * lda, lda, NULL,
                                B + (size_t)gi * Kg * ldb, ldb, 1.0f, part + (size_t)gi * Mg * Kg, Kg,
                                j->gscratch[tid]);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Mg, Kg, (int)tl.ncols, 1.0f,
                            A + (size_t)gi * Mg * lda, (int)lda, B + (size_t)gi * Kg * ldb, (int)ldb,
                            1.0f, part + (size_t)gi * Mg * Kg, Kg);
        }
    }
}

typedef struct {
    float *dw;
    float *const *part;
    int nparts, accumulate;
} reduce_job;

/* dw[e] = (accumulate ? dw[e] : 0) + part_0[e] + part_1[e] + ..., always in that order. */
static void reduce_task(void *arg, long b, long e, int tid) {
    (void)tid;
    reduce_job *r = arg;
    float *restrict dw = r->dw;
    const float *restrict p0 = r->part[0];
    if (r->accumulate)
        for (long k = b; k < e; k++) dw[k] += p0[k];
    else
        memcpy(dw + b, p0 + b, (size_t)(e - b) * sizeof(float));
    for (int t = 1; t < r->nparts; t++) {
        const float *restrict pt = r->part[t];
        for (long k = b; k < e; k++) dw[k] += pt[k];
    }
}

static void run_wgrad(ff_ctx *ctx, const conv_geom *g, int algo, const float *x, const float *dy,
                      float *dw, float *dbias, int accumulate) {
    if (algo >= FF_CONV_ALGO_WINOGRAD_F2 && algo <= FF_CONV_ALGO_WINOGRAD_F6) {
        ff_wino_backward_weight(ctx, g, 2 * (algo - FF_CONV_ALGO_WINOGRAD_F2) + 2, x, dy, dw, dbias,
                                accumulate);
        return;
    }
    conv_job job, *j = &job;
    j->p = make_plan(g, ff_ctx_threads(ctx), CONV_OP_WGRAD, ctx->precision == FF_PRECISION_BF16);
    j->simd = ff_ctx_simd(ctx);
    j->x = x;
    j->dy = dy;
    j->want_bias = dbias != NULL;
    int used = acquire_scratch(ctx, j, CONV_OP_WGRAD);
    ff_parallel_for(ctx, j->p.T, 1, wgrad_task, j);

    reduce_job r = {dw, j->part, used, accumulate};
    long total = (long)g->CO * g->Kg;
    ff_parallel_for(ctx, total, 1L << 14, reduce_task, &r);
    if (dbias) {
        for (int co = 0; co < g->CO; co++) {
            double s = 0.0;
            for (int t = 0; t < used; t++) s += j->bpart[t][co];
            dbias[co] = accumulate ? dbias[co] + (float)s : (float)s;
        }
    }
}

void ff_conv2d_backward_weight(ff_ctx *ctx, const ff_conv2d_desc *d, const float *x,
                               const float *dy, float *dw, float *dbias, int accumulate) {
    check_or_die(d);
    conv_geom g = make_geom(d);
    if (is_depthwise(&g)) {
        ff_conv_dw_backward_weight(ctx, &g, x, dy, dw, dbias, accumulate);
        return;
    }
    int algo = algo_choice(ctx, &g, d, CONV_OP_WGRAD);
    if (algo == FF_CONV_ALGO_MEASURE) algo = measure(ctx, &g, d, CONV_OP_WGRAD, x, dy);
    run_wgrad(ctx, &g, algo, x, dy, dw, dbias, accumulate);
}

/* ---------------------------------------------------------------- input grad ------ */

/* dx for the output rows of one tile (one band of one image, or whole images). */
static void dgrad_tile(conv_job *j, const conv_tile *tl, int tid) {
    const conv_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int G = g->groups, Mg = g->cout_g, Kg = g->Kg;
    float *dxb = j->dx + (size_t)tl->i0 * g->C * g->inHW;
    const float *dyb = j->dy + (size_t)tl->i0 * g->CO * g->HW;
    const float *A;
    long lda;
    if (tl->ni == 1) {
        A = dyb + (long)tl->oh0 * g->OW;
        lda = g->HW;
    } else {
        gather_dy_body(g, dyb, tl->ni, j->tmp[tid]);
        A = j->tmp[tid];
        lda = tl->ncols;
    }
    if (p->pointwise && tl->ni == 1) {
        /* 1x1: the band of dx is the GEMM output itself, no halo. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Kg, (int)tl->ncols, Mg, 1.0f, j->w,
                    Kg, A, (int)lda, 0.0f, dxb + (long)tl->oh0 * g->OW, (int)g->HW);
        return;
    }
    float *col = j->col[tid];
    for (int gi = 0; gi < G; gi++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Kg, (int)tl->ncols, Mg, 1.0f,
                    j->w + (size_t)gi * Mg * Kg, Kg, A + (size_t)gi * Mg * lda, (int)lda, 0.0f,
                    col + (size_t)gi * Kg * tl->ncols, (int)tl->ncols);
    if (tl->oh0 == 0) zero_floats(dxb, (long)tl->ni * g->C * g->inHW);
    CONV_SIMD_CALL(j->simd, col2im, g, col, tl->ni, tl->oh0, tl->oh1, dxb, tl->ncols);
}

static void dgrad_task(void *arg, long t0, long t1, int tid) {
    conv_job *j = arg;
    const conv_plan *p = &j->p;
    for (long t = t0; t < t1; t++) {
        if (p->whole) {
            for (int b = 0; b < p->NB; b++) {
                conv_tile tl = plan_band(p, t, b);
                dgrad_tile(j, &tl, tid);
            }
        } else {
            conv_tile tl = plan_tile(p, t);
            dgrad_tile(j, &tl, tid);
        }
    }
}

void ff_conv2d_backward_input(ff_ctx *ctx, const ff_conv2d_desc *d, const float *w,
                              const float *dy, float *dx) {
    check_or_die(d);
    conv_geom g = make_geom(d);
    if (is_depthwise(&g)) {
        ff_conv_dw_backward_input(ctx, &g, w, dy, dx);
        return;
    }
    conv_job job, *j = &job;
    j->p = make_plan(&g, ff_ctx_threads(ctx), CONV_OP_DGRAD, 0);
    j->simd = ff_ctx_simd(ctx);
    j->w = w;
    j->dy = dy;
    j->dx = dx;
    acquire_scratch(ctx, j, CONV_OP_DGRAD);
    ff_parallel_for(ctx, j->p.T, 1, dgrad_task, j);
}

/* ---------------------------------------------------------------- algorithm ------- */

/* The AUTO rule. Modelled cost of one call in units of one fp32 multiply-add at GEMM
 * speed: im2col runs at ~85 % of the micro-kernel rate (OpenBLAS, im2col traffic); a
 * Winograd call does tiles * a^2 * C * CO GEMM multiply-adds at ~95 % plus transforms
 * costing about WINO_TF_COST multiply-adds per transformed value (scalar stores into the
 * panels), for the input and output (forward) or input and dY (wgrad) side. Calibrated
 * with `repro bench kernels` on Zen 4 (docs/performance.md). Below WINO_MIN_CHANNELS
 * channels the transforms outweigh the multiplications they save, and below
 * WINO_MIN_MACS the fixed cost of a call (weight transform, buffer set-up, four
 * thread-pool phases) does: im2col. In bf16 only F2 qualifies (F4 rounds ~10x worse);
 * F6 is only ever forced or measured. */
#define WINO_TF_COST 24.0
#define WINO_MIN_CHANNELS 32
#define WINO_MIN_MACS (1L << 27)

static double wino_cost(const conv_geom *g, int m) {
    double th = (g->OH + m - 1) / m, tw = (g->OW + m - 1) / m, a2 = (double)(m + 2) * (m + 2);
    double tiles = g->n * th * tw;
    return tiles * a2 * g->C * g->CO / 0.95 + tiles * a2 * (g->C + g->CO) * WINO_TF_COST;
}

static int auto_algo(const conv_geom *g, int bf16) {
    double macs = 9.0 * g->n * g->HW * g->C * g->CO;
    if (!ff_wino_eligible(g) || g->C < WINO_MIN_CHANNELS || g->CO < WINO_MIN_CHANNELS ||
        macs < (double)WINO_MIN_MACS)
        return FF_CONV_ALGO_IM2COL;
    double best = macs / 0.85;
    int algo = FF_CONV_ALGO_IM2COL;
    for (int m = 2; m <= (bf16 ? 2 : 4); m += 2) {
        double c = wino_cost(g, m);
        if (c < best) {
            best = c;
            algo = m == 2 ? FF_CONV_ALGO_WINOGRAD_F2 : FF_CONV_ALGO_WINOGRAD_F4;
        }
    }
    return algo;
}

static int same_desc(const ff_conv2d_desc *a, const ff_conv2d_desc *b) {
    return a->n == b->n && a->c_in == b->c_in && a->h_in == b->h_in && a->w_in == b->w_in &&
           a->c_out == b->c_out && a->k_h == b->k_h && a->k_w == b->k_w &&
           a->stride_h == b->stride_h && a->stride_w == b->stride_w && a->pad_h == b->pad_h &&
           a->pad_w == b->pad_w && a->groups == b->groups;
}

/* The algorithm for a (non-depthwise) call; FF_CONV_ALGO_MEASURE when it must be measured. */
static int algo_choice(ff_ctx *ctx, const conv_geom *g, const ff_conv2d_desc *d, int op) {
    int mode = ctx->conv_algo;
    if (op == CONV_OP_DGRAD || mode == FF_CONV_ALGO_IM2COL || !ff_wino_eligible(g))
        return FF_CONV_ALGO_IM2COL;
    if (mode >= FF_CONV_ALGO_WINOGRAD_F2 && mode <= FF_CONV_ALGO_WINOGRAD_F6) return mode;
    if (mode == FF_CONV_ALGO_MEASURE) {
        for (int i = 0; i < ctx->n_conv_choices; i++) {
            const struct ff_conv_choice *c = &ctx->conv_choices[i];
            if (c->op == op && c->precision == ctx->precision && c->simd == ctx->simd && same_desc(&c->d, d))
                return c->algo;
        }
        return FF_CONV_ALGO_MEASURE;
    }
    return auto_algo(g, ctx->precision == FF_PRECISION_BF16);
}

int ff_conv2d_algo(ff_ctx *ctx, const ff_conv2d_desc *d, int op) {
    if (ff_conv2d_check(d)) return FF_CONV_ALGO_IM2COL;
    conv_geom g = make_geom(d);
    if (is_depthwise(&g)) return FF_CONV_ALGO_IM2COL;
    int algo = algo_choice(ctx, &g, d, op == 1 ? CONV_OP_WGRAD : CONV_OP_FWD);
    return algo == FF_CONV_ALGO_MEASURE ? auto_algo(&g, ctx->precision == FF_PRECISION_BF16) : algo;
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Times the eligible algorithms on the call's own inputs (best of two runs each, outputs
 * to temporary buffers, so accumulate and the caller's output are untouched) and records
 * the fastest for this descriptor. */
static int measure(ff_ctx *ctx, const conv_geom *g, const ff_conv2d_desc *d, int op,
                   const float *x, const float *w_or_dy) {
    size_t out = op == CONV_OP_FWD ? (size_t)g->n * g->CO * g->HW : (size_t)g->CO * g->Kg;
    float *tmp = malloc(out * sizeof(float) + (size_t)g->CO * sizeof(float));
    if (!tmp) {
        fprintf(stderr, "ffcore: conv2d: out of memory while measuring algorithms\n");
        abort();
    }
    int best = FF_CONV_ALGO_IM2COL;
    double best_t = 1e300;
    /* The candidates whose rounding the AUTO rule would accept (F6, and F4 in bf16, only
     * when forced). */
    const int last = ctx->precision == FF_PRECISION_BF16 ? FF_CONV_ALGO_WINOGRAD_F2 : FF_CONV_ALGO_WINOGRAD_F4;
    for (int algo = FF_CONV_ALGO_IM2COL; algo <= last; algo++) {
        if (algo != FF_CONV_ALGO_IM2COL && !ff_wino_eligible(g)) break;
        double t = 1e300;
        for (int rep = 0; rep < 2; rep++) {
            double t0 = seconds();
            if (op == CONV_OP_FWD)
                run_forward(ctx, g, algo, x, w_or_dy, NULL, tmp, 0);
            else
                run_wgrad(ctx, g, algo, x, w_or_dy, tmp, tmp + out, 0);
            double dt = seconds() - t0;
            if (dt < t) t = dt;
        }
        if (t < best_t) {
            best_t = t;
            best = algo;
        }
    }
    free(tmp);
    int slot = ctx->n_conv_choices < 64 ? ctx->n_conv_choices++ : ctx->next_conv_choice++ % 64;
    ctx->conv_choices[slot] = (struct ff_conv_choice){*d, op, ctx->precision, ctx->simd, best};
    return best;
}
