#include "ops/cpu/attention_tiles_bf16.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "nlpengine/errors.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__GNUC__)
#  define NLE_BF16_TILES 1
#  include <immintrin.h>
#  include <sys/syscall.h>
#  include <unistd.h>

#  include "ops/cpu/transpose_8x8.h"
#endif

namespace nle::ops::cpu {

int64_t bf16_attention_tile_stride(int64_t len) { return (len + 15) / 16 * 16; }

#if defined(NLE_BF16_TILES)

// Outside the AVX-512 code below: it runs on every CPU.
bool bf16_attention_tiles_fit(int64_t head_dim) {
#  if defined(NLE_AVX2_ONLY)
  static const bool cpu = false;  // built to test the AVX2 paths (CMake's NLE_AVX2_ONLY)
#  else
  static const bool cpu = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
#  endif
  return cpu && head_dim > 0 && head_dim % 16 == 0;
}

#  pragma GCC push_options
#  pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")
// GCC 12 warns that the placeholder its AVX-512 intrinsics start from (_mm512_undefined_*) is
// used uninitialised where they are not inlined into AVX-512 code: a false positive.
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wuninitialized"
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {
// Rows of a tile: 6 rows × 2 vectors of sums, 2 loaded vectors and a broadcast.
constexpr int kTileRows = 6;

// The pair of bf16 at x (x[0] in the low half), broadcast to every 32-bit lane.
inline __m512bh pair_broadcast(const uint16_t* x) {
  uint32_t w;
  std::memcpy(&w, x, sizeof w);
  return reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(w)));
}

inline __m512bh load_pairs(const uint32_t* x) { return reinterpret_cast<__m512bh>(_mm512_loadu_si512(x)); }

// kp (d / 2, stride) 32-bit words: word (p, j) holds key j's elements 2p and 2p + 1 (the
// pair vdpbf16ps multiplies with a query's); the words from len to stride zero. k's rows
// ld apart: even, so that the pairs of every row are 32-bit words of one another's.
void pair_keys(uint32_t* kp, int64_t stride, const uint16_t* k, int64_t ld, int64_t len, int64_t d) {
  const int64_t pairs = d / 2;  // a multiple of 8
  const auto* words = reinterpret_cast<const float*>(k);
  auto* out = reinterpret_cast<float*>(kp);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8)
    for (int64_t p = 0; p < pairs; p += 8)
      transpose_8x8(out + p * stride + j, stride, words + j * (ld / 2) + p, ld / 2);
  for (int64_t p = 0; p < pairs; ++p) {
    uint32_t* row = kp + p * stride;
    for (int64_t c = j; c < len; ++c) std::memcpy(row + c, k + c * ld + 2 * p, sizeof(uint32_t));
    for (int64_t c = len; c < stride; ++c) row[c] = 0;
  }
}

inline __m512i widen16(const uint16_t* x) {
  return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
}

// vp ((len + 1) / 2, d) 32-bit words: word (t, c) holds value rows 2t and 2t + 1's column c
// (the pair vdpbf16ps multiplies with a probability row's), the missing row of an odd
// count zero.
void pair_values(uint32_t* vp, const uint16_t* v, int64_t ld_v, int64_t len, int64_t d) {
  for (int64_t t = 0; 2 * t < len; ++t) {
    const uint16_t* even = v + 2 * t * ld_v;
    const uint16_t* odd = 2 * t + 1 < len ? even + ld_v : nullptr;
    for (int64_t c = 0; c < d; c += 16) {
      const __m512i hi = odd ? _mm512_slli_epi32(widen16(odd + c), 16) : _mm512_setzero_si512();
      _mm512_storeu_si512(vp + t * d + c, _mm512_or_si512(widen16(even + c), hi));
    }
  }
}

// s[r, 16v + i] = Σ_p q[r, 2p..2p+1] · kp[p, 16v + i] for R rows and V vectors of 16
// keys; q's rows ld_q bf16 apart.
template <int R, int V>
inline void score_tile(float* s, int64_t ld_s, const uint16_t* q, int64_t ld_q, const uint32_t* kp,
                       int64_t stride, int64_t d) {
  __m512 acc[R][V];
#  pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#  pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < d / 2; ++p) {
    __m512bh b[V];
#  pragma GCC unroll 8
    for (int v = 0; v < V; ++v) b[v] = load_pairs(kp + p * stride + 16 * v);
#  pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh a = pair_broadcast(q + r * ld_q + 2 * p);
#  pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, b[v]);
    }
  }
