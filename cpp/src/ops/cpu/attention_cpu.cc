#if defined(__AVX2__) || defined(__F16C__)
#  include <immintrin.h>
#endif

#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/half.h"
#include "core/scratch_buffer.h"
#include "ops/attention.h"
#include "ops/bf16_gemm.h"
#include "ops/cpu/attention_tiles.h"
#include "ops/cpu/attention_tiles_bf16.h"
#include "ops/gemm.h"
#include "ops/softmax.h"

namespace nle::ops::cpu {

namespace {
// One sequence's attention for one head over float32 q, k and v (len rows, ld_in and ld_v
// apart): in the float32 tiles, or by the GEMM library (single-threaded inside the caller's
// parallel region): the scores (len, len), softmax, and the second product.
template <typename Out>
void attend_head_f32(Out* oh, int64_t ld_out, const float* qh, const float* kh, const float* vh,
                     int64_t ld_in, int64_t ld_v, int64_t len, int64_t head_dim, float scale,
                     const float* row_bias, bool tiles) {
  if (tiles) {
    thread_local AttentionTileScratch tile_scratch;
    attention_tiles(oh, ld_out, qh, ld_in, kh, ld_in, vh, ld_v, len, head_dim, scale, row_bias, tile_scratch);
    return;
  }
  // Per thread: the scores and 1 / Σ, the results before rounding.
  thread_local ScratchBuffer<float> scores_buffer, inv_sum_buffer, context_buffer;
  float* scores = scores_buffer.get(static_cast<size_t>(len * len));
  float* inv_sum = inv_sum_buffer.get(static_cast<size_t>(len));
  gemm_f32(scores, qh, kh, false, true, len, len, head_dim, ld_in, ld_in, len, scale, 0.f);
  if (row_bias) {
    for (int64_t r = 0; r < len; ++r) {
      float* sr = scores + r * len;
      const float* br = row_bias - r;
#pragma omp simd
      for (int64_t c = 0; c < len; ++c) sr[c] += br[c];
    }
  }
  // Unnormalised probabilities; each output row is scaled by its 1 / Σ instead.
  softmax_rows_unnormalized_f32(scores, inv_sum, len, len);
  constexpr bool rounded = std::is_same_v<Out, uint16_t>;
  float* o = rounded ? context_buffer.get(static_cast<size_t>(len * head_dim)) : reinterpret_cast<float*>(oh);
  const int64_t ld_o = rounded ? head_dim : ld_out;
  gemm_f32(o, scores, vh, false, false, len, head_dim, len, len, ld_v, ld_o, 1.f, 0.f);
  for (int64_t r = 0; r < len; ++r) {
    float* orow = o + r * ld_o;
    const float s = inv_sum[r];
#pragma omp simd
    for (int64_t c = 0; c < head_dim; ++c) orow[c] *= s;
    if constexpr (rounded) float_to_bf16_serial(oh + r * ld_out, orow, head_dim);
  }
}

// Every (sequence, head) of packed_self_attention, spread over the threads: float32 inputs
// (T = float) in the float32 tiles or by the GEMM library, bf16 ones (T = uint16_t, bit
// patterns) in the bf16 tiles; float32 results (Out = float), or rounded to bf16 (Out =
// uint16_t) for a bf16 product that takes them.
template <typename T, typename Out>
void attend_packed(Out* out, const T* q, const T* k, const T* v, const int64_t* seq_offsets, int64_t num_seqs,
                   int64_t num_heads, int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                   const RelativeBias* bias, int64_t ld_v) {
  if (ld_v == 0) ld_v = ld_in;
  const int64_t items = num_seqs * num_heads;
  const bool tiles = attention_tiles_fit(head_dim);  // the float32 tiles
#pragma omp parallel
  {
    thread_local Bf16AttentionTileScratch bf16_tile_scratch;
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t s = item / num_heads, h = item % num_heads;
      const int64_t begin = seq_offsets[s], len = seq_offsets[s + 1] - begin;
      if (len == 0) continue;
      const int64_t col = h * head_dim;
      const T* qh = q + begin * ld_in + col;
      const T* kh = k + begin * ld_in + col;
      const T* vh = v + begin * ld_v + col;
      Out* oh = out + begin * ld_out + col;
      const float* row_bias = bias ? bias->table + h * bias->width + bias->center : nullptr;
      if constexpr (std::is_same_v<T, uint16_t>)
        bf16_attention_tiles(oh, ld_out, qh, ld_in, kh, ld_in, vh, ld_v, len, head_dim, scale, row_bias,
                             bf16_tile_scratch);
      else
        attend_head_f32(oh, ld_out, qh, kh, vh, ld_in, ld_v, len, head_dim, scale, row_bias, tiles);
    }
  }
}
}  // namespace

