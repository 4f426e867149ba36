#include <mkl.h>

#include "ops/cpu/gemm_library.h"
#include "ops/gemm.h"

namespace nle::ops::cpu {

void gemm_f32(float* c, const float* a, const float* b, bool trans_a, bool trans_b, int64_t m, int64_t n,
              int64_t k, int64_t lda, int64_t ldb, int64_t ldc, float alpha, float beta) {
  if (m == 0 || n == 0) return;
  if (gemm_library() == GemmLibrary::OneDnn) {
    onednn::sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<MKL_INT>(m), static_cast<MKL_INT>(n), static_cast<MKL_INT>(k), alpha, a,
              static_cast<MKL_INT>(lda), b, static_cast<MKL_INT>(ldb), beta, c, static_cast<MKL_INT>(ldc));
}

}  // namespace nle::ops::cpu
