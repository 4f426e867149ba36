#include <mkl.h>
#if defined(__AVX2__)
#  include <immintrin.h>
#endif
#if defined(__AVX2__) && defined(__GNUC__) && !defined(NLE_AVX2_ONLY)
#  include "ops/cpu/avx512_rows.h"
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>

#include "core/scratch_buffer.h"
#include "ops/bf16_gemm.h"
#include "ops/cpu/gemm_library.h"
#include "ops/cpu/vector_clones.h"
#include "ops/hadamard.h"
#include "ops/int8_gemm.h"

namespace nle::ops::cpu {

namespace {
// Rounds to the nearest integer, ties to even, for 0 <= v < 2^22: adding 1.5 · 2^23
// leaves no fraction bits. Written this way the loops below vectorise.
inline float round_small(float v) {
  constexpr float kMagic = 12582912.f;
  return (v + kMagic) - kMagic;
}

#if defined(__AVX2__)
// x[c] · col_scale[c] (or x[c] without col_scale) for the 8 values from c.
inline __m256 load_scaled(const float* x, const float* col_scale, int64_t c) {
  const __m256 v = _mm256_loadu_ps(x + c);
  return col_scale ? _mm256_mul_ps(v, _mm256_loadu_ps(col_scale + c)) : v;
}

// round(clamp(v · inv + z, 0, top)) as int32, ties to even (the default rounding mode:
// the same as round_small on a clamped value). A NaN becomes 0.
inline __m256i quantize_u8_lanes(__m256 v, __m256 inv, __m256 z, __m256 top) {
  const __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(v, inv, z), _mm256_setzero_ps()), top);
  return _mm256_cvtps_epi32(q);
}
#endif

// A row's scale (its range over `top` steps: codes 0..top), 1 / scale and zero point from
// its least and largest values (lo <= 0 <= hi).
inline void row_quantization(float lo, float hi, float top, float* s, float* inv, float* z) {
  *s = hi > lo ? (hi - lo) / top : 1.f;
  *inv = 1.f / *s;
  *z = std::min(std::max(std::nearbyint(-lo * *inv), 0.f), top);
}

