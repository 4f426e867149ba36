// Matrix products in 8-bit integers for the int8 compute type: weights quantized
// once per output channel (symmetric int8), activations quantized per row at each
// call (asymmetric uint8, so a row's whole range gets all 256 levels), products
// accumulated exactly in int32, then rescaled to float32.
//
// Weights use codes -127..127 and activations 0..255 where the CPU has VNNI (a 32-bit
// dot-product instruction). Without it the GEMM libraries (and ops/cpu/panel_gemm_u8s8)
// may add two u8·s8 products in a saturating 16-bit sum (vpmaddubsw), which 2 · 255 · 127
// overflows: where a probe finds that, activations use codes 0..127 (one bit less), whose
// pair sums (at most 2 · 127 · 127 = 32,258) are exact. With the rotation below, that costs
// less than a bit off the weights (codes -63..63, the earlier choice): on all-MiniLM-L6-v2
// (AMD EPYC with AVX2 alone, oneDNN), 800 real sentences' pooled cosine to float32
// 0.99924 -> 0.99951, least 0.99713 -> 0.99834. (Unrotated it was the other way round:
// one test sentence's pooled cosine fell to 0.954 with 7-bit activations.)
// Where such a CPU multiplies 16-bit values as fast as bytes, the int8 compute type runs
// its products in 16-bit integers instead (ops/int16_gemm.h, int8_uses_int16()).
//
// A product whose input is a norm's output may be smoothed (SmoothQuant, with the norm's
// parameters standing in for calibration): x · wᵀ = (x / s) · (w · s)ᵀ with one s per
// input channel, s = sqrt(|γ| + |β|) / sqrt(max_n |w[n,:]|). Channels the norm makes
// large are shrunk before a row shares one scale across them, and the weight columns
// they meet grow to match, so the two roundings share the error more evenly.
//
// Then (smoothed or not) both sides are rotated by a block Walsh–Hadamard matrix R
// (ops/hadamard.h): x · wᵀ = (x · R) · (w · R)ᵀ, the weight rotated at load, each input
// row before it is quantized, so that neither's rounding is set by a few outlier channels.
#pragma once

#include <cstdint>

#include "nlpengine/tensor.h"
#include "ops/activation.h"
#include "ops/packed_gemm.h"

