/* conv_winograd.c -- Winograd F(m x m, 3 x 3) convolution (m = 2, 4, 6) for 3x3 kernels with
 * stride 1, padding 1 and one group: the forward pass (bias, fused ReLU) and the weight
 * gradient, behind ff_conv2d_forward / ff_conv2d_backward_weight (conv.c picks the path).
 *
 * Tiles: the output is cut into m x m tiles, th = ceil(OH/m) by tw = ceil(OW/m) per image,
 * numbered t = (img*th + ti)*tw + tj; tile (ti, tj) reads the a x a input patch (a = m+2)
 * starting at row m*ti - 1, column m*tj - 1 (zero outside the image). With the transforms
 * of the Winograd/Toom-Cook construction on the points 0, +-1 (m=2), 0, +-1, +-2 (m=4) and
 * 0, +-1, +-2, +-1/2 (m=6), all with the point at infinity:
 *   forward:  Y_tile = A^T [ sum_ci (G w G^T) (.) (B^T d B) ] A
 *   wgrad:    dW     = G^T [ sum_tiles (A dY A^T) (.) (B^T d B) ] G
 * so each of the a^2 transformed positions xi is one GEMM over channels (forward:
 * M_xi (tiles x CO) = V_xi (tiles x C) U_xi (C x CO)) or over tiles (wgrad:
 * dU_xi (C x CO) += V_xi^T (C x tiles) DY_xi (tiles x CO)), run by the packed micro-kernels
 * of gemm_kernels.c in fp32 or bf16. Multiplications per output: 16/4 = 4 (F2), 36/16 =
 * 2.25 (F4), 64/36 = 1.78 (F6) against 9 for the direct convolution.
 *
 * fp32 error (measured against a double direct convolution, unit-variance inputs, weights
 * of std 1/sqrt(9C), C = 256; max |err| / max |y|): direct/im2col ~1e-6, F2 1.5e-6, F4 1.1e-5,
 * F6 2e-5 on random data and up to ~1e-4 on adversarial ones (the F6 points 1/2 and 2
 * scale the input by 21/4 and the output by 32): F4 is the default for large maps, F6 is
 * never picked automatically. In bf16 the GEMM inputs carry 8 significant bits (relative
 * rounding 2^-9 = 2e-3) and the transforms amplify that: F2 ~4e-3, F4 ~1e-2 relative to
 * max |y|; see docs/performance.md.
 *
 * Work is done in blocks of Tb tiles (the block size depends only on the shape, so results
 * do not depend on the thread count), each in phases over the thread pool:
 *   1. transforms: the input (and, for wgrad, dY) tiles of the block are moved to 16-channel
 *      vectors (one (image, tile row, channel group) item at a time, via a small padded
 *      buffer), transformed and stored straight into GEMM panel layout (gemm_internal.h);
 *   2. GEMMs: one item per (xi, group of output-channel panels);
 *   3. forward only: the output transform, + bias, ReLU, into y (per tile).
 * Weights are transformed once per call (U, fp32 or bf16 panels); the weight gradient sums
 * dU over all blocks in fixed order and transforms it back at the end.
 *
 * Workspace per call (ff_conv2d_workspace_bytes includes it):
 *   forward  U: a^2 * COn * Kc words (COn = CO rounded up to NR, Kc = C, or ceil(C/2) bf16
 *            pairs); block: a^2 * Tb * (Kc + COn) words, Tb chosen so this is at most
 *            FF_WINO_BLOCK_BYTES (at least one micro-kernel panel of tiles);
 *   wgrad    dU: a^2 * Cm * COn floats (Cm = C rounded up to MR);
 *            block: a^2 * Kt * (Cm + COn) words (Kt = Tb, or Tb/2 pairs), same cap;
 *   both     per thread: a padded (a x (tw*m + 2) x 16) float buffer. */
#include "conv_internal.h"
#include "ff_simd.h"
#include "gemm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The transforms round the same way on every SIMD level (no fused multiply-adds). */
#pragma STDC FP_CONTRACT OFF

/* ---------------------------------------------------------------- matrices ------- */

#define F1_2 0.5f
static const float BT_2[16] = {1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 1, 0, 0, 1, 0, -1};
static const float G_2[12] = {1, 0, 0, F1_2, F1_2, F1_2, F1_2, -F1_2, F1_2, 0, 0, 1};
static const float AT_2[8] = {1, 1, 1, 0, 0, 1, -1, -1};

static const float BT_4[36] = {
    4, 0, -5, 0, 1, 0,  0, -4, -4, 1, 1, 0,  0, 4, -4, -1, 1, 0,
    0, -2, -1, 2, 1, 0, 0, 2, -1, -2, 1, 0,  0, 4, 0, -5, 0, 1,
};
static const float G_4[18] = {
    1.0f / 4, 0, 0,
    -1.0f / 6, -1.0f / 6, -1.0f / 6,
    -1.0f / 6, 1.0f / 6, -1.0f / 6,
    1.0f / 24, 1.0f / 12, 1.0f / 6,
    1.0f / 24, -1.0f / 12, 1.0f / 6,
    0, 0, 1,
};
static const float AT_4[24] = {
    1, 1, 1, 1, 1, 0,  0, 1, -1, 2, -2, 0,  0, 1, 1, 4, 4, 0,  0, 1, -1, 8, -8, 1,
};