void packed_self_attention_f32(float* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                               const RelativeBias* bias, int64_t ld_v) {
  attend_packed(out, q, k, v, seq_offsets, num_seqs, num_heads, head_dim, ld_in, ld_out, scale, bias, ld_v);
}

void packed_self_attention_f32(uint16_t* out, const float* q, const float* k, const float* v,
                               const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                               int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                               const RelativeBias* bias, int64_t ld_v) {
  attend_packed(out, q, k, v, seq_offsets, num_seqs, num_heads, head_dim, ld_in, ld_out, scale, bias, ld_v);
}

void packed_self_attention_bf16(float* out, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                                int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                                const RelativeBias* bias, int64_t ld_v) {
  attend_packed(out, q, k, v, seq_offsets, num_seqs, num_heads, head_dim, ld_in, ld_out, scale, bias, ld_v);
}

void packed_self_attention_bf16(uint16_t* out, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                const int64_t* seq_offsets, int64_t num_seqs, int64_t num_heads,
                                int64_t head_dim, int64_t ld_in, int64_t ld_out, float scale,
                                const RelativeBias* bias, int64_t ld_v) {
  attend_packed(out, q, k, v, seq_offsets, num_seqs, num_heads, head_dim, ld_in, ld_out, scale, bias, ld_v);
}

