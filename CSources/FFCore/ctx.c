/* Context: a small persistent thread pool (the caller is thread 0), per-thread scratch
 * arenas and run-time SIMD selection. */
#include "ff_internal.h"

#include <cblas.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);
char *openblas_get_corename(void);

/* The build string names the architecture OpenBLAS was compiled for; with DYNAMIC_ARCH
 * the kernels actually used are those of the core it detected at run time. */
const char *ff_blas_config(void) {
    static char text[512];
    snprintf(text, sizeof text, "%s; kernels for %s", openblas_get_config(), openblas_get_corename());
    return text;
}

/* Workers spin this many times on the generation counter before sleeping: a parallel
 * kernel usually follows the previous one within microseconds, and a futex wake-up
 * would cost more than the spin. */
#define FF_SPIN_ITERS 20000

static void run_chunk(ff_ctx *ctx, int i) {
    if (ctx->dynamic) {
        /* Chunks of `grain` items to whichever thread asks next. */
        for (;;) {
            long b = atomic_fetch_add_explicit(&ctx->next, ctx->grain, memory_order_relaxed);
            if (b >= ctx->n) return;
            ctx->fn(ctx->arg, b, ff_min_l(b + ctx->grain, ctx->n), i);
        }
    }
    long b = ff_chunk_begin(ctx->n, ctx->nchunks, i);
    long e = ff_chunk_begin(ctx->n, ctx->nchunks, i + 1);
    if (e > b) ctx->fn(ctx->arg, b, e, i);
}

typedef struct {
    ff_ctx *ctx;
    int tid;
} worker_arg;

static void *worker_main(void *p) {
    worker_arg wa = *(worker_arg *)p;
    free(p);
    ff_ctx *ctx = wa.ctx;
    unsigned long seen = 0;
    for (;;) {
        unsigned long g = 0;
        for (int spin = 0; spin < FF_SPIN_ITERS; spin++) {
            g = atomic_load_explicit(&ctx->generation, memory_order_acquire);
            if (g != seen) break;
#if FF_X86
            __builtin_ia32_pause();
#endif
        }
        if (g == seen) {
            pthread_mutex_lock(&ctx->mu);
            while ((g = atomic_load(&ctx->generation)) == seen && !ctx->shutdown)
                pthread_cond_wait(&ctx->wake, &ctx->mu);
            int stop = ctx->shutdown;
            pthread_mutex_unlock(&ctx->mu);
            if (stop) return NULL;
        }
        seen = g;
        if (wa.tid < ctx->nchunks) run_chunk(ctx, wa.tid);
        if (atomic_fetch_sub_explicit(&ctx->remaining, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&ctx->mu);
            pthread_cond_signal(&ctx->done);
            pthread_mutex_unlock(&ctx->mu);
        }
    }
}

int ff_cpu_simd_level(void) {
#if FF_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return FF_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return FF_SIMD_AVX2;
#endif
    return FF_SIMD_SCALAR;
}

const char *ff_simd_name(int level) {
    switch (level) {
    case FF_SIMD_AVX512: return "avx512";
    case FF_SIMD_AVX2: return "avx2";
    default: return "scalar";
    }
}

