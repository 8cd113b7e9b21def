/* TEMPORARY weak stubs so the package links while kernels are being written; every
 * real definition overrides its stub. Deleted once all kernels exist. */
#include "ffcore.h"
#include <stdio.h>
#include <stdlib.h>

__attribute__((weak)) int ff_conv2d_out_h(const ff_conv2d_desc *d) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_conv2d_out_h"); abort(); }
__attribute__((weak)) int ff_conv2d_out_w(const ff_conv2d_desc *d) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_conv2d_out_w"); abort(); }
__attribute__((weak)) const char *ff_conv2d_check(const ff_conv2d_desc *d) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_conv2d_check"); abort(); }
__attribute__((weak)) size_t ff_conv2d_workspace_bytes(const ff_ctx *ctx, const ff_conv2d_desc *d) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_conv2d_workspace_bytes"); abort(); }
__attribute__((weak)) void ff_conv2d_forward(ff_ctx *ctx, const ff_conv2d_desc *d, const float *x, const float *w, const float *bias, float *y, unsigned flags) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_conv2d_forward"); abort(); }
__attribute__((weak)) void ff_conv2d_backward_weight(ff_ctx *ctx, const ff_conv2d_desc *d, const float *x, const float *dy, float *dw, float *dbias, int accumulate) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_conv2d_backward_weight"); abort(); }
__attribute__((weak)) void ff_conv2d_backward_input(ff_ctx *ctx, const ff_conv2d_desc *d, const float *w, const float *dy, float *dx) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_conv2d_backward_input"); abort(); }
__attribute__((weak)) void ff_linear_forward(ff_ctx *ctx, int n, int in, int out, const float *x, const float *w, const float *b, float *y) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_linear_forward"); abort(); }
__attribute__((weak)) void ff_linear_backward(ff_ctx *ctx, int n, int in, int out, const float *x, const float *w, const float *dy, float *dx, float *dw, float *db, int accumulate) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_linear_backward"); abort(); }
__attribute__((weak)) int ff_pool2d_out_h(const ff_pool2d_desc *d) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_pool2d_out_h"); abort(); }
__attribute__((weak)) int ff_pool2d_out_w(const ff_pool2d_desc *d) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_pool2d_out_w"); abort(); }
__attribute__((weak)) void ff_maxpool2d_forward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x, float *y, int32_t *argmax) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_maxpool2d_forward"); abort(); }
__attribute__((weak)) void ff_maxpool2d_backward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *dy, const int32_t *argmax, float *dx) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_maxpool2d_backward"); abort(); }
__attribute__((weak)) void ff_avgpool2d_forward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x, float *y) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_avgpool2d_forward"); abort(); }
__attribute__((weak)) void ff_avgpool2d_backward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *dy, float *dx) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_avgpool2d_backward"); abort(); }
__attribute__((weak)) void ff_rmspool2d_forward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x, float *y) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rmspool2d_forward"); abort(); }
__attribute__((weak)) void ff_rmspool2d_backward(ff_ctx *ctx, const ff_pool2d_desc *d, const float *x, const float *y, const float *dy, float *dx) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rmspool2d_backward"); abort(); }
__attribute__((weak)) void ff_gap_forward(ff_ctx *ctx, int n, int c, int hw, const float *x, float *y) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_gap_forward"); abort(); }
__attribute__((weak)) void ff_gap_backward(ff_ctx *ctx, int n, int c, int hw, const float *dy, float *dx) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_gap_backward"); abort(); }
__attribute__((weak)) void ff_relu_forward(ff_ctx *ctx, size_t len, const float *x, float *y) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_relu_forward"); abort(); }
__attribute__((weak)) void ff_relu_backward(ff_ctx *ctx, size_t len, const float *x, const float *dy, float *dx) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_relu_backward"); abort(); }
__attribute__((weak)) void ff_hardswish_forward(ff_ctx *ctx, size_t len, const float *x, float *y) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_hardswish_forward"); abort(); }
__attribute__((weak)) void ff_hardswish_backward(ff_ctx *ctx, size_t len, const float *x, const float *dy, float *dx) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_hardswish_backward"); abort(); }
__attribute__((weak)) void ff_hardsigmoid_forward(ff_ctx *ctx, size_t len, const float *x, float *y) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_hardsigmoid_forward"); abort(); }
__attribute__((weak)) void ff_hardsigmoid_backward(ff_ctx *ctx, size_t len, const float *x, const float *dy, float *dx) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_hardsigmoid_backward"); abort(); }
__attribute__((weak)) void ff_layernorm_forward(ff_ctx *ctx, int n, int d, float eps, const float *x, const float *gamma, const float *beta, float *y, float *mean, float *rstd) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_layernorm_forward"); abort(); }
__attribute__((weak)) void ff_layernorm_backward(ff_ctx *ctx, int n, int d, const float *x, const float *gamma, const float *mean, const float *rstd, const float *dy, float *dx, float *dgamma, float *dbeta, int accumulate) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_layernorm_backward"); abort(); }
__attribute__((weak)) void ff_batchnorm_forward_train(ff_ctx *ctx, int n, int c, int hw, float eps, float momentum, const float *x, const float *gamma, const float *beta, float *y, float *save_mean, float *save_rstd, float *running_mean, float *running_var) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_batchnorm_forward_train"); abort(); }
__attribute__((weak)) void ff_batchnorm_forward_eval(ff_ctx *ctx, int n, int c, int hw, float eps, const float *x, const float *gamma, const float *beta, const float *running_mean, const float *running_var, float *y) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_batchnorm_forward_eval"); abort(); }
__attribute__((weak)) void ff_batchnorm_backward(ff_ctx *ctx, int n, int c, int hw, const float *x, const float *gamma, const float *save_mean, const float *save_rstd, const float *dy, float *dx, float *dgamma, float *dbeta, int accumulate) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_batchnorm_backward"); abort(); }
__attribute__((weak)) void ff_goodness_forward(ff_ctx *ctx, int n, int c, int h, int w, int p, const float *y, float *g) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_goodness_forward"); abort(); }
__attribute__((weak)) void ff_goodness_backward(ff_ctx *ctx, int n, int c, int h, int w, int p, const float *y, const float *dg, float *dy) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_goodness_backward"); abort(); }
__attribute__((weak)) int ff_goodness_partition(double alpha, int c_last, int c, int h, int w) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_goodness_partition"); abort(); }
__attribute__((weak)) double ff_softmax_xent(ff_ctx *ctx, int n, int k, const float *logits, const int32_t *labels, float grad_scale, float *dlogits, int *correct) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_softmax_xent"); abort(); }
__attribute__((weak)) int ff_topk_correct(int n, int k, const float *logits, const int32_t *labels, int topk) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_topk_correct"); abort(); }
__attribute__((weak)) void ff_argmax_rows(int n, int k, const float *x, int32_t *out) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_argmax_rows"); abort(); }
__attribute__((weak)) void ff_adamw_step(ff_ctx *ctx, size_t len, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2, float eps, float weight_decay, long step) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_adamw_step"); abort(); }
__attribute__((weak)) void ff_sgd_step(ff_ctx *ctx, size_t len, float *p, const float *g, float *buf, float lr, float momentum, float dampening, float weight_decay, int nesterov, int first_step) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_sgd_step"); abort(); }
__attribute__((weak)) double ff_cosine_lr(double base_lr, double min_lr, long step, long total, long warmup) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_cosine_lr"); abort(); }
__attribute__((weak)) void ff_rng_seed(ff_rng *r, uint64_t seed) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rng_seed"); abort(); }
__attribute__((weak)) void ff_rng_seed_stream(ff_rng *r, uint64_t seed, uint64_t stream) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rng_seed_stream"); abort(); }
__attribute__((weak)) uint64_t ff_rng_next(ff_rng *r) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rng_next"); abort(); }
__attribute__((weak)) float ff_rng_uniform(ff_rng *r) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rng_uniform"); abort(); }
__attribute__((weak)) double ff_rng_uniform_double(ff_rng *r) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rng_uniform_double"); abort(); }
__attribute__((weak)) uint32_t ff_rng_below(ff_rng *r, uint32_t bound) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rng_below"); abort(); }
__attribute__((weak)) void ff_rng_fill_uniform(ff_rng *r, size_t len, float *out, float lo, float hi) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rng_fill_uniform"); abort(); }
__attribute__((weak)) void ff_rng_fill_normal(ff_rng *r, size_t len, float *out, float mean, float std) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rng_fill_normal"); abort(); }
__attribute__((weak)) void ff_rng_permutation(ff_rng *r, size_t len, int32_t *out) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_rng_permutation"); abort(); }
__attribute__((weak)) void ff_vec_fill(ff_ctx *ctx, size_t len, float *x, float value) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_vec_fill"); abort(); }
__attribute__((weak)) void ff_vec_axpy(ff_ctx *ctx, size_t len, float alpha, const float *x, float *y) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_vec_axpy"); abort(); }
__attribute__((weak)) void ff_vec_scale(ff_ctx *ctx, size_t len, float alpha, float *x) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_vec_scale"); abort(); }
__attribute__((weak)) double ff_vec_sumsq(ff_ctx *ctx, size_t len, const float *x) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_vec_sumsq"); abort(); }
__attribute__((weak)) long ff_vec_find_nonfinite(ff_ctx *ctx, size_t len, const float *x) { fprintf(stderr, "FFCore: %s not implemented yet\n", "ff_vec_find_nonfinite"); abort(); }
