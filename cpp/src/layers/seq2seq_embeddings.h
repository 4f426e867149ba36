#pragma once

#include <string>

#include "layers/norm.h"
#include "models/seq2seq_config.h"

namespace nle {

// Token embeddings (scaled by embed_scale) plus absolute positions as the
// architecture has them: BART's learned table (offset by 2), Marian's fixed
// sinusoids, none for T5; then BART's layernorm_embedding.
class Seq2SeqEmbeddings {
 public:
  // tokens: the (vocab, d_model) table; scope: "model.encoder." / "model.decoder." / "encoder." ...
  Seq2SeqEmbeddings(Tensor tokens, const Weights& weights, const std::string& scope, const Seq2SeqConfig& config);
  // out (n, d_model) for ids and their positions; `what` names the input in errors.
  void operator()(Tensor& out, const int64_t* ids, const int64_t* positions, int64_t n, const char* what) const;
  // Longest input the position table allows, or 0 for no limit.
  int64_t max_positions() const { return max_positions_; }
  // The parameters of the norm the output comes from (BART's layernorm_embedding); none
  // (undefined) without one.
  NormParameters output_norm() const { return has_norm_ ? norm_.parameters() : NormParameters{}; }

 private:
  Tensor tokens_;
  // Undefined for relative positions; Marian's sinusoids: the first kPrecomputedPositions
  // rows (the others are computed per token).
  Tensor positions_;
  int64_t position_offset_ = 0;
  int64_t max_positions_ = 0;
  float scale_ = 1.f;
  bool has_norm_ = false;
  Norm norm_;
};

}  // namespace nle
