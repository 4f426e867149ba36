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
  // bf16 attention where the projections give bf16 (the CPU multiplies bf16 natively):
  // the bf16 and int8 compute types, and int8-mixed (its value projection a bf16 product
  // there). For int8-mixed it costs a little accuracy and gains most on long sentences
  // (all-MiniLM-L6-v2 on an AMD EPYC: pooled cosine to float32 0.99965 -> 0.99962, NER F1
  // 0.9924 -> 0.9916, sentiment agreement 0.9990 -> 0.9974; 2-8% faster at 8-128 tokens,
  // 14% at 256-512, where its float32 attention had been a third of the time).
  const ComputeType type = weights.compute_type();
  const bool projections_give_bf16 = qkv_.gives_bf16() && (!split_value_ || value_.gives_bf16());
  bf16_attention_ =
      (type == ComputeType::BFloat16 || type == ComputeType::Int8 || type == ComputeType::Int8Mixed) &&
      projections_give_bf16 && ops::bf16_attention_available(hidden_size / num_heads);
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
  Tensor rounded_context;  // context's bytes as (T, hidden) bf16
  if (bf16_context_)
    rounded_context = Tensor::view(DType::BF16, {tokens, hidden_size_}, context.raw_data(), context.owner());
  Tensor& result = bf16_context_ ? rounded_context : context;
  // The (T, 3 hidden) scratch holds the fused projection's (T, 3 hidden) queries, keys and
  // values, or a (T, 2 hidden) query/key block and then (T, hidden) values: float32, or bf16
  // in the first half of its bytes.
  const int64_t ld = split_value_ ? 2 * hidden_size_ : 3 * hidden_size_;
  const int64_t ld_v = split_value_ ? hidden_size_ : 0;  // 0: ld
  const DType dtype = bf16_attention_ ? DType::BF16 : DType::F32;
  void* q = qkv.raw_data();
  Tensor projected = Tensor::view(dtype, {tokens, ld}, q, qkv.owner());
  qkv_(projected, x);
  const size_t element = dtype_size(dtype);
  const auto* bytes = static_cast<const uint8_t*>(q);
  const void* k = bytes + hidden_size_ * element;
  const void* v = bytes + 2 * hidden_size_ * element;
  if (split_value_) {
    Tensor values = Tensor::view(dtype, {tokens, hidden_size_},
                                 bytes + tokens * ld * static_cast<int64_t>(element), qkv.owner());
    value_(values, x);
    v = values.raw_data();
  }
  if (bf16_attention_)
    ops::packed_self_attention_bf16(result, static_cast<const uint16_t*>(q), static_cast<const uint16_t*>(k),
                                    static_cast<const uint16_t*>(v), ld, seq_offsets, num_heads_, head_dim,
                                    scale, nullptr, ld_v);
  else
    ops::packed_self_attention(result, static_cast<const float*>(q), static_cast<const float*>(k),
                               static_cast<const float*>(v), ld, seq_offsets, num_heads_, head_dim, scale,
                               nullptr, ld_v);
  output_(out, result);
}

}  // namespace nle
