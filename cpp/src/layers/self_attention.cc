#include "layers/self_attention.h"

#include <cmath>

#include "ops/attention.h"

namespace nle {

SelfAttention::SelfAttention(const Weights& weights, const std::vector<std::string>& qkv_scopes,
                             const std::string& output_scope, int64_t hidden_size, int64_t num_heads)
    : qkv_(Linear::fused(weights, qkv_scopes, hidden_size, hidden_size)),
      output_(weights, output_scope, hidden_size, hidden_size),
      hidden_size_(hidden_size),
      num_heads_(num_heads) {}

void SelfAttention::operator()(Tensor& out, const Tensor& x, const std::vector<int64_t>& seq_offsets,
                               Tensor& qkv, Tensor& context) const {
  qkv_(qkv, x);
  const float* base = qkv.data<float>();
  const int64_t head_dim = hidden_size_ / num_heads_;
  ops::packed_self_attention(context, base, base + hidden_size_, base + 2 * hidden_size_,
                             3 * hidden_size_, seq_offsets, num_heads_, head_dim,
                             1.f / std::sqrt(static_cast<float>(head_dim)));
  output_(out, context);
}

}  // namespace nle