static const float BT_6[64] = {
    1, 0, -21.0f / 4, 0, 21.0f / 4, 0, -1, 0,
    0, 1, 1, -17.0f / 4, -17.0f / 4, 1, 1, 0,
    0, -1, 1, 17.0f / 4, -17.0f / 4, -1, 1, 0,
    0, 0.5f, 0.25f, -2.5f, -1.25f, 2, 1, 0,
    0, -0.5f, 0.25f, 2.5f, -1.25f, -2, 1, 0,
    0, 2, 4, -2.5f, -5, 0.5f, 1, 0,
    0, -2, 4, 2.5f, -5, -0.5f, 1, 0,
    0, -1, 0, 21.0f / 4, 0, -21.0f / 4, 0, 1,
};
static const float G_6[24] = {
    1, 0, 0,
    -2.0f / 9, -2.0f / 9, -2.0f / 9,
    -2.0f / 9, 2.0f / 9, -2.0f / 9,
    1.0f / 90, 1.0f / 45, 2.0f / 45,
    1.0f / 90, -1.0f / 45, 2.0f / 45,
    32.0f / 45, 16.0f / 45, 8.0f / 45,
    32.0f / 45, -16.0f / 45, 8.0f / 45,
    0, 0, 1,
};
static const float AT_6[48] = {
    1, 1, 1, 1, 1, 1, 1, 0,
    0, 1, -1, 2, -2, 0.5f, -0.5f, 0,
    0, 1, 1, 4, 4, 0.25f, 0.25f, 0,
    0, 1, -1, 8, -8, 0.125f, -0.125f, 0,
    0, 1, 1, 16, 16, 1.0f / 16, 1.0f / 16, 0,
    0, 1, -1, 32, -32, 1.0f / 32, -1.0f / 32, 1,
};

/* out[i*so] = sum_k Mt[i*cols + k] * in[k*si] for i < rows. Called with constant tables and
 * sizes, so after inlining the zero terms vanish and +-1 become adds: the same arithmetic
 * as hand-written transforms, in a fixed order. tr = 1 applies the transpose of Mt
 * (stored rows x cols) instead: out[k] = sum_i Mt[i*cols + k] in[i]. */
AI void mat_vec(const float *Mt, int rows, int cols, int tr, const vf *in, long si, vf *out,
                long so) {
    const int orows = tr ? cols : rows, ocols = tr ? rows : cols;
    for (int i = 0; i < orows; i++) {
        vf acc = vsplat(0.0f);
        int first = 1;
        for (int k = 0; k < ocols; k++) {
            const float c = tr ? Mt[k * cols + i] : Mt[i * cols + k];
            if (c == 0.0f) continue;
            vf t = c == 1.0f ? in[k * si] : c == -1.0f ? -in[k * si] : in[k * si] * c;
            acc = first ? t : acc + t;
            first = 0;
        }
        out[i * so] = acc;
    }
}

/* Y (ro x ro) = L X L^T for X (ri x ri), with L = Mt (or Mt^T when tr); element (r, c) of X
 * at X[r*xr + c*xc], of Y at Y[r*yr + c*yc] (transforms read and write their operands
 * where they lie). */
AI void mat_2d_s(const float *Mt, int rows, int cols, int tr, const vf *X, long xr, long xc, vf *Y,
                 long yr, long yc) {
    const int ri = tr ? rows : cols, ro = tr ? cols : rows;
    vf tmp[8 * 8];
    for (int c = 0; c < ri; c++) mat_vec(Mt, rows, cols, tr, X + c * xc, xr, tmp + c, ri);
    for (int r = 0; r < ro; r++) mat_vec(Mt, rows, cols, tr, tmp + r * ri, 1, Y + r * yr, yc);
}
AI void mat_2d(const float *Mt, int rows, int cols, int tr, const vf *X, vf *Y) {
    const int ri = tr ? rows : cols, ro = tr ? cols : rows;
    mat_2d_s(Mt, rows, cols, tr, X, ri, 1, Y, ro, 1);
}

/* 16 x 16 transpose of r[0..15] (r[i][j] <-> r[j][i]) by the butterfly of block swaps
 * (8, 4, 2, 1): 64 two-source permutes (vpermt2ps on AVX-512). */