ff_ctx *ff_ctx_create(int threads) {
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads > FF_MAX_THREADS) threads = FF_MAX_THREADS;
    ff_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->nthreads = threads;
    ctx->simd = ff_cpu_simd_level();
    const char *env = getenv("FFREPRO_SIMD");
    if (env) {
        int cap = ctx->simd;
        if (!strcmp(env, "scalar")) cap = FF_SIMD_SCALAR;
        else if (!strcmp(env, "avx2")) cap = FF_SIMD_AVX2;
        else if (!strcmp(env, "avx512")) cap = FF_SIMD_AVX512;
        if (cap < ctx->simd) ctx->simd = cap;
    }
    ctx->precision = FF_PRECISION_FP32;
    const char *prec = getenv("FFREPRO_PRECISION");
    if (prec && !strcmp(prec, "bf16")) ff_ctx_set_precision(ctx, FF_PRECISION_BF16);
    ctx->conv_algo = FF_CONV_ALGO_AUTO;
    const char *algo = getenv("FFREPRO_CONV_ALGO");
    if (algo) {
        static const char *names[] = {"auto", "im2col", "f2", "f4", "f6", "measure"};
        for (int i = 0; i < 6; i++)
            if (!strcmp(algo, names[i])) ctx->conv_algo = i;
    }
    ctx->scratch = calloc((size_t)threads * FF_SCRATCH_SLOTS, sizeof(ff_scratch_buf));
    pthread_mutex_init(&ctx->mu, NULL);
    pthread_cond_init(&ctx->wake, NULL);
    pthread_cond_init(&ctx->done, NULL);
    atomic_init(&ctx->generation, 0);
    atomic_init(&ctx->remaining, 0);
    atomic_init(&ctx->scratch_bytes, 0);
    /* Parallelism is ours: each worker calls BLAS on its own slice. */
    openblas_set_num_threads(1);
    if (threads > 1) {
        ctx->workers = calloc((size_t)threads - 1, sizeof(pthread_t));
        for (int t = 1; t < threads; t++) {
            worker_arg *wa = malloc(sizeof *wa);
            wa->ctx = ctx;
            wa->tid = t;
            pthread_create(&ctx->workers[t - 1], NULL, worker_main, wa);
        }
    }
    return ctx;
}

void ff_ctx_destroy(ff_ctx *ctx) {
    if (!ctx) return;
    if (ctx->workers) {
        pthread_mutex_lock(&ctx->mu);
        ctx->shutdown = 1;
        pthread_cond_broadcast(&ctx->wake);
        pthread_mutex_unlock(&ctx->mu);
        for (int t = 1; t < ctx->nthreads; t++) pthread_join(ctx->workers[t - 1], NULL);
        free(ctx->workers);
    }
    for (int i = 0; i < ctx->nthreads * FF_SCRATCH_SLOTS; i++) free(ctx->scratch[i].ptr);
    free(ctx->scratch);
    pthread_mutex_destroy(&ctx->mu);
    pthread_cond_destroy(&ctx->wake);
    pthread_cond_destroy(&ctx->done);
    free(ctx);
}

int ff_ctx_threads(const ff_ctx *ctx) { return ctx->nthreads; }
int ff_ctx_simd(const ff_ctx *ctx) { return ctx->simd; }

void ff_ctx_set_simd(ff_ctx *ctx, int level) {
    int cpu = ff_cpu_simd_level();
    if (level > cpu) level = cpu;
    if (level < FF_SIMD_SCALAR) level = FF_SIMD_SCALAR;
    ctx->simd = level;
    if (level < FF_SIMD_AVX512) ctx->precision = FF_PRECISION_FP32;
}

int ff_ctx_set_precision(ff_ctx *ctx, int precision) {
    if (precision == FF_PRECISION_FP32) {
        ctx->precision = precision;
        return 0;
    }
    if (precision != FF_PRECISION_BF16 || !ff_cpu_has_bf16() || ctx->simd < FF_SIMD_AVX512) return -1;
    ctx->precision = precision;
    return 0;
}

int ff_ctx_precision(const ff_ctx *ctx) { return ctx->precision; }

void ff_ctx_set_conv_algo(ff_ctx *ctx, int algo) {
    if (algo < FF_CONV_ALGO_AUTO || algo > FF_CONV_ALGO_MEASURE) algo = FF_CONV_ALGO_AUTO;
    ctx->conv_algo = algo;
}

int ff_ctx_conv_algo(const ff_ctx *ctx) { return ctx->conv_algo; }

const char *ff_conv_algo_name(int algo) {
    switch (algo) {
    case FF_CONV_ALGO_IM2COL: return "im2col";
    case FF_CONV_ALGO_WINOGRAD_F2: return "winograd-f2";
    case FF_CONV_ALGO_WINOGRAD_F4: return "winograd-f4";
    case FF_CONV_ALGO_WINOGRAD_F6: return "winograd-f6";
    case FF_CONV_ALGO_MEASURE: return "measure";
    default: return "auto";
    }
}

