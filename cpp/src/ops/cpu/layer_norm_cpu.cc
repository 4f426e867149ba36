#include <cmath>

#include "core/half.h"
#include "ops/cpu/vector_clones.h"
#include "ops/layer_norm.h"

namespace nle::ops::cpu {

namespace {
// One row: y = norm(x (+ residual)) · gamma + beta, and y_bf16 = y rounded to bf16;
// residual and y_bf16 may be null.
NLE_VECTOR_CLONES void layer_norm_row(float* y, uint16_t* y_bf16, const float* x, const float* residual,
                                      const float* gamma, const float* beta, int64_t cols, float eps) {
  if (residual) {
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) y[c] = x[c] + residual[c];
    x = y;
  }
  // Two passes (mean, then centred variance) match PyTorch's accuracy.
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < cols; ++c) sum += x[c];
  const float mean = sum / static_cast<float>(cols);
  float sq = 0.f;
#pragma omp simd reduction(+ : sq)
  for (int64_t c = 0; c < cols; ++c) {
    const float d = x[c] - mean;
    sq += d * d;
  }
  const float inv_std = 1.f / std::sqrt(sq / static_cast<float>(cols) + eps);
  if (!y_bf16) {
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) y[c] = (x[c] - mean) * inv_std * gamma[c] + beta[c];
    return;
  }
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) {
    const float v = (x[c] - mean) * inv_std * gamma[c] + beta[c];
    y[c] = v;
    y_bf16[c] = float_to_bf16_bits(v);
  }
}
}  // namespace

void layer_norm_f32(float* y, const float* x, const float* residual, const float* gamma, const float* beta,
                    int64_t rows, int64_t cols, float eps, uint16_t* y_bf16) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    layer_norm_row(y + r * cols, y_bf16 ? y_bf16 + r * cols : nullptr, x + r * cols,
                   residual ? residual + r * cols : nullptr, gamma, beta, cols, eps);
}

}  // namespace nle::ops::cpu
