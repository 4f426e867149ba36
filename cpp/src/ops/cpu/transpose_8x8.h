// An 8 × 8 block of 32-bit values transposed in AVX2 registers (floats, or pairs of bf16
// taken as one value): the attention tiles' keys (ops/cpu/attention_tiles.h).
#pragma once

#if defined(__AVX2__)
#  include <immintrin.h>

#  include <cstdint>

namespace nle::ops::cpu {

// dst (8 × 8, rows ld_dst apart) = src (8 × 8, rows ld_src apart) transposed.
inline void transpose_8x8(float* dst, int64_t ld_dst, const float* src, int64_t ld_src) {
  __m256 r[8], t[8], u[8];
#  pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld_src);
#  pragma GCC unroll 8
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
#  pragma GCC unroll 8
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#  pragma GCC unroll 8
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ld_dst, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ld_dst, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}

}  // namespace nle::ops::cpu

#endif
