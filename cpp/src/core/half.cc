#include "core/half.h"

#if defined(__F16C__)
#  include <immintrin.h>
#endif

namespace nle {

void half_to_float_n(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  // Exact, subnormals included: the scalar conversion took most of the load of bart-base
  // from an F16 checkpoint.
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
#endif
  for (; i < n; ++i) dst[i] = half_to_float(src[i]);
}

void bf16_to_float_n(float* dst, const uint16_t* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(src[i]);
}

}  // namespace nle
