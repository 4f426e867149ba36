#include "ops/cpu/gemv_f32_blocked.h"

#include <algorithm>
#include <cstring>

#include "nlpengine/errors.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NLE_AVX2_ONLY)
#  define NLE_BLOCKED_GEMV 1
#  include <immintrin.h>
#endif

namespace nle::ops::cpu {

#if defined(NLE_BLOCKED_GEMV)

bool gemv_f32_blocked_available() {
  static const bool cpu = __builtin_cpu_supports("avx512f");
  return cpu;
}

#  pragma GCC push_options
#  pragma GCC target("avx512f")

namespace {
static_assert(kGemvColumnBlock == 64, "a column block is 4 vectors of 16 floats");

// Rows 0..M of c's column block starting at column j0 (cols of them real).
template <int M>
void column_block(float* c, const float* a, const float* block, int64_t n, int64_t k, int64_t j0,
                  int64_t cols, const float* bias, Activation act) {
  __m512 sum[M][4];
  for (int r = 0; r < M; ++r)
    for (int v = 0; v < 4; ++v) sum[r][v] = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; ++i) {
    const float* row = block + i * kGemvColumnBlock;
    const __m512 w0 = _mm512_loadu_ps(row), w1 = _mm512_loadu_ps(row + 16), w2 = _mm512_loadu_ps(row + 32),
                 w3 = _mm512_loadu_ps(row + 48);
    for (int r = 0; r < M; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * k + i]);
      sum[r][0] = _mm512_fmadd_ps(w0, x, sum[r][0]);
      sum[r][1] = _mm512_fmadd_ps(w1, x, sum[r][1]);
      sum[r][2] = _mm512_fmadd_ps(w2, x, sum[r][2]);
      sum[r][3] = _mm512_fmadd_ps(w3, x, sum[r][3]);
    }
  }
  for (int r = 0; r < M; ++r) {
    if (bias)
      for (int v = 0; v < 4; ++v) {
        const __mmask16 live = static_cast<__mmask16>(cols >= 16 * (v + 1) ? 0xffff
                                                      : cols <= 16 * v     ? 0
                                                                           : (1u << (cols - 16 * v)) - 1);
        sum[r][v] = _mm512_add_ps(sum[r][v], _mm512_maskz_loadu_ps(live, bias + j0 + 16 * v));
      }
    float* out = c + r * n + j0;
    if (cols == kGemvColumnBlock) {
      for (int v = 0; v < 4; ++v) _mm512_storeu_ps(out + 16 * v, sum[r][v]);
    } else {
      alignas(64) float all[kGemvColumnBlock];
      for (int v = 0; v < 4; ++v) _mm512_store_ps(all + 16 * v, sum[r][v]);
      std::memcpy(out, all, static_cast<size_t>(cols) * sizeof(float));
    }
    if (act != Activation::None) activate_f32(out, cols, act);
  }
}

// Each thread takes whole column blocks; a block's rows of a run in groups of up to 4
// (the group's sums in registers), the groups after the first reading the block from the
// cache the first brought it into.
void all_blocks(float* c, const float* a, const float* w, int64_t m, int64_t n, int64_t k,
                int64_t block_stride, const float* bias, Activation act) {
  const int64_t blocks = (n + kGemvColumnBlock - 1) / kGemvColumnBlock;
#  pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kGemvColumnBlock, cols = std::min(kGemvColumnBlock, n - j0);
    const float* block = w + b * block_stride;
    for (int64_t r = 0; r < m; r += 4) {
      float* c_rows = c + r * n;
      const float* a_rows = a + r * k;
      switch (std::min<int64_t>(4, m - r)) {
        case 1:
          column_block<1>(c_rows, a_rows, block, n, k, j0, cols, bias, act);
          break;
        case 2:
          column_block<2>(c_rows, a_rows, block, n, k, j0, cols, bias, act);
          break;
        case 3:
          column_block<3>(c_rows, a_rows, block, n, k, j0, cols, bias, act);
          break;
        default:
          column_block<4>(c_rows, a_rows, block, n, k, j0, cols, bias, act);
          break;
      }
    }
  }
}
}  // namespace

void gemv_f32_blocked(float* c, const float* a, const float* w, int64_t m, int64_t n, int64_t k,
                      int64_t block_stride, const float* bias, Activation act) {
  if (m < 1 || m > kGemvMaxRows)
    throw Error("gemv_f32_blocked: " + std::to_string(m) + " rows (1 to " + std::to_string(kGemvMaxRows) +
                " taken)");
  all_blocks(c, a, w, m, n, k, block_stride, bias, act);
}

#  pragma GCC pop_options

#else  // no AVX-512 kernel in this build

bool gemv_f32_blocked_available() { return false; }

void gemv_f32_blocked(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t, const float*,
                      Activation) {
  throw Error("gemv_f32_blocked: not built for this CPU");
}

#endif

}  // namespace nle::ops::cpu
