// The bf16 compute type's encoder self-attention: the two products of one sequence's
// attention for one head (ops/cpu/attention_tiles.h) on bf16 queries, keys and values (as
// the fused projection writes them), multiplied in pairs by AVX512-BF16 (vdpbf16ps: 2
// products a float32 lane, summed in float32) where float32 FMA does one. Scores, softmax,
// 1 / Σ and the results stay float32; the unnormalised probabilities are rounded to bf16
// (to nearest even) for the second product, as PyTorch's bf16 autocast rounds them.
//
// Taken where the CPU has AVX512-BF16 (checked at run time: the rest of the library is
// built for AVX2) and heads are a multiple of 16 wide.
#pragma once

#include <cstdint>

#include "core/scratch_buffer.h"

namespace nle::ops::cpu {

// A thread's bf16 copies of one head's queries (len, d), keys (pairs of d, stride),
// values (pairs of keys, d) and probabilities (len, stride).
struct Bf16AttentionTileScratch {
  ScratchBuffer<uint16_t> queries, keys, values, probabilities;
};

// Whether this CPU (AVX512-BF16) and build take heads of this width (a multiple of 16).
bool bf16_attention_tiles_fit(int64_t head_dim);

// The score row stride bf16_attention_tile_scores writes: len rounded up to a multiple of 16.
int64_t bf16_attention_tile_stride(int64_t len);

// s (len, stride) = scale · q (len, d) · k (len, d)ᵀ, rows of q and k (bf16 bit patterns)
// ld_q and ld_k apart (ld_k even); the columns from len on are -inf.
void bf16_attention_tile_scores(float* s, const uint16_t* q, int64_t ld_q, const uint16_t* k, int64_t ld_k,
                                int64_t len, int64_t d, float scale, Bf16AttentionTileScratch& scratch);

// out[r, :] = inv_sum[r] · Σ_j p[r, j] · v[j, :] for r < len, j < len with p rounded to
// bf16, v bf16: p's rows stride floats apart (bf16_attention_tile_stride(len): the unnormalised
// probabilities over bf16_attention_tile_scores' rows, 0 from len on), v's ld_v, out's ld_out.
void bf16_attention_tile_values(float* out, int64_t ld_out, const float* p, const float* inv_sum,
                                const uint16_t* v, int64_t ld_v, int64_t len, int64_t d,
                                Bf16AttentionTileScratch& scratch);
// The same with out's values rounded to bf16 (bit patterns, to nearest even; a denormal
// counts as 0, as vcvtneps2bf16 takes it): for a bf16 product that takes them.
void bf16_attention_tile_values(uint16_t* out, int64_t ld_out, const float* p, const float* inv_sum,
                                const uint16_t* v, int64_t ld_v, int64_t len, int64_t d,
                                Bf16AttentionTileScratch& scratch);

}  // namespace nle::ops::cpu
