// The bf16 compute type's encoder self-attention: the two products of one sequence's
// attention for one head (ops/cpu/attention_tiles.h) on bf16 queries, keys and values (as
// the fused projection writes them), multiplied in pairs by AVX512-BF16 (vdpbf16ps: 2
// products a float32 lane, summed in float32) where float32 FMA does one. Scores, softmax,
// 1 / Σ and the results stay float32 (the exp within 2.7e-6, a thousandth of the bf16
// rounding that follows); the unnormalised probabilities are rounded to bf16 (to nearest even) for
// the second product, as PyTorch's bf16 autocast rounds them.
//
// Taken where the CPU has AVX512-BF16 (checked at run time: the rest of the library is
// built for AVX2) and heads are a multiple of 16 wide. Where it also has AMX-BF16 and heads
// are a multiple of 32 wide, the two products run on the tile unit instead, 16 queries a
// tile, two tiles a block from 160 keys on (the same numbers up to the order of float32
// sums).
#pragma once

#include <cstdint>

#include "core/scratch_buffer.h"

namespace nle::ops::cpu {

// A thread's paired keys (pairs of d, stride) and values (pairs of keys, d), and the scores
// (rows of a tile, stride) and their probabilities in bf16.
// With AMX also the results of a tile before 1 / Σ (after its scores) and a last tile's
// queries padded to 16 rows.
struct Bf16AttentionTileScratch {
  ScratchBuffer<uint16_t> keys, values, probabilities, queries;
  ScratchBuffer<float> scores;
};

// Whether this CPU (AVX512-BF16) and build take heads of this width (a multiple of 16).
bool bf16_attention_tiles_fit(int64_t head_dim);

// Whether heads of this width take the AMX products here (the CPU has AMX-BF16, Linux
// grants the tile state, and allow_bf16_attention_amx has not said no).
bool bf16_attention_takes_amx(int64_t head_dim);
// For tests: false keeps the AVX512-BF16 products on a CPU with AMX (default true).
void allow_bf16_attention_amx(bool allowed);

// The score row stride of a sequence of len: len rounded up to a multiple of 16.
int64_t bf16_attention_tile_stride(int64_t len);

// out[r, :] = inv_sum[r] · Σ_j p[r, j] · v[j, :] for r, j < len, where p[r, j] =
// exp(s[r, j] - max_j s[r, j]) rounded to bf16, s[r, j] = scale · q[r, :] · k[j, :] (+ bias[j
// - r] where bias is given: T5's relative position bias, row r's at bias - r) and inv_sum[r] =
// 1 / Σ_j of the unrounded exps. q, k and v bf16 bit patterns, rows ld_q, ld_k (even) and ld_v
// apart; out's ld_out. A tile of rows at a time from start to end: its scores (tile rows ×
// stride floats) stay in L1 for the softmax and the second product.
void bf16_attention_tiles(float* out, int64_t ld_out, const uint16_t* q, int64_t ld_q, const uint16_t* k,
                          int64_t ld_k, const uint16_t* v, int64_t ld_v, int64_t len, int64_t d, float scale,
                          const float* bias, Bf16AttentionTileScratch& scratch);
// The same with out's values rounded to bf16 (bit patterns, to nearest even; a denormal
// counts as 0, as vcvtneps2bf16 takes it): for a bf16 product that takes them.
void bf16_attention_tiles(uint16_t* out, int64_t ld_out, const uint16_t* q, int64_t ld_q, const uint16_t* k,
                          int64_t ld_k, const uint16_t* v, int64_t ld_v, int64_t len, int64_t d, float scale,
                          const float* bias, Bf16AttentionTileScratch& scratch);

}  // namespace nle::ops::cpu