// One row: out ≈ row · col_scale / scale + zero (see quantize_rows_u8; no col_scale: row
// itself). With AVX2, by intrinsics: GCC's vectorised loops clamped by masks and blends
// and narrowed to bytes lane by lane, 4.7% of MiniLM's int8 time on an AMD EPYC.
NLE_VECTOR_CLONES void quantize_row_u8_avx2(uint8_t* __restrict out, float* scale, int32_t* zero,
                                            const float* __restrict row, const float* __restrict col_scale,
                                            int64_t cols, float top) {
  float lo = 0.f, hi = 0.f;  // the range always holds 0, so 0 is exact
  int64_t c = 0;
#if defined(__AVX2__)
  // Four independent minima and maxima: one chain would wait out vminps' latency at every
  // step (the pass was 11% of MiniLM's int8 samples on a Sapphire Rapids, most of it here).
  __m256 lo8 = _mm256_setzero_ps(), hi8 = _mm256_setzero_ps();
  {
    __m256 lo[4] = {lo8, lo8, lo8, lo8}, hi[4] = {hi8, hi8, hi8, hi8};
    for (; c + 32 <= cols; c += 32)
      for (int i = 0; i < 4; ++i) {
        const __m256 v = load_scaled(row, col_scale, c + 8 * i);
        lo[i] = _mm256_min_ps(lo[i], v);
        hi[i] = _mm256_max_ps(hi[i], v);
      }
    lo8 = _mm256_min_ps(_mm256_min_ps(lo[0], lo[1]), _mm256_min_ps(lo[2], lo[3]));
    hi8 = _mm256_max_ps(_mm256_max_ps(hi[0], hi[1]), _mm256_max_ps(hi[2], hi[3]));
  }
  for (; c + 8 <= cols; c += 8) {
    const __m256 v = load_scaled(row, col_scale, c);
    lo8 = _mm256_min_ps(lo8, v);
    hi8 = _mm256_max_ps(hi8, v);
  }
  alignas(32) float lo_lanes[8], hi_lanes[8];
  _mm256_store_ps(lo_lanes, lo8);
  _mm256_store_ps(hi_lanes, hi8);
  for (int i = 0; i < 8; ++i) {
    lo = std::min(lo, lo_lanes[i]);
    hi = std::max(hi, hi_lanes[i]);
  }
#endif
  for (; c < cols; ++c) {
    const float v = col_scale ? row[c] * col_scale[c] : row[c];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  float s, inv, z;
  row_quantization(lo, hi, top, &s, &inv, &z);
  c = 0;
#if defined(__AVX2__)
  const __m256 inv8 = _mm256_set1_ps(inv), z8 = _mm256_set1_ps(z), top8 = _mm256_set1_ps(top);
  // 32 values a step: 4 × 8 int32 narrowed to 32 bytes (packs work within 128-bit lanes,
  // so the last permutation puts the 8-byte groups back in order).
  for (; c + 32 <= cols; c += 32) {
    const __m256i q0 = quantize_u8_lanes(load_scaled(row, col_scale, c), inv8, z8, top8);
    const __m256i q1 = quantize_u8_lanes(load_scaled(row, col_scale, c + 8), inv8, z8, top8);
    const __m256i q2 = quantize_u8_lanes(load_scaled(row, col_scale, c + 16), inv8, z8, top8);
    const __m256i q3 = quantize_u8_lanes(load_scaled(row, col_scale, c + 24), inv8, z8, top8);
    const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c),
                        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
#endif
  for (; c < cols; ++c) {
    const float x = col_scale ? row[c] * col_scale[c] : row[c];
    float v = x * inv + z;
    v = v < 0.f ? 0.f : v;
    v = v > top ? top : v;
    out[c] = static_cast<uint8_t>(static_cast<int32_t>(round_small(v)));
  }
  *scale = s;
  *zero = static_cast<int32_t>(z);
}

#if defined(__AVX2__) && defined(__GNUC__) && !defined(NLE_AVX2_ONLY)
#  define NLE_QUANTIZE_AVX512 1
#  pragma GCC push_options
#  pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")
// GCC 12 warns that the placeholder its AVX-512 intrinsics start from (_mm512_undefined_*) is
// used uninitialised where they are not inlined into AVX-512 code: a false positive.
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wuninitialized"
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// quantize_row_u8_avx2's arithmetic on 16 lanes (the same values; AVX-512 narrows a vector
// of int32 to bytes in one instruction): its AVX2 intrinsics kept GCC's x86-64-v4 clone at
// 256 bits, and the pass was 9% of MiniLM's int8 samples on a Sapphire Rapids. The last
// step of a row is masked (the masked lanes read as 0, inside every row's range).
// The second half of quantize_row_u8_avx512: the row quantized to the range [lo, hi]
// (lo <= 0 <= hi, the least and largest of row · col_scale).
void quantize_row_u8_in_range_avx512(uint8_t* out, float* scale, int32_t* zero, const float* row,
                                     const float* col_scale, int64_t cols, float lo, float hi,
                                     float top_code) {
  auto load = [&](int64_t c, __mmask16 m) {
    const __m512 v = _mm512_maskz_loadu_ps(m, row + c);
    return col_scale ? _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, col_scale + c)) : v;
  };
  auto lanes = [&](int64_t c) { return lanes_before(c, cols); };
  int64_t c = 0;
  float s, inv, z;
  row_quantization(lo, hi, top_code, &s, &inv, &z);
  const __m512 inv16 = _mm512_set1_ps(inv), z16 = _mm512_set1_ps(z);
  const __m512 top = _mm512_set1_ps(top_code), bottom = _mm512_setzero_ps();
  // max before min, each with the clamp second, as in quantize_u8_lanes: a NaN becomes 0.
  auto levels = [&](int64_t c, __mmask16 m) {
    return _mm512_cvtps_epi32(
        _mm512_min_ps(_mm512_max_ps(_mm512_fmadd_ps(load(c, m), inv16, z16), bottom), top));
  };
  // 64 values a step, their int32 levels (0-top) narrowed by two packs to 64 bytes: packs
  // work within 128-bit lanes, so a permutation of 32-bit groups restores the order (one
  // vpmovdb store a vector took a fifth of this pass on a Sapphire Rapids).
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (c = 0; c + 64 <= cols; c += 64) {
    const __m512i words01 = _mm512_packs_epi32(levels(c, 0xffff), levels(c + 16, 0xffff));
    const __m512i words23 = _mm512_packs_epi32(levels(c + 32, 0xffff), levels(c + 48, 0xffff));
    _mm512_storeu_si512(out + c, _mm512_permutexvar_epi32(order, _mm512_packus_epi16(words01, words23)));
  }
  for (; c < cols; c += 16) {
    const __mmask16 m = lanes(c);
    _mm512_mask_cvtepi32_storeu_epi8(out + c, m, levels(c, m));
  }
  *scale = s;
  *zero = static_cast<int32_t>(z);
}