namespace {

// Queries that attend to the same contiguous block of key rows (the beams of one
// source in cross-attention) form a group, which reads the block once for all of them.
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

// Each loop over key rows asks for the row kPrefetchAhead rows ahead, and for the value row
// of the row it reads (the value pass comes right after); the value pass asks
// kPrefetchAhead rows ahead too, for rows the key pass did not bring. A decoding step
// streams these rows from memory: a head's rows of the cross-attention memory are
// contiguous (64-256 bytes each), but the hardware prefetchers stop at every 4 KB page and
// ramp up again; the self-attention cache's are a whole cache row (0.75-6 KB) apart, and
// listed rows (a reordered history) further still. 32 rows ahead and the values during
// the keys, against 8 ahead and the values during their own pass: random-weight bart-base
// int8, 16 sources of 256 tokens, generated tokens/s greedy 1,198 -> 1,294, beam 4 588 ->
// 654; t5-small int8 greedy 2,479 -> 2,580; float32 unchanged (Sapphire Rapids, 2 threads).
constexpr int64_t kPrefetchAhead = 32;

template <typename T>
inline void prefetch_row(const T* row, int64_t d) {
  const auto* bytes = reinterpret_cast<const char*>(row);
  for (int64_t x = 0; x < d * static_cast<int64_t>(sizeof(T)); x += 64) __builtin_prefetch(bytes + x);
}

// The first kPrefetchAhead rows of a key pass, asked for before it starts.
template <typename Rows>
inline void prefetch_first_rows(const Rows& k, int64_t n, int64_t d) {
  for (int64_t j = 0; j < std::min(n, kPrefetchAhead); ++j) prefetch_row(k[j], d);
}

// The key or value rows a query reads: listed (row j at base + rows[j] · ld) ...
// int8 rows have a scale each (scales[rows[j] · scale_ld]); the others no scales.
template <typename T>
struct ListedRows {
  const T* base;
  int64_t ld;
  const int64_t* rows;
  const float* scales = nullptr;
  int64_t scale_ld = 0;
  const T* operator[](int64_t j) const { return base + rows[j] * ld; }
  float scale(int64_t j) const { return scales[rows[j] * scale_ld]; }
};
// ... or a block (row j at base + j · ld), as a group's are.
template <typename T>
struct BlockRows {
  const T* base;
  int64_t ld;
  const float* scales = nullptr;
  int64_t scale_ld = 0;
  const T* operator[](int64_t j) const { return base + j * ld; }
  float scale(int64_t j) const { return scales[j * scale_ld]; }
};

// Keys and values are float32, IEEE half for the fast compute types, or int8 codes (their
// scales applied to the scores and probabilities) for int8.
inline float to_float(float v) { return v; }
inline float to_float(int8_t v) { return static_cast<float>(v); }
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
inline __m256 load8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// scores[j] = scale · q · k[j] for d = 8 · C: four rows at a time, each with two sums (even
// and odd groups of 8), so that eight chains of multiply-adds run side by side where four
// left the FMA units waiting on each one's latency half of the time.
template <int C, typename Rows>
void dot_rows_avx2(float* scores, const float* q, const Rows& k, int64_t n, float scale, const Rows& v) {
  prefetch_first_rows(k, n, 8 * C);
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    if (j + kPrefetchAhead + 4 <= n)
      for (int r = 0; r < 4; ++r) prefetch_row(k[j + kPrefetchAhead + r], 8 * C);
    for (int r = 0; r < 4; ++r) prefetch_row(v[j + r], 8 * C);
    const auto* r0 = k[j];
    const auto* r1 = k[j + 1];
    const auto* r2 = k[j + 2];
    const auto* r3 = k[j + 3];
    __m256 a[4][2];
#  pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) a[r][0] = a[r][1] = _mm256_setzero_ps();
#  pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m256 qc = _mm256_loadu_ps(q + 8 * c);
      a[0][c & 1] = _mm256_fmadd_ps(qc, load8(r0 + 8 * c), a[0][c & 1]);
      a[1][c & 1] = _mm256_fmadd_ps(qc, load8(r1 + 8 * c), a[1][c & 1]);
      a[2][c & 1] = _mm256_fmadd_ps(qc, load8(r2 + 8 * c), a[2][c & 1]);
      a[3][c & 1] = _mm256_fmadd_ps(qc, load8(r3 + 8 * c), a[3][c & 1]);
    }
    const __m256 a0 = _mm256_add_ps(a[0][0], a[0][1]), a1 = _mm256_add_ps(a[1][0], a[1][1]);
    const __m256 a2 = _mm256_add_ps(a[2][0], a[2][1]), a3 = _mm256_add_ps(a[3][0], a[3][1]);
    // The four sums of 8 lanes each, side by side in one vector of 4.
    const __m256 h01 = _mm256_hadd_ps(a0, a1), h23 = _mm256_hadd_ps(a2, a3);
    const __m256 h = _mm256_hadd_ps(h01, h23);
    const __m128 sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    _mm_storeu_ps(scores + j, _mm_mul_ps(sums, _mm_set1_ps(scale)));
  }
  for (; j < n; ++j) {
    prefetch_row(v[j], 8 * C);
    const auto* r = k[j];
    __m256 a = _mm256_mul_ps(_mm256_loadu_ps(q), load8(r));
#  pragma GCC unroll 16
    for (int c = 1; c < C; ++c) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * c), load8(r + 8 * c), a);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    scores[j] = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2))) * scale;
  }
}

// out = Σ_j p[j] · v[j] for d = 8 · C, the sums in registers.
template <int C, typename Rows>
void weighted_rows_avx2(float* out, const float* p, const Rows& v, int64_t n) {
  __m256 acc[C];
#  pragma GCC unroll 16
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; ++j) {
    if (j + kPrefetchAhead < n) prefetch_row(v[j + kPrefetchAhead], 8 * C);
    const auto* r = v[j];
    const __m256 w = _mm256_broadcast_ss(p + j);
#  pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[c] = _mm256_fmadd_ps(w, load8(r + 8 * c), acc[c]);
  }
#  pragma GCC unroll 16
  for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
}
#endif

// scores[j] = scale · q · k[j] (d values each), the value rows v[j] asked for on the way.
template <typename Rows>
void dot_rows(float* scores, const float* q, const Rows& k, int64_t n, int64_t d, float scale,
              const Rows& v) {
#if defined(__AVX2__) && defined(__FMA__)
  switch (d) {
    case 32:
      return dot_rows_avx2<4>(scores, q, k, n, scale, v);
    case 64:
      return dot_rows_avx2<8>(scores, q, k, n, scale, v);
    case 128:
      return dot_rows_avx2<16>(scores, q, k, n, scale, v);
    default:
      break;
  }
#endif
  prefetch_first_rows(k, n, d);
  for (int64_t j = 0; j < n; ++j) {
    if (j + kPrefetchAhead < n) prefetch_row(k[j + kPrefetchAhead], d);
    prefetch_row(v[j], d);
    const auto* kr = k[j];
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int64_t x = 0; x < d; ++x) dot += q[x] * to_float(kr[x]);
    scores[j] = dot * scale;
  }
}

