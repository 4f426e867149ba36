// Matrix products in bfloat16 for the bf16 compute type: weights converted once,
// activations rounded to bfloat16 at each call, float32 accumulation.
#pragma once

#include <cstdint>

#include "nlpengine/tensor.h"

namespace nle::ops {

// An F32 tensor rounded to BF16 (round to nearest even; NaN stays NaN). A memory-mapped
// x's pages are given back as they are read (core/mapped_file.h).
Tensor to_bf16(const Tensor& x);
// The same into out, a BF16 tensor of x's size.
void to_bf16(Tensor& out, const Tensor& x);

// Whether this CPU multiplies bf16 natively with the GEMM library in use (AVX512-BF16 under
// oneDNN, AMX under MKL: ops/cpu/gemm_library.h). Where it does not, the library's bf16
// product runs below float32 speed, and the bf16 compute type's Linear layers multiply
// their weights, rounded to bf16, in float32 instead (layers/linear.cc).
bool bf16_products_native();

// y (M, N) = x (M, K) · wᵀ with x F32 (rounded to bf16 on the fly) and w BF16 (N, K).
void matmul_nt_bf16(Tensor& y, const Tensor& x, const Tensor& w);

namespace cpu {
// Rounds n values to bf16 (nearest even; NaN stays NaN), in parallel from a few thousand
// values, in contiguous parts that follow the row split of the threads' other loops.
void float_to_bf16(uint16_t* out, const float* in, int64_t n);
// float_to_bf16 in the calling thread alone (inside a parallel loop).
void float_to_bf16_serial(uint16_t* out, const float* in, int64_t n);
// c (M, N) = a (M, K) · bᵀ, a and b bf16 bit patterns, b stored (N, K).
void gemm_bf16(float* c, const uint16_t* a, const uint16_t* b, int64_t m, int64_t n, int64_t k);
}  // namespace cpu

namespace reference {
void gemm_bf16(float* c, const uint16_t* a, const uint16_t* b, int64_t m, int64_t n, int64_t k);
}

}  // namespace nle::ops
