#include <cmath>
#include <vector>

#include "core/half.h"
#include "ops/attention.h"

namespace nle::ops::reference {

void packed_self_attention_f32(float* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                               const RelativeBias* bias, int64_t ld_v) {
  if (ld_v == 0) ld_v = ld_in;
  for (int64_t s = 0; s < num_seqs; ++s) {
    const int64_t begin = seq_offsets[s], len = seq_offsets[s + 1] - begin;
    std::vector<double> p(static_cast<size_t>(len));
    for (int64_t h = 0; h < num_heads; ++h) {
      const int64_t col = h * head_dim;
      for (int64_t i = 0; i < len; ++i) {
        double max_v = -INFINITY, sum = 0;
        for (int64_t j = 0; j < len; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < head_dim; ++d)
            dot += static_cast<double>(q[(begin + i) * ld_in + col + d]) * k[(begin + j) * ld_in + col + d];
          p[j] = dot * scale;
          if (bias) p[j] += bias->table[h * bias->width + bias->center + (j - i)];
          max_v = std::max(max_v, p[j]);
        }
        for (int64_t j = 0; j < len; ++j) sum += (p[j] = std::exp(p[j] - max_v));
        for (int64_t d = 0; d < head_dim; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < len; ++j) acc += p[j] / sum * v[(begin + j) * ld_v + col + d];
          out[(begin + i) * ld_out + col + d] = static_cast<float>(acc);
        }
      }
    }
  }
}

void gathered_attention_f32(float* out, int64_t ld_out, const GatheredAttention& a) {
  const int64_t d = a.head_dim;
  const auto key = [&a, d](int64_t at) -> double {
    if (a.k_i8) return static_cast<double>(a.k_i8[at]) * a.k_scales[at / d];
    return a.k ? a.k[at] : half_to_float(a.k_f16[at]);
  };
  const auto value = [&a, d](int64_t at) -> double {
    if (a.v_i8) return static_cast<double>(a.v_i8[at]) * a.v_scales[at / d];
    return a.v ? a.v[at] : half_to_float(a.v_f16[at]);
  };
  for (int64_t i = 0; i < a.num_queries; ++i) {
    const int64_t begin = a.key_offsets[i], n = a.key_offsets[i + 1] - begin;
    std::vector<double> p(static_cast<size_t>(n));
    for (int64_t h = 0; h < a.num_heads; ++h) {
      double max_v = -INFINITY, sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int64_t x = 0; x < d; ++x)
          dot += static_cast<double>(a.q[i * a.ld_q + h * d + x]) *
                 key(a.key_rows[begin + j] * a.ld_kv + h * a.head_offset() + x);
        p[j] = dot * a.scale + (a.bias ? a.bias[h * a.bias_ld + j] : 0.0);
        max_v = std::max(max_v, p[j]);
      }
      for (int64_t j = 0; j < n; ++j) sum += (p[j] = std::exp(p[j] - max_v));
      for (int64_t x = 0; x < d; ++x) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j)
          acc += p[j] / sum * value(a.key_rows[begin + j] * a.ld_kv + h * a.head_offset() + x);
        out[i * ld_out + h * d + x] = n ? static_cast<float>(acc) : 0.f;
      }
    }
  }
}

}  // namespace nle::ops::reference
