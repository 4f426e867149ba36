// Options of sequence generation, with the names and meaning of transformers'
// GenerationConfig. A model's defaults come from its generation_config.json
// (or the generation keys of config.json), exactly as transformers reads them.
#pragma once

#include <cstdint>
#include <vector>

#include "nlpengine/tensor.h"

namespace nle {

enum class EarlyStopping { False, True, Never };

struct GenerationOptions {
  int64_t max_length = 20;       // decoder tokens including decoder_start_token_id
  int64_t max_new_tokens = -1;   // when >= 0, replaces max_length (= 1 + max_new_tokens)
  int64_t min_length = 0;
  int64_t min_new_tokens = 0;
  int64_t num_beams = 1;
  float length_penalty = 1.f;
  EarlyStopping early_stopping = EarlyStopping::False;
  int64_t no_repeat_ngram_size = 0;
  float repetition_penalty = 1.f;
  int64_t forced_bos_token_id = -1;          // -1: none
  std::vector<int64_t> forced_eos_token_id;  // empty: none
  int64_t decoder_start_token_id = -1;
  std::vector<int64_t> eos_token_id;  // empty: generate until max_length
  int64_t pad_token_id = -1;          // -1: the first eos token
  bool do_sample = false;
  float temperature = 1.f;
  int64_t top_k = 50;  // applied only when sampling, as in transformers
  float top_p = 1.f;
  uint64_t seed = 0;
  int64_t num_return_sequences = 1;
  // Token sequences never generated (transformers' NoBadWordsLogitsProcessor): a one-token
  // sequence is never chosen (unless it is an end token), a longer one's last token not
  // after the rest.
  std::vector<std::vector<int64_t>> bad_words_ids;
  std::vector<int64_t> suppress_tokens;        // never chosen
  std::vector<int64_t> begin_suppress_tokens;  // not chosen as the first generated token
  // A log-softmax after every processor (transformers' LogitNormalization), so a beam's
  // scores stay log-probabilities where processors removed tokens.
  bool renormalize_logits = false;

  // Decoder length limit after max_new_tokens is applied.
  // The start token plus max_new_tokens (saturating: 2**63 - 1 stays in range), else max_length.
  int64_t effective_max_length() const {
    if (max_new_tokens < 0) return max_length;
    return max_new_tokens < INT64_MAX ? 1 + max_new_tokens : INT64_MAX;
  }
};

struct GenerationResult {
  // (batch * num_return_sequences, length) I64: each row starts with the
  // decoder start token; rows that finished early are padded.
  Tensor sequences;
  // (batch * num_return_sequences,) F32: beam search's length-penalised score;
  // for greedy search and sampling, the sum of the chosen tokens' log-probabilities.
  Tensor scores;
};

}  // namespace nle
