#include <cmath>

#include "core/half.h"
#include "ops/cpu/cache_size.h"
#include "ops/cpu/vector_clones.h"
#include "ops/layer_norm.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NLE_AVX2_ONLY)
#  define NLE_LAYER_NORM_AVX512 1
#  include "ops/cpu/avx512_rows.h"
#endif

namespace nle::ops::cpu {

namespace {
// One row: y = norm(x (+ residual)) · gamma + beta, and y_bf16 = y rounded to bf16;
// residual and y_bf16 may be null.
NLE_VECTOR_CLONES void layer_norm_row(float* y, uint16_t* y_bf16, const float* x, const float* residual,
                                      const float* gamma, const float* beta, int64_t cols, float eps) {
  if (residual) {
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) y[c] = x[c] + residual[c];
    x = y;
  }
  // Two passes (mean, then centred variance) match PyTorch's accuracy.
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < cols; ++c) sum += x[c];
  const float mean = sum / static_cast<float>(cols);
  float sq = 0.f;
#pragma omp simd reduction(+ : sq)
  for (int64_t c = 0; c < cols; ++c) {
    const float d = x[c] - mean;
    sq += d * d;
  }
  const float inv_std = 1.f / std::sqrt(sq / static_cast<float>(cols) + eps);
  if (!y_bf16) {
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) y[c] = (x[c] - mean) * inv_std * gamma[c] + beta[c];
    return;
  }
#pragma omp simd
  for (int64_t c = 0; c < cols; ++c) {
    const float v = (x[c] - mean) * inv_std * gamma[c] + beta[c];
    y[c] = v;
    y_bf16[c] = float_to_bf16_bits(v);
  }
}

#if defined(NLE_LAYER_NORM_AVX512)
#  pragma GCC push_options
#  pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq")
// GCC 12 warns that the placeholder its AVX-512 intrinsics start from (_mm512_undefined_*) is
// used uninitialised where they are not inlined into AVX-512 code: a false positive.
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wuninitialized"
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// layer_norm_row with AVX-512: the residual added in the mean's pass, and both sums in four
// chains, summed as a tree (the loops above wait out an addition's latency per step and
// add their lanes one by one: the norms were 8% of MiniLM's bf16 time on a Sapphire
// Rapids). The last step of a row of any width is masked.
void layer_norm_row_avx512(float* y, uint16_t* y_bf16, const float* x, const float* residual,
                           const float* gamma, const float* beta, int64_t cols, float eps) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t c = 0;
  if (residual) {
    for (; c + 64 <= cols; c += 64) {
      const __m512 v0 = _mm512_add_ps(_mm512_loadu_ps(x + c), _mm512_loadu_ps(residual + c));
      const __m512 v1 = _mm512_add_ps(_mm512_loadu_ps(x + c + 16), _mm512_loadu_ps(residual + c + 16));
      const __m512 v2 = _mm512_add_ps(_mm512_loadu_ps(x + c + 32), _mm512_loadu_ps(residual + c + 32));
      const __m512 v3 = _mm512_add_ps(_mm512_loadu_ps(x + c + 48), _mm512_loadu_ps(residual + c + 48));
      _mm512_storeu_ps(y + c, v0);
      _mm512_storeu_ps(y + c + 16, v1);
      _mm512_storeu_ps(y + c + 32, v2);
      _mm512_storeu_ps(y + c + 48, v3);
      s0 = _mm512_add_ps(s0, v0);
      s1 = _mm512_add_ps(s1, v1);
      s2 = _mm512_add_ps(s2, v2);
      s3 = _mm512_add_ps(s3, v3);
    }
    for (; c < cols; c += 16) {
      const __mmask16 m = lanes_before(c, cols);
      const __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + c), _mm512_maskz_loadu_ps(m, residual + c));
      _mm512_mask_storeu_ps(y + c, m, v);
      s0 = _mm512_add_ps(s0, v);
    }
    x = y;
  } else {
    for (; c + 64 <= cols; c += 64) {
      s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + c));
      s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + c + 16));
      s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + c + 32));
      s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + c + 48));
    }
    for (; c < cols; c += 16) s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(lanes_before(c, cols), x + c));
  }
  const float mean = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))) /
                     static_cast<float>(cols);
  const __m512 mean16 = _mm512_set1_ps(mean);
  s0 = s1 = s2 = s3 = _mm512_setzero_ps();
  c = 0;
  for (; c + 64 <= cols; c += 64) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + c), mean16);
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + c + 16), mean16);
    const __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(x + c + 32), mean16);
    const __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(x + c + 48), mean16);
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
  }
  for (; c < cols; c += 16) {
    const __mmask16 m = lanes_before(c, cols);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + c), mean16);
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  const float sq = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  const __m512 inv_std = _mm512_set1_ps(1.f / std::sqrt(sq / static_cast<float>(cols) + eps));
  const bool converts = y_bf16 && bf16_conversion_supported();
  for (c = 0; c < cols; c += 16) {
    const __mmask16 m = lanes_before(c, cols);
    const __m512 centred = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + c), mean16), inv_std);
    const __m512 v =
        _mm512_fmadd_ps(centred, _mm512_maskz_loadu_ps(m, gamma + c), _mm512_maskz_loadu_ps(m, beta + c));
    _mm512_mask_storeu_ps(y + c, m, v);
    if (y_bf16) _mm256_mask_storeu_epi16(y_bf16 + c, m, bf16_bits16(v, converts));
  }
}

