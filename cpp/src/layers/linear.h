#pragma once

#include <string>
#include <vector>

#include "layers/weights.h"
#include "ops/activation.h"

namespace nle {

// y = act(x Wᵀ + b) with W stored (out_features, in_features) as in PyTorch.
class Linear {
 public:
  Linear() = default;
  // Reads `scope.weight` and, with has_bias, `scope.bias` (T5 has no biases).
  Linear(const Weights& weights, const std::string& scope, int64_t out_features, int64_t in_features,
         bool has_bias = true);
  // From tensors already loaded (e.g. an LM head tied to the embeddings); bias may be undefined.
  Linear(Tensor weight, Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {}
  // Several projections of the same input fused into one (e.g. query, key and
  // value): their weights are concatenated along the output dimension.
  static Linear fused(const Weights& weights, const std::vector<std::string>& scopes,
                      int64_t out_features_each, int64_t in_features, bool has_bias = true);

  // x: (rows, in_features) -> y: (rows, out_features)
  void operator()(Tensor& y, const Tensor& x, ops::Activation act = ops::Activation::None) const;
  int64_t out_features() const { return weight_.dim(0); }
  int64_t in_features() const { return weight_.dim(1); }

 private:
  Tensor weight_;
  Tensor bias_;
};

}  // namespace nle
