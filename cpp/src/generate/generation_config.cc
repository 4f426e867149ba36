#include "generate/generation_config.h"

#include <sys/stat.h>

#include <fstream>

#include "nlpengine/errors.h"

namespace nle {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& source, const std::string& key, const std::string& expected,
                      const json& value) {
  throw InvalidInputError(source + ": generation option '" + key + "' must be " + expected + ", got " +
                          value.dump());
}

int64_t as_int(const std::string& source, const std::string& key, const json& v) {
  int64_t value;
  if (json_to_int64(v, &value)) return value;
  bad(source, key, "an integer", v);
}

float as_float(const std::string& source, const std::string& key, const json& v) {
  if (v.is_number()) return v.get<float>();
  bad(source, key, "a number", v);
}

bool as_bool(const std::string& source, const std::string& key, const json& v) {
  if (v.is_boolean()) return v.get<bool>();
  bad(source, key, "true or false", v);
}

int64_t as_id(const std::string& source, const std::string& key, const json& v) {
  const int64_t id = as_int(source, key, v);
  if (id < 0) bad(source, key, "a non-negative token id", v);
  return id;
}

std::vector<int64_t> as_ids(const std::string& source, const std::string& key, const json& v) {
  if (v.is_array()) {
    std::vector<int64_t> ids;
    for (const auto& x : v) ids.push_back(as_id(source, key, x));
    return ids;
  }
  return {as_id(source, key, v)};
}

// A list of token sequences, each a non-empty list of token ids (bad_words_ids).
std::vector<std::vector<int64_t>> as_sequences(const std::string& source, const std::string& key,
                                               const json& v) {
  if (!v.is_array()) bad(source, key, "a list of lists of token ids", v);
  std::vector<std::vector<int64_t>> sequences;
  for (const auto& s : v) {
    if (!s.is_array() || s.empty()) bad(source, key, "a list of non-empty lists of token ids", v);
    sequences.push_back(as_ids(source, key, s));
  }
  return sequences;
}

// Switches option `key` off as transformers' GenerationConfig does when it is None; options
// without an off state (num_beams, length_penalty, do_sample, ...) are left as they are.
void switch_off(GenerationOptions& o, const std::string& key) {
  const GenerationOptions off;
  if (key == "max_length")
    o.max_length = off.max_length;
  else if (key == "max_new_tokens")
    o.max_new_tokens = off.max_new_tokens;
  else if (key == "min_length")
    o.min_length = off.min_length;
  else if (key == "min_new_tokens")
    o.min_new_tokens = off.min_new_tokens;
  else if (key == "early_stopping")
    o.early_stopping = off.early_stopping;
  else if (key == "no_repeat_ngram_size")
    o.no_repeat_ngram_size = off.no_repeat_ngram_size;
  else if (key == "repetition_penalty")
    o.repetition_penalty = off.repetition_penalty;
  else if (key == "forced_bos_token_id")
    o.forced_bos_token_id = off.forced_bos_token_id;
  else if (key == "forced_eos_token_id")
    o.forced_eos_token_id.clear();
  else if (key == "eos_token_id")
    o.eos_token_id.clear();
  else if (key == "pad_token_id")
    o.pad_token_id = off.pad_token_id;
  else if (key == "temperature")
    o.temperature = off.temperature;
  else if (key == "top_k")
    o.top_k = 0;  // None: no top-k filter (the default 50 is one)
  else if (key == "top_p")
    o.top_p = off.top_p;
  else if (key == "bad_words_ids")
    o.bad_words_ids.clear();
  else if (key == "suppress_tokens")
    o.suppress_tokens.clear();
  else if (key == "begin_suppress_tokens")
    o.begin_suppress_tokens.clear();
  else if (key == "renormalize_logits")
    o.renormalize_logits = off.renormalize_logits;
}

std::string token_outside_vocabulary(const char* name, int64_t id, int64_t vocab_size) {
  return std::string(name) + " " + std::to_string(id) + " is outside the vocabulary [0, " +
         std::to_string(vocab_size) + ")";
}

