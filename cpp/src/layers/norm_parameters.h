#pragma once

#include "nlpengine/tensor.h"

namespace nle {

// The parameters of the norm whose output a product takes: its weight γ and, for a layer
// norm, its bias β (undefined for an RMS norm). Int8 products smooth their activations
// with them (ops::smoothing_scales). A default-constructed value (weight undefined) says
// the input does not come straight from a norm.
struct NormParameters {
  Tensor weight;
  Tensor bias;

  bool defined() const { return weight.defined(); }
};

}  // namespace nle