#define T_LO8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define T_HI8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define T_LO4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define T_HI4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define T_LO2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define T_HI2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define T_LO1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define T_HI1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define TP(i, j, S)                                                                         \
    {                                                                                       \
        vf a_ = r[i], b_ = r[j];                                                            \
        r[i] = __builtin_shufflevector(a_, b_, T_LO##S);                                    \
        r[j] = __builtin_shufflevector(a_, b_, T_HI##S);                                    \
    }
#define TP2(i, S) TP(i, i + S, S) TP(i + 1, i + 1 + S, S)
AI void transpose16(vf *r) {
    TP2(0, 8) TP2(2, 8) TP2(4, 8) TP2(6, 8)
    TP2(0, 4) TP2(2, 4) TP2(8, 4) TP2(10, 4)
    TP(0, 2, 2) TP(1, 3, 2) TP(4, 6, 2) TP(5, 7, 2) TP(8, 10, 2) TP(9, 11, 2) TP(12, 14, 2) TP(13, 15, 2)
    TP(0, 1, 1) TP(2, 3, 1) TP(4, 5, 1) TP(6, 7, 1) TP(8, 9, 1) TP(10, 11, 1) TP(12, 13, 1) TP(14, 15, 1)
}

typedef uint32_t vu __attribute__((vector_size(64)));

/* bf16 pairs of two vectors, lane by lane: lo (low half) and hi (high half), each rounded
 * to nearest even as ff_bf16_round (NaN stays a quiet NaN). */
AI vu bf16_half(vf x) {
    vu u = (vu)x;
    vu r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    vu nan = (vu)((u & 0x7fffffffu) > 0x7f800000u);
    return (r & ~nan) | (((u >> 16) | 0x40u) & nan);
}
AI vi bf16_words(vf lo, vf hi) { return (vi)((bf16_half(lo) & 0xffffu) | (bf16_half(hi) << 16)); }

/* The first n <= 16 lanes of v to dst, or of src into a zeroed vector, as a few
 * fixed-size moves (a variable-length memcpy would be a library call per store). */
AI void put_n(void *dst, vf v, int n) {
    if (n == 16) { memcpy(dst, &v, 64); return; }
    float t[16];
    memcpy(t, &v, 64);
    char *d = dst;
    const char *q = (const char *)t;
    if (n & 8) { memcpy(d, q, 32); d += 32; q += 32; }
    if (n & 4) { memcpy(d, q, 16); d += 16; q += 16; }
    if (n & 2) { memcpy(d, q, 8); d += 8; q += 8; }
    if (n & 1) memcpy(d, q, 4);
}
AI vf get_n(const float *src, int n) {
    if (n == 16) return vld(src);
    float t[16] = {0};
    char *d = (char *)t;
    const char *q = (const char *)src;
    if (n & 8) { memcpy(d, q, 32); d += 32; q += 32; }
    if (n & 4) { memcpy(d, q, 16); d += 16; q += 16; }
    if (n & 2) { memcpy(d, q, 8); d += 8; q += 8; }
    if (n & 1) memcpy(d, q, 4);
    vf v;
    memcpy(&v, t, 64);
    return v;
}
/* Lanes [l0, l0 + n) of v to dst. */
AI void put_lanes(void *dst, vf v, int l0, int n) {
    float t[32];
    memcpy(t, &v, 64);
    const char *q = (const char *)(t + l0);
    char *d = dst;
    if (n & 16) { memcpy(d, q, 64); return; }
    if (n & 8) { memcpy(d, q, 32); d += 32; q += 32; }
    if (n & 4) { memcpy(d, q, 16); d += 16; q += 16; }
    if (n & 2) { memcpy(d, q, 8); d += 8; q += 8; }
    if (n & 1) memcpy(d, q, 4);
}

/* ---------------------------------------------------------------- plan ----------- */

typedef struct {
    conv_geom g;
    int m, a, aa;
    int th, tw;
    long T, Tb, nblocks;
    ff_ukr u;
    int bf16;
    int ncg, ncog;          /* 16-channel groups of C and of CO */
    long COn, Cm;           /* CO rounded up to NR; C rounded up to MR */
    long Kc;                /* forward GEMM depth in words: C, or ceil(C/2) bf16 pairs */
    long Kt;                /* wgrad GEMM depth in words: Tb, or Tb/2 bf16 pairs */
    int prows;              /* most tile rows one block touches */
    int pw;                 /* width of a padded input row, in 16-channel vectors */
    size_t u_words, v_words, m_words, px_floats, pd_floats;
} wino_plan;

static long rup(long x, long m) { return (x + m - 1) / m * m; }

int ff_wino_eligible(const conv_geom *g) {
    return g->KH == 3 && g->KW == 3 && g->SH == 1 && g->SW == 1 && g->PH == 1 && g->PW == 1 &&
           g->groups == 1;
}

static wino_plan make_wplan(const ff_ctx *ctx, const conv_geom *g, int m, int op) {
    wino_plan p;
    memset(&p, 0, sizeof p);
    p.g = *g;
    p.m = m;
    p.a = m + 2;
    p.aa = p.a * p.a;
    p.th = (g->OH + m - 1) / m;
    p.tw = (g->OW + m - 1) / m;
    p.T = (long)g->n * p.th * p.tw;
    p.u = ff_ukr_pick(ctx);
    p.bf16 = p.u.bf16 != NULL;
    const long mr = p.u.mr, nr = p.u.nr;
    p.ncg = (g->C + 15) / 16;
    p.ncog = (g->CO + 15) / 16;
    p.COn = rup(g->CO, nr);
    p.Cm = rup(g->C, mr);
    p.Kc = p.bf16 ? (g->C + 1) / 2 : g->C;
    p.pw = p.tw * m + 2;
    /* Words per tile of the GEMM operands and output. The padded 16-channel copies of the
     * input (a rows of m + 2/tw columns per tile) and of dY (m x m) are never larger than
     * the operands they feed ((m + 2/tw) / a <= 1), so a block stays within twice the cap.
     * A larger block means fewer passes over dU (wgrad) and U (forward). */
    double per_tile = op == CONV_OP_FWD ? (double)p.aa * (p.Kc + p.COn)
                                        : (double)p.aa * (p.Cm + p.COn) / (p.bf16 ? 2 : 1);
    long tbmax = (long)((double)FF_WINO_BLOCK_BYTES / 4 / per_tile) / mr * mr;
    if (tbmax < mr) tbmax = mr;
    p.nblocks = (p.T + tbmax - 1) / tbmax;
    p.Tb = rup((p.T + p.nblocks - 1) / p.nblocks, mr); /* mr is even: bf16 tile pairs fit */
    p.Kt = p.bf16 ? p.Tb / 2 : p.Tb;
    p.prows = (int)ff_min_l((p.Tb - 1) / p.tw + 2, (long)g->n * p.th);
    p.px_floats = (size_t)p.prows * p.ncg * p.a * p.pw * 16;
    if (op == CONV_OP_FWD) {
        p.u_words = (size_t)p.aa * p.COn * p.Kc;
        p.v_words = (size_t)p.aa * p.Tb * p.Kc;
        p.m_words = (size_t)p.aa * p.Tb * p.COn;
    } else {
        p.u_words = (size_t)p.aa * p.Cm * p.COn;
        p.v_words = (size_t)p.aa * p.Kt * p.Cm;
        p.m_words = (size_t)p.aa * p.Kt * p.COn;
        p.pd_floats = (size_t)p.prows * p.ncog * m * (p.tw * m) * 16;
    }
    if (op == CONV_OP_FWD) /* the output transform's row buffers, one per thread */
        p.pd_floats = (size_t)ff_ctx_threads(ctx) * m * (p.tw * m + 16) * 16;
    return p;
}

void ff_wino_scratch_floats(const ff_ctx *ctx, const conv_geom *g, int m, int op,
                            size_t (*slots)[FF_SCRATCH_SLOTS]) {
    wino_plan p = make_wplan(ctx, g, m, op);
    slots[0][0] = p.v_words;
    slots[0][1] = p.m_words;
    slots[0][2] = p.u_words;
    slots[0][3] = p.px_floats;
    slots[0][4] = p.pd_floats;
}

typedef struct {
    wino_plan p;
    int simd, relu, accumulate;
    const float *x, *w, *bias, *dy;
    float *y, *dw, *dbias;
    uint32_t *U, *V, *Mb; /* U (or dU), V, M (or DY) */
    vf *px, *pd;          /* padded 16-channel copies of the block's input and dY rows */
    long t0, nt;          /* current block */
    long r0;              /* first tile row of the block */
} wino_job;

static const float *bt_of(int m) { return m == 2 ? BT_2 : m == 4 ? BT_4 : BT_6; }
static const float *g_of(int m) { return m == 2 ? G_2 : m == 4 ? G_4 : G_6; }
static const float *at_of(int m) { return m == 2 ? AT_2 : m == 4 ? AT_4 : AT_6; }

#define WINO_VARIANTS(name)                                                                     \
    AI void name##_any(void *a, long b, long e, int t) {                                        \
        int m = ((wino_job *)a)->p.m;                                                           \
        if (m == 2) name##_body(a, b, e, t, 2);                                                 \
        else if (m == 4) name##_body(a, b, e, t, 4);                                            \
        else name##_body(a, b, e, t, 6);                                                        \
    }                                                                                           \
    static void name##_scalar(void *a, long b, long e, int t) { name##_any(a, b, e, t); }       \
    FF_TARGET_AVX2 static void name##_avx2(void *a, long b, long e, int t) {                    \
        name##_any(a, b, e, t);                                                                 \
    }                                                                                           \
    FF_TARGET_AVX512 static void name##_avx512(void *a, long b, long e, int t) {                \
        name##_any(a, b, e, t);                                                                 \
    }                                                                                           \
    static const ff_task_fn name##_fns[3] = {name##_scalar, name##_avx2, name##_avx512};

