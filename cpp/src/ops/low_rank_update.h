// A weight plus a scaled low-rank product, W + scaling · B·A: a LoRA adapter's update
// merged into its base weight at load (core/adapter.h).
#pragma once

#include <cstdint>

namespace nle::ops {

// out (rows, cols) = w (rows, cols) + scaling * b (rows, rank) · a (rank, cols), all
// float32, row-major and contiguous; out may be w. Each element's product is summed over
// the rank first and then scaled and added, as PEFT's merge computes it.
void add_low_rank_product(float* out, const float* w, const float* b, const float* a, int64_t rows,
                          int64_t cols, int64_t rank, float scaling);

}  // namespace nle::ops
