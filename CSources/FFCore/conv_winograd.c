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
 * max |y|; see papers/PERFORMANCE.md.
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

/* Y (ro x ro) = L X L^T for X (ri x ri), with L = Mt (or Mt^T when tr). */
AI void mat_2d(const float *Mt, int rows, int cols, int tr, const vf *X, vf *Y) {
    const int ri = tr ? rows : cols, ro = tr ? cols : rows;
    vf tmp[8 * 8];
    for (int c = 0; c < ri; c++) mat_vec(Mt, rows, cols, tr, X + c, ri, tmp + c, ri);
    for (int r = 0; r < ro; r++) mat_vec(Mt, rows, cols, tr, tmp + r * ri, 1, Y + r * ro, 1);
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
    size_t u_words, v_words, m_words, pad_floats;
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
    /* words per tile in the block buffers */
    double per_tile = op == CONV_OP_FWD ? (double)p.aa * (p.Kc + p.COn)
                                        : (double)p.aa * (p.Cm + p.COn) / (p.bf16 ? 2 : 1);
    static double block_bytes = 0;
    if (block_bytes == 0) { const char *e = getenv("WINO_BLOCK_MB"); block_bytes = e ? atof(e) * 1048576 : FF_WINO_BLOCK_BYTES; }
    long tbmax = (long)(block_bytes / 4 / per_tile) / mr * mr;
    if (tbmax < mr) tbmax = mr;
    p.nblocks = (p.T + tbmax - 1) / tbmax;
    p.Tb = rup((p.T + p.nblocks - 1) / p.nblocks, mr); /* mr is even: bf16 tile pairs fit */
    p.Kt = p.bf16 ? p.Tb / 2 : p.Tb;
    if (op == CONV_OP_FWD) {
        p.u_words = (size_t)p.aa * p.COn * p.Kc;
        p.v_words = (size_t)p.aa * p.Tb * p.Kc;
        p.m_words = (size_t)p.aa * p.Tb * p.COn;
    } else {
        p.u_words = (size_t)p.aa * p.Cm * p.COn;
        p.v_words = (size_t)p.aa * p.Kt * p.Cm;
        p.m_words = (size_t)p.aa * p.Kt * p.COn;
    }
    p.pad_floats = (size_t)p.a * (p.tw * m + 2) * 16;
    return p;
}

void ff_wino_scratch_floats(const ff_ctx *ctx, const conv_geom *g, int m, int op,
                            size_t (*slots)[FF_SCRATCH_SLOTS]) {
    wino_plan p = make_wplan(ctx, g, m, op);
    slots[0][0] = p.v_words;
    slots[0][1] = p.m_words;
    slots[0][2] = p.u_words;
    for (int t = 0; t < ff_ctx_threads(ctx); t++) slots[t][3] = p.pad_floats;
}

typedef struct {
    wino_plan p;
    int simd, relu, accumulate;
    const float *x, *w, *bias, *dy;
    float *y, *dw, *dbias;
    uint32_t *U, *V, *Mb; /* U (or dU), V, M (or DY) */
    float *pad[FF_MAX_THREADS];
    long t0, nt;          /* current block */
    long r0;              /* first tile row of the block */
} wino_job;

static const float *bt_of(int m) { return m == 2 ? BT_2 : m == 4 ? BT_4 : BT_6; }

/* ---------------------------------------------------------------- weights -------- */

/* U[xi] for 16 output channels at a time (lanes = co), all input channels. fp32 panel
 * element (co, ci) of xi: U + xi*COn*Kc + (co/nr)*Kc*nr + ci*nr + co%nr; bf16 pairs ci. */
