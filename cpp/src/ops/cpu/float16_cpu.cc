#include <immintrin.h>

#include <algorithm>

#include "ops/float16.h"

namespace nle::ops {

// F16C (x86-64-v3, which the runtime is built for) converts 8 floats per instruction.
void float_to_half(uint16_t* out, const float* in, int64_t n) {
  constexpr float kLargest = 65504.f;
  const __m256 hi = _mm256_set1_ps(kLargest), lo = _mm256_set1_ps(-kLargest);
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n / 8 * 8; i += 8) {
    // min and max return their second operand when one is NaN: x's NaN passes through.
    const __m256 x = _mm256_max_ps(lo, _mm256_min_ps(hi, _mm256_loadu_ps(in + i)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
  }
  for (int64_t i = n / 8 * 8; i < n; ++i) {
    const float v = in[i] != in[i] ? in[i] : std::clamp(in[i], -kLargest, kLargest);
    out[i] = static_cast<uint16_t>(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT));
  }
}

}  // namespace nle::ops