// out (d floats) = Σ_j p[j] · v[j]; acc: d floats of scratch.
template <typename Rows>
void weighted_rows(float* out, float* acc, const float* p, const Rows& v, int64_t n, int64_t d) {
#if defined(__AVX2__) && defined(__FMA__)
  switch (d) {
    case 32:
      return weighted_rows_avx2<4>(out, p, v, n);
    case 64:
      return weighted_rows_avx2<8>(out, p, v, n);
    case 128:
      return weighted_rows_avx2<16>(out, p, v, n);
    default:
      break;
  }
#endif
  std::fill(acc, acc + d, 0.f);
  for (int64_t j = 0; j < n; ++j) {
    if (j + kPrefetchAhead < n) prefetch_row(v[j + kPrefetchAhead], d);
    const auto* vr = v[j];
    const float pj = p[j];
#pragma omp simd
    for (int64_t x = 0; x < d; ++x) acc[x] += pj * to_float(vr[x]);
  }
  std::copy(acc, acc + d, out);
}

// One query, one head: out (d) = softmax(scale · q kᵀ + bias) v over n key and value rows.
template <typename Rows>
void attend(float* out, std::vector<float>& scores, std::vector<float>& acc, const float* q, const Rows& k,
            const Rows& v, int64_t n, int64_t d, float scale, const float* bias) {
  if (n == 0) {
    std::fill(out, out + d, 0.f);
    return;
  }
  scores.resize(static_cast<size_t>(n));
  dot_rows(scores.data(), q, k, n, d, scale, v);
  if (k.scales)
    for (int64_t j = 0; j < n; ++j) scores[j] *= k.scale(j);
  if (bias)
    for (int64_t j = 0; j < n; ++j) scores[j] += bias[j];
  softmax_row_f32(scores.data(), n);
  if (v.scales)  // each value row's scale folded into its probability
    for (int64_t j = 0; j < n; ++j) scores[j] *= v.scale(j);
  weighted_rows(out, acc.data(), scores.data(), v, n, d);
}

#if defined(__AVX2__) && defined(__FMA__)
// A group's scores for G ≤ 4 queries (q rows ld_q apart) over the block of n key rows (ld
// apart), d = 8 · C: each key vector is loaded (and widened) once for all G queries; the
// block of value rows (v, the same ld) asked for on the way. scores: G rows of n.
template <int C, int G, typename T>
void group_dot_avx2(float* scores, const float* q, int64_t ld_q, const T* k, const T* v, int64_t ld,
                    int64_t n, float scale) {
  static_assert(G >= 1 && G <= 4, "up to four queries per pass");
  prefetch_first_rows(BlockRows<T>{k, ld}, n, 8 * C);
  for (int64_t j = 0; j < n; ++j) {
    if (j + kPrefetchAhead < n) prefetch_row(k + (j + kPrefetchAhead) * ld, 8 * C);
    prefetch_row(v + j * ld, 8 * C);
    const T* r = k + j * ld;
    __m256 acc[4][2];
#  pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
#  pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m256 kv = load8(r + 8 * c);
#  pragma GCC unroll 4
      for (int g = 0; g < G; ++g)
        acc[g][c & 1] = _mm256_fmadd_ps(_mm256_loadu_ps(q + g * ld_q + 8 * c), kv, acc[g][c & 1]);
    }
    // Four sums of 8 lanes each (unused queries' are zero), side by side in one vector of 4.
    const __m256 h01 =
        _mm256_hadd_ps(_mm256_add_ps(acc[0][0], acc[0][1]), _mm256_add_ps(acc[1][0], acc[1][1]));
    const __m256 h23 =
        _mm256_hadd_ps(_mm256_add_ps(acc[2][0], acc[2][1]), _mm256_add_ps(acc[3][0], acc[3][1]));
    const __m256 h = _mm256_hadd_ps(h01, h23);
    alignas(16) float sums[4];
    _mm_store_ps(sums, _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)),
                                  _mm_set1_ps(scale)));
#  pragma GCC unroll 4
    for (int g = 0; g < G; ++g) scores[g * n + j] = sums[g];
  }
}

