// Reading generation options: a model's generation_config.json (or the
// generation keys of its config.json), and caller overrides as a JSON object.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/config.h"
#include "nlpengine/generation.h"

namespace nle {

// The defaults of a model directory, as transformers' GenerationConfig
// resolves them (generation_config.json when present, else config.json). A token id
// outside [0, vocab_size) is a ModelError naming the file and the key.
GenerationOptions read_generation_defaults(const std::string& directory, const Config& model_config,
                                           int64_t decoder_start_fallback, int64_t vocab_size);
// Replaces the options named in `json`. Unknown keys throw InvalidInputError
// when strict (caller overrides) and are ignored otherwise (files carry more keys).
void apply_generation_json(GenerationOptions& options, const nlohmann::json& json, const std::string& source,
                           bool strict);
// Checks values and combinations; throws InvalidInputError naming the option.
void validate_generation_options(const GenerationOptions& options, int64_t vocab_size);

}  // namespace nle