void quantize_row_u8_avx512(uint8_t* out, float* scale, int32_t* zero, const float* row,
                            const float* col_scale, int64_t cols, float top) {
  auto load = [&](int64_t c, __mmask16 m) {
    const __m512 v = _mm512_maskz_loadu_ps(m, row + c);
    return col_scale ? _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, col_scale + c)) : v;
  };
  __m512 lo[4], hi[4];
  for (int i = 0; i < 4; ++i) lo[i] = hi[i] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 64 <= cols; c += 64)
    for (int i = 0; i < 4; ++i) {
      const __m512 v = load(c + 16 * i, 0xffff);
      lo[i] = _mm512_min_ps(lo[i], v);
      hi[i] = _mm512_max_ps(hi[i], v);
    }
  for (; c < cols; c += 16) {
    const __m512 v = load(c, lanes_before(c, cols));
    lo[0] = _mm512_min_ps(lo[0], v);
    hi[0] = _mm512_max_ps(hi[0], v);
  }
  quantize_row_u8_in_range_avx512(
      out, scale, zero, row, col_scale, cols,
      _mm512_reduce_min_ps(_mm512_min_ps(_mm512_min_ps(lo[0], lo[1]), _mm512_min_ps(lo[2], lo[3]))),
      _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(hi[0], hi[1]), _mm512_max_ps(hi[2], hi[3]))), top);
}

// dequantize_values, with no activation or GELU (gelu_erf16, as activate_f32 computes it on
// these CPUs), rounded to bf16 as float_to_bf16_serial rounds (the same bits) in the same
// pass: the float32 row through a buffer and a second pass were 4% of MiniLM's int8 time on
// a Sapphire Rapids (its queries, keys and values), and int8-mixed's feed-forward
// activations, which a bf16 product takes, go the same way.
template <bool kColSum, bool kBias, bool kGelu, bool kConverts>
void dequantize_row_bf16_steps(uint16_t* y, const int32_t* c, float s, int32_t z, const float* col_scale,
                               const int32_t* col_sum, const float* bias, int64_t n) {
  const __m512 s16 = _mm512_set1_ps(s);
  const __m512i z16 = _mm512_set1_epi32(z);
  auto step = [&](int64_t j, __mmask16 m) __attribute__((always_inline)) {
    __m512i sums = _mm512_maskz_loadu_epi32(m, c + j);
    if constexpr (kColSum)
      sums = _mm512_sub_epi32(sums, _mm512_mullo_epi32(z16, _mm512_maskz_loadu_epi32(m, col_sum + j)));
    const __m512 scale = _mm512_mul_ps(s16, _mm512_maskz_loadu_ps(m, col_scale + j));
    __m512 v;
    if constexpr (kBias)
      v = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sums), _mm512_maskz_loadu_ps(m, bias + j));
    else
      v = _mm512_mul_ps(scale, _mm512_cvtepi32_ps(sums));
    if constexpr (kGelu) v = gelu_erf16(v);
    _mm256_mask_storeu_epi16(y + j, m, kConverts ? bf16_bits16_converted(v) : bf16_bits16(v));
  };
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) step(j, static_cast<__mmask16>(0xffff));
  if (j < n) step(j, lanes_before(j, n));
}

using DequantizeRowBf16 = void (*)(uint16_t*, const int32_t*, float, int32_t, const float*, const int32_t*,
                                   const float*, int64_t);
template <size_t... I>
constexpr std::array<DequantizeRowBf16, sizeof...(I)> dequantize_row_bf16_kinds(std::index_sequence<I...>) {
  return {&dequantize_row_bf16_steps<(I & 1) != 0, (I & 2) != 0, (I & 4) != 0, (I & 8) != 0>...};
}

