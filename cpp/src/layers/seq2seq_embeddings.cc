#include "layers/seq2seq_embeddings.h"

#include <algorithm>
#include <cmath>

#include "ops/embedding.h"

namespace nle {

namespace {

// Positions of Marian's sinusoidal table computed at load; the rest are computed for the
// tokens that have them (sources longer than this are rare, and max_position_embeddings
// can be anything: 2**31 - 1 asked for a 275 GB table).
constexpr int64_t kPrecomputedPositions = 4096;

// Row p of Marian's table: feature j uses angle p / 10000^(2 floor(j/2) / d); the sines of
// the even j fill the first half, the cosines of the odd j the second. Added to `out`.
void add_sinusoidal_row(float* out, int64_t p, int64_t dim) {
  const int64_t sentinel = dim % 2 == 0 ? dim / 2 : dim / 2 + 1;
  for (int64_t j = 0; j < dim; ++j) {
    const double angle = static_cast<double>(p) / std::pow(10000.0, 2.0 * static_cast<double>(j / 2) / dim);
    if (j % 2 == 0)
      out[j / 2] += static_cast<float>(std::sin(angle));
    else
      out[sentinel + j / 2] += static_cast<float>(std::cos(angle));
  }
}

Tensor sinusoidal_table(int64_t positions, int64_t dim) {
  Tensor t(DType::F32, {positions, dim});
  float* out = t.data<float>();
  std::fill(out, out + positions * dim, 0.f);
  for (int64_t p = 0; p < positions; ++p) add_sinusoidal_row(out + p * dim, p, dim);
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
    positions_ = sinusoidal_table(std::min(c.max_position_embeddings, kPrecomputedPositions), c.d_model);
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
    bool past_table = false;
    for (int64_t i = 0; i < n; ++i) {
      if (positions[i] >= max_positions_)
        throw InvalidInputError(std::string(what) + ": position " + std::to_string(positions[i]) +
                                " is beyond the " + std::to_string(max_positions_) +
                                " positions the model allows (max_position_embeddings)");
      rows[i] = positions[i] + position_offset_;
      past_table = past_table || rows[i] >= positions_.dim(0);
    }
    if (!past_table) {
      ops::embedding(out, positions_, rows.data(), n, true, what);
    } else {  // computed sinusoids past the precomputed rows (only those are computed)
      const int64_t dim = positions_.dim(1);
      float* y = out.data<float>();
      const float* table = positions_.data<float>();
      for (int64_t i = 0; i < n; ++i) {
        if (rows[i] < positions_.dim(0)) {
          const float* row = table + rows[i] * dim;
          for (int64_t j = 0; j < dim; ++j) y[i * dim + j] += row[j];
        } else {
          add_sinusoidal_row(y + i * dim, rows[i], dim);
        }
      }
    }
  }
  if (has_norm_) norm_(out, out);
}

}  // namespace nle
