#include <cmath>
#include <vector>

#include "ops/hadamard.h"

namespace nle::ops::reference {

namespace {
// Whether i has an odd number of bits set.
bool odd_bits(int64_t i) {
  bool odd = false;
  for (; i != 0; i &= i - 1) odd = !odd;
  return odd;
}
}  // namespace

void hadamard_rows(float* x, int64_t rows, int64_t cols, int64_t block) {
  if (block <= 1) return;
  const double norm = 1.0 / std::sqrt(static_cast<double>(block));
  std::vector<double> y(static_cast<size_t>(block));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < cols; b += block) {
      float* v = x + r * cols + b;
      for (int64_t j = 0; j < block; ++j) {
        double sum = 0.0;
        for (int64_t i = 0; i < block; ++i) {
          sum += odd_bits(i & j) ? -static_cast<double>(v[i]) : static_cast<double>(v[i]);
        }
        y[j] = sum * norm;
      }
      for (int64_t j = 0; j < block; ++j) v[j] = static_cast<float>(y[j]);
    }
}

}  // namespace nle::ops::reference
