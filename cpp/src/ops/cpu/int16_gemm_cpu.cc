#include <cmath>

#include "ops/cpu/vector_clones.h"
#include "ops/int16_gemm.h"

namespace nle::ops::cpu {

namespace {
// One row of quantize_rows_s16. Rounds to nearest, ties to even, for |v| < 2^22 by adding
// and taking away 1.5 · 2^23, which leaves no fraction bits; written so the loops vectorise.
NLE_VECTOR_CLONES void quantize_row_s16(int16_t* __restrict out, float* scale, const float* __restrict row,
                                        int64_t cols, int64_t ldq, float top) {
  float amax = 0.f;
#pragma omp simd reduction(max : amax)
  for (int64_t c = 0; c < cols; ++c) {
    const float v = std::fabs(row[c]);
    amax = v > amax ? v : amax;
  }
  const float s = amax > 0.f ? amax / top : 1.f;
  const float inv = 1.f / s;
  constexpr float kMagic = 12582912.f;
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) {
    float v = row[c] * inv;
    v = v < -top ? -top : v;
    v = v > top ? top : v;
    out[c] = static_cast<int16_t>(static_cast<int32_t>((v + kMagic) - kMagic));
  }
  for (int64_t c = cols; c < ldq; ++c) out[c] = 0;
  *scale = s;
}
}  // namespace

void quantize_rows_s16(int16_t* q, float* scale, const float* x, int64_t rows, int64_t cols, int64_t ldq,
                       int32_t code_max) {
  const auto top = static_cast<float>(code_max);
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
  for (int64_t r = 0; r < rows; ++r) quantize_row_s16(q + r * ldq, scale + r, x + r * cols, cols, ldq, top);
}

}  // namespace nle::ops::cpu
