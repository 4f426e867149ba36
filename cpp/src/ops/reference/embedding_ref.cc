#include "ops/embedding.h"

namespace nle::ops::reference {

void embedding_f32(float* y, const float* table, const int64_t* ids, int64_t n, int64_t dim,
                   bool accumulate) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < dim; ++c)
      y[i * dim + c] = (accumulate ? y[i * dim + c] : 0.f) + table[ids[i] * dim + c];
}

}  // namespace nle::ops::reference
