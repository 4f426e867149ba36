#include "layers/layer_norm.h"

#include "ops/layer_norm.h"

namespace nle {

LayerNorm::LayerNorm(const Weights& weights, const std::string& scope, int64_t features, float eps)
    : gamma_(weights.require_any({scope + ".weight", scope + ".gamma"}, {features})),
      beta_(weights.require_any({scope + ".bias", scope + ".beta"}, {features})),
      eps_(eps) {}

void LayerNorm::operator()(Tensor& y, const Tensor& x, const Tensor* residual, Tensor* y_bf16) const {
  ops::layer_norm(y, x, residual, gamma_, beta_, eps_, y_bf16);
}

}  // namespace nle
