#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/cpu/vector_clones.h"
#include "ops/cpu/vector_math.h"
#include "ops/softmax.h"

namespace nle::ops::cpu {

NLE_VECTOR_CLONES void softmax_row_f32(float* x, int64_t cols) {
  float max_v = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max_v)
  for (int64_t c = 0; c < cols; ++c) max_v = x[c] > max_v ? x[c] : max_v;  // vectorises
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) x[c] -= max_v;
  exp_nonpositive_f32(x, cols);  // x - max
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < cols; ++c) sum += x[c];
  const float inv = 1.f / sum;
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) x[c] *= inv;
}

namespace {
NLE_VECTOR_CLONES void subtract_row_max(float* __restrict x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * cols;
    float max_v = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max_v)
    for (int64_t c = 0; c < cols; ++c) max_v = xr[c] > max_v ? xr[c] : max_v;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) xr[c] -= max_v;
  }
}

// Over scores less their row's maximum (or -inf).
NLE_VECTOR_CLONES void exp_block(float* x, int64_t n) { exp_nonpositive_f32(x, n); }

NLE_VECTOR_CLONES void inverse_row_sums(float* __restrict inv_sum, const float* __restrict x, int64_t rows,
                                        int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    inv_sum[r] = 1.f / sum;
  }
}
}  // namespace

void softmax_rows_unnormalized_f32(float* x, float* inv_sum, int64_t rows, int64_t cols) {
  subtract_row_max(x, rows, cols);
  exp_block(x, rows * cols);
  inverse_row_sums(inv_sum, x, rows, cols);
}

void softmax_f32(float* y, const float* x, const uint8_t* mask, int64_t rows, int64_t cols,
                 int64_t rows_per_mask_row) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    if (!mask) {
      if (yr != xr) std::copy(xr, xr + cols, yr);
      softmax_row_f32(yr, cols);
      continue;
    }
    const uint8_t* mr = mask + (r / rows_per_mask_row) * cols;
    float max_v = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < cols; ++c)
      if (mr[c]) max_v = std::max(max_v, xr[c]);
    if (max_v == -std::numeric_limits<float>::infinity()) {
      std::fill(yr, yr + cols, 0.f);
      continue;
    }
    float sum = 0.f;
    for (int64_t c = 0; c < cols; ++c) {
      const float e = mr[c] ? std::exp(xr[c] - max_v) : 0.f;
      yr[c] = e;
      sum += e;
    }
    const float inv = 1.f / sum;
    for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
  }
}

}  // namespace nle::ops::cpu
