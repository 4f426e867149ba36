// The two products of one sequence's attention for one head, in register tiles (AVX2 FMA):
// scores = scale · q kᵀ, then out = (p v) · inv_sum row by row.
//
// An encoder's sequences are short (tens of tokens) and its heads narrow (32 or 64), and a
// head's rows are a whole token's row apart (the fused query, key and value projection's:
// 3 hidden floats, 4.5 KB for all-MiniLM-L6-v2). At that stride a head's rows fall in a few
// of L1's sets and evict one another, so every pass over them went to L2. The tiles work on
// contiguous copies of the head's queries, keys (transposed) and values instead.
#pragma once

#include <cstdint>

#include "core/scratch_buffer.h"

namespace nle::ops::cpu {

// A thread's copies of one head's queries, keys and values.
struct AttentionTileScratch {
  ScratchBuffer<float> queries, keys, values;
};

// Whether the tiles take heads of this width on this build (a multiple of 8, AVX2 with FMA).
bool attention_tiles_fit(int64_t head_dim);

// The score row stride attention_tile_scores writes: len rounded up to a multiple of 8.
int64_t attention_tile_stride(int64_t len);

// s (len, attention_tile_stride(len)) = scale · q (len, d) · k (len, d)ᵀ, rows of q and k
// ld_q and ld_k apart; the columns from len on are -inf (they vanish in a softmax over the
// whole stride).
void attention_tile_scores(float* s, const float* q, int64_t ld_q, const float* k, int64_t ld_k, int64_t len,
                           int64_t d, float scale, AttentionTileScratch& scratch);

// out[r, :] = inv_sum[r] · Σ_j p[r, j] · v[j, :] for r < len, j < len: p's rows ld_p apart
// (unnormalised probabilities), v's ld_v, out's ld_out.
void attention_tile_values(float* out, int64_t ld_out, const float* p, int64_t ld_p, const float* inv_sum,
                           const float* v, int64_t ld_v, int64_t len, int64_t d,
                           AttentionTileScratch& scratch);
// The same with out's values rounded to bf16 (bit patterns, as float_to_bf16 rounds them):
// for a bf16 product that takes them.
void attention_tile_values(uint16_t* out, int64_t ld_out, const float* p, int64_t ld_p, const float* inv_sum,
                           const float* v, int64_t ld_v, int64_t len, int64_t d,
                           AttentionTileScratch& scratch);

}  // namespace nle::ops::cpu
