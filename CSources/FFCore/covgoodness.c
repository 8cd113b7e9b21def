/* covgoodness.c -- bi-axis covariance goodness (BiCovG, our interpretation; ffcore.h).
 *  y, dy: (n, C, H, W)   u: (K, C), unit rows   z: (n, K, H, W)   e, de: (n, D)
 *  z_k(pos) = u_k . y(:, pos): per image Z (K x HW) = U (K x C) * Y (C x HW), one sgemm
 *  per row band of the image (never a C x C matrix). Levels P_0..P_{L-1} (normalised:
 *  clipped to min(H, W), repeats dropped) split the map into P x P patches with the
 *  spatial-goodness bins (goodness_bins.h). D = K * sum_l P_l^2, level-major:
 *    e[s, off_l + k*P_l^2 + i*P_l + j] = mean over patch (i, j) of z_k^2,
 *    off_l = K * sum_{l' < l} P_l'^2,
 *  which equals u_k' Sigma_patch u_k for the patch's channel second-moment matrix.
 * Work: one image per task (static chunks over the pool, so the split and every
 * rounding depend on nothing but the shape). Inside an image, row bands of about
 * COVG_BAND_COLS positions bound the Z buffer. A table made once per call lists, for
 * each map row, the (level, row bin) accumulator rows containing it. Forward: per band,
 * one sgemm, then one pass over Z squares each row once and adds it into the column
 * sums of all those accumulator rows; at the end of the image the column sums are
 * summed across each column bin in double. Backward: per image, column coefficients
 * de/area of every (level, row bin); per band, Z (recomputed, or read from the saved z),
 * one pass dZ = 2 z * (sum of the coefficient rows containing the row), then dY = U' dZ
 * by sgemm (beta = 1 adds into dy). */
#include "ff_simd.h"
#include "goodness_bins.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Vector and scalar code must round identically: no a*b+c fusion anywhere. */
#pragma STDC FP_CONTRACT OFF

/* Images with at least twice this many positions are cut into row bands of about this
 * many columns, so the K x band Z tile stays in L2 between the sgemm and the pass over
 * it. Below it a whole image is one band: per-image sgemm at K = 64, C = 512 runs at
 * 85 % of the single-core rate already at 8x8 (measured on Zen4), so small images are
 * not grouped. */
#define COVG_BAND_COLS 1024

/* ---------------------------------------------------------------- levels ---------- */

int ff_covgoodness_levels(const ff_covgoodness_desc *d, int *out) {
    if (!d || d->h < 1 || d->w < 1 || d->nlev < 1 || d->nlev > FF_COVG_MAX_LEVELS) return 0;
    const int cap = ff_min_i(d->h, d->w);
    int m = 0;
    for (int l = 0; l < d->nlev; l++) {
        if (d->levels[l] < 1) return 0;
        const int p = ff_min_i(d->levels[l], cap);
        int seen = 0;
        for (int q = 0; q < m; q++) seen |= out[q] == p;
        if (!seen) out[m++] = p;
    }
    return m;
}

long ff_covgoodness_dim(const ff_covgoodness_desc *d) {
    int p[FF_COVG_MAX_LEVELS];
    const int m = ff_covgoodness_levels(d, p);
    if (m == 0 || d->k < 1) return 0;
    long s = 0;
    for (int l = 0; l < m; l++) s += (long)p[l] * p[l];
    return s * d->k;
}

const char *ff_covgoodness_check(const ff_covgoodness_desc *d) {
    if (!d) return "covgoodness: NULL descriptor";
    if (d->n < 0 || d->c < 1 || d->h < 1 || d->w < 1)
        return "covgoodness: n must be >= 0 and c, h, w >= 1";
    if (d->k < 1) return "covgoodness: k (directions) must be >= 1";
    if (d->nlev < 1 || d->nlev > FF_COVG_MAX_LEVELS)
        return "covgoodness: nlev must be in 1...FF_COVG_MAX_LEVELS (16)";
    for (int l = 0; l < d->nlev; l++)
        if (d->levels[l] < 1) return "covgoodness: every pyramid level must be >= 1";
    if (d->bins != FF_GOODNESS_ADAPTIVE && d->bins != FF_GOODNESS_FLOOR)
        return "covgoodness: bins must be FF_GOODNESS_ADAPTIVE or FF_GOODNESS_FLOOR";
    const long hw = (long)d->h * d->w;
    /* BLAS takes int sizes: one image of y and of z must be addressable with int. */
    if ((long)d->c * hw > INT_MAX || (long)d->k * hw > INT_MAX || (long)d->k * d->c > INT_MAX)
        return "covgoodness: one image is too large";
    if (ff_covgoodness_dim(d) > INT_MAX) return "covgoodness: too many outputs per sample";
    int p[FF_COVG_MAX_LEVELS];
    long sump = 0;
    for (int l = 0, m = ff_covgoodness_levels(d, p); l < m; l++) sump += p[l];
    /* The row table holds offsets within one direction's column sums as int. */
    if (sump * d->w > INT_MAX) return "covgoodness: pyramid levels too fine for the map width";
    return 0;
}

