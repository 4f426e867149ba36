#include "layers/encoder_embeddings.h"

#include "ops/embedding.h"

namespace nle {

EncoderEmbeddings::EncoderEmbeddings(const Weights& weights, const EncoderConfig& config)
    : embedding_size_(config.embedding_size) {
  const int64_t e = config.embedding_size;
  word_ = weights.require_table("embeddings.word_embeddings.weight", {config.vocab_size, e});
  position_ = weights.require("embeddings.position_embeddings.weight",
                              {config.max_position_embeddings, e});
  if (config.type_vocab_size > 0)
    token_type_ = weights.require("embeddings.token_type_embeddings.weight", {config.type_vocab_size, e});
  norm_ = LayerNorm(weights, "embeddings.LayerNorm", e, config.layer_norm_eps);
  if (e != config.hidden_size || weights.contains("embeddings_project.weight")) {
    has_projection_ = true;
    projection_ =
        Linear(weights, "embeddings_project", config.hidden_size, e, /*has_bias=*/true, norm_.parameters());
  }
}

void EncoderEmbeddings::operator()(Tensor& out, const PackedBatch& batch) const {
  const int64_t n = batch.num_tokens();
  Tensor sum = has_projection_ ? Tensor(DType::F32, {n, embedding_size_}) : out;
  ops::embedding(sum, word_, batch.token_ids.data(), n, false, "input_ids");
  ops::embedding(sum, position_, batch.position_ids.data(), n, true, "position_ids");
  if (token_type_.defined())
    ops::embedding(sum, token_type_, batch.type_ids.data(), n, true, "token_type_ids");
  norm_(sum, sum);
  if (has_projection_) projection_(out, sum);
}

}  // namespace nle
