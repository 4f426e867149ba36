#include <cmath>
#include <limits>

#include "ops/softmax.h"

namespace nle::ops::reference {

void softmax_f32(float* y, const float* x, const uint8_t* mask, int64_t rows, int64_t cols,
                 int64_t rows_per_mask_row) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* mr = mask ? mask + (r / rows_per_mask_row) * cols : nullptr;
    double max_v = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < cols; ++c)
      if (!mr || mr[c]) max_v = std::max<double>(max_v, x[r * cols + c]);
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c)
      if (!mr || mr[c]) sum += std::exp(x[r * cols + c] - max_v);
    for (int64_t c = 0; c < cols; ++c) {
      const bool keep = (!mr || mr[c]) && sum > 0;
      y[r * cols + c] = keep ? static_cast<float>(std::exp(x[r * cols + c] - max_v) / sum) : 0.f;
    }
  }
}

}  // namespace nle::ops::reference
