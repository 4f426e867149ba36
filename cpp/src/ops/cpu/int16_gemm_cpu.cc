#if defined(__AVX2__)
#  include <immintrin.h>
#endif

#include <cmath>

#include "core/scratch_buffer.h"
#include "ops/cpu/vector_clones.h"
#include "ops/hadamard.h"
#include "ops/int16_gemm.h"

namespace nle::ops::cpu {

namespace {
// One row of quantize_rows_s16. Rounds to nearest, ties to even (with AVX2 by intrinsics,
// as ops/cpu/int8_gemm_cpu.cc's quantize_row_u8; otherwise for |v| < 2^22 by adding and
// taking away 1.5 · 2^23, which leaves no fraction bits, so that the loop vectorises).
NLE_VECTOR_CLONES void quantize_row_s16(int16_t* __restrict out, float* scale, const float* __restrict row,
                                        int64_t cols, int64_t ldq, float top) {
  float amax = 0.f;
  int64_t c = 0;
#if defined(__AVX2__)
  const __m256 sign = _mm256_set1_ps(-0.f);
  __m256 amax8 = _mm256_setzero_ps();
  for (; c + 8 <= cols; c += 8)
    amax8 = _mm256_max_ps(amax8, _mm256_andnot_ps(sign, _mm256_loadu_ps(row + c)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, amax8);
  for (const float v : lanes) amax = v > amax ? v : amax;
#endif
  for (; c < cols; ++c) {
    const float v = std::fabs(row[c]);
    amax = v > amax ? v : amax;
  }
  const float s = amax > 0.f ? amax / top : 1.f;
  const float inv = 1.f / s;
  c = 0;
#if defined(__AVX2__)
  const __m256 inv8 = _mm256_set1_ps(inv), top8 = _mm256_set1_ps(top), bottom8 = _mm256_set1_ps(-top);
  const auto codes = [&](int64_t i) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(row + i), inv8);
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, bottom8), top8));
  };
  // 16 values a step: 2 × 8 int32 narrowed to 16 int16 (packs works within 128-bit lanes;
  // the permutation puts the 4-value groups back in order).
  for (; c + 16 <= cols; c += 16) {
    const __m256i packed = _mm256_packs_epi32(codes(c), codes(c + 8));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), _mm256_permute4x64_epi64(packed, 0xD8));
  }
#endif
  constexpr float kMagic = 12582912.f;
  for (; c < cols; ++c) {
    float v = row[c] * inv;
    v = v < -top ? -top : v;
    v = v > top ? top : v;
    out[c] = static_cast<int16_t>(static_cast<int32_t>((v + kMagic) - kMagic));
  }
  for (c = cols; c < ldq; ++c) out[c] = 0;
  *scale = s;
}
}  // namespace

void quantize_rows_s16(int16_t* q, float* scale, const float* x, int64_t rows, int64_t cols, int64_t ldq,
                       int32_t code_max, int64_t rotation_block) {
  const auto top = static_cast<float>(code_max);
  if (rotation_block > 1) {
    // Each row rotated into a buffer in L1, then quantized from there: the butterflies
    // leave each block sqrt(block) times too large, which the scale takes back.
    const auto unscale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(rotation_block)));
#pragma omp parallel if (rows > 1 && rows * cols > 4096)
    {
      thread_local ScratchBuffer<float> row_buffer;
      float* row = row_buffer.get(static_cast<size_t>(cols));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        hadamard_row_unnormalized(row, cols, rotation_block, x + r * cols);
        quantize_row_s16(q + r * ldq, scale + r, row, cols, ldq, top);
        scale[r] *= unscale;
      }
    }
    return;
  }
#pragma omp parallel for schedule(static) if (rows * cols > 16384)
  for (int64_t r = 0; r < rows; ++r) quantize_row_s16(q + r * ldq, scale + r, x + r * cols, cols, ldq, top);
}

}  // namespace nle::ops::cpu
