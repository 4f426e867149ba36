#include "ops/layer_norm.h"

#include "ops/check.h"

namespace nle::ops {

void layer_norm(Tensor& y, const Tensor& x, const Tensor* residual, const Tensor& gamma, const Tensor& beta,
                float eps, Tensor* y_bf16) {
  check_cpu_f32("layer_norm", {&y, &x, &gamma, &beta});
  const int64_t cols = x.dim(-1);
  if (gamma.numel() != cols || beta.numel() != cols)
    throw InvalidInputError("layer_norm: gamma " + shape_to_string(gamma.shape()) + " / beta " +
                            shape_to_string(beta.shape()) + " do not match " + std::to_string(cols) +
                            " features");
  if (y.shape() != x.shape() || (residual && residual->shape() != x.shape()))
    throw InvalidInputError("layer_norm: input, residual and output shapes differ");
  if (residual) check_cpu_f32("layer_norm", {residual});
  if (y_bf16 &&
      (y_bf16->device() != Device::CPU || y_bf16->dtype() != DType::BF16 || y_bf16->shape() != x.shape()))
    throw InvalidInputError("layer_norm: the bf16 copy must be a BF16 CPU tensor of the input's shape " +
                            shape_to_string(x.shape()));
  cpu::layer_norm_f32(y.data<float>(), x.data<float>(), residual ? residual->data<float>() : nullptr,
                      gamma.data<float>(), beta.data<float>(), cols ? x.numel() / cols : 0, cols, eps,
                      y_bf16 ? y_bf16->data<uint16_t>() : nullptr);
}

}  // namespace nle::ops
