#include <algorithm>
#include <vector>

#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/softmax.h"

namespace nle::ops::cpu {

void packed_self_attention_f32(float* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                               const RelativeBias* bias) {
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
      if (bias) {
        const float* row_bias = bias->table + h * bias->width + bias->center;
        for (int64_t r = 0; r < len; ++r) {
          float* sr = scores.data() + r * len;
          const float* br = row_bias - r;
#pragma omp simd
          for (int64_t c = 0; c < len; ++c) sr[c] += br[c];
        }
      }
      for (int64_t r = 0; r < len; ++r) softmax_row_f32(scores.data() + r * len, len);
      gemm_f32(out + begin * ld_out + col, scores.data(), vh, false, false, len, head_dim, len, len,
               ld_in, ld_out, 1.f, 0.f);
    }
  }
}

void gathered_attention_f32(float* out, int64_t ld_out, const GatheredAttention& a) {
  const int64_t items = a.num_queries * a.num_heads;
  const int64_t d = a.head_dim;
#pragma omp parallel if (items > 1)
  {
    std::vector<float> scores;
    std::vector<float> acc(static_cast<size_t>(d));
#pragma omp for schedule(dynamic, 4)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t i = item / a.num_heads, h = item % a.num_heads;
      const int64_t begin = a.key_offsets[i], n = a.key_offsets[i + 1] - begin;
      float* o = out + i * ld_out + h * d;
      if (n == 0) {
        std::fill(o, o + d, 0.f);
        continue;
      }
      scores.resize(static_cast<size_t>(n));
      const float* qh = a.q + i * a.ld_q + h * d;
      const int64_t* rows = a.key_rows + begin;
      for (int64_t j = 0; j < n; ++j) {
        const float* kr = a.k + rows[j] * a.ld_kv + h * d;
        float dot = 0.f;
#pragma omp simd reduction(+ : dot)
        for (int64_t x = 0; x < d; ++x) dot += qh[x] * kr[x];
        scores[j] = dot * a.scale;
      }
      if (a.bias) {
        const float* b = a.bias + h * a.bias_ld;
        for (int64_t j = 0; j < n; ++j) scores[j] += b[j];
      }
      softmax_row_f32(scores.data(), n);
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t j = 0; j < n; ++j) {
        const float* vr = a.v + rows[j] * a.ld_kv + h * d;
        const float p = scores[j];
        float* accp = acc.data();
#pragma omp simd
        for (int64_t x = 0; x < d; ++x) accp[x] += p * vr[x];
      }
      std::copy(acc.begin(), acc.end(), o);
    }
  }
}

}  // namespace nle::ops::cpu
