#include "layers/relative_position_bias.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace nle {

RelativePositionBias::RelativePositionBias(const Weights& weights, const std::string& name,
                                           int64_t num_buckets, int64_t max_distance, int64_t num_heads,
                                           bool bidirectional)
    : weight_(weights.require(name, {num_buckets, num_heads})),
      num_buckets_(num_buckets),
      max_distance_(max_distance),
      num_heads_(num_heads),
      bidirectional_(bidirectional) {}

int64_t RelativePositionBias::bucket(int64_t relative) const {
  // The arithmetic follows transformers' _relative_position_bucket, in float32
  // like the torch code, so boundary distances land in the same bucket.
  int64_t buckets = num_buckets_;
  int64_t result = 0;
  int64_t distance;
  if (bidirectional_) {
    buckets /= 2;
    if (relative > 0) result += buckets;
    distance = std::llabs(relative);
  } else {
    distance = relative < 0 ? -relative : 0;
  }
  const int64_t max_exact = buckets / 2;
  if (distance < max_exact) return result + distance;
  const float ratio = static_cast<float>(distance) / static_cast<float>(max_exact);
  const float log_scale = static_cast<float>(std::log(static_cast<double>(max_distance_) / max_exact));
  const float scaled = std::log(ratio) / log_scale * static_cast<float>(buckets - max_exact);
  const int64_t large = std::min<int64_t>(max_exact + static_cast<int64_t>(scaled), buckets - 1);
  return result + large;
}

Tensor RelativePositionBias::table(int64_t max_len) const {
  const int64_t width = std::max<int64_t>(2 * max_len - 1, 1), center = std::max<int64_t>(max_len - 1, 0);
  Tensor t(DType::F32, {num_heads_, width});
  const float* w = weight_.data<float>();
  float* out = t.data<float>();
  for (int64_t c = 0; c < width; ++c) {
    const int64_t b = bucket(c - center);
    for (int64_t h = 0; h < num_heads_; ++h) out[h * width + c] = w[b * num_heads_ + h];
  }
  return t;
}

void RelativePositionBias::for_query(float* bias, int64_t step) const {
  const float* w = weight_.data<float>();
  for (int64_t j = 0; j <= step; ++j) {
    const int64_t b = bucket(j - step);
    for (int64_t h = 0; h < num_heads_; ++h) bias[h * (step + 1) + j] = w[b * num_heads_ + h];
  }
}

}  // namespace nle
