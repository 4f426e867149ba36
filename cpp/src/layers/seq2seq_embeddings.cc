#include "layers/seq2seq_embeddings.h"

#include <cmath>

#include "ops/embedding.h"

namespace nle {

namespace {

// Marian's table: feature j of position p uses angle p / 10000^(2 floor(j/2) / d);
// the sines of the even j fill the first half, the cosines of the odd j the second.
Tensor sinusoidal_table(int64_t positions, int64_t dim) {
  Tensor t(DType::F32, {positions, dim});
  float* out = t.data<float>();
  const int64_t sentinel = dim % 2 == 0 ? dim / 2 : dim / 2 + 1;
  for (int64_t p = 0; p < positions; ++p) {
    for (int64_t j = 0; j < dim; ++j) {
      const double angle = static_cast<double>(p) / std::pow(10000.0, 2.0 * static_cast<double>(j / 2) / dim);
      if (j % 2 == 0)
        out[p * dim + j / 2] = static_cast<float>(std::sin(angle));
      else
        out[p * dim + sentinel + j / 2] = static_cast<float>(std::cos(angle));
    }
  }
  return t;
}

}  // namespace

Seq2SeqEmbeddings::Seq2SeqEmbeddings(Tensor tokens, const Weights& weights, const std::string& scope,
                                     const Seq2SeqConfig& c)
    : tokens_(std::move(tokens)), scale_(c.embed_scale) {
  if (c.positions == Seq2SeqPositions::Learned) {
    position_offset_ = 2;
    max_positions_ = c.max_position_embeddings;
    positions_ = weights.require(scope + "embed_positions.weight", {c.max_position_embeddings + 2, c.d_model});
  } else if (c.positions == Seq2SeqPositions::Sinusoidal) {
    max_positions_ = c.max_position_embeddings;
    positions_ = sinusoidal_table(c.max_position_embeddings, c.d_model);
  }
  if (c.layernorm_embedding) {
    has_norm_ = true;
    norm_ = Norm(weights, scope + "layernorm_embedding", c.d_model, c.norm_eps, false);
  }
}

void Seq2SeqEmbeddings::operator()(Tensor& out, const int64_t* ids, const int64_t* positions, int64_t n,
                                   const char* what) const {
  ops::embedding(out, tokens_, ids, n, false, what);
  if (scale_ != 1.f) {
    float* y = out.data<float>();
    const int64_t total = out.numel();
    for (int64_t i = 0; i < total; ++i) y[i] *= scale_;
  }
  if (positions_.defined()) {
    std::vector<int64_t> rows(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      if (positions[i] >= max_positions_)
        throw InvalidInputError(std::string(what) + ": position " + std::to_string(positions[i]) +
                                " is beyond the " + std::to_string(max_positions_) +
                                " positions the model allows (max_position_embeddings)");
      rows[i] = positions[i] + position_offset_;
    }
    ops::embedding(out, positions_, rows.data(), n, true, what);
  }
  if (has_norm_) norm_(out, out);
}

}  // namespace nle
