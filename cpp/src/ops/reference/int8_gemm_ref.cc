#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/hadamard.h"
#include "ops/int8_gemm.h"

namespace nle::ops::reference {

void quantize_rows_u8(uint8_t* q, float* scale, int32_t* zero, const float* x, int64_t rows, int64_t cols,
                      const float* col_scale, int64_t rotation_block, int32_t code_max) {
  const auto top = static_cast<float>(code_max);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) row[c] = col_scale ? x[r * cols + c] * col_scale[c] : x[r * cols + c];
    reference::hadamard_rows(row.data(), 1, cols, rotation_block);
    float lo = 0.f, hi = 0.f;
    for (int64_t c = 0; c < cols; ++c) {
      lo = std::min(lo, row[c]);
      hi = std::max(hi, row[c]);
    }
    const float s = hi > lo ? (hi - lo) / top : 1.f;
    const float inv = 1.f / s;  // as the CPU kernel computes it, so both agree exactly
    const float z = std::clamp(std::nearbyint(-lo * inv), 0.f, top);
    for (int64_t c = 0; c < cols; ++c)  // round half to even (the default rounding mode)
      q[r * cols + c] = static_cast<uint8_t>(std::nearbyint(std::clamp(row[c] * inv + z, 0.f, top)));
    scale[r] = s;
    zero[r] = static_cast<int32_t>(z);
  }
}

void gemm_u8s8s32(int32_t* c, const uint8_t* a, const int8_t* b, int64_t m, int64_t n, int64_t k) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t acc = 0;
      for (int64_t p = 0; p < k; ++p)
        acc += static_cast<int64_t>(a[i * k + p]) * static_cast<int64_t>(b[j * k + p]);
      c[i * n + j] = static_cast<int32_t>(acc);
    }
}

}  // namespace nle::ops::reference