AI void wtf_body(void *arg, long b, long e, int tid, int m) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2, nr = p->u.nr;
    const float *Gm = m == 2 ? G_2 : m == 4 ? G_4 : G_6;
    for (long cg = b; cg < e; cg++) {
        const int co0 = (int)cg * 16, nl = ff_min_i(16, g->CO - co0);
        for (int ci = 0; ci < g->C; ci += p->bf16 ? 2 : 1) {
            vf u2[2][64];
            for (int h = 0; h < (p->bf16 ? 2 : 1); h++) {
                vf k9[9];
                for (int q = 0; q < 9; q++) k9[q] = vsplat(0.0f);
                if (ci + h < g->C)
                    for (int l = 0; l < nl; l++)
                        for (int q = 0; q < 9; q++)
                            k9[q][l] = j->w[((long)(co0 + l) * g->C + ci + h) * 9 + q];
                mat_2d(Gm, a, 3, 0, k9, u2[h]);
            }
            /* 16 | nr on the AVX levels: the 16 lanes are one contiguous run of a panel row. */
            const size_t at = (size_t)(co0 / nr) * p->Kc * nr + (size_t)(p->bf16 ? ci / 2 : ci) * nr + co0 % nr;
            for (int xi = 0; xi < a * a; xi++) {
                uint32_t *base = j->U + (size_t)xi * p->COn * p->Kc + at;
                if (p->bf16) {
                    for (int l = 0; l < nl; l++) base[l] = ff_bf16_pair(u2[0][xi][l], u2[1][xi][l]);
                } else if (nl == 16 && nr % 16 == 0) {
                    vst((float *)base, u2[0][xi]);
                } else {
                    for (int l = 0; l < nl; l++) {
                        const int co = co0 + l;
                        ((float *)j->U)[(size_t)xi * p->COn * p->Kc + (size_t)(co / nr) * p->Kc * nr + (size_t)ci * nr + co % nr] = u2[0][xi][l];
                    }
                }
            }
        }
    }
}

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

WINO_VARIANTS(wtf)

/* ---------------------------------------------------------------- input tiles ---- */

/* Item = (tile row of the block, 16-channel group). The a input rows of the tile row
 * (columns -1 .. m*tw) go to a zero-padded buffer of 16-channel vectors, then every tile
 * of the row in the block is transformed and stored in panel layout: forward as the A
 * operand (rows = tiles, depth = channels), wgrad as the B operand (depth = tiles,
 * lanes = channels). */
AI void itf_body(void *arg, long b, long e, int tid, int m) {
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2, aa = a * a, mr = p->u.mr;
    const int fwd = j->dy == NULL || j->y != NULL;
    const float *BT = bt_of(m);
    vf *pad = (vf *)j->pad[tid];
    for (long it = b; it < e; it++) {
        const long R = j->r0 + it / p->ncg;
        const int cg = (int)(it % p->ncg), c0 = cg * 16, nl = ff_min_i(16, g->C - c0);
        const int img = (int)(R / p->th), ti = (int)(R % p->th);
        const long rt0 = R * p->tw;
        const int tj0 = (int)ff_max_l(0, j->t0 - rt0), tj1 = (int)ff_min_l(p->tw, j->t0 + j->nt - rt0);
        const int width = m * (tj1 - tj0) + 2, col0 = m * tj0 - 1;
        const float *xb = j->x + ((long)img * g->C + c0) * g->inHW;
        long laneoff[16];
        for (int l = 0; l < 16; l++) laneoff[l] = (long)((c0 + l) / mr) * p->Kt * mr + (c0 + l) % mr;
        for (int r = 0; r < a; r++) {
            const int ih = m * ti - 1 + r;
            vf *row = pad + (long)r * width;
            for (int c = 0; c < width; c++) row[c] = vsplat(0.0f);
            if (ih < 0 || ih >= g->H) continue;
            const int lo = ff_max_i(0, -col0), hi = ff_min_i(width, g->W - col0);
            for (int l = 0; l < nl; l++) {
                const float *src = xb + (long)l * g->inHW + (long)ih * g->W + col0;
                for (int c = lo; c < hi; c++) row[c][l] = src[c];
            }
        }
        for (int tj = tj0; tj < tj1; tj++) {
            vf d[64], v[64];
            for (int r = 0; r < a; r++)
                for (int c = 0; c < a; c++) d[r * a + c] = pad[(long)r * width + m * (tj - tj0) + c];
            mat_2d(BT, a, a, 0, d, v);
            const long lt = rt0 + tj - j->t0;
            if (fwd) {
                /* A panel: word (depth k, row i) of panel q at q*Kc*mr + k*mr + i */
                const size_t tile_at = (size_t)(lt / mr) * p->Kc * mr + lt % mr;
                for (int xi = 0; xi < aa; xi++) {
                    uint32_t *base = j->V + (size_t)xi * p->Tb * p->Kc + tile_at;
                    if (p->bf16) {
                        for (int l = 0; l < nl; l += 2)
                            base[(size_t)((c0 + l) / 2) * mr] = ff_bf16_pair(v[xi][l], v[xi][l + 1]);
                    } else {
                        for (int l = 0; l < nl; l++) ((float *)base)[(size_t)(c0 + l) * mr] = v[xi][l];
                    }
                }
            } else {
                /* A panel over tiles: (row ci, tile k) at (ci/mr)*Kt*mr + k*mr + ci%mr */
                const size_t k_at = (size_t)(p->bf16 ? lt / 2 : lt) * mr;
                for (int xi = 0; xi < aa; xi++) {
                    uint32_t *base = j->V + (size_t)xi * p->Kt * p->Cm + k_at;
                    if (p->bf16) {
                        uint16_t *h = (uint16_t *)base + (lt & 1);
                        for (int l = 0; l < nl; l++) h[2 * laneoff[l]] = ff_bf16_round(v[xi][l]);
                    } else {
                        for (int l = 0; l < nl; l++) ((float *)base)[laneoff[l]] = v[xi][l];
                    }
                }
            }
        }
    }
}
WINO_VARIANTS(itf)

