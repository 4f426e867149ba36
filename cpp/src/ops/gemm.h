// General matrix multiply: C = alpha * op(A) · op(B) + beta * C, row-major.
#pragma once

#include <cstdint>

#include "nlpengine/tensor.h"

namespace nle::ops {

// c (M, N) = a (M, K) · b^T, with b stored (N, K) as a Linear weight is; adds
// beta * c. Validates shapes and dtypes, dispatches on device.
void matmul_nt(Tensor& c, const Tensor& a, const Tensor& b, float alpha = 1.f, float beta = 0.f);

namespace cpu {
// Through the GEMM library (MKL). Leading dimensions in elements.
void gemm_f32(float* c, const float* a, const float* b, bool trans_a, bool trans_b, int64_t m,
              int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc, float alpha, float beta);
}  // namespace cpu

namespace reference {
void gemm_f32(float* c, const float* a, const float* b, bool trans_a, bool trans_b, int64_t m,
              int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc, float alpha, float beta);
}  // namespace reference

}  // namespace nle::ops