// The first token id of `o` outside [0, vocab_size), as a message; empty when there is
// none. Unset ids (decoder_start_token_id, pad_token_id and forced_bos_token_id below 0)
// are not checked.
std::string token_id_problem(const GenerationOptions& o, int64_t vocab_size) {
  auto outside = [&](int64_t id) { return id < 0 || id >= vocab_size; };
  if (o.decoder_start_token_id >= vocab_size)
    return token_outside_vocabulary("decoder_start_token_id", o.decoder_start_token_id, vocab_size);
  for (int64_t id : o.eos_token_id)
    if (outside(id)) return token_outside_vocabulary("eos_token_id", id, vocab_size);
  for (int64_t id : o.forced_eos_token_id)
    if (outside(id)) return token_outside_vocabulary("forced_eos_token_id", id, vocab_size);
  if (o.forced_bos_token_id >= vocab_size)
    return token_outside_vocabulary("forced_bos_token_id", o.forced_bos_token_id, vocab_size);
  if (o.pad_token_id >= vocab_size)
    return token_outside_vocabulary("pad_token_id", o.pad_token_id, vocab_size);
  for (const auto& sequence : o.bad_words_ids)
    for (int64_t id : sequence)
      if (outside(id)) return token_outside_vocabulary("bad_words_ids", id, vocab_size);
  for (int64_t id : o.suppress_tokens)
    if (outside(id)) return token_outside_vocabulary("suppress_tokens", id, vocab_size);
  for (int64_t id : o.begin_suppress_tokens)
    if (outside(id)) return token_outside_vocabulary("begin_suppress_tokens", id, vocab_size);
  return "";
}

}  // namespace

void apply_generation_json(GenerationOptions& o, const json& j, const std::string& source, bool strict) {
  if (!j.is_object()) throw InvalidInputError(source + ": generation options must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (v.is_null()) {
      // transformers' None: the options it switches off (a processor not applied, no forced or
      // end token, the length limit of max_length) take their off values; the others have no
      // off state and keep the current value, as if unset.
      switch_off(o, k);
      continue;
    }
    if (k == "max_length") o.max_length = as_int(source, k, v);
    else if (k == "max_new_tokens") o.max_new_tokens = as_int(source, k, v);
    else if (k == "min_length") o.min_length = as_int(source, k, v);
    else if (k == "min_new_tokens") o.min_new_tokens = as_int(source, k, v);
    else if (k == "num_beams") o.num_beams = as_int(source, k, v);
    else if (k == "length_penalty") o.length_penalty = as_float(source, k, v);
    else if (k == "early_stopping") {
      if (v.is_string() && v.get<std::string>() == "never") o.early_stopping = EarlyStopping::Never;
      else if (v.is_boolean()) o.early_stopping = v.get<bool>() ? EarlyStopping::True : EarlyStopping::False;
      else bad(source, k, "true, false or \"never\"", v);
    } else if (k == "no_repeat_ngram_size") o.no_repeat_ngram_size = as_int(source, k, v);
    else if (k == "repetition_penalty") o.repetition_penalty = as_float(source, k, v);
    else if (k == "forced_bos_token_id") o.forced_bos_token_id = as_id(source, k, v);
    else if (k == "forced_eos_token_id") o.forced_eos_token_id = as_ids(source, k, v);
    else if (k == "decoder_start_token_id") o.decoder_start_token_id = as_id(source, k, v);
    else if (k == "eos_token_id") o.eos_token_id = as_ids(source, k, v);
    else if (k == "pad_token_id") o.pad_token_id = as_id(source, k, v);
    else if (k == "do_sample") o.do_sample = as_bool(source, k, v);
    else if (k == "temperature") o.temperature = as_float(source, k, v);
    else if (k == "top_k") o.top_k = as_int(source, k, v);
    else if (k == "top_p") o.top_p = as_float(source, k, v);
    else if (k == "seed") o.seed = static_cast<uint64_t>(as_int(source, k, v));
    else if (k == "num_return_sequences") o.num_return_sequences = as_int(source, k, v);
    else if (k == "bad_words_ids")
      o.bad_words_ids = as_sequences(source, k, v);
    else if (k == "suppress_tokens")
      o.suppress_tokens = as_ids(source, k, v);
    else if (k == "begin_suppress_tokens")
      o.begin_suppress_tokens = as_ids(source, k, v);
    else if (k == "renormalize_logits")
      o.renormalize_logits = as_bool(source, k, v);
    else if (strict)
      throw InvalidInputError(source + ": unknown generation option '" + k + "'");
  }
}

