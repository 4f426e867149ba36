// What the search algorithms need from a model: decoding steps over rows of a
// KV cache, and beam reordering. Row r decodes for source r / rows_per_source.
#pragma once

#include <cstdint>
#include <vector>

#include "nlpengine/tensor.h"

namespace nle {

class DecoderSession {
 public:
  virtual ~DecoderSession() = default;
  virtual int64_t vocab_size() const = 0;
  // Feeds tokens[i] to cache row rows[i] at decoder position `step` (0-based)
  // and returns the next-token logits, (rows.size(), vocab_size) F32.
  virtual Tensor step(const std::vector<int64_t>& rows, const std::vector<int64_t>& tokens, int64_t step) = 0;
  // rows[i] continues the hypothesis of parents[i] (same source) for positions 0..steps-1.
  virtual void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& parents, int64_t steps) = 0;
};

// Sequences a search produced, in row order, and their scores.
struct SearchOutput {
  std::vector<std::vector<int64_t>> sequences;
  std::vector<float> scores;
  int64_t fill_token = 0;  // pads the shorter rows
};

}  // namespace nle
