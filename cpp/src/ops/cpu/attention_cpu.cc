#include <vector>

#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/softmax.h"

namespace nle::ops::cpu {

void packed_self_attention_f32(float* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale) {
  const int64_t items = num_seqs * num_heads;
#pragma omp parallel
  {
    std::vector<float> scores;  // (L, L) for the current sequence, per thread
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t s = item / num_heads, h = item % num_heads;
      const int64_t begin = seq_offsets[s], len = seq_offsets[s + 1] - begin;
      if (len == 0) continue;
      scores.resize(static_cast<size_t>(len * len));
      const int64_t col = h * head_dim;
      const float* qh = q + begin * ld_in + col;
      const float* kh = k + begin * ld_in + col;
      const float* vh = v + begin * ld_in + col;
      // (L, L) = (L, d) · (L, d)ᵀ; the GEMM library runs single-threaded inside
      // this parallel region.
      gemm_f32(scores.data(), qh, kh, false, true, len, len, head_dim, ld_in, ld_in, len, scale, 0.f);
      for (int64_t r = 0; r < len; ++r) softmax_row_f32(scores.data() + r * len, len);
      gemm_f32(out + begin * ld_out + col, scores.data(), vh, false, false, len, head_dim, len, len,
               ld_in, ld_out, 1.f, 0.f);
    }
  }
}

}  // namespace nle::ops::cpu