/* 16 rows of `len` <= 16 floats (row l at src + l*stride, rows >= nl are zero) transposed
 * into len vectors out[0..len) (vector j holds element j of every row). */
AI void gather16(const float *src, long stride, int nl, int len, vf *out) {
    vf r[16];
    for (int l = 0; l < 16; l++)
        r[l] = l >= nl ? vsplat(0.0f) : get_n(src + l * stride, len);
    transpose16(r);
    for (int j = 0; j < len; j++) out[j] = r[j];
}

/* ---------------------------------------------------------------- weights -------- */

/* U[xi] for 16 output channels at a time (lanes = co): the 9*C weights of each output
 * channel are read in runs of 16 and transposed, so 16 input channels' 3x3 kernels arrive
 * as vectors over co. fp32 element (co, ci) of xi: U + xi*COn*Kc + (co/nr)*Kc*nr + ci*nr +
 * co%nr; bf16 pairs ci. */
AI void wtf_body(void *arg, long b, long e, int tid, int m) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2, nr = p->u.nr;
    const float *Gm = g_of(m);
    const long K9 = 9L * g->C;
    for (long cg = b; cg < e; cg++) {
        const int co0 = (int)cg * 16, nl = ff_min_i(16, g->CO - co0);
        for (int ci0 = 0; ci0 < g->C; ci0 += 16) {
            const int nci = ff_min_i(16, g->C - ci0);
            vf k[144 + 16];
            for (long q0 = 0; q0 < 9L * nci; q0 += 16)
                gather16(j->w + (long)co0 * K9 + 9L * ci0 + q0, K9, nl, (int)ff_min_l(16, 9L * nci - q0), k + q0);
            for (int ci = 0; ci < nci; ci += p->bf16 ? 2 : 1) {
                vf u2[2][64];
                for (int h = 0; h < (p->bf16 ? 2 : 1); h++) {
                    if (ci + h < nci) {
                        mat_2d(Gm, a, 3, 0, k + 9 * (ci + h), u2[h]);
                    } else {
                        for (int xi = 0; xi < a * a; xi++) u2[h][xi] = vsplat(0.0f);
                    }
                }
                const int c = ci0 + ci;
                for (int xi = 0; xi < a * a; xi++) {
                    uint32_t *row = j->U + (size_t)xi * p->COn * p->Kc + (size_t)(p->bf16 ? c / 2 : c) * nr;
                    if (nr % 16 == 0) {
                        uint32_t *dst = row + (size_t)(co0 / nr) * p->Kc * nr + co0 % nr;
                        put_n(dst, p->bf16 ? (vf)bf16_words(u2[0][xi], u2[1][xi]) : u2[0][xi], nl);
                    } else {
                        for (int l = 0; l < nl; l++)
                            ((float *)row)[(size_t)((co0 + l) / nr) * p->Kc * nr + (co0 + l) % nr] = u2[0][xi][l];
                    }
                }
            }
        }
    }
}
WINO_VARIANTS(wtf)

/* ---------------------------------------------------------------- input tiles ---- */

/* Tile row R = r0 + it / ncg of the block, 16-channel group it % ncg: its a input rows
 * (columns -1 .. m*tw) as 16-channel vectors, zero outside the image, at
 * px + ((R - r0)*ncg + cg) * a * pw. */