static void check_or_die(const ff_covgoodness_desc *d) {
    const char *msg = ff_covgoodness_check(d);
    if (msg) {
        /* A bad descriptor is a caller bug; carrying on would write out of bounds. */
        fprintf(stderr, "ffcore: %s\n", msg);
        abort();
    }
}

/* ---------------------------------------------------------------- plan ------------ */

typedef struct {
    int n, c, h, w, k, fl;
    int nl;                          /* normalised levels */
    int p[FF_COVG_MAX_LEVELS];
    int prow[FF_COVG_MAX_LEVELS];    /* first accumulator row of level l (sum of earlier P) */
    long eoff[FF_COVG_MAX_LEVELS];   /* offset of level l in a sample's output */
    int sump;                        /* accumulator rows per direction: sum of P */
    long dim, hw;
    int nb;                          /* row bands per image */
    long band_cols;                  /* most positions in one band */
} covg_plan;

static covg_plan make_plan(const ff_covgoodness_desc *d) {
    covg_plan P;
    memset(&P, 0, sizeof P);
    P.n = d->n;
    P.c = d->c;
    P.h = d->h;
    P.w = d->w;
    P.k = d->k;
    P.fl = d->bins == FF_GOODNESS_FLOOR;
    P.nl = ff_covgoodness_levels(d, P.p);
    long off = 0;
    for (int l = 0; l < P.nl; l++) {
        P.prow[l] = P.sump;
        P.eoff[l] = off;
        P.sump += P.p[l];
        off += (long)d->k * P.p[l] * P.p[l];
    }
    P.dim = off;
    P.hw = (long)d->h * d->w;
    P.nb = P.hw >= 2L * COVG_BAND_COLS ? (int)ff_min_l(d->h, P.hw / COVG_BAND_COLS) : 1;
    P.band_cols = (long)((d->h + P.nb - 1) / P.nb) * d->w;
    return P;
}

static inline int band_row(const covg_plan *P, int b) { return (int)ff_chunk_begin(P->h, P->nb, b); }

/* Row table, shared read-only by all threads: entry r (stride 2*nl + 1 ints) holds the
 * count m and the offsets (in floats, within one direction's block of sump rows of w)
 * of the m accumulator rows whose row bin contains map row r, levels in order, bins in
 * order. A row lies in at most two bins of a level (adaptive bins overlap by one row). */
static inline int table_stride(const covg_plan *P) { return 2 * P->nl + 1; }

static void fill_table(const covg_plan *P, int *tab) {
    for (int r = 0; r < P->h; r++) {
        int *t = tab + (long)r * table_stride(P), m = 0;
        for (int l = 0; l < P->nl; l++) {
            const int p = P->p[l];
            for (int i = bin_first(r, P->h, p, P->fl); i < p && bin_start(i, P->h, p, P->fl) <= r; i++)
                t[1 + m++] = (P->prow[l] + i) * P->w;
        }
        t[0] = m;
    }
}

/* Per-thread scratch floats: 0 Z / dZ band, 1 column sums or coefficients. */
static void plan_scratch(const covg_plan *P, int need_z, size_t s[2]) {
    s[0] = need_z ? (size_t)P->k * (size_t)P->band_cols : 0;
    s[1] = (size_t)P->k * (size_t)P->sump * (size_t)P->w;
}

size_t ff_covgoodness_workspace_bytes(const ff_ctx *ctx, const ff_covgoodness_desc *d) {
    if (ff_covgoodness_check(d) || d->n == 0) return 0;
    covg_plan P = make_plan(d);
    size_t s[2], per = 0;
    plan_scratch(&P, 1, s);
    /* ff_ctx_scratch pads every buffer by 16 floats. */
    for (int i = 0; i < 2; i++) per += (s[i] + 16) * sizeof(float);
    const size_t table = ((size_t)P.h * (size_t)table_stride(&P) + 16) * sizeof(int);
    return per * (size_t)ff_min_l(P.n, ff_ctx_threads(ctx)) + table;
}

