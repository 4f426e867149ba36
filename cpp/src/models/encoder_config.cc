#include "models/encoder_config.h"

#include "nlpengine/errors.h"

namespace nle {

namespace {

ops::Activation parse_activation(const Config& config, const std::string& key) {
  const std::string name = config.get_string(key, "gelu");
  ops::Activation act;
  if (!ops::activation_from_name(name, &act))
    throw ModelError(config.path() + ": key '" + key + "' has unsupported activation '" + name + "'");
  return act;
}

void check_positive(const Config& config, const std::string& key, int64_t value) {
  if (value <= 0)
    throw ModelError(config.path() + ": key '" + key + "' must be positive, got " + std::to_string(value));
}

}  // namespace

int64_t EncoderConfig::max_sequence_length() const {
  return positions == PositionScheme::PaddingOffset ? max_position_embeddings - pad_token_id - 1
                                                    : max_position_embeddings;
}

EncoderConfig EncoderConfig::from_config(const Config& config) {
  EncoderConfig c;
  c.model_type = config.get_string("model_type");
  const std::string& type = c.model_type;

  if (type == "distilbert") {
    c.layout = EncoderLayout::DistilBert;
    c.base_model_prefix = "distilbert.";
    c.vocab_size = config.get_int("vocab_size");
    c.hidden_size = config.get_int("dim");
    c.num_layers = config.get_int("n_layers");
    c.num_heads = config.get_int("n_heads");
    c.intermediate_size = config.get_int("hidden_dim");
    c.activation = parse_activation(config, "activation");
    c.layer_norm_eps = 1e-12f;  // fixed in DistilBERT
    c.type_vocab_size = 0;
    c.pad_token_id = config.get_int("pad_token_id", 0);
    for (const char* key : {"dim", "n_layers", "n_heads", "hidden_dim", "vocab_size"})
      check_positive(config, key, config.get_int(key));
  } else if (type == "bert" || type == "roberta" || type == "xlm-roberta" || type == "camembert" ||
             type == "electra") {
    c.layout = EncoderLayout::Bert;
    const bool roberta_like = type == "roberta" || type == "xlm-roberta" || type == "camembert";
    c.base_model_prefix = roberta_like ? "roberta." : type + ".";
    c.positions = roberta_like ? PositionScheme::PaddingOffset : PositionScheme::Index;
    c.vocab_size = config.get_int("vocab_size");
    c.hidden_size = config.get_int("hidden_size");
    c.num_layers = config.get_int("num_hidden_layers");
    c.num_heads = config.get_int("num_attention_heads");
    c.intermediate_size = config.get_int("intermediate_size");
    c.activation = parse_activation(config, "hidden_act");
    c.layer_norm_eps = static_cast<float>(config.get_float("layer_norm_eps", 1e-12));
    c.type_vocab_size = config.get_int("type_vocab_size", 2);
    c.pad_token_id = config.get_int("pad_token_id", roberta_like ? 1 : 0);
    if (type == "electra") c.embedding_size = config.get_int("embedding_size", 128);
    for (const char* key : {"hidden_size", "num_hidden_layers", "num_attention_heads",
                            "intermediate_size", "vocab_size"})
      check_positive(config, key, config.get_int(key));
    const std::string pos_type = config.get_string("position_embedding_type", "absolute");
    if (pos_type != "absolute")
      throw ModelError(config.path() + ": key 'position_embedding_type' = '" + pos_type +
                       "' is not supported (only 'absolute')");
  } else {
    throw ModelError(config.path() + ": key 'model_type' = '" + type +
                     "' is not a supported encoder (bert, roberta, xlm-roberta, camembert, "
                     "distilbert, electra)");
  }

  if (c.embedding_size == 0) c.embedding_size = c.hidden_size;
  c.max_position_embeddings = config.get_int("max_position_embeddings", 512);
  check_positive(config, "max_position_embeddings", c.max_position_embeddings);
  if (c.hidden_size % c.num_heads != 0)
    throw ModelError(config.path() + ": hidden size " + std::to_string(c.hidden_size) +
                     " is not a multiple of the number of attention heads " +
                     std::to_string(c.num_heads));
  if (c.max_sequence_length() <= 0)
    throw ModelError(config.path() + ": max_position_embeddings " +
                     std::to_string(c.max_position_embeddings) + " leaves no room after pad_token_id " +
                     std::to_string(c.pad_token_id));
  return c;
}

}  // namespace nle
