// Float32 products of a few rows (a decoding step of one source, or of one source's
// beams) on a weight in the blocked layout oneDNN's AVX-512 matmul keeps it in
// (BA16a64b: the weight's columns of the product in blocks of 64, each block's K rows of
// 64 floats one after the other). Such a product reads every byte of the weight once and
// does little with it, so memory bandwidth bounds it: each thread streams whole column
// blocks, 64 sums per row held in registers.
//
// On an AMD EPYC (Zen 4), 2 threads, weights of BART-base's shapes (768 x 768 to the
// 50,265 x 768 LM head) far outside the caches, 1 and 2 rows: 31-37 GB/s here against
// 22-29 GB/s for oneDNN's primitive of the exact row count, whose best (4 to 6 rows)
// was 29-33; a plain read of memory by both threads ran at 33 GB/s. Generating 64 tokens
// from one source of 256 (alternating runs, the primitive -> this kernel): BART-base
// greedy 66/66/63 -> 96/97/96 tokens/s, 4 beams 71/72/72 -> 92/94/95; T5-small greedy
// 141/144/141 -> 185/185/186, 4 beams 129/138/143 -> 185/194/185.
//
// oneDNN keeps float32 weights so only with AVX-512 (ops/packed_gemm.h), and is the GEMM
// library by default on CPUs other than Intel's: under MKL the packed product runs.
#pragma once

#include <cstdint>

#include "ops/activation.h"

namespace nle::ops::cpu {

// The layout's blocks: 64 columns of the product (rows of the (N, K) weight) per block, its
// K rows 64 floats apart, so that its blocks of 16 K rows (oneDNN's inner block) follow
// one another.
constexpr int64_t kGemvColumnBlock = 64;
constexpr int64_t kGemvDepthBlock = 16;
// The most rows a product takes here. They run in groups of 4 (4 rows of 64 sums, 16 of
// the 32 vector registers), a block's later groups reading it from the cache. Beyond 4
// rows oneDNN's primitive is as fast: BART-base float32 decoding of 6 rows (6 sources,
// greedy) ran at 369/377 and 360/360 tokens/s through this kernel against 391/379 and
// 379/353 through the primitive, of 8 rows (2 sources, 4 beams each) 105-111 against
// 97-101 (AMD EPYC, Zen 4, 2 threads).
constexpr int64_t kGemvMaxRows = 4;

// Whether this CPU and build run the kernel (AVX-512; not the NLE_AVX2_ONLY build).
bool gemv_f32_blocked_available();

// c (m, n) = act(a (m, k) · wᵀ + bias (n)), m from 1 to kGemvMaxRows, a and c row-major
// and dense; w in the layout above, column block b starting block_stride floats after
// block b - 1 (block_stride >= k · kGemvColumnBlock), the columns past n of the last block
// present (their values unused). bias may be null.
void gemv_f32_blocked(float* c, const float* a, const float* w, int64_t m, int64_t n, int64_t k,
                      int64_t block_stride, const float* bias, Activation act);

}  // namespace nle::ops::cpu