// One row, by the kernel compiled for its kind (zero point, bias, GELU, the CPU's bf16
// conversion): no test in the loop.
void dequantize_row_bf16_avx512(uint16_t* y, const int32_t* c, float s, int32_t z, const float* col_scale,
                                const int32_t* col_sum, const float* bias, int64_t n, bool gelu) {
  static constexpr auto kKinds = dequantize_row_bf16_kinds(std::make_index_sequence<16>());
  const size_t kind =
      (col_sum ? 1 : 0) | (bias ? 2 : 0) | (gelu ? 4 : 0) | (bf16_conversion_supported() ? 8 : 0);
  kKinds[kind](y, c, s, z, col_scale, col_sum, bias, n);
}

// dequantize_values (with GELU or no activation, as dequantize_row_bf16_steps computes
// them: the same bits) and the least and largest result in one pass, the row written to
// `row` (in L1), then quantized to u8 (quantize_row_u8_in_range_avx512). The int8
// feed-forward's activations between its two products had taken four passes over each
// row: the rescale, GELU, the range and the quantization (10.6% of MiniLM's int8 samples
// on 256-512 tokens on a Sapphire Rapids, 8.5% now; 2 threads, 5 alternating runs,
// sentences/s: 256-512 tokens 164.1 -> 165.4, 8-128 tokens 1,173.8 -> 1,189.5).
template <bool kColSum, bool kBias, bool kGelu>
void dequantize_row_u8_steps(uint8_t* q, float* q_scale, int32_t* q_zero, float* row, const int32_t* c,
                             float s, int32_t z, const float* col_scale, const int32_t* col_sum,
                             const float* bias, int64_t n, float top) {
  const __m512 s16 = _mm512_set1_ps(s);
  const __m512i z16 = _mm512_set1_epi32(z);
  __m512 lo0 = _mm512_setzero_ps(), hi0 = lo0, lo1 = lo0, hi1 = lo0;  // the range always holds 0
  auto step = [&](int64_t j, __mmask16 m) __attribute__((always_inline)) {
    __m512i sums = _mm512_maskz_loadu_epi32(m, c + j);
    if constexpr (kColSum)
      sums = _mm512_sub_epi32(sums, _mm512_mullo_epi32(z16, _mm512_maskz_loadu_epi32(m, col_sum + j)));
    const __m512 scale = _mm512_mul_ps(s16, _mm512_maskz_loadu_ps(m, col_scale + j));
    __m512 v;
    if constexpr (kBias)
      v = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sums), _mm512_maskz_loadu_ps(m, bias + j));
    else
      v = _mm512_mul_ps(scale, _mm512_cvtepi32_ps(sums));
    if constexpr (kGelu) v = gelu_erf16(v);
    _mm512_mask_storeu_ps(row + j, m, v);
    return _mm512_maskz_mov_ps(m, v);  // lanes past the row: 0, inside the range
  };
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m512 v0 = step(j, static_cast<__mmask16>(0xffff)),
                 v1 = step(j + 16, static_cast<__mmask16>(0xffff));
    lo0 = _mm512_min_ps(lo0, v0);
    hi0 = _mm512_max_ps(hi0, v0);
    lo1 = _mm512_min_ps(lo1, v1);
    hi1 = _mm512_max_ps(hi1, v1);
  }
  for (; j < n; j += 16) {
    const __m512 v = step(j, lanes_before(j, n));
    lo0 = _mm512_min_ps(lo0, v);
    hi0 = _mm512_max_ps(hi0, v);
  }
  quantize_row_u8_in_range_avx512(q, q_scale, q_zero, row, nullptr, n,
                                  _mm512_reduce_min_ps(_mm512_min_ps(lo0, lo1)),
                                  _mm512_reduce_max_ps(_mm512_max_ps(hi0, hi1)), top);
}

using DequantizeRowU8 = void (*)(uint8_t*, float*, int32_t*, float*, const int32_t*, float, int32_t,
                                 const float*, const int32_t*, const float*, int64_t, float);
