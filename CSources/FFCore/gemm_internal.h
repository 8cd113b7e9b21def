/* Private to FFCore: register-tile GEMM micro-kernels on packed panels (gemm_kernels.c),
 * used by the Winograd convolution (fp32 and bf16) and the bf16 im2col convolution.
 *
 * A micro-kernel computes one MR x NR tile of C = A * B over a depth K:
 *   A panel: K rows of MR values, row k = (A[0][k], ..., A[MR-1][k])   broadcast operand
 *   B panel: K rows of NR values, row k = (B[k][0], ..., B[k][NR-1])   vector operand
 *   C: MR rows of NR floats with row stride ldc; acc = 0 overwrites C, 1 adds to it.
 * bf16 panels count the depth in pairs (K2 = ceil(K / 2)): A row p holds MR 32-bit words,
 * word i = A[i][2p] (low half) | A[i][2p+1] (high half); B row p holds NR such pairs,
 * pair j = B[2p][j] (low) | B[2p+1][j] (high). An odd K pads the last pair with 0.
 * vdpbf16ps multiplies bf16 values exactly and accumulates in fp32 (inputs and results
 * that are fp32 denormals are flushed to zero). Each accumulator sums its products in
 * k order, so a result depends only on the panels, never on the thread count. */
#ifndef FF_GEMM_INTERNAL_H
#define FF_GEMM_INTERNAL_H

#include "ff_internal.h"

typedef void (*ff_ukr_f32_fn)(long K, const float *A, const float *B, float *C, long ldc, int acc);
typedef void (*ff_ukr_bf16_fn)(long K2, const uint32_t *A, const uint32_t *B, float *C, long ldc,
                               int acc);

typedef struct {
    int mr, nr;
    ff_ukr_f32_fn f32;
    ff_ukr_bf16_fn bf16; /* NULL unless the context computes in bf16 (AVX512_BF16) */
} ff_ukr;

/* The micro-kernels for a context's SIMD level and precision. */
ff_ukr ff_ukr_pick(const ff_ctx *ctx);

/* fp32 -> bf16, round to nearest even; NaN stays NaN (quiet). */
static inline uint16_t ff_bf16_round(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u);
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}
static inline float ff_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}
static inline uint32_t ff_bf16_pair(float lo, float hi) {
    return (uint32_t)ff_bf16_round(lo) | ((uint32_t)ff_bf16_round(hi) << 16);
}

/* The bf16 GEMM of ffcore.h on one thread, with a caller-provided packing buffer
 * (ff_gemm_bf16_scratch_floats gives its size in floats). `apacked`, when not NULL, is
 * op(A) already packed by ff_gemm_bf16_pack_a (then A and lda are unused): a convolution
 * packs its weights once per call instead of once per tile. */
size_t ff_gemm_bf16_scratch_floats(int M, int N, int K);
size_t ff_gemm_bf16_packed_a_words(int M, int K);
void ff_gemm_bf16_pack_a(int transA, int M, int K, const float *A, long lda, uint32_t *out);
void ff_gemm_bf16_1t(int transA, int transB, int M, int N, int K, const float *A, long lda,
                     const uint32_t *apacked, const float *B, long ldb, float beta, float *C,
                     long ldc, float *scratch);

#endif
