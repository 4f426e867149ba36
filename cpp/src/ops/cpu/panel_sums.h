// What an integer panel kernel (ops/cpu/panel_gemm_u8s8.h, ops/cpu/panel_gemm_s16.h) does
// with its block of up to 6 × 16 int32 sums once its k loop ends, and how the products hand
// their work to threads. The sums either go to memory as int32 (store_panel_sums) or are
// rescaled to float32 while they are still in registers (store_dequantized_sums: zero
// point, scales, bias in the registers, the activation on the stored block while it is in
// L1), so a product that dequantizes writes its float32 output once and keeps no int32
// sums anywhere. Before, a thread's sums went to a 48 KB tile and a second pass rescaled
// the tile; that pass and the tile's bookkeeping were 6.6% of MiniLM's int8 time.
#pragma once

#if defined(__AVX2__)
#  include <immintrin.h>

#  include "ops/cpu/gelu_avx2.h"
#endif
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "ops/activation.h"
#include "ops/packed_gemm.h"

namespace nle::ops::cpu {

constexpr int64_t kChunkPanels = 8;  // the most panels a thread takes per block of rows

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

// A kernel's sums for ROWS rows of one 16-column panel: two vectors of 8 a row with AVX2,
// else plain arrays.
template <int ROWS>
struct PanelSums {
#if defined(__AVX2__)
  __m256i v[ROWS][2];
#else
  int32_t v[ROWS][16];
#endif
};

// Stores the first cols (<= 16) sums of each row at c.
template <int ROWS>
inline void store_panel_sums(int32_t* c, int64_t ldc, const PanelSums<ROWS>& sums, int64_t cols) {
#if defined(__AVX2__)
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) {
    if (cols == 16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc), sums.v[r][0]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8), sums.v[r][1]);
    } else {
      alignas(32) int32_t row[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(row), sums.v[r][0]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(row + 8), sums.v[r][1]);
      std::memcpy(c + r * ldc, row, static_cast<size_t>(cols) * sizeof(int32_t));
    }
  }
#else
  for (int r = 0; r < ROWS; ++r)
    std::memcpy(c + r * ldc, sums.v[r], static_cast<size_t>(cols) * sizeof(int32_t));
#endif
}

// y[r, j] = act(row_scale[row + r] · col_scale[col + j] · (sums[r, j] - row_zero[row + r] ·
// col_sum[col + j]) + bias[col + j]) for r < ROWS, j < cols (<= 16), from dq (a null
// row_zero and col_sum: no zero point; a null bias: none). The arithmetic, in this order,
// of ops/cpu/int8_gemm_cpu.cc's dequantize_rows, so the same bits.
template <int ROWS>
inline void store_dequantized_sums(float* y, int64_t ldy, const PanelSums<ROWS>& sums, int64_t cols,
                                   const S8Dequantization& dq, int64_t row, int64_t col) {
  const auto n = static_cast<size_t>(cols);
#if defined(__AVX2__)
  // The panel's column terms: read in place for a whole panel, else copied with zeros past
  // cols (a partial panel at the product's edge). A copy of variable length is a call to
  // memmove; one per term and block was 1.9% of MiniLM's int8-mixed batch-1 time.
  __m256 cs[2], b[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256i zs[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  if (cols == 16) {
    for (int h = 0; h < 2; ++h) {
      cs[h] = _mm256_loadu_ps(dq.col_scale + col + 8 * h);
      if (dq.bias) b[h] = _mm256_loadu_ps(dq.bias + col + 8 * h);
      if (dq.col_sum) zs[h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(dq.col_sum + col + 8 * h));
    }
  } else {
    alignas(32) float col_scale[16] = {}, bias[16] = {};
    alignas(32) int32_t col_sum[16] = {};
    std::memcpy(col_scale, dq.col_scale + col, n * sizeof(float));
    if (dq.bias) std::memcpy(bias, dq.bias + col, n * sizeof(float));
    if (dq.col_sum) std::memcpy(col_sum, dq.col_sum + col, n * sizeof(int32_t));
    for (int h = 0; h < 2; ++h) {
      cs[h] = _mm256_load_ps(col_scale + 8 * h);
      b[h] = _mm256_load_ps(bias + 8 * h);
      zs[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(col_sum + 8 * h));
    }
  }
  __m256 values[ROWS][2];  // every loop over the rows unrolled, so that these stay in registers
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) {
    const __m256 s = _mm256_set1_ps(dq.row_scale[row + r]);
    const __m256i z = _mm256_set1_epi32(dq.row_zero ? dq.row_zero[row + r] : 0);
    for (int h = 0; h < 2; ++h) {
      __m256i c = sums.v[r][h];
      if (dq.col_sum) c = _mm256_sub_epi32(c, _mm256_mullo_epi32(z, zs[h]));
      const __m256 scale = _mm256_mul_ps(s, cs[h]);
      const __m256 f = _mm256_cvtepi32_ps(c);
      values[r][h] = dq.bias ? _mm256_fmadd_ps(scale, f, b[h]) : _mm256_mul_ps(scale, f);
    }
  }
  // GELU on the values in registers where activate_f32 would compute it by gelu_erf8 or
  // gelu_tanh8 from the stored ones (panel_gemm_f32.cc).
  const bool gelu_in_registers =
      (dq.act == Activation::GeluErf || dq.act == Activation::GeluTanh) && gelu_by_avx2();
  if (gelu_in_registers && dq.act == Activation::GeluErf) {
#  pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r)
      for (int h = 0; h < 2; ++h) values[r][h] = gelu_erf8(values[r][h]);
  } else if (gelu_in_registers) {
#  pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r)
      for (int h = 0; h < 2; ++h) values[r][h] = gelu_tanh8(values[r][h]);
  }
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) {
    if (cols == 16) {
      _mm256_storeu_ps(y + r * ldy, values[r][0]);
      _mm256_storeu_ps(y + r * ldy + 8, values[r][1]);
    } else {
      alignas(32) float out[16];
      _mm256_store_ps(out, values[r][0]);
      _mm256_store_ps(out + 8, values[r][1]);
      std::memcpy(y + r * ldy, out, n * sizeof(float));
    }
  }
  if (gelu_in_registers) return;
#else
  float col_scale[16] = {}, bias[16] = {};
  int32_t col_sum[16] = {};
  std::memcpy(col_scale, dq.col_scale + col, n * sizeof(float));
  if (dq.bias) std::memcpy(bias, dq.bias + col, n * sizeof(float));
  if (dq.col_sum) std::memcpy(col_sum, dq.col_sum + col, n * sizeof(int32_t));
  for (int r = 0; r < ROWS; ++r) {
    const float s = dq.row_scale[row + r];
    const int32_t z = dq.row_zero ? dq.row_zero[row + r] : 0;
    for (int64_t j = 0; j < cols; ++j) {
      const float f = static_cast<float>(dq.col_sum ? sums.v[r][j] - z * col_sum[j] : sums.v[r][j]);
      y[r * ldy + j] = dq.bias ? s * col_scale[j] * f + bias[j] : s * col_scale[j] * f;
    }
  }
#endif
  if (dq.act != Activation::None)
    for (int r = 0; r < ROWS; ++r) activate_f32(y + r * ldy, cols, dq.act);
}