namespace nle::ops {

// A Linear weight w (N, K) as w[n,k] ≈ scale[n] · q[n,k], q in [-int8_weight_max(),
// int8_weight_max()], its inputs quantized to codes 0..activation_max.
struct Int8Weight {
  Tensor q;             // I8 (N, K); undefined once packed
  PackedWeight packed;  // q in the GEMM library's layout, when packed
  Tensor scale;         // F32 (N)
  Tensor row_sum;       // I32 (N): Σ_k q[n,k], which cancels the activations' zero points
  // F32 (K): 1 / s per input channel when w · s was quantized (smoothing); else undefined.
  Tensor input_scale_inverse;
  // F32 (N): Σ_k (w_q[n,k] - w[n,k]) · mean[k], the weight rounding's error on an input of
  // the given expected value (w_q the quantized weight as the products apply it), when one
  // was given; subtracted from the product's bias it cancels that error on average (bias
  // correction). Else undefined.
  Tensor rounding_bias;
  // The block of the Hadamard rotation (ops/hadamard.h) q was quantized after, which each
  // input row takes before it is quantized; 1: none.
  int64_t rotation_block = 1;
  // The largest code of the input rows (int8_activation_max() when q was quantized).
  int32_t activation_max = 255;
  int64_t out_features = 0;
  int64_t in_features = 0;
};

// Quantizes an (N, K) weight: F32, or F16 or BF16 as a checkpoint stores it (widened a row at
// a time, ops/weight_rows.h). A row of zeros gets scale 1 (and stays zero).
// With pack, q is packed for the GEMM library (and the plain copy dropped). With
// input_scale (F32 K, positive), w · input_scale is quantized and the activations are
// divided by it at each call (smoothing, above). With input_mean (F32 K), the expected
// input, rounding_bias is computed. With rotate, w (· input_scale) is rotated by the
// block Hadamard rotation of its width (hadamard_block(K); none where that is 1) before it
// is quantized, and so is each input row at each call. w is read once, a few thousand rows
// at a time, and the rows' pages of a memory-mapped file given back as they are done
// (release_mapped_pages): converting a mapped weight never holds all of it resident.
Int8Weight quantize_weight_int8(const Tensor& w, bool pack = false, const Tensor* input_scale = nullptr,
                                const Tensor* input_mean = nullptr, bool rotate = true);

// The smoothing scales s (F32 K) of a weight w (N, K; F32, F16 or BF16) whose input is the output of a norm
// with weight norm_weight (K) and, for a layer norm, bias norm_bias (K; null for an RMS
// norm): s = sqrt((|γ| + |β|) / max_n |w[n,:]|), divided by its mean. Both magnitudes are
// floored at 1e-6, so an all-zero channel gets a finite scale. Gives back w's memory-mapped
// pages as it reads them, as quantize_weight_int8 does.
Tensor smoothing_scales(const Tensor& w, const Tensor& norm_weight, const Tensor* norm_bias);

// y (M, N) = act(x (M, K) · wᵀ + bias (N)), x F32 quantized per row on the fly; bias may be
// null. The bias and activation are applied as the int32 sums are rescaled, while they
// are in cache (with a packed weight in panels, block by block inside the product). y is
// F32, or BF16 for a bf16 product's input (rounded as to_bf16 rounds the F32 result).
void matmul_nt_int8(Tensor& y, const Tensor& x, const Int8Weight& w, const Tensor* bias = nullptr,
                    Activation act = Activation::None);

// y (M, N2) = act(x · w1ᵀ + b1) · w2ᵀ + b2: two int8 products in a row (a feed-forward
// block), w2 unsmoothed. The first product's int32 sums are rescaled, activated and
// quantized for the second row by row while in cache, so its (M, N1) results never go
// through memory as float32 (nor are they read back to be quantized): the same bits as
// matmul_nt_int8 twice through a float32 hidden tensor. b1, b2 may be null; y F32 or BF16.
void matmul_nt_int8_chain(Tensor& y, const Tensor& x, const Int8Weight& w1, const Tensor* b1, Activation act,
                          const Int8Weight& w2, const Tensor* b2);

// The codes of the int8 products on this CPU: activations 0..activation, weights
// -weight..weight, the widest the GEMM library's plain and packed products sum exactly.
struct Int8Codes {
  int32_t activation = 255;
  int32_t weight = 127;
};
// Found the first time it is called by probing the library's products with the worst
// case against the exact reference: activations 0..255 and weights -127..127 where they
// are exact (VNNI; MKL's kernels on the AVX2-only hosts tried), else 0..127 and -127..127 (see above);
// throws Error if neither is.
Int8Codes int8_codes();
// int8_codes().weight and int8_codes().activation.
int32_t int8_weight_max();
int32_t int8_activation_max();

namespace cpu {
// x[r,k] · col_scale[k] ≈ scale[r] · (q[r,k] - zero[r]), q and zero in [0, code_max]
// (code_max 255 or 127; a row's range over code_max steps); without col_scale (null)
// x[r,k] itself. With rotation_block > 1 each row (· col_scale) is rotated first
// (hadamard_rows with that block), q and scale the rotated row's.
void quantize_rows_u8(uint8_t* q, float* scale, int32_t* zero, const float* x, int64_t rows, int64_t cols,
                      const float* col_scale = nullptr, int64_t rotation_block = 1, int32_t code_max = 255);
// c (M, N) = a (M, K) · bᵀ with b stored (N, K); exact int32 sums.
void gemm_u8s8s32(int32_t* c, const uint8_t* a, const int8_t* b, int64_t m, int64_t n, int64_t k);
// y[r,n] = act(row_scale[r] · col_scale[n] · (c[r,n] - row_zero[r] · col_sum[n]) + bias[n])
// (no bias when null; no zero-point term when col_sum is null).
void dequantize_rows(float* y, const int32_t* c, const float* row_scale, const int32_t* row_zero,
                     const float* col_scale, const int32_t* col_sum, const float* bias, int64_t m, int64_t n,
                     Activation act = Activation::None);
// dequantize_rows quantized for the next int8 product (quantize_rows_u8 without column
// scales, rotated by rotation_block, to codes 0..code_max): each row is rescaled and
// activated in float32 while in cache, then quantized into q (M, N), q_scale and q_zero (M).
void dequantize_rows_u8(uint8_t* q, float* q_scale, int32_t* q_zero, const int32_t* c, const float* row_scale,
                        const int32_t* row_zero, const float* col_scale, const int32_t* col_sum,
                        const float* bias, int64_t m, int64_t n, Activation act = Activation::None,
                        int64_t rotation_block = 1, int32_t code_max = 255);
// dequantize_rows rounded to bf16 (as float_to_bf16 rounds dequantize_rows' results): each
// row is rescaled and activated in float32 while in cache, then rounded.
void dequantize_rows_bf16(uint16_t* y, const int32_t* c, const float* row_scale, const int32_t* row_zero,
                          const float* col_scale, const int32_t* col_sum, const float* bias, int64_t m,
                          int64_t n, Activation act = Activation::None);
}  // namespace cpu

namespace reference {
void quantize_rows_u8(uint8_t* q, float* scale, int32_t* zero, const float* x, int64_t rows, int64_t cols,
                      const float* col_scale = nullptr, int64_t rotation_block = 1, int32_t code_max = 255);
void gemm_u8s8s32(int32_t* c, const uint8_t* a, const int8_t* b, int64_t m, int64_t n, int64_t k);
}  // namespace reference

}  // namespace nle::ops