GenerationOptions read_generation_defaults(const std::string& directory, const Config& model_config,
                                           int64_t decoder_start_fallback, int64_t vocab_size) {
  GenerationOptions o;
  const std::string path = directory + "/generation_config.json";
  struct stat st;
  const bool has_file = ::stat(path.c_str(), &st) == 0;
  if (has_file) {
    const Config file = Config::from_file(path);
    try {
      apply_generation_json(o, file.json(), path, false);
    } catch (const InvalidInputError& e) {
      throw ModelError(e.what());
    }
  } else {
    // transformers' GenerationConfig.from_model_config: the same keys in config.json.
    try {
      apply_generation_json(o, model_config.json(), model_config.path(), false);
    } catch (const InvalidInputError& e) {
      throw ModelError(e.what());
    }
    o.seed = 0;
  }
  // A token id outside the vocabulary is the file's error, named at load: every generate()
  // that does not override it would fail.
  const std::string problem = token_id_problem(o, vocab_size);
  if (!problem.empty()) throw ModelError((has_file ? path : model_config.path()) + ": " + problem);
  if (o.decoder_start_token_id < 0) {
    o.decoder_start_token_id = model_config.get_int("decoder_start_token_id", decoder_start_fallback);
    if (o.decoder_start_token_id < 0 || o.decoder_start_token_id >= vocab_size)
      throw ModelError(
          model_config.path() + ": " +
          token_outside_vocabulary("decoder_start_token_id", o.decoder_start_token_id, vocab_size));
  }
  return o;
}

void validate_generation_options(const GenerationOptions& o, int64_t vocab_size) {
  auto fail = [](const std::string& message) { throw InvalidInputError("generation options: " + message); };
  if (o.num_beams < 1) fail("num_beams must be at least 1, got " + std::to_string(o.num_beams));
  if (o.num_return_sequences < 1)
    fail("num_return_sequences must be at least 1, got " + std::to_string(o.num_return_sequences));
  if (o.num_beams > 1 && o.num_return_sequences > o.num_beams)
    fail("num_return_sequences (" + std::to_string(o.num_return_sequences) + ") must not exceed num_beams (" +
         std::to_string(o.num_beams) + ")");
  if (o.num_beams == 1 && !o.do_sample && o.num_return_sequences > 1)
    fail("greedy search returns one sequence per input; num_return_sequences > 1 needs num_beams > 1 or do_sample");
  if (o.effective_max_length() < 1) fail("max_length/max_new_tokens must leave room for at least the start token");
  if (o.max_new_tokens < -1) fail("max_new_tokens must not be negative");
  if (o.min_new_tokens < 0 || o.min_length < 0) fail("min_length and min_new_tokens must not be negative");
  if (o.no_repeat_ngram_size < 0) fail("no_repeat_ngram_size must not be negative");
  if (!(o.repetition_penalty > 0.f)) fail("repetition_penalty must be positive");
  if (o.do_sample && !(o.temperature > 0.f)) fail("temperature must be positive");
  if (o.top_k < 0) fail("top_k must not be negative");
  if (!(o.top_p > 0.f && o.top_p <= 1.f)) fail("top_p must be in (0, 1]");
  if (o.decoder_start_token_id < 0)
    fail(token_outside_vocabulary("decoder_start_token_id", o.decoder_start_token_id, vocab_size));
  const std::string problem = token_id_problem(o, vocab_size);
  if (!problem.empty()) fail(problem);
}

}  // namespace nle
