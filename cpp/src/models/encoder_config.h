#pragma once

#include <string>

#include "core/config.h"
#include "ops/activation.h"

namespace nle {

// How the position id of a token is derived.
enum class PositionScheme {
  Index,          // its index in the row (BERT, DistilBERT, ELECTRA)
  PaddingOffset,  // pad_token_id + 1 + number of non-pad tokens before it (RoBERTa family)
};

// Weight naming of the two encoder layouts in transformers.
enum class EncoderLayout { Bert, DistilBert };

// Every hyper-parameter of an encoder, read from config.json with the same
// defaults as the transformers config classes; nothing assumes bert-base sizes.
struct EncoderConfig {
  std::string model_type;
  EncoderLayout layout = EncoderLayout::Bert;
  PositionScheme positions = PositionScheme::Index;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t embedding_size = 0;  // differs from hidden_size in ELECTRA (then projected)
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 0;  // 0: the model takes no token type ids
  int64_t pad_token_id = 0;
  float layer_norm_eps = 1e-12f;
  ops::Activation activation = ops::Activation::GeluErf;
  // Prefixes under which a task checkpoint stores the encoder ("bert.", ...).
  std::string base_model_prefix;

  int64_t head_dim() const { return hidden_size / num_heads; }
  // The longest input the position embeddings allow.
  int64_t max_sequence_length() const;

  static EncoderConfig from_config(const Config& config);
};

}  // namespace nle
