#if defined(__AVX2__) || defined(__F16C__)
#  include <immintrin.h>
#endif

#include <algorithm>
#include <vector>

#include "core/half.h"
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

// The listed key and value rows of one head are d values each, a whole row of the cache
// apart (3-6 KB): nearly every row is on a page of its own, where the hardware
// prefetchers stop. Each loop asks for the row kPrefetchAhead rows ahead.
constexpr int64_t kPrefetchAhead = 8;

template <typename T>
inline void prefetch_row(const T* row, int64_t d) {
  const auto* bytes = reinterpret_cast<const char*>(row);
  for (int64_t x = 0; x < d * static_cast<int64_t>(sizeof(T)); x += 64) __builtin_prefetch(bytes + x);
}

// Keys and values are float32, or IEEE half for the fast compute types.
inline float to_float(float v) { return v; }
#if defined(__F16C__)
inline float to_float(uint16_t h) { return _cvtsh_ss(h); }
#else
inline float to_float(uint16_t h) { return half_to_float(h); }
#endif

#if defined(__AVX2__) && defined(__FMA__)
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// scores[j] = scale · q · k[rows[j]] for d = 8 · C: four rows at a time, each with its own
// sums, so that no add waits on the one before.
template <int C, typename T>
void dot_rows_avx2(float* scores, const float* q, const T* k, int64_t ld, const int64_t* rows, int64_t n,
                   float scale) {
  __m256 qv[C];
#  pragma GCC unroll 16
  for (int c = 0; c < C; ++c) qv[c] = _mm256_loadu_ps(q + 8 * c);
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    if (j + kPrefetchAhead + 4 <= n)
      for (int r = 0; r < 4; ++r) prefetch_row(k + rows[j + kPrefetchAhead + r] * ld, 8 * C);
    const T* r0 = k + rows[j] * ld;
    const T* r1 = k + rows[j + 1] * ld;
    const T* r2 = k + rows[j + 2] * ld;
    const T* r3 = k + rows[j + 3] * ld;
    __m256 a0 = _mm256_mul_ps(qv[0], load8(r0)), a1 = _mm256_mul_ps(qv[0], load8(r1));
    __m256 a2 = _mm256_mul_ps(qv[0], load8(r2)), a3 = _mm256_mul_ps(qv[0], load8(r3));
#  pragma GCC unroll 16
    for (int c = 1; c < C; ++c) {
      a0 = _mm256_fmadd_ps(qv[c], load8(r0 + 8 * c), a0);
      a1 = _mm256_fmadd_ps(qv[c], load8(r1 + 8 * c), a1);
      a2 = _mm256_fmadd_ps(qv[c], load8(r2 + 8 * c), a2);
      a3 = _mm256_fmadd_ps(qv[c], load8(r3 + 8 * c), a3);
    }
    // The four sums of 8 lanes each, side by side in one vector of 4.
    const __m256 h01 = _mm256_hadd_ps(a0, a1), h23 = _mm256_hadd_ps(a2, a3);
    const __m256 h = _mm256_hadd_ps(h01, h23);
    const __m128 sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    _mm_storeu_ps(scores + j, _mm_mul_ps(sums, _mm_set1_ps(scale)));
  }
  for (; j < n; ++j) {
    const T* r = k + rows[j] * ld;
    __m256 a = _mm256_mul_ps(qv[0], load8(r));
#  pragma GCC unroll 16
    for (int c = 1; c < C; ++c) a = _mm256_fmadd_ps(qv[c], load8(r + 8 * c), a);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    scores[j] = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2))) * scale;
  }
}

// out = Σ_j p[j] · v[rows[j]] for d = 8 · C, the sums in registers.
template <int C, typename T>
void weighted_rows_avx2(float* out, const float* p, const T* v, int64_t ld, const int64_t* rows, int64_t n) {
  __m256 acc[C];
#  pragma GCC unroll 16
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; ++j) {
    if (j + kPrefetchAhead < n) prefetch_row(v + rows[j + kPrefetchAhead] * ld, 8 * C);
    const T* r = v + rows[j] * ld;
    const __m256 w = _mm256_broadcast_ss(p + j);
#  pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[c] = _mm256_fmadd_ps(w, load8(r + 8 * c), acc[c]);
  }
#  pragma GCC unroll 16
  for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
}
#endif

