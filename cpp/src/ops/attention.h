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

// An additive attention bias that depends only on the head and on the key's
// position relative to the query (T5's relative position bias):
//   score(h, i, j) += table[h * width + center + (j - i)].
struct RelativeBias {
  const float* table = nullptr;
  int64_t width = 0;
  int64_t center = 0;
};

// q, k, v: (T, num_heads * head_dim), or column slices of a wider (T, ld) buffer
// such as a fused QKV projection (pass the full row stride as ld_in).
// out: (T, num_heads * head_dim) = softmax(q kᵀ · scale) v per sequence and head; F32, or
// BF16 for a bf16 product that takes it (the results rounded to nearest even as they are
// written, where a float32 out would be rounded in a pass of its own).
// ld_v: v's row stride when it differs from ld_in (v in a buffer of its own); 0: ld_in.
void packed_self_attention(Tensor& out, const float* q, const float* k, const float* v,
                           int64_t ld_in, const std::vector<int64_t>& seq_offsets,
                           int64_t num_heads, int64_t head_dim, float scale,
                           const RelativeBias* bias = nullptr, int64_t ld_v = 0);

// The same over bf16 q, k and v (bit patterns; q and k's row stride even), both
// products in bf16 with float32 sums, the probabilities rounded to bf16 for the second
// (ops/cpu/attention_tiles_bf16.h): the bf16 and int8 compute types', where their fused
// projection writes bf16. Only where bf16_attention_available(head_dim), else throws Error.
void packed_self_attention_bf16(Tensor& out, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                int64_t ld_in, const std::vector<int64_t>& seq_offsets, int64_t num_heads,
                                int64_t head_dim, float scale, const RelativeBias* bias = nullptr,
                                int64_t ld_v = 0);

// Whether this CPU multiplies bf16 natively (AVX512-BF16) and packed_self_attention_bf16
// takes heads of this width (a multiple of 16).
bool bf16_attention_available(int64_t head_dim);

// Attention of single query rows over listed key/value rows, as in one decoding
// step: query i (row i of q, stride ld_q) attends over the rows
// key_rows[key_offsets[i] .. key_offsets[i+1]) of k and v (stride ld_kv), e.g.
// its own history in a KV cache or its source's encoder states. With a bias
// (num_heads, bias_ld), bias[h * bias_ld + j] is added to the score of the j-th
// listed key of every query. out: (num_queries, num_heads * head_dim), stride ld_out.
// Keys and values are float32 (k, v), IEEE half (k_f16, v_f16) or int8 (k_i8, v_i8),
// one kind set and the others unset; int8 elements are scaled by the scale of their
// head's part of their row: the element at offset e from k_i8 is k_i8[e] ·
// k_scales[e / head_dim] (ld_kv and the head stride multiples of head_dim), likewise v.
// Head h's part of key row r is at k + r * ld_kv + h * head_stride: with head_stride 0
// (the default) the heads sit side by side in a row (head_stride = head_dim); a
// head-major store (head_stride = rows · head_dim, ld_kv = head_dim) keeps each head's
// rows of a source in one contiguous block, which the hardware prefetchers follow.
struct GatheredAttention {
  const float* q = nullptr;
  int64_t ld_q = 0;
  int64_t num_queries = 0;
  const float* k = nullptr;
  const float* v = nullptr;
  const uint16_t* k_f16 = nullptr;
  const uint16_t* v_f16 = nullptr;
  const int8_t* k_i8 = nullptr;
  const int8_t* v_i8 = nullptr;
  const float* k_scales = nullptr;
  const float* v_scales = nullptr;
  int64_t ld_kv = 0;
  int64_t head_stride = 0;               // 0: head_dim
  const int64_t* key_offsets = nullptr;  // num_queries + 1
  const int64_t* key_rows = nullptr;
  const float* bias = nullptr;
  int64_t bias_ld = 0;
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  float scale = 1.f;

  // Elements from one head's part of a key or value row to the next head's.
  int64_t head_offset() const { return head_stride ? head_stride : head_dim; }
};
void gathered_attention(float* out, int64_t ld_out, const GatheredAttention& args);

namespace cpu {
void packed_self_attention_f32(float* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                               const RelativeBias* bias = nullptr, int64_t ld_v = 0);
void packed_self_attention_bf16(float* out, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                                int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                                const RelativeBias* bias = nullptr, int64_t ld_v = 0);
// The same with out's values rounded to bf16 (bit patterns) as they are written.
void packed_self_attention_f32(uint16_t* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                               const RelativeBias* bias = nullptr, int64_t ld_v = 0);
void packed_self_attention_bf16(uint16_t* out, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                                int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                                const RelativeBias* bias = nullptr, int64_t ld_v = 0);
void gathered_attention_f32(float* out, int64_t ld_out, const GatheredAttention& args);
}  // namespace cpu
namespace reference {
void packed_self_attention_f32(float* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                               const RelativeBias* bias = nullptr, int64_t ld_v = 0);
void gathered_attention_f32(float* out, int64_t ld_out, const GatheredAttention& args);
}  // namespace reference

}  // namespace nle::ops
