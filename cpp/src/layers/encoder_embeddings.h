#pragma once

#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "models/encoder_config.h"
#include "models/packed_batch.h"

namespace nle {

// word + position (+ token type) embeddings, layer norm, and ELECTRA's
// projection to the hidden size when its embedding size differs.
class EncoderEmbeddings {
 public:
  EncoderEmbeddings(const Weights& weights, const EncoderConfig& config);
  // out: (T, hidden_size)
  void operator()(Tensor& out, const PackedBatch& batch) const;
  // The parameters of the norm the output comes straight from; none (undefined) after
  // ELECTRA's projection.
  NormParameters output_norm() const { return has_projection_ ? NormParameters{} : norm_.parameters(); }

 private:
  Tensor word_;
  Tensor position_;
  Tensor token_type_;  // undefined when the model has no token types
  LayerNorm norm_;
  bool has_projection_ = false;
  Linear projection_;
  int64_t embedding_size_;
};

}  // namespace nle
