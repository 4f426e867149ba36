// One sequence's attention for one head in register tiles (AVX2 FMA), a tile of query rows
// at a time from start to end: scores = scale · q kᵀ (+ bias), the softmax's unnormalised
// probabilities, then out = (p v) · 1 / Σ row by row.
//
// An encoder's sequences are short (tens of tokens) and its heads narrow (32 or 64), and a
// head's rows are a whole token's row apart (the fused query, key and value projection's:
// 3 hidden floats, 4.5 KB for all-MiniLM-L6-v2). At that stride a head's rows fall in a few
// of L1's sets and evict one another, so every pass over them went to L2. The tiles work on
// contiguous copies of the head's queries, keys (transposed) and values instead, and a tile
// of rows' scores (6 × stride floats) stays in L1 from the first product to the second.
#pragma once

#include <cstdint>

#include "core/scratch_buffer.h"

namespace nle::ops::cpu {

// A thread's copies of one head's queries, keys and values, and a tile of rows' scores.
struct AttentionTileScratch {
  ScratchBuffer<float> queries, keys, values, scores;
};

// Whether the tiles take heads of this width on this build (any width with AVX2 and FMA: the
// query and value copies are padded with zeros to a multiple of 8, the results stored
// without the padding).
bool attention_tiles_fit(int64_t head_dim);

// The score row stride of a sequence of len: len rounded up to a multiple of 8.
int64_t attention_tile_stride(int64_t len);

// out[r, :] = softmax_j(s[r, j]) · v[j, :] for r, j < len, s[r, j] = scale · q[r, :] · k[j, :]
// (+ bias[j - r] where bias is given: T5's relative position bias, row r's at bias - r); rows
// of q, k, v and out ld_q, ld_k, ld_v and ld_out apart. The softmax is
// softmax_rows_unnormalized_f32's (ops/softmax.h), each output row scaled by its 1 / Σ.
void attention_tiles(float* out, int64_t ld_out, const float* q, int64_t ld_q, const float* k, int64_t ld_k,
                     const float* v, int64_t ld_v, int64_t len, int64_t d, float scale, const float* bias,
                     AttentionTileScratch& scratch);
// The same with out's values rounded to bf16 (bit patterns, as float_to_bf16 rounds them):
// for a bf16 product that takes them.
void attention_tiles(uint16_t* out, int64_t ld_out, const float* q, int64_t ld_q, const float* k,
                     int64_t ld_k, const float* v, int64_t ld_v, int64_t len, int64_t d, float scale,
                     const float* bias, AttentionTileScratch& scratch);

}  // namespace nle::ops::cpu