static void parallel_for(ff_ctx *ctx, long n, long grain, ff_task_fn fn, void *arg, int dynamic) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    long maxchunks = (n + grain - 1) / grain;
    int nchunks = (int)ff_min_l(maxchunks, ctx->nthreads);
    if (nchunks <= 1) {
        fn(arg, 0, n, 0);
        return;
    }
    ctx->fn = fn;
    ctx->arg = arg;
    ctx->n = n;
    ctx->nchunks = nchunks;
    ctx->dynamic = dynamic;
    ctx->grain = grain;
    atomic_store_explicit(&ctx->next, 0, memory_order_relaxed);
    atomic_store(&ctx->remaining, ctx->nthreads - 1);
    pthread_mutex_lock(&ctx->mu);
    atomic_fetch_add_explicit(&ctx->generation, 1, memory_order_release);
    pthread_cond_broadcast(&ctx->wake);
    pthread_mutex_unlock(&ctx->mu);
    run_chunk(ctx, 0);
    /* Wait for the workers: spin briefly, then sleep. */
    for (int spin = 0; spin < FF_SPIN_ITERS; spin++) {
        if (atomic_load_explicit(&ctx->remaining, memory_order_acquire) == 0) return;
#if FF_X86
        __builtin_ia32_pause();
#endif
    }
    pthread_mutex_lock(&ctx->mu);
    while (atomic_load(&ctx->remaining) != 0) pthread_cond_wait(&ctx->done, &ctx->mu);
    pthread_mutex_unlock(&ctx->mu);
}

void ff_parallel_for(ff_ctx *ctx, long n, long grain, ff_task_fn fn, void *arg) {
    parallel_for(ctx, n, grain, fn, arg, 0);
}

void ff_parallel_for_dynamic(ff_ctx *ctx, long n, long grain, ff_task_fn fn, void *arg) {
    parallel_for(ctx, n, grain, fn, arg, 1);
}

float *ff_ctx_scratch(ff_ctx *ctx, int tid, int slot, size_t floats) {
    ff_scratch_buf *b = &ctx->scratch[tid * FF_SCRATCH_SLOTS + slot];
    if (b->cap < floats) {
        free(b->ptr);
        size_t cap = floats + 16;
        b->ptr = aligned_alloc(64, ((cap * sizeof(float)) + 63) & ~(size_t)63);
        atomic_fetch_add(&ctx->scratch_bytes, (cap - b->cap) * sizeof(float));
        b->cap = b->ptr ? cap : 0;
    }
    return b->ptr;
}

size_t ff_ctx_scratch_bytes(const ff_ctx *ctx) {
    return atomic_load(&((ff_ctx *)ctx)->scratch_bytes);
}

/* ---- sgemm split over the pool by columns of C ---- */
typedef struct {
    int transA, transB, M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
} gemm_job;

static void gemm_task(void *p, long b, long e, int tid) {
    (void)tid;
    gemm_job *j = p;
    int n0 = (int)b, nn = (int)(e - b);
    const float *Bp = j->transB ? j->B + (size_t)n0 * j->ldb : j->B + n0;
    cblas_sgemm(CblasRowMajor, j->transA ? CblasTrans : CblasNoTrans,
                j->transB ? CblasTrans : CblasNoTrans, j->M, nn, j->K, j->alpha, j->A, j->lda,
                Bp, j->ldb, j->beta, j->C + n0, j->ldc);
}

void ff_sgemm(ff_ctx *ctx, int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    gemm_job j = {transA, transB, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc};
    /* Split only when each slice keeps enough work to amortise the hand-off. */
    long flops = 2L * M * N * (long)K;
    long grain = flops < (1L << 22) ? N : ff_max_l(16, N / (2L * ctx->nthreads));
    grain = (grain + 15) / 16 * 16;
    ff_parallel_for(ctx, N, grain, gemm_task, &j);
}

void ff_tune_process_allocator(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}