#  pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#  pragma GCC unroll 8
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(s + r * ld_s + 16 * v, acc[r][v]);
}

inline void store16(float* out, __m512 x) { _mm512_storeu_ps(out, x); }
inline void store16(uint16_t* out, __m512 x) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x)));
}

// out[r, 16c + i] = inv_sum[r] · Σ_t p[r, 2t..2t+1] · vp[t, 16c + i] for R rows and V vectors
// of 16 columns, t < pairs; p's rows ld_p bf16 apart, vp's d words. Out float, or uint16_t
// for results rounded to bf16.
template <int R, int V, typename Out>
inline void value_tile(Out* out, int64_t ld_out, const uint16_t* p, int64_t ld_p, const float* inv_sum,
                       const uint32_t* vp, int64_t d, int64_t pairs) {
  __m512 acc[R][V];
#  pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#  pragma GCC unroll 8
    for (int c = 0; c < V; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t t = 0; t < pairs; ++t) {
    __m512bh b[V];
#  pragma GCC unroll 8
    for (int c = 0; c < V; ++c) b[c] = load_pairs(vp + t * d + 16 * c);
#  pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh a = pair_broadcast(p + r * ld_p + 2 * t);
#  pragma GCC unroll 8
      for (int c = 0; c < V; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], a, b[c]);
    }
  }
#  pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m512 s = _mm512_set1_ps(inv_sum[r]);
#  pragma GCC unroll 8
    for (int c = 0; c < V; ++c) store16(out + r * ld_out + 16 * c, _mm512_mul_ps(acc[r][c], s));
  }
}

// Rows of the scores or the results in tiles of kTileRows, then the rest: tile<R>(r, R)
// runs rows r .. r + R - 1.
template <typename Tile>
void by_tiles(int64_t rows, Tile&& tile) {
  int64_t r = 0;
  for (; r + kTileRows <= rows; r += kTileRows) tile(std::integral_constant<int, kTileRows>{}, r);
  switch (rows - r) {
    case 5:
      return tile(std::integral_constant<int, 5>{}, r);
    case 4:
      return tile(std::integral_constant<int, 4>{}, r);
    case 3:
      return tile(std::integral_constant<int, 3>{}, r);
    case 2:
      return tile(std::integral_constant<int, 2>{}, r);
    case 1:
      return tile(std::integral_constant<int, 1>{}, r);
    default:
      return;
  }
}
}  // namespace

namespace {
// 2^t for t <= 0 on 16 lanes, for probabilities that are rounded to bf16 (8 bits), 0 in
// the lanes keep leaves out: f = t - floor(t) in [0, 1) in one exact vreduceps, 2^f by a
// degree-4 polynomial fitted for the least largest relative error (2.7e-6 with float32's
// rounding: a thousandth of bf16's), and vscalefps, which multiplies by 2^floor(t) taking
// t itself: 8 vector operations. Before, t = n + f with n the nearest integer (1.5 · 2^23
// added and taken away, f = t - n in [-1/2, 1/2]) took 10 (one thread, MiniLM's 12 heads,
// ns a score, medians of 4: 150 keys 0.473 -> 0.456, 384 keys 0.359 -> 0.338, 512 keys
// 0.344 -> 0.321), and e^x's range reduction in ln 2 with a Taylor series to r^5 / 5! 13
// and a subtraction.
// A degree-3 polynomial (7.5e-5) was 3% faster again, but moved int8's lowest pooled
// cosine on MiniLM 0.99670 -> 0.99636 (degree 4: 0.99673). Below -125 (and at -inf or
// NaN) the result is 0, never a denormal: vscalefps's denormal results, and the sums they
// entered, cost a microcode assist each on Intel CPUs (MiniLM on the Sapphire Rapids host,
// 2 threads, alternating runs, sentences/s: bf16 630/598 -> 734/679, int8 623/596 ->
// 711/691, int8-mixed 527/521 -> 620/606).
inline __m512 exp2_nonpositive16(__m512 t, __mmask16 keep) {
  const __m512 f = _mm512_reduce_ps(t, _MM_FROUND_TO_NEG_INF);
  __m512 p = _mm512_set1_ps(0.013534168f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.052011464f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.24144275f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.69300383f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0000026f));
  constexpr float kZero = -125.f;  // 2^f · 2^floor(t) >= 2^-125: normal
  return _mm512_maskz_scalef_ps(keep & _mm512_cmp_ps_mask(t, _mm512_set1_ps(kZero), _CMP_GT_OQ), p, t);
}

