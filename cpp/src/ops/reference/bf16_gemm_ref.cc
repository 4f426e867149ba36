#include "core/half.h"
#include "ops/bf16_gemm.h"

namespace nle::ops::reference {

void gemm_bf16(float* c, const uint16_t* a, const uint16_t* b, int64_t m, int64_t n, int64_t k) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p)
        acc += static_cast<double>(bf16_to_float(a[i * k + p])) * bf16_to_float(b[j * k + p]);
      c[i * n + j] = static_cast<float>(acc);
    }
}

}  // namespace nle::ops::reference
