#pragma once

#include <string>
#include <vector>

#include "layers/linear.h"

namespace nle {

// Multi-head self-attention with a fused query/key/value projection and the
// output projection, over packed sequences. Under int8-mixed the value projection is
// error-sensitive (Weights::error_sensitive) and runs apart from the fused query/key one.
class SelfAttention {
 public:
  // input_norm: the norm whose output x is, if any (Linear's input_norm).
  SelfAttention(const Weights& weights, const std::vector<std::string>& qkv_scopes,
                const std::string& output_scope, int64_t hidden_size, int64_t num_heads,
                const NormParameters& input_norm = {});
  // x: (T, hidden) -> out: (T, hidden); qkv (T, 3 hidden) and context (T, hidden) are scratch.
  // x may be BF16 where takes_bf16().
  void operator()(Tensor& out, const Tensor& x, const std::vector<int64_t>& seq_offsets, Tensor& qkv,
                  Tensor& context) const;
  // Whether the projections of x multiply bf16 and take x as BF16 too (Linear::bf16_io).
  bool takes_bf16() const { return qkv_.bf16_io() && !split_value_; }

 private:
  Linear qkv_;    // query, key and value fused; or query and key alone when value_ is used
  Linear value_;  // the value projection on its own (split_value_)
  bool split_value_ = false;
  Linear output_;
  int64_t hidden_size_;
  int64_t num_heads_;
  // The bf16, int8 and int8-mixed compute types, where the CPU multiplies bf16 natively:
  // the projections write bf16 queries, keys and values, and the attention's products take
  // them (ops::packed_self_attention_bf16). Elsewhere the attention is float32.
  bool bf16_attention_ = false;
  // Where output_ multiplies bf16 (Linear::bf16_io): the attention writes its results
  // rounded to bf16, in context's bytes, for output_ to take as they are.
  bool bf16_context_ = false;
};

}  // namespace nle
