#pragma once

#include <string>

#include "layers/weights.h"
#include "ops/attention.h"

namespace nle {

// T5's relative position bias: a learned scalar per head and bucket of the
// key-minus-query distance (exact buckets for short distances, logarithmic ones
// up to max_distance); bidirectional in the encoder, causal in the decoder.
class RelativePositionBias {
 public:
  RelativePositionBias() = default;
  RelativePositionBias(const Weights& weights, const std::string& name, int64_t num_buckets,
                       int64_t max_distance, int64_t num_heads, bool bidirectional);

  // The bucket of a key at `relative` = key position - query position.
  int64_t bucket(int64_t relative) const;
  // A (num_heads, 2 L - 1) table centred on distance 0, for sequences of up to L tokens.
  Tensor table(int64_t max_len) const;
  // bias (num_heads, step + 1): the bias of keys 0..step for a query at position `step`.
  void for_query(float* bias, int64_t step) const;

 private:
  Tensor weight_;  // (num_buckets, num_heads)
  int64_t num_buckets_ = 0, max_distance_ = 0, num_heads_ = 0;
  bool bidirectional_ = true;
};

}  // namespace nle
