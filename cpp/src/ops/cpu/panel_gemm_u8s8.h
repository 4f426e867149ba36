// The int8 product (u8 activations times s8 weights, exact int32 sums) from a weight
// packed once into column panels, for CPUs where oneDNN's int8 matmul takes the weight
// as it is (without AVX-512 or AVX-VNNI): there it is oneDNN's GEMM function, which
// packs the weight again on every call. MiniLM's batch-1 latency (32 tokens) spent most
// of its time there.
//
// A panel holds kS8PanelColumns output columns; per group of 4 consecutive k it stores
// each column's 4 codes together (32 bytes per 8 columns), the layout of AVX2's
// vpmaddubsw: one broadcast of 4 activation bytes times one weight vector gives 8
// columns' pair sums in 16 bits, which vpmaddwd adds into 32 bits. A pair sum is exact
// while activations stay within 0..127 (2 · 127 · 127 = 32,258 < 2^15), which
// int8_codes() finds by probing this product.
#pragma once

#include <cstdint>
#include <memory>

#include "ops/packed_gemm.h"

namespace nle::ops::cpu {

constexpr int64_t kS8PanelColumns = 16;
constexpr int64_t kS8BlockRows = 6;

// The (N, K) row-major s8 weight in panels: ceil(N / 16) panels of ceil(K / 4) groups of
// 64 bytes; codes past N or K are zero.
std::shared_ptr<void> pack_panels_s8(const int8_t* w, int64_t n, int64_t k);

// c (M, N) = a (M, K) · wᵀ in int32, w from pack_panels_s8.
void gemm_u8s8s32_panels(int32_t* c, const uint8_t* a, const void* panels, int64_t m, int64_t n, int64_t k);
// y (M, N) = a (M, K) · wᵀ dequantized by dq (ops/packed_gemm.h), w from pack_panels_s8:
// the kernel turns each block of sums (up to 6 rows of one panel) into y while they are in
// registers (ops/cpu/panel_sums.h), with no int32 buffer between. The sums, and so y, equal
// gemm_u8s8s32_panels followed by dequantize_rows bit for bit.
void gemm_u8s8_dequantize_panels(float* y, const uint8_t* a, const void* panels, int64_t m, int64_t n,
                                 int64_t k, const S8Dequantization& dq);

}  // namespace nle::ops::cpu