template <size_t... I>
constexpr std::array<DequantizeRowU8, sizeof...(I)> dequantize_row_u8_kinds(std::index_sequence<I...>) {
  return {&dequantize_row_u8_steps<(I & 1) != 0, (I & 2) != 0, (I & 4) != 0>...};
}

// One row, by the kernel compiled for its kind (zero point, bias, GELU).
void dequantize_row_u8_avx512(uint8_t* q, float* q_scale, int32_t* q_zero, float* row, const int32_t* c,
                              float s, int32_t z, const float* col_scale, const int32_t* col_sum,
                              const float* bias, int64_t n, bool gelu, float top) {
  static constexpr auto kKinds = dequantize_row_u8_kinds(std::make_index_sequence<8>());
  const size_t kind = (col_sum ? 1 : 0) | (bias ? 2 : 0) | (gelu ? 4 : 0);
  kKinds[kind](q, q_scale, q_zero, row, c, s, z, col_scale, col_sum, bias, n, top);
}

#  pragma GCC diagnostic pop
#  pragma GCC pop_options
#endif

// One row: out ≈ row · col_scale / scale + zero, codes 0..top (quantize_rows_u8).
inline void quantize_row_u8(uint8_t* out, float* scale, int32_t* zero, const float* row,
                            const float* col_scale, int64_t cols, float top) {
#if defined(NLE_QUANTIZE_AVX512)
  if (avx512_rows_supported()) return quantize_row_u8_avx512(out, scale, zero, row, col_scale, cols, top);
#endif
  quantize_row_u8_avx2(out, scale, zero, row, col_scale, cols, top);
}

// One row, src · col_scale (src alone without col_scale; null src: row itself), rotated by
// block (ops/hadamard.h) into row and quantized from there: the butterflies leave each
// block sqrt(block) times too large, which the scale takes back.
inline void quantize_rotated_row_u8(uint8_t* out, float* scale, int32_t* zero, float* row, int64_t cols,
                                    float top, int64_t block, const float* src = nullptr,
                                    const float* col_scale = nullptr) {
  hadamard_row_unnormalized(row, cols, block, src, col_scale);
  quantize_row_u8(out, scale, zero, row, nullptr, cols, top);
  *scale *= static_cast<float>(1.0 / std::sqrt(static_cast<double>(block)));
}

// One row of dequantize_rows.
NLE_VECTOR_CLONES void dequantize_values(float* __restrict y, const int32_t* __restrict c, float s, int32_t z,
                                         const float* __restrict col_scale, const int32_t* __restrict col_sum,
                                         const float* __restrict bias, int64_t n, Activation act) {
  if (!col_sum) {  // symmetric activations (ops/int16_gemm.h): no zero point to cancel
    if (bias) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[j] = s * col_scale[j] * static_cast<float>(c[j]) + bias[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[j] = s * col_scale[j] * static_cast<float>(c[j]);
    }
  } else if (bias) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      y[j] = s * col_scale[j] * static_cast<float>(c[j] - z * col_sum[j]) + bias[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] = s * col_scale[j] * static_cast<float>(c[j] - z * col_sum[j]);
  }
  activate_f32(y, n, act);
}
}  // namespace

void quantize_rows_u8(uint8_t* q, float* scale, int32_t* zero, const float* x, int64_t rows, int64_t cols,
                      const float* col_scale, int64_t rotation_block, int32_t code_max) {
  const auto top = static_cast<float>(code_max);
  if (rotation_block > 1) {
    // Each row (· col_scale) rotated into a buffer in L1, then quantized from there.
#pragma omp parallel if (rows > 1 && rows * cols > 4096)
    {
      thread_local ScratchBuffer<float> row_buffer;
      float* row = row_buffer.get(static_cast<size_t>(cols));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r)
        quantize_rotated_row_u8(q + r * cols, scale + r, zero + r, row, cols, top, rotation_block,
                                x + r * cols, col_scale);
    }
    return;
  }
  // In parallel from a few thousand values: x was written by all the threads, and one
  // alone would read the others' rows from their cores' caches (float_to_bf16).
#pragma omp parallel for schedule(static) if (rows > 1 && rows * cols > 4096)
  for (int64_t r = 0; r < rows; ++r)
    quantize_row_u8(q + r * cols, scale + r, zero + r, x + r * cols, col_scale, cols, top);
}

