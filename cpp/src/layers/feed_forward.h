#pragma once

#include <string>

#include "layers/linear.h"

namespace nle {

// The position-wise feed-forward block: out = W2 act(W1 x), or with a gate
// (T5 v1.1) out = W2 (act(W1 x) ⊙ W1' x).
class FeedForward {
 public:
  struct Names {
    std::string in, gate, out;  // gate is empty without a gated unit
  };
  // input_norm: the norm whose output x is, if any (Linear's input_norm).
  FeedForward(const Weights& weights, const Names& names, int64_t d_model, int64_t ffn_dim,
              ops::Activation activation, bool biases, const NormParameters& input_norm = {});
  // x, out: (rows, d_model); out must not alias x.
  void operator()(Tensor& out, const Tensor& x) const;
  ComputeType compute_type() const { return in_.compute_type(); }
  bool quantized() const { return in_.quantized(); }

 private:
  Linear in_;
  Linear gate_;
  Linear out_;
  bool gated_;
  ops::Activation activation_;
};

}  // namespace nle
