#pragma once

#include <cstdint>
#include <vector>

namespace nle {

// The real (attention_mask != 0) tokens of a padded (batch, seq) input, packed
// back to back so that no work is spent on padding.
struct PackedBatch {
  int64_t batch = 0;
  int64_t seq = 0;
  std::vector<int64_t> token_ids;     // (T)
  std::vector<int64_t> position_ids;  // (T)
  std::vector<int64_t> type_ids;      // (T); empty when the model takes none
  std::vector<int64_t> source_index;  // (T) row-major index b * seq + j in the input
  std::vector<int64_t> seq_offsets;   // (batch + 1) prefix sums over sequences

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
};

}  // namespace nle
