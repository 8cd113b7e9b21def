/* Private helpers shared by the FFCore sources. Not part of the public API. */
#ifndef FF_INTERNAL_H
#define FF_INTERNAL_H

#include "ffcore.h"
#include <pthread.h>
#include <stdatomic.h>

#define FF_MAX_THREADS 256

typedef struct {
    float *ptr;
    size_t cap; /* floats */
} ff_scratch_buf;

struct ff_ctx {
    int nthreads;
    int simd;
    pthread_t *workers; /* nthreads - 1 worker threads; the caller is thread 0 */

    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    atomic_ulong generation; /* bumped for every parallel job */
    atomic_int remaining;    /* chunks still running in the current job */
    int shutdown;

    /* current job */
    ff_task_fn fn;
    void *arg;
    long n;
    int nchunks;
    int dynamic;       /* ff_parallel_for_dynamic: chunks of `grain` from `next` */
    long grain;
    atomic_long next;

    ff_scratch_buf *scratch; /* nthreads * FF_SCRATCH_SLOTS */
    atomic_size_t scratch_bytes;

    int precision; /* FF_PRECISION_* */
    int conv_algo; /* FF_CONV_ALGO_* */
    /* FF_CONV_ALGO_MEASURE: measured choices, replaced round robin when full. */
    struct ff_conv_choice {
        ff_conv2d_desc d;
        int op, precision, simd, algo;
    } conv_choices[64];
    int n_conv_choices, next_conv_choice;
};

/* Chunk `i` of `nchunks` over [0, n): [i*n/nchunks, (i+1)*n/nchunks). */
static inline long ff_chunk_begin(long n, int nchunks, int i) {
    return (long)((__int128)n * i / nchunks);
}

/* Function attributes for run-time dispatched SIMD code paths. */
#if defined(__x86_64__) || defined(__i386__)
#define FF_X86 1
#define FF_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define FF_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#else
#define FF_X86 0
#define FF_TARGET_AVX2
#define FF_TARGET_AVX512
#endif

static inline int ff_min_i(int a, int b) { return a < b ? a : b; }
static inline int ff_max_i(int a, int b) { return a > b ? a : b; }
static inline long ff_min_l(long a, long b) { return a < b ? a : b; }
static inline long ff_max_l(long a, long b) { return a > b ? a : b; }

#endif
