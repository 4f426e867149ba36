#include "ops/cpu/panel_gemm_u8s8.h"

#if defined(__AVX2__)
#  include <immintrin.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/weight_memory.h"
#include "nlpengine/errors.h"
#include "ops/cpu/panel_sums.h"
#include "ops/int8_gemm.h"

namespace nle::ops::cpu {

namespace {

constexpr int64_t kGroup = 4;                              // k per group
constexpr int64_t kGroupBytes = kGroup * kS8PanelColumns;  // one group of a panel
constexpr int64_t kRowBlockRows = 16 * kS8BlockRows;       // rows of a kept in cache per pass

// The sums of up to kS8BlockRows rows of a times one panel, for r < ROWS. Each row of a
// has groups · kGroup bytes (lda >= that).
template <int ROWS>
[[gnu::always_inline]] inline void panel_sums(PanelSums<ROWS>& sums, const uint8_t* a, int64_t lda,
                                              const int8_t* panel, int64_t groups) {
#if defined(__AVX2__)
  static_assert(kS8PanelColumns == 16, "two 8-column vectors per group");
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[ROWS][2];
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  // Every loop over the rows is unrolled, so that acc lives in registers.
  for (int64_t g = 0; g < groups; ++g) {
    const auto* w = reinterpret_cast<const __m256i*>(panel + g * kGroupBytes);
    const __m256i w0 = _mm256_load_si256(w), w1 = _mm256_load_si256(w + 1);
#  pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) {
      int32_t bytes;
      std::memcpy(&bytes, a + r * lda + g * kGroup, sizeof bytes);
      const __m256i x = _mm256_set1_epi32(bytes);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w0), ones));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w1), ones));
    }
  }
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) {
    sums.v[r][0] = acc[r][0];
    sums.v[r][1] = acc[r][1];
  }
#else
  for (int r = 0; r < ROWS; ++r) {
    std::memset(sums.v[r], 0, sizeof sums.v[r]);
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t j = 0; j < kS8PanelColumns; ++j)
        for (int64_t q = 0; q < kGroup; ++q)
          sums.v[r][j] += a[r * lda + g * kGroup + q] * panel[g * kGroupBytes + j * kGroup + q];
  }
#endif
}

// store(sums) with the sums of `rows` (<= kS8BlockRows) rows of a times one panel.
template <class Store>
void panel_rows(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t groups, int64_t rows,
                const Store& store) {
  with_block_rows(rows, [&](auto block) {
    PanelSums<decltype(block)::value> sums;
    panel_sums(sums, a, lda, panel, groups);
    store(sums);
  });
}

int64_t groups_of(int64_t k) { return (k + kGroup - 1) / kGroup; }
int64_t panel_bytes(int64_t k) { return groups_of(k) * kGroupBytes; }

// a with each row padded to whole groups of 4 bytes when k is not a multiple of 4 (a
// per-thread copy with zeros after each row; the weight's codes there are zero too), else
// a itself.
const uint8_t* rows_in_groups(const uint8_t* a, int64_t m, int64_t k) {
  const int64_t lda = groups_of(k) * kGroup;
  if (lda == k) return a;
  thread_local std::vector<uint8_t> padded;
  padded.assign(static_cast<size_t>(m * lda), 0);
  for (int64_t r = 0; r < m; ++r) std::memcpy(padded.data() + r * lda, a + r * k, static_cast<size_t>(k));
  return padded.data();
}

}  // namespace

std::shared_ptr<void> pack_panels_s8(const int8_t* w, int64_t n, int64_t k) {
  const int64_t panels = (n + kS8PanelColumns - 1) / kS8PanelColumns;
  const auto bytes = static_cast<size_t>(panels * panel_bytes(k));
  std::shared_ptr<void> memory = allocate_weight_memory(bytes);
  if (!memory) throw Error("out of memory packing a weight (" + std::to_string(bytes) + " bytes)");
  auto* out = static_cast<int8_t*>(memory.get());
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p) {
    int8_t* panel = out + p * panel_bytes(k);
    std::memset(panel, 0, static_cast<size_t>(panel_bytes(k)));
    const int64_t first = p * kS8PanelColumns, cols = std::min(kS8PanelColumns, n - first);
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t q = 0; q < k; ++q)
        panel[q / kGroup * kGroupBytes + j * kGroup + q % kGroup] = w[(first + j) * k + q];
  }
  return memory;
}

void gemm_u8s8s32_panels(int32_t* c, const uint8_t* a, const void* packed, int64_t m, int64_t n, int64_t k) {
  const auto* panels = static_cast<const int8_t*>(packed);
  const int64_t count = (n + kS8PanelColumns - 1) / kS8PanelColumns;
  const int64_t groups = groups_of(k), lda = groups * kGroup;
  if (m == 0 || n == 0) return;
  a = rows_in_groups(a, m, k);
  run_panel_blocks(m, n, k, count, kRowBlockRows, kS8BlockRows, [&](int64_t p, int64_t r, int64_t rows) {
    const int64_t col = p * kS8PanelColumns, cols = std::min(kS8PanelColumns, n - col);
    panel_rows(a + r * lda, lda, panels + p * panel_bytes(k), groups, rows,
               [&](const auto& sums) { store_panel_sums(c + r * n + col, n, sums, cols); });
  });
}

void gemm_u8s8_dequantize_panels(float* y, const uint8_t* a, const void* packed, int64_t m, int64_t n,
                                 int64_t k, const S8Dequantization& dq) {
  const auto* panels = static_cast<const int8_t*>(packed);
  const int64_t count = (n + kS8PanelColumns - 1) / kS8PanelColumns;
  const int64_t groups = groups_of(k), lda = groups * kGroup;
  if (m == 0 || n == 0) return;
  a = rows_in_groups(a, m, k);
  run_panel_blocks(m, n, k, count, kRowBlockRows, kS8BlockRows, [&](int64_t p, int64_t r, int64_t rows) {
    const int64_t col = p * kS8PanelColumns, cols = std::min(kS8PanelColumns, n - col);
    panel_rows(a + r * lda, lda, panels + p * panel_bytes(k), groups, rows,
               [&](const auto& sums) { store_dequantized_sums(y + r * n + col, n, sums, cols, dq, r, col); });
  });
}

}  // namespace nle::ops::cpu