// scores[j] = scale · q · k[rows[j]] (d values each).
template <typename T>
void dot_rows(float* scores, const float* q, const T* k, int64_t ld, const int64_t* rows, int64_t n,
              int64_t d, float scale) {
#if defined(__AVX2__) && defined(__FMA__)
  switch (d) {
    case 32:
      return dot_rows_avx2<4>(scores, q, k, ld, rows, n, scale);
    case 64:
      return dot_rows_avx2<8>(scores, q, k, ld, rows, n, scale);
    case 128:
      return dot_rows_avx2<16>(scores, q, k, ld, rows, n, scale);
    default:
      break;
  }
#endif
  for (int64_t j = 0; j < n; ++j) {
    if (j + kPrefetchAhead < n) prefetch_row(k + rows[j + kPrefetchAhead] * ld, d);
    const T* kr = k + rows[j] * ld;
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int64_t x = 0; x < d; ++x) dot += q[x] * to_float(kr[x]);
    scores[j] = dot * scale;
  }
}

// out (d floats) = Σ_j p[j] · v[rows[j]]; acc: d floats of scratch.
template <typename T>
void weighted_rows(float* out, float* acc, const float* p, const T* v, int64_t ld, const int64_t* rows,
                   int64_t n, int64_t d) {
#if defined(__AVX2__) && defined(__FMA__)
  switch (d) {
    case 32:
      return weighted_rows_avx2<4>(out, p, v, ld, rows, n);
    case 64:
      return weighted_rows_avx2<8>(out, p, v, ld, rows, n);
    case 128:
      return weighted_rows_avx2<16>(out, p, v, ld, rows, n);
    default:
      break;
  }
#endif
  std::fill(acc, acc + d, 0.f);
  for (int64_t j = 0; j < n; ++j) {
    if (j + kPrefetchAhead < n) prefetch_row(v + rows[j + kPrefetchAhead] * ld, d);
    const T* vr = v + rows[j] * ld;
    const float pj = p[j];
#pragma omp simd
    for (int64_t x = 0; x < d; ++x) acc[x] += pj * to_float(vr[x]);
  }
  std::copy(acc, acc + d, out);
}

// One query i, one head h: out = softmax(scale · q kᵀ + bias) v over i's listed rows.
template <typename T>
void attend_one(float* out, std::vector<float>& scores, std::vector<float>& acc, const GatheredAttention& a,
                const T* k, const T* v, int64_t i, int64_t h) {
  const int64_t d = a.head_dim, begin = a.key_offsets[i], n = a.key_offsets[i + 1] - begin;
  if (n == 0) {
    std::fill(out, out + d, 0.f);
    return;
  }
  const int64_t* rows = a.key_rows + begin;
  scores.resize(static_cast<size_t>(n));
  dot_rows(scores.data(), a.q + i * a.ld_q + h * d, k + h * a.head_offset(), a.ld_kv, rows, n, d, a.scale);
  if (a.bias)
    for (int64_t j = 0; j < n; ++j) scores[j] += a.bias[h * a.bias_ld + j];
  softmax_row_f32(scores.data(), n);
  weighted_rows(out, acc.data(), scores.data(), v + h * a.head_offset(), a.ld_kv, rows, n, d);
}

}  // namespace

void gathered_attention_f32(float* out, int64_t ld_out, const GatheredAttention& a) {
  const std::vector<QueryGroup> groups = group_queries(a);
  const int64_t items = static_cast<int64_t>(groups.size()) * a.num_heads;
  const int64_t d = a.head_dim;
  const bool half = a.k_f16 != nullptr;
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
      if (!half && g.first_row >= 0 && g.num_queries >= kMinGemmQueries) {
        // (G, n) = (G, d) · (n, d)ᵀ and (G, d) = (G, n) · (n, d), straight from the
        // cached rows; the GEMM library runs single-threaded in this parallel region.
        const float* qh = a.q + i * a.ld_q + h * d;
        const float* bias = a.bias ? a.bias + h * a.bias_ld : nullptr;
        const float* kh = a.k + g.first_row * a.ld_kv + h * a.head_offset();
        const float* vh = a.v + g.first_row * a.ld_kv + h * a.head_offset();
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
      // Query by query; a group's queries (beams of one source) one after another, while
      // the head's rows are in cache.
      for (int64_t r = 0; r < g.num_queries; ++r) {
        if (half)
          attend_one(o + r * ld_out, scores, acc, a, a.k_f16, a.v_f16, i + r, h);
        else
          attend_one(o + r * ld_out, scores, acc, a, a.k, a.v, i + r, h);
      }
    }
  }
}

}  // namespace nle::ops::cpu
