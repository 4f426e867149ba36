// GELU (erf) on 8 lanes with AVX2 and FMA, what activate_f32 runs on x86 CPUs without
// AVX-512 (there gelu_erf16, avx512_rows.h, runs instead), and GELU's tanh approximation
// (gelu_new) on such CPUs and on AVX-512 ones alike. x86-64 with GCC or Clang, in
// code compiled for AVX2 and FMA (the runtime's baseline, x86-64-v3).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "ops/cpu/vector_math.h"

namespace nle::ops::cpu {

// GELU(x) = max(x, 0) - a/2 · (1 - erf(a / √2)) at a = min(|x|, 5.5) (the term is -1e-7 at
// 5.5): erf_f32's rational, whose argument a / √2 <= 3.89 never reaches its clamp, once per
// lane. The loop of activate_values (activation_values.h) compiled for AVX2 evaluated the
// rational twice, once per sign of x, and blended the two: 3.15 ns a value on an AVX2-only
// AMD EPYC (one thread, a million values), where this takes 1.18 (two steps of 8 a loop:
// 1.44 with one). The same error, 8.1e-7 against a float64 GELU over [-12, 12]. NaN stays
// NaN (vminps gives its second operand, the limit, and vmaxps its second, x, where one is
// NaN); ±inf give ±inf and -1e-7.
inline __m256 gelu_erf8(__m256 x) {
  const __m256 a = _mm256_min_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), x), _mm256_set1_ps(5.5f));
  const __m256 u = _mm256_mul_ps(a, _mm256_set1_ps(0.70710678118654752440f));
  const __m256 t = _mm256_mul_ps(u, u);
  __m256 p = _mm256_set1_ps(kErfP[0]), q = _mm256_set1_ps(kErfQ[0]);
  for (int i = 1; i < 6; ++i) {
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(kErfP[i]));
    q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(kErfQ[i]));
  }
  const __m256 erf = _mm256_div_ps(_mm256_mul_ps(u, p), q);
  const __m256 half_a = _mm256_mul_ps(a, _mm256_set1_ps(0.5f));
  return _mm256_fnmadd_ps(half_a, _mm256_sub_ps(_mm256_set1_ps(1.f), erf),
                          _mm256_max_ps(_mm256_setzero_ps(), x));
}

// exp(x) on 8 lanes, exp_f32's steps (vector_math.h) with fused multiply-adds: within 2
// ulp over [-87.3, 88], 0 below (and at -inf), exp(88) above.
inline __m256 exp8(__m256 x) {
  const __m256 low = _mm256_set1_ps(-87.33654f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, low), _mm256_set1_ps(88.f));
  const __m256 round = _mm256_set1_ps(12582912.f);  // 1.5 · 2^23
  const __m256 n = _mm256_sub_ps(_mm256_fmadd_ps(xc, _mm256_set1_ps(1.44269504088896341f), round), round);
  const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723212e-6f),
                                    _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc));
  __m256 p = _mm256_set1_ps(1.f / 5040.f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 720.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  return _mm256_and_ps(y, _mm256_cmp_ps(x, low, _CMP_NLT_UQ));  // 0 below the range (NaN stays)
}

// GELU's tanh approximation, 0.5 x (1 + tanh(u)) with u = √(2/π) (x + 0.044715 x³), as
// activate_values computes it: x - x / (exp(2u) + 1), within 5e-7 of the reference. Its
// vectorised loop took 2.22 ns a value on an AVX2-only AMD EPYC (one thread, a million
// values); this takes 1.66, most of it the division. Applied in the panels' registers
// (panel_gemm_f32.cc), a 4096 x 1024 x 512 product with it (flan-t5-small's gated
// feed-forward on 4,096 tokens), 2 threads, 65.8 -> 59.7 ms (55 without the GELU).
inline __m256 gelu_tanh8(__m256 x) {
  const float k = 2.f * 0.79788456080286535588f;  // 2 √(2/π)
  const __m256 x2 = _mm256_mul_ps(x, x);
  const __m256 two_u =
      _mm256_mul_ps(x, _mm256_fmadd_ps(x2, _mm256_set1_ps(k * 0.044715f), _mm256_set1_ps(k)));
  return _mm256_sub_ps(x, _mm256_div_ps(x, _mm256_add_ps(exp8(two_u), _mm256_set1_ps(1.f))));
}

// The lanes of a step of 8 from i that fall before n, as vmaskmovps takes them.
inline __m256i lanes_before8(int64_t i, int64_t n) {
  const int64_t left = n - i < 8 ? n - i : 8;
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(left)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// x[i] = f(x[i]) for n values by an 8-lane function, the last step's lanes masked: every
// value computed alike wherever it falls.
template <typename F>
inline void apply8(float* x, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 y0 = f(_mm256_loadu_ps(x + i)), y1 = f(_mm256_loadu_ps(x + i + 8));
    _mm256_storeu_ps(x + i, y0);
    _mm256_storeu_ps(x + i + 8, y1);
  }
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = lanes_before8(i, n);
    _mm256_maskstore_ps(x + i, m, f(_mm256_maskload_ps(x + i, m)));
  }
}

inline void gelu_erf_avx2(float* x, int64_t n) {
  apply8(x, n, [](__m256 v) { return gelu_erf8(v); });
}
inline void gelu_tanh_avx2(float* x, int64_t n) {
  apply8(x, n, [](__m256 v) { return gelu_tanh8(v); });
}

}  // namespace nle::ops::cpu
