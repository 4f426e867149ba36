#include <cmath>

#include "ops/layer_norm.h"

namespace nle::ops::cpu {

void layer_norm_f32(float* y, const float* x, const float* residual, const float* gamma,
                    const float* beta, int64_t rows, int64_t cols, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    if (residual) {
      const float* rr = residual + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] + rr[c];
      xr = yr;
    }
    // Two passes (mean, then centred variance) match PyTorch's accuracy.
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    const float mean = sum / static_cast<float>(cols);
    float sq = 0.f;
#pragma omp simd reduction(+ : sq)
    for (int64_t c = 0; c < cols; ++c) {
      const float d = xr[c] - mean;
      sq += d * d;
    }
    const float inv_std = 1.f / std::sqrt(sq / static_cast<float>(cols) + eps);
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mean) * inv_std * gamma[c] + beta[c];
  }
}

}  // namespace nle::ops::cpu
