// bf16 products of a few rows (a decoding step of one source under the bf16 compute type,
// or int8-mixed's bf16 products) on a weight in the blocked layout oneDNN's AVX512-BF16
// matmul keeps it in (BA16a64b2a: the product's columns in blocks of 64, each block's K
// rows in pairs, a pair's 64 columns × 2 bf16 one after the other). As with float32
// (ops/cpu/gemv_f32_blocked.h), such a product is bound by reading the weight: each
// thread streams whole column blocks with AVX512-BF16's pair dot products, 64 float32 sums
// per row in registers, then adds the bias, applies the activation and writes float32 or
// bf16 (rounded to nearest even, as the primitive's).
//
// On an AMD EPYC (Zen 4), 2 threads, BART-base generating 64 tokens from one 256-token
// source (alternating runs, the primitive -> this kernel): bf16 greedy 122/130 -> 147/144
// tokens/s, 4 beams 124/131 -> 149/167; int8-mixed (its bf16 products) greedy 226 -> 248,
// 4 beams 190/204 -> 212/221.
#pragma once

#include <cstdint>

#include "ops/activation.h"

namespace nle::ops::cpu {

// The layout's blocks: 64 columns per block, K in pairs per column, blocks of 16 pairs
// (oneDNN's inner block of 32 K) one after another.
constexpr int64_t kGemvBf16ColumnBlock = 64;
constexpr int64_t kGemvBf16Pair = 2;
constexpr int64_t kGemvBf16DepthBlock = 32;
// The most rows a product takes here.
constexpr int64_t kGemvBf16MaxRows = 4;

// Whether this CPU and build run the kernel (AVX-512 with AVX512-BF16; not the
// NLE_AVX2_ONLY build).
bool gemv_bf16_blocked_available();

// c (m, n) = act(a (m, k) · wᵀ + bias (n)), m from 1 to kGemvBf16MaxRows; a bf16 bit
// patterns and c (float32, or bf16 with c_bf16) row-major and dense; w in the layout
// above, column block b starting block_stride elements after block b - 1 (block_stride
// >= k rounded up to a pair, times kGemvBf16ColumnBlock), the depth's padding to a whole
// pair zero. bias may be null. Throws Error where gemv_bf16_blocked_available() is false.
void gemv_bf16_blocked(void* c, const uint16_t* a, const uint16_t* w, int64_t m, int64_t n, int64_t k,
                       int64_t block_stride, const float* bias, Activation act, bool c_bf16);

}  // namespace nle::ops::cpu
