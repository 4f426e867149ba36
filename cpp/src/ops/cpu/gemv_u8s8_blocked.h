// Exact int8 products of a few rows (u8 activations · s8 weights → s32, as
// ops/int8_gemm.h's) on a weight in the blocked layout oneDNN's VNNI matmul keeps it in
// (BA16a64b4a: the product's columns in blocks of 64, each block's K rows in groups of 4,
// a group's 64 columns × 4 bytes one after the other). As with float32
// (ops/cpu/gemv_f32_blocked.h), a decoding step's product is bound by reading the weight:
// each thread streams whole column blocks, 64 sums per row in registers, with AVX512-VNNI's
// u8 · s8 dot products of 4 (exact in 32 bits, as oneDNN's). The sums are the primitive's,
// bit for bit.
//
// On an AMD EPYC (Zen 4), 2 threads, generating 64 tokens from one source (alternating
// runs, the primitive -> this kernel; the same tokens and scores bit for bit): BART-base
// int8 greedy from 8-token sources 412/345/343 -> 495/460/367 tokens/s (the host slowing
// over the runs), from 256-token ones 289/273 -> 288/330, 4 beams 240/246 -> 260/259;
// T5-small greedy 727/734 -> 883/836, 4 beams 442/559 -> 511/631. With the chunks for more
// rows, BART-base int8 decoding steps from 8-token sources (ms per step, the primitive ->
// this kernel): 8 rows 5.02 -> 4.36, 13 rows 6.76/6.36 -> 5.73/6.20, 16 rows 8.38 ->
// 7.79, 32 rows 13.53 -> 12.73, 64 rows (16 sources x 4 beams) 22.70/22.13 -> 22.00/22.06.
// Before the weight vectors were kept in registers and the prefetches spread without a
// division per step, the chunks were slower than the primitive (16 rows 11.74 ms).
#pragma once

#include <cstdint>

namespace nle::ops::cpu {

// The layout's blocks: 64 columns per block, K in groups of 4 bytes per column, groups of
// 16 groups (oneDNN's inner block of 64 K) one after another.
constexpr int64_t kGemvS8ColumnBlock = 64;
constexpr int64_t kGemvS8Group = 4;
constexpr int64_t kGemvS8DepthBlock = 64;
// The most rows a product takes here (oneDNN's exact-row range): up to 4 with their sums
// in registers over the whole block, more in groups of 4 over chunks of 256 K rows while
// asking for the next chunk (as ops/cpu/gemv_f32_blocked.h).
constexpr int64_t kGemvS8MaxRows = 64;

// Whether this CPU and build run the kernel (AVX-512 with VNNI; not the NLE_AVX2_ONLY build).
bool gemv_u8s8_blocked_available();

// c (m, n) = a (m, k) · wᵀ in int32, m from 1 to kGemvS8MaxRows, a (u8) and c row-major
// and dense; w in the layout above, column block b starting block_stride bytes after block
// b - 1 (block_stride >= k rounded up to kGemvS8Group, times kGemvS8ColumnBlock), the
// depth's padding to a whole group zero. Throws Error where gemv_u8s8_blocked_available()
// is false.
void gemv_u8s8s32_blocked(int32_t* c, const uint8_t* a, const int8_t* w, int64_t m, int64_t n, int64_t k,
                          int64_t block_stride);

}  // namespace nle::ops::cpu
