#include "generate/kv_cache.h"

#include <algorithm>
#include <string>

namespace nle {

KvCache::KvCache(int64_t num_layers, int64_t num_rows, int64_t max_steps, int64_t width, DType dtype,
                 int64_t parts)
    : num_rows_(num_rows), max_steps_(max_steps), width_(width), dtype_(dtype) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::I8)
    throw Error(std::string("KvCache: keys and values are F32, F16 or I8, not ") + dtype_name(dtype));
  if (dtype == DType::I8 && (parts <= 0 || width % parts != 0))
    throw Error("KvCache: int8 rows of " + std::to_string(width) + " do not split into " +
                std::to_string(parts) + " parts");
  if (dtype == DType::I8)
    for (int64_t l = 0; l < num_layers; ++l) {
      key_scales_.emplace_back(DType::F32, Shape{num_rows * max_steps, parts});
      value_scales_.emplace_back(DType::F32, Shape{num_rows * max_steps, parts});
    }
  keys_.reserve(static_cast<size_t>(num_layers));
  values_.reserve(static_cast<size_t>(num_layers));
  for (int64_t l = 0; l < num_layers; ++l) {
    keys_.emplace_back(dtype, Shape{num_rows * max_steps, width});
    values_.emplace_back(dtype, Shape{num_rows * max_steps, width});
  }
  history_.resize(static_cast<size_t>(num_rows * max_steps));
  for (int64_t r = 0; r < num_rows; ++r)
    std::fill(history_.begin() + r * max_steps, history_.begin() + (r + 1) * max_steps, r);
}

void KvCache::key_rows(const std::vector<int64_t>& rows, int64_t step, std::vector<int64_t>& offsets,
                       std::vector<int64_t>& out) const {
  offsets.resize(rows.size() + 1);
  out.resize(rows.size() * static_cast<size_t>(step + 1));
  offsets[0] = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t* h = history_.data() + rows[i] * max_steps_;
    int64_t* dst = out.data() + i * (step + 1);
    for (int64_t t = 0; t < step; ++t) dst[t] = h[t] * max_steps_ + t;
    dst[step] = rows[i] * max_steps_ + step;  // the step being decoded is always the row's own
    offsets[i + 1] = offsets[i] + step + 1;
  }
}

void KvCache::reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& parents, int64_t steps) {
  // Copy the parents' histories first: a parent may itself be reordered.
  scratch_.resize(parents.size() * static_cast<size_t>(steps));
  for (size_t i = 0; i < parents.size(); ++i)
    std::copy_n(history_.begin() + parents[i] * max_steps_, steps, scratch_.begin() + i * steps);
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy_n(scratch_.begin() + i * steps, steps, history_.begin() + rows[i] * max_steps_);
}

}  // namespace nle