// The real keys of the 16 from c on.
inline __mmask16 real_keys(int64_t c, int64_t len) {
  return c + 16 <= len ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (len - c)) - 1);
}

// Lane i of the result = op over the 16 lanes of v[i], for 16 vectors at once: four
// levels of two-source permutes, each halving the lanes a row keeps (45 operations for 16
// rows, where one row's reduction takes 8).
struct MaxOf {
  __m512 operator()(__m512 x, __m512 y) const { return _mm512_max_ps(x, y); }
};
struct SumOf {
  __m512 operator()(__m512 x, __m512 y) const { return _mm512_add_ps(x, y); }
};

template <typename Op>
inline __m512 reduce_rows16(const __m512* v, Op op) {
  const __m512i lo8 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i hi8 = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  const __m512i lo4 = _mm512_setr_epi32(0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
  const __m512i hi4 = _mm512_setr_epi32(4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  const __m512i lo2 = _mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29);
  const __m512i hi2 = _mm512_setr_epi32(2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
  const __m512i lo1 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i hi1 = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  __m512 a[8], b[4], c[2];
  for (int k = 0; k < 8; ++k)
    a[k] = op(_mm512_permutex2var_ps(v[2 * k], lo8, v[2 * k + 1]),
              _mm512_permutex2var_ps(v[2 * k], hi8, v[2 * k + 1]));
  for (int k = 0; k < 4; ++k)
    b[k] = op(_mm512_permutex2var_ps(a[2 * k], lo4, a[2 * k + 1]),
              _mm512_permutex2var_ps(a[2 * k], hi4, a[2 * k + 1]));
  for (int k = 0; k < 2; ++k)
    c[k] = op(_mm512_permutex2var_ps(b[2 * k], lo2, b[2 * k + 1]),
              _mm512_permutex2var_ps(b[2 * k], hi2, b[2 * k + 1]));
  return op(_mm512_permutex2var_ps(c[0], lo1, c[1]), _mm512_permutex2var_ps(c[0], hi1, c[1]));
}

// Rows of raw scores (stride floats each, the keys from len on not counted) of query rows
// r0 .. r0 + rows - 1 to their unnormalised probabilities rounded to bf16 (p, pstride
// apart, zeros from len to pstride) and 1 / Σ (inv_sum), the sum of the float32 values:
// p[r, j] = 2^(log2 e · (x[r, j] - max_j x[r, j])) with x = scale · s. The largest raw score
// is found in a first pass, and the scale folds into the second's exponent (one FMA), so a
// row is read twice and written never. Where T5's bias is given (or the scale is not
// positive), the first pass writes x = scale · s + bias instead, and the second takes it.
// Rows go 16 at a time: their largest scores, then their sums, reduced across lanes
// together (reduce_rows16) and 1 / Σ in one division, where each row's two reductions
// (8 operations each, waiting on each other) and a division had been a fifth of a
// 64-key row's work (one thread, MiniLM's 12 heads, ns a score: 40 keys 0.81 -> 0.70,
// 64 keys 0.48 -> 0.38, 96 keys 0.42 -> 0.34, 384 keys 0.33 -> 0.31), the same bits: the
// tree adds the lanes in _mm512_reduce_add_ps's order.
// between(r) is called after row r: other work for the CPU to interleave with the rows'.
struct NothingBetweenRows {
  void operator()(int64_t) const {}
};

template <typename Between = NothingBetweenRows>
void softmax_scaled_rows(uint16_t* p, int64_t pstride, float* inv_sum, float* s, int64_t stride, int64_t rows,
                         int64_t len, float scale, const float* bias, int64_t r0, Between between = {}) {
  constexpr float kLog2e = 1.44269504088896341f;
  const bool rewrite = bias || !(scale > 0.f);
  const __m512 scale16 = _mm512_set1_ps(scale);
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const float factor = rewrite ? kLog2e : scale * kLog2e;
  const __m512 factor16 = _mm512_set1_ps(factor);
  for (int64_t g = 0; g < rows; g += 16) {
    const int64_t n = std::min<int64_t>(16, rows - g);
    __m512 part[16];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = g + i;
      float* sr = s + r * stride;
      __m512 m = neg_inf;
      if (rewrite) {
        const float* br = bias ? bias - (r0 + r) : nullptr;
        for (int64_t c = 0; c < len; c += 16) {
          const __mmask16 real = real_keys(c, len);
          __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(real, sr + c), scale16);
          if (br) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(real, br + c));
          _mm512_mask_storeu_ps(sr + c, real, x);
          m = _mm512_mask_max_ps(m, real, m, x);
        }
      } else {
        __m512 m1 = neg_inf, m2 = neg_inf, m3 = neg_inf;
        int64_t c = 0;
        for (; c + 64 <= len; c += 64) {
          m = _mm512_max_ps(m, _mm512_loadu_ps(sr + c));
          m1 = _mm512_max_ps(m1, _mm512_loadu_ps(sr + c + 16));
          m2 = _mm512_max_ps(m2, _mm512_loadu_ps(sr + c + 32));
          m3 = _mm512_max_ps(m3, _mm512_loadu_ps(sr + c + 48));
        }
        for (; c < len; c += 16) m = _mm512_mask_max_ps(m, real_keys(c, len), m, _mm512_loadu_ps(sr + c));
        m = _mm512_max_ps(_mm512_max_ps(m, m1), _mm512_max_ps(m2, m3));
      }
      part[i] = m;
    }
    for (int64_t i = n; i < 16; ++i) part[i] = part[0];  // unused lanes: any finite values
    alignas(64) float shifts[16];
    _mm512_store_ps(shifts, _mm512_mul_ps(reduce_rows16(part, MaxOf{}), _mm512_set1_ps(-factor)));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = g + i;
      float* sr = s + r * stride;
      const __m512 shift = _mm512_set1_ps(shifts[i]);
      uint16_t* pr = p + r * pstride;
      __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
      int64_t c = 0;
      for (; c + 32 <= len; c += 32) {
        const __m512 e0 =
            exp2_nonpositive16(_mm512_fmadd_ps(_mm512_loadu_ps(sr + c), factor16, shift), 0xffff);
        const __m512 e1 =
            exp2_nonpositive16(_mm512_fmadd_ps(_mm512_loadu_ps(sr + c + 16), factor16, shift), 0xffff);
        sum0 = _mm512_add_ps(sum0, e0);
        sum1 = _mm512_add_ps(sum1, e1);
        _mm512_storeu_si512(pr + c, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(e1, e0)));
      }
      for (; c < pstride; c += 16) {
        __m512 e = _mm512_setzero_ps();
        if (c < len)
          e = exp2_nonpositive16(_mm512_fmadd_ps(_mm512_loadu_ps(sr + c), factor16, shift),
                                 real_keys(c, len));
        sum0 = _mm512_add_ps(sum0, e);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(pr + c),
                            reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(e)));
      }
      part[i] = _mm512_add_ps(sum0, sum1);
      between(r);
    }
    for (int64_t i = n; i < 16; ++i) part[i] = _mm512_set1_ps(1.f);
    alignas(64) float inv[16];
    _mm512_store_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.f), reduce_rows16(part, SumOf{})));
    for (int64_t i = 0; i < n; ++i) inv_sum[g + i] = inv[i];
  }
}

