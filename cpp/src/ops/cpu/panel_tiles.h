// How an integer panel product (ops/cpu/panel_gemm_u8s8.h, ops/cpu/panel_gemm_s16.h)
// hands its work to threads and turns its int32 sums into float32 while they are in
// cache: a thread computes a chunk of up to kTileChunkPanels panels for a block of rows
// into its tile (96 rows by 128 columns of int32, 48 KB), then dequantizes the tile's
// rows into y. No (M, N) int32 buffer between the product and the rescaling. Also the
// pieces both kernels share: the dispatch on a block's row count, and storing a block of
// 6 × 16 sums.
#pragma once

#if defined(__AVX2__)
#  include <immintrin.h>
#endif
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "ops/int8_gemm.h"
#include "ops/packed_gemm.h"

namespace nle::ops::cpu {

constexpr int64_t kTileChunkPanels = 8;

// f(std::integral_constant<int, R>{}) for R = rows, 1 <= rows <= 6 (a kernel's block of
// rows, its accumulators unrolled at compile time); more rows than 6 take 6.
template <class F>
void with_block_rows(int64_t rows, const F& f) {
  switch (rows) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 5:
      return f(std::integral_constant<int, 5>{});
    default:
      return f(std::integral_constant<int, 6>{});
  }
}

#if defined(__AVX2__)
// Stores ROWS rows of 16 int32 sums (two vectors a row) at c, the first cols (<= 16) of
// each row.
template <int ROWS>
inline void store_panel_sums(int32_t* c, int64_t ldc, const __m256i (&acc)[ROWS][2], int64_t cols) {
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) {
    if (cols == 16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc), acc[r][0]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8), acc[r][1]);
    } else {
      alignas(32) int32_t row[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(row), acc[r][0]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(row + 8), acc[r][1]);
      std::memcpy(c + r * ldc, row, static_cast<size_t>(cols) * sizeof(int32_t));
    }
  }
}
#endif

// Products whose rows and columns are worth more than one thread.
inline bool panel_product_worth_threads(int64_t blocks, int64_t panels, int64_t m, int64_t n, int64_t k) {
  return blocks * panels > 1 && m * n * k > 65536;
}

// y (M, N) = the sums of `panels` panels of panel_columns columns each, dequantized by dq.
// block_rows: the rows of a block (kept in cache while its panels pass over it).
// compute(tile, ldt, p, r, rows) writes the sums of panel p for rows r..r+rows (at most
// kernel_rows of them) at tile (its row 0 is row r, its column 0 the panel's first).
// A block's chunks number a multiple of the threads, so that with one block of rows (a
// short batch, a decoding step) the threads take equal contiguous runs of panels.
template <class Compute>
void dequantize_panel_tiles(float* y, int64_t m, int64_t n, int64_t k, int64_t panels, int64_t panel_columns,
                            int64_t block_rows, int64_t kernel_rows, const S8Dequantization& dq,
                            const Compute& compute) {
  if (m == 0 || n == 0) return;
  const int64_t blocks = (m + block_rows - 1) / block_rows;
  const bool threaded = panel_product_worth_threads(blocks, panels, m, n, k);
  const int64_t threads = threaded ? omp_get_max_threads() : 1;
  const int64_t per_block =
      threads * ((panels + threads * kTileChunkPanels - 1) / (threads * kTileChunkPanels));
  const int64_t chunk = (panels + per_block - 1) / per_block;  // panels per chunk, <= kTileChunkPanels
  const int64_t chunks = (panels + chunk - 1) / chunk;
  const int64_t ldt = chunk * panel_columns;
#pragma omp parallel if (threaded)
  {
    thread_local std::vector<int32_t> tile_buffer;
    tile_buffer.resize(static_cast<size_t>(block_rows * kTileChunkPanels * panel_columns));
    int32_t* tile = tile_buffer.data();
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t h = 0; h < chunks; ++h) {
        const int64_t p0 = h * chunk, p1 = std::min(panels, p0 + chunk);
        const int64_t first = p0 * panel_columns, last = std::min(n, p1 * panel_columns);
        const int64_t r0 = b * block_rows, r1 = std::min(m, r0 + block_rows);
        for (int64_t p = p0; p < p1; ++p)
          for (int64_t r = r0; r < r1; r += kernel_rows)
            compute(tile + (r - r0) * ldt + (p - p0) * panel_columns, ldt, p, r,
                    std::min(kernel_rows, r1 - r));
        for (int64_t r = r0; r < r1; ++r)
          dequantize_row(y + r * n + first, tile + (r - r0) * ldt, dq.row_scale[r],
                         dq.row_zero ? dq.row_zero[r] : 0, dq.col_scale + first,
                         dq.col_sum ? dq.col_sum + first : nullptr, dq.bias ? dq.bias + first : nullptr,
                         last - first, dq.act);
      }
  }
}

}  // namespace nle::ops::cpu