/* ---------------------------------------------------------------- jobs ------------ */

typedef struct {
    covg_plan p;
    int accumulate;
    const float *u, *y, *zin, *de;
    float *e, *zout, *dy;
    const int *tab;
    float *zb[FF_MAX_THREADS];
    float *acc[FF_MAX_THREADS];
} covg_job;

/* Scratch is taken on the calling thread before the job starts, for the threads that
 * will get images, so workers never touch the arena bookkeeping. The row table lives in
 * the caller's slot 3. */
static void acquire_scratch(ff_ctx *ctx, covg_job *j, int need_z) {
    size_t s[2];
    plan_scratch(&j->p, need_z, s);
    const int used = (int)ff_min_l(j->p.n, ff_ctx_threads(ctx));
    for (int t = 0; t < used; t++) {
        j->zb[t] = s[0] ? ff_ctx_scratch(ctx, t, 0, s[0]) : NULL;
        j->acc[t] = ff_ctx_scratch(ctx, t, 1, s[1]);
        if ((s[0] && !j->zb[t]) || !j->acc[t]) {
            fprintf(stderr, "ffcore: covgoodness: out of memory for scratch\n");
            abort();
        }
    }
    int *tab = (int *)ff_ctx_scratch(ctx, 0, 3, (size_t)j->p.h * (size_t)table_stride(&j->p));
    if (!tab) {
        fprintf(stderr, "ffcore: covgoodness: out of memory for scratch\n");
        abort();
    }
    fill_table(&j->p, tab);
    j->tab = tab;
}

/* ---------------------------------------------------------------- row passes ------ */

/* Half vectors for the 8..15 float tails of narrow maps (8x8, 14x14), where a
 * partial 16-lane load would cost more than the work. */
typedef float vf8 __attribute__((vector_size(32)));
AI vf8 vld8(const float *p) { vf8 v; memcpy(&v, p, sizeof v); return v; }
AI void vst8(float *p, vf8 v) { memcpy(p, &v, sizeof v); }

/* a[off_q + x] += z[x]^2 for the m accumulator rows of one map row; z is squared once. */
AI void add_squares(const float *restrict z, float *restrict a, const int *off, int m, int w) {
    int x = 0;
    for (; x + 16 <= w; x += 16) {
        const vf v = vld(z + x), q = v * v;
        for (int i = 0; i < m; i++) vst(a + off[i] + x, vld(a + off[i] + x) + q);
    }
    for (; x + 8 <= w; x += 8) {
        const vf8 v = vld8(z + x), q = v * v;
        for (int i = 0; i < m; i++) vst8(a + off[i] + x, vld8(a + off[i] + x) + q);
    }
    for (; x < w; x++) {
        const float q = z[x] * z[x];
        for (int i = 0; i < m; i++) a[off[i] + x] += q;
    }
}

/* dz[x] = 2 z[x] * (sum of the m coefficient rows, in order); dz may be z itself. */
AI void scale_row(const float *z, const float *restrict cf, const int *off, int m, float *dz, int w) {
    if (m == 0) {
        /* Floor bins: a row outside every patch of every level. */
        memset(dz, 0, sizeof(float) * (size_t)w);
        return;
    }
    int x = 0;
    for (; x + 16 <= w; x += 16) {
        vf c = vld(cf + off[0] + x);
        for (int i = 1; i < m; i++) c = c + vld(cf + off[i] + x);
        vst(dz + x, vsplat(2.0f) * vld(z + x) * c);
    }
    for (; x + 8 <= w; x += 8) {
        vf8 c = vld8(cf + off[0] + x);
        for (int i = 1; i < m; i++) c = c + vld8(cf + off[i] + x);
        vst8(dz + x, ((vf8){0} + 2.0f) * vld8(z + x) * c);
    }
    for (; x < w; x++) {
        float c = cf[off[0] + x];
        for (int i = 1; i < m; i++) c = c + cf[off[i] + x];
        dz[x] = 2.0f * z[x] * c;
    }
}

/* ---------------------------------------------------------------- forward --------- */