AI void ipad_body(void *arg, long b, long e, int tid, int m) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2, pw = p->pw;
    for (long it = b; it < e; it++) {
        const long R = j->r0 + it / p->ncg;
        const int cg = (int)(it % p->ncg), c0 = cg * 16, nl = ff_min_i(16, g->C - c0);
        const int img = (int)(R / p->th), ti = (int)(R % p->th);
        const float *xb = j->x + ((long)img * g->C + c0) * g->inHW;
        vf *dst = j->px + ((R - j->r0) * p->ncg + cg) * a * pw;
        for (int r = 0; r < a; r++, dst += pw) {
            const int ih = m * ti - 1 + r;
            if (ih < 0 || ih >= g->H) {
                for (int c = 0; c < pw; c++) dst[c] = vsplat(0.0f);
                continue;
            }
            /* column iw of the image at dst[1 + iw]; the padding columns are zero */
            dst[0] = vsplat(0.0f);
            for (int c = 1 + g->W; c < pw; c++) dst[c] = vsplat(0.0f);
            for (int iw = 0; iw < g->W; iw += 16)
                gather16(xb + (long)ih * g->W + iw, g->inHW, nl, ff_min_i(16, g->W - iw), dst + 1 + iw);
        }
    }
}
WINO_VARIANTS(ipad)

/* Item = (panel of mr tiles of the block, 16-channel group). Each tile's patch comes from
 * the padded rows, is transformed (B^T d B), and stored in panel layout:
 *  forward: the A operand, rows = tiles, depth = channels: the 16 channel vectors of the
 *           panel's tiles are transposed so each channel's mr tile values are one run;
 *  wgrad:   the A operand over tiles, rows = channels: (ci, tile k) at
 *           (ci/mr)*Kt*mr + k*mr + ci%mr, runs of channels per tile. */
AI void itf_body(void *arg, long b, long e, int tid, int m) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2, aa = a * a, mr = p->u.mr, pw = p->pw;
    const int fwd = j->y != NULL;
    const float *BT = bt_of(m);
    vf st[64 * 16];
    for (long it = b; it < e; it++) {
        const long panel = it / p->ncg;
        const int cg = (int)(it % p->ncg), c0 = cg * 16, nl = ff_min_i(16, g->C - c0);
        for (int i = 0; i < 16; i++) {
            const long lt = panel * mr + i;
            if (i >= mr || lt >= j->nt) {
                for (int xi = 0; xi < aa; xi++) st[xi * 16 + i] = vsplat(0.0f);
                continue;
            }
            const long t = j->t0 + lt, R = t / p->tw;
            const int tj = (int)(t % p->tw);
            const vf *src = j->px + ((R - j->r0) * p->ncg + cg) * a * pw + m * tj;
            mat_2d_s(BT, a, a, 0, src, pw, 1, st + i, (long)a * 16, 16);
        }
        const int ntile = (int)ff_min_l(mr, j->nt - panel * mr);
        if (fwd) {
            for (int xi = 0; xi < aa; xi++) {
                vf *r = st + xi * 16;
                transpose16(r); /* r[k] = channel c0 + k over the panel's tiles */
                uint32_t *base = j->V + (size_t)xi * p->Tb * p->Kc + (size_t)panel * p->Kc * mr;
                if (p->bf16) {
                    for (int k = 0; k < nl; k += 2)
                        put_n(base + (size_t)((c0 + k) / 2) * mr, (vf)bf16_words(r[k], r[k + 1]), mr);
                } else {
                    for (int k = 0; k < nl; k++) put_n(base + (size_t)(c0 + k) * mr, r[k], mr);
                }
            }
        } else {
            for (int i = 0; i < ntile; i += p->bf16 ? 2 : 1) {
                const long lt = panel * mr + i;
                const size_t k_at = (size_t)(p->bf16 ? lt / 2 : lt) * mr;
                for (int xi = 0; xi < aa; xi++) {
                    uint32_t *base = j->V + (size_t)xi * p->Kt * p->Cm + k_at;
                    const vf vals = p->bf16 ? (vf)bf16_words(st[xi * 16 + i], st[xi * 16 + i + 1]) : st[xi * 16 + i];
                    for (int l = 0; l < nl;) {
                        const int ci = c0 + l, run = ff_min_i(nl - l, mr - ci % mr);
                        put_lanes(base + (size_t)(ci / mr) * p->Kt * mr + ci % mr, vals, l, run);
                        l += run;
                    }
                }
            }
        }
    }
}
WINO_VARIANTS(itf)

/* Tile row R = r0 + it / ncog, group it % ncog of dY: its m output rows (columns
 * 0 .. m*tw), zero past OH/OW, at pd + ((R - r0)*ncog + cg) * m * (m*tw). */
AI void dpad_body(void *arg, long b, long e, int tid, int m) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int width = m * p->tw;
    for (long it = b; it < e; it++) {
        const long R = j->r0 + it / p->ncog;
        const int cg = (int)(it % p->ncog), c0 = cg * 16, nl = ff_min_i(16, g->CO - c0);
        const int img = (int)(R / p->th), ti = (int)(R % p->th);
        const float *db = j->dy + ((long)img * g->CO + c0) * g->HW;
        vf *dst = j->pd + ((R - j->r0) * p->ncog + cg) * m * width;
        for (int r = 0; r < m; r++, dst += width) {
            const int oh = m * ti + r;
            if (oh >= g->OH) {
                for (int c = 0; c < width; c++) dst[c] = vsplat(0.0f);
                continue;
            }
            for (int c = g->OW; c < width; c++) dst[c] = vsplat(0.0f);
            for (int c = 0; c < g->OW; c += 16)
                gather16(db + (long)oh * g->OW + c, g->HW, nl, ff_min_i(16, g->OW - c), dst + c);
        }
    }
}
WINO_VARIANTS(dpad)

/* dY tiles (wgrad), item = (panel of mr tiles, 16-channel group): A dY A^T stored as the B
 * operand over tiles: (tile k, lane co) at (co/nr)*Kt*nr + k*nr + co%nr (bf16: tile pairs). */