// Rows r0 .. r0 + R - 1 of one head's attention, start to end: their scores over every key
// (R × stride floats, in L1), softmax, and the product with the values. keys and values
// paired (pair_keys, pair_values).
template <int R, typename Out>
void attend_rows(Out* out, int64_t ld_out, const uint16_t* q, int64_t ld_q, const uint32_t* keys,
                 const uint32_t* values, int64_t r0, int64_t len, int64_t d, float scale, const float* bias,
                 float* s, uint16_t* p) {
  const int64_t stride = bf16_attention_tile_stride(len), pairs = (len + 1) / 2;
  const uint16_t* qr = q + r0 * ld_q;
  int64_t j = 0;
  for (; j + 32 <= stride; j += 32) score_tile<R, 2>(s + j, stride, qr, ld_q, keys + j, stride, d);
  if (j < stride) score_tile<R, 1>(s + j, stride, qr, ld_q, keys + j, stride, d);
  float inv_sum[R];
  softmax_scaled_rows(p, stride, inv_sum, s, stride, R, len, scale, bias, r0);
  Out* o = out + r0 * ld_out;
  int64_t c = 0;
  for (; c + 32 <= d; c += 32) value_tile<R, 2, Out>(o + c, ld_out, p, stride, inv_sum, values + c, d, pairs);
  if (c < d) value_tile<R, 1, Out>(o + c, ld_out, p, stride, inv_sum, values + c, d, pairs);
}

