// The activations over an array of floats, written so that the loops vectorise;
// ops/cpu/activation_cpu.cc runs them (activate_f32, bias_activation_f32), GELU by
// gelu_erf16 instead where the CPU runs AVX-512 and by gelu_erf8 (gelu_avx2.h) on other x86
// CPUs, where the tanh GELU runs by gelu_tanh8: these loops are their definitions on other
// architectures. Kernels that fuse an activation call activate_f32 on their output block
// while it is in cache (or apply gelu_erf8 or gelu_tanh8 to their sums in registers where
// activate_f32 would, gelu_by_avx2()), so that every path computes it alike.
#pragma once

#include <cstdint>

#include "ops/activation.h"
#include "ops/cpu/vector_math.h"

namespace nle::ops::cpu {

// x[i] = act(x[i]) for n values. exp and erf from vector_math.h (within 2 ulp and 5e-7):
// far inside the runtime's 1e-4 parity, and the loops vectorise.
inline void activate_values(float* __restrict x, int64_t n, Activation act) {
  switch (act) {
    case Activation::None:
      return;
    case Activation::GeluErf: {
      // GELU(x) = max(x, 0) + g(a) with g(a) = -a Φ(-a) = -a/2 (1 - erf(a / √2)) at a =
      // min(|x|, 5.5) (g(5.5) = -1e-7), as the AVX-512 table computes it (gelu_erf16). The
      // textbook x/2 (1 + erf(x / √2)) grows as 3e-8 x far below 0, where erf_f32 gives -1
      // + 2^-24 and not -1: GELU(-1e30) was -3e22, GELU(-inf) -inf. NaN stays NaN (every
      // comparison below is false for it).
      const float inv_sqrt2 = 0.70710678118654752440f;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        const float a = v < 0.f ? -v : v;
        const float clamped = a > 5.5f ? 5.5f : a;
        const float relu = v < 0.f ? 0.f : v;
        x[i] = relu - 0.5f * clamped * (1.f - erf_f32(clamped * inv_sqrt2));
      }
      return;
    }
    case Activation::GeluTanh: {
      // 0.5 x (1 + tanh(u)) = x (1 - 1 / (exp(2u) + 1)).
      const float k = 2.f * 0.79788456080286535588f;  // 2 sqrt(2 / pi)
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const float two_u = k * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
        x[i] = x[i] * (1.f - 1.f / (exp_f32(two_u) + 1.f));
      }
      return;
    }
    case Activation::QuickGelu:
    case Activation::Silu: {
      const float a = act == Activation::QuickGelu ? -1.702f : -1.f;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.f + exp_f32(a * x[i]));
      return;
    }
    case Activation::Relu:
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.f ? x[i] : 0.f;
      return;
    case Activation::Tanh:
      // tanh(x) = 1 - 2 / (exp(2x) + 1)
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) x[i] = 1.f - 2.f / (exp_f32(2.f * x[i]) + 1.f);
      return;
  }
}

}  // namespace nle::ops::cpu
