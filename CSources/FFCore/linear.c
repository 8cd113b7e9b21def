/* linear.c -- fully connected layer, PyTorch convention.
 *  x: (n, in)   w: (out, in)   b: (out)   y, dy: (n, out)
 *  y = x w^T + b;   dx = dy w;   dw (+)= dy^T x;   db (+)= column sums of dy.
 * The GEMMs go through ff_sgemm, which splits columns of the result over the pool. */
#include "ff_internal.h"

#include <string.h>

void ff_linear_forward(ff_ctx *ctx, int n, int in, int out, const float *x, const float *w,
                       const float *b, float *y) {
    if (n <= 0 || out <= 0) return;
    if (in <= 0) {
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++) y[(size_t)i * out + o] = b ? b[o] : 0.0f;
        return;
    }
    /* The bias goes in first so the GEMM adds onto it (beta = 1): one pass over y. */
    if (b)
        for (int i = 0; i < n; i++) memcpy(y + (size_t)i * out, b, sizeof(float) * (size_t)out);
    ff_sgemm(ctx, 0, 1, n, out, in, 1.0f, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

typedef struct {
    int n, out, accumulate;
    const float *dy;
    float *db;
} colsum_job;

/* Column sums in double; each thread owns a range of columns, rows summed in order. */
static void colsum_task(void *arg, long c0, long c1, int tid) {
    (void)tid;
    const colsum_job *J = arg;
    enum { BLOCK = 64 };
    double s[BLOCK];
    for (long c = c0; c < c1; c += BLOCK) {
        int len = (int)ff_min_l(BLOCK, c1 - c);
        for (int k = 0; k < len; k++) s[k] = 0.0;
        for (int i = 0; i < J->n; i++) {
            const float *row = J->dy + (size_t)i * J->out + c;
            for (int k = 0; k < len; k++) s[k] += (double)row[k];
        }
        for (int k = 0; k < len; k++)
            J->db[c + k] = J->accumulate ? J->db[c + k] + (float)s[k] : (float)s[k];
    }
}

void ff_linear_backward(ff_ctx *ctx, int n, int in, int out, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db, int accumulate) {
    if (n < 0 || in < 0 || out < 0) return;
    if (dx && n > 0 && in > 0) {
        if (out > 0)
            ff_sgemm(ctx, 0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
        else
            memset(dx, 0, sizeof(float) * (size_t)n * in);
    }
    if (dw && out > 0 && in > 0) {
        if (n > 0)
            ff_sgemm(ctx, 1, 0, out, in, n, 1.0f, dy, out, x, in, accumulate ? 1.0f : 0.0f, dw, in);
        else if (!accumulate)
            memset(dw, 0, sizeof(float) * (size_t)out * in);
    }
    if (db && out > 0) {
        colsum_job J = {n, out, accumulate, dy, db};
        long grain = ff_max_l(64, (1L << 16) / ff_max_l(1, n));
        ff_parallel_for(ctx, out, grain, colsum_task, &J);
    }
}