template <typename Out>
void attend_tiles(Out* out, int64_t ld_out, const uint16_t* q, int64_t ld_q, const uint16_t* k, int64_t ld_k,
                  const uint16_t* v, int64_t ld_v, int64_t len, int64_t d, float scale, const float* bias,
                  Bf16AttentionTileScratch& scratch) {
  const int64_t stride = bf16_attention_tile_stride(len), pairs = (len + 1) / 2;
  auto* keys = reinterpret_cast<uint32_t*>(scratch.keys.get(static_cast<size_t>(d * stride)));
  pair_keys(keys, stride, k, ld_k, len, d);
  auto* values = reinterpret_cast<uint32_t*>(scratch.values.get(static_cast<size_t>(2 * pairs * d)));
  pair_values(values, v, ld_v, len, d);
  float* s = scratch.scores.get(static_cast<size_t>(kTileRows * stride));
  uint16_t* p = scratch.probabilities.get(static_cast<size_t>(kTileRows * stride));
  by_tiles(len, [&](auto rows, int64_t r) {
    attend_rows<decltype(rows)::value>(out, ld_out, q, ld_q, keys, values, r, len, d, scale, bias, s, p);
  });
}
}  // namespace

#  pragma GCC diagnostic pop
#  pragma GCC pop_options

// ---------------------------------------------------------------------------------------
// AMX: the same two products on the CPU's tile unit. TDPBF16PS adds to a 16 × 16 block of
// float32 sums the products of 16 rows × 32 bf16 by 32 bf16 × 16 columns, the second
// operand as 16 rows of 16 column pairs: the layout pair_keys and pair_values already
// give. So a tile of 16 queries takes its scores 16 keys a product, and its results 16
// columns a product, where the AVX512-BF16 tiles above take 16 dot products of pairs.

namespace {
bool amx_allowed = true;  // allow_bf16_attention_amx

// Whether the CPU has AMX-BF16 and Linux lets this process use the tile state (asked for
// once: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)).
bool amx_usable() {
  static const bool usable = [] {
#  if defined(NLE_AVX2_ONLY)
    return false;
#  else
    if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16") ||
        !__builtin_cpu_supports("avx512bf16") || !__builtin_cpu_supports("avx512bw"))
      return false;
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#  endif
  }();
  return usable;
}

bool amx_fits(int64_t head_dim) { return amx_allowed && head_dim % 32 == 0 && amx_usable(); }
}  // namespace

void allow_bf16_attention_amx(bool allowed) { amx_allowed = allowed; }
bool bf16_attention_takes_amx(int64_t head_dim) {
  return bf16_attention_tiles_fit(head_dim) && amx_fits(head_dim);
}

#  pragma GCC push_options
#  pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16")
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wuninitialized"
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {
constexpr int64_t kAmxRows = 16;     // the rows of every tile
constexpr int64_t kAmxDepth = 32;    // the bf16 a product takes per row (16 pairs)
constexpr int64_t kAmxColumns = 16;  // the float32 columns of a result tile
// Result tiles per pass: tiles 0-3. With one row tile, 4 holds the rows and 5 and 6 the
// pairs; with two, 4 and 5 the rows and 6 and 7 the pairs.
constexpr int kAmxResults = 4;
constexpr int64_t kAmxBlockRows = 2 * kAmxRows;  // queries a block: two row tiles share each pair tile
constexpr int64_t kAmxTwoTileLength = 160;

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// Every tile used 16 rows of 64 bytes.
void configure_tiles() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.bytes_per_row[t] = 64;
    config.rows[t] = kAmxRows;
  }
  _tile_loadconfig(&config);
}

