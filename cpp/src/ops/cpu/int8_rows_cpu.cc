#include <algorithm>
#include <cmath>
#include <string>

#include "nlpengine/errors.h"
#include "ops/int8_rows.h"

namespace nle::ops {

void quantize_rows_int8(int8_t* out, float* scales, const float* in, int64_t rows, int64_t d) {
  int64_t bad_row = rows;  // the first row with a value that is not finite
#pragma omp parallel for schedule(static) reduction(min : bad_row) if (rows * d > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in + r * d;
    float largest = 0.f, probe = 0.f;  // probe: NaN if any value is NaN or infinite
#pragma omp simd reduction(max : largest) reduction(+ : probe)
    for (int64_t i = 0; i < d; ++i) {
      largest = std::max(largest, std::fabs(x[i]));
      probe += x[i] * 0.f;
    }
    if (probe != 0.f) {
      bad_row = std::min(bad_row, r);
      continue;
    }
    const float inverse = largest > 0.f ? 127.f / largest : 0.f;
    scales[r] = largest / 127.f;
    int8_t* q = out + r * d;
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) q[i] = static_cast<int8_t>(std::nearbyint(x[i] * inverse));
  }
  if (bad_row < rows)
    throw InvalidInputError("quantize_rows_int8: row " + std::to_string(bad_row) +
                            " holds a value that is not finite");
}

}  // namespace nle::ops
