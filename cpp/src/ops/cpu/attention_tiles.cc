#include "ops/cpu/attention_tiles.h"

#if defined(__AVX2__) && defined(__FMA__)
#  include <immintrin.h>
#endif

#include <cstring>
#include <limits>

#include "nlpengine/errors.h"
#include "ops/cpu/transpose_8x8.h"
#include "ops/softmax.h"

namespace nle::ops::cpu {

int64_t attention_tile_stride(int64_t len) { return (len + 7) / 8 * 8; }

#if defined(__AVX2__) && defined(__FMA__)

namespace {
// Rows of a tile: 6 rows × 2 vectors of sums, 2 loaded vectors and a broadcast take 15 of
// the 16 vector registers.
constexpr int kTileRows = 6;

// d rounded up to a multiple of 8: the row width of the query and value copies.
inline int64_t padded_width(int64_t d) { return (d + 7) / 8 * 8; }

// The first n (0 to 8) lanes set.
inline __m256i first_lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The rows (len, d), ld apart, copied one after another into scratch, padded_width(d) apart
// with zeros after each row's d values.
const float* copy_rows(ScratchBuffer<float>& scratch, const float* x, int64_t ld, int64_t len, int64_t d) {
  const int64_t width = padded_width(d), whole = d / 8 * 8;
  float* out = scratch.get(static_cast<size_t>(len * width));
  const __m256i tail = first_lanes(d - whole);
  for (int64_t r = 0; r < len; ++r) {
    for (int64_t c = 0; c < whole; c += 8)
      _mm256_storeu_ps(out + r * width + c, _mm256_loadu_ps(x + r * ld + c));
    if (whole < width)
      _mm256_storeu_ps(out + r * width + whole, _mm256_maskload_ps(x + r * ld + whole, tail));
  }
  return out;
}

// kt (d, stride) = k (len, d)ᵀ, the columns from len to stride zero.
void transpose_keys(float* kt, int64_t stride, const float* k, int64_t ld_k, int64_t len, int64_t d) {
  const int64_t whole = d / 8 * 8;
  int64_t j = 0;
  for (; j + 8 <= len; j += 8)
    for (int64_t p = 0; p < whole; p += 8) transpose_8x8(kt + p * stride + j, stride, k + j * ld_k + p, ld_k);
  for (int64_t p = 0; p < d; ++p) {
    float* row = kt + p * stride;
    for (int64_t c = p < whole ? j : 0; c < len; ++c) row[c] = k[c * ld_k + p];
    for (int64_t c = len; c < stride; ++c) row[c] = 0.f;
  }
}

// s[r, 8v + i] = scale · Σ_p q[r, p] · kt[p, 8v + i] for R rows and V vectors of 8 keys.
template <int R, int V>
inline void score_tile(float* s, int64_t ld_s, const float* q, int64_t ld_q, const float* kt, int64_t ld_kt,
                       int64_t d, __m256 scale) {
  __m256 acc[R][V];
#  pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#  pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t p = 0; p < d; ++p) {
    __m256 b[V];
#  pragma GCC unroll 8
    for (int v = 0; v < V; ++v) b[v] = _mm256_loadu_ps(kt + p * ld_kt + 8 * v);
#  pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(q + r * ld_q + p);
#  pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
    }
  }
#  pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#  pragma GCC unroll 8
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(s + r * ld_s + 8 * v, _mm256_mul_ps(acc[r][v], scale));
}

// 8 floats rounded to bf16 bit patterns as float_to_bf16 rounds them: to nearest even, a
// NaN kept quiet.
inline __m128i round_to_bf16(__m256 x) {
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded =
      _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7f800000));
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
  const __m256i words = _mm256_blendv_epi8(rounded, quiet, nan);  // each below 2^16
  // packus packs within 128-bit lanes: words 0-3 land in quadword 0, 4-7 in quadword 2.
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(words, words), 0xd8));
}

// The first n of x's 8 values (all 8 when n >= 8) stored at out.
inline void store_first(float* out, __m256 x, int64_t n) {
  if (n >= 8)
    _mm256_storeu_ps(out, x);
  else
    _mm256_maskstore_ps(out, first_lanes(n), x);
}
inline void store_first(uint16_t* out, __m256 x, int64_t n) {
  if (n >= 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), round_to_bf16(x));
  } else {
    alignas(16) uint16_t words[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(words), round_to_bf16(x));
    std::memcpy(out, words, static_cast<size_t>(n) * sizeof(uint16_t));
  }
}

// out[r, 8v + i] = inv_sum[r] · Σ_j p[r, j] · v[j, 8v + i] for R rows and V vectors of 8
// columns, of which the first width are stored; Out float, or uint16_t for results rounded
// to bf16.
template <int R, int V, typename Out>
inline void value_tile(Out* out, int64_t ld_out, const float* p, int64_t ld_p, const float* inv_sum,
                       const float* v, int64_t ld_v, int64_t len, int64_t width) {
  __m256 acc[R][V];
#  pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#  pragma GCC unroll 8
    for (int c = 0; c < V; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int64_t j = 0; j < len; ++j) {
    __m256 b[V];
#  pragma GCC unroll 8
    for (int c = 0; c < V; ++c) b[c] = _mm256_loadu_ps(v + j * ld_v + 8 * c);
#  pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(p + r * ld_p + j);
#  pragma GCC unroll 8
      for (int c = 0; c < V; ++c) acc[r][c] = _mm256_fmadd_ps(a, b[c], acc[r][c]);
    }
  }
