#include <cmath>
#include <vector>

#include "ops/layer_norm.h"

namespace nle::ops::reference {

void layer_norm_f32(float* y, const float* x, const float* residual, const float* gamma,
                    const float* beta, int64_t rows, int64_t cols, float eps) {
  std::vector<double> z(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0;
    for (int64_t c = 0; c < cols; ++c) {
      z[c] = x[r * cols + c] + (residual ? residual[r * cols + c] : 0.f);
      mean += z[c];
    }
    mean /= static_cast<double>(cols);
    double var = 0;
    for (int64_t c = 0; c < cols; ++c) var += (z[c] - mean) * (z[c] - mean);
    var /= static_cast<double>(cols);
    const double inv_std = 1.0 / std::sqrt(var + eps);
    for (int64_t c = 0; c < cols; ++c)
      y[r * cols + c] = static_cast<float>((z[c] - mean) * inv_std * gamma[c] + beta[c]);
  }
}

}  // namespace nle::ops::reference