// out row g (ld_out apart) = Σ_j p[g · n + j] · v[j] for G ≤ 4 queries, d = 8 · C: 16 columns
// per pass over the rows, so that the G × 2 sums stay in registers; the first pass asks for
// the whole rows ahead (the later passes' columns: a strided read the prefetchers miss).
template <int C, int G, typename T>
void group_weighted_avx2(float* out, int64_t ld_out, const float* p, const T* v, int64_t ld, int64_t n) {
  static_assert(C % 2 == 0, "16 columns per pass");
  for (int c0 = 0; c0 < C; c0 += 2) {
    __m256 acc[G][2];
#  pragma GCC unroll 4
    for (int g = 0; g < G; ++g) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      // The first pass brings whole rows in for the later ones.
      if (c0 == 0 && j + kPrefetchAhead < n) prefetch_row(v + (j + kPrefetchAhead) * ld, 8 * C);
      const T* r = v + j * ld + 8 * c0;
      const __m256 v0 = load8(r), v1 = load8(r + 8);
#  pragma GCC unroll 4
      for (int g = 0; g < G; ++g) {
        const __m256 w = _mm256_broadcast_ss(p + g * n + j);
        acc[g][0] = _mm256_fmadd_ps(w, v0, acc[g][0]);
        acc[g][1] = _mm256_fmadd_ps(w, v1, acc[g][1]);
      }
    }
#  pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      _mm256_storeu_ps(out + g * ld_out + 8 * c0, acc[g][0]);
      _mm256_storeu_ps(out + g * ld_out + 8 * c0 + 8, acc[g][1]);
    }
  }
}

// G ≤ 4 queries of a group, one head: scores, bias, softmax, weighted values (k and v
// with their rows' scales where they are int8).
template <int C, int G, typename T>
void attend_group_avx2(float* out, int64_t ld_out, std::vector<float>& scores, const float* q, int64_t ld_q,
                       const BlockRows<T>& k, const BlockRows<T>& v, int64_t n, float scale,
                       const float* bias) {
  scores.resize(static_cast<size_t>(G * n));
  group_dot_avx2<C, G>(scores.data(), q, ld_q, k.base, v.base, k.ld, n, scale);
  for (int g = 0; g < G; ++g) {
    float* sr = scores.data() + g * n;
    if (k.scales)
      for (int64_t j = 0; j < n; ++j) sr[j] *= k.scale(j);
    if (bias)
      for (int64_t j = 0; j < n; ++j) sr[j] += bias[j];
    softmax_row_f32(sr, n);
    if (v.scales)
      for (int64_t j = 0; j < n; ++j) sr[j] *= v.scale(j);
  }
  group_weighted_avx2<C, G>(out, ld_out, scores.data(), v.base, v.ld, n);
}

template <int C, typename T>
void attend_group_avx2(float* out, int64_t ld_out, std::vector<float>& scores, const float* q, int64_t ld_q,
                       const BlockRows<T>& k, const BlockRows<T>& v, int64_t n, float scale,
                       const float* bias, int64_t queries) {
  for (int64_t r = 0; r < queries; r += 4) {
    float* o = out + r * ld_out;
    const float* qr = q + r * ld_q;
    switch (std::min<int64_t>(4, queries - r)) {
      case 1:
        attend_group_avx2<C, 1>(o, ld_out, scores, qr, ld_q, k, v, n, scale, bias);
        break;
      case 2:
        attend_group_avx2<C, 2>(o, ld_out, scores, qr, ld_q, k, v, n, scale, bias);
        break;
      case 3:
        attend_group_avx2<C, 3>(o, ld_out, scores, qr, ld_q, k, v, n, scale, bias);
        break;
      default:
        attend_group_avx2<C, 4>(o, ld_out, scores, qr, ld_q, k, v, n, scale, bias);
        break;
    }
  }
}
#endif

// A head's scales of int8 keys or values: its part of row r scaled by
// scales[h · head_offset / d + r · ld_kv / d] (GatheredAttention); null for the others
// (scales are set only with int8 ones, whose head_dim ops::gathered_attention checks).
inline const float* head_scales(const float* scales, const GatheredAttention& a, int64_t h) {
  return scales ? scales + h * a.head_offset() / a.head_dim : nullptr;
}

