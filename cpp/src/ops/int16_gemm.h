// Matrix products in 16-bit integers, for int8-mixed on CPUs without native bf16 products
// (AVX512-BF16 or AMX), where it would otherwise pair int8 with float32, and for int8 on
// CPUs whose 8-bit products lose an input bit and that multiply 16-bit values as fast as
// bytes (int8_uses_int16()). There the int8 products of ops/int8_gemm.h would keep 7 bits
// of each input; these keep 12 to 16 at the same speed.
//
// Weights are quantized once per output channel (symmetric, codes within ±code_max: 127
// for most products, more bits for the error-sensitive ones), activations per row at each
// call (symmetric int16, no zero point), and the products summed exactly in int32 by
// AVX2's vpmaddwd (ops/cpu/panel_gemm_s16.h). The activations take the widest range whose
// sums cannot overflow int32 whatever the values: K · activation_max · code_max < 2^31
// (MiniLM: K = 384 keeps all 16 bits; its feed-forward output, K = 1536 with 10-bit
// weights, ±2,736). With that many levels the activations' rounding nearly vanishes and
// the weights' remains: on all-MiniLM-L6-v2, mean-pooled cosine to float32 0.99907 with
// 8-bit weights everywhere against 0.99765 for 8-bit weights with 8-bit activations (a
// float simulation of both, unrotated). Both sides are rotated as the int8 products' are
// (ops/hadamard.h), which spreads a weight row's few large columns over its codes: 8-bit
// weights, 800 real sentences, 0.99950 -> 0.99974 (AMD EPYC with AVX2 alone).
#pragma once

#include <cstdint>
#include <memory>

#include "nlpengine/tensor.h"
#include "ops/activation.h"

namespace nle::ops {

// A Linear weight w (N, K) as w[n,k] ≈ scale[n] · q[n,k], q in [-code_max, code_max],
// packed in panels.
struct Int16Weight {
  std::shared_ptr<void> panels;  // ops/cpu/panel_gemm_s16.h
  bool wide = false;             // codes stored in 16 bits (code_max > 127), else 8
  Tensor scale;                  // F32 (N)
  int32_t code_max = 0;
  // The block of the Hadamard rotation (ops/hadamard.h) the weight was quantized after,
  // which each input row takes before it is quantized; 1: none.
  int64_t rotation_block = 1;
  int64_t out_features = 0;
  int64_t in_features = 0;

  bool defined() const { return panels != nullptr; }
};

// Whether int8-mixed runs its products here in int16 (this file): where the CPU has no
// native bf16 products (ops/cpu/gemm_library.h). Elsewhere they are int8, and the
// error-sensitive ones bf16 (layers/weights.h).
bool int8_mixed_uses_int16();

// Whether the int8 compute type runs its products here in int16 (8-bit weights, 16-bit
// activations): where the CPU's u8·s8 products are exact only with 7-bit activations
// (int8_activation_max() < 255) and it multiplies pairs of 16-bit values as fast as
// bytes (cpu::bytes_multiply_faster_than_words() false). NLPENGINE_INT8_ARITHMETIC=int8 or
// int16 overrides the choice (throws Error for any other value); made once per process.
bool int8_uses_int16();

// Quantizes an (N, K) weight (F32, F16 or BF16) with codes in [-code_max, code_max] (1 <= code_max <=
// 32767 and code_max · K small enough for at least 1 activation level: throws
// InvalidInputError otherwise). A row of zeros gets scale 1 (and stays zero). With rotate,
// w is rotated by the block Hadamard rotation of its width first (hadamard_block(K); none
// where that is 1), and so is each input row at each call. Quantized and packed a panel of
// rows at a time, w's pages of a memory-mapped file given back as they are done
// (release_mapped_pages).
Int16Weight quantize_weight_int16(const Tensor& w, int32_t code_max, bool rotate = true);

// The largest activation code of a product with k inputs and weight codes within
// ±code_max: min(32767, (2^31 - 1) / (k rounded up to even · code_max)).
int32_t int16_activation_max(int64_t k, int32_t code_max);

// y (M, N) = act(x (M, K) · wᵀ + bias (N)), x F32 quantized per row on the fly; bias may be
// null. The bias and activation are applied as the int32 sums are rescaled, block by block
// inside the product.
void matmul_nt_int16(Tensor& y, const Tensor& x, const Int16Weight& w, const Tensor* bias = nullptr,
                     Activation act = Activation::None);

namespace cpu {
// x[r,k] ≈ scale[r] · q[r,k] with q in [-code_max, code_max] (code_max <= 32767); q has
// ldq >= cols values per row, the ones past cols set to zero. With rotation_block > 1 each
// row is rotated first (hadamard_rows with that block), q and scale the rotated row's.
void quantize_rows_s16(int16_t* q, float* scale, const float* x, int64_t rows, int64_t cols, int64_t ldq,
                       int32_t code_max, int64_t rotation_block = 1);
}  // namespace cpu

}  // namespace nle::ops
