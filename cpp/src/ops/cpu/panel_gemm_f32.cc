#include "ops/cpu/panel_gemm_f32.h"

#if defined(__AVX2__) && defined(__FMA__)
#  include <immintrin.h>

#  include "ops/cpu/gelu_avx2.h"
#endif

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/mapped_file.h"
#include "core/weight_memory.h"
#include "nlpengine/errors.h"
#include "ops/activation.h"

namespace nle::ops::cpu {

namespace {

// Rows of a per pass over the weight: a block of 96 rows (96 * K floats: 288 KB with
// K = 768) stays in L2 while a thread streams its panels past it. Without the blocking
// a 4,096-row product read a from memory once per panel (4096 x 768 x 3072 at 172
// GFLOP/s against 192 with 96-row blocks, 2 threads, AMD EPYC with AVX2).
constexpr int64_t kRowBlock = 96;

// What one pass of the kernel prefetches: every `every`-th k it asks for the next line of
// `next`, the part of the thread's next panel this pass covers (see gemm_f32_panels);
// nothing if next is null.
struct PanelPrefetch {
  const float* next = nullptr;
  int64_t every = 1;
};

// What the kernel applies to its sums before they leave the registers: the bias of the
// panel's columns (null: none), then the activation, row by row while the block is in L1.
struct PanelEpilogue {
  const float* bias = nullptr;  // the panel's first column's bias
  Activation act = Activation::None;
  bool gelu_in_registers = false;  // act is a GELU and activate_f32 runs it by gelu_erf8 or gelu_tanh8
};

#if defined(__AVX2__) && defined(__FMA__)
// acc[r] += a[r, p] * panel[p, 0..16) for r < ROWS: one k of the kernel.
template <int ROWS>
[[gnu::always_inline]] inline void panel_step(__m256 (&acc)[ROWS][2], const float* a, int64_t lda,
                                              const float* panel, int64_t p) {
  const __m256 w0 = _mm256_loadu_ps(panel + p * kPanelColumns);
  const __m256 w1 = _mm256_loadu_ps(panel + p * kPanelColumns + 8);
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) {
    const __m256 x = _mm256_broadcast_ss(a + r * lda + p);
    acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);
    acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);
  }
}
#endif

// Up to kBlockRows rows of a times one panel: c[r, 0..cols) for r < ROWS.
template <int ROWS>
void panel_block(float* c, int64_t ldc, const float* a, int64_t lda, const float* panel, int64_t k,
                 int64_t cols, PanelPrefetch prefetch, PanelEpilogue epilogue) {
#if defined(__AVX2__) && defined(__FMA__)
  static_assert(kPanelColumns == 16, "two 8-float vectors per panel row");
  __m256 acc[ROWS][2];
#  pragma GCC unroll 6
  for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  if (prefetch.next) {
    // The prefetch stays out of the innermost loop: a test there on every k cost
    // products of 1,024 rows 12% even when it never prefetched.
    const float* next = prefetch.next;
    for (int64_t p0 = 0; p0 < k; p0 += prefetch.every, next += kPanelColumns) {
      _mm_prefetch(reinterpret_cast<const char*>(next), _MM_HINT_T0);  // the panel's next k
      const int64_t p1 = std::min(k, p0 + prefetch.every);
      for (int64_t p = p0; p < p1; ++p) panel_step<ROWS>(acc, a, lda, panel, p);
    }
  } else {
    for (int64_t p = 0; p < k; ++p) panel_step<ROWS>(acc, a, lda, panel, p);
  }
  if (epilogue.bias) {
    // The same single rounding as adding the bias to the stored sums. A whole panel's bias
    // is read in place (a copy of variable length is a call to memmove, per block).
    alignas(32) float bias[kPanelColumns] = {};
    const float* b = epilogue.bias;
    if (cols < kPanelColumns)
      b = static_cast<const float*>(std::memcpy(bias, b, static_cast<size_t>(cols) * sizeof(float)));
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#  pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) {
      acc[r][0] = _mm256_add_ps(acc[r][0], b0);
      acc[r][1] = _mm256_add_ps(acc[r][1], b1);
    }
  }
  if (epilogue.gelu_in_registers) {
    // What activate_f32 would compute from the stored sums, on 2 * ROWS independent
    // vectors at once and without a call a row: a 4096 x 1536 x 384 product (MiniLM's
    // first feed-forward one on 4,096 tokens), 2 threads, AVX2-only AMD EPYC, took 70.5 ms
    // without GELU, 86.6 with the old activate_f32 a row, 79.2 with gelu_erf8 there and
    // 75.3 with it here.
    if (epilogue.act == Activation::GeluErf) {
#  pragma GCC unroll 6
      for (int r = 0; r < ROWS; ++r) {
        acc[r][0] = gelu_erf8(acc[r][0]);
        acc[r][1] = gelu_erf8(acc[r][1]);
      }
    } else {
#  pragma GCC unroll 6
      for (int r = 0; r < ROWS; ++r) {
        acc[r][0] = gelu_tanh8(acc[r][0]);
        acc[r][1] = gelu_tanh8(acc[r][1]);
      }
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
  (void)prefetch;
  for (int r = 0; r < ROWS; ++r) {
    float row[kPanelColumns] = {};
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < kPanelColumns; ++j) row[j] += a[r * lda + p] * panel[p * kPanelColumns + j];
    if (epilogue.bias)
      for (int64_t j = 0; j < cols; ++j) row[j] += epilogue.bias[j];
    std::memcpy(c + r * ldc, row, static_cast<size_t>(cols) * sizeof(float));
  }
#endif
  if (epilogue.act != Activation::None && !epilogue.gelu_in_registers)
    for (int r = 0; r < ROWS; ++r) activate_f32(c + r * ldc, cols, epilogue.act);
}

