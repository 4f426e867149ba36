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

// Keeps the four weight vectors in registers: left to itself, GCC folds each load into
// every row's FMA (a 64-byte load per FMA instead of per 1-4), which halved the kernel's
// rate at 8 or more rows in cache (AMD EPYC, Zen 4).
inline void in_registers(__m512& w0, __m512& w1, __m512& w2, __m512& w3) {
  __asm__("" : "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3));
}

// Rows 0..M of c's column block starting at column j0 (cols of them real).
template <int M>
void column_block(float* c, const float* a, const float* block, int64_t n, int64_t k, int64_t j0,
                  int64_t cols, const float* bias, Activation act) {
  __m512 sum[M][4];
  for (int r = 0; r < M; ++r)
    for (int v = 0; v < 4; ++v) sum[r][v] = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; ++i) {
    const float* row = block + i * kGemvColumnBlock;
    __m512 w0 = _mm512_loadu_ps(row), w1 = _mm512_loadu_ps(row + 16), w2 = _mm512_loadu_ps(row + 32),
           w3 = _mm512_loadu_ps(row + 48);
    in_registers(w0, w1, w2, w3);
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

// K rows of a block per chunk when a product has more rows than one group of sums in
// registers: 64 rows x 64 columns, 16 KB, which the later groups read from L1.
constexpr int64_t kChunkDepth = 64;

// Rows 0..G of a group over the block's K rows [i0, i1): the sums start from zero (first)
// or from partial (G x 64), and are left there. Meanwhile the group asks for
// prefetch_lines cache lines from prefetch on (its share of the chunk that follows),
// spread over its iterations: the groups after the first read the chunk from L1, and
// without these requests memory would stand idle while they run.
template <int G>
void chunk_group(float* partial, const float* a, int64_t k, const float* block, int64_t i0, int64_t i1,
                 bool first, const char* prefetch, int64_t prefetch_lines) {
  __m512 sum[G][4];
  for (int r = 0; r < G; ++r)
    for (int v = 0; v < 4; ++v)
      sum[r][v] = first ? _mm512_setzero_ps() : _mm512_load_ps(partial + r * kGemvColumnBlock + 16 * v);
  const int64_t steps = i1 - i0;
  int64_t owed = 0;  // prefetch_lines spread over the steps: one line per `steps` owed
  for (int64_t i = i0; i < i1; ++i) {
    const float* row = block + i * kGemvColumnBlock;
    for (owed += prefetch_lines; owed >= steps; owed -= steps, prefetch += 64)
      _mm_prefetch(prefetch, _MM_HINT_T1);
    __m512 w0 = _mm512_loadu_ps(row), w1 = _mm512_loadu_ps(row + 16), w2 = _mm512_loadu_ps(row + 32),
           w3 = _mm512_loadu_ps(row + 48);
    in_registers(w0, w1, w2, w3);
    for (int r = 0; r < G; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * k + i]);
      sum[r][0] = _mm512_fmadd_ps(w0, x, sum[r][0]);
      sum[r][1] = _mm512_fmadd_ps(w1, x, sum[r][1]);
      sum[r][2] = _mm512_fmadd_ps(w2, x, sum[r][2]);
      sum[r][3] = _mm512_fmadd_ps(w3, x, sum[r][3]);
    }
  }
  for (int r = 0; r < G; ++r)
    for (int v = 0; v < 4; ++v) _mm512_store_ps(partial + r * kGemvColumnBlock + 16 * v, sum[r][v]);
}

