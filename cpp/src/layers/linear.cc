#include "layers/linear.h"

#include <cstring>

#include "ops/gemm.h"

namespace nle {

Linear::Linear(const Weights& weights, const std::string& scope, int64_t out_features,
               int64_t in_features, bool has_bias)
    : weight_(weights.require(scope + ".weight", {out_features, in_features})) {
  if (has_bias) bias_ = weights.require(scope + ".bias", {out_features});
}

Linear Linear::fused(const Weights& weights, const std::vector<std::string>& scopes,
                     int64_t out_features_each, int64_t in_features, bool has_bias) {
  const int64_t parts = static_cast<int64_t>(scopes.size());
  Linear fused;
  fused.weight_ = Tensor(DType::F32, {parts * out_features_each, in_features});
  if (has_bias) fused.bias_ = Tensor(DType::F32, {parts * out_features_each});
  for (int64_t p = 0; p < parts; ++p) {
    const Linear part(weights, scopes[p], out_features_each, in_features, has_bias);
    std::memcpy(fused.weight_.data<float>() + p * out_features_each * in_features,
                part.weight_.data<float>(), part.weight_.nbytes());
    if (has_bias)
      std::memcpy(fused.bias_.data<float>() + p * out_features_each, part.bias_.data<float>(),
                  part.bias_.nbytes());
  }
  return fused;
}

void Linear::operator()(Tensor& y, const Tensor& x, ops::Activation act) const {
  ops::matmul_nt(y, x, weight_);
  if (bias_.defined() || act != ops::Activation::None)
    ops::bias_activation(y, bias_.defined() ? &bias_ : nullptr, act);
}

}  // namespace nle
