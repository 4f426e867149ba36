#include <algorithm>
#include <vector>

#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/softmax.h"

namespace nle::ops::cpu {

void packed_self_attention_f32(float* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                               const RelativeBias* bias, int64_t ld_v) {
  if (ld_v == 0) ld_v = ld_in;
  const int64_t items = num_seqs * num_heads;
#pragma omp parallel
  {
    std::vector<float> scores, inv_sum;  // (L, L) and (L) for the current sequence, per thread
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t s = item / num_heads, h = item % num_heads;
      const int64_t begin = seq_offsets[s], len = seq_offsets[s + 1] - begin;
      if (len == 0) continue;
      scores.resize(static_cast<size_t>(len * len));
      inv_sum.resize(static_cast<size_t>(len));
      const int64_t col = h * head_dim;
      const float* qh = q + begin * ld_in + col;
      const float* kh = k + begin * ld_in + col;
      const float* vh = v + begin * ld_v + col;
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
      // Unnormalised probabilities; each output row is scaled by its 1 / Σ instead.
      softmax_rows_unnormalized_f32(scores.data(), inv_sum.data(), len, len);
      float* oh = out + begin * ld_out + col;
      gemm_f32(oh, scores.data(), vh, false, false, len, head_dim, len, len, ld_v, ld_out, 1.f, 0.f);
      for (int64_t r = 0; r < len; ++r) {
        float* o = oh + r * ld_out;
        const float s = inv_sum[static_cast<size_t>(r)];
#pragma omp simd
        for (int64_t c = 0; c < head_dim; ++c) o[c] *= s;
      }
    }
  }
}

namespace {

// Queries that attend to the same contiguous block of key rows (the beams of one
// source in cross-attention) form a group: their scores are one small GEMM.
struct QueryGroup {
  int64_t first_query, num_queries;
  int64_t first_row, num_keys;  // first_row < 0: rows not contiguous, one query
};

std::vector<QueryGroup> group_queries(const GatheredAttention& a) {
  std::vector<QueryGroup> groups;
  for (int64_t i = 0; i < a.num_queries; ++i) {
    const int64_t begin = a.key_offsets[i], n = a.key_offsets[i + 1] - begin;
    const int64_t* rows = a.key_rows + begin;
    bool contiguous = n > 0;
    for (int64_t j = 1; j < n && contiguous; ++j) contiguous = rows[j] == rows[0] + j;
    const int64_t first = contiguous ? rows[0] : -1;
    if (contiguous && !groups.empty()) {
      QueryGroup& last = groups.back();
      if (last.first_row == first && last.num_keys == n) {
        ++last.num_queries;
        continue;
      }
    }
    groups.push_back({i, 1, first, n});
  }
  return groups;
}

// A query alone in its group (greedy search, self-attention over its own cache rows)
// takes the loops below rather than two GEMM calls of one row each: BART-base greedy
// steps about 3% faster (AVX2-only AMD EPYC).
constexpr int64_t kMinGemmQueries = 2;

}  // namespace

void gathered_attention_f32(float* out, int64_t ld_out, const GatheredAttention& a) {
  const std::vector<QueryGroup> groups = group_queries(a);
  const int64_t items = static_cast<int64_t>(groups.size()) * a.num_heads;
  const int64_t d = a.head_dim;
#pragma omp parallel if (items > 1)
  {
    std::vector<float> scores;
    std::vector<float> acc(static_cast<size_t>(d));
#pragma omp for schedule(dynamic, 4)
    for (int64_t item = 0; item < items; ++item) {
      const QueryGroup& g = groups[static_cast<size_t>(item / a.num_heads)];
      const int64_t h = item % a.num_heads, n = g.num_keys;
      const int64_t i = g.first_query;
      float* o = out + i * ld_out + h * d;
      if (n == 0) {
        for (int64_t r = 0; r < g.num_queries; ++r) std::fill(o + r * ld_out, o + r * ld_out + d, 0.f);
        continue;
      }
      const float* qh = a.q + i * a.ld_q + h * d;
      const float* bias = a.bias ? a.bias + h * a.bias_ld : nullptr;
      if (g.first_row >= 0 && g.num_queries >= kMinGemmQueries) {
        // (G, n) = (G, d) · (n, d)ᵀ and (G, d) = (G, n) · (n, d), straight from the
        // cached rows; the GEMM library runs single-threaded in this parallel region.
        const float* kh = a.k + g.first_row * a.ld_kv + h * d;
        const float* vh = a.v + g.first_row * a.ld_kv + h * d;
        scores.resize(static_cast<size_t>(g.num_queries * n));
        gemm_f32(scores.data(), qh, kh, false, true, g.num_queries, n, d, a.ld_q, a.ld_kv, n, a.scale,
                 0.f);
        for (int64_t r = 0; r < g.num_queries; ++r) {
          float* sr = scores.data() + r * n;
          if (bias)
            for (int64_t j = 0; j < n; ++j) sr[j] += bias[j];
          softmax_row_f32(sr, n);
        }
        gemm_f32(o, scores.data(), vh, false, false, g.num_queries, d, n, n, a.ld_kv, ld_out, 1.f, 0.f);
        continue;
      }
      scores.resize(static_cast<size_t>(n));
      const int64_t* rows = a.key_rows + a.key_offsets[i];
      for (int64_t j = 0; j < n; ++j) {
        const float* kr = a.k + rows[j] * a.ld_kv + h * d;
        float dot = 0.f;
#pragma omp simd reduction(+ : dot)
        for (int64_t x = 0; x < d; ++x) dot += qh[x] * kr[x];
        scores[j] = dot * a.scale;
      }
      if (bias)
        for (int64_t j = 0; j < n; ++j) scores[j] += bias[j];
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