// One head of a group of queries over the same block of key and value rows (the beams of
// one source in cross-attention): up to four queries take each key and value vector from
// one load, where the head size has a vector kernel; else query by query.
template <typename T>
void attend_group(float* out, int64_t ld_out, std::vector<float>& scores, std::vector<float>& acc,
                  const GatheredAttention& a, const QueryGroup& g, const T* k, const T* v, int64_t h) {
  const int64_t d = a.head_dim, n = g.num_keys, scale_ld = a.k_scales ? a.ld_kv / d : 0;
  const float* ks = head_scales(a.k_scales, a, h);
  const float* vs = head_scales(a.v_scales, a, h);
  const BlockRows<T> keys{k + g.first_row * a.ld_kv + h * a.head_offset(), a.ld_kv,
                          ks ? ks + g.first_row * scale_ld : nullptr, scale_ld};
  const BlockRows<T> values{v + g.first_row * a.ld_kv + h * a.head_offset(), a.ld_kv,
                            vs ? vs + g.first_row * scale_ld : nullptr, scale_ld};
  const float* bias = a.bias ? a.bias + h * a.bias_ld : nullptr;
  const float* q = a.q + g.first_query * a.ld_q + h * d;
#if defined(__AVX2__) && defined(__FMA__)
  switch (d) {
    case 32:
      return attend_group_avx2<4>(out, ld_out, scores, q, a.ld_q, keys, values, n, a.scale, bias,
                                  g.num_queries);
    case 64:
      return attend_group_avx2<8>(out, ld_out, scores, q, a.ld_q, keys, values, n, a.scale, bias,
                                  g.num_queries);
    case 128:
      return attend_group_avx2<16>(out, ld_out, scores, q, a.ld_q, keys, values, n, a.scale, bias,
                                   g.num_queries);
    default:
      break;
  }
#endif
  for (int64_t r = 0; r < g.num_queries; ++r)
    attend(out + r * ld_out, scores, acc, q + r * a.ld_q, keys, values, n, d, a.scale, bias);
}

// A lone query over its rows: a block where they are contiguous (greedy search's
// cross-attention), else listed (self-attention over its own cache rows).
template <typename T>
void attend_alone(float* out, std::vector<float>& scores, std::vector<float>& acc, const GatheredAttention& a,
                  const QueryGroup& g, const T* k, const T* v, int64_t h) {
  const int64_t d = a.head_dim, i = g.first_query, begin = a.key_offsets[i], n = a.key_offsets[i + 1] - begin;
  const int64_t at = h * a.head_offset(), scale_ld = a.k_scales ? a.ld_kv / d : 0;
  const float* ks = head_scales(a.k_scales, a, h);
  const float* vs = head_scales(a.v_scales, a, h);
  const float* bias = a.bias ? a.bias + h * a.bias_ld : nullptr;
  const float* q = a.q + i * a.ld_q + h * d;
  if (g.first_row >= 0) {
    const int64_t first = g.first_row;
    attend(out, scores, acc, q,
           BlockRows<T>{k + at + first * a.ld_kv, a.ld_kv, ks ? ks + first * scale_ld : nullptr, scale_ld},
           BlockRows<T>{v + at + first * a.ld_kv, a.ld_kv, vs ? vs + first * scale_ld : nullptr, scale_ld}, n,
           d, a.scale, bias);
    return;
  }
  const int64_t* rows = a.key_rows + begin;
  attend(out, scores, acc, q, ListedRows<T>{k + at, a.ld_kv, rows, ks, scale_ld},
         ListedRows<T>{v + at, a.ld_kv, rows, vs, scale_ld}, n, d, a.scale, bias);
}

// Every (group, head) of the step over keys and values of one kind (T).
template <typename T>
void gathered_attention(float* out, int64_t ld_out, const GatheredAttention& a, const T* k, const T* v) {
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
      const int64_t h = item % a.num_heads;
      float* o = out + g.first_query * ld_out + h * d;
      if (g.num_queries > 1)
        attend_group(o, ld_out, scores, acc, a, g, k, v, h);
      else
        attend_alone(o, scores, acc, a, g, k, v, h);
    }
  }
}

}  // namespace

void gathered_attention_f32(float* out, int64_t ld_out, const GatheredAttention& a) {
  if (a.k_i8)
    gathered_attention(out, ld_out, a, a.k_i8, a.v_i8);
  else if (a.k_f16)
    gathered_attention(out, ld_out, a, a.k_f16, a.v_f16);
  else
    gathered_attention(out, ld_out, a, a.k, a.v);
}

}  // namespace nle::ops::cpu