// The N result tiles from c (16 rows ldc bytes apart, tile i 16 floats after tile i - 1) =
// Σ over steps of a's 16 rows (lda bytes apart; step t a_step bytes on) times pair tile i
// (16 rows ldb bytes apart; tile i 64 bytes after tile i - 1, step t b_step bytes on).
template <int N>
void tile_products(float* c, int64_t ldc, const uint8_t* a, int64_t lda, int64_t a_step, const uint8_t* b,
                   int64_t ldb, int64_t b_step, int64_t steps) {
  if constexpr (N > 0) _tile_zero(0);
  if constexpr (N > 1) _tile_zero(1);
  if constexpr (N > 2) _tile_zero(2);
  if constexpr (N > 3) _tile_zero(3);
  for (int64_t t = 0; t < steps; ++t) {
    _tile_loadd(4, a + t * a_step, lda);
    const uint8_t* bt = b + t * b_step;
    if constexpr (N > 0) {
      _tile_loadd(5, bt, ldb);
      _tile_dpbf16ps(0, 4, 5);
    }
    if constexpr (N > 1) {
      _tile_loadd(6, bt + 64, ldb);
      _tile_dpbf16ps(1, 4, 6);
    }
    if constexpr (N > 2) {
      _tile_loadd(5, bt + 128, ldb);
      _tile_dpbf16ps(2, 4, 5);
    }
    if constexpr (N > 3) {
      _tile_loadd(6, bt + 192, ldb);
      _tile_dpbf16ps(3, 4, 6);
    }
  }
  if constexpr (N > 0) _tile_stored(0, c, ldc);
  if constexpr (N > 1) _tile_stored(1, c + 16, ldc);
  if constexpr (N > 2) _tile_stored(2, c + 32, ldc);
  if constexpr (N > 3) _tile_stored(3, c + 48, ldc);
}

void tile_products(int n, float* c, int64_t ldc, const uint8_t* a, int64_t lda, int64_t a_step,
                   const uint8_t* b, int64_t ldb, int64_t b_step, int64_t steps) {
  switch (n) {
    case 4:
      return tile_products<4>(c, ldc, a, lda, a_step, b, ldb, b_step, steps);
    case 3:
      return tile_products<3>(c, ldc, a, lda, a_step, b, ldb, b_step, steps);
    case 2:
      return tile_products<2>(c, ldc, a, lda, a_step, b, ldb, b_step, steps);
    default:
      return tile_products<1>(c, ldc, a, lda, a_step, b, ldb, b_step, steps);
  }
}

