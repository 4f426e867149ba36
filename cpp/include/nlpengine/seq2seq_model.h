// The encoder-decoder runtime: BART, T5 (v1.0 and v1.1) and Marian checkpoints
// in Hugging Face layout, with greedy search, beam search and sampling.
//
//   auto model = nle::Seq2SeqModel::load("path/to/model");
//   nle::GenerationOptions options = model->generation_defaults();
//   options.num_beams = 4;
//   nle::GenerationResult out = model->generate(ids, mask, batch, seq, options);
//
// A loaded model is immutable; generate() may be called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "nlpengine/encoder_model.h"
#include "nlpengine/export.h"
#include "nlpengine/generation.h"
#include "nlpengine/tensor.h"

namespace nle {

struct Seq2SeqInfo {
  std::string model_type;  // "bart", "t5", "marian"
  int64_t vocab_size;
  int64_t decoder_vocab_size;
  int64_t d_model;
  int64_t encoder_layers;
  int64_t decoder_layers;
  int64_t num_heads;
  int64_t max_source_length;  // 0: no limit from positions (T5)
  int64_t pad_token_id;
  int64_t decoder_start_token_id;
};

class NLE_API Seq2SeqModel {
 public:
  // Maps the weights, validates them against config.json and reads the
  // generation defaults. Throws ModelError naming the file and tensor or key.
  static std::shared_ptr<const Seq2SeqModel> load(const std::string& directory, const LoadOptions& options = {});
  // Whether the directory's config.json names an encoder-decoder this runtime runs.
  static bool is_seq2seq_directory(const std::string& directory);
  ~Seq2SeqModel();

  // input_ids/attention_mask: row-major (batch, seq); the mask may be null.
  GenerationResult generate(const int64_t* input_ids, const int64_t* attention_mask, int64_t batch, int64_t seq,
                            const GenerationOptions& options) const;
  // Teacher-forced decoder logits (batch, decoder_seq, decoder_vocab) F32 for
  // decoder_input_ids (batch, decoder_seq).
  Tensor forward(const int64_t* input_ids, const int64_t* attention_mask, int64_t batch, int64_t seq,
                 const int64_t* decoder_input_ids, int64_t decoder_seq) const;

  // The model's defaults (generation_config.json, else config.json's generation keys).
  const GenerationOptions& generation_defaults() const;
  // The defaults with the keys of a JSON object (transformers' names) replaced;
  // throws InvalidInputError naming an unknown key or a bad value.
  GenerationOptions generation_options(const std::string& overrides_json) const;

  const Seq2SeqInfo& info() const;
  // The threads it computes on: LoadOptions::num_threads, at most the CPUs available.
  int num_threads() const;
  // The arithmetic of the Linear layers, as loaded.
  ComputeType compute_type() const;
  const std::string& directory() const;

  struct Impl;  // opaque; public so the implementation's helpers can name it

 private:
  explicit Seq2SeqModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nle
