#include <cmath>

#include "ops/activation.h"

namespace nle::ops::reference {

namespace {
double activate(double x, Activation act) {
  switch (act) {
    case Activation::None:
      return x;
    case Activation::GeluErf:
      return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case Activation::GeluTanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::QuickGelu:
      return x / (1.0 + std::exp(-1.702 * x));
    case Activation::Relu:
      return x > 0 ? x : 0;
    case Activation::Silu:
      return x / (1.0 + std::exp(-x));
    case Activation::Tanh:
      return std::tanh(x);
  }
  return x;
}
}  // namespace

void bias_activation_f32(float* y, const float* bias, int64_t rows, int64_t cols, Activation act) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float& v = y[r * cols + c];
      v = static_cast<float>(activate(static_cast<double>(v) + (bias ? bias[c] : 0.f), act));
    }
}

}  // namespace nle::ops::reference
