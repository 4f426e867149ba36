// The decoder's key/value cache for a generation call.
//
// Storage is indexed by (row, step): row r's keys for decoding step t live at
// storage row r * max_steps + t of each layer's buffer, written once and never
// moved. A history table says, for each row and step, whose storage holds that
// step of the row's hypothesis. Beam search reorders hypotheses by rewriting
// the history (a few integers per row and step) instead of copying keys and
// values: after a reorder, row r's past steps may live in another row's storage.
#pragma once

#include <cstdint>
#include <vector>

#include "nlpengine/tensor.h"

namespace nle {

class KvCache {
 public:
  // dtype: F32, F16 (IEEE half), or I8 (int8 codes with a scale per slot and part of
  // width / parts values: one per head).
  KvCache(int64_t num_layers, int64_t num_rows, int64_t max_steps, int64_t width, DType dtype = DType::F32,
          int64_t parts = 1);

  int64_t num_rows() const { return num_rows_; }
  int64_t max_steps() const { return max_steps_; }
  int64_t width() const { return width_; }
  DType dtype() const { return dtype_; }
  // Layer buffers: (num_rows * max_steps, width) of dtype().
  void* keys(int64_t layer) { return keys_[layer].raw_data(); }
  void* values(int64_t layer) { return values_[layer].raw_data(); }
  // I8 only: (num_rows * max_steps, parts) scales.
  float* key_scales(int64_t layer) { return key_scales_[layer].data<float>(); }
  float* value_scales(int64_t layer) { return value_scales_[layer].data<float>(); }
  // The storage row where `row` writes its keys for `step`.
  int64_t storage_row(int64_t row, int64_t step) const { return row * max_steps_ + step; }

  // Key lists for attending over steps 0..step of each of `rows` (see
  // ops::GatheredAttention): offsets has rows.size() + 1 entries.
  void key_rows(const std::vector<int64_t>& rows, int64_t step, std::vector<int64_t>& offsets,
                std::vector<int64_t>& key_rows) const;
  // rows[i] continues the hypothesis of parents[i] for steps 0..steps-1.
  void reorder(const std::vector<int64_t>& rows, const std::vector<int64_t>& parents, int64_t steps);

 private:
  int64_t num_rows_, max_steps_, width_;
  DType dtype_;
  std::vector<Tensor> keys_, values_, key_scales_, value_scales_;
  std::vector<int64_t> history_;  // (num_rows, max_steps): owner row of each step
  std::vector<int64_t> scratch_;
};

}  // namespace nle