/* dY tiles (wgrad): m x m output patches, zero past OH/OW, transformed by A . A^T and
 * stored as the B operand over tiles: (tile k, lane co) at (co/nr)*Kt*nr + k*nr + co%nr. */
AI void dtf_body(void *arg, long b, long e, int tid, int m) {
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2, aa = a * a, nr = p->u.nr;
    const float *AT = m == 2 ? AT_2 : m == 4 ? AT_4 : AT_6;
    vf *pad = (vf *)j->pad[tid];
    for (long it = b; it < e; it++) {
        const long R = j->r0 + it / p->ncog;
        const int cg = (int)(it % p->ncog), c0 = cg * 16, nl = ff_min_i(16, g->CO - c0);
        const int img = (int)(R / p->th), ti = (int)(R % p->th);
        const long rt0 = R * p->tw;
        const int tj0 = (int)ff_max_l(0, j->t0 - rt0), tj1 = (int)ff_min_l(p->tw, j->t0 + j->nt - rt0);
        const int width = m * (tj1 - tj0), col0 = m * tj0;
        const float *db = j->dy + ((long)img * g->CO + c0) * g->HW;
        for (int r = 0; r < m; r++) {
            const int oh = m * ti + r;
            vf *row = pad + (long)r * width;
            for (int c = 0; c < width; c++) row[c] = vsplat(0.0f);
            if (oh >= g->OH) continue;
            const int hi = ff_min_i(width, g->OW - col0);
            for (int l = 0; l < nl; l++) {
                const float *src = db + (long)l * g->HW + (long)oh * g->OW + col0;
                for (int c = 0; c < hi; c++) row[c][l] = src[c];
            }
        }
        for (int tj = tj0; tj < tj1; tj++) {
            vf d[36], v[64];
            for (int r = 0; r < m; r++)
                for (int c = 0; c < m; c++) d[r * m + c] = pad[(long)r * width + m * (tj - tj0) + c];
            mat_2d(AT, m, a, 1, d, v);
            const long lt = rt0 + tj - j->t0;
            const size_t at = (size_t)(c0 / nr) * p->Kt * nr + (size_t)(p->bf16 ? lt / 2 : lt) * nr + c0 % nr;
            for (int xi = 0; xi < aa; xi++) {
                uint32_t *base = j->Mb + (size_t)xi * p->Kt * p->COn + at;
                if (p->bf16) {
                    uint16_t *h = (uint16_t *)base + (lt & 1);
                    for (int l = 0; l < nl; l++) h[2 * l] = ff_bf16_round(v[xi][l]);
                } else if (nl == 16 && nr % 16 == 0) {
                    vst((float *)base, v[xi]);
                } else {
                    /* lanes may cross into the next panel (baseline level: nr = 8) */
                    float *f = (float *)j->Mb + (size_t)xi * p->Kt * p->COn + (size_t)lt * nr;
                    for (int l = 0; l < nl; l++) f[(size_t)((c0 + l) / nr) * p->Kt * nr + (c0 + l) % nr] = v[xi][l];
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

/* Forward output transform of tiles [b, e) of the block, all output channels. */
AI void otf_body(void *arg, long b, long e, int tid, int m) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2, aa = a * a;
    const float *AT = m == 2 ? AT_2 : m == 4 ? AT_4 : AT_6;
    const float *M = (const float *)j->Mb;
    for (long lt = b; lt < e; lt++) {
        const long t = j->t0 + lt;
        const int img = (int)(t / ((long)p->th * p->tw));
        const int ti = (int)(t / p->tw % p->th), tj = (int)(t % p->tw);
        const int rows = ff_min_i(m, g->OH - m * ti), cols = ff_min_i(m, g->OW - m * tj);
        for (int cg = 0; cg < p->ncog; cg++) {
            const int c0 = cg * 16, nl = ff_min_i(16, g->CO - c0);
            vf mv[64], y[36];
            for (int xi = 0; xi < aa; xi++) {
                const float *src = M + ((size_t)xi * p->Tb + lt) * p->COn + c0;
                mv[xi] = c0 + 16 <= p->COn ? vld(src) : vld_n(src, p->COn - c0);
            }
            mat_2d(AT, m, a, 0, mv, y);
            vf bias = vsplat(0.0f);
            if (j->bias) {
                if (nl == 16) bias = vld(j->bias + c0);
                else bias = vld_n(j->bias + c0, nl);
            }
            float *yb = j->y + ((long)img * g->CO + c0) * g->HW + (long)(m * ti) * g->OW + m * tj;
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) {
                    vf v = y[r * m + c] + bias;
                    if (j->relu) v = vsel((vi)(v > 0.0f), v, vsplat(0.0f));
                    for (int l = 0; l < nl; l++) yb[(long)l * g->HW + (long)r * g->OW + c] = v[l];
                }
        }
    }
}
WINO_VARIANTS(otf)

/* Wgrad: dw[co][ci] = G^T dU G; item = input channel, 16 output channels at a time. */
AI void wout_body(void *arg, long b, long e, int tid, int m) {
    (void)tid;
    wino_job *j = arg;
    const wino_plan *p = &j->p;
    const conv_geom *g = &p->g;
    const int a = m + 2, aa = a * a;
    const float *Gm = m == 2 ? G_2 : m == 4 ? G_4 : G_6;
    const float *dU = (const float *)j->U;
    for (long ci = b; ci < e; ci++)
        for (int cg = 0; cg < p->ncog; cg++) {
            const int c0 = cg * 16, nl = ff_min_i(16, g->CO - c0);
            vf u[64], k9[9];
            for (int xi = 0; xi < aa; xi++) {
                const float *src = dU + ((size_t)xi * p->Cm + ci) * p->COn + c0;
                u[xi] = c0 + 16 <= p->COn ? vld(src) : vld_n(src, p->COn - c0);
            }
            mat_2d(Gm, a, 3, 1, u, k9);
            float *dst = j->dw + ((long)c0 * g->C + ci) * 9;
            for (int l = 0; l < nl; l++)
                for (int q = 0; q < 9; q++)
                    dst[(long)l * g->C * 9 + q] = j->accumulate ? dst[(long)l * g->C * 9 + q] + k9[q][l] : k9[q][l];
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

static void setup(ff_ctx *ctx, wino_job *j, const conv_geom *g, int m, int op) {
    j->p = make_wplan(ctx, g, m, op);
    j->simd = ff_ctx_simd(ctx);
    j->U = scratch_or_die(ctx, 0, 2, j->p.u_words);
    j->V = scratch_or_die(ctx, 0, 0, j->p.v_words);
    j->Mb = scratch_or_die(ctx, 0, 1, j->p.m_words);
    for (int t = 0; t < ff_ctx_threads(ctx); t++) j->pad[t] = scratch_or_die(ctx, t, 3, j->p.pad_floats);
}

/* Tile rows touched by tiles [t0, t0 + nt). */
static long block_rows(const wino_plan *p, long t0, long nt, long *r0) {
    *r0 = t0 / p->tw;
    return (t0 + nt - 1) / p->tw + 1 - *r0;
}

void ff_wino_forward(ff_ctx *ctx, const conv_geom *g, int m, const float *x, const float *w,
                     const float *bias, float *y, int relu) {
    wino_job job, *j = &job;
    memset(j, 0, sizeof *j);
    setup(ctx, j, g, m, CONV_OP_FWD);
    const wino_plan *p = &j->p;
    j->relu = relu;
    j->x = x;
    j->w = w;
    j->bias = bias;
    j->y = y;
    /* Padding lanes and rows of the panels must hold zeros (never NaN garbage). */
    memset(j->U, 0, p->u_words * 4);
    memset(j->V, 0, p->v_words * 4);
    ff_parallel_for(ctx, p->ncog, 1, wtf_fns[j->simd], j);
    const long ncp = p->COn / p->u.nr;
    const long items = (long)p->aa * ((ncp + WINO_PANELS_PER_ITEM - 1) / WINO_PANELS_PER_ITEM);
    for (long blk = 0; blk < p->nblocks; blk++) {
        j->t0 = blk * p->Tb;
        j->nt = ff_min_l(p->Tb, p->T - j->t0);
        if (j->nt < p->Tb && blk > 0) memset(j->V, 0, p->v_words * 4);
        long rows = block_rows(p, j->t0, j->nt, &j->r0);
        ff_parallel_for(ctx, rows * p->ncg, 1, itf_fns[j->simd], j);
        ff_parallel_for(ctx, items, 1, fgemm_task, j);
        ff_parallel_for(ctx, j->nt, 4, otf_fns[j->simd], j);
    }
}

void ff_wino_backward_weight(ff_ctx *ctx, const conv_geom *g, int m, const float *x,
                             const float *dy, float *dw, float *dbias, int accumulate) {
    wino_job job, *j = &job;
    memset(j, 0, sizeof *j);
    setup(ctx, j, g, m, CONV_OP_WGRAD);
    const wino_plan *p = &j->p;
    j->x = x;
    j->dy = dy;
    j->dw = dw;
    j->dbias = dbias;
    j->accumulate = accumulate;
    memset(j->V, 0, p->v_words * 4);
    memset(j->Mb, 0, p->m_words * 4);
    const long ncp = p->COn / p->u.nr;
    const long items = (long)p->aa * ((ncp + WINO_PANELS_PER_ITEM - 1) / WINO_PANELS_PER_ITEM);
    for (long blk = 0; blk < p->nblocks; blk++) {
        j->t0 = blk * p->Tb;
        j->nt = ff_min_l(p->Tb, p->T - j->t0);
        if (j->nt < p->Tb && blk > 0) {
            memset(j->V, 0, p->v_words * 4);
            memset(j->Mb, 0, p->m_words * 4);
        }
        long rows = block_rows(p, j->t0, j->nt, &j->r0);
        ff_parallel_for(ctx, rows * p->ncg, 1, itf_fns[j->simd], j);
        ff_parallel_for(ctx, rows * p->ncog, 1, dtf_fns[j->simd], j);
        ff_parallel_for(ctx, items, 1, wgemm_task, j);
    }
    ff_parallel_for(ctx, g->C, 1, wout_fns[j->simd], j);
    if (dbias) ff_parallel_for(ctx, g->CO, 1, dbias_task, j);
}
