#include <algorithm>

#include "ops/activation.h"
#include "ops/cpu/activation_values.h"
#include "ops/cpu/vector_clones.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NLE_AVX2_ONLY)
#  define NLE_ACTIVATION_AVX512 1
#  include "ops/cpu/avx512_rows.h"
#endif
#if defined(__x86_64__) && defined(__GNUC__) && defined(__AVX2__) && defined(__FMA__)
#  define NLE_ACTIVATION_AVX2 1
#  include "ops/cpu/gelu_avx2.h"
#endif

namespace nle::ops::cpu {

namespace {

// Rows are processed in blocks, each by one thread, so that the block stays in cache.
constexpr int64_t kBlockElements = 16384;

// The loops of activation_values.h, compiled for AVX-512 too where the CPU has it.
NLE_VECTOR_CLONES void activate_block(float* __restrict x, int64_t n, Activation act) {
  activate_values(x, n, act);
}

NLE_VECTOR_CLONES void add_bias_block(float* __restrict x, const float* __restrict bias, int64_t rows,
                                      int64_t cols) {
  for (int64_t r = 0; r < rows; ++r, x += cols)
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) x[c] += bias[c];
}

#if defined(NLE_ACTIVATION_AVX512)
#  pragma GCC push_options
#  pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")
// GCC 12's false positive on its AVX-512 intrinsics' placeholders (int8_gemm_cpu.cc).
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wuninitialized"
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
void gelu_erf_avx512(float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes_before(i, n);
    _mm512_mask_storeu_ps(x + i, m, gelu_erf16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}
#  pragma GCC diagnostic pop
#  pragma GCC pop_options
#endif

// activate_block, GELU by gelu_erf16 where the CPU runs AVX-512 (the int8 rescaling's
// fused rows, ops/cpu/int8_gemm_cpu.cc, compute it the same way) and by gelu_erf8 on
// other x86 CPUs.
void activate(float* x, int64_t n, Activation act) {
#if defined(NLE_ACTIVATION_AVX512)
  if (act == Activation::GeluErf && avx512_rows_supported()) return gelu_erf_avx512(x, n);
#endif
#if defined(NLE_ACTIVATION_AVX2)
  if (act == Activation::GeluErf) return gelu_erf_avx2(x, n);
  // Where the CPU runs AVX-512, activate_block's loop on 16 lanes instead (not measured
  // against this).
  if (act == Activation::GeluTanh && gelu_by_avx2()) return gelu_tanh_avx2(x, n);
#endif
  activate_block(x, n, act);
}

}  // namespace

void activate_f32(float* x, int64_t n, Activation act) { activate(x, n, act); }

bool gelu_by_avx2() {
#if defined(NLE_ACTIVATION_AVX512)
  if (avx512_rows_supported()) return false;
#endif
#if defined(NLE_ACTIVATION_AVX2)
  return true;
#else
  return false;
#endif
}

void bias_activation_f32(float* y, const float* bias, int64_t rows, int64_t cols, Activation act) {
  if (rows == 0 || cols == 0) return;
  const int64_t rows_per_block = std::max<int64_t>(1, kBlockElements / cols);
  const int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * rows_per_block;
    const int64_t r1 = std::min(rows, r0 + rows_per_block);
    if (bias) add_bias_block(y + r0 * cols, bias, r1 - r0, cols);
    activate(y + r0 * cols, (r1 - r0) * cols, act);
  }
}

}  // namespace nle::ops::cpu
