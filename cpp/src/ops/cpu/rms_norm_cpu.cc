#include <cmath>

#include "ops/rms_norm.h"

namespace nle::ops::cpu {

void rms_norm_f32(float* y, const float* x, const float* weight, int64_t rows, int64_t cols, float eps) {
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < cols; ++c) sum += xr[c] * xr[c];
    const float inv = 1.f / std::sqrt(sum / static_cast<float>(cols) + eps);
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] * inv * weight[c];
  }
}

}  // namespace nle::ops::cpu