void panel_rows(float* c, int64_t ldc, const float* a, int64_t lda, const float* panel, int64_t k,
                int64_t cols, int64_t rows, PanelPrefetch prefetch, PanelEpilogue epilogue) {
  switch (rows) {
    case 1:
      return panel_block<1>(c, ldc, a, lda, panel, k, cols, prefetch, epilogue);
    case 2:
      return panel_block<2>(c, ldc, a, lda, panel, k, cols, prefetch, epilogue);
    case 3:
      return panel_block<3>(c, ldc, a, lda, panel, k, cols, prefetch, epilogue);
    case 4:
      return panel_block<4>(c, ldc, a, lda, panel, k, cols, prefetch, epilogue);
    case 5:
      return panel_block<5>(c, ldc, a, lda, panel, k, cols, prefetch, epilogue);
    default:
      return panel_block<6>(c, ldc, a, lda, panel, k, cols, prefetch, epilogue);
  }
}

}  // namespace

std::shared_ptr<void> pack_panels_f32(const float* w, int64_t n, int64_t k) {
  const int64_t panels = (n + kPanelColumns - 1) / kPanelColumns;
  const size_t bytes = static_cast<size_t>(panels * k * kPanelColumns) * sizeof(float);
  std::shared_ptr<void> memory = allocate_weight_memory(bytes);
  if (!memory) throw Error("out of memory packing a weight (" + std::to_string(bytes) + " bytes)");
  auto* out = static_cast<float*>(memory.get());
  // A chunk of panels at a time, whose rows of a memory-mapped weight are given back once
  // packed (release_mapped_pages; nothing happens to other memory): packed whole, a tied
  // LM head had every page of the embedding's file resident beside its packed copy at
  // once (and the panels are used where oneDNN has no AVX-512: the LM head is packed at
  // generation's first decoding step, beside everything else then in use). Random-weight
  // bart-base generation, 16 sources of 256 tokens, float32, AVX2-only AMD EPYC: peak RSS
  // 908 -> 818 MB with the embedding's rows read from the file (ops/embedding.cc).
  constexpr int64_t kChunkPanels = 256;
  for (int64_t chunk = 0; chunk < panels; chunk += kChunkPanels) {
    const int64_t end = std::min(panels, chunk + kChunkPanels);
#pragma omp parallel for schedule(static)
    for (int64_t p = chunk; p < end; ++p) {
      float* panel = out + p * k * kPanelColumns;
      const int64_t first = p * kPanelColumns, cols = std::min(kPanelColumns, n - first);
      for (int64_t q = 0; q < k; ++q) {
        for (int64_t j = 0; j < cols; ++j) panel[q * kPanelColumns + j] = w[(first + j) * k + q];
        for (int64_t j = cols; j < kPanelColumns; ++j) panel[q * kPanelColumns + j] = 0.f;
      }
    }
    const int64_t first_row = chunk * kPanelColumns, last_row = std::min(n, end * kPanelColumns);
    release_mapped_pages(w + first_row * k, static_cast<size_t>((last_row - first_row) * k) * sizeof(float));
  }
  return memory;
}

