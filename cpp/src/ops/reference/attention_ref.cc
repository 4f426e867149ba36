#include <cmath>
#include <vector>

#include "ops/attention.h"

namespace nle::ops::reference {

void packed_self_attention_f32(float* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale) {
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
          max_v = std::max(max_v, p[j]);
        }
        for (int64_t j = 0; j < len; ++j) sum += (p[j] = std::exp(p[j] - max_v));
        for (int64_t d = 0; d < head_dim; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < len; ++j) acc += p[j] / sum * v[(begin + j) * ld_in + col + d];
          out[(begin + i) * ld_out + col + d] = static_cast<float>(acc);
        }
      }
    }
  }
}

}  // namespace nle::ops::reference
