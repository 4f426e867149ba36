#include "ops/cpu/panel_gemm_f32.h"

#if defined(__AVX2__) && defined(__FMA__)
#  include <immintrin.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "nlpengine/errors.h"

namespace nle::ops::cpu {

namespace {

// Up to kBlockRows rows of a times one panel: c[r, 0..cols) for r < ROWS.
template <int ROWS>
void panel_block(float* c, int64_t ldc, const float* a, int64_t lda, const float* panel, int64_t k,
                 int64_t cols) {
#if defined(__AVX2__) && defined(__FMA__)
  static_assert(kPanelColumns == 16, "two 8-float vectors per panel row");
  __m256 acc[ROWS][2];
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    const __m256 w0 = _mm256_loadu_ps(panel + p * kPanelColumns);
    const __m256 w1 = _mm256_loadu_ps(panel + p * kPanelColumns + 8);
#  pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * lda + p);
      acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);
    }
  }
  // Every loop over the rows is unrolled, so that acc lives in registers.
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) {
    if (cols == kPanelColumns) {
      _mm256_storeu_ps(c + r * ldc, acc[r][0]);
      _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
    } else {
      alignas(32) float row[kPanelColumns];
      _mm256_store_ps(row, acc[r][0]);
      _mm256_store_ps(row + 8, acc[r][1]);
      std::memcpy(c + r * ldc, row, static_cast<size_t>(cols) * sizeof(float));
    }
  }
#else
  for (int r = 0; r < ROWS; ++r) {
    float row[kPanelColumns] = {};
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < kPanelColumns; ++j) row[j] += a[r * lda + p] * panel[p * kPanelColumns + j];
    std::memcpy(c + r * ldc, row, static_cast<size_t>(cols) * sizeof(float));
  }
#endif
}

void panel_rows(float* c, int64_t ldc, const float* a, int64_t lda, const float* panel, int64_t k,
                int64_t cols, int64_t rows) {
  switch (rows) {
    case 1:
      return panel_block<1>(c, ldc, a, lda, panel, k, cols);
    case 2:
      return panel_block<2>(c, ldc, a, lda, panel, k, cols);
    case 3:
      return panel_block<3>(c, ldc, a, lda, panel, k, cols);
    case 4:
      return panel_block<4>(c, ldc, a, lda, panel, k, cols);
    case 5:
      return panel_block<5>(c, ldc, a, lda, panel, k, cols);
    default:
      return panel_block<6>(c, ldc, a, lda, panel, k, cols);
  }
}

}  // namespace

std::shared_ptr<void> pack_panels_f32(const float* w, int64_t n, int64_t k) {
  const int64_t panels = (n + kPanelColumns - 1) / kPanelColumns;
  const size_t bytes = static_cast<size_t>(panels * k * kPanelColumns) * sizeof(float);
  auto* out = static_cast<float*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (!out) throw Error("out of memory packing a weight (" + std::to_string(bytes) + " bytes)");
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p) {
    float* panel = out + p * k * kPanelColumns;
    const int64_t first = p * kPanelColumns, cols = std::min(kPanelColumns, n - first);
    for (int64_t q = 0; q < k; ++q) {
      for (int64_t j = 0; j < cols; ++j) panel[q * kPanelColumns + j] = w[(first + j) * k + q];
      for (int64_t j = cols; j < kPanelColumns; ++j) panel[q * kPanelColumns + j] = 0.f;
    }
  }
  return std::shared_ptr<void>(out, [](void* p) { std::free(p); });
}

void gemm_f32_panels(float* c, const float* a, const void* packed, int64_t m, int64_t n, int64_t k,
                     const float* bias, Activation act) {
  if (m == 0 || n == 0) return;
  const auto* panels = static_cast<const float*>(packed);
  const int64_t count = (n + kPanelColumns - 1) / kPanelColumns;
  // Contiguous runs of panels per thread: each streams its part of the weight in order.
#pragma omp parallel for schedule(static) if (count > 1 && m * n * k > 32768)
  for (int64_t p = 0; p < count; ++p) {
    const float* panel = panels + p * k * kPanelColumns;
    const int64_t first = p * kPanelColumns, cols = std::min(kPanelColumns, n - first);
    for (int64_t r = 0; r < m; r += kBlockRows)
      panel_rows(c + r * n + first, n, a + r * k, k, panel, k, cols, std::min(kBlockRows, m - r));
  }
  if (bias || act != Activation::None) bias_activation_f32(c, bias, m, n, act);
}

}  // namespace nle::ops::cpu