// Rows 0..m (more than 4) of c's column block starting at column j0: the block in chunks
// of kChunkDepth K rows, every group of 4 rows over a chunk before the next chunk, the
// groups together asking for the next chunk (or the next block's first) meanwhile.
void column_block_chunked(float* c, const float* a, const float* block, const float* next_block, int64_t m,
                          int64_t n, int64_t k, int64_t j0, int64_t cols, const float* bias, Activation act) {
  alignas(64) float partial[kGemvMaxRows * kGemvColumnBlock];
  const int64_t groups = (m + 3) / 4;
  for (int64_t i0 = 0; i0 < k; i0 += kChunkDepth) {
    const int64_t i1 = std::min(k, i0 + kChunkDepth);
    const float* ahead = i1 < k ? block + i1 * kGemvColumnBlock : next_block;
    const int64_t ahead_lines =
        ahead ? (i1 < k ? std::min(kChunkDepth, k - i1) : std::min(kChunkDepth, k)) * 4 : 0;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t r = 4 * g;
      float* p = partial + r * kGemvColumnBlock;
      const float* a_rows = a + r * k;
      const int64_t from = g * ahead_lines / groups, to = (g + 1) * ahead_lines / groups;
      const char* prefetch = reinterpret_cast<const char*>(ahead) + 64 * from;
      switch (std::min<int64_t>(4, m - r)) {
        case 1:
          chunk_group<1>(p, a_rows, k, block, i0, i1, i0 == 0, prefetch, to - from);
          break;
        case 2:
          chunk_group<2>(p, a_rows, k, block, i0, i1, i0 == 0, prefetch, to - from);
          break;
        case 3:
          chunk_group<3>(p, a_rows, k, block, i0, i1, i0 == 0, prefetch, to - from);
          break;
        default:
          chunk_group<4>(p, a_rows, k, block, i0, i1, i0 == 0, prefetch, to - from);
          break;
      }
    }
  }
  for (int64_t r = 0; r < m; ++r) {
    float* out = c + r * n + j0;
    const float* sums = partial + r * kGemvColumnBlock;
    if (bias)
      for (int64_t j = 0; j < cols; ++j) out[j] = sums[j] + bias[j0 + j];
    else
      std::memcpy(out, sums, static_cast<size_t>(cols) * sizeof(float));
    if (act != Activation::None) activate_f32(out, cols, act);
  }
}

// Each thread takes whole column blocks. Up to 4 rows, a block's sums stay in registers
// over all its K rows; more, it goes in chunks (column_block_chunked).
void all_blocks(float* c, const float* a, const float* w, int64_t m, int64_t n, int64_t k,
                int64_t block_stride, const float* bias, Activation act) {
  const int64_t blocks = (n + kGemvColumnBlock - 1) / kGemvColumnBlock;
#  pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kGemvColumnBlock, cols = std::min(kGemvColumnBlock, n - j0);
    const float* block = w + b * block_stride;
    switch (m) {
      case 1:
        column_block<1>(c, a, block, n, k, j0, cols, bias, act);
        break;
      case 2:
        column_block<2>(c, a, block, n, k, j0, cols, bias, act);
        break;
      case 3:
        column_block<3>(c, a, block, n, k, j0, cols, bias, act);
        break;
      case 4:
        column_block<4>(c, a, block, n, k, j0, cols, bias, act);
        break;
      default:
        column_block_chunked(c, a, block, b + 1 < blocks ? block + block_stride : nullptr, m, n, k, j0, cols,
                             bias, act);
        break;
    }
  }
}
}  // namespace

namespace {
void gemv_f32_blocked_kernel(float* c, const float* a, const float* w, int64_t m, int64_t n, int64_t k,
                             int64_t block_stride, const float* bias, Activation act) {
  if (m < 1 || m > kGemvMaxRows)
    throw Error("gemv_f32_blocked: " + std::to_string(m) + " rows (1 to " + std::to_string(kGemvMaxRows) +
                " taken)");
  all_blocks(c, a, w, m, n, k, block_stride, bias, act);
}
}  // namespace

#  pragma GCC pop_options

// Outside the kernels' target: the check must not itself need the instructions.
void gemv_f32_blocked(float* c, const float* a, const float* w, int64_t m, int64_t n, int64_t k,
                      int64_t block_stride, const float* bias, Activation act) {
  if (!gemv_f32_blocked_available())
    throw Error("gemv_f32_blocked: this CPU lacks AVX-512 (gemv_f32_blocked_available() is false)");
  gemv_f32_blocked_kernel(c, a, w, m, n, k, block_stride, bias, act);
}

#else  // no AVX-512 kernel in this build

bool gemv_f32_blocked_available() { return false; }

void gemv_f32_blocked(float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t, const float*,
                      Activation) {
  throw Error("gemv_f32_blocked: not built for this CPU");
}

#endif

}  // namespace nle::ops::cpu