AI void fwd_body(void *arg, long s0, long s1, int tid) {
    const covg_job *j = arg;
    const covg_plan *P = &j->p;
    const int K = P->k, C = P->c, H = P->h, W = P->w, fl = P->fl, SP = P->sump;
    const int ts = table_stride(P);
    const long HW = P->hw;
    float *restrict acc = j->acc[tid];
    for (long s = s0; s < s1; s++) {
        memset(acc, 0, sizeof(float) * (size_t)K * SP * W);
        for (int b = 0; b < P->nb; b++) {
            const int r0 = band_row(P, b), r1 = band_row(P, b + 1);
            const long cols = (long)(r1 - r0) * W;
            float *zb;
            long ldz;
            if (j->zout) {
                zb = j->zout + (s * K * HW + (long)r0 * W);
                ldz = HW;
            } else {
                zb = j->zb[tid];
                ldz = cols;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, (int)cols, C, 1.0f, j->u, C,
                        j->y + (s * C * HW + (long)r0 * W), (int)HW, 0.0f, zb, (int)ldz);
            for (int k = 0; k < K; k++)
                for (int r = r0; r < r1; r++) {
                    const int *t = j->tab + (long)r * ts;
                    add_squares(zb + (long)k * ldz + (long)(r - r0) * W, acc + (long)k * SP * W, t + 1,
                                t[0], W);
                }
        }
        float *es = j->e + s * P->dim;
        for (int l = 0; l < P->nl; l++) {
            const int p = P->p[l];
            for (int k = 0; k < K; k++) {
                for (int i = 0; i < p; i++) {
                    const float *arow = acc + ((long)k * SP + P->prow[l] + i) * W;
                    const int rows = bin_end(i, H, p, fl) - bin_start(i, H, p, fl);
                    for (int jj = 0; jj < p; jj++) {
                        const int c0 = bin_start(jj, W, p, fl), c1 = bin_end(jj, W, p, fl);
                        double t = 0;
                        for (int x = c0; x < c1; x++) t += arow[x];
                        es[P->eoff[l] + ((long)k * p + i) * p + jj] =
                            (float)(t / ((double)rows * (c1 - c0)));
                    }
                }
            }
        }
    }
}
FF_TASK_VARIANTS(fwd)

void ff_covgoodness_forward(ff_ctx *ctx, const ff_covgoodness_desc *d, const float *u,
                            const float *y, float *e, float *z) {
    check_or_die(d);
    if (d->n == 0) return;
    covg_job j = {.p = make_plan(d), .u = u, .y = y, .e = e, .zout = z};
    acquire_scratch(ctx, &j, z == NULL);
    ff_parallel_for(ctx, d->n, 1, fwd_fns[ff_ctx_simd(ctx)], &j);
}

/* ---------------------------------------------------------------- backward -------- */

AI void bwd_body(void *arg, long s0, long s1, int tid) {
    const covg_job *j = arg;
    const covg_plan *P = &j->p;
    const int K = P->k, C = P->c, H = P->h, W = P->w, fl = P->fl, SP = P->sump;
    const int ts = table_stride(P);
    const long HW = P->hw;
    float *coef = j->acc[tid];
    float *dzb = j->zb[tid];
    for (long s = s0; s < s1; s++) {
        /* coef[k][prow_l + i][x] = sum over column bins jj containing x of
         * de[l, k, i, jj] / area(i, jj). */
        const float *ds = j->de + s * P->dim;
        for (int l = 0; l < P->nl; l++) {
            const int p = P->p[l];
            for (int k = 0; k < K; k++) {
                for (int i = 0; i < p; i++) {
                    float *restrict cf = coef + ((long)k * SP + P->prow[l] + i) * W;
                    const int rows = bin_end(i, H, p, fl) - bin_start(i, H, p, fl);
                    for (int x = 0; x < W; x++) cf[x] = 0.0f;
                    for (int jj = 0; jj < p; jj++) {
                        const int c0 = bin_start(jj, W, p, fl), c1 = bin_end(jj, W, p, fl);
                        const float v = (float)((double)ds[P->eoff[l] + ((long)k * p + i) * p + jj] /
                                                ((double)rows * (c1 - c0)));
                        for (int x = c0; x < c1; x++) cf[x] += v;
                    }
                }
            }
        }
        for (int b = 0; b < P->nb; b++) {
            const int r0 = band_row(P, b), r1 = band_row(P, b + 1);
            const long cols = (long)(r1 - r0) * W;
            const float *zb;
            long ldz;
            if (j->zin) {
                zb = j->zin + (s * K * HW + (long)r0 * W);
                ldz = HW;
            } else {
                /* Recompute the band's Z into the dZ buffer; dZ then overwrites it. */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, (int)cols, C, 1.0f, j->u,
                            C, j->y + (s * C * HW + (long)r0 * W), (int)HW, 0.0f, dzb, (int)cols);
                zb = dzb;
                ldz = cols;
            }
            for (int k = 0; k < K; k++)
                for (int r = r0; r < r1; r++) {
                    const int *t = j->tab + (long)r * ts;
                    scale_row(zb + (long)k * ldz + (long)(r - r0) * W, coef + (long)k * SP * W, t + 1,
                              t[0], dzb + (long)k * cols + (long)(r - r0) * W, W);
                }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, (int)cols, K, 1.0f, j->u, C, dzb,
                        (int)cols, j->accumulate ? 1.0f : 0.0f, j->dy + (s * C * HW + (long)r0 * W),
                        (int)HW);
        }
    }
}
FF_TASK_VARIANTS(bwd)

