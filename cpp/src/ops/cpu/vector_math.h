// exp and erf of floats, written so that loops over arrays vectorise (no calls, no
// branches, no tables). MKL's vector math (vmsErf, vmsExp) runs a generic path on
// non-Intel CPUs: on an AMD EPYC, vmsErf in GELU took 9.6% of MiniLM's int8 batch-1
// time, more than every other non-GEMM op together.
#pragma once

#include <cstdint>

namespace nle::ops::cpu {

// exp(x) within 2 ulp for x in [-87.3, 88]; 0 below that range, exp(88) above it.
inline float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 split so that n · kLn2Hi is exact
  constexpr float kLn2Lo = 1.42860682030941723212e-6f;
  constexpr float kRound = 12582912.f;  // 1.5 · 2^23: adding it rounds to an integer
  constexpr float kMin = -87.33654f, kMax = 88.f;
  const float xc = x < kMin ? kMin : (x > kMax ? kMax : x);
  // x = n ln 2 + r with |r| <= ln 2 / 2; exp(x) = 2^n · exp(r).
  const float n = (xc * kLog2e + kRound) - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  // exp(r) by its Taylor series to r^7 / 7!: the next term is below 2^-27 for |r| <= ln 2 / 2.
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const float scale = __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23);
  return x < kMin ? 0.f : p * scale;
}

// exp(x) for x <= 0, such as a softmax's x - max: exp_f32's value from -87.3 to 0 (the
// same operations), 0 below -88.03 and at -inf, at most 1.2e-38 in between. Four of its
// nineteen vector operations fewer: no upper clamp, the power of two 2^n taken from the
// bits of the sum that rounds n (its low bits hold n), and no select for the low end: there
// n is -127, whose power of two has all bits 0, so the result is 0 by itself. NaN gives 0.
inline float exp_nonpositive_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;
  constexpr float kLn2Lo = 1.42860682030941723212e-6f;
  constexpr float kRound = 12582912.f;  // 1.5 · 2^23
  constexpr float kMin = -88.02969f;    // -127 ln 2: n rounds to -127
  // The bits of kRound + n are kRound's plus n for |n| < 2^22.
  constexpr int32_t kBias = 127 - __builtin_bit_cast(int32_t, kRound);
  const float xc = x > kMin ? x : kMin;
  const float t = xc * kLog2e + kRound;
  const float n = t - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const float scale = __builtin_bit_cast(
      float, static_cast<int32_t>(static_cast<uint32_t>(__builtin_bit_cast(int32_t, t) + kBias) << 23));
  return p * scale;
}

// erf_f32's coefficients, highest power first: P's, then Q's.
constexpr float kErfP[6] = {2.01074204e-06f, 0.0002895254f, 0.00397624448f,
                            0.0533966497f,   0.195325404f,  1.12837899f};
constexpr float kErfQ[6] = {3.79276244e-05f, 0.0012134749f, 0.0153904082f, 0.116140403f, 0.506434143f, 1.f};
constexpr float kErfLimit = 3.92f;

// erf(x) within 5e-7 (absolute; 3.2e-7 seen): a · P(a²) / Q(a²) for a = |x| up to 3.92,
// where erf rounds to 1 in float, fitted by scripts/fit_erf.py (minimax, 4.5e-8 in exact
// arithmetic; the rest is float rounding). Eleven fused multiply-adds and one division,
// half the time of Abramowitz and Stegun's 7.1.26 with its exp that it replaces: GELU over
// MiniLM's feed-forward activations was 6.8% of its int8 time on an AMD EPYC.
//
// |x| and the clamp at 3.92 are taken on the bits (for floats of one sign, the integer
// order is the float order; a NaN's bits lie above 3.92's), and the sign put back the same
// way: vpandd, vpminud and vpternlogd where GCC made the float selects two compares, two
// masked moves and a masked division (GELU 0.281 -> 0.254 ns a value on a Sapphire Rapids,
// 1,536 values in L1).
inline float erf_f32(float x) {
  constexpr uint32_t kSign = 0x80000000u;
  constexpr uint32_t kLimit = __builtin_bit_cast(uint32_t, kErfLimit);
  const uint32_t bits = __builtin_bit_cast(uint32_t, x);
  const uint32_t abs_bits = bits & ~kSign;
  const float a = __builtin_bit_cast(float, abs_bits < kLimit ? abs_bits : kLimit);
  const float t = a * a;
  float p = kErfP[0], q = kErfQ[0];
  for (int i = 1; i < 6; ++i) {
    p = p * t + kErfP[i];
    q = q * t + kErfQ[i];
  }
  const float y = a * p / q;  // >= 0
  return __builtin_bit_cast(float, __builtin_bit_cast(uint32_t, y) | (bits & kSign));
}

// In place over n floats.
inline void exp_f32(float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = exp_f32(x[i]);
}

// In place over n floats, each <= 0 (exp_nonpositive_f32).
inline void exp_nonpositive_f32(float* x, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = exp_nonpositive_f32(x[i]);
}

}  // namespace nle::ops::cpu