// The same for 32 rows of a (two row tiles, the second 16 · lda bytes after the first) and
// N = 1 or 2 pair tiles: each pair tile loaded feeds two products, and the four sums
// (tiles 0-3: rows 0-15 then 16-31, by pair tile) are independent chains. With one row tile
// a step's products wait on the previous step's (a product's latency is several times its
// issue interval) and every pair tile, read from L2, feeds a single product.
template <int N>
void tile_products_2rows(float* c, int64_t ldc, const uint8_t* a, int64_t lda, int64_t a_step,
                         const uint8_t* b, int64_t ldb, int64_t b_step, int64_t steps) {
  const uint8_t* a1 = a + kAmxRows * lda;
  _tile_zero(0);
  _tile_zero(2);
  if constexpr (N > 1) {
    _tile_zero(1);
    _tile_zero(3);
  }
  for (int64_t t = 0; t < steps; ++t) {
    const uint8_t* bt = b + t * b_step;
    _tile_loadd(4, a + t * a_step, lda);
    _tile_loadd(6, bt, ldb);
    _tile_loadd(5, a1 + t * a_step, lda);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(2, 5, 6);
    if constexpr (N > 1) {
      _tile_loadd(7, bt + 64, ldb);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  auto* c1 = reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(c) + kAmxRows * ldc);
  _tile_stored(0, c, ldc);
  _tile_stored(2, c1, ldc);
  if constexpr (N > 1) {
    _tile_stored(1, c + 16, ldc);
    _tile_stored(3, c1 + 16, ldc);
  }
}

// Result tiles from column 0 to `columns` (a multiple of 16) for 16 or 32 rows of a.
void tile_row_products(int64_t row_tiles, int64_t columns, float* c, int64_t ldc, const uint8_t* a,
                       int64_t lda, int64_t a_step, const uint8_t* b, int64_t ldb, int64_t b_step,
                       int64_t steps) {
  if (row_tiles == 2) {
    int64_t j = 0;
    for (; j + 2 * kAmxColumns <= columns; j += 2 * kAmxColumns)
      tile_products_2rows<2>(c + j, ldc, a, lda, a_step, b + j * 4, ldb, b_step, steps);
    if (j < columns) tile_products_2rows<1>(c + j, ldc, a, lda, a_step, b + j * 4, ldb, b_step, steps);
    return;
  }
  for (int64_t j = 0; j < columns; j += kAmxResults * kAmxColumns)
    tile_products(static_cast<int>(std::min<int64_t>(kAmxResults, (columns - j) / kAmxColumns)), c + j, ldc,
                  a, lda, a_step, b + j * 4, ldb, b_step, steps);
}

template <typename Out>
void attend_tiles_amx(Out* out, int64_t ld_out, const uint16_t* q, int64_t ld_q, const uint16_t* k,
                      int64_t ld_k, const uint16_t* v, int64_t ld_v, int64_t len, int64_t d, float scale,
                      const float* bias, Bf16AttentionTileScratch& scratch) {
  const int64_t stride = bf16_attention_tile_stride(len);                 // keys: whole result tiles
  const int64_t pstride = (len + kAmxDepth - 1) / kAmxDepth * kAmxDepth;  // probabilities: whole steps
  const int64_t pairs = (len + 1) / 2, value_pairs = pstride / 2;
  auto* keys = reinterpret_cast<uint32_t*>(scratch.keys.get(static_cast<size_t>(d * stride)));
  pair_keys(keys, stride, k, ld_k, len, d);
  auto* values = reinterpret_cast<uint32_t*>(scratch.values.get(static_cast<size_t>(2 * value_pairs * d)));
  pair_values(values, v, ld_v, len, d);
  std::memset(values + pairs * d, 0, static_cast<size_t>((value_pairs - pairs) * d) * sizeof(uint32_t));
  // Two blocks' scores (the next block's are computed during this one's softmax), then a
  // block's results before 1 / Σ.
  float* s = scratch.scores.get(static_cast<size_t>(kAmxBlockRows * (2 * stride + d)));
  float* o = s + 2 * kAmxBlockRows * stride;
  uint16_t* p = scratch.probabilities.get(static_cast<size_t>(kAmxBlockRows * pstride));
  uint16_t* padded_q = scratch.queries.get(static_cast<size_t>(2 * kAmxBlockRows * d));
  const auto* key_bytes = reinterpret_cast<const uint8_t*>(keys);
  const auto* value_bytes = reinterpret_cast<const uint8_t*>(values);
  configure_tiles();
  // Blocks of two row tiles from kAmxTwoTileLength keys on; below, where a block's
  // products are short, single row tiles measured faster (one thread, MiniLM's 12 heads,
  // ns a score, two tiles against one: 96 keys 0.49 / 0.41, 144 keys 0.44 / 0.40, 160
  // keys 0.41 / 0.42, 256 keys 0.35 / 0.43).
  const bool two_tiles = len >= kAmxTwoTileLength;
  const int64_t block_rows = two_tiles ? kAmxBlockRows : kAmxRows, steps = d / kAmxDepth;
  const auto row_tiles_from = [&](int64_t r0) {
    return (std::min(block_rows, len - r0) + kAmxRows - 1) / kAmxRows;
  };
  const auto scores_of = [&](int64_t b) { return s + (b & 1) * kAmxBlockRows * stride; };
  // Block b's queries (rows from r0) as the products read them: q's own rows, or for the
  // last rows a copy padded with zeros (no read past the queries); ldq their stride.
  const auto block_queries = [&](int64_t b, int64_t r0, int64_t& ldq) {
    const int64_t rows = std::min(block_rows, len - r0), tile_rows = row_tiles_from(r0) * kAmxRows;
    const uint16_t* qt = q + r0 * ld_q;
    ldq = ld_q;
    if (rows < tile_rows) {
      uint16_t* padded = padded_q + (b & 1) * kAmxBlockRows * d;
      std::memset(padded, 0, static_cast<size_t>(tile_rows * d) * sizeof(uint16_t));
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(padded + r * d, qt + r * ld_q, static_cast<size_t>(d) * sizeof(uint16_t));
      qt = padded;
      ldq = d;
    }
    return reinterpret_cast<const uint8_t*>(qt);
  };
  // Block b's scores for the keys from j to j + columns.
  const auto block_scores = [&](int64_t b, int64_t r0, const uint8_t* qt, int64_t ldq, int64_t j,
                                int64_t columns) {
    tile_row_products(row_tiles_from(r0), columns, scores_of(b) + j, stride * 4, qt, ldq * 2, kAmxDepth * 2,
                      key_bytes + j * 4, stride * 4, kAmxDepth / 2 * stride * 4, steps);
  };
  {
    int64_t ldq;
    const uint8_t* qt = block_queries(0, 0, ldq);
    block_scores(0, 0, qt, ldq, 0, stride);
  }
  int64_t b = 0;
  for (int64_t r0 = 0; r0 < len; r0 += block_rows, ++b) {
    const int64_t rows = std::min(block_rows, len - r0), next = r0 + block_rows;
    float inv_sum[kAmxBlockRows];
    if (two_tiles && next < len) {
      // The next block's scores, 32 keys at a time, spread over this block's softmax rows:
      // the tile unit's products run beside the softmax's vector instructions, where they
      // had waited for each other (one thread, MiniLM's 12 heads, ns a score: 384 keys
      // 0.418 -> 0.385, 512 keys 0.454 -> 0.386; the same results). Among blocks of one
      // tile it measured slower.
      int64_t ldq;
      const uint8_t* qt = block_queries(b + 1, next, ldq);
      const int64_t chunk = 2 * kAmxColumns, chunks = (stride + chunk - 1) / chunk;
      int64_t issued = 0;
      const auto issue_to = [&](int64_t upto) {
        for (; issued < upto; ++issued)
          block_scores(b + 1, next, qt, ldq, issued * chunk, std::min(chunk, stride - issued * chunk));
      };
      softmax_scaled_rows(p, pstride, inv_sum, scores_of(b), stride, rows, len, scale, bias, r0,
                          [&](int64_t r) { issue_to((r + 1) * chunks / rows); });
      issue_to(chunks);
    } else {
      softmax_scaled_rows(p, pstride, inv_sum, scores_of(b), stride, rows, len, scale, bias, r0);
    }
    tile_row_products(row_tiles_from(r0), d, o, d * 4, reinterpret_cast<const uint8_t*>(p), pstride * 2,
                      kAmxDepth * 2, value_bytes, d * 4, kAmxDepth / 2 * d * 4, pstride / kAmxDepth);
    for (int64_t r = 0; r < rows; ++r) {
      const __m512 inv = _mm512_set1_ps(inv_sum[r]);
      Out* orow = out + (r0 + r) * ld_out;
      for (int64_t c = 0; c < d; c += 16)
        store16(orow + c, _mm512_mul_ps(_mm512_loadu_ps(o + r * d + c), inv));
    }
    if (!two_tiles && next < len) {
      int64_t ldq;
      const uint8_t* qt = block_queries(b + 1, next, ldq);
      block_scores(b + 1, next, qt, ldq, 0, stride);
    }
  }
  _tile_release();
}
}  // namespace