void gemm_f32_panels(float* c, const float* a, const void* packed, int64_t m, int64_t n, int64_t k,
                     const float* bias, Activation act) {
  if (m == 0 || n == 0) return;
  const auto* panels = static_cast<const float*>(packed);
  const int64_t count = (n + kPanelColumns - 1) / kPanelColumns;
#if defined(__AVX2__) && defined(__FMA__)
  const bool gelu_in_registers =
      (act == Activation::GeluErf || act == Activation::GeluTanh) && gelu_by_avx2();
#else
  const bool gelu_in_registers = false;
#endif
  // Runs of contiguous panels, about eight per thread, taken by the threads as they come
  // free: each run streams its part of the weight in order, once per block of kRowBlock
  // rows (a's block stays in cache across the panels); the kernel adds the bias to its
  // sums in registers and applies the activation to each block it stores while the block
  // is in L1 (PanelEpilogue). Taking the runs as
  // they come, rather than one fixed run per thread, lets a thread whose core the shared
  // host lends elsewhere for a while fall behind without the other waiting for it: one
  // BART-base decoder step's products (below) with 64 rows 113 -> 105 ms, 1,024 rows of
  // them 1.91 -> 1.80 s, medians; 16 rows unchanged.
  //
  // While the kernel's passes (one per kBlockRows rows) work on a panel they prefetch the
  // next one, each pass its share of the lines, spread evenly over its k. The hardware
  // prefetchers alone do not run that far ahead: with 16 rows (a greedy step of 16
  // sources) the time was the sum of streaming each panel from memory and computing on it
  // from cache, not their maximum. One BART-base decoder step's products (6 layers and the
  // LM head, weights from memory), 2 threads, AVX2-only AMD EPYC, medians: 16 rows 44.3
  // -> 34.3 ms, 64 rows 111 -> 103 ms; 1,024 rows unchanged.
  //
  // Rows go to the kernel in passes of equal size (differing by one at most, none over
  // kBlockRows), and row blocks alike: a remainder pass of 1 to 4 rows keeps 2 to 8 sums in
  // registers, fewer chains of multiply-adds than the FMA units need to hide their latency
  // (Zen 1: two units, 5 cycles, so 10 chains), so 32 rows as 6+6+6+6+6+2 cost nearly
  // what 35 would. MiniLM, one sentence of 32 tokens, 1 thread, AVX2-only AMD EPYC,
  // alternating runs: 17.0-18.5 -> 16.8-16.9 ms (2 threads unchanged, 10.4-11.1 ms).
#pragma omp parallel if (count > 1 && m * n * k > 32768)
  {
    const int64_t run = std::max<int64_t>(4, count / (omp_get_num_threads() * 8));
    const int64_t row_blocks = (m + kRowBlock - 1) / kRowBlock;
    const int64_t runs = (count + run - 1) / run;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < runs; ++i) {
      const int64_t p0 = i * run, p1 = std::min(count, p0 + run);
      for (int64_t b = 0; b < row_blocks; ++b) {
        const int64_t r0 = b * m / row_blocks, r1 = (b + 1) * m / row_blocks;
        const int64_t passes = (r1 - r0 + kBlockRows - 1) / kBlockRows;
        for (int64_t p = p0; p < p1; ++p) {
          const float* panel = panels + p * k * kPanelColumns;
          const int64_t col = p * kPanelColumns, cols = std::min(kPanelColumns, n - col);
          const PanelEpilogue epilogue{bias ? bias + col : nullptr, act, gelu_in_registers};
          // The next panel, during the first row block only: that block reads the weight
          // from memory, later ones find it in L3 when it fits (a 3072 x 768 weight is 9
          // MB).
          const float* next = r0 == 0 && p + 1 < count ? panels + (p + 1) * k * kPanelColumns : nullptr;
          for (int64_t pass = 0; pass < passes; ++pass) {
            const int64_t r = r0 + pass * (r1 - r0) / passes, rows = r0 + (pass + 1) * (r1 - r0) / passes - r;
            const PanelPrefetch prefetch{next ? next + pass * k / passes * kPanelColumns : nullptr, passes};
            panel_rows(c + r * n + col, n, a + r * k, k, panel, k, cols, rows, prefetch, epilogue);
          }
        }
      }
    }
  }
}

}  // namespace nle::ops::cpu
