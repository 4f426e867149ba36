#pragma once

#include <string>
#include <vector>

#include "generate/kv_cache.h"
#include "layers/linear.h"
#include "ops/attention.h"

namespace nle {

// A decoder layer's cross-attention keys and values of the encoder's states, projected
// once per source (Seq2SeqAttention::project_memory): kv (2, heads, S, head_dim), keys
// first, F32, F16 or I8; for I8, scales (2, heads, S) F32, one per head's part of a row.
struct ProjectedMemory {
  Tensor kv;
  Tensor scales;
};

// Multi-head attention of the encoder-decoder architectures: self-attention in
// the encoder (packed sequences, optional relative bias), causal
// self-attention over a KV cache in the decoder, and cross-attention from the
// decoder to encoder states whose keys and values are projected once per source.
class Seq2SeqAttention {
 public:
  struct Names {
    std::string q, k, v, out;
  };
  // input_norm: the norm whose output x is, and for cross-attention memory_norm the one
  // whose output the memory is, if any (int8 smoothing, Linear's input_norm).
  Seq2SeqAttention(const Weights& weights, const Names& names, int64_t d_model, int64_t num_heads,
                   int64_t head_dim, float scale, bool biases, bool cross,
                   const NormParameters& input_norm = {}, const NormParameters& memory_norm = {});

  // Encoder: x (T, d_model) packed by seq_offsets -> out (T, d_model).
  void encode(Tensor& out, const Tensor& x, const std::vector<int64_t>& seq_offsets,
              const ops::RelativeBias* bias) const;
  // Decoder self-attention for one step: x (n, d_model) are the inputs of
  // cache `rows` at `step`; their keys/values are written to the cache at
  // (row, step), then each attends over its history (key_offsets/key_rows from
  // KvCache::key_rows). bias: (num_heads, step + 1) or null.
  void decode_step(Tensor& out, const Tensor& x, KvCache& cache, int64_t layer, const std::vector<int64_t>& rows,
                   int64_t step, const std::vector<int64_t>& key_offsets, const std::vector<int64_t>& key_rows,
                   const float* bias) const;
  // Cross-attention: memory (S, d_model) -> keys and values (2, num_heads, S, head_dim),
  // keys first, F32; F16 for bf16 and int8-mixed; I8 with a scale per head's part of a
  // row for int8 (ProjectedMemory). A decoding step reads all of them (for 16 BART-base
  // sources of 256 tokens, 150 MB per step in float32, 38 MB in int8), and the fast types'
  // products already round far more than half does; int8's round their inputs to 8 bits
  // as these codes do. Head-major, so that one head's
  // keys of one source are one contiguous block (ops::GatheredAttention::head_stride):
  // read row by row from the projection's layout, each head's 64 values sat a whole row
  // (3-6 KB) from the next, a page apart, and BART-base greedy steps spent a third of
  // their time there.
  ProjectedMemory project_memory(const Tensor& memory) const;
  // x (n, d_model) attends over the memory rows listed per query.
  void cross_step(Tensor& out, const Tensor& x, const ProjectedMemory& memory,
                  const std::vector<int64_t>& key_offsets, const std::vector<int64_t>& key_rows) const;

 private:
  Linear qkv_;  // self-attention: q, k, v fused
  Linear q_;    // cross-attention: q alone ...
  Linear kv_;   // ... and k, v fused over the memory
  Linear out_;
  int64_t num_heads_, head_dim_;
  float scale_;
  DType memory_dtype_ = DType::F32;  // what project_memory stores: F32, F16 or I8
  // Encoder self-attention: the fused projection writes bf16 queries, keys and values and
  // both of the attention's products run in bf16 (ops::packed_self_attention_bf16, with
  // T5's relative bias): the fast compute types where the CPU multiplies bf16 natively
  // and heads are a multiple of 16 wide. Elsewhere, and in the decoder, float32.
  bool bf16_attention_ = false;
};

}  // namespace nle
