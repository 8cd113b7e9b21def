/* Vector helpers over flat float arrays x, y of `len` elements:
 *   fill (x = value), axpy (y += alpha * x), scale (x *= alpha),
 *   sumsq (sum of x^2 accumulated in double), find_nonfinite (first index or -1).
 * Elementwise work is split over the pool in contiguous chunks. The sum of squares uses
 * a block layout that depends only on len, so its value does not depend on the thread
 * count or the SIMD level. */
#include "ff_simd.h"

#include <limits.h>
#include <string.h>

/* Vector and scalar code must round identically: no a*b+c fusion anywhere. */
#pragma STDC FP_CONTRACT OFF

/* Below this many elements per chunk the hand-off to a worker costs more than it saves. */
#define EW_GRAIN (1L << 15)

typedef struct {
    const float *x;
    float *y;
    float alpha;
    int op;
} ew_job;

enum { OP_FILL, OP_AXPY, OP_SCALE };

AI void ew_body(void *arg, long b, long e, int tid) {
    (void)tid;
    const ew_job *j = arg;
    const float *x = j->x;
    float *y = j->y;
    const vf a = (vf){0} + j->alpha;
    long i = b;
    switch (j->op) {
    case OP_FILL:
        for (; i + 16 <= e; i += 16) vst(y + i, a);
        for (; i < e; i++) y[i] = j->alpha;
        break;
    case OP_AXPY:
        for (; i + 16 <= e; i += 16) vst(y + i, vld(y + i) + a * vld(x + i));
        for (; i < e; i++) y[i] = y[i] + j->alpha * x[i];
        break;
    case OP_SCALE:
        for (; i + 16 <= e; i += 16) vst(y + i, vld(y + i) * a);
        for (; i < e; i++) y[i] = y[i] * j->alpha;
        break;
    }
}
FF_TASK_VARIANTS(ew)

static void run_ew(ff_ctx *ctx, size_t len, int op, float alpha, const float *x, float *y) {
    ew_job j = {x, y, alpha, op};
    ff_parallel_for(ctx, (long)len, EW_GRAIN, ew_fns[ff_ctx_simd(ctx)], &j);
}

void ff_vec_fill(ff_ctx *ctx, size_t len, float *x, float value) {
    run_ew(ctx, len, OP_FILL, value, NULL, x);
}

void ff_vec_axpy(ff_ctx *ctx, size_t len, float alpha, const float *x, float *y) {
    run_ew(ctx, len, OP_AXPY, alpha, x, y);
}

void ff_vec_scale(ff_ctx *ctx, size_t len, float alpha, float *x) {
    run_ew(ctx, len, OP_SCALE, alpha, NULL, x);
}

/* ---- sum of squares ---- */

/* At most this many blocks, so the partial sums fit on the stack. */
#define SSQ_MAX_BLOCKS 256
#define SSQ_MIN_BLOCK 4096L

typedef struct {
    const float *x;
    long len, block;
    double *partial;
} ssq_job;

/* 16 double lanes (element i goes to lane i % 16), combined in lane order, then the
 * remainder in index order: the same arithmetic whatever the vector width. */
AI double ssq_block(const float *x, long n) {
    vd lo = {0}, hi = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        vf v = vld(x + i);
        vd a = __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), vd);
        vd c = __builtin_convertvector(
            __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), vd);
        lo += a * a;
        hi += c * c;
    }
    double s = 0;
    for (int k = 0; k < 8; k++) s += lo[k];
    for (int k = 0; k < 8; k++) s += hi[k];
    for (; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

AI void ssq_body(void *arg, long b, long e, int tid) {
    (void)tid;
    const ssq_job *j = arg;
    for (long k = b; k < e; k++) {
        long s = k * j->block, n = ff_min_l(j->block, j->len - s);
        j->partial[k] = ssq_block(j->x + s, n);
    }
}
FF_TASK_VARIANTS(ssq)

double ff_vec_sumsq(ff_ctx *ctx, size_t len, const float *x) {
    if (len == 0) return 0.0;
    long n = (long)len;
    long block = ff_max_l(SSQ_MIN_BLOCK, (n + SSQ_MAX_BLOCKS - 1) / SSQ_MAX_BLOCKS);
    block = (block + 15) / 16 * 16;
    long nblocks = (n + block - 1) / block;
    double partial[SSQ_MAX_BLOCKS];
    ssq_job j = {x, n, block, partial};
    ff_parallel_for(ctx, nblocks, ff_max_l(1, EW_GRAIN / block), ssq_fns[ff_ctx_simd(ctx)], &j);
    double s = 0;
    for (long k = 0; k < nblocks; k++) s += partial[k];
    return s;
}

/* ---- first non-finite value ---- */

typedef struct {
    const float *x;
    atomic_long first; /* smallest hit so far, LONG_MAX when none */
} nf_job;

AI int nonfinite(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return (u & 0x7f800000u) == 0x7f800000u;
}

/* The minimum over chunks is the global first hit, whatever the chunk-to-thread mapping. */
static void nf_record(atomic_long *first, long i) {
    long cur = atomic_load_explicit(first, memory_order_relaxed);
    while (i < cur && !atomic_compare_exchange_weak(first, &cur, i)) {
    }
}

AI void nf_body(void *arg, long b, long e, int tid) {
    (void)tid;
    nf_job *j = arg;
    const float *x = j->x;
    const vi expo = (vi){0} + 0x7f800000;
    long i = b;
    /* Whole vectors first; on a hit the scalar scan below finds the exact index. */
    for (; i + 16 <= e; i += 16) {
        vi u = (vi)vld(x + i);
        if (__builtin_reduce_or((u & expo) == expo)) break;
    }
    for (; i < e; i++) {
        if (nonfinite(x[i])) {
            nf_record(&j->first, i);
            return;
        }
    }
}
FF_TASK_VARIANTS(nf)

long ff_vec_find_nonfinite(ff_ctx *ctx, size_t len, const float *x) {
    nf_job j;
    j.x = x;
    atomic_init(&j.first, LONG_MAX);
    ff_parallel_for(ctx, (long)len, EW_GRAIN, nf_fns[ff_ctx_simd(ctx)], &j);
    long first = atomic_load(&j.first);
    return first == LONG_MAX ? -1 : first;
}
