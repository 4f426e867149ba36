#include "layers/self_attention.h"

#include <cmath>

#include "ops/attention.h"

namespace nle {

namespace {
bool value_is_apart(const Weights& weights) { return weights.compute_type() == ComputeType::Int8Mixed; }
}  // namespace

SelfAttention::SelfAttention(const Weights& weights, const std::vector<std::string>& qkv_scopes,
                             const std::string& output_scope, int64_t hidden_size, int64_t num_heads,
                             const NormParameters& input_norm)
    : qkv_(Linear::fused(
          weights,
          value_is_apart(weights) ? std::vector<std::string>{qkv_scopes[0], qkv_scopes[1]} : qkv_scopes,
          // Smoothing fits the value's weight (Linear::fused); query and key alone go
          // without (on all-MiniLM-L6-v2 it neither helped nor hurt them).
          hidden_size, hidden_size, /*has_bias=*/true,
          value_is_apart(weights) ? NormParameters{} : input_norm)),
      split_value_(value_is_apart(weights)),
      output_(weights.error_sensitive_where_bf16(), output_scope, hidden_size, hidden_size),
      hidden_size_(hidden_size),
      num_heads_(num_heads) {
  if (split_value_)
    value_ = Linear(weights.error_sensitive(), qkv_scopes[2], hidden_size, hidden_size, /*has_bias=*/true,
                    input_norm);
  // int8-mixed keeps its attention in float32: its value projection is error-sensitive, and
  // so is the product that weights the values (bf16 attention there moved all-MiniLM-L6-v2's
  // pooled cosine to float32 from 0.99965 to 0.99962 for 2-4% of its throughput).
  const ComputeType type = weights.compute_type();
  bf16_attention_ = (type == ComputeType::BFloat16 || type == ComputeType::Int8) && qkv_.gives_bf16() &&
                    ops::bf16_attention_available(hidden_size / num_heads);
  // Where the output projection multiplies bf16, the attention rounds its results as it
  // writes them, where the product would round them in a pass of its own.
  bf16_context_ = output_.bf16_io();
}

void SelfAttention::operator()(Tensor& out, const Tensor& x, const std::vector<int64_t>& seq_offsets,
                               Tensor& qkv, Tensor& context) const {
  const int64_t head_dim = hidden_size_ / num_heads_;
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  const int64_t tokens = x.dim(0);
  if (x.dtype() == DType::BF16 && !takes_bf16())
    throw InvalidInputError("SelfAttention: a BF16 input needs bf16 projections");
  float* base = qkv.data<float>();
  Tensor rounded_context;  // context's bytes as (T, hidden) bf16
  if (bf16_context_)
    rounded_context = Tensor::view(DType::BF16, {tokens, hidden_size_}, context.raw_data(), context.owner());
  Tensor& result = bf16_context_ ? rounded_context : context;
  if (bf16_attention_) {
    // The (T, 3 hidden) float scratch holds (T, 3 hidden) bf16 queries, keys and values.
    auto* bits = reinterpret_cast<uint16_t*>(base);
    Tensor fused = Tensor::view(DType::BF16, {tokens, 3 * hidden_size_}, bits, qkv.owner());
    qkv_(fused, x);
    ops::packed_self_attention_bf16(result, bits, bits + hidden_size_, bits + 2 * hidden_size_,
                                    3 * hidden_size_, seq_offsets, num_heads_, head_dim, scale);
  } else if (!split_value_) {
    qkv_(qkv, x);
    ops::packed_self_attention(result, base, base + hidden_size_, base + 2 * hidden_size_, 3 * hidden_size_,
                               seq_offsets, num_heads_, head_dim, scale);
  } else {
    // The (T, 3 hidden) scratch holds a (T, 2 hidden) query/key block, then (T, hidden) values.
    Tensor qk = Tensor::view(DType::F32, {tokens, 2 * hidden_size_}, base, qkv.owner());
    Tensor values =
        Tensor::view(DType::F32, {tokens, hidden_size_}, base + tokens * 2 * hidden_size_, qkv.owner());
    qkv_(qk, x);
    value_(values, x);
    ops::packed_self_attention(result, base, base + hidden_size_, values.data<float>(), 2 * hidden_size_,
                               seq_offsets, num_heads_, head_dim, scale, nullptr, hidden_size_);
  }
  output_(out, result);
}

}  // namespace nle
