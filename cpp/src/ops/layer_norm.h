// Layer normalisation over the last dimension, optionally of (x + residual).
#pragma once

#include <cstdint>

#include "nlpengine/tensor.h"

namespace nle::ops {

// y = (z - mean(z)) / sqrt(var(z) + eps) * gamma + beta with z = x (+ residual).
// y may alias x.
void layer_norm(Tensor& y, const Tensor& x, const Tensor* residual, const Tensor& gamma,
                const Tensor& beta, float eps);

namespace cpu {
void layer_norm_f32(float* y, const float* x, const float* residual, const float* gamma,
                    const float* beta, int64_t rows, int64_t cols, float eps);
}
namespace reference {
void layer_norm_f32(float* y, const float* x, const float* residual, const float* gamma,
                    const float* beta, int64_t rows, int64_t cols, float eps);
}

}  // namespace nle::ops
