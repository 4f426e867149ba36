#include "layers/feed_forward.h"

namespace nle {

FeedForward::FeedForward(const Weights& weights, const Names& names, int64_t d_model, int64_t ffn_dim,
                         ops::Activation activation, bool biases, const NormParameters& input_norm)
    : in_(weights, names.in, ffn_dim, d_model, biases, input_norm),
      out_(weights.error_sensitive(), names.out, d_model, ffn_dim, biases),
      gated_(!names.gate.empty()),
      activation_(activation) {
  if (gated_) gate_ = Linear(weights, names.gate, ffn_dim, d_model, biases, input_norm);
}

void FeedForward::operator()(Tensor& out, const Tensor& x) const {
  if (!gated_ && Linear::chains(in_, out_)) {  // int8: the hidden activations go across quantized
    Linear::chain(out, x, in_, activation_, out_);
    return;
  }
  const int64_t rows = x.dim(0);
  // Into a bf16 product the hidden activations go as bf16 (what it would round them to
  // anyway), at half the memory traffic of float32 and with no separate rounding pass.
  const bool bf16_hidden = !gated_ && in_.gives_bf16() && out_.bf16_io();
  Tensor hidden(bf16_hidden ? DType::BF16 : DType::F32, {rows, in_.out_features()});
  in_(hidden, x, activation_);
  if (gated_) {
    Tensor linear(DType::F32, {rows, gate_.out_features()});
    gate_(linear, x);
    float* h = hidden.data<float>();
    const float* g = linear.data<float>();
    const int64_t n = hidden.numel();
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) h[i] *= g[i];
  }
  out_(out, hidden);
}

}  // namespace nle
