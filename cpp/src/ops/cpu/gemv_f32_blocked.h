// Float32 products of up to 64 rows (decoding steps, single short sentences) on a weight
// in the blocked layout oneDNN's AVX-512 matmul keeps it in (BA16a64b: the weight's
// columns of the product in blocks of 64, each block's K rows of 64 floats one after the
// other). Each thread streams whole column blocks. Up to 4 rows, their 64 sums per row
// stay in registers over the whole block: reading the weight bounds such a product, and
// the hardware prefetcher keeps memory busy. More rows go in groups of 4 over chunks of 64
// K rows, the later groups reading the chunk from L1, while every group asks for its share
// of the next chunk's lines, so that memory keeps streaming while they compute.
//
// oneDNN's primitive of the exact row count left memory idle while it computed: on an AMD
// EPYC (Zen 4), 2 threads, a BART-base float32 decoding step (352 MB of weights) took
// about the time of reading them plus that of the products at the FMA rate. One row read
// the weights at 22-29 GB/s through the primitive, 31-37 here (a plain read of memory by
// both threads: 33); generating from one 256-token source (alternating runs, the
// primitive -> the kernel of 1-4 rows, ba53738): BART-base greedy 66 -> 96 tokens/s, 4
// beams 71 -> 93; T5-small greedy 141 -> 148-185, 4 beams 129-143 -> 185-194. With the
// chunks for more rows, decoding steps from 8-token sources (ms per step, the primitive ->
// this kernel, the host slower than in those runs): 1 row 14.4 -> 11.6, 6 rows 13.6 ->
// 13.0, 8 rows 17.0 -> 13.7, 13 rows 19.6 -> 15.3, 16 rows 21.6 -> 18.0, 32 rows 36.3 ->
// 33.1, 64 rows (16 sources x 4 beams) 62.8 -> 60.1; all-MiniLM-L6-v2, one sentence of 8 /
// 29 / 64 tokens, 1.81 / 4.32 / 8.65 -> 1.28 / 4.14 / 8.54 ms (1 thread, 29 tokens: 7.65 ->
// 6.84). Groups of 4 over the whole block (the later ones from L2) made 13 and 16 rows
// slower than the primitive (20.9 and 24.0 ms), and so did the first group prefetching the
// whole next chunk at once (more requests than the core keeps in flight). In cache (256 x
// 384 weights) the kernel runs at 186-221 GFLOP/s, 2 threads, 4-64 rows (the primitive
// 120-216), once GCC is kept from folding the weight loads into every FMA.
#pragma once

#include <cstdint>

#include "ops/activation.h"

namespace nle::ops::cpu {

// The layout's blocks: 64 columns of the product (rows of the (N, K) weight) per block, its
// K rows 64 floats apart, so that its blocks of 16 K rows (oneDNN's inner block) follow
// one another.
constexpr int64_t kGemvColumnBlock = 64;
constexpr int64_t kGemvDepthBlock = 16;
// The most rows a product takes here: oneDNN's exact-row primitives' range
// (ops/cpu/onednn_matmul.h's kExactRows); past it products are compute-bound.
constexpr int64_t kGemvMaxRows = 64;

// Whether this CPU and build run the kernel (AVX-512; not the NLE_AVX2_ONLY build).
bool gemv_f32_blocked_available();

// c (m, n) = act(a (m, k) · wᵀ + bias (n)), m from 1 to kGemvMaxRows, a and c row-major
// and dense; w in the layout above, column block b starting block_stride floats after
// block b - 1 (block_stride >= k · kGemvColumnBlock), the columns past n of the last block
// present (their values unused). bias may be null. Throws Error where
// gemv_f32_blocked_available() is false.
void gemv_f32_blocked(float* c, const float* a, const float* w, int64_t m, int64_t n, int64_t k,
                      int64_t block_stride, const float* bias, Activation act);

}  // namespace nle::ops::cpu
