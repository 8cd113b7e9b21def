/* Softmax cross-entropy and classification counts.
 *   logits, dlogits: (n, k); labels: (n) int32 in [0, k); out of argmax_rows: (n).
 * The loss of each row is computed in double (stable log-sum-exp) and the rows are summed
 * in index order, so the mean does not depend on the thread count. A row with a
 * non-finite logit (or a label outside [0, k)) has a NaN loss, which makes the mean NaN. */
#include "ff_internal.h"

#include <math.h>

typedef struct {
    int k;
    const float *logits;
    const int32_t *labels;
    float grad_scale;
    float *dlogits;
    double *row_loss;
    int32_t *row_ok;
    ff_ctx *ctx;
} xent_job;

static int first_argmax(const float *x, int k) {
    int best = 0;
    for (int j = 1; j < k; j++)
        if (x[j] > x[best]) best = j;
    return best;
}

static void xent_task(void *arg, long b, long e, int tid) {
    const xent_job *jb = arg;
    const int k = jb->k;
    /* exp(x - max) per class, kept so dlogits may alias logits. */
    double *ex = (double *)ff_ctx_scratch(jb->ctx, tid, 0, 2 * (size_t)k);
    for (long i = b; i < e; i++) {
        const float *x = jb->logits + i * (long)k;
        const int32_t y = jb->labels[i];
        int finite = 1;
        double mx = -INFINITY;
        for (int j = 0; j < k; j++) {
            finite &= isfinite(x[j]) != 0;
            if (x[j] > mx) mx = x[j];
        }
        double sum = 0;
        for (int j = 0; j < k; j++) {
            ex[j] = exp((double)x[j] - mx);
            sum += ex[j];
        }
        int valid = finite && y >= 0 && y < k;
        jb->row_loss[i] = valid ? mx + log(sum) - (double)x[y] : NAN;
        jb->row_ok[i] = valid && first_argmax(x, k) == y;
        if (jb->dlogits) {
            float *d = jb->dlogits + i * (long)k;
            double inv = 1.0 / sum;
            for (int j = 0; j < k; j++)
                d[j] = (float)((ex[j] * inv - (j == y ? 1.0 : 0.0)) * jb->grad_scale);
        }
    }
}

double ff_softmax_xent(ff_ctx *ctx, int n, int k, const float *logits, const int32_t *labels,
                       float grad_scale, float *dlogits, int *correct) {
    if (n <= 0 || k <= 0) {
        if (correct) *correct = 0;
        return n <= 0 ? 0.0 : NAN;
    }
    /* Per-row results live in thread 0's slot 1; the tasks use slot 0 of their thread. */
    float *buf = ff_ctx_scratch(ctx, 0, 1, 3 * (size_t)n);
    xent_job j = {k, logits, labels, grad_scale, dlogits, (double *)buf,
                  (int32_t *)(buf + 2 * (size_t)n), ctx};
    ff_parallel_for(ctx, n, ff_max_l(1, 4096 / k), xent_task, &j);
    double total = 0;
    int ok = 0;
    for (int i = 0; i < n; i++) {
        total += j.row_loss[i];
        ok += j.row_ok[i];
    }
    if (correct) *correct = ok;
    return total / n;
}

int ff_topk_correct(int n, int k, const float *logits, const int32_t *labels, int topk) {
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const float *x = logits + (long)i * k;
        int y = labels[i];
        if (y < 0 || y >= k) continue;
        /* Rank of the label: classes that sort before it (larger, or equal with a lower
         * index). It is in the top k when fewer than k classes do. */
        int ahead = 0;
        for (int j = 0; j < k && ahead < topk; j++)
            ahead += x[j] > x[y] || (x[j] == x[y] && j < y);
        hits += ahead < topk;
    }
    return hits;
}

void ff_argmax_rows(int n, int k, const float *x, int32_t *out) {
    for (int i = 0; i < n; i++) out[i] = k > 0 ? first_argmax(x + (long)i * k, k) : 0;
}