AI void dtf_body(void *arg, long b, long e, int tid, int m) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2, aa = a * a, mr = p->u.mr, nr = p->u.nr, width = m * p->tw;
    const float *AT = at_of(m);
    for (long it = b; it < e; it++) {
        const long panel = it / p->ncog;
        const int cg = (int)(it % p->ncog), c0 = cg * 16, nl = ff_min_i(16, g->CO - c0);
        const int ntile = (int)ff_min_l(mr, j->nt - panel * mr);
        for (int i = 0; i < ntile; i += p->bf16 ? 2 : 1) {
            vf v[2][64];
            for (int h = 0; h < (p->bf16 ? 2 : 1); h++) {
                const long lt = panel * mr + i + h;
                if (i + h >= ntile) {
                    for (int xi = 0; xi < aa; xi++) v[h][xi] = vsplat(0.0f);
                    continue;
                }
                const long t = j->t0 + lt, R = t / p->tw;
                const int tj = (int)(t % p->tw);
                const vf *src = j->pd + ((R - j->r0) * p->ncog + cg) * m * width + m * tj;
                mat_2d_s(AT, m, a, 1, src, width, 1, v[h], a, 1);
            }
            const long lt = panel * mr + i;
            const size_t at = (size_t)(c0 / nr) * p->Kt * nr + (size_t)(p->bf16 ? lt / 2 : lt) * nr + c0 % nr;
            for (int xi = 0; xi < aa; xi++) {
                uint32_t *base = j->Mb + (size_t)xi * p->Kt * p->COn + at;
                if (p->bf16) {
                    put_n(base, (vf)bf16_words(v[0][xi], v[1][xi]), nl);
                } else if (nr % 16 == 0) {
                    put_n(base, v[0][xi], nl);
                } else {
                    /* lanes may cross into the next panel (baseline level: nr = 8) */
                    float *f = (float *)j->Mb + (size_t)xi * p->Kt * p->COn + (size_t)lt * nr;
                    for (int l = 0; l < nl; l++) f[(size_t)((c0 + l) / nr) * p->Kt * nr + (c0 + l) % nr] = v[0][xi][l];
                }
            }
        }
    }
}
WINO_VARIANTS(dtf)

/* ---------------------------------------------------------------- GEMMs ---------- */

#define WINO_PANELS_PER_ITEM 4

/* Forward: item = (xi, group of WINO_PANELS_PER_ITEM co panels): M_xi rows = tiles. */
static void fgemm_task(void *arg, long b, long e, int tid) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const int mr = p->u.mr, nr = p->u.nr;
    const long ncp = p->COn / nr, groups = (ncp + WINO_PANELS_PER_ITEM - 1) / WINO_PANELS_PER_ITEM;
    const long tpanels = (j->nt + mr - 1) / mr;
    for (long it = b; it < e; it++) {
        const long xi = it / groups, grp = it % groups;
        const uint32_t *U = j->U + (size_t)xi * p->COn * p->Kc;
        const uint32_t *V = j->V + (size_t)xi * p->Tb * p->Kc;
        float *M = (float *)j->Mb + (size_t)xi * p->Tb * p->COn;
        for (long cp = grp * WINO_PANELS_PER_ITEM; cp < ff_min_l(ncp, (grp + 1) * WINO_PANELS_PER_ITEM); cp++)
            for (long tp = 0; tp < tpanels; tp++) {
                const uint32_t *A = V + (size_t)tp * p->Kc * mr, *B = U + (size_t)cp * p->Kc * nr;
                float *C = M + (size_t)tp * mr * p->COn + cp * nr;
                if (p->bf16)
                    p->u.bf16(p->Kc, A, B, C, p->COn, 0);
                else
                    p->u.f32(p->Kc, (const float *)A, (const float *)B, C, p->COn, 0);
            }
    }
}

/* Wgrad: item = (xi, group of co panels): dU_xi (Cm x COn) += V_xi^T DY_xi over the block. */
static void wgemm_task(void *arg, long b, long e, int tid) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const int mr = p->u.mr, nr = p->u.nr;
    const long ncp = p->COn / nr, groups = (ncp + WINO_PANELS_PER_ITEM - 1) / WINO_PANELS_PER_ITEM;
    const long rows = p->Cm / mr;
    const int acc = j->t0 > 0;
    for (long it = b; it < e; it++) {
        const long xi = it / groups, grp = it % groups;
        const uint32_t *DY = j->Mb + (size_t)xi * p->Kt * p->COn;
        const uint32_t *V = j->V + (size_t)xi * p->Kt * p->Cm;
        float *dU = (float *)j->U + (size_t)xi * p->Cm * p->COn;
        for (long q = grp * WINO_PANELS_PER_ITEM; q < ff_min_l(ncp, (grp + 1) * WINO_PANELS_PER_ITEM); q++)
            for (long r = 0; r < rows; r++) {
                const uint32_t *A = V + (size_t)r * p->Kt * mr, *B = DY + (size_t)q * p->Kt * nr;
                float *C = dU + (size_t)r * mr * p->COn + q * nr;
                if (p->bf16)
                    p->u.bf16(p->Kt, A, B, C, p->COn, acc);
                else
                    p->u.f32(p->Kt, (const float *)A, (const float *)B, C, p->COn, acc);
            }
    }
}

/* ---------------------------------------------------------------- outputs -------- */

/* Forward output transform, item = a tile row of the block: for every 16-channel group,
 * each tile's A^T M A + bias (ReLU) goes to a row buffer of channel vectors, and every 16
 * output columns are transposed so each channel's rows leave as 64-byte runs. */
