// Multi-head self-attention over packed variable-length sequences.
//
// The tokens of all sequences of a batch are packed back to back with no
// padding; sequence s owns rows [seq_offsets[s], seq_offsets[s+1]). Each token
// attends to the tokens of its own sequence only, which is exactly what a
// padded batch with an attention mask computes for its unmasked positions.
#pragma once

#include <cstdint>
#include <vector>

#include "nlpengine/tensor.h"

namespace nle::ops {

// q, k, v: (T, num_heads * head_dim), or column slices of a wider (T, ld) buffer
// such as a fused QKV projection (pass the full row stride as ld_in).
// out: (T, num_heads * head_dim) = softmax(q kᵀ · scale) v per sequence and head.
void packed_self_attention(Tensor& out, const float* q, const float* k, const float* v,
                           int64_t ld_in, const std::vector<int64_t>& seq_offsets,
                           int64_t num_heads, int64_t head_dim, float scale);

namespace cpu {
void packed_self_attention_f32(float* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale);
}
namespace reference {
void packed_self_attention_f32(float* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale);
}

}  // namespace nle::ops
