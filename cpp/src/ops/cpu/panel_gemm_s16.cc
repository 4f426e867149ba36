#include "ops/cpu/panel_gemm_s16.h"

#if defined(__AVX2__)
#  include <immintrin.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/weight_memory.h"
#include "nlpengine/errors.h"
#include "ops/cpu/panel_sums.h"

namespace nle::ops::cpu {

namespace {

constexpr int64_t kPair = 2;                               // k per group
constexpr int64_t kGroupCodes = kPair * kS16PanelColumns;  // one group of a panel
constexpr int64_t kRowBlockRows = 16 * kS16BlockRows;      // rows of a kept in cache per pass

// One group's 32 codes as two vectors of 8 columns' pairs.
template <typename Code>
struct GroupLoad;

#if defined(__AVX2__)
template <>
struct GroupLoad<int8_t> {
  static void load(const int8_t* g, __m256i& w0, __m256i& w1) {
    w0 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(g)));
    w1 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(g + 16)));
  }
};
template <>
struct GroupLoad<int16_t> {
  static void load(const int16_t* g, __m256i& w0, __m256i& w1) {
    w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(g));
    w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(g + 16));
  }
};
#endif

// The sums of up to kS16BlockRows rows of a times one panel, for r < ROWS. Each row of a
// has groups · kPair values (lda >= that).
template <int ROWS, typename Code>
[[gnu::always_inline]] inline void panel_sums(PanelSums<ROWS>& sums, const int16_t* a, int64_t lda,
                                              const Code* panel, int64_t groups) {
#if defined(__AVX2__)
  static_assert(kS16PanelColumns == 16, "two 8-column vectors per group");
  __m256i acc[ROWS][2];
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  // Every loop over the rows is unrolled, so that acc lives in registers.
  for (int64_t g = 0; g < groups; ++g) {
    __m256i w0, w1;
    GroupLoad<Code>::load(panel + g * kGroupCodes, w0, w1);
#  pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * lda + g * kPair, sizeof pair);
      const __m256i x = _mm256_set1_epi32(pair);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(x, w0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(x, w1));
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
      for (int64_t j = 0; j < kS16PanelColumns; ++j)
        for (int64_t q = 0; q < kPair; ++q)
          sums.v[r][j] += int32_t{a[r * lda + g * kPair + q]} * panel[g * kGroupCodes + j * kPair + q];
  }
#endif
}

// store(sums) with the sums of `rows` (<= kS16BlockRows) rows of a times one panel.
template <typename Code, class Store>
void panel_rows(const int16_t* a, int64_t lda, const Code* panel, int64_t groups, int64_t rows,
                const Store& store) {
  with_block_rows(rows, [&](auto block) {
    PanelSums<decltype(block)::value> sums;
    panel_sums(sums, a, lda, panel, groups);
    store(sums);
  });
}

int64_t groups_of(int64_t k) { return (k + kPair - 1) / kPair; }
int64_t panel_codes(int64_t k) { return groups_of(k) * kGroupCodes; }

template <typename Code>
void pack_panel(Code* panels, int64_t p, const int16_t* codes, int64_t n, int64_t k) {
  Code* panel = panels + p * panel_codes(k);
  std::fill(panel, panel + panel_codes(k), Code{0});
  const int64_t cols = std::min(kS16PanelColumns, n - p * kS16PanelColumns);
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t q = 0; q < k; ++q)
      panel[q / kPair * kGroupCodes + j * kPair + q % kPair] = static_cast<Code>(codes[j * k + q]);
}

template <typename Code>
void dequantize_panels(float* y, const int16_t* a, const Code* panels, int64_t m, int64_t n, int64_t k,
                       const S8Dequantization& dq) {
  const int64_t count = (n + kS16PanelColumns - 1) / kS16PanelColumns;
  const int64_t groups = groups_of(k), lda = groups * kPair;
  run_panel_blocks(m, n, k, count, kRowBlockRows, kS16BlockRows, [&](int64_t p, int64_t r, int64_t rows) {
    const int64_t col = p * kS16PanelColumns, cols = std::min(kS16PanelColumns, n - col);
    panel_rows(a + r * lda, lda, panels + p * panel_codes(k), groups, rows,
               [&](const auto& sums) { store_dequantized_sums(y + r * n + col, n, sums, cols, dq, r, col); });
  });
}

}  // namespace

std::shared_ptr<void> allocate_panels_s16(int64_t n, int64_t k, bool wide) {
  const int64_t panels = (n + kS16PanelColumns - 1) / kS16PanelColumns;
  const auto bytes = static_cast<size_t>(panels * panel_codes(k)) * (wide ? sizeof(int16_t) : sizeof(int8_t));
  std::shared_ptr<void> out = allocate_weight_memory(bytes);
  if (!out) throw Error("out of memory packing a weight (" + std::to_string(bytes) + " bytes)");
  return out;
}

void pack_panel_s16(void* panels, int64_t p, const int16_t* codes, int64_t n, int64_t k, bool wide) {
  if (wide)
    pack_panel(static_cast<int16_t*>(panels), p, codes, n, k);
  else
    pack_panel(static_cast<int8_t*>(panels), p, codes, n, k);
}

std::shared_ptr<void> pack_panels_s16(const int16_t* w, int64_t n, int64_t k, bool wide) {
  std::shared_ptr<void> out = allocate_panels_s16(n, k, wide);
  const int64_t panels = (n + kS16PanelColumns - 1) / kS16PanelColumns;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p) pack_panel_s16(out.get(), p, w + p * kS16PanelColumns * k, n, k, wide);
  return out;
}

void gemm_s16_dequantize_panels(float* y, const int16_t* a, const void* panels, int64_t m, int64_t n,
                                int64_t k, bool wide, const S8Dequantization& dq) {
  if (wide)
    dequantize_panels(y, a, static_cast<const int16_t*>(panels), m, n, k, dq);
  else
    dequantize_panels(y, a, static_cast<const int8_t*>(panels), m, n, k, dq);
}

}  // namespace nle::ops::cpu