AI void otf_body(void *arg, long b, long e, int tid, int m) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2;
    const float *AT = at_of(m);
    const float *M = (const float *)j->Mb;
    const long xs = (long)p->Tb * p->COn / 16;
    vf *row = (vf *)j->pd; /* this call's row buffers: m x (m*tw) vectors per thread */
    row += (long)tid * m * (m * p->tw + 16);
    for (long it = b; it < e; it++) {
        const long R = j->r0 + it, rt0 = R * p->tw;
        const int img = (int)(R / p->th), ti = (int)(R % p->th);
        const int tj0 = (int)ff_max_l(0, j->t0 - rt0), tj1 = (int)ff_min_l(p->tw, j->t0 + j->nt - rt0);
        const int rows = ff_min_i(m, g->OH - m * ti);
        const int col0 = m * tj0, col1 = ff_min_i(m * tj1, g->OW), width = m * (tj1 - tj0);
        for (int cg = 0; cg < p->ncog; cg++) {
            const int c0 = cg * 16, nl = ff_min_i(16, g->CO - c0);
            const vf bias = j->bias ? get_n(j->bias + c0, nl) : vsplat(0.0f);
            for (int tj = tj0; tj < tj1; tj++) {
                const long lt = rt0 + tj - j->t0;
                /* M rows are 64-byte aligned 16-channel runs (16 | nr above the baseline
                 * level; there the lanes past COn read the next row and are never stored). */
                const vf *src = (const vf *)(M + (size_t)lt * p->COn + c0);
                vf y[36];
                mat_2d_s(AT, m, a, 0, src, a * xs, xs, y, m, 1);
                for (int r = 0; r < m; r++)
                    for (int c = 0; c < m; c++) {
                        vf v = y[r * m + c] + bias;
                        if (j->relu) v = vsel((vi)(v > 0.0f), v, vsplat(0.0f));
                        row[(long)r * width + m * (tj - tj0) + c] = v;
                    }
            }
            float *yb = j->y + ((long)img * g->CO + c0) * g->HW + (long)(m * ti) * g->OW;
            for (int r = 0; r < rows; r++)
                for (int c = col0; c < col1; c += 16) {
                    const int n = ff_min_i(16, col1 - c);
                    vf t[16];
                    for (int q = 0; q < 16; q++) t[q] = q < n ? row[(long)r * width + c - col0 + q] : vsplat(0.0f);
                    transpose16(t); /* t[l] = channel c0 + l, columns c .. c + n */
                    for (int l = 0; l < nl; l++) put_n(yb + (long)l * g->HW + (long)r * g->OW + c, t[l], n);
                }
        }
    }
}
WINO_VARIANTS(otf)

/* Wgrad: dw[co][ci] = G^T dU G; item = 16 input channels, 16 output channels at a time;
 * the results are transposed so each output channel's 16 x 9 weights go out as one run. */
AI void wout_body(void *arg, long b, long e, int tid, int m) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2, aa = a * a;
    const float *Gm = g_of(m);
    const float *dU = (const float *)j->U;
    for (long it = b; it < e; it++) {
        const int ci0 = (int)it * 16, nci = ff_min_i(16, g->C - ci0);
        for (int cg = 0; cg < p->ncog; cg++) {
            const int c0 = cg * 16, nl = ff_min_i(16, g->CO - c0);
            vf k[144 + 16];
            for (int ci = 0; ci < nci; ci++) {
                vf u[64];
                for (int xi = 0; xi < aa; xi++) {
                    const float *src = dU + ((size_t)xi * p->Cm + ci0 + ci) * p->COn + c0;
                    u[xi] = get_n(src, (int)ff_min_l(16, p->COn - c0));
                }
                mat_2d(Gm, a, 3, 1, u, k + 9 * ci);
            }
            const int len = 9 * nci;
            for (int q0 = 0; q0 < len; q0 += 16) {
                const int n = ff_min_i(16, len - q0);
                vf *r = k + q0;
                for (int q = n; q < 16; q++) r[q] = vsplat(0.0f);
                transpose16(r); /* r[l] = output channel c0 + l, weights q0 .. q0 + n */
                for (int l = 0; l < nl; l++) {
                    float *dst = j->dw + ((long)(c0 + l) * g->C + ci0) * 9 + q0;
                    if (j->accumulate) r[l] = r[l] + get_n(dst, n);
                    put_n(dst, r[l], n);
                }
            }
        }
    }
}
WINO_VARIANTS(wout)

/* dbias[co] = sum over images and positions of dy, in double, fixed order. */
static void dbias_task(void *arg, long b, long e, int tid) {
    (void)tid;
    wino_job *j = arg;
    const conv_geom *g = &j->p.g;
    for (long co = b; co < e; co++) {
        double s = 0.0;
        for (int i = 0; i < g->n; i++) {
            const float *d = j->dy + ((long)i * g->CO + co) * g->HW;
            double lane[8] = {0};
            long k = 0;
            for (; k + 8 <= g->HW; k += 8)
                for (int l = 0; l < 8; l++) lane[l] += d[k + l];
            for (int l = 0; k < g->HW; k++, l++) lane[l] += d[k];
            s += ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
        }
        j->dbias[co] = j->accumulate ? j->dbias[co] + (float)s : (float)s;
    }
}

/* ---------------------------------------------------------------- drivers -------- */

static void *scratch_or_die(ff_ctx *ctx, int tid, int slot, size_t floats) {
    float *s = ff_ctx_scratch(ctx, tid, slot, floats);
    if (!s) {
        fprintf(stderr, "ffcore: conv2d (winograd): out of memory for scratch\n");
        abort();
    }
    return s;
}

/* All block buffers are shared: the calling thread takes them from its arenas before the
 * parallel phases start. */
static void setup(ff_ctx *ctx, wino_job *j, const conv_geom *g, int m, int op) {
    j->p = make_wplan(ctx, g, m, op);
    j->simd = ff_ctx_simd(ctx);
    j->U = scratch_or_die(ctx, 0, 2, j->p.u_words);
    j->V = scratch_or_die(ctx, 0, 0, j->p.v_words);
    j->Mb = scratch_or_die(ctx, 0, 1, j->p.m_words);
    j->px = scratch_or_die(ctx, 0, 3, j->p.px_floats);
    j->pd = j->p.pd_floats ? scratch_or_die(ctx, 0, 4, j->p.pd_floats) : NULL;
}

