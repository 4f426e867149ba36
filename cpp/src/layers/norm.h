#pragma once

#include <string>

#include "layers/norm_parameters.h"
#include "layers/weights.h"

namespace nle {

// The normalisation of a seq2seq architecture: layer norm with weight and bias
// (BART, Marian) or T5's RMS norm with a weight only.
class Norm {
 public:
  Norm() = default;
  Norm(const Weights& weights, const std::string& scope, int64_t features, float eps, bool rms);
  // y = norm(x + residual); y may alias x (and residual may be null).
  void operator()(Tensor& y, const Tensor& x, const Tensor* residual = nullptr) const;
  // The weight and (layer norm) bias, for the products that take this norm's output.
  NormParameters parameters() const { return {weight_, bias_}; }

 private:
  Tensor weight_;
  Tensor bias_;  // undefined for RMS norm
  float eps_ = 1e-5f;
  bool rms_ = false;
};

}  // namespace nle
