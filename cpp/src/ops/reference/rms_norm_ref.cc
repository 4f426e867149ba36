#include <cmath>

#include "ops/rms_norm.h"

namespace nle::ops::reference {

void rms_norm_f32(float* y, const float* x, const float* weight, int64_t rows, int64_t cols, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += static_cast<double>(x[r * cols + c]) * x[r * cols + c];
    const double inv = 1.0 / std::sqrt(sum / static_cast<double>(cols) + eps);
    for (int64_t c = 0; c < cols; ++c) y[r * cols + c] = static_cast<float>(x[r * cols + c] * inv * weight[c]);
  }
}

}  // namespace nle::ops::reference
