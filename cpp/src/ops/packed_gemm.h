// Weights packed once, at load, into the GEMM library's internal layout, so that
// no call spends time re-packing them (most felt with few rows: a short sentence,
// a decoder step).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "nlpengine/tensor.h"
#include "ops/activation.h"

namespace nle::ops {

// A (N, K) weight w for products x (M, K) · wᵀ with any M.
struct PackedWeight {
  std::shared_ptr<void> data;  // the library's buffer (freed with it)
  int64_t out_features = 0;    // N
  int64_t in_features = 0;     // K

  bool defined() const { return data != nullptr; }
};

// Packs an F32 (N, K) weight: for MKL's packed product; for oneDNN's matmul primitive
// where it takes the weight in a layout of its own (onednn::packs_weights: with
// AVX-512); elsewhere (oneDNN without AVX-512) into the column panels of
// ops/cpu/panel_gemm_f32.h.
PackedWeight pack_weight_f32(const Tensor& w);
// The most rows for which a product from the packed weight is faster than the GEMM
// function on the plain one (ops/gemm.h): MKL 64 (measured on MiniLM, 1 thread: batch-1
// latency 14% lower packed; 2,000-row batches 5% slower packed), oneDNN's primitive and
// the panels any number.
int64_t packed_f32_max_rows();
// Packs an I8 (N, K) weight for the int8 product (ops/int8_gemm.h): for MKL's packed
// product, for oneDNN's matmul primitive where it takes the weight in a layout of its own
// (with AVX-512 or AVX-VNNI), elsewhere into the panels of ops/cpu/panel_gemm_u8s8.h.
PackedWeight pack_weight_s8(const Tensor& q);

// Whether bf16 weights are packed here: oneDNN is the GEMM library and has a bf16 matmul
// for this CPU (it needs AVX-512). Elsewhere bf16 products take plain weights through
// MKL's bf16 product (ops/bf16_gemm.h).
bool packs_bf16_weights();
// Packs a BF16 (N, K) weight; throws Error where !packs_bf16_weights().
PackedWeight pack_weight_bf16(const Tensor& w);

// y (M, N) = act(x (M, K) · wᵀ + bias (N)), F32; bias may be null. Under oneDNN the bias
// and activation are applied by the product's kernel.
void matmul_nt_packed(Tensor& y, const Tensor& x, const PackedWeight& w, const Tensor* bias = nullptr,
                      Activation act = Activation::None);
// y (M, N) = act(x (M, K) · wᵀ + bias (N)) with w from pack_weight_bf16; bias may be null.
// The bias and activation are fused into the product. x is F32 (rounded to bf16 on the
// fly) or BF16; y is F32 or BF16 (results rounded to nearest even): a BF16 y feeding
// another bf16 product skips a float32 round trip through memory.
void matmul_nt_bf16_packed(Tensor& y, const Tensor& x, const PackedWeight& w, const Tensor* bias = nullptr,
                           Activation act = Activation::None);

namespace cpu {
// c (M, N) = act(a (M, K) · bᵀ + bias) with b packed by pack_weight_f32; bias (N) may be null.
void gemm_f32_packed(float* c, const float* a, const void* packed_b, int64_t m, int64_t n, int64_t k,
                     const float* bias = nullptr, Activation act = Activation::None);
// c (M, N) = act(a (M, K) · bᵀ + bias) with b packed by pack_weight_bf16; bias (N) may be
// null. With a_padded, a holds packed_s8_rows(m) rows (the same rounding), else m; c holds
// m rows, float32 or, with c_bf16, bf16.
void gemm_bf16_packed(void* c, const uint16_t* a, const void* packed_b, int64_t m, int64_t n, int64_t k,
                      bool a_padded, const float* bias = nullptr, Activation act = Activation::None,
                      bool c_bf16 = false);
// c (M, N) = a (M, K) · bᵀ in exact int32 with b packed by pack_weight_s8. a and c hold
// packed_s8_rows(m) rows (oneDNN's products run on row counts rounded up; the extra rows
// of a are read, those of c overwritten).
int64_t packed_s8_rows(int64_t m);
void gemm_u8s8s32_packed(int32_t* c, const uint8_t* a, const void* packed_b, int64_t m, int64_t n, int64_t k);
// gemm_u8s8s32_packed's sums handed to use(first row, rows, sums (rows, N)) a block of rows
// at a time, in a buffer of this thread's: on one thread (inside a parallel region, or with
// one thread), where the weight takes at most half the core's L2 cache, blocks of rows whose
// sums fill at most the other half, so that the pass that rescales them reads them from L2;
// else all rows at once. A weight past that half would be read again from further out for
// every block (BERT-base's 2.4 MB feed-forward weight in blocks of 64 rows: int8-mixed
// 152.5 -> 141.9 sentences/s on a Sapphire Rapids). a holds packed_s8_rows(m) rows.
void gemm_u8s8s32_packed_blocks(const uint8_t* a, const void* packed_b, int64_t m, int64_t n, int64_t k,
                                const std::function<void(int64_t, int64_t, const int32_t*)>& use);

// How an int8 product's sums c become float32 (ops/int8_gemm.h): y[r, j] =
// act(row_scale[r] · col_scale[j] · (c[r, j] - row_zero[r] · col_sum[j]) + bias[j]); bias
// may be null, and so may row_zero and col_sum together (symmetric activations, whose sums
// need no zero-point term: ops/int16_gemm.h).
struct S8Dequantization {
  const float* row_scale = nullptr;   // M
  const int32_t* row_zero = nullptr;  // M
  const float* col_scale = nullptr;   // N
  const int32_t* col_sum = nullptr;   // N
  const float* bias = nullptr;        // N or null
  Activation act = Activation::None;
};
// y (M, N) = a (M, K) · bᵀ dequantized by dq, b packed by pack_weight_s8, a holding
// packed_s8_rows(m) rows; y float32 or, with y_bf16, bf16 (dequantize_rows_bf16). The
// panels (ops/cpu/panel_gemm_u8s8.h) dequantize each block of sums while it is in cache
// (to float32: bf16 results are rounded afterwards); the libraries' products go through an
// int32 buffer, in gemm_u8s8s32_packed_blocks' blocks of rows. int8-mixed's groups of about
// 1,000 rows had written their sums (6 MB for MiniLM's first feed-forward product) past the
// L2 cache and read them back: MiniLM on a Sapphire Rapids, 2 threads, alternating runs,
// sentences/s: 256-512 tokens 137.6 -> 143.8, 8-128 tokens 936 -> 956; int8's groups of 64
// and more rows, 6-40 tokens and BERT-base unchanged. (The int8 chain's first product in
// such blocks, before its sums are quantized again: 256-512 tokens 158.4 -> 152.2, not kept.)
void gemm_u8s8_dequantize_packed(void* y, const uint8_t* a, const void* packed_b, int64_t m, int64_t n,
                                 int64_t k, const S8Dequantization& dq, bool y_bf16 = false);
}  // namespace cpu

}  // namespace nle::ops
