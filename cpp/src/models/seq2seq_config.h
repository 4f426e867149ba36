#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "core/config.h"
#include "ops/activation.h"

namespace nle {

// How a seq2seq model encodes token positions.
enum class Seq2SeqPositions {
  Learned,     // BART: a learned table indexed by position + 2
  Sinusoidal,  // Marian: fixed sin/cos table, sin in the first half of the features
  Relative,    // T5: a learned bias per head and relative-distance bucket
};

// Every hyper-parameter of an encoder-decoder (bart, t5, marian), read from
// config.json with the defaults of the transformers config classes.
struct Seq2SeqConfig {
  std::string model_type;
  int64_t vocab_size = 0;          // encoder (and shared) vocabulary
  int64_t decoder_vocab_size = 0;  // Marian may give the decoder its own vocabulary
  int64_t d_model = 0;
  int64_t encoder_layers = 0, decoder_layers = 0;
  int64_t encoder_heads = 0, decoder_heads = 0;
  int64_t encoder_head_dim = 0, decoder_head_dim = 0;  // d_kv in T5; d_model / heads elsewhere
  int64_t encoder_ffn = 0, decoder_ffn = 0;
  int64_t max_position_embeddings = 0;  // 0: no limit (relative positions)
  Seq2SeqPositions positions = Seq2SeqPositions::Learned;
  int64_t relative_buckets = 32, relative_max_distance = 128;
  bool rms_norm = false;         // T5's scale-only norm without mean subtraction
  bool pre_norm = false;         // T5: norm before each sub-layer, final norm per stack
  bool layernorm_embedding = false;  // BART
  bool biases = true;            // T5 has none
  bool gated_ffn = false;        // T5 v1.1 / flan: act(wi_0 x) * wi_1 x
  bool shared_decoder_embeddings = true;  // Marian's share_encoder_decoder_embeddings
  float embed_scale = 1.f;       // sqrt(d_model) with scale_embedding
  bool scale_attention = true;   // scores times head_dim^-0.5; T5 does not scale
  float norm_eps = 1e-5f;
  float lm_head_scale = 1.f;     // T5 with tied embeddings: d_model^-0.5
  ops::Activation activation = ops::Activation::GeluErf;
  int64_t pad_token_id = 0;
  int64_t decoder_start_token_id = 0;

  int64_t head_dim(bool decoder) const { return decoder ? decoder_head_dim : encoder_head_dim; }
  int64_t inner_dim(bool decoder) const { return (decoder ? decoder_heads : encoder_heads) * head_dim(decoder); }
  float attention_scale(bool decoder) const {
    return scale_attention ? 1.f / std::sqrt(static_cast<float>(head_dim(decoder))) : 1.f;
  }

  static Seq2SeqConfig from_config(const Config& config);
  static bool is_seq2seq(const Config& config);
};

}  // namespace nle
