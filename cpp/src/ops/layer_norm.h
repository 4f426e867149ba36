// Layer normalisation over the last dimension, optionally of (x + residual).
#pragma once

#include <cstdint>

#include "nlpengine/tensor.h"

namespace nle::ops {

// y = (z - mean(z)) / sqrt(var(z) + eps) * gamma + beta with z = x (+ residual).
// y may alias x. With y_bf16 (BF16, y's shape), y rounded to bf16 as well, as a bf16
// product would round it (to nearest even), written in the same pass.
void layer_norm(Tensor& y, const Tensor& x, const Tensor* residual, const Tensor& gamma, const Tensor& beta,
                float eps, Tensor* y_bf16 = nullptr);

namespace cpu {
void layer_norm_f32(float* y, const float* x, const float* residual, const float* gamma, const float* beta,
                    int64_t rows, int64_t cols, float eps, uint16_t* y_bf16 = nullptr);
}
namespace reference {
void layer_norm_f32(float* y, const float* x, const float* residual, const float* gamma,
                    const float* beta, int64_t rows, int64_t cols, float eps);
}

}  // namespace nle::ops
