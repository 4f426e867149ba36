#include "ops/gemm.h"

namespace nle::ops::reference {

void gemm_f32(float* c, const float* a, const float* b, bool trans_a, bool trans_b, int64_t m,
              int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc, float alpha, float beta) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const float av = trans_a ? a[p * lda + i] : a[i * lda + p];
        const float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        acc += static_cast<double>(av) * bv;
      }
      float& out = c[i * ldc + j];
      out = static_cast<float>(alpha * acc + (beta == 0.f ? 0.0 : static_cast<double>(beta) * out));
    }
  }
}

}  // namespace nle::ops::reference