void gemm_u8s8s32(int32_t* c, const uint8_t* a, const int8_t* b, int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0) return;
  if (gemm_library() == GemmLibrary::OneDnn) {
    onednn::gemm_u8s8s32(m, n, k, a, b, c);
    return;
  }
  const MKL_INT32 no_offset = 0;
  // Row-major: A (u8) is m x k, B (s8) is stored n x k and used transposed.
  cblas_gemm_s8u8s32(CblasRowMajor, CblasNoTrans, CblasTrans, CblasFixOffset, static_cast<MKL_INT>(m),
                     static_cast<MKL_INT>(n), static_cast<MKL_INT>(k), 1.f, a, static_cast<MKL_INT>(k), 0, b,
                     static_cast<MKL_INT>(k), 0, 0.f, c, static_cast<MKL_INT>(n), &no_offset);
}

void dequantize_rows(float* y, const int32_t* c, const float* row_scale, const int32_t* row_zero,
                     const float* col_scale, const int32_t* col_sum, const float* bias, int64_t m, int64_t n,
                     Activation act) {
#pragma omp parallel for schedule(static) if (m * n > 16384)
  for (int64_t r = 0; r < m; ++r)
    dequantize_values(y + r * n, c + r * n, row_scale[r], row_zero[r], col_scale, col_sum, bias, n, act);
}

void dequantize_rows_bf16(uint16_t* y, const int32_t* c, const float* row_scale, const int32_t* row_zero,
                          const float* col_scale, const int32_t* col_sum, const float* bias, int64_t m,
                          int64_t n, Activation act) {
#pragma omp parallel if (m * n > 16384)
  {
    thread_local ScratchBuffer<float> row_buffer;
    float* row = row_buffer.get(static_cast<size_t>(n));
#if defined(NLE_QUANTIZE_AVX512)
    const bool fused = (act == Activation::None || act == Activation::GeluErf) && avx512_rows_supported();
#endif
#pragma omp for schedule(static)
    for (int64_t r = 0; r < m; ++r) {
      const int32_t z = row_zero ? row_zero[r] : 0;
#if defined(NLE_QUANTIZE_AVX512)
      if (fused) {
        dequantize_row_bf16_avx512(y + r * n, c + r * n, row_scale[r], z, col_scale, col_sum, bias, n,
                                   act == Activation::GeluErf);
        continue;
      }
#endif
      dequantize_values(row, c + r * n, row_scale[r], z, col_scale, col_sum, bias, n, act);
      float_to_bf16_serial(y + r * n, row, n);
    }
  }
}

void dequantize_rows_u8(uint8_t* q, float* q_scale, int32_t* q_zero, const int32_t* c, const float* row_scale,
                        const int32_t* row_zero, const float* col_scale, const int32_t* col_sum,
                        const float* bias, int64_t m, int64_t n, Activation act, int64_t rotation_block,
                        int32_t code_max) {
  const auto top = static_cast<float>(code_max);
#pragma omp parallel if (m * n > 16384)
  {
    thread_local ScratchBuffer<float> row_buffer;
    float* row = row_buffer.get(static_cast<size_t>(n));
#if defined(NLE_QUANTIZE_AVX512)
    // A rotated row takes the passes below: the rotation needs the whole row first.
    const bool fused = (act == Activation::None || act == Activation::GeluErf) && avx512_rows_supported() &&
                       rotation_block <= 1;
#endif
#pragma omp for schedule(static)
    for (int64_t r = 0; r < m; ++r) {
#if defined(NLE_QUANTIZE_AVX512)
      if (fused) {
        dequantize_row_u8_avx512(q + r * n, q_scale + r, q_zero + r, row, c + r * n, row_scale[r],
                                 row_zero[r], col_scale, col_sum, bias, n, act == Activation::GeluErf, top);
        continue;
      }
#endif
      dequantize_values(row, c + r * n, row_scale[r], row_zero[r], col_scale, col_sum, bias, n, act);
      if (rotation_block > 1)
        quantize_rotated_row_u8(q + r * n, q_scale + r, q_zero + r, row, n, top, rotation_block);
      else
        quantize_row_u8(q + r * n, q_scale + r, q_zero + r, row, nullptr, n, top);
    }
  }
}

}  // namespace nle::ops::cpu
