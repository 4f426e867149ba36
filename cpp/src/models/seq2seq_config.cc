#include "models/seq2seq_config.h"

#include <cmath>

#include "nlpengine/errors.h"

namespace nle {

namespace {

ops::Activation parse_activation(const Config& config, const std::string& key, const std::string& name) {
  ops::Activation act;
  if (!ops::activation_from_name(name, &act))
    throw ModelError(config.path() + ": key '" + key + "' has unsupported activation '" + name + "'");
  return act;
}

int64_t positive(const Config& config, const std::string& key, int64_t value) {
  if (value <= 0)
    throw ModelError(config.path() + ": key '" + key + "' must be positive, got " + std::to_string(value));
  return value;
}

int64_t require_positive(const Config& config, const std::string& key) {
  return positive(config, key, config.get_int(key));
}

void read_bart_family(Seq2SeqConfig& c, const Config& config) {
  c.vocab_size = require_positive(config, "vocab_size");
  c.d_model = require_positive(config, "d_model");
  c.encoder_layers = positive(config, "encoder_layers", config.get_int("encoder_layers", 12));
  c.decoder_layers = positive(config, "decoder_layers", config.get_int("decoder_layers", 12));
  c.encoder_heads = positive(config, "encoder_attention_heads", config.get_int("encoder_attention_heads", 16));
  c.decoder_heads = positive(config, "decoder_attention_heads", config.get_int("decoder_attention_heads", 16));
  c.encoder_ffn = positive(config, "encoder_ffn_dim", config.get_int("encoder_ffn_dim", 4096));
  c.decoder_ffn = positive(config, "decoder_ffn_dim", config.get_int("decoder_ffn_dim", 4096));
  c.max_position_embeddings =
      positive(config, "max_position_embeddings", config.get_int("max_position_embeddings", 1024));
  if (c.d_model % c.encoder_heads != 0 || c.d_model % c.decoder_heads != 0)
    throw ModelError(config.path() + ": d_model " + std::to_string(c.d_model) +
                     " is not divisible by the number of attention heads");
  c.encoder_head_dim = c.d_model / c.encoder_heads;
  c.decoder_head_dim = c.d_model / c.decoder_heads;
  c.activation = parse_activation(config, "activation_function", config.get_string("activation_function", "gelu"));
  c.embed_scale = config.get_bool("scale_embedding", false) ? std::sqrt(static_cast<float>(c.d_model)) : 1.f;
  c.norm_eps = 1e-5f;  // nn.LayerNorm's default
  c.biases = true;
}

}  // namespace

bool Seq2SeqConfig::is_seq2seq(const Config& config) {
  const std::string type = config.get_string("model_type", "");
  return type == "bart" || type == "t5" || type == "marian";
}

Seq2SeqConfig Seq2SeqConfig::from_config(const Config& config) {
  Seq2SeqConfig c;
  c.model_type = config.get_string("model_type");
  if (c.model_type == "bart") {
    read_bart_family(c, config);
    c.positions = Seq2SeqPositions::Learned;
    c.layernorm_embedding = true;
    c.pad_token_id = config.get_int("pad_token_id", 1);
    c.decoder_start_token_id = config.get_int("decoder_start_token_id", 2);
    c.decoder_vocab_size = c.vocab_size;
  } else if (c.model_type == "marian") {
    read_bart_family(c, config);
    c.positions = Seq2SeqPositions::Sinusoidal;
    c.pad_token_id = config.get_int("pad_token_id", 58100);
    c.decoder_start_token_id = config.get_int("decoder_start_token_id", 58100);
    c.shared_decoder_embeddings = config.get_bool("share_encoder_decoder_embeddings", true);
    c.decoder_vocab_size = config.get_int("decoder_vocab_size", c.vocab_size);
    if (c.shared_decoder_embeddings) c.decoder_vocab_size = c.vocab_size;
    positive(config, "decoder_vocab_size", c.decoder_vocab_size);
  } else if (c.model_type == "t5") {
    c.vocab_size = require_positive(config, "vocab_size");
    c.decoder_vocab_size = c.vocab_size;
    c.d_model = positive(config, "d_model", config.get_int("d_model", 512));
    c.encoder_head_dim = c.decoder_head_dim = positive(config, "d_kv", config.get_int("d_kv", 64));
    c.encoder_ffn = c.decoder_ffn = positive(config, "d_ff", config.get_int("d_ff", 2048));
    c.encoder_layers = positive(config, "num_layers", config.get_int("num_layers", 6));
    c.decoder_layers = positive(config, "num_decoder_layers", config.get_int("num_decoder_layers", c.encoder_layers));
    c.encoder_heads = c.decoder_heads = positive(config, "num_heads", config.get_int("num_heads", 8));
    c.relative_buckets = positive(config, "relative_attention_num_buckets",
                                  config.get_int("relative_attention_num_buckets", 32));
    c.relative_max_distance = positive(config, "relative_attention_max_distance",
                                       config.get_int("relative_attention_max_distance", 128));
    // transformers' buckets: exact distances below half the buckets of a direction (a
    // quarter of them for the encoder's two directions), log-spaced from there to
    // max_distance. Fewer buckets leave the encoder no exact one, and a max_distance at or
    // below the decoder's exact range divides by log(1) or spaces the buckets backwards
    // (transformers then indexes outside the table).
    if (c.relative_buckets < 4)
      throw ModelError(config.path() + ": key 'relative_attention_num_buckets' must be at least 4, got " +
                       std::to_string(c.relative_buckets));
    if (c.relative_max_distance <= c.relative_buckets / 2)
      throw ModelError(config.path() + ": key 'relative_attention_max_distance' (" +
                       std::to_string(c.relative_max_distance) +
                       ") must exceed half of relative_attention_num_buckets (" +
                       std::to_string(c.relative_buckets) + "), where the log-spaced buckets start");
    c.positions = Seq2SeqPositions::Relative;
    c.max_position_embeddings = 0;
    c.rms_norm = true;
    c.pre_norm = true;
    c.biases = false;
    c.norm_eps = static_cast<float>(config.get_float("layer_norm_epsilon", 1e-6));
    const std::string proj = config.get_string("feed_forward_proj", "relu");
    const size_t dash = proj.find('-');
    std::string act_name = proj;
    if (dash != std::string::npos) {
      if (proj.substr(0, dash) != "gated" || proj.find('-', dash + 1) != std::string::npos)
        throw ModelError(config.path() + ": key 'feed_forward_proj' must be 'ACT' or 'gated-ACT', got '" + proj + "'");
      c.gated_ffn = true;
      act_name = proj.substr(dash + 1);
    }
    // transformers maps the historical "gated-gelu" to the tanh approximation.
    if (proj == "gated-gelu") act_name = "gelu_new";
    c.activation = parse_activation(config, "feed_forward_proj", act_name);
    // T5 v1.0 ties the LM head to the embeddings and rescales the decoder output
    // by d_model^-0.5; v1.1 (tie_word_embeddings=false) does neither.
    bool scale = config.get_bool("tie_word_embeddings", true);
    scale = config.get_bool("scale_decoder_outputs", scale);
    c.lm_head_scale = scale ? 1.f / std::sqrt(static_cast<float>(c.d_model)) : 1.f;
    c.scale_attention = false;
    c.pad_token_id = config.get_int("pad_token_id", 0);
    c.decoder_start_token_id = config.get_int("decoder_start_token_id", c.pad_token_id);
  } else {
    throw ModelError(config.path() + ": model_type '" + c.model_type +
                     "' is not an encoder-decoder the runtime supports (bart, t5, marian)");
  }
  return c;
}

}  // namespace nle
