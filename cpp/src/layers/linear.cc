#include "layers/linear.h"

#include <cstring>

#include "ops/bf16_gemm.h"
#include "ops/gemm.h"

namespace nle {

Linear::Linear(const Weights& weights, const std::string& scope, int64_t out_features,
               int64_t in_features, bool has_bias)
    : weight_(weights.require(scope + ".weight", {out_features, in_features})) {
  if (has_bias) bias_ = weights.require(scope + ".bias", {out_features});
  convert(weights.compute_type());
}

Linear::Linear(Tensor weight, Tensor bias, ComputeType compute_type)
    : weight_(std::move(weight)), bias_(std::move(bias)) {
  convert(compute_type);
}

void Linear::convert(ComputeType compute_type) {
  out_features_ = weight_.dim(0);
  in_features_ = weight_.dim(1);
  compute_type_ = compute_type;
  if (compute_type == ComputeType::Int8) {
    int8_ = ops::quantize_weight_int8(weight_);
    weight_ = Tensor();
  } else if (compute_type == ComputeType::BFloat16) {
    weight_ = ops::to_bf16(weight_);
  }
}

Linear Linear::fused(const Weights& weights, const std::vector<std::string>& scopes,
                     int64_t out_features_each, int64_t in_features, bool has_bias) {
  const int64_t parts = static_cast<int64_t>(scopes.size());
  Linear fused;
  fused.weight_ = Tensor(DType::F32, {parts * out_features_each, in_features});
  if (has_bias) fused.bias_ = Tensor(DType::F32, {parts * out_features_each});
  for (int64_t p = 0; p < parts; ++p) {
    const Linear part(weights.with_compute_type(ComputeType::Float32), scopes[p], out_features_each, in_features, has_bias);
    std::memcpy(fused.weight_.data<float>() + p * out_features_each * in_features,
                part.weight_.data<float>(), part.weight_.nbytes());
    if (has_bias)
      std::memcpy(fused.bias_.data<float>() + p * out_features_each, part.bias_.data<float>(),
                  part.bias_.nbytes());
  }
  fused.convert(weights.compute_type());
  return fused;
}

void Linear::operator()(Tensor& y, const Tensor& x, ops::Activation act) const {
  switch (compute_type_) {
    case ComputeType::Float32: ops::matmul_nt(y, x, weight_); break;
    case ComputeType::Int8: ops::matmul_nt_int8(y, x, int8_); break;
    case ComputeType::BFloat16: ops::matmul_nt_bf16(y, x, weight_); break;
  }
  if (bias_.defined() || act != ops::Activation::None)
    ops::bias_activation(y, bias_.defined() ? &bias_ : nullptr, act);
}

}  // namespace nle