void ff_covgoodness_backward(ff_ctx *ctx, const ff_covgoodness_desc *d, const float *u,
                             const float *y, const float *z, const float *de, float *dy,
                             int accumulate) {
    check_or_die(d);
    if (d->n == 0) return;
    if (!y && !z) {
        fprintf(stderr, "ffcore: covgoodness backward needs y or the saved z\n");
        abort();
    }
    covg_job j = {.p = make_plan(d), .u = u, .y = y, .zin = z, .de = de, .dy = dy,
                  .accumulate = accumulate != 0};
    acquire_scratch(ctx, &j, 1);
    ff_parallel_for(ctx, d->n, 1, bwd_fns[ff_ctx_simd(ctx)], &j);
}

/* ---------------------------------------------------------------- directions ------ */

void ff_covgoodness_directions(ff_rng *r, int k, int c, float *u) {
    for (int kk = 0; kk < k; kk++) {
        float *row = u + (long)kk * c;
        double ss = 0;
        /* A zero row cannot be normalised; with Box-Muller draws it needs c exact zeros,
         * so the redraw loop practically never repeats. */
        while (ss == 0) {
            ff_rng_fill_normal(r, (size_t)c, row, 0.0f, 1.0f);
            ss = 0;
            for (int i = 0; i < c; i++) ss += (double)row[i] * row[i];
        }
        const double inv = 1.0 / sqrt(ss);
        for (int i = 0; i < c; i++) row[i] = (float)(row[i] * inv);
    }
}

/* ---------------------------------------------------------------- explicit -------- */

typedef struct {
    int c, k;
    long hw;
    const float *u, *y;
    float *e;
    float *sig[FF_MAX_THREADS];
} expl_job;

static void expl_task(void *arg, long s0, long s1, int tid) {
    const expl_job *j = arg;
    const int C = j->c, K = j->k;
    float *sig = j->sig[tid], *t = sig + (long)C * C;
    for (long s = s0; s < s1; s++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C, C, (int)j->hw, 1.0f / (float)j->hw,
                    j->y + s * C * j->hw, (int)j->hw, j->y + s * C * j->hw, (int)j->hw, 0.0f, sig, C);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, C, C, 1.0f, j->u, C, sig, C, 0.0f,
                    t, C);
        for (int kk = 0; kk < K; kk++) {
            double q = 0;
            for (int i = 0; i < C; i++) q += (double)t[(long)kk * C + i] * j->u[(long)kk * C + i];
            j->e[s * K + kk] = (float)q;
        }
    }
}

void ff_covgoodness_explicit(ff_ctx *ctx, int n, int c, long hw, int k, const float *u,
                             const float *y, float *e) {
    if (n <= 0 || c <= 0 || hw <= 0 || k <= 0) return;
    if ((long)c * hw > INT_MAX || (long)c * c > INT_MAX) {
        fprintf(stderr, "ffcore: covgoodness_explicit: one image is too large\n");
        abort();
    }
    expl_job j = {c, k, hw, u, y, e, {0}};
    const int used = (int)ff_min_l(n, ff_ctx_threads(ctx));
    for (int t = 0; t < used; t++) {
        j.sig[t] = ff_ctx_scratch(ctx, t, 0, (size_t)c * c + (size_t)k * c);
        if (!j.sig[t]) {
            fprintf(stderr, "ffcore: covgoodness_explicit: out of memory for scratch\n");
            abort();
        }
    }
    ff_parallel_for(ctx, n, 1, expl_task, &j);
}
