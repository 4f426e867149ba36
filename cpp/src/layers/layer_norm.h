#pragma once

#include <string>

#include "layers/norm_parameters.h"
#include "layers/weights.h"

namespace nle {

class LayerNorm {
 public:
  LayerNorm() = default;
  // Reads `scope.weight`/`scope.bias` (or the older `gamma`/`beta` names).
  LayerNorm(const Weights& weights, const std::string& scope, int64_t features, float eps);
  // y = LN(x + residual); y may alias x. With y_bf16, y rounded to bf16 too
  // (ops::layer_norm).
  void operator()(Tensor& y, const Tensor& x, const Tensor* residual = nullptr,
                  Tensor* y_bf16 = nullptr) const;
  // γ and β, for the products that take this norm's output.
  NormParameters parameters() const { return {gamma_, beta_}; }

 private:
  Tensor gamma_;
  Tensor beta_;
  float eps_ = 1e-12f;
};

}  // namespace nle
