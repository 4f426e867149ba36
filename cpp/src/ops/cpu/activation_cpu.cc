#include <algorithm>

#include "ops/activation.h"
#include "ops/cpu/activation_values.h"
#include "ops/cpu/vector_clones.h"

namespace nle::ops::cpu {

namespace {

// Rows are processed in blocks, each by one thread, so that the block stays in cache.
constexpr int64_t kBlockElements = 16384;

// The loops of activation_values.h, compiled for AVX-512 too where the CPU has it.
NLE_VECTOR_CLONES void activate_block(float* __restrict x, int64_t n, Activation act) {
  activate_values(x, n, act);
}

NLE_VECTOR_CLONES void add_bias_block(float* __restrict x, const float* __restrict bias, int64_t rows,
                                      int64_t cols) {
  for (int64_t r = 0; r < rows; ++r, x += cols)
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) x[c] += bias[c];
}

}  // namespace

void activate_f32(float* x, int64_t n, Activation act) { activate_block(x, n, act); }

void bias_activation_f32(float* y, const float* bias, int64_t rows, int64_t cols, Activation act) {
  if (rows == 0 || cols == 0) return;
  const int64_t rows_per_block = std::max<int64_t>(1, kBlockElements / cols);
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * rows_per_block;
    const int64_t r1 = std::min(rows, r0 + rows_per_block);
    if (bias) add_bias_block(y + r0 * cols, bias, r1 - r0, cols);
    activate_block(y + r0 * cols, (r1 - r0) * cols, act);
  }
}

}  // namespace nle::ops::cpu