/* Tile rows touched by tiles [t0, t0 + nt). */
static long block_rows(const wino_plan *p, long t0, long nt, long *r0) {
    *r0 = t0 / p->tw;
    return (t0 + nt - 1) / p->tw + 1 - *r0;
}

/* Zeroes `lanes` floats at column `col` of every row of a panel buffer region: count rows
 * of stride `ld` floats starting at base. Padding must hold zeros, never stale values. */
static void zero_lanes(uint32_t *base, long count, long ld, long col, long lanes) {
    if (lanes <= 0) return;
    for (long r = 0; r < count; r++) memset(base + r * ld + col, 0, (size_t)lanes * 4);
}

void ff_wino_forward(ff_ctx *ctx, const conv_geom *g, int m, const float *x, const float *w,
                     const float *bias, float *y, int relu) {
    wino_job job, *j = &job;
    memset(j, 0, sizeof *j);
    setup(ctx, j, g, m, CONV_OP_FWD);
    const wino_plan *p = &j->p;
    const int nr = p->u.nr;
    j->relu = relu;
    j->x = x;
    j->w = w;
    j->bias = bias;
    j->y = y;
    ff_parallel_for_dynamic(ctx, p->ncog, 1, wtf_fns[j->simd], j);
    /* Output-channel lanes past the last 16-channel group (only when 32 | nr). */
    for (int xi = 0; xi < p->aa; xi++)
        zero_lanes(j->U + (size_t)xi * p->COn * p->Kc + (size_t)(p->COn / nr - 1) * p->Kc * nr, p->Kc, nr,
                   (p->ncog * 16) % nr, p->COn - p->ncog * 16);
    const long ncp = p->COn / nr;
    const long items = (long)p->aa * ((ncp + WINO_PANELS_PER_ITEM - 1) / WINO_PANELS_PER_ITEM);
    for (long blk = 0; blk < p->nblocks; blk++) {
        j->t0 = blk * p->Tb;
        j->nt = ff_min_l(p->Tb, p->T - j->t0);
        long rows = block_rows(p, j->t0, j->nt, &j->r0);
        long panels = (j->nt + p->u.mr - 1) / p->u.mr;
        ff_parallel_for_dynamic(ctx, rows * p->ncg, 1, ipad_fns[j->simd], j);
        ff_parallel_for_dynamic(ctx, panels * p->ncg, 1, itf_fns[j->simd], j);
        ff_parallel_for_dynamic(ctx, items, 1, fgemm_task, j);
        ff_parallel_for_dynamic(ctx, rows, 1, otf_fns[j->simd], j);
    }
}

void ff_wino_backward_weight(ff_ctx *ctx, const conv_geom *g, int m, const float *x,
                             const float *dy, float *dw, float *dbias, int accumulate) {
    wino_job job, *j = &job;
    memset(j, 0, sizeof *j);
    setup(ctx, j, g, m, CONV_OP_WGRAD);
    const wino_plan *p = &j->p;
    const int mr = p->u.mr, nr = p->u.nr;
    j->x = x;
    j->dy = dy;
    j->dw = dw;
    j->dbias = dbias;
    j->accumulate = accumulate;
    /* Input-channel rows past C (last A panel) and output-channel lanes past the last
     * 16-channel group (last B panel): written by no transform, read by the GEMM. */
    for (int xi = 0; xi < p->aa; xi++) {
        zero_lanes(j->V + (size_t)xi * p->Kt * p->Cm + (size_t)(p->Cm / mr - 1) * p->Kt * mr, p->Kt, mr,
                   g->C % mr, g->C % mr ? mr - g->C % mr : 0);
        zero_lanes(j->Mb + (size_t)xi * p->Kt * p->COn + (size_t)(p->COn / nr - 1) * p->Kt * nr, p->Kt, nr,
                   (p->ncog * 16) % nr, p->COn - p->ncog * 16);
    }
    const long ncp = p->COn / nr;
    const long items = (long)p->aa * ((ncp + WINO_PANELS_PER_ITEM - 1) / WINO_PANELS_PER_ITEM);
    for (long blk = 0; blk < p->nblocks; blk++) {
        j->t0 = blk * p->Tb;
        j->nt = ff_min_l(p->Tb, p->T - j->t0);
        if (j->nt < p->Tb) {
            /* Depth (tile) rows past the block's last tile: zero in both operands. */
            const long k0 = p->bf16 ? (j->nt + 1) / 2 : j->nt;
            for (int xi = 0; xi < p->aa; xi++) {
                for (long q = 0; q < p->Cm / mr; q++)
                    memset(j->V + (size_t)xi * p->Kt * p->Cm + (size_t)q * p->Kt * mr + k0 * mr, 0,
                           (size_t)(p->Kt - k0) * mr * 4);
                for (long q = 0; q < p->COn / nr; q++)
                    memset(j->Mb + (size_t)xi * p->Kt * p->COn + (size_t)q * p->Kt * nr + k0 * nr, 0,
                           (size_t)(p->Kt - k0) * nr * 4);
            }
        }
        long rows = block_rows(p, j->t0, j->nt, &j->r0);
        long panels = (j->nt + mr - 1) / mr;
        ff_parallel_for_dynamic(ctx, rows * p->ncg, 1, ipad_fns[j->simd], j);
        ff_parallel_for_dynamic(ctx, rows * p->ncog, 1, dpad_fns[j->simd], j);
        ff_parallel_for_dynamic(ctx, panels * p->ncg, 1, itf_fns[j->simd], j);
        ff_parallel_for_dynamic(ctx, panels * p->ncog, 1, dtf_fns[j->simd], j);
        ff_parallel_for_dynamic(ctx, items, 1, wgemm_task, j);
    }
    ff_parallel_for_dynamic(ctx, p->ncg, 1, wout_fns[j->simd], j);
    if (dbias) ff_parallel_for_dynamic(ctx, g->CO, 8, dbias_task, j);
}
