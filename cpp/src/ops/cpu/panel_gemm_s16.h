// The int16 product (16-bit activations times weights of up to 16 bits, exact int32
// sums) from a weight packed once into column panels: AVX2's vpmaddwd multiplies 16 pairs
// of 16-bit values and adds each pair into 32 bits, so, unlike the u8·s8 products of
// ops/cpu/panel_gemm_u8s8.h, no 16-bit sum can saturate and weights keep all their bits.
// On an AVX2-only AMD EPYC one core runs it at about 0.8 times the u8·s8 kernel's rate
// (156 against 193 GOP/s, a 96 × 1536 × 384 product in L2).
//
// A panel holds kS16PanelColumns output columns; per pair of consecutive k it stores each
// column's 2 codes together, the layout of vpmaddwd: one broadcast of 2 activations times
// one vector of 8 columns' pairs gives those columns' pair sums in 32 bits. Codes are
// stored in 8 bits where they fit (|w| <= 127, sign-extended on load: same speed, half the
// memory), else in 16.
#pragma once

#include <cstdint>
#include <memory>

#include "ops/packed_gemm.h"

namespace nle::ops::cpu {

constexpr int64_t kS16PanelColumns = 16;
constexpr int64_t kS16BlockRows = 6;

// The (N, K) row-major weight codes in panels: ceil(N / 16) panels of ceil(K / 2) pairs of
// 32 codes, each 1 byte when wide is false (every |code| <= 127), else 2; codes past N or
// K are zero.
std::shared_ptr<void> pack_panels_s16(const int16_t* w, int64_t n, int64_t k, bool wide);
// The same panels made one at a time, so that a weight's codes need not all exist at once
// (ops::quantize_weight_int16 quantizes a panel's rows and packs them): the buffer for an
// (N, K) weight, then panel p < ceil(N / 16) from `codes`, its min(16, N - 16p) rows of K
// codes (row 16p first).
std::shared_ptr<void> allocate_panels_s16(int64_t n, int64_t k, bool wide);
void pack_panel_s16(void* panels, int64_t p, const int16_t* codes, int64_t n, int64_t k, bool wide);

// y (M, N) = a (M, K) · wᵀ dequantized by dq (symmetric: dq.row_zero and dq.col_sum
// null), w from pack_panels_s16 with the same wide. a is (M, lda) with lda = K rounded up
// to even and zeros past K. The caller keeps every sum within int32 (ops/int16_gemm.h).
// The kernel turns each block of sums into y while they are in registers (ops/cpu/panel_sums.h).
void gemm_s16_dequantize_panels(float* y, const int16_t* a, const void* panels, int64_t m, int64_t n,
                                int64_t k, bool wide, const S8Dequantization& dq);

}  // namespace nle::ops::cpu
