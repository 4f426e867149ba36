#if defined(__AVX2__)
#  include <immintrin.h>
#endif

#include "ops/hadamard.h"

namespace nle::ops::cpu {

namespace {
#if defined(__AVX2__)
// The butterflies of spans 1, 2 and 4 on the 8 lanes of v: lane i against lane i ^ h (a
// permutation), times the sign that lane takes (+ where bit h of i is clear, - where set),
// added: v · ±1 + other, exact sums and differences as the scalar stages round them.
inline __m256 hadamard8(__m256 v) {
  const __m256 sign1 = _mm256_setr_ps(1.f, -1.f, 1.f, -1.f, 1.f, -1.f, 1.f, -1.f);
  const __m256 sign2 = _mm256_setr_ps(1.f, 1.f, -1.f, -1.f, 1.f, 1.f, -1.f, -1.f);
  const __m256 sign4 = _mm256_setr_ps(1.f, 1.f, 1.f, 1.f, -1.f, -1.f, -1.f, -1.f);
  v = _mm256_fmadd_ps(v, sign1, _mm256_permute_ps(v, 0xB1));
  v = _mm256_fmadd_ps(v, sign2, _mm256_permute_ps(v, 0x4E));
  return _mm256_fmadd_ps(v, sign4, _mm256_permute2f128_ps(v, v, 1));
}
#endif
}  // namespace

// Butterfly stages of span h = 1, 2, 4, ... < block: each pair (i, i + h) in a group of
// 2h becomes (x_i + x_{i+h}, x_i - x_{i+h}). A group of 2h never crosses a block (block
// is a multiple of 2h), so the stages run over the whole row at once. With AVX2 the spans
// 1, 2 and 4 are within one 8-lane vector (hadamard8), and the wider ones go two at a
// time (spans h and 2h over four vectors), so that a block of 128 takes three passes over
// the row where one stage a pass took five (the rotation's cost to MiniLM's int8
// throughput about 3% -> 2% on an AVX2-only AMD EPYC, batches of 32).
void hadamard_row_unnormalized(float* x, int64_t cols, int64_t block, const float* src,
                               const float* col_scale) {
  if (src == nullptr) {
    src = x;
    col_scale = nullptr;
  }
#if defined(__AVX2__)
  if (block >= 8) {
    if (col_scale)
      for (int64_t c = 0; c < cols; c += 8)
        _mm256_storeu_ps(x + c,
                         hadamard8(_mm256_mul_ps(_mm256_loadu_ps(src + c), _mm256_loadu_ps(col_scale + c))));
    else
      for (int64_t c = 0; c < cols; c += 8) _mm256_storeu_ps(x + c, hadamard8(_mm256_loadu_ps(src + c)));
    int64_t h = 8;
    for (; 4 * h <= block; h *= 4)
      for (int64_t g = 0; g < cols; g += 4 * h)
        for (int64_t i = g; i < g + h; i += 8) {
          const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + h);
          const __m256 c = _mm256_loadu_ps(x + i + 2 * h), d = _mm256_loadu_ps(x + i + 3 * h);
          const __m256 p = _mm256_add_ps(a, b), q = _mm256_sub_ps(a, b);
          const __m256 r = _mm256_add_ps(c, d), t = _mm256_sub_ps(c, d);
          _mm256_storeu_ps(x + i, _mm256_add_ps(p, r));
          _mm256_storeu_ps(x + i + h, _mm256_add_ps(q, t));
          _mm256_storeu_ps(x + i + 2 * h, _mm256_sub_ps(p, r));
          _mm256_storeu_ps(x + i + 3 * h, _mm256_sub_ps(q, t));
        }
    if (h < block)  // one span left
      for (int64_t g = 0; g < cols; g += 2 * h)
        for (int64_t i = g; i < g + h; i += 8) {
          const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + h);
          _mm256_storeu_ps(x + i, _mm256_add_ps(a, b));
          _mm256_storeu_ps(x + i + h, _mm256_sub_ps(a, b));
        }
    return;
  }
#endif
  if (src != x)
    for (int64_t c = 0; c < cols; ++c) x[c] = col_scale ? src[c] * col_scale[c] : src[c];
  for (int64_t h = 1; h < block; h *= 2)
    for (int64_t g = 0; g < cols; g += 2 * h)
      for (int64_t i = g; i < g + h; ++i) {
        const float a = x[i], b = x[i + h];
        x[i] = a + b;
        x[i + h] = a - b;
      }
}

}  // namespace nle::ops::cpu
