#include <mkl.h>

#include <algorithm>
#include <cstring>

#include "core/half.h"
#include "ops/bf16_gemm.h"
#include "ops/cpu/vector_clones.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NLE_AVX2_ONLY)
#  define NLE_BF16_CONVERSION 1
#  include "ops/cpu/avx512_rows.h"
#endif

namespace nle::ops::cpu {

namespace {
NLE_VECTOR_CLONES void float_to_bf16_values(uint16_t* __restrict out, const float* __restrict in, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = float_to_bf16_bits(in[i]);
}

#if defined(NLE_BF16_CONVERSION)
#  pragma GCC push_options
#  pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")
// GCC 12's false positive on its AVX-512 intrinsics' placeholders (int8_gemm_cpu.cc).
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wuninitialized"
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// float_to_bf16_values by vcvtneps2bf16 (bf16_bits16_converted): the same bits.
void float_to_bf16_converted(uint16_t* out, const float* in, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes_before(i, n);
    _mm256_mask_storeu_epi16(out + i, m, bf16_bits16_converted(_mm512_maskz_loadu_ps(m, in + i)));
  }
}
#  pragma GCC diagnostic pop
#  pragma GCC pop_options
#endif

void float_to_bf16_block(uint16_t* out, const float* in, int64_t n) {
#if defined(NLE_BF16_CONVERSION)
  if (avx512_rows_supported() && bf16_conversion_supported()) return float_to_bf16_converted(out, in, n);
#endif
  float_to_bf16_values(out, in, n);
}
// Blocks handed out to the threads in contiguous runs (a static schedule), so that with
// few blocks too each thread reads about the rows it wrote in the loop before (a layer
// norm's, a rescaling's: rows split evenly).
constexpr int64_t kBf16Block = 1024;
// Below this many values the threads are not woken. A product's input written by both
// threads and rounded by one alone was read half from the other core's cache: on an AMD
// EPYC at batch 1 (32 tokens of 384) that rounding took 5% of all-MiniLM-L6-v2's
// int8-mixed call.
constexpr int64_t kBf16SerialMax = 4096;
}  // namespace

void float_to_bf16_serial(uint16_t* out, const float* in, int64_t n) { float_to_bf16_block(out, in, n); }

void float_to_bf16(uint16_t* out, const float* in, int64_t n) {
  if (n <= kBf16SerialMax) {
    float_to_bf16_block(out, in, n);
    return;
  }
  const int64_t blocks = (n + kBf16Block - 1) / kBf16Block;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t first = b * kBf16Block;
    float_to_bf16_block(out + first, in + first, std::min(kBf16Block, n - first));
  }
}

void gemm_bf16(float* c, const uint16_t* a, const uint16_t* b, int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0) return;
  cblas_gemm_bf16bf16f32(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<MKL_INT>(m),
                         static_cast<MKL_INT>(n), static_cast<MKL_INT>(k), 1.f,
                         reinterpret_cast<const MKL_BF16*>(a), static_cast<MKL_INT>(k),
                         reinterpret_cast<const MKL_BF16*>(b), static_cast<MKL_INT>(k), 0.f, c,
                         static_cast<MKL_INT>(n));
}

}  // namespace nle::ops::cpu
