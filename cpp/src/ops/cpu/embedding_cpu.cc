#include <cstring>

#include "core/half.h"
#include "ops/embedding.h"

namespace nle::ops::cpu {

void embedding_f32(float* y, const float* table, const int64_t* ids, int64_t n, int64_t dim,
                   bool accumulate) {
#pragma omp parallel for schedule(static) if (n * dim > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float* row = table + ids[i] * dim;
    float* out = y + i * dim;
    if (accumulate) {
#pragma omp simd
      for (int64_t c = 0; c < dim; ++c) out[c] += row[c];
    } else {
      std::memcpy(out, row, static_cast<size_t>(dim) * sizeof(float));
    }
  }
}

void widen_half_rows(float* y, const uint16_t* half, int64_t n, bool bf16, bool accumulate) {
  if (!accumulate) {
    if (bf16)
      bf16_to_float_n(y, half, n);
    else
      half_to_float_n(y, half, n);
    return;
  }
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] += bf16 ? bf16_to_float(half[i]) : half_to_float(half[i]);
}

}  // namespace nle::ops::cpu