// Products whose rows and columns are worth more than one thread.
inline bool panel_product_worth_threads(int64_t blocks, int64_t panels, int64_t m, int64_t n, int64_t k) {
  return blocks * panels > 1 && m * n * k > 65536;
}

// Runs compute(p, r, rows) for every panel p < panels and every kernel block of rows
// (r, up to kernel_rows of them) of an M-row product, on the threads: per block of
// block_rows rows (kept in cache while its panels pass over it), in chunks of up to
// kChunkPanels consecutive panels, which the threads take as they come free (as the
// float32 panels do, ops/cpu/panel_gemm_f32.cc). A block's chunks number a multiple of the
// threads. Each thread had a fixed share of the (block, chunk) pairs before, which gave
// each thread whole blocks of rows: a product of 97 to 191 rows (two blocks, the second
// short) left one thread waiting for most of it. MiniLM int8 on one sentence of 8-128
// tokens at a time, 2 threads, AVX2-only AMD EPYC, spent 23% of its samples waiting at
// the end of a product, and went from 32.2 to 41.3 sentences/s.
template <class Compute>
void run_panel_blocks(int64_t m, int64_t n, int64_t k, int64_t panels, int64_t block_rows,
                      int64_t kernel_rows, const Compute& compute) {
  if (m == 0 || n == 0) return;
  const int64_t blocks = (m + block_rows - 1) / block_rows;
  const bool threaded = panel_product_worth_threads(blocks, panels, m, n, k);
  const int64_t threads = threaded ? omp_get_max_threads() : 1;
  const int64_t per_block = threads * ((panels + threads * kChunkPanels - 1) / (threads * kChunkPanels));
  const int64_t chunk = (panels + per_block - 1) / per_block;  // panels per chunk, <= kChunkPanels
  const int64_t chunks = (panels + chunk - 1) / chunk;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (threaded)
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t h = 0; h < chunks; ++h) {
      const int64_t p1 = std::min(panels, (h + 1) * chunk);
      const int64_t r1 = std::min(m, (b + 1) * block_rows);
      for (int64_t p = h * chunk; p < p1; ++p)
        for (int64_t r = b * block_rows; r < r1; r += kernel_rows)
          compute(p, r, std::min(kernel_rows, r1 - r));
    }
}

}  // namespace nle::ops::cpu
