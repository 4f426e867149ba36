// Root-mean-square normalisation over the last dimension (T5's "layer norm"):
// scale only, no mean subtraction, no bias.
#pragma once

#include <cstdint>

#include "nlpengine/tensor.h"

namespace nle::ops {

// y = x / sqrt(mean(x²) + eps) * weight; y may alias x.
void rms_norm(Tensor& y, const Tensor& x, const Tensor& weight, float eps);

namespace cpu {
void rms_norm_f32(float* y, const float* x, const float* weight, int64_t rows, int64_t cols, float eps);
}
namespace reference {
void rms_norm_f32(float* y, const float* x, const float* weight, int64_t rows, int64_t cols, float eps);
}

}  // namespace nle::ops