#  pragma GCC diagnostic pop
#  pragma GCC pop_options
#endif

// Rows ahead whose inputs a norm over more rows than its core's L2 holds asks the cache
// for, a line at a time, before it takes each row. The rows of a bf16 layer's groups of
// about 1,000 tokens (layers/sequence_groups.h) come from beyond L2: the residual stream
// was last read before the attention, whose working set has evicted it.
// MiniLM on a Sapphire Rapids, 2 threads, alternating runs, sentences/s: bf16 batches of
// 8-128 tokens 896.6 -> 931.6 and 882.5 -> 924.7, of 256-512 tokens 125.2 -> 130.1,
// int8-mixed 907.2 -> 936.1; 1 or 4 rows ahead measured no better than 2. int8's groups of
// 64 tokens (in L2) and float32's whole batches measured the same with it (8-128 tokens
// 1,127.8 -> 1,122.5, float32 6-40 tokens 554.5 -> 550.6): norms of rows that fit in half
// the L2 do not prefetch.
constexpr int64_t kPrefetchRows = 2;

inline void prefetch_row(const float* row, int64_t cols) {
  const auto* bytes = reinterpret_cast<const char*>(row);
  for (int64_t b = 0; b < cols * static_cast<int64_t>(sizeof(float)); b += 64)
    __builtin_prefetch(bytes + b, 0, 3);
}
}  // namespace

void layer_norm_f32(float* y, const float* x, const float* residual, const float* gamma, const float* beta,
                    int64_t rows, int64_t cols, float eps, uint16_t* y_bf16) {
  const int64_t input_bytes = rows * cols * static_cast<int64_t>(sizeof(float)) * (residual ? 2 : 1);
  const bool prefetch = input_bytes > l2_cache_bytes() / 2;
  const auto prefetch_ahead = [&](int64_t r) {
    if (!prefetch || r + kPrefetchRows >= rows) return;
    prefetch_row(x + (r + kPrefetchRows) * cols, cols);
    if (residual) prefetch_row(residual + (r + kPrefetchRows) * cols, cols);
  };
#if defined(NLE_LAYER_NORM_AVX512)
  if (avx512_rows_supported()) {
#  pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      prefetch_ahead(r);
      layer_norm_row_avx512(y + r * cols, y_bf16 ? y_bf16 + r * cols : nullptr, x + r * cols,
                            residual ? residual + r * cols : nullptr, gamma, beta, cols, eps);
    }
    return;
  }
#endif
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    prefetch_ahead(r);
    layer_norm_row(y + r * cols, y_bf16 ? y_bf16 + r * cols : nullptr, x + r * cols,
                   residual ? residual + r * cols : nullptr, gamma, beta, cols, eps);
  }
}

}  // namespace nle::ops::cpu