#  pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m256 s = _mm256_broadcast_ss(inv_sum + r);
#  pragma GCC unroll 8
    for (int c = 0; c < V; ++c)
      store_first(out + r * ld_out + 8 * c, _mm256_mul_ps(acc[r][c], s), width - 8 * c);
  }
}

// Rows r0 .. r0 + R - 1 of one head's attention, start to end: their scores over every key
// (R × stride floats, in L1), the softmax's unnormalised probabilities and 1 / Σ, and the
// product with the values. q and v contiguous copies (padded_width(d) apart), kt the keys
// transposed.
template <int R, typename Out>
void attend_rows(Out* out, int64_t ld_out, const float* q, const float* kt, const float* v, int64_t r0,
                 int64_t len, int64_t d, __m256 scale, const float* bias, float* s) {
  const int64_t stride = attention_tile_stride(len), width = padded_width(d);
  const float* qr = q + r0 * width;
  int64_t j = 0;
  for (; j + 16 <= stride; j += 16) score_tile<R, 2>(s + j, stride, qr, width, kt + j, stride, d, scale);
  if (j < stride) score_tile<R, 1>(s + j, stride, qr, width, kt + j, stride, d, scale);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int r = 0; r < R; ++r) {
    float* sr = s + r * stride;
    if (bias) {
      const float* br = bias - (r0 + r);  // T5's relative position bias: row i's is bias - i
      for (int64_t c = 0; c < len; ++c) sr[c] += br[c];
    }
    for (int64_t c = len; c < stride; ++c) sr[c] = kNegInf;  // 0 after the exp
  }
  float inv_sum[R];
  softmax_rows_unnormalized_f32(s, inv_sum, R, stride);
  Out* o = out + r0 * ld_out;
  int64_t c = 0;
  for (; c + 16 <= width; c += 16)
    value_tile<R, 2>(o + c, ld_out, s, stride, inv_sum, v + c, width, len, d - c);
  if (c < width) value_tile<R, 1>(o + c, ld_out, s, stride, inv_sum, v + c, width, len, d - c);
}

template <typename Out>
void attend_tiles(Out* out, int64_t ld_out, const float* q, int64_t ld_q, const float* k, int64_t ld_k,
                  const float* v, int64_t ld_v, int64_t len, int64_t d, float scale, const float* bias,
                  AttentionTileScratch& scratch) {
  const int64_t stride = attention_tile_stride(len);
  float* kt = scratch.keys.get(static_cast<size_t>(d * stride));
  transpose_keys(kt, stride, k, ld_k, len, d);
  q = copy_rows(scratch.queries, q, ld_q, len, d);
  v = copy_rows(scratch.values, v, ld_v, len, d);
  float* s = scratch.scores.get(static_cast<size_t>(kTileRows * stride));
  const __m256 scale8 = _mm256_set1_ps(scale);
  int64_t r = 0;
  for (; r + kTileRows <= len; r += kTileRows)
    attend_rows<kTileRows>(out, ld_out, q, kt, v, r, len, d, scale8, bias, s);
  switch (len - r) {
    case 5:
      return attend_rows<5>(out, ld_out, q, kt, v, r, len, d, scale8, bias, s);
    case 4:
      return attend_rows<4>(out, ld_out, q, kt, v, r, len, d, scale8, bias, s);
    case 3:
      return attend_rows<3>(out, ld_out, q, kt, v, r, len, d, scale8, bias, s);
    case 2:
      return attend_rows<2>(out, ld_out, q, kt, v, r, len, d, scale8, bias, s);
    case 1:
      return attend_rows<1>(out, ld_out, q, kt, v, r, len, d, scale8, bias, s);
    default:
      return;
  }
}
}  // namespace

bool attention_tiles_fit(int64_t head_dim) { return head_dim > 0; }

void attention_tiles(float* out, int64_t ld_out, const float* q, int64_t ld_q, const float* k, int64_t ld_k,
                     const float* v, int64_t ld_v, int64_t len, int64_t d, float scale, const float* bias,
                     AttentionTileScratch& scratch) {
  attend_tiles(out, ld_out, q, ld_q, k, ld_k, v, ld_v, len, d, scale, bias, scratch);
}

void attention_tiles(uint16_t* out, int64_t ld_out, const float* q, int64_t ld_q, const float* k,
                     int64_t ld_k, const float* v, int64_t ld_v, int64_t len, int64_t d, float scale,
                     const float* bias, AttentionTileScratch& scratch) {
  attend_tiles(out, ld_out, q, ld_q, k, ld_k, v, ld_v, len, d, scale, bias, scratch);
}

#else  // no AVX2 with FMA: the callers take the GEMM library

bool attention_tiles_fit(int64_t) { return false; }

void attention_tiles(float*, int64_t, const float*, int64_t, const float*, int64_t, const float*, int64_t,
                     int64_t, int64_t, float, const float*, AttentionTileScratch&) {
  throw Error("attention_tiles: built without AVX2 and FMA");
}

void attention_tiles(uint16_t*, int64_t, const float*, int64_t, const float*, int64_t, const float*, int64_t,
                     int64_t, int64_t, float, const float*, AttentionTileScratch&) {
  throw Error("attention_tiles: built without AVX2 and FMA");
}

#endif

}  // namespace nle::ops::cpu