void bf16_attention_tiles(float* out, int64_t ld_out, const uint16_t* q, int64_t ld_q, const uint16_t* k,
                          int64_t ld_k, const uint16_t* v, int64_t ld_v, int64_t len, int64_t d, float scale,
                          const float* bias, Bf16AttentionTileScratch& scratch) {
  if (amx_fits(d))
    return attend_tiles_amx(out, ld_out, q, ld_q, k, ld_k, v, ld_v, len, d, scale, bias, scratch);
  attend_tiles(out, ld_out, q, ld_q, k, ld_k, v, ld_v, len, d, scale, bias, scratch);
}

void bf16_attention_tiles(uint16_t* out, int64_t ld_out, const uint16_t* q, int64_t ld_q, const uint16_t* k,
                          int64_t ld_k, const uint16_t* v, int64_t ld_v, int64_t len, int64_t d, float scale,
                          const float* bias, Bf16AttentionTileScratch& scratch) {
  if (amx_fits(d))
    return attend_tiles_amx(out, ld_out, q, ld_q, k, ld_k, v, ld_v, len, d, scale, bias, scratch);
  attend_tiles(out, ld_out, q, ld_q, k, ld_k, v, ld_v, len, d, scale, bias, scratch);
}

#  pragma GCC diagnostic pop
#  pragma GCC pop_options

#else  // not x86-64 with AVX2: the callers take the float32 tiles or the GEMM library

bool bf16_attention_tiles_fit(int64_t) { return false; }
void allow_bf16_attention_amx(bool) {}
bool bf16_attention_takes_amx(int64_t) { return false; }

void bf16_attention_tiles(float*, int64_t, const uint16_t*, int64_t, const uint16_t*, int64_t,
                          const uint16_t*, int64_t, int64_t, int64_t, float, const float*,
                          Bf16AttentionTileScratch&) {
  throw Error("bf16_attention_tiles: built without AVX2");
}

void bf16_attention_tiles(uint16_t*, int64_t, const uint16_t*, int64_t, const uint16_t*, int64_t,
                          const uint16_t*, int64_t, int64_t, int64_t, float, const float*,
                          Bf16AttentionTileScratch&) {
  throw Error("bf16_attention_tiles: built without AVX2");
}

#endif

}  // namespace nle::ops::cpu
