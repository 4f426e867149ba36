#include <mkl.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/activation.h"

namespace nle::ops::cpu {

namespace {

// VML's low-accuracy mode (within 4 ulp) is used throughout: far inside the runtime's
// 1e-4 parity, and cheaper than the high-accuracy one.
// Rows are processed in blocks so that MKL's vector math works on long arrays
// while the block stays in cache.
constexpr int64_t kBlockElements = 16384;

void activate_block(float* x, float* scratch, MKL_INT n, Activation act) {
  switch (act) {
    case Activation::None:
      return;
    case Activation::GeluErf: {
      const float inv_sqrt2 = 0.70710678118654752440f;
      for (MKL_INT i = 0; i < n; ++i) scratch[i] = x[i] * inv_sqrt2;
      vmsErf(n, scratch, scratch, VML_LA);
      for (MKL_INT i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.f + scratch[i]);
      return;
    }
    case Activation::GeluTanh: {
      const float k = 0.79788456080286535588f;  // sqrt(2 / pi)
      for (MKL_INT i = 0; i < n; ++i) scratch[i] = k * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
      vmsTanh(n, scratch, scratch, VML_LA);
      for (MKL_INT i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.f + scratch[i]);
      return;
    }
    case Activation::QuickGelu:
    case Activation::Silu: {
      const float a = act == Activation::QuickGelu ? -1.702f : -1.f;
      for (MKL_INT i = 0; i < n; ++i) scratch[i] = a * x[i];
      vmsExp(n, scratch, scratch, VML_LA);
      for (MKL_INT i = 0; i < n; ++i) x[i] = x[i] / (1.f + scratch[i]);
      return;
    }
    case Activation::Relu:
      for (MKL_INT i = 0; i < n; ++i) x[i] = x[i] > 0.f ? x[i] : 0.f;
      return;
    case Activation::Tanh:
      vmsTanh(n, x, x, VML_LA);
      return;
  }
}

}  // namespace

void bias_activation_f32(float* y, const float* bias, int64_t rows, int64_t cols, Activation act) {
  if (rows == 0 || cols == 0) return;
  const int64_t rows_per_block = std::max<int64_t>(1, kBlockElements / cols);
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
#pragma omp parallel
  {
    std::vector<float> scratch(static_cast<size_t>(rows_per_block * cols));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * rows_per_block;
      const int64_t r1 = std::min(rows, r0 + rows_per_block);
      float* x = y + r0 * cols;
      if (bias)
        for (int64_t r = r0; r < r1; ++r, x += cols)
          for (int64_t c = 0; c < cols; ++c) x[c] += bias[c];
      activate_block(y + r0 * cols, scratch.data(), static_cast<MKL_INT>((r1 - r0) * cols), act);
    }
  }
}

}  // namespace nle::ops::cpu
